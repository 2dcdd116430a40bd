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
export interface GgufTensorInput {
  /** Unique name, ≤ `MAX_TENSOR_NAME_BYTES` UTF-8 bytes. */
  readonly name: string;
  /** GGUF dims, ne0 first; 1 to 4 positive safe integers. */
  readonly dims: readonly number[];
  /** ggml type id (ids 36/38/39 are resolved against `general.architecture`, as the reader does). */
  readonly typeId: number;
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

interface PlannedTensor {
  readonly input: GgufTensorInput;
  readonly name: Uint8Array;
  readonly offset: number;
}

function planTensors(
  tensors: readonly GgufTensorInput[],
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
    const size = ggmlTensorBytes(type.info, t.dims);
    if (t.data.length !== size) {
      throw bad(
        `tensor "${t.name}"`,
        `${t.data.length} bytes given; ${type.info.name} [${t.dims.join(", ")}] needs ${size}`,
      );
    }
    planned.push({ input: t, name, offset });
    offset = Math.ceil((offset + size) / alignment) * alignment;
  }
  return planned;
}

/** Encodes a GGUF v3 file. Throws FormatError for any input the reader would reject. */
export function writeGguf(input: GgufWriteInput): Uint8Array {
  const metadata = input.metadata instanceof GgufMetadata ? input.metadata : new GgufMetadata(input.metadata);
  const alignment = ggufAlignment(metadata);
  const archValue = metadata.get("general.architecture");
  const arch = archValue?.type === "string" ? archValue.value : undefined;
  const tensors = planTensors(input.tensors ?? [], alignment, arch);

  const dataBytes = tensors.reduce((n, t) => Math.max(n, t.offset + t.input.data.length), 0);
  const w = new ByteWriter(4096 + dataBytes);
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
    w.u32(t.input.dims.length);
    for (const d of t.input.dims) {
      w.u64(BigInt(d));
    }
    w.u32(t.input.typeId);
    w.u64(BigInt(t.offset));
  }
  w.pad(alignment);
  for (const t of tensors) {
    w.pad(alignment); // lands at dataStart + t.offset: planTensors used the same rounding
    w.bytes(t.input.data);
  }
  w.pad(alignment);
  return w.finish();
}
