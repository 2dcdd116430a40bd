/**
 * The integer k-quant head: out[M,N] = x[M,K] · w[N,K]ᵀ with w in Q4_K, Q5_K or Q6_K and x quantized per
 * 256-element block (one k-quant super-block), so that every product is an integer one, as llama.cpp computes
 * a k-quant matmul against Q8_K activations. This is the reference every backend must meet exactly.
 *
 * Activations: each block of 256 is quantized like one row of BitNet's per-token quantizer (the Q8_0 head's
 * quantizer, `quantizeActivations`: s = fround(127 / fround(max(absmax, 1e-5))), q = clamp(roundHalfEven(fround(x·s)))),
 * inv = fround(1 / s), and bsum[j] = Σ q over each 16-element sub-block j (0..15).
 *
 * Weights, per super-block: codes u (unsigned, in element order: Q4_K 0..15, Q5_K 0..31, Q6_K 0..63) and per
 * 16-element sub-block j a scale sc[j] and an offset multiplier mn[j]:
 *   Q4_K / Q5_K: sc[j] = sc₆(j / 2), mn[j] = m₆(j / 2) (the 6-bit scale and min of the 32-element sub-block),
 *                value = (d · sc) · u − (dmin · mn)
 *   Q6_K:        sc[j] = scales[j] (int8), mn[j] = 32 · sc[j], value = d · sc · (u − 32)
 * With A = Σ_j sc[j] · Σ_{e ∈ j} u_e · q_e and B = Σ_j mn[j] · bsum[j] (exact integers, |A|, |B| < 2³¹):
 *   Q6_K:        t = fround(fround(inv · d) · fround(A − B))
 *   Q4_K / Q5_K: t = fround(fround(fround(inv · d) · fround(A)) − fround(fround(inv · dmin) · fround(B)))
 * and per output acc = 0; acc = fround(acc + t) over the blocks in order. Each step is one IEEE float32
 * operation (or an int32 → float32 conversion), so native kernels match bit for bit.
 */
import { ShapeError } from "../../../core/errors.js";
import { halfToF32 } from "../../../quant/half.js";
import { scaleMinK4 } from "../../../quant/formats/k-affine.js";
import { quantizeActivations } from "../../../quant/values.js";

/** The weight formats of the integer k-quant head. */
export type KHeadFormat = "q4_k" | "q5_k" | "q6_k";

/** Elements per block of the integer k-quant head's activations (one k-quant super-block). */
export const K_BLOCK = 256;
/** Elements per sub-block sum of the activations. */
export const K_SUB = 16;

/** Bytes per block of each format. */
export const K_BLOCK_BYTES: Readonly<Record<KHeadFormat, number>> = { q4_k: 144, q5_k: 176, q6_k: 210 };

/** The integer view of one weight block: codes in element order, per-16 scales and offset multipliers, d and dmin. */
export interface KBlockCodes {
  readonly u: Uint8Array;
  readonly sc: Int32Array;
  readonly mn: Int32Array;
  d: number;
  dmin: number;
}

/** A reusable {@link KBlockCodes}. */
export function kBlockCodes(): KBlockCodes {
  return { u: new Uint8Array(K_BLOCK), sc: new Int32Array(K_BLOCK / K_SUB), mn: new Int32Array(K_BLOCK / K_SUB), d: 0, dmin: 0 };
}

const half = (w: Uint8Array, at: number): number => halfToF32((w[at] ?? 0) | ((w[at + 1] ?? 0) << 8));

/** Unpacks the block of `format` at byte `at` of `w` into `out` (layouts: src/quant/formats/k-affine.ts, q6-k.ts). */
export function unpackKBlock(format: KHeadFormat, w: Uint8Array, at: number, out: KBlockCodes): void {
  const { u, sc, mn } = out;
  if (format === "q6_k") {
    out.d = half(w, at + 208);
    out.dmin = 0;
    for (let n = 0; n < 2; n++) {
      const ql = at + 64 * n;
      const qh = at + 128 + 32 * n;
      for (let l = 0; l < 32; l++) {
        const lo = w[ql + l] ?? 0;
        const hi = w[ql + l + 32] ?? 0;
        const h = w[qh + l] ?? 0;
        const y = 128 * n + l;
        u[y] = (lo & 0xf) | ((h & 3) << 4);
        u[y + 32] = (hi & 0xf) | (((h >> 2) & 3) << 4);
        u[y + 64] = (lo >> 4) | (((h >> 4) & 3) << 4);
        u[y + 96] = (hi >> 4) | (((h >> 6) & 3) << 4);
      }
    }
    for (let j = 0; j < 16; j++) {
      sc[j] = ((w[at + 192 + j] ?? 0) << 24) >> 24;
      mn[j] = 32 * (sc[j] ?? 0);
    }
    return;
  }
  out.d = half(w, at);
  out.dmin = half(w, at + 2);
  const five = format === "q5_k";
  const qs = at + (five ? 48 : 16);
  for (let c = 0; c < 4; c++) {
    for (let l = 0; l < 32; l++) {
      const q = w[qs + 32 * c + l] ?? 0;
      const h = five ? (w[at + 16 + l] ?? 0) >> (2 * c) : 0;
      u[64 * c + l] = (q & 0xf) | ((h & 1) << 4);
      u[64 * c + 32 + l] = (q >> 4) | ((h & 2) << 3);
    }
  }
  for (let j = 0; j < 8; j++) {
    const [s, m] = scaleMinK4(w, at + 4, j);
    sc[2 * j] = s;
    sc[2 * j + 1] = s;
    mn[2 * j] = m;
    mn[2 * j + 1] = m;
  }
}

/** Activations quantized for the integer k-quant head: int8 values, inv = fround(1 / s) per block, Σ q per 16. */
export interface KActivations {
  readonly q: Int8Array;
  readonly inv: Float32Array;
  readonly bsum: Int32Array;
}

/**
 * Quantizes x[M,K] per 256-element block (K a multiple of 256).
 * @throws ValueError code "non-finite" for a NaN or infinite x.
 */
export function quantizeKActivations(x: Float32Array, rows: number): KActivations {
  const quantized = quantizeActivations(x, rows, K_BLOCK);
  if (!quantized.ok) {
    throw quantized.error;
  }
  const { values: q, scales } = quantized.value;
  const bsum = new Int32Array(rows * (K_BLOCK / K_SUB));
  for (let j = 0; j < bsum.length; j++) {
    let s = 0;
    for (let e = j * K_SUB; e < (j + 1) * K_SUB; e++) {
      s += q[e] ?? 0;
    }
    bsum[j] = s;
  }
  return { q, inv: scales.map((s) => Math.fround(1 / s)), bsum };
}

/** The contribution t of one weight block to one output (the formula above), from its integer sums A and B. */
export function kBlockTerm(format: KHeadFormat, inv: number, d: number, dmin: number, a: number, b: number): number {
  if (format === "q6_k") {
    return Math.fround(Math.fround(inv * d) * Math.fround(a - b));
  }
  return Math.fround(Math.fround(Math.fround(inv * d) * Math.fround(a)) - Math.fround(Math.fround(inv * dmin) * Math.fround(b)));
}

/**
 * The integer k-quant head (module comment): out[M,N] = x[M,K] · w[N,K]ᵀ, K a multiple of 256.
 * @throws ShapeError for a K that is not a multiple of 256 or operands too small; ValueError for non-finite x.
 */
export function matmulKI8(
  x: Float32Array,
  format: KHeadFormat,
  w: Uint8Array,
  m: number,
  k: number,
  n: number,
  out: Float32Array,
): void {
  const op = `matmulQ8I8 ${format}`;
  if (k % K_BLOCK !== 0) {
    throw new ShapeError("size", `[${op}] k = ${k} is not a multiple of ${K_BLOCK}`);
  }
  const blocks = k / K_BLOCK;
  const blockBytes = K_BLOCK_BYTES[format];
  const rowBytes = blocks * blockBytes;
  if (x.length < m * k || w.length < n * rowBytes || out.length < m * n) {
    throw new ShapeError("size", `[${op}] operands too small for [${m}, ${k}] · [${n}, ${k}]ᵀ`);
  }
  const { q, inv, bsum } = quantizeKActivations(x.subarray(0, m * k), m * blocks);
  const subs = K_BLOCK / K_SUB;
  const codes = kBlockCodes();
  const acc = new Float32Array(m);
  for (let j = 0; j < n; j++) {
    acc.fill(0);
    for (let b = 0; b < blocks; b++) {
      unpackKBlock(format, w, j * rowBytes + b * blockBytes, codes);
      const { u, sc, mn, d, dmin } = codes;
      for (let i = 0; i < m; i++) {
        const xb = i * blocks + b;
        let a = 0;
        let bs = 0;
        for (let s = 0; s < subs; s++) {
          let dot = 0;
          for (let e = s * K_SUB; e < (s + 1) * K_SUB; e++) {
            dot += (u[e] ?? 0) * (q[xb * K_BLOCK + e] ?? 0);
          }
          a += (sc[s] ?? 0) * dot;
          bs += (mn[s] ?? 0) * (bsum[xb * subs + s] ?? 0);
        }
        acc[i] = Math.fround((acc[i] ?? 0) + kBlockTerm(format, inv[xb] ?? 0, d, dmin, a, bs));
      }
    }
    for (let i = 0; i < m; i++) {
      out[i * n + j] = acc[i] ?? 0;
    }
  }
}
