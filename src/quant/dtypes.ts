/**
 * The one dtype table: every element type barbell stores, reads from a file or sends on the wire, with its traits.
 * The lists and types elsewhere derive from it: the backend contract's `StorageDType`, `DenseBlockDType` and
 * `DenseDType`, the op table's operand lists, matmul/embedding/`matmulQ8I8` checks, the GGUF source's accepted
 * formats, the BAREWire dtype list and its payload sizes and alignment, storage sizes. Layout facts (GGUF type id,
 * block size, bytes per block) are the codec's ({@link QUANT_TRAITS}), read through `codec`, never copied.
 *
 * Adding a format: its codec in src/quant/formats and table.ts, one row here (and, for the wire, a `DType` value in
 * schema/barewire.bare with the regenerated codec); the kernels that run it declare it in their capabilities.
 */
import { QUANT_TRAITS } from "./table.js";
import type { QuantName, QuantTraits } from "./types.js";

/**
 * What an element stands for at run time:
 * - "float": plain f32; "int": i8/i32 integers;
 * - "dense-block": float weights kept in a file block format, decoded by the kernels on the fly (f16 … q6_k);
 * - "ternary": trits times a scale (the runtime's packed `ternary`, and the file formats i2_s, tq1_0, tq2_0,
 *   hf_packed); "binary": signs times a scale (the runtime's `binary`, the file format q1_0).
 */
export type DTypeKind = "float" | "int" | "dense-block" | "ternary" | "binary";

/** The traits of one dtype. */
export interface DTypeTraits {
  readonly kind: DTypeKind;
  /** A backend storage dtype (`TensorRef.dtype`); false for file-only formats that are converted at load. */
  readonly storage: boolean;
  /** Value of the BAREWire `DType` enum (schema/barewire.bare), or undefined when it has none. Never renumber. */
  readonly wire: number | undefined;
  /** Bytes per element of the typed array the bytes are viewed as (f32/i32/binary words 4, f16/bf16 2, else 1). */
  readonly elementBytes: 1 | 2 | 4;
  /** A weight format of the integer output head (`matmulQ8I8`: per-block int8 activations, exact int sums). */
  readonly integerHead: boolean;
}

/** The table, in the order the derived lists keep (f32 first, then the dense block formats as DENSE_FORMATS lists them). */
const TABLE = {
  f32: { kind: "float", storage: true, wire: 0, elementBytes: 4, integerHead: false },
  f16: { kind: "dense-block", storage: true, wire: 1, elementBytes: 2, integerHead: false },
  bf16: { kind: "dense-block", storage: true, wire: 2, elementBytes: 2, integerHead: false },
  q8_0: { kind: "dense-block", storage: true, wire: 7, elementBytes: 1, integerHead: true },
  q4_k: { kind: "dense-block", storage: true, wire: 13, elementBytes: 1, integerHead: true },
  q5_k: { kind: "dense-block", storage: true, wire: 14, elementBytes: 1, integerHead: true },
  q6_k: { kind: "dense-block", storage: true, wire: 8, elementBytes: 1, integerHead: true },
  i8: { kind: "int", storage: true, wire: 3, elementBytes: 1, integerHead: false },
  i32: { kind: "int", storage: true, wire: 4, elementBytes: 4, integerHead: false },
  ternary: { kind: "ternary", storage: true, wire: 5, elementBytes: 1, integerHead: false },
  binary: { kind: "binary", storage: true, wire: 6, elementBytes: 4, integerHead: false },
  i2_s: { kind: "ternary", storage: false, wire: 9, elementBytes: 1, integerHead: false },
  tq1_0: { kind: "ternary", storage: false, wire: 10, elementBytes: 1, integerHead: false },
  tq2_0: { kind: "ternary", storage: false, wire: 11, elementBytes: 1, integerHead: false },
  q1_0: { kind: "binary", storage: false, wire: 12, elementBytes: 1, integerHead: false },
  hf_packed: { kind: "ternary", storage: false, wire: undefined, elementBytes: 1, integerHead: false },
} as const satisfies Record<string, DTypeTraits>;

type Table = typeof TABLE;
/** Every dtype barbell knows. */
export type DTypeName = keyof Table;
/** The dtype names whose traits match `P`. */
type Where<P> = { [K in DTypeName]: Table[K] extends P ? K : never }[DTypeName];

/** Backend storage dtypes (`StorageDType` in backends/backend.ts). */
export type StorageDTypeName = Where<{ readonly storage: true }>;
/** Block formats kept as stored for embeddings and output heads (f16, bf16, q8_0, q4_k, q5_k, q6_k). */
export type DenseBlockFormat = Where<{ readonly kind: "dense-block" }>;
/** Weight formats a dense (float) matmul and an embedding lookup accept: f32 and the block formats. */
export type DenseFormat = "f32" | DenseBlockFormat;
/** Weight formats of the integer output head (`matmulQ8I8`). */
export type IntegerHeadFormat = Where<{ readonly integerHead: true }>;
/** Dtypes with a BAREWire `DType` value. */
export type WireDTypeName = Exclude<DTypeName, Where<{ readonly wire: undefined }>>;

const NAMES = Object.keys(TABLE) as DTypeName[];

/** Names in table order whose traits pass `test`. */
function namesWhere<N extends DTypeName>(test: (t: DTypeTraits, name: DTypeName) => boolean): readonly N[] {
  return NAMES.filter((n): n is N => test(TABLE[n], n));
}

/** Is `name` a dtype of the table? */
export function isDTypeName(name: string): name is DTypeName {
  return Object.hasOwn(TABLE, name);
}

/** The traits of a dtype, with its codec (layout facts, reference decode/encode) where barbell has one. */
export function dtypeTraits(name: DTypeName): DTypeTraits & { readonly name: DTypeName; readonly codec: QuantTraits | undefined } {
  return { ...TABLE[name], name, codec: Object.hasOwn(QUANT_TRAITS, name) ? QUANT_TRAITS[name as QuantName] : undefined };
}

/** Backend storage dtypes, in table order. */
export const STORAGE_DTYPES: readonly StorageDTypeName[] = namesWhere((t) => t.storage);

/** The dense block formats (kept as stored, decoded on the fly by the kernels), in table order. */
export const DENSE_BLOCK_FORMATS: readonly DenseBlockFormat[] = namesWhere((t) => t.kind === "dense-block");

/** f32 and the dense block formats: what `matmulDense` and `embedding` accept. */
export const DENSE_FORMATS: readonly DenseFormat[] = ["f32", ...DENSE_BLOCK_FORMATS];

/**
 * Element types of a KV cache (src/model/bitnet/kv-cache.ts) and so of attention's k and v operands: f32, and
 * llama.cpp's `-ctk/-ctv` f16 and q8_0 (blocks of 32 along the head dim).
 */
export const KV_CACHE_DTYPES = ["f32", "f16", "q8_0"] as const satisfies readonly StorageDTypeName[];
export type KvCacheDType = (typeof KV_CACHE_DTYPES)[number];

/** Weight formats of the integer output head (`matmulQ8I8`), in table order. */
export const INTEGER_HEAD_FORMATS: readonly IntegerHeadFormat[] = namesWhere((t) => t.integerHead);

/**
 * Formats a BitNet projection may be stored in a GGUF file: the ternary file formats with a GGUF type id and the
 * float formats of one element per block (f32, f16, bf16), which are ternarized at load.
 */
export const GGUF_PROJECTION_FORMATS: readonly QuantName[] = namesWhere<QuantName>((t, n) => {
  const codec = dtypeTraits(n).codec;
  return codec?.ggmlType !== undefined && (t.kind === "ternary" || ((t.kind === "float" || t.kind === "dense-block") && codec.blockSize === 1));
});

/** The BAREWire dtypes, index = wire value (the order of the schema's `DType` enum). */
export const WIRE_DTYPE_ORDER: readonly WireDTypeName[] = [
  ...namesWhere<WireDTypeName>((t) => t.wire !== undefined),
].sort((a, b) => (TABLE[a].wire ?? 0) - (TABLE[b].wire ?? 0));

/** Is `name` a dense block format (DENSE_BLOCK_FORMATS)? */
export function isDenseBlockFormat(name: string): name is DenseBlockFormat {
  return isDTypeName(name) && TABLE[name].kind === "dense-block";
}

/** Is `name` f32 or a dense block format (DENSE_FORMATS)? */
export function isDenseFormat(name: string): name is DenseFormat {
  return name === "f32" || isDenseBlockFormat(name);
}

/** Is `name` a weight format of the integer output head (INTEGER_HEAD_FORMATS)? */
export function isIntegerHeadFormat(name: string): name is IntegerHeadFormat {
  return isDTypeName(name) && TABLE[name].integerHead;
}

/** Is `name` a backend storage dtype? */
export function isStorageDTypeName(name: string): name is StorageDTypeName {
  return isDTypeName(name) && TABLE[name].storage;
}

/** Bytes per element of the typed array a dtype's bytes are viewed as. */
export function dtypeElementBytes(name: DTypeName): 1 | 2 | 4 {
  return TABLE[name].elementBytes;
}

/** The kind of a dtype's elements. */
export function dtypeKind(name: DTypeName): DTypeKind {
  return TABLE[name].kind;
}
