/**
 * safetensors reader. `readSafetensors` reads the 8-byte length and the JSON header from a ByteSource, validates
 * them as the reference implementation does (and a little more: duplicate keys, names, nesting) and serves
 * tensor bytes on demand, so a multi-GB file is never read whole. All hostile input ends in FormatError.
 */
import { FormatError } from "../../core/errors.js";
import { FileSource } from "../gguf/file-source.js";
import { MemorySource, readExact, readTensorRange, type ByteSource } from "../gguf/source.js";
import { describeJson, isJsonObject, jsonSafeInteger, parseJson, type JsonObject, type JsonValue } from "./json.js";
import * as L from "./limits.js";
import {
  SAFETENSORS_DTYPE_BITS,
  isSafetensorsDtype,
  type SafetensorsDataRange,
  type SafetensorsHeader,
  type SafetensorsTensorInfo,
  type SafetensorsTensorStore,
} from "./types.js";

/** Bytes of the little-endian u64 header length that starts every file. */
export const SAFETENSORS_LENGTH_BYTES = 8;

/** The key reserved for the string → string metadata map. */
export const SAFETENSORS_METADATA_KEY = "__metadata__";

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const encoder = new TextEncoder();
const TENSOR_FIELDS = new Set(["dtype", "shape", "data_offsets"]);

function fail(code: ConstructorParameters<typeof FormatError>[0], message: string): never {
  throw new FormatError(code, `[safetensors] ${message}`);
}

/** Element count and byte size of `shape` in `dtype`, with every product checked against 2^53 − 1. */
function tensorSize(name: string, bits: number, shape: readonly number[]): { count: number; bytes: number } {
  let count = 1;
  for (const d of shape) {
    count *= d;
    if (!Number.isSafeInteger(count)) {
      fail("overflow", `tensor "${name}" shape [${shape.join(", ")}] has more than 2^53 − 1 elements`);
    }
  }
  const totalBits = count * bits;
  if (!Number.isSafeInteger(totalBits)) {
    fail("overflow", `tensor "${name}" shape [${shape.join(", ")}] needs more than 2^53 − 1 bits`);
  }
  if (totalBits % 8 !== 0) {
    fail("bad-dims", `tensor "${name}": ${count} elements of ${bits} bits do not fill whole bytes`);
  }
  return { count, bytes: totalBits / 8 };
}

function readMetadata(v: JsonValue): Map<string, string> {
  if (!isJsonObject(v)) {
    fail("bad-value", `${SAFETENSORS_METADATA_KEY} must be an object of strings, got ${describeJson(v)}`);
  }
  if (v.size > L.MAX_METADATA_ENTRIES) {
    fail("limit", `${SAFETENSORS_METADATA_KEY} has ${v.size} entries; the limit is ${L.MAX_METADATA_ENTRIES}`);
  }
  const out = new Map<string, string>();
  for (const [k, s] of v) {
    if (typeof s !== "string") {
      fail("bad-value", `${SAFETENSORS_METADATA_KEY}["${k}"] must be a string, got ${describeJson(s)}`);
    }
    out.set(k, s);
  }
  return out;
}

function readTensorEntry(name: string, v: JsonValue): SafetensorsTensorInfo {
  if (encoder.encode(name).length > L.MAX_TENSOR_NAME_BYTES) {
    fail("limit", `a tensor name is longer than ${L.MAX_TENSOR_NAME_BYTES} bytes`);
  }
  if (!isJsonObject(v)) {
    fail("bad-value", `tensor "${name}" must be an object, got ${describeJson(v)}`);
  }
  for (const key of v.keys()) {
    if (!TENSOR_FIELDS.has(key)) {
      fail("bad-value", `tensor "${name}" has unknown field "${key}"`);
    }
  }
  const dtype = v.get("dtype");
  if (typeof dtype !== "string" || !isSafetensorsDtype(dtype)) {
    fail("bad-tensor-type", `tensor "${name}" has dtype ${describeJson(dtype)}, not a safetensors dtype`);
  }
  const rawShape = v.get("shape");
  if (!Array.isArray(rawShape)) {
    fail("bad-dims", `tensor "${name}" shape must be an array, got ${describeJson(rawShape)}`);
  }
  const shapeItems: readonly JsonValue[] = rawShape;
  if (shapeItems.length > L.MAX_DIMS) {
    fail("limit", `tensor "${name}" has ${shapeItems.length} dims; the limit is ${L.MAX_DIMS}`);
  }
  const shape = shapeItems.map((d, i) => {
    const n = jsonSafeInteger(d);
    if (n === undefined) {
      fail("bad-dims", `tensor "${name}" dim ${i} is ${describeJson(d)}, not an integer in [0, 2^53)`);
    }
    return n;
  });
  const offsets = v.get("data_offsets");
  const pair: readonly JsonValue[] = Array.isArray(offsets) ? offsets : [];
  const begin = jsonSafeInteger(pair[0]);
  const end = jsonSafeInteger(pair[1]);
  if (pair.length !== 2 || begin === undefined || end === undefined) {
    fail("bad-value", `tensor "${name}" data_offsets must be [begin, end] with integers in [0, 2^53)`);
  }
  if (end < begin) {
    fail("bad-value", `tensor "${name}" data_offsets [${begin}, ${end}] end before they begin`);
  }
  const size = tensorSize(name, SAFETENSORS_DTYPE_BITS[dtype], shape);
  if (end - begin !== size.bytes) {
    fail(
      "bad-dims",
      `tensor "${name}" ${dtype} [${shape.join(", ")}] needs ${size.bytes} bytes; data_offsets hold ${end - begin}`,
    );
  }
  return { name, dtype, shape, elementCount: size.count, begin, end, byteSize: size.bytes };
}

/** Sorted by (begin, end), the tensors must tile [0, dataSize) exactly, as the reference requires. */
function checkTiling(tensors: readonly SafetensorsTensorInfo[], dataSize: number): void {
  const sorted = [...tensors].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  let prev: SafetensorsTensorInfo | undefined;
  for (const t of sorted) {
    if (t.begin < at) {
      fail("overlap", `tensors "${prev?.name ?? ""}" and "${t.name}" overlap at buffer offset ${t.begin}`);
    }
    if (t.begin > at) {
      fail("bad-value", `bytes [${at}, ${t.begin}) before tensor "${t.name}" belong to no tensor`);
    }
    at = t.end;
    prev = t;
  }
  if (at > dataSize) {
    fail("out-of-file", `tensor "${prev?.name ?? ""}" ends at buffer offset ${at}; the buffer holds ${dataSize}`);
  }
  if (at < dataSize) {
    fail("bad-value", `the last tensor ends at buffer offset ${at}; ${dataSize - at} trailing bytes follow`);
  }
}

/**
 * Validates a header given its JSON bytes (without the 8-byte length) and the size of the whole file.
 * Throws FormatError for anything the reference rejects, plus duplicate keys, unknown tensor fields and limits.
 */
export function parseSafetensorsHeader(json: Uint8Array, fileSize: number): SafetensorsHeader {
  let text: string;
  try {
    text = utf8.decode(json);
  } catch {
    fail("bad-utf8", "the header is not valid UTF-8");
  }
  if (!text.startsWith("{")) {
    fail("bad-magic", `the header starts with ${JSON.stringify(text.slice(0, 8))}, not "{" (not a safetensors file?)`);
  }
  const root = parseJson(text, { maxDepth: L.MAX_HEADER_JSON_DEPTH, label: "safetensors" });
  if (!isJsonObject(root)) {
    fail("bad-value", "the header is not a JSON object");
  }
  return buildHeader(root, json.length, fileSize);
}

function buildHeader(root: JsonObject, headerBytes: number, fileSize: number): SafetensorsHeader {
  const meta = root.get(SAFETENSORS_METADATA_KEY);
  const tensorCount = root.size - (meta === undefined ? 0 : 1);
  if (tensorCount > L.MAX_TENSOR_COUNT) {
    fail("limit", `the header declares ${tensorCount} tensors; the limit is ${L.MAX_TENSOR_COUNT}`);
  }
  const tensors: SafetensorsTensorInfo[] = [];
  for (const [name, v] of root) {
    if (name !== SAFETENSORS_METADATA_KEY) {
      tensors.push(readTensorEntry(name, v));
    }
  }
  const dataOffset = SAFETENSORS_LENGTH_BYTES + headerBytes;
  checkTiling(tensors, fileSize - dataOffset);
  const metadata = meta === undefined ? new Map<string, string>() : readMetadata(meta);
  return { tensors, metadata, headerBytes, dataOffset, fileSize };
}

/** A parsed safetensors file: the header plus on-demand access to tensor bytes through its source. */
export class SafetensorsFile implements SafetensorsHeader, SafetensorsTensorStore {
  readonly tensors: readonly SafetensorsTensorInfo[];
  readonly metadata: ReadonlyMap<string, string>;
  readonly headerBytes: number;
  readonly dataOffset: number;
  readonly fileSize: number;
  readonly #byName: Map<string, SafetensorsTensorInfo>;

  /** Wraps a parsed header; `source` must be the bytes it was parsed from. */
  constructor(
    header: SafetensorsHeader,
    readonly source: ByteSource,
  ) {
    ({ tensors: this.tensors, metadata: this.metadata, headerBytes: this.headerBytes } = header);
    ({ dataOffset: this.dataOffset, fileSize: this.fileSize } = header);
    this.#byName = new Map(header.tensors.map((t) => [t.name, t]));
  }

  tensor(name: string): SafetensorsTensorInfo | undefined {
    return this.#byName.get(name);
  }

  async tensorData(tensor: string | SafetensorsTensorInfo, range: SafetensorsDataRange = {}): Promise<Uint8Array> {
    const name = typeof tensor === "string" ? tensor : tensor.name;
    const info = this.#byName.get(name);
    if (info === undefined) {
      fail("bad-value", `no tensor named "${name}"`);
    }
    return readTensorRange(this.source, this.dataOffset + info.begin, info.byteSize, name, range, "safetensors");
  }

  /** Closes the source if it can be closed (file sources). */
  async close(): Promise<void> {
    if (this.source instanceof FileSource) {
      await this.source.close();
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Reads and validates the header of a safetensors source: two reads (the length, then the JSON), never the
 * tensor data. Throws FormatError `truncated` for a file shorter than 8 bytes or than its header, `limit` for a
 * header over `MAX_HEADER_BYTES`.
 */
export async function readSafetensors(source: ByteSource): Promise<SafetensorsFile> {
  if (source.size < SAFETENSORS_LENGTH_BYTES) {
    fail("truncated", `the file has ${source.size} bytes; the header length alone needs 8`);
  }
  const lengthBytes = await readExact(source, 0, SAFETENSORS_LENGTH_BYTES, "safetensors");
  const n = new DataView(lengthBytes.buffer, lengthBytes.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(L.MAX_HEADER_BYTES)) {
    fail("limit", `the header claims ${n} bytes; the limit is ${L.MAX_HEADER_BYTES}`);
  }
  const headerBytes = Number(n);
  if (SAFETENSORS_LENGTH_BYTES + headerBytes > source.size) {
    fail("truncated", `the header claims ${headerBytes} bytes; the file has ${source.size - 8} after the length`);
  }
  const json = await readExact(source, SAFETENSORS_LENGTH_BYTES, headerBytes, "safetensors");
  return new SafetensorsFile(parseSafetensorsHeader(json, source.size), source);
}

/** Parses safetensors bytes held in memory; tensor data reads are zero-copy views (possibly unaligned). */
export function readSafetensorsBytes(bytes: Uint8Array): Promise<SafetensorsFile> {
  return readSafetensors(new MemorySource(bytes));
}

/** Opens a safetensors file and validates its header. Close the result (or `await using` it). */
export async function openSafetensors(path: string): Promise<SafetensorsFile> {
  const source = await FileSource.open(path);
  try {
    return await readSafetensors(source);
  } catch (e) {
    await source.close();
    throw e;
  }
}
