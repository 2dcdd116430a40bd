/**
 * Q8_0 (ggml type 8): 32 elements per 34-byte block, 8.5 bits per weight.
 *
 *   offset  0        2                                   34
 *           | d fp16 | qs[0] qs[1] … qs[31]  (int8 each) |
 *   value j = qs[j] · d
 */
import type { QuantTraits } from "../types.js";
import {
  absMax,
  blockedByteSize,
  checkDecode,
  checkEncode,
  checkHalfScale,
  readHalf,
  readHalfBits,
  roundHalfAway,
  writeHalfScale,
} from "./common.js";

const QK = 32;
const BLOCK_BYTES = 34;

function byteSize(rows: number, cols: number): number | undefined {
  return blockedByteSize(rows, cols, QK, BLOCK_BYTES);
}

/**
 * Q8_0 codec. Encode follows ggml's `quantize_row_q8_0_ref` in float32: d = absmax/127,
 * qs = roundf(x · (1/d)) with ties away from zero (C `roundf`), d stored as fp16 (clamped to
 * ±65504 where ggml would store inf).
 */
export const Q8_0: QuantTraits = {
  name: "q8_0",
  ggmlType: 8,
  blockSize: QK,
  blockBytes: BLOCK_BYTES,
  bitsPerWeight: (8 * BLOCK_BYTES) / QK,
  ternary: false,
  byteSize,
  decode(bytes, rows, cols) {
    checkDecode("q8_0", byteSize, bytes, rows, cols);
    const out = new Float32Array(rows * cols);
    const blocks = out.length / QK;
    for (let b = 0; b < blocks; b++) {
      const at = b * BLOCK_BYTES;
      checkHalfScale("q8_0", readHalfBits(bytes, at), b);
      const d = readHalf(bytes, at);
      const base = b * QK;
      for (let j = 0; j < QK; j++) {
        // (x << 24) >> 24 sign-extends the byte to int8.
        out[base + j] = (((bytes[at + 2 + j] ?? 0) << 24) >> 24) * d;
      }
    }
    return out;
  },
  encode(values, rows, cols) {
    const size = checkEncode("q8_0", byteSize, values, rows, cols);
    const out = new Uint8Array(size);
    const blocks = values.length / QK;
    for (let b = 0; b < blocks; b++) {
      const base = b * QK;
      const at = b * BLOCK_BYTES;
      const d = Math.fround(absMax(values, base, base + QK) / 127);
      const id = d === 0 ? 0 : Math.fround(1 / d);
      writeHalfScale(out, at, d);
      for (let j = 0; j < QK; j++) {
        const q = roundHalfAway(Math.fround((values[base + j] ?? 0) * id));
        out[at + 2 + j] = (q > 127 ? 127 : q < -128 ? -128 : q) & 0xff;
      }
    }
    return out;
  },
};
