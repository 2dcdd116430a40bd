/**
 * hf_packed: Hugging Face BitNet packed uint8 weights (microsoft/bitnet-b1.58-2B-4T), 2 bits per
 * weight, stored as a uint8 tensor of shape [rows/4, cols]. No scale inside (weight_scale is a
 * separate tensor); decode returns the trits as floats.
 *
 *   R = rows / 4; byte [r, c] (at r·cols + c):
 *     bits  7..6           5..4           3..2          1..0
 *           W[3R + r, c]   W[2R + r, c]   W[R + r, c]   W[r, c]
 *   code: 0 → −1, 1 → 0, 2 → +1, 3 → 0 (unused; read as 0 like the bitnet.cpp fork converter)
 *
 * The 4 weights of a byte come from rows r, r+R, r+2R, r+3R of one column, so a "block" is
 * 4 elements down the rows, not along cols.
 */
import type { QuantTraits } from "../types.js";
import { roundHalfEven } from "../values.js";
import { checkDecode, checkEncode, isPositiveSize } from "./common.js";

const VALUE_OF_CODE = new Float32Array([-1, 0, 1, 0]);

function byteSize(rows: number, cols: number): number | undefined {
  if (!isPositiveSize(rows) || !isPositiveSize(cols) || rows % 4 !== 0) {
    return undefined;
  }
  const total = (rows / 4) * cols;
  return Number.isSafeInteger(total) ? total : undefined;
}

function decode(bytes: Uint8Array, rows: number, cols: number): Float32Array {
  const size = checkDecode("hf_packed", byteSize, bytes, rows, cols);
  const out = new Float32Array(rows * cols);
  // Plane i of the packed array is rows iR..iR+R−1 of the result, so output is written in order.
  for (let i = 0; i < 4; i++) {
    const shift = 2 * i;
    const y = i * size;
    for (let k = 0; k < size; k++) {
      out[y + k] = VALUE_OF_CODE[((bytes[k] ?? 0) >> shift) & 3] ?? 0;
    }
  }
  return out;
}

function encode(values: Float32Array, rows: number, cols: number): Uint8Array {
  const size = checkEncode("hf_packed", byteSize, values, rows, cols);
  const out = new Uint8Array(size);
  for (let i = 0; i < 4; i++) {
    const shift = 2 * i;
    const x = i * size;
    for (let k = 0; k < size; k++) {
      const q = roundHalfEven(values[x + k] ?? 0);
      const c = q > 0 ? 2 : q < 0 ? 0 : 1;
      out[k] = (out[k] ?? 0) | (c << shift);
    }
  }
  return out;
}

/**
 * hf_packed codec (never in GGUF, so ggmlType is undefined). rows must be a multiple of 4.
 * Encode takes trits: each value is rounded half to even and clamped to −1..1 (NaN → 0).
 */
export const HF_PACKED: QuantTraits = {
  name: "hf_packed",
  ggmlType: undefined,
  blockSize: 4,
  blockBytes: 1,
  bitsPerWeight: 2,
  ternary: true,
  byteSize,
  decode,
  encode,
};
