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
import type { QuantTraits } from "../types.js";
import { FormatError } from "../../core/errors.js";
import {
  absMax,
  blockedByteSize,
  checkDecode,
  checkEncode,
  checkHalfScale,
  readHalf,
  readHalfBits,
  tritCode,
  writeHalfScale,
} from "./common.js";

const QK = 256;
const BLOCK_BYTES = 66;

function byteSize(rows: number, cols: number): number | undefined {
  return blockedByteSize(rows, cols, QK, BLOCK_BYTES);
}

/**
 * TQ2_0 ternary codec. Encode follows ggml's `quantize_row_tq2_0_ref`: d = max|x| per block
 * (fp16), code = lroundf(x/d) + 1. For γ·trits input it is lossless up to the fp16 rounding of γ.
 */
export const TQ2_0: QuantTraits = {
  name: "tq2_0",
  ggmlType: 35,
  blockSize: QK,
  blockBytes: BLOCK_BYTES,
  bitsPerWeight: (8 * BLOCK_BYTES) / QK,
  ternary: true,
  byteSize,
  decode(bytes, rows, cols) {
    checkDecode("tq2_0", byteSize, bytes, rows, cols);
    const out = new Float32Array(rows * cols);
    const blocks = out.length / QK;
    for (let b = 0; b < blocks; b++) {
      const at = b * BLOCK_BYTES;
      checkHalfScale("tq2_0", readHalfBits(bytes, at + 64), b);
      const d = readHalf(bytes, at + 64);
      for (let k = 0; k < 64; k++) {
        const q = bytes[at + k] ?? 0;
        if ((q & (q >> 1) & 0x55) !== 0) {
          throw new FormatError("bad-block", `[quant:tq2_0] block ${b} byte ${k} holds the unused code 3`);
        }
        const y = b * QK + 128 * (k >> 5) + (k & 31);
        out[y] = ((q & 3) - 1) * d;
        out[y + 32] = (((q >> 2) & 3) - 1) * d;
        out[y + 64] = (((q >> 4) & 3) - 1) * d;
        out[y + 96] = ((q >> 6) - 1) * d;
      }
    }
    return out;
  },
  encode(values, rows, cols) {
    const size = checkEncode("tq2_0", byteSize, values, rows, cols);
    const out = new Uint8Array(size);
    const blocks = values.length / QK;
    for (let b = 0; b < blocks; b++) {
      const base = b * QK;
      const at = b * BLOCK_BYTES;
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
    }
    return out;
  },
};
