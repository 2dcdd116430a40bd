/**
 * GGUF v3 writer. Validates everything the reader would reject, so a written file always reads back:
 * value ranges, key and name lengths, duplicate names, dims, and that each tensor's bytes match its type.
 */
import { ByteWriter } from "../../core/bytes.js";
import { FormatError } from "../../core/errors.js";
import { ggmlTensorBytes, resolveGgmlType } from "./ggml-types.js";
import * as L from "./limits.js";
import { GgufMetadata, ggufAlignment } from "./metadata.js";
import { GGUF_MAGIC } from "./reader.js";
import { GGUF_VALUE_TYPE, type GgufArrayValue, type GgufValue, type GgufValueTypeName } from "./types.js";

/** One tensor to write. */
export interface GgufTensorInput extends GgufTensorSpec {
  /** Encoded tensor bytes; the length must equal the type's byte size for `dims`. */
  readonly data: Uint8Array;
}

/** Everything a GGUF file holds. */
export interface GgufWriteInput {
  /** Metadata in the order to write. `general.alignment` (u32) sets the alignment; default 32. */
  readonly metadata: GgufMetadata | Iterable<readonly [string, GgufValue]>;
  /** Tensors, laid out in this order, each at the next aligned offset. Default: none. */
  readonly tensors?: readonly GgufTensorInput[];
}

const encoder = new TextEncoder();
const LONE_SURROGATE = /\p{Cs}/u;

const INT_RANGES: Partial<Record<GgufValueTypeName, readonly [number, number]>> = {
  u8: [0, 0xff],
  i8: [-0x80, 0x7f],
  u16: [0, 0xffff],
  i16: [-0x8000, 0x7fff],
  u32: [0, 0xffffffff],
  i32: [-0x80000000, 0x7fffffff],
};

const BIG_RANGES = { u64: [0n, (1n << 64n) - 1n], i64: [-(1n << 63n), (1n << 63n) - 1n] } as const;

function bad(what: string, detail: string): FormatError {
  return new FormatError("bad-value", `[gguf-write] ${what}: ${detail}`);
}

function encodeString(s: unknown, max: number, what: string): Uint8Array {
  if (typeof s !== "string") {
    throw bad(what, `expected a string, got ${typeof s}`);
  }
  if (LONE_SURROGATE.test(s)) {
    throw new FormatError("bad-utf8", `[gguf-write] ${what} holds a lone surrogate, which UTF-8 cannot encode`);
  }
  const bytes = encoder.encode(s);
  if (bytes.length > max) {
    throw new FormatError("limit", `[gguf-write] ${what} is ${bytes.length} bytes; the limit is ${max}`);
  }
  return bytes;
}

function writeScalar(w: ByteWriter, type: Exclude<GgufValueTypeName, "array">, v: unknown, what: string): void {
  switch (type) {
    case "u8":
    case "i8":
    case "u16":
    case "i16":
    case "u32":
    case "i32": {
      const range = INT_RANGES[type] ?? [0, 0];
      if (typeof v !== "number" || !Number.isInteger(v) || v < range[0] || v > range[1]) {
        throw bad(what, `${String(v)} is not a ${type}`);
      }
      w[type](v);
      return;
    }
    case "f32":
    case "f64":
      if (typeof v !== "number") {
        throw bad(what, `${String(v)} is not a number`);
      }
      w[type](v);
      return;
    case "u64":
    case "i64": {
      const [lo, hi] = BIG_RANGES[type];
      if (typeof v !== "bigint" || v < lo || v > hi) {
        throw bad(what, `${String(v)} is not a ${type} bigint`);
      }
      w[type](v);
      return;
    }
    case "bool":
      if (typeof v !== "boolean") {
        throw bad(what, `${String(v)} is not a boolean`);
      }
      w.u8(v ? 1 : 0);
      return;
    case "string": {
      const bytes = encodeString(v, L.MAX_STRING_BYTES, what);
      w.u64(BigInt(bytes.length));
      w.bytes(bytes);
      return;
    }
  }
}

function writeArray(w: ByteWriter, v: GgufArrayValue, depth: number, what: string): void {
  if (depth > L.MAX_ARRAY_DEPTH) {
    throw new FormatError("limit", `[gguf-write] ${what} nests arrays deeper than ${L.MAX_ARRAY_DEPTH}`);
  }
  if (!(v.itemType in GGUF_VALUE_TYPE) || !Array.isArray(v.items)) {
    throw new FormatError("bad-value-type", `[gguf-write] ${what} has item type ${String(v.itemType)}`);
  }
  if (v.items.length > L.MAX_ARRAY_LENGTH) {
    throw new FormatError(
      "limit",
      `[gguf-write] ${what} has ${v.items.length} items; the limit is ${L.MAX_ARRAY_LENGTH}`,
    );
  }
  w.u32(GGUF_VALUE_TYPE[v.itemType]);
  w.u64(BigInt(v.items.length));
  const itemType = v.itemType;
  for (const item of v.items) {
    if (itemType === "array") {
      writeArray(w, item as GgufArrayValue, depth + 1, what);
    } else {
      writeScalar(w, itemType, item, what);
    }
  }
}

function writeValue(w: ByteWriter, v: GgufValue, what: string): void {
  if (!(v.type in GGUF_VALUE_TYPE)) {
    throw new FormatError("bad-value-type", `[gguf-write] ${what} has type ${String(v.type)}`);
  }
  w.u32(GGUF_VALUE_TYPE[v.type]);
  if (v.type === "array") {
    writeArray(w, v, 1, what);
  } else {
    writeScalar(w, v.type, v.value, what);
  }
}

/** What the header says about one tensor: everything but its bytes (for writers that stream tensor data). */
export interface GgufTensorSpec {
  /** Unique name, ≤ `MAX_TENSOR_NAME_BYTES` UTF-8 bytes. */
  readonly name: string;
  /** GGUF dims, ne0 first; 1 to 4 positive safe integers. */
  readonly dims: readonly number[];
  /** ggml type id (ids 36/38/39 are resolved against `general.architecture`, as the reader does). */
  readonly typeId: number;
}

/** Where one tensor's bytes go in a planned file. */
export interface GgufTensorPlacement {
  readonly name: string;
  /** Offset relative to the start of the data section (the end of `GgufLayout.header`); aligned. */
  readonly offset: number;
  /** Bytes the tensor's type needs for its dims. */
  readonly byteSize: number;
}

/** A planned GGUF file: its header bytes and where each tensor's data goes after them. */
export interface GgufLayout {
  /** Magic, version, counts, metadata and tensor infos, zero-padded to the alignment: the file's first bytes. */
  readonly header: Uint8Array;
  readonly alignment: number;
  /** The tensors in file order. */
  readonly tensors: readonly GgufTensorPlacement[];
  /** Bytes of the data section: every tensor, each padded to the alignment (the file is header + this). */
  readonly dataBytes: number;
}

interface PlannedTensor {
  readonly spec: GgufTensorSpec;
  readonly name: Uint8Array;
  readonly offset: number;
  readonly byteSize: number;
}

function planTensors(
  tensors: readonly GgufTensorSpec[],
  alignment: number,
  arch: string | undefined,
): PlannedTensor[] {
  const seen = new Set<string>();
  const planned: PlannedTensor[] = [];
  let offset = 0;
  for (const t of tensors) {
    const name = encodeString(t.name, L.MAX_TENSOR_NAME_BYTES, "tensor name");
    if (seen.has(t.name)) {
      throw new FormatError("duplicate", `[gguf-write] duplicate tensor name "${t.name}"`);
    }
    seen.add(t.name);
    if (t.dims.length === 0 || t.dims.length > L.MAX_DIMS || !t.dims.every((d) => Number.isSafeInteger(d) && d > 0)) {
      throw new FormatError("bad-dims", `[gguf-write] tensor "${t.name}" has dims [${t.dims.join(", ")}]`);
    }
    const type = resolveGgmlType(t.typeId, { architecture: arch });
    if (type === undefined) {
      throw new FormatError("bad-tensor-type", `[gguf-write] tensor "${t.name}" has unknown type id ${t.typeId}`);
    }
    const byteSize = ggmlTensorBytes(type.info, t.dims);
    planned.push({ spec: t, name, offset, byteSize });
    offset = Math.ceil((offset + byteSize) / alignment) * alignment;
  }
  return planned;
}

/**
 * Plans a GGUF v3 file without its tensor bytes: the header (validated as `writeGguf` validates it) and each
 * tensor's offset and size, so a writer can stream the data section tensor by tensor. Throws FormatError for
 * any header the reader would reject.
 */
export function layoutGguf(
  metadataInput: GgufMetadata | Iterable<readonly [string, GgufValue]>,
  specs: readonly GgufTensorSpec[],
): GgufLayout {
  const metadata = metadataInput instanceof GgufMetadata ? metadataInput : new GgufMetadata(metadataInput);
  const alignment = ggufAlignment(metadata);
  const archValue = metadata.get("general.architecture");
  const arch = archValue?.type === "string" ? archValue.value : undefined;
  const tensors = planTensors(specs, alignment, arch);
  const w = new ByteWriter(4096);
  w.u32(GGUF_MAGIC);
  w.u32(3);
  w.u64(BigInt(tensors.length));
  w.u64(BigInt(metadata.size));
  for (const [key, value] of metadata.entries()) {
    const keyBytes = encodeString(key, L.MAX_KEY_BYTES, "metadata key");
    w.u64(BigInt(keyBytes.length));
    w.bytes(keyBytes);
    writeValue(w, value, `metadata "${key}"`);
  }
  for (const t of tensors) {
    w.u64(BigInt(t.name.length));
    w.bytes(t.name);
    w.u32(t.spec.dims.length);
    for (const d of t.spec.dims) {
      w.u64(BigInt(d));
    }
    w.u32(t.spec.typeId);
    w.u64(BigInt(t.offset));
  }
  w.pad(alignment);
  const last = tensors.at(-1);
  const dataBytes = last === undefined ? 0 : Math.ceil((last.offset + last.byteSize) / alignment) * alignment;
  const placements = tensors.map((t) => ({ name: t.spec.name, offset: t.offset, byteSize: t.byteSize }));
  return { header: w.finish(), alignment, tensors: placements, dataBytes };
}

/** Encodes a GGUF v3 file. Throws FormatError for any input the reader would reject. */
export function writeGguf(input: GgufWriteInput): Uint8Array {
  const metadata = input.metadata instanceof GgufMetadata ? input.metadata : new GgufMetadata(input.metadata);
  const tensors = input.tensors ?? [];
  const layout = layoutGguf(metadata, tensors);
  tensors.forEach((t, i) => {
    const size = layout.tensors[i]?.byteSize ?? 0;
    if (t.data.length !== size) {
      const arch = metadata.getString("general.architecture");
      const typeName = resolveGgmlType(t.typeId, { architecture: arch })?.info.name ?? String(t.typeId);
      throw bad(`tensor "${t.name}"`, `${t.data.length} bytes given; ${typeName} [${t.dims.join(", ")}] needs ${size}`);
    }
  });
  const w = new ByteWriter(layout.header.length + layout.dataBytes);
  w.bytes(layout.header);
  for (const t of tensors) {
    w.pad(layout.alignment); // lands at the header's end + the tensor's offset: layoutGguf used the same rounding
    w.bytes(t.data);
  }
  w.pad(layout.alignment);
  return w.finish();
}
