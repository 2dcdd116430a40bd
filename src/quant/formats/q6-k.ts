/**
 * Q6_K (ggml type 14): 256 elements per 210-byte block, 6.5625 bits per weight.
 *
 *   offset 0            128          192              208      210
 *          | ql[128]    | qh[64]     | scales[16] i8  | d fp16 |
 *
 *   Half n (0, 1) covers elements 128n..128n+127 and uses ql[64n..], qh[32n..], scales[8n..].
 *   For l in 0..31 of a half:           low 4 bits             high 2 bits      scale
 *     element l      ← ql[l]      & 0xF  | qh[l] bits 1..0   scales[l/16]
 *     element l + 32 ← ql[l + 32] & 0xF  | qh[l] bits 3..2   scales[l/16 + 2]
 *     element l + 64 ← ql[l]      >> 4   | qh[l] bits 5..4   scales[l/16 + 4]
 *     element l + 96 ← ql[l + 32] >> 4   | qh[l] bits 7..6   scales[l/16 + 6]
 *   value = d · scale · (q6 − 32), q6 = low | high << 4
 */
import type { QuantTraits } from "../types.js";
import { roundHalfEven } from "../values.js";
import {
  blockedByteSize,
  checkDecode,
  checkEncode,
  checkHalfScale,
  readHalf,
  readHalfBits,
  writeHalfScale,
} from "./common.js";

const QK = 256;
const BLOCK_BYTES = 210;
const QH = 128;
const SCALES = 192;
const D = 208;

function byteSize(rows: number, cols: number): number | undefined {
  return blockedByteSize(rows, cols, QK, BLOCK_BYTES);
}

function int8(b: number): number {
  return (b << 24) >> 24;
}

function decode(bytes: Uint8Array, rows: number, cols: number): Float32Array {
  checkDecode("q6_k", byteSize, bytes, rows, cols);
  const out = new Float32Array(rows * cols);
  const blocks = out.length / QK;
  for (let b = 0; b < blocks; b++) {
    const at = b * BLOCK_BYTES;
    checkHalfScale("q6_k", readHalfBits(bytes, at + D), b);
    const d = readHalf(bytes, at + D);
    for (let n = 0; n < 2; n++) {
      const ql = at + 64 * n;
      const qh = at + QH + 32 * n;
      const sc = at + SCALES + 8 * n;
      const y = b * QK + 128 * n;
      for (let l = 0; l < 32; l++) {
        const is = sc + (l >> 4);
        const lo = bytes[ql + l] ?? 0;
        const hi = bytes[ql + l + 32] ?? 0;
        const h = bytes[qh + l] ?? 0;
        // d · scale is exact in float32 (11 × 8 bits), so the single rounding on store matches ggml's float math.
        out[y + l] = d * int8(bytes[is] ?? 0) * (((lo & 0xf) | ((h & 3) << 4)) - 32);
        out[y + l + 32] = d * int8(bytes[is + 2] ?? 0) * (((hi & 0xf) | (((h >> 2) & 3) << 4)) - 32);
        out[y + l + 64] = d * int8(bytes[is + 4] ?? 0) * (((lo >> 4) | (((h >> 4) & 3) << 4)) - 32);
        out[y + l + 96] = d * int8(bytes[is + 6] ?? 0) * (((hi >> 4) | (((h >> 6) & 3) << 4)) - 32);
      }
    }
  }
  return out;
}

/**
 * The candidate inverse scales −(32 + 0.1k)/max that fitSubBlock tries. Five of ggml's nineteen (k = −9..9): on
 * Gaussian and Laplace weights the fit's error is within 0.1 % of all nineteen's, at a quarter of the work, which
 * is what lets a float head be requantized to Q6_K on first use (native/cpu/q6k_encode.inc: the same candidates
 * and arithmetic, so the same bytes).
 */
export const Q6K_CANDIDATES: readonly number[] = [-9, -4, 0, 4, 9];

/**
 * Least-squares scale for 16 values on the grid −32..31: tries the Q6K_CANDIDATES inverse scales around
 * "largest-magnitude value ↦ −32", keeps the first one whose fitted scale leaves the smallest residual,
 * and never goes below the scale at which a value would clip.
 */
function fitSubBlock(values: Float32Array, from: number): number {
  let amax = 0;
  let max = 0;
  for (let i = from; i < from + 16; i++) {
    const x = values[i] ?? 0;
    if (Math.abs(x) > amax) {
      amax = Math.abs(x);
      max = x;
    }
  }
  if (amax < 1e-30) {
    return 0;
  }
  // Smallest |scale| that keeps every value on the grid: max ↦ ≥ −32, opposite-signed values ↦ ≤ 31.
  let opposite = 0;
  for (let i = from; i < from + 16; i++) {
    const x = values[i] ?? 0;
    if (x * max < 0 && Math.abs(x) > opposite) {
      opposite = Math.abs(x);
    }
  }
  const floor = Math.max(amax / 32, opposite / 31);
  let best = 0;
  let bestGain = -1;
  for (const k of Q6K_CANDIDATES) {
    const iscale = -(32 + 0.1 * k) / max;
    let sumXL = 0;
    let sumLL = 0;
    for (let i = from; i < from + 16; i++) {
      const x = values[i] ?? 0;
      const q = roundHalfEven(iscale * x);
      const l = q > 31 ? 31 : q < -32 ? -32 : q;
      sumXL += x * l;
      sumLL += l * l;
    }
    // Residual = Σx² − (Σxl)²/Σl², so the best candidate maximizes (Σxl)²/Σl².
    const gain = sumLL > 0 ? (sumXL * sumXL) / sumLL : 0;
    if (gain > bestGain) {
      bestGain = gain;
      best = sumLL > 0 ? sumXL / sumLL : 0;
    }
  }
  // The scale is negative when max is positive (max ↦ −32); clipping is never chosen over a larger scale.
  return Math.abs(best) >= floor ? best : max > 0 ? -floor : floor;
}

function encode(values: Float32Array, rows: number, cols: number): Uint8Array {
  const size = checkEncode("q6_k", byteSize, values, rows, cols);
  const out = new Uint8Array(size);
  const blocks = values.length / QK;
  const codes = new Uint8Array(QK);
  const sub = new Float64Array(16);
  for (let b = 0; b < blocks; b++) {
    const base = b * QK;
    const at = b * BLOCK_BYTES;
    let maxScale = 0;
    for (let j = 0; j < 16; j++) {
      const s = fitSubBlock(values, base + 16 * j);
      sub[j] = s;
      maxScale = Math.max(maxScale, Math.abs(s));
    }
    // Sub-scales use the symmetric range −127..127: mapping the largest to −128 (as ggml) would clip
    // an opposite-signed one of equal size at +127 and push its values past the 6-bit grid.
    const d = writeHalfScale(out, at + D, maxScale / 127);
    const id = d === 0 ? 0 : 1 / d;
    for (let j = 0; j < 16; j++) {
      // Rounded away from zero so the real step d·scale is never smaller than the fitted one (no clipping).
      const r = id * (sub[j] ?? 0);
      const q = r < 0 ? -Math.ceil(-r) : Math.ceil(r);
      const sc = q > 127 ? 127 : q < -127 ? -127 : q;
      out[at + SCALES + j] = sc & 0xff;
      // Re-quantize against the scale the decoder will really use (fp16 d times int8 scale).
      const e = d * sc;
      for (let i = 0; i < 16; i++) {
        const x = values[base + 16 * j + i] ?? 0;
        const l = e === 0 ? 0 : roundHalfEven(x / e);
        codes[16 * j + i] = (l > 31 ? 31 : l < -32 ? -32 : l) + 32;
      }
    }
    for (let n = 0; n < 2; n++) {
      for (let l = 0; l < 32; l++) {
        const c = 128 * n + l;
        const q1 = codes[c] ?? 32;
        const q2 = codes[c + 32] ?? 32;
        const q3 = codes[c + 64] ?? 32;
        const q4 = codes[c + 96] ?? 32;
        out[at + 64 * n + l] = (q1 & 0xf) | ((q3 & 0xf) << 4);
        out[at + 64 * n + l + 32] = (q2 & 0xf) | ((q4 & 0xf) << 4);
        out[at + QH + 32 * n + l] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6);
      }
    }
  }
  return out;
}

/**
 * Q6_K codec. Decode matches ggml's `dequantize_row_q6_K` bit for bit. Encode is barbell's own
 * quantizer (least-squares per-16 scales, int8 scales in −127..127 relative to one fp16 d); it is close to
 * ggml's `quantize_row_q6_K_ref` in error but not byte-identical.
 */
export const Q6_K: QuantTraits = {
  name: "q6_k",
  ggmlType: 14,
  blockSize: QK,
  blockBytes: BLOCK_BYTES,
  bitsPerWeight: (8 * BLOCK_BYTES) / QK,
  ternary: false,
  byteSize,
  decode,
  encode,
};
