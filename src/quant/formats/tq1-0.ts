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
const BLOCK_BYTES = 54;
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

function byteSize(rows: number, cols: number): number | undefined {
  return blockedByteSize(rows, cols, QK, BLOCK_BYTES);
}

/** Stores base-3 digits `q` (0..242) as the byte ceil(q · 256 / 243). */
function packBase3(q: number): number {
  return Math.floor((q * 256 + 242) / 243);
}

function decode(bytes: Uint8Array, rows: number, cols: number): Float32Array {
  checkDecode("tq1_0", byteSize, bytes, rows, cols);
  const out = new Float32Array(rows * cols);
  const blocks = out.length / QK;
  for (let b = 0; b < blocks; b++) {
    const at = b * BLOCK_BYTES;
    checkHalfScale("tq1_0", readHalfBits(bytes, at + 52), b);
    const d = readHalf(bytes, at + 52);
    const y = b * QK;
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
  }
  return out;
}

function encode(values: Float32Array, rows: number, cols: number): Uint8Array {
  const size = checkEncode("tq1_0", byteSize, values, rows, cols);
  const out = new Uint8Array(size);
  const blocks = values.length / QK;
  for (let b = 0; b < blocks; b++) {
    const base = b * QK;
    const at = b * BLOCK_BYTES;
    const d = absMax(values, base, base + QK);
    const id = d === 0 ? 0 : Math.fround(1 / Math.fround(d));
    writeHalfScale(out, at + 52, d);
    for (let m = 0; m < 32; m++) {
      let q = 0;
      for (let n = 0; n < 5; n++) {
        q = 3 * q + tritCode(Math.fround((values[base + m + 32 * n] ?? 0) * id));
      }
      out[at + m] = packBase3(q);
    }
    for (let m = 0; m < 16; m++) {
      let q = 0;
      for (let n = 0; n < 5; n++) {
        q = 3 * q + tritCode(Math.fround((values[base + 160 + m + 16 * n] ?? 0) * id));
      }
      out[at + 32 + m] = packBase3(q);
    }
    for (let j = 0; j < 4; j++) {
      let q = 0;
      for (let n = 0; n < 4; n++) {
        q = 3 * q + tritCode(Math.fround((values[base + 240 + j + 4 * n] ?? 0) * id));
      }
      out[at + 48 + j] = packBase3(3 * q);
    }
  }
  return out;
}

/**
 * TQ1_0 ternary codec. Encode follows ggml's `quantize_row_tq1_0_ref`: d = max|x| per block (fp16),
 * trits = lroundf(x/d). For γ·trits input it is lossless up to the fp16 rounding of γ.
 */
export const TQ1_0: QuantTraits = {
  name: "tq1_0",
  ggmlType: 34,
  blockSize: QK,
  blockBytes: BLOCK_BYTES,
  bitsPerWeight: (8 * BLOCK_BYTES) / QK,
  ternary: true,
  byteSize,
  decode,
  encode,
};
