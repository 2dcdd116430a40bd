/**
 * TQ1_0 (ggml type 34): 256 elements per 54-byte block, 1.6875 bits per weight.
 *
 *   offset 0                    32                 48        52       54
 *          | qs[0..31]: 5 trits | qs[32..47]: 5    | qh[4]: 4 | d fp16 |
 *   qs[m]      ← elements m + 32n,        n = 0..4   (elements   0..159)
 *   qs[32 + m] ← elements 160 + m + 16n,  n = 0..4   (elements 160..239)
 *   qh[j]      ← elements 240 + j + 4n,   n = 0..3   (elements 240..255; 5th trit is 0)
 *   A byte stores ceil(q · 256 / 243), q = Σ t_n · 3^(4−n), t = trit + 1: a base-3 fraction,
 *   so trit n of byte v is ((v · 3^n) mod 256) · 3 >> 8.
 */
import type { QuantTraits } from "../types.js";
import { absMax, fp16BlockFormat, tritCode, writeHalfScale } from "./common.js";

const QK = 256;
const POW3 = [1, 3, 9, 27, 81] as const;

/** TRITS[5v + n] = trit n (−1, 0 or +1) of byte value v; every byte value decodes. */
const TRITS: Int8Array = (() => {
  const table = new Int8Array(256 * 5);
  for (let v = 0; v < 256; v++) {
    for (let n = 0; n < 5; n++) {
      table[5 * v + n] = ((((v * (POW3[n] ?? 0)) & 0xff) * 3) >> 8) - 1;
    }
  }
  return table;
})();

/** Byte groups of a block: first element, element stride, bytes, trits per byte, byte offset (see the diagram). */
const GROUPS: readonly (readonly [number, number, number, number, number])[] = [
  [0, 32, 32, 5, 0],
  [160, 16, 16, 5, 32],
  [240, 4, 4, 4, 48],
];

/** Stores base-3 digits `q` (0..242) as the byte ceil(q · 256 / 243). */
function packBase3(q: number): number {
  return Math.floor((q * 256 + 242) / 243);
}

/**
 * TQ1_0 ternary codec. Encode follows ggml's `quantize_row_tq1_0_ref`: d = max|x| per block (fp16),
 * trits = lroundf(x/d). For γ·trits input it is lossless up to the fp16 rounding of γ.
 */
export const TQ1_0: QuantTraits = fp16BlockFormat({
  name: "tq1_0",
  ggmlType: 34,
  blockSize: QK,
  blockBytes: 54,
  scaleAt: 52,
  ternary: true,
  decodeBlock(bytes, at, d, out, y) {
    for (let m = 0; m < 32; m++) {
      const t = 5 * (bytes[at + m] ?? 0);
      for (let n = 0; n < 5; n++) {
        out[y + m + 32 * n] = (TRITS[t + n] ?? 0) * d;
      }
    }
    for (let m = 0; m < 16; m++) {
      const t = 5 * (bytes[at + 32 + m] ?? 0);
      for (let n = 0; n < 5; n++) {
        out[y + 160 + m + 16 * n] = (TRITS[t + n] ?? 0) * d;
      }
    }
    for (let j = 0; j < 4; j++) {
      const t = 5 * (bytes[at + 48 + j] ?? 0);
      for (let n = 0; n < 4; n++) {
        out[y + 240 + j + 4 * n] = (TRITS[t + n] ?? 0) * d;
      }
    }
  },
  encodeBlock(values, base, out, at) {
    const d = absMax(values, base, base + QK);
    const id = d === 0 ? 0 : Math.fround(1 / Math.fround(d));
    writeHalfScale(out, at + 52, d);
    for (const [first, stride, count, trits, dst] of GROUPS) {
      for (let m = 0; m < count; m++) {
        let q = 0;
        for (let n = 0; n < trits; n++) {
          q = 3 * q + tritCode(Math.fround((values[base + first + m + stride * n] ?? 0) * id));
        }
        out[at + dst + m] = packBase3(trits === 4 ? 3 * q : q);
      }
    }
  },
});
