/**
 * Q8_0 (ggml type 8): 32 elements per 34-byte block, 8.5 bits per weight.
 *
 *   offset  0        2                                   34
 *           | d fp16 | qs[0] qs[1] … qs[31]  (int8 each) |
 *   value j = qs[j] · d
 */
import type { QuantTraits } from "../types.js";
import { absMax, fp16BlockFormat, roundHalfAway, writeHalfScale } from "./common.js";

const QK = 32;

/**
 * Q8_0 codec. Encode follows ggml's `quantize_row_q8_0_ref` in float32: d = absmax/127,
 * qs = roundf(x · (1/d)) with ties away from zero (C `roundf`), d stored as fp16 (clamped to
 * ±65504 where ggml would store inf).
 */
export const Q8_0: QuantTraits = fp16BlockFormat({
  name: "q8_0",
  ggmlType: 8,
  blockSize: QK,
  blockBytes: 34,
  scaleAt: 0,
  ternary: false,
  decodeBlock(bytes, at, d, out, y) {
    for (let j = 0; j < QK; j++) {
      // (x << 24) >> 24 sign-extends the byte to int8.
      out[y + j] = (((bytes[at + 2 + j] ?? 0) << 24) >> 24) * d;
    }
  },
  encodeBlock(values, base, out, at) {
    const d = Math.fround(absMax(values, base, base + QK) / 127);
    const id = d === 0 ? 0 : Math.fround(1 / d);
    writeHalfScale(out, at, d);
    for (let j = 0; j < QK; j++) {
      const q = roundHalfAway(Math.fround((values[base + j] ?? 0) * id));
      out[at + 2 + j] = (q > 127 ? 127 : q < -128 ? -128 : q) & 0xff;
    }
  },
});
