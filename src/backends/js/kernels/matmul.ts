/**
 * Reference matrix products of the JS backend, the oracle every other backend is tested against.
 *
 * Shapes, all row-major: activations x [M, K], weights w [N, K] (one row per output feature, as in a
 * linear layer), output [M, N] with out[i, j] = Σ_c x[i, c] · w[j, c]. A matrix-vector product is M = 1;
 * there are no separate matvec kernels.
 *
 * Packed weights and activations use the compute layouts of `quant/layouts.ts`:
 * - "t2" ternary: ceil(K/4) bytes per row, 2-bit code = trit + 1; code 3 decodes to 0 (as `unpackTernary`).
 * - "b1" binary: ceil(K/32) little-endian uint32 words per row, bit set ↔ +1, clear ↔ −1.
 * Padding past K is never treated as data: t2 padding codes are not read and b1 padding bits are masked off,
 * so any padding content gives the same result. (The layout promises zero padding; fast kernels may rely on it.)
 *
 * Integer kernels (`…Acc`) are exact and every backend must match them bit for bit. K is limited to
 * MAX_DOT_K so that |acc| ≤ 128·K fits an int32.
 *
 * Scaled kernels turn the exact accumulator into float32 with IEEE binary32 operations, each rounded to
 * nearest-even, in the order written on each kernel. Every step is a single f32 conversion, division or
 * multiplication of f32 operands, which JS computes exactly in float64 and rounds once with Math.fround,
 * so it equals the correctly rounded f32 operation. Native code matches it bit for bit when it performs the
 * same operations in the same order: no fused multiply-add, no reciprocal-multiply in place of the
 * division, no flush-to-zero of subnormals.
 *
 * All kernels write into a caller-provided `out` / `acc` and allocate nothing. Arrays may be longer than
 * needed; sizes are checked and a short array throws `ShapeError` ("size").
 */
import { ShapeError } from "../../../core/errors.js";
import { binaryRowWords, ternaryRowBytes } from "../../../quant/layouts.js";
import { checkLength, checkSize } from "./check.js";

/** Largest K accepted by the int8 kernels: 128 · MAX_DOT_K < 2^31, so no int32 accumulator can overflow. */
export const MAX_DOT_K = 2 ** 24 - 1;

/** t2 code → trit; code 3 is never written by `packTernary` and decodes to 0, as `unpackTernary` does. */
const TRIT_OF_CODE = Int8Array.of(-1, 0, 1, 0);

function checkDims(op: string, m: number, k: number, n: number): void {
  checkSize(op, "m", m);
  checkSize(op, "k", k);
  checkSize(op, "n", n);
}

/** Dimension checks of the integer kernels, which also bound k so that int32 accumulators cannot overflow. */
function checkIntDims(op: string, m: number, k: number, n: number): void {
  checkDims(op, m, k, n);
  if (k > MAX_DOT_K) {
    throw new ShapeError("size", `[${op}] k = ${k} exceeds MAX_DOT_K = ${MAX_DOT_K}`);
  }
}

/** Number of set bits in the low 32 bits of `v` (SWAR; Math.imul keeps the final sum in int32 arithmetic). */
export function popcount32(v: number): number {
  let x = v >>> 0;
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

/** Mask of the bits of the last b1 word of a row that hold data (all ones when K is a multiple of 32). */
function lastWordMask(k: number): number {
  const used = k & 31;
  return used === 0 ? 0xffffffff : (1 << used) - 1;
}

// ---- Row dot products (exact integers, as JS numbers) ----

function dotTernaryI8(x: Int8Array, xRow: number, w: Uint8Array, wRow: number, k: number): number {
  let sum = 0;
  for (let c = 0; c < k; c++) {
    const code = ((w[wRow + (c >> 2)] ?? 0) >>> ((c & 3) << 1)) & 3;
    sum += (TRIT_OF_CODE[code] ?? 0) * (x[xRow + c] ?? 0);
  }
  return sum;
}

function dotBinaryI8(x: Int8Array, xRow: number, w: Uint32Array, wRow: number, k: number): number {
  let sum = 0;
  for (let c = 0; c < k; c++) {
    const bit = ((w[wRow + (c >> 5)] ?? 0) >>> (c & 31)) & 1;
    const xv = x[xRow + c] ?? 0;
    sum += bit === 1 ? xv : -xv;
  }
  return sum;
}

function dotBinaryBinary(x: Uint32Array, xRow: number, w: Uint32Array, wRow: number, k: number): number {
  const words = binaryRowWords(k);
  let differing = 0;
  for (let t = 0; t < words; t++) {
    const mask = t === words - 1 ? lastWordMask(k) : 0xffffffff;
    differing += popcount32(((x[xRow + t] ?? 0) ^ (w[wRow + t] ?? 0)) & mask);
  }
  // Equal signs contribute +1 and differing signs −1: (K − d) − d.
  return k - 2 * differing;
}

// ---- Float ----

/**
 * Float matrix product out[i, j] = Σ_c x[i, c] · w[j, c].
 * x: [m, k] f32, w: [n, k] f32, out: [m, n] f32.
 *
 * Float semantics: products and the running sum are float64, summed in ascending c, and the sum is rounded
 * to f32 once (Math.fround). Each f32·f32 product is exact in float64, so only the additions round before
 * the final rounding. Fast float backends are expected to match within a tolerance, not bit for bit.
 */
export function matmulF32(x: Float32Array, w: Float32Array, m: number, k: number, n: number, out: Float32Array): void {
  const op = "matmulF32";
  checkDims(op, m, k, n);
  checkLength(op, "x", x, m * k);
  checkLength(op, "w", w, n * k);
  checkLength(op, "out", out, m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let c = 0; c < k; c++) {
        sum += (x[i * k + c] ?? 0) * (w[j * k + c] ?? 0);
      }
      out[i * n + j] = Math.fround(sum);
    }
  }
}

// ---- Ternary weights × int8 activations ----

/**
 * Exact integer product acc[i, j] = Σ_c trit[j, c] · x[i, c].
 * x: [m, k] int8, w: [n, ceil(k/4)] bytes in the t2 layout, acc: [m, n] int32. k ≤ MAX_DOT_K.
 */
export function matmulTernaryI8Acc(
  x: Int8Array,
  w: Uint8Array,
  m: number,
  k: number,
  n: number,
  acc: Int32Array,
): void {
  const op = "matmulTernaryI8Acc";
  checkIntDims(op, m, k, n);
  const rowBytes = ternaryRowBytes(k);
  checkLength(op, "x", x, m * k);
  checkLength(op, "w", w, n * rowBytes);
  checkLength(op, "acc", acc, m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      acc[i * n + j] = dotTernaryI8(x, i * k, w, j * rowBytes, k);
    }
  }
}

/**
 * BitLinear product with ternary weights: out[i, j] ≈ Σ_c (γ·trit[j, c]) · (x_q[i, c] / s_x[i]).
 * x: [m, k] int8 and xScales: [m] f32 as produced by `quantizeActivations` (x ≈ x_q / s_x, so the scale
 * divides); w: [n, ceil(k/4)] t2 bytes; wScale: γ (rounded to f32 once); out: [m, n] f32.
 *
 * Float semantics, in exactly this order, each step one f32 rounding:
 *   out[i, j] = fround( fround( fround(acc[i, j]) / xScales[i] ) * fround(wScale) )
 * with acc the exact integer of `matmulTernaryI8Acc` (fround(acc) is exact while |acc| ≤ 2^24).
 * In C: `((float)acc / s_x) * gamma` with float operands.
 */
export function matmulTernaryI8(
  x: Int8Array,
  xScales: Float32Array,
  w: Uint8Array,
  wScale: number,
  m: number,
  k: number,
  n: number,
  out: Float32Array,
): void {
  const op = "matmulTernaryI8";
  checkIntDims(op, m, k, n);
  const rowBytes = ternaryRowBytes(k);
  checkLength(op, "x", x, m * k);
  checkLength(op, "xScales", xScales, m);
  checkLength(op, "w", w, n * rowBytes);
  checkLength(op, "out", out, m * n);
  const gamma = Math.fround(wScale);
  for (let i = 0; i < m; i++) {
    const sx = xScales[i] ?? 0;
    for (let j = 0; j < n; j++) {
      const acc = dotTernaryI8(x, i * k, w, j * rowBytes, k);
      out[i * n + j] = Math.fround(Math.fround(Math.fround(acc) / sx) * gamma);
    }
  }
}

// ---- Binary weights × int8 activations ----

/**
 * Exact integer product acc[i, j] = Σ_c sign[j, c] · x[i, c] (a sum of ±x).
 * x: [m, k] int8, w: [n, ceil(k/32)] uint32 words in the b1 layout, acc: [m, n] int32. k ≤ MAX_DOT_K.
 */
export function matmulBinaryI8Acc(
  x: Int8Array,
  w: Uint32Array,
  m: number,
  k: number,
  n: number,
  acc: Int32Array,
): void {
  const op = "matmulBinaryI8Acc";
  checkIntDims(op, m, k, n);
  const rowWords = binaryRowWords(k);
  checkLength(op, "x", x, m * k);
  checkLength(op, "w", w, n * rowWords);
  checkLength(op, "acc", acc, m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      acc[i * n + j] = dotBinaryI8(x, i * k, w, j * rowWords, k);
    }
  }
}

/**
 * Binary weights × int8 activations, scaled: out[i, j] ≈ Σ_c (β·sign[j, c]) · (x_q[i, c] / s_x[i]).
 * Same arguments and the same float semantics as `matmulTernaryI8`, with w in the b1 layout and
 * wScale = β (the `signBinarize` scale):
 *   out[i, j] = fround( fround( fround(acc[i, j]) / xScales[i] ) * fround(wScale) )
 */
export function matmulBinaryI8(
  x: Int8Array,
  xScales: Float32Array,
  w: Uint32Array,
  wScale: number,
  m: number,
  k: number,
  n: number,
  out: Float32Array,
): void {
  const op = "matmulBinaryI8";
  checkIntDims(op, m, k, n);
  const rowWords = binaryRowWords(k);
  checkLength(op, "x", x, m * k);
  checkLength(op, "xScales", xScales, m);
  checkLength(op, "w", w, n * rowWords);
  checkLength(op, "out", out, m * n);
  const beta = Math.fround(wScale);
  for (let i = 0; i < m; i++) {
    const sx = xScales[i] ?? 0;
    for (let j = 0; j < n; j++) {
      const acc = dotBinaryI8(x, i * k, w, j * rowWords, k);
      out[i * n + j] = Math.fround(Math.fround(Math.fround(acc) / sx) * beta);
    }
  }
}

// ---- Binary weights × binary activations (XNOR-popcount) ----

/**
 * Exact ±1 dot products by XNOR-popcount: acc[i, j] = Σ_c sx[i, c] · sw[j, c] = K − 2·popcount(x XOR w),
 * summed over the row's words. x: [m, ceil(k/32)] and w: [n, ceil(k/32)] uint32 words in the b1 layout,
 * acc: [m, n] int32. Padding bits are 0 in both operands by the layout, so their XOR is 0 and they cancel;
 * this kernel also masks them off, so that garbage padding cannot change the result.
 */
export function matmulBinaryBinaryAcc(
  x: Uint32Array,
  w: Uint32Array,
  m: number,
  k: number,
  n: number,
  acc: Int32Array,
): void {
  const op = "matmulBinaryBinaryAcc";
  checkIntDims(op, m, k, n);
  const rowWords = binaryRowWords(k);
  checkLength(op, "x", x, m * rowWords);
  checkLength(op, "w", w, n * rowWords);
  checkLength(op, "acc", acc, m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      acc[i * n + j] = dotBinaryBinary(x, i * rowWords, w, j * rowWords, k);
    }
  }
}

/**
 * Binary × binary, scaled: out[i, j] ≈ Σ_c (β_x[i]·sx[i, c]) · (β_w·sw[j, c]).
 * Unlike the int8 kernels, both scales are multipliers (x ≈ β_x · sign, the `signBinarize` convention):
 * xScales: [m] f32 holds β_x per row, wScale is β_w (rounded to f32 once). x, w, m, k, n as in
 * `matmulBinaryBinaryAcc`; out: [m, n] f32.
 *
 * Float semantics, in exactly this order, each step one f32 rounding:
 *   out[i, j] = fround( fround( fround(acc[i, j]) * xScales[i] ) * fround(wScale) )
 * In C: `((float)acc * beta_x) * beta_w` with float operands.
 */
export function matmulBinaryBinary(
  x: Uint32Array,
  xScales: Float32Array,
  w: Uint32Array,
  wScale: number,
  m: number,
  k: number,
  n: number,
  out: Float32Array,
): void {
  const op = "matmulBinaryBinary";
  checkIntDims(op, m, k, n);
  const rowWords = binaryRowWords(k);
  checkLength(op, "x", x, m * rowWords);
  checkLength(op, "xScales", xScales, m);
  checkLength(op, "w", w, n * rowWords);
  checkLength(op, "out", out, m * n);
  const betaW = Math.fround(wScale);
  for (let i = 0; i < m; i++) {
    const betaX = xScales[i] ?? 0;
    for (let j = 0; j < n; j++) {
      const acc = dotBinaryBinary(x, i * rowWords, w, j * rowWords, k);
      out[i * n + j] = Math.fround(Math.fround(Math.fround(acc) * betaX) * betaW);
    }
  }
}
