/**
 * The affine k-quants, Q4_K (ggml type 12) and Q5_K (type 13): 256 elements per super-block, eight
 * sub-blocks of 32, each with a 6-bit scale and a 6-bit min relative to the block's fp16 `d` and `dmin`.
 *
 *   Q4_K, 144 bytes:  | d fp16 | dmin fp16 | scales[12] | qs[128]            |
 *   Q5_K, 176 bytes:  | d fp16 | dmin fp16 | scales[12] | qh[32] | qs[128]   |
 *   offset             0        2           4            16       16 or 48
 *
 *   scales[12] packs sc[j], m[j] (j = 0..7, 6 bits each) as ggml's get_scale_min_k4:
 *     j < 4:  sc = scales[j] & 63                            m = scales[j + 4] & 63
 *     j ≥ 4:  sc = scales[j + 4] & 0xF | (scales[j − 4] >> 6) << 4
 *             m  = scales[j + 4] >> 4  | (scales[j]     >> 6) << 4
 *   Chunk c (0..3) of 64 elements uses qs[32c .. 32c + 31]: element 64c + l ← low nibble of qs[32c + l]
 *   (sub-block 2c), element 64c + 32 + l ← high nibble (sub-block 2c + 1). Q5_K adds a fifth bit:
 *   bit 2c of qh[l] for the low nibble's element, bit 2c + 1 for the high nibble's.
 *   value = (d · sc) · q − (dmin · m)
 *
 * d · sc and dmin · m are exact in float32 (11 × 6 bits), and so is (d · sc) · q (≤ 22 bits), so the one
 * rounding is the subtraction's: the float64 computation rounded to float32 gives ggml's float bits, and a
 * native fused multiply-subtract gives them too.
 */
import type { QuantTraits } from "../types.js";
import { roundHalfEven } from "../values.js";
import { blockedByteSize, checkDecode, checkEncode, checkHalfScale, readHalf, readHalfBits, writeHalfScale } from "./common.js";

const QK = 256;
const SCALES = 4;

/** What differs between Q4_K and Q5_K. */
interface AffineKSpec {
  readonly name: "q4_k" | "q5_k";
  readonly ggmlType: number;
  /** Bits per code: 4 (Q4_K) or 5 (Q5_K, whose fifth bits are the 32-byte qh before qs). */
  readonly bits: 4 | 5;
}

/** Scale and min (6 bits each) of sub-block j from the 12 packed bytes at `at` (ggml's get_scale_min_k4). */
export function scaleMinK4(bytes: Uint8Array, at: number, j: number): [number, number] {
  const b = (i: number): number => bytes[at + i] ?? 0;
  if (j < 4) {
    return [b(j) & 63, b(j + 4) & 63];
  }
  return [(b(j + 4) & 0xf) | ((b(j - 4) >> 6) << 4), (b(j + 4) >> 4) | ((b(j) >> 6) << 4)];
}

/** Packs eight 6-bit scales and mins into 12 bytes at `at` (the inverse of {@link scaleMinK4}). */
function packScaleMin(out: Uint8Array, at: number, sc: Uint8Array, mn: Uint8Array): void {
  for (let j = 0; j < 8; j++) {
    const ls = sc[j] ?? 0;
    const lm = mn[j] ?? 0;
    if (j < 4) {
      out[at + j] = (out[at + j] ?? 0) | ls;
      out[at + j + 4] = (out[at + j + 4] ?? 0) | lm;
    } else {
      out[at + j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
      out[at + j - 4] = (out[at + j - 4] ?? 0) | ((ls >> 4) << 6);
      out[at + j] = (out[at + j] ?? 0) | ((lm >> 4) << 6);
    }
  }
}

/** The codec of one affine k-quant. */
export function affineKFormat(spec: AffineKSpec): QuantTraits {
  const { name, bits } = spec;
  const qhAt = 16;
  const qsAt = bits === 5 ? 48 : 16;
  const blockBytes = qsAt + 128;
  const top = (1 << bits) - 1;
  const byteSize = (rows: number, cols: number): number | undefined => blockedByteSize(rows, cols, QK, blockBytes);

  const decode = (bytes: Uint8Array, rows: number, cols: number): Float32Array => {
    checkDecode(name, byteSize, bytes, rows, cols);
    const out = new Float32Array(rows * cols);
    const blocks = out.length / QK;
    for (let b = 0; b < blocks; b++) {
      const at = b * blockBytes;
      checkHalfScale(name, readHalfBits(bytes, at), b);
      checkHalfScale(name, readHalfBits(bytes, at + 2), b);
      const d = readHalf(bytes, at);
      const dmin = readHalf(bytes, at + 2);
      for (let c = 0; c < 4; c++) {
        const [sc1, m1] = scaleMinK4(bytes, at + SCALES, 2 * c);
        const [sc2, m2] = scaleMinK4(bytes, at + SCALES, 2 * c + 1);
        const d1 = d * sc1;
        const d2 = d * sc2;
        const o1 = dmin * m1;
        const o2 = dmin * m2;
        const y = b * QK + 64 * c;
        for (let l = 0; l < 32; l++) {
          const q = bytes[at + qsAt + 32 * c + l] ?? 0;
          const h = bits === 5 ? (bytes[at + qhAt + l] ?? 0) >> (2 * c) : 0;
          out[y + l] = d1 * ((q & 0xf) | ((h & 1) << 4)) - o1;
          out[y + 32 + l] = d2 * ((q >> 4) | ((h & 2) << 3)) - o2;
        }
      }
    }
    return out;
  };

  const encode = (values: Float32Array, rows: number, cols: number): Uint8Array => {
    const out = new Uint8Array(checkEncode(name, byteSize, values, rows, cols));
    const blocks = values.length / QK;
    const offs = new Float64Array(8);
    const steps = new Float64Array(8);
    const sc = new Uint8Array(8);
    const mn = new Uint8Array(8);
    for (let b = 0; b < blocks; b++) {
      const base = b * QK;
      const at = b * blockBytes;
      // Per sub-block: the offset to subtract (−min, never negative, as ggml); NaN is skipped throughout.
      let maxOff = 0;
      for (let j = 0; j < 8; j++) {
        let lo = 0;
        for (let i = base + 32 * j; i < base + 32 * j + 32; i++) {
          const x = values[i] ?? 0;
          lo = x < lo ? x : lo;
        }
        offs[j] = -lo;
        maxOff = -lo > maxOff ? -lo : maxOff;
      }
      const dmin = writeHalfScale(out, at + 2, maxOff / 63);
      // Offsets rounded up, so the stored −min is never above the sub-block's smallest value.
      let maxStep = 0;
      for (let j = 0; j < 8; j++) {
        const m = dmin === 0 ? 0 : Math.min(63, Math.ceil((offs[j] ?? 0) / dmin));
        mn[j] = m;
        let hi = 0;
        for (let i = base + 32 * j; i < base + 32 * j + 32; i++) {
          const v = (values[i] ?? 0) + dmin * m;
          hi = v > hi ? v : hi; // NaN is skipped (it encodes as code 0)
        }
        steps[j] = hi / top;
        maxStep = hi / top > maxStep ? hi / top : maxStep;
      }
      const d = writeHalfScale(out, at, maxStep / 63);
      for (let j = 0; j < 8; j++) {
        // Scales rounded up, so the codes reach the sub-block's max without clipping.
        sc[j] = d === 0 ? 0 : Math.min(63, Math.ceil((steps[j] ?? 0) / d));
      }
      packScaleMin(out, at + SCALES, sc, mn);
      for (let j = 0; j < 8; j++) {
        const step = d * (sc[j] ?? 0);
        const off = dmin * (mn[j] ?? 0);
        const c = j >> 1;
        const high = (j & 1) === 1;
        for (let l = 0; l < 32; l++) {
          const x = values[base + 32 * j + l] ?? 0;
          const r = step === 0 ? 0 : roundHalfEven((x + off) / step);
          const q = r > top ? top : r < 0 ? 0 : r;
          const qs = at + qsAt + 32 * c + l;
          out[qs] = (out[qs] ?? 0) | ((q & 0xf) << (high ? 4 : 0));
          if (bits === 5 && q > 15) {
            out[at + qhAt + l] = (out[at + qhAt + l] ?? 0) | (1 << (2 * c + (high ? 1 : 0)));
          }
        }
      }
    }
    return out;
  };

  return {
    name,
    ggmlType: spec.ggmlType,
    blockSize: QK,
    blockBytes,
    bitsPerWeight: (8 * blockBytes) / QK,
    ternary: false,
    byteSize,
    decode,
    encode,
  };
}
