/**
 * safetensors data model: dtypes with their sizes, tensor infos and the parsed header.
 * Format: 8-byte little-endian u64 N, N bytes of UTF-8 JSON, then the byte buffer (huggingface/safetensors).
 */

/** Bits per element of each dtype the reference implementation knows (sub-byte float types included). */
export const SAFETENSORS_DTYPE_BITS = {
  BOOL: 8,
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
  U8: 8,
  I8: 8,
  F8_E5M2: 8,
  F8_E4M3: 8,
  F8_E8M0: 8,
  I16: 16,
  U16: 16,
  F16: 16,
  BF16: 16,
  I32: 32,
  U32: 32,
  F32: 32,
  C64: 64,
  F64: 64,
  I64: 64,
  U64: 64,
} as const;

/** A safetensors dtype name as written in the header (`F32`, `BF16`, `U8` …). */
export type SafetensorsDtype = keyof typeof SAFETENSORS_DTYPE_BITS;

/** True when `s` names a known dtype. */
export function isSafetensorsDtype(s: string): s is SafetensorsDtype {
  return Object.hasOwn(SAFETENSORS_DTYPE_BITS, s);
}

/**
 * One tensor entry of a header, checked: known dtype, shape of safe integers, byte count consistent with
 * dtype × shape, and its bytes inside the file without overlapping or leaving gaps to its neighbours.
 */
export interface SafetensorsTensorInfo {
  /** Tensor name (the JSON key), unique in the file, ≤ `MAX_TENSOR_NAME_BYTES` UTF-8 bytes. */
  readonly name: string;
  /** Element type. */
  readonly dtype: SafetensorsDtype;
  /** Shape in PyTorch order (last dim contiguous); `[]` is a scalar; dims may be 0. */
  readonly shape: readonly number[];
  /** Product of `shape` (1 for a scalar). */
  readonly elementCount: number;
  /** `data_offsets[0]`: first byte, relative to the start of the byte buffer. */
  readonly begin: number;
  /** `data_offsets[1]`: one past the last byte, relative to the start of the byte buffer. */
  readonly end: number;
  /** `end − begin`, equal to elementCount × dtype bits / 8. */
  readonly byteSize: number;
}

/** What the header parser found; no tensor data is read. */
export interface SafetensorsHeader {
  /** Tensors in header (JSON) order. */
  readonly tensors: readonly SafetensorsTensorInfo[];
  /** `__metadata__` (string → string), empty when absent. Keys in header order. */
  readonly metadata: ReadonlyMap<string, string>;
  /** N: bytes of JSON header (including any trailing padding spaces). */
  readonly headerBytes: number;
  /** Absolute file offset of the byte buffer: 8 + N. */
  readonly dataOffset: number;
  /** Size of the whole file: exactly 8 + N + the byte buffer. */
  readonly fileSize: number;
}

/** Optional byte range inside one tensor's data. */
export interface SafetensorsDataRange {
  /** First byte, relative to the tensor's start. Default 0. */
  readonly offset?: number;
  /** Number of bytes. Default: to the end of the tensor. */
  readonly length?: number;
}

/** Read access to a set of named tensors: one file or several shards. Close it (or `await using` it). */
export interface SafetensorsTensorStore extends AsyncDisposable {
  /** Every tensor, in file order (shard by shard for a sharded checkpoint). */
  readonly tensors: readonly SafetensorsTensorInfo[];
  /** The info of the named tensor, or undefined. */
  tensor(name: string): SafetensorsTensorInfo | undefined;
  /**
   * Reads a tensor's bytes (or a slice of them). A missing name is FormatError `bad-value`; a range outside the
   * tensor is ShapeError `bounds`; a source that returns fewer bytes is FormatError `truncated`.
   */
  tensorData(tensor: string | SafetensorsTensorInfo, range?: SafetensorsDataRange): Promise<Uint8Array>;
  /** Releases file handles; later reads throw. Idempotent. */
  close(): Promise<void>;
}
