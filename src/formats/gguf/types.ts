/**
 * GGUF data model: metadata value types as they appear on the wire, the metadata value union, tensor infos
 * and the parsed header. Spec: ggml `docs/gguf.md` @d99724f2 (docs/BITNET.md §3.1).
 *
 * Every value keeps its wire type, so writing a parsed file back produces the same bytes (a u32 stays a u32,
 * a u64 stays a u64 even when small). Integers of 64 bits are `bigint`; all narrower numbers are `number`.
 */
import type { GgufMetadata } from "./metadata.js";

/** Metadata value type codes (`gguf_type`), as stored in the u32 before each value. */
export const GGUF_VALUE_TYPE = {
  u8: 0,
  i8: 1,
  u16: 2,
  i16: 3,
  u32: 4,
  i32: 5,
  f32: 6,
  bool: 7,
  string: 8,
  array: 9,
  u64: 10,
  i64: 11,
  f64: 12,
} as const;

/** Name of a metadata value type (`u8` … `f64`, `string`, `array`). */
export type GgufValueTypeName = keyof typeof GGUF_VALUE_TYPE;

/** Value types whose values are JS numbers: integers up to 32 bits and both floats. */
export type GgufNumberTypeName = "u8" | "i8" | "u16" | "i16" | "u32" | "i32" | "f32" | "f64";

/** Value types whose values are bigints: the 64-bit integers. */
export type GgufBigIntTypeName = "u64" | "i64";

/** A numeric scalar up to 32 bits or a float. f32 values are float32-representable after a read. */
export interface GgufNumberValue {
  readonly type: GgufNumberTypeName;
  readonly value: number;
}

/** A 64-bit integer scalar, kept exact as a bigint (u64 in [0, 2^64), i64 in [−2^63, 2^63)). */
export interface GgufBigIntValue {
  readonly type: GgufBigIntTypeName;
  readonly value: bigint;
}

/** A bool: one byte on the wire, 0 or 1 (any other byte is rejected). */
export interface GgufBoolValue {
  readonly type: "bool";
  readonly value: boolean;
}

/** A UTF-8 string (u64 byte length + bytes, no terminator). */
export interface GgufStringValue {
  readonly type: "string";
  readonly value: string;
}

/**
 * An array: element type (u32), count (u64), then the elements. All elements share `itemType`; when that is
 * `array`, each inner array carries its own item type (nesting is bounded by `MAX_ARRAY_DEPTH`).
 */
export type GgufArrayValue =
  | { readonly type: "array"; readonly itemType: GgufNumberTypeName; readonly items: readonly number[] }
  | { readonly type: "array"; readonly itemType: GgufBigIntTypeName; readonly items: readonly bigint[] }
  | { readonly type: "array"; readonly itemType: "bool"; readonly items: readonly boolean[] }
  | { readonly type: "array"; readonly itemType: "string"; readonly items: readonly string[] }
  | { readonly type: "array"; readonly itemType: "array"; readonly items: readonly GgufArrayValue[] };

/** Any metadata value, tagged with its wire type. */
export type GgufValue = GgufNumberValue | GgufBigIntValue | GgufBoolValue | GgufStringValue | GgufArrayValue;

/** One tensor info from the header. Sizes and offsets are checked to be safe integers inside the file. */
export interface GgufTensorInfo {
  /** Tensor name (≤ `MAX_TENSOR_NAME_BYTES` UTF-8 bytes), unique in the file. */
  readonly name: string;
  /** Dimensions in GGUF order: ne0 (the contiguous one) first; 1 to 4 entries, each ≥ 1. */
  readonly dims: readonly number[];
  /** ggml type id as stored. */
  readonly typeId: number;
  /** Lower-case ggml type name after resolving forks (`f32`, `q6_k`, `i2_s`, `tl2`, `mxfp4` …). */
  readonly typeName: string;
  /**
   * Present for ids whose meaning depends on the producer (36, 38, 39): which meaning the reader took and why,
   * e.g. `id 39 read as bitnet.cpp TL2 because of architecture "bitnet-b1.58"`.
   */
  readonly typeInterpretation?: string;
  /** Product of dims. */
  readonly elementCount: number;
  /** Offset of the first byte, relative to the start of the data section (a multiple of the alignment). */
  readonly offset: number;
  /** Bytes the tensor occupies, from the type's size rule. */
  readonly byteSize: number;
}

/** What the header parser found; tensor data is not read. */
export interface GgufHeader {
  /** Format version: 2 or 3 (identical layouts with u64 counts; v1 is rejected). */
  readonly version: 2 | 3;
  /** Metadata in file order. */
  readonly metadata: GgufMetadata;
  /** Tensor infos in file order. */
  readonly tensors: readonly GgufTensorInfo[];
  /** Data alignment in bytes (`general.alignment`, default 32). */
  readonly alignment: number;
  /** Bytes of magic, counts, KVs and tensor infos (the header without its trailing padding). */
  readonly headerBytes: number;
  /** Absolute file offset of the data section: `headerBytes` rounded up to `alignment`. */
  readonly dataOffset: number;
  /** Size of the whole file in bytes. */
  readonly fileSize: number;
}
