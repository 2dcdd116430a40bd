/**
 * TQ2_0 (ggml type 35): 256 elements per 66-byte block, 2.0625 bits per weight.
 *
 *   offset 0                          64       66
 *          | qs[64]: 2-bit codes      | d fp16 |
 *   qs[32h + m], h ∈ {0,1}, m ∈ 0..31:
 *     bits  7..6        5..4        3..2        1..0
 *           128h+m+96   128h+m+64   128h+m+32   128h+m
 *   code = trit + 1 (0 → −d, 1 → 0, 2 → +d; 3 is never written and is rejected)
 */
import { FormatError } from "../../core/errors.js";
import type { QuantTraits } from "../types.js";
import { absMax, fp16BlockFormat, tritCode, writeHalfScale } from "./common.js";

const QK = 256;

/**
 * TQ2_0 ternary codec. Encode follows ggml's `quantize_row_tq2_0_ref`: d = max|x| per block
 * (fp16), code = lroundf(x/d) + 1. For γ·trits input it is lossless up to the fp16 rounding of γ.
 */
export const TQ2_0: QuantTraits = fp16BlockFormat({
  name: "tq2_0",
  ggmlType: 35,
  blockSize: QK,
  blockBytes: 66,
  scaleAt: 64,
  ternary: true,
  decodeBlock(bytes, at, d, out, y0, b) {
    for (let k = 0; k < 64; k++) {
      const q = bytes[at + k] ?? 0;
      if ((q & (q >> 1) & 0x55) !== 0) {
        throw new FormatError("bad-block", `[quant:tq2_0] block ${b} byte ${k} holds the unused code 3`);
      }
      const y = y0 + 128 * (k >> 5) + (k & 31);
      out[y] = ((q & 3) - 1) * d;
      out[y + 32] = (((q >> 2) & 3) - 1) * d;
      out[y + 64] = (((q >> 4) & 3) - 1) * d;
      out[y + 96] = ((q >> 6) - 1) * d;
    }
  },
  encodeBlock(values, base, out, at) {
    const d = absMax(values, base, base + QK);
    const id = d === 0 ? 0 : Math.fround(1 / Math.fround(d));
    writeHalfScale(out, at + 64, d);
    for (let k = 0; k < 64; k++) {
      const x = base + 128 * (k >> 5) + (k & 31);
      out[at + k] =
        tritCode(Math.fround((values[x] ?? 0) * id)) |
        (tritCode(Math.fround((values[x + 32] ?? 0) * id)) << 2) |
        (tritCode(Math.fround((values[x + 64] ?? 0) * id)) << 4) |
        (tritCode(Math.fround((values[x + 96] ?? 0) * id)) << 6);
    }
  },
});
