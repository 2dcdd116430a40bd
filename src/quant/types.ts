/**
 * Weight storage formats ("block formats") that barbell reads, writes and decodes.
 *
 * Every codec works on a 2-D view of a tensor: `rows` × `cols`, where `cols` is the contiguous
 * dimension (GGUF `ne0`, PyTorch's last dim, a linear layer's in_features) and `rows` is the
 * product of the others. Values are the reference float values the format stands for.
 */
export type QuantName =
  | "f32"
  | "f16"
  | "bf16"
  | "q8_0"
  | "q4_k"
  | "q5_k"
  | "q6_k"
  | "q1_0" // 1-bit binary blocks (mainline ggml id 41): sign bits + one fp16 scale per 128
  | "tq1_0"
  | "tq2_0"
  | "i2_s" // bitnet.cpp: 2-bit codes in 128-weight/32-byte blocks, one trailing f32 scale per tensor
  | "hf_packed"; // Hugging Face BitNet uint8: 4 trits per byte taken from rows r, r+R, r+2R, r+3R

/** The dense-weight lists (DENSE_BLOCK_FORMATS, DENSE_FORMATS) and every other per-dtype list: see ./dtypes.ts. */

export interface QuantTraits {
  readonly name: QuantName;
  /** GGUF tensor type id, or undefined for formats that never appear in GGUF (hf_packed). */
  readonly ggmlType: number | undefined;
  /** Elements per block along `cols` (1 for plain float types). */
  readonly blockSize: number;
  /** Bytes per block (for i2_s: the 32 bytes of one 128-weight block; the tensor adds 32 bytes). */
  readonly blockBytes: number;
  /** Storage bits per weight, ignoring per-tensor trailers. */
  readonly bitsPerWeight: number;
  /** True for formats that can only hold ternary values (times scales). */
  readonly ternary: boolean;
  /**
   * Bytes a rows×cols tensor occupies, or undefined when the shape cannot be stored in this
   * format (cols not a multiple of the block size, zero or non-integer sizes, or a byte count
   * above Number.MAX_SAFE_INTEGER). Safe to call with hostile sizes.
   */
  byteSize(rows: number, cols: number): number | undefined;
  /** Reference decode to float32 values, row-major rows×cols. Throws FormatError on bad bytes. */
  decode(bytes: Uint8Array, rows: number, cols: number): Float32Array;
  /** Reference encode from float32 values (the format's own quantizer, as ggml's `*_ref`). */
  encode(values: Float32Array, rows: number, cols: number): Uint8Array;
}
