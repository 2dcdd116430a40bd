/**
 * Q1_0 (mainline ggml type 41): 128 elements per 18-byte block, 1.125 bits per weight.
 *
 *   offset 0        2                             18
 *          | d fp16 | qs[16]: sign bits           |
 *   element j ← bit (j & 7) of qs[j >> 3] (LSB first);  1 → +d, 0 → −d
 *   d = mean |x| over the block
 */
import type { QuantTraits } from "../types.js";
import { fp16BlockFormat, writeHalfScale } from "./common.js";

const QK = 128;

/**
 * Q1_0 binary codec. Encode follows mainline's `quantize_row_q1_0_ref`: d = Σ|x|/128 in float32,
 * bit set where x ≥ 0 (so 0 and −0 encode as +d).
 */
export const Q1_0: QuantTraits = fp16BlockFormat({
  name: "q1_0",
  ggmlType: 41,
  blockSize: QK,
  blockBytes: 18,
  scaleAt: 0,
  ternary: false,
  decodeBlock(bytes, at, d, out, y) {
    for (let k = 0; k < 16; k++) {
      const bits = bytes[at + 2 + k] ?? 0;
      const base = y + 8 * k;
      for (let i = 0; i < 8; i++) {
        out[base + i] = ((bits >> i) & 1) === 1 ? d : -d;
      }
    }
  },
  encodeBlock(values, base, out, at) {
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
  },
});
