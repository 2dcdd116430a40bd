/**
 * Q1_0 (mainline ggml type 41): 128 elements per 18-byte block, 1.125 bits per weight.
 *
 *   offset 0        2                             18
 *          | d fp16 | qs[16]: sign bits           |
 *   element j ← bit (j & 7) of qs[j >> 3] (LSB first);  1 → +d, 0 → −d
 *   d = mean |x| over the block
 */
import type { QuantTraits } from "../types.js";
import {
  blockedByteSize,
  checkDecode,
  checkEncode,
  checkHalfScale,
  readHalf,
  readHalfBits,
  writeHalfScale,
} from "./common.js";

const QK = 128;
const BLOCK_BYTES = 18;

function byteSize(rows: number, cols: number): number | undefined {
  return blockedByteSize(rows, cols, QK, BLOCK_BYTES);
}

/**
 * Q1_0 binary codec. Encode follows mainline's `quantize_row_q1_0_ref`: d = Σ|x|/128 in float32,
 * bit set where x ≥ 0 (so 0 and −0 encode as +d).
 */
export const Q1_0: QuantTraits = {
  name: "q1_0",
  ggmlType: 41,
  blockSize: QK,
  blockBytes: BLOCK_BYTES,
  bitsPerWeight: (8 * BLOCK_BYTES) / QK,
  ternary: false,
  byteSize,
  decode(bytes, rows, cols) {
    checkDecode("q1_0", byteSize, bytes, rows, cols);
    const out = new Float32Array(rows * cols);
    const blocks = out.length / QK;
    for (let b = 0; b < blocks; b++) {
      const at = b * BLOCK_BYTES;
      checkHalfScale("q1_0", readHalfBits(bytes, at), b);
      const d = readHalf(bytes, at);
      const y = b * QK;
      for (let k = 0; k < 16; k++) {
        const bits = bytes[at + 2 + k] ?? 0;
        const base = y + 8 * k;
        for (let i = 0; i < 8; i++) {
          out[base + i] = ((bits >> i) & 1) === 1 ? d : -d;
        }
      }
    }
    return out;
  },
  encode(values, rows, cols) {
    const size = checkEncode("q1_0", byteSize, values, rows, cols);
    const out = new Uint8Array(size);
    const blocks = values.length / QK;
    for (let b = 0; b < blocks; b++) {
      const base = b * QK;
      const at = b * BLOCK_BYTES;
      let sum = 0;
      for (let j = 0; j < QK; j++) {
        sum = Math.fround(sum + Math.abs(values[base + j] ?? 0));
      }
      writeHalfScale(out, at, Math.fround(sum / QK));
      for (let k = 0; k < 16; k++) {
        let bits = 0;
        for (let i = 0; i < 8; i++) {
          if ((values[base + 8 * k + i] ?? 0) >= 0) {
            bits |= 1 << i;
          }
        }
        out[at + 2 + k] = bits;
      }
    }
    return out;
  },
};
