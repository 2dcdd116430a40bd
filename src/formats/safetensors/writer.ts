/**
 * safetensors writer. Validates everything the reader would reject, so a written file always reads back:
 * names (unique, not `__metadata__`, within the length limit), dtypes, shapes and that each tensor's bytes match
 * dtype × shape. Like the reference, the JSON header is padded with spaces to a multiple of 8 bytes.
 */
import { writeFile } from "node:fs/promises";
import { FormatError } from "../../core/errors.js";
import * as L from "./limits.js";
import { SAFETENSORS_LENGTH_BYTES, SAFETENSORS_METADATA_KEY } from "./reader.js";
import { SAFETENSORS_DTYPE_BITS, isSafetensorsDtype, type SafetensorsDtype } from "./types.js";

/** One tensor to write. */
export interface SafetensorsTensorInput {
  /** Unique name, ≤ `MAX_TENSOR_NAME_BYTES` UTF-8 bytes, not `__metadata__`. */
  readonly name: string;
  /** Element type. */
  readonly dtype: SafetensorsDtype;
  /** Shape, PyTorch order; `[]` for a scalar; each dim a non-negative safe integer. */
  readonly shape: readonly number[];
  /** Little-endian element bytes; the length must equal elementCount × dtype bits / 8. */
  readonly data: Uint8Array;
}

/**
 * Order of tensors in the byte buffer: `alignment` (the reference's: larger dtypes first, then by name, so
 * every tensor starts at a multiple of its element size), `name` (sorted by name) or `given`.
 */
export type SafetensorsOrder = "alignment" | "name" | "given";

/** Everything a safetensors file holds. */
export interface SafetensorsWriteInput {
  /** Tensors to write. */
  readonly tensors: readonly SafetensorsTensorInput[];
  /** Optional `__metadata__` (string → string), written in iteration order. */
  readonly metadata?: ReadonlyMap<string, string> | Readonly<Record<string, string>>;
  /** Layout order of the byte buffer. Default `alignment`. */
  readonly order?: SafetensorsOrder;
}

const encoder = new TextEncoder();
const LONE_SURROGATE = /\p{Cs}/u;

function bad(message: string): FormatError {
  return new FormatError("bad-value", `[safetensors-write] ${message}`);
}

function checkTensor(t: SafetensorsTensorInput, seen: Set<string>): void {
  if (t.name === SAFETENSORS_METADATA_KEY) {
    throw bad(`"${SAFETENSORS_METADATA_KEY}" is reserved and cannot name a tensor`);
  }
  if (LONE_SURROGATE.test(t.name)) {
    throw new FormatError("bad-utf8", `[safetensors-write] tensor name ${JSON.stringify(t.name)} has a lone surrogate`);
  }
  if (encoder.encode(t.name).length > L.MAX_TENSOR_NAME_BYTES) {
    throw new FormatError("limit", `[safetensors-write] tensor name longer than ${L.MAX_TENSOR_NAME_BYTES} bytes`);
  }
  if (seen.has(t.name)) {
    throw new FormatError("duplicate", `[safetensors-write] duplicate tensor name "${t.name}"`);
  }
  seen.add(t.name);
  if (!isSafetensorsDtype(t.dtype)) {
    throw new FormatError("bad-tensor-type", `[safetensors-write] tensor "${t.name}" has unknown dtype ${t.dtype}`);
  }
  if (t.shape.length > L.MAX_DIMS || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    const shape = t.shape.join(", ");
    throw new FormatError("bad-dims", `[safetensors-write] tensor "${t.name}" shape [${shape}] is invalid`);
  }
  const bits = t.shape.reduce((a, d) => a * d, 1) * SAFETENSORS_DTYPE_BITS[t.dtype];
  if (!Number.isSafeInteger(bits) || bits % 8 !== 0 || bits / 8 !== t.data.length) {
    throw new FormatError(
      "bad-dims",
      `[safetensors-write] tensor "${t.name}" ${t.dtype} [${t.shape.join(", ")}] cannot hold ${t.data.length} bytes`,
    );
  }
}

function ordered(tensors: readonly SafetensorsTensorInput[], order: SafetensorsOrder): SafetensorsTensorInput[] {
  const byName = (a: SafetensorsTensorInput, b: SafetensorsTensorInput): number =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  if (order === "given") {
    return [...tensors];
  }
  if (order === "name") {
    return [...tensors].sort(byName);
  }
  return [...tensors].sort((a, b) => SAFETENSORS_DTYPE_BITS[b.dtype] - SAFETENSORS_DTYPE_BITS[a.dtype] || byName(a, b));
}

function metadataEntries(m: SafetensorsWriteInput["metadata"]): [string, string][] | undefined {
  if (m === undefined) {
    return undefined;
  }
  const entries: [string, string][] = m instanceof Map ? [...m.entries()] : Object.entries(m);
  for (const [k, v] of entries) {
    if (typeof v !== "string" || LONE_SURROGATE.test(k) || LONE_SURROGATE.test(v)) {
      throw bad(`${SAFETENSORS_METADATA_KEY}["${k}"] must be a well-formed string`);
    }
  }
  if (entries.length > L.MAX_METADATA_ENTRIES) {
    throw new FormatError("limit", `[safetensors-write] more than ${L.MAX_METADATA_ENTRIES} metadata entries`);
  }
  return entries;
}

/**
 * Serializes tensors to safetensors bytes. Throws FormatError for input the reader would reject (and `limit`
 * when the header would exceed `MAX_HEADER_BYTES`).
 */
export function writeSafetensors(input: SafetensorsWriteInput): Uint8Array {
  const seen = new Set<string>();
  for (const t of input.tensors) {
    checkTensor(t, seen);
  }
  if (input.tensors.length > L.MAX_TENSOR_COUNT) {
    throw new FormatError("limit", `[safetensors-write] more than ${L.MAX_TENSOR_COUNT} tensors`);
  }
  const tensors = ordered(input.tensors, input.order ?? "alignment");
  // JSON.stringify keeps insertion order for non-index keys; build the text by hand so a numeric-looking name
  // (which an object would move to the front) keeps its place.
  const parts: string[] = [];
  const meta = metadataEntries(input.metadata);
  if (meta !== undefined) {
    const body = meta.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(",");
    parts.push(`${JSON.stringify(SAFETENSORS_METADATA_KEY)}:{${body}}`);
  }
  let offset = 0;
  for (const t of tensors) {
    const entry = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.length] };
    parts.push(`${JSON.stringify(t.name)}:${JSON.stringify(entry)}`);
    offset += t.data.length;
  }
  const json = encoder.encode(`{${parts.join(",")}}`);
  const headerBytes = Math.ceil(json.length / 8) * 8;
  if (headerBytes > L.MAX_HEADER_BYTES) {
    throw new FormatError("limit", `[safetensors-write] the header would be ${headerBytes} bytes`);
  }
  const out = new Uint8Array(SAFETENSORS_LENGTH_BYTES + headerBytes + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes), true);
  out.set(json, SAFETENSORS_LENGTH_BYTES);
  out.fill(0x20, SAFETENSORS_LENGTH_BYTES + json.length, SAFETENSORS_LENGTH_BYTES + headerBytes);
  let at = SAFETENSORS_LENGTH_BYTES + headerBytes;
  for (const t of tensors) {
    out.set(t.data, at);
    at += t.data.length;
  }
  return out;
}

/** Writes `writeSafetensors(input)` to `path`. */
export async function writeSafetensorsFile(path: string, input: SafetensorsWriteInput): Promise<void> {
  await writeFile(path, writeSafetensors(input));
}
