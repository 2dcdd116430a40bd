/**
 * Binary ("b1") weights: sign bits, ceil(K/32) little-endian u32 words per row, bit (c & 31) of word c >> 5,
 * set ↔ +1, clear ↔ −1. Padding bits past K never count.
 */

/** Sum of the four int32 lanes. */
// @ts-ignore: decorator
@inline function hsum(v: v128): i32 {
  return i32x4.extract_lane(v, 0) + i32x4.extract_lane(v, 1) + i32x4.extract_lane(v, 2) + i32x4.extract_lane(v, 3);
}

/**
 * 16 sign bits → 16 byte masks (0xFF where the bit is set):
 *
 *   word w, splat to all lanes       [b0 b1 b2 b3 | b0 b1 b2 b3 | …]      (bytes of w)
 *   swizzle by [q×8, (q+1)×8]        [bq bq bq bq bq bq bq bq | bq+1 × 8]
 *   and with   [1 2 4 … 128 | 1 2 4 … 128], compare equal → lane l is 0xFF iff bit l of the 16 is set
 */
// @ts-ignore: decorator
@inline function bitMask16(word: v128, sel: v128): v128 {
  const bits = i8x16(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128);
  return i8x16.eq(v128.and(i8x16.swizzle(word, sel), bits), bits);
}

/** Exact Σ_c sign(w_c) · x_c over one row: 2 · Σ_{bit set} x − Σ x. */
function dotBinaryI8(x: usize, w: usize, k: i32): i32 {
  const full = k >> 5;
  const lowSel = i8x16(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  const highSel = i8x16(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  let setAcc = i32x4.splat(0);
  let allAcc = i32x4.splat(0);
  let t = 0;
  while (t < full) {
    // Each i16 lane gains at most 2 · 128 per 16 elements, so 32 words (64 halves) stay below 2^15.
    const end = min(t + 32, full);
    let s16 = i16x8.splat(0);
    let a16 = i16x8.splat(0);
    for (; t < end; t++) {
      const word = v128.load32_splat(w + (<usize>t << 2));
      const p = x + (<usize>t << 5);
      const x0 = v128.load(p);
      const x1 = v128.load(p, 16);
      s16 = i16x8.add(s16, i16x8.extadd_pairwise_i8x16_s(v128.and(x0, bitMask16(word, lowSel))));
      s16 = i16x8.add(s16, i16x8.extadd_pairwise_i8x16_s(v128.and(x1, bitMask16(word, highSel))));
      a16 = i16x8.add(a16, i16x8.extadd_pairwise_i8x16_s(x0));
      a16 = i16x8.add(a16, i16x8.extadd_pairwise_i8x16_s(x1));
    }
    setAcc = i32x4.add(setAcc, i32x4.extadd_pairwise_i16x8_s(s16));
    allAcc = i32x4.add(allAcc, i32x4.extadd_pairwise_i16x8_s(a16));
  }
  let sum = 2 * hsum(setAcc) - hsum(allAcc);
  // The last, partial word, one element at a time.
  for (let c = full << 5; c < k; c++) {
    const bit = (load<u32>(w + (<usize>(c >> 5) << 2)) >> (c & 31)) & 1;
    const v = <i32>load<i8>(x + <usize>c);
    sum += bit != 0 ? v : -v;
  }
  return sum;
}

/** out[m, n] f32 = (x[m, k] i8 · signs(w)[n, k]ᵀ) / xScales[m] · beta, output columns [j0, j1) only. */
export function matmulBinaryI8(
  x: usize,
  xScales: usize,
  w: usize,
  beta: f32,
  m: i32,
  k: i32,
  n: i32,
  out: usize,
  j0: i32,
  j1: i32,
): void {
  const rowBytes = <usize>((k + 31) >> 5) << 2;
  for (let i = 0; i < m; i++) {
    const xr = x + <usize>i * <usize>k;
    const sx = load<f32>(xScales + (<usize>i << 2));
    const o = out + ((<usize>i * <usize>n) << 2);
    for (let j = j0; j < j1; j++) {
      const acc = dotBinaryI8(xr, w + <usize>j * rowBytes, k);
      store<f32>(o + (<usize>j << 2), (<f32>acc / sx) * beta);
    }
  }
}

/** Number of differing sign bits of two b1 rows (padding bits masked off). */
function differing(a: usize, b: usize, k: i32): i32 {
  const full = k >> 5;
  const groups = full >> 2;
  let total = i32x4.splat(0);
  let g = 0;
  while (g < groups) {
    // Each u8 lane gains at most 8 per group: 31 groups stay below 256.
    const end = min(g + 31, groups);
    let c8 = i8x16.splat(0);
    for (; g < end; g++) {
      const off = <usize>g << 4;
      c8 = i8x16.add(c8, i8x16.popcnt(v128.xor(v128.load(a + off), v128.load(b + off))));
    }
    total = i32x4.add(total, i32x4.extadd_pairwise_i16x8_u(i16x8.extadd_pairwise_i8x16_u(c8)));
  }
  let d = hsum(total);
  for (let t = groups << 2; t < full; t++) {
    d += popcnt<i32>(load<i32>(a + (<usize>t << 2)) ^ load<i32>(b + (<usize>t << 2)));
  }
  const used = k & 31;
  if (used != 0) {
    const mask = (1 << used) - 1;
    d += popcnt<i32>((load<i32>(a + (<usize>full << 2)) ^ load<i32>(b + (<usize>full << 2))) & mask);
  }
  return d;
}

/** out[m, n] i32 = signs(x)[m, k] · signs(w)[n, k]ᵀ = K − 2 · popcount(x XOR w), output columns [j0, j1) only. */
export function matmulBinaryBinary(x: usize, w: usize, m: i32, k: i32, n: i32, out: usize, j0: i32, j1: i32): void {
  const rowBytes = <usize>((k + 31) >> 5) << 2;
  for (let i = 0; i < m; i++) {
    const xr = x + <usize>i * rowBytes;
    const o = out + ((<usize>i * <usize>n) << 2);
    for (let j = j0; j < j1; j++) {
      store<i32>(o + (<usize>j << 2), k - 2 * differing(xr, w + <usize>j * rowBytes, k));
    }
  }
}
