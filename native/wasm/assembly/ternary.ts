/**
 * Ternary weights × int8 activations, the decode hot path of a BitNet b1.58 model.
 *
 * Weights are in the "t2" layout: 2-bit code = trit + 1, element c of a row in byte c>>2 at bits 2*(c&3),
 * ceil(K/4) bytes per row. The result is the exact int32 dot product, then
 *   out = f32(f32(acc) / xScale) * gamma          (f32 division, then f32 multiplication; no fused ops)
 *
 * How a 16-byte block of weights (64 trits) is used:
 *
 *   bytes  B0        B1        …  B15             (16 bytes of one weight row)
 *   B_i =  [c3 c2 c1 c0]  codes of elements 4i+3, 4i+2, 4i+1, 4i+0 (bits 7..6 … 1..0)
 *
 *   plane s (s = 0..3) = (block >> 2s) & 3  → 16 lanes holding the codes of elements 4i+s, i = 0..15
 *   trit lanes          = swizzle(LUT, plane) with LUT = [-1, 0, +1, 0]   (code 3, never written, is 0)
 *
 * So plane s holds elements s, 4+s, 8+s, …, 60+s. Instead of reordering the weights, the activation row is
 * permuted once per call into the same order ("x planes"): for each 64-element block,
 *
 *   xp[64b + 16s + i] = x[64b + 4i + s]      (zero past K)
 *
 * and each plane is multiplied lane by lane with its x plane (i16x8.extmul, products fit int16) and summed in
 * int16 accumulators, which are widened to int32 (i32x4.extadd_pairwise) every FLUSH blocks before they
 * could overflow. Bytes of a row past its last whole 16-byte block are handled one element at a time.
 */

/** Blocks summed in int16 before widening: each i16 lane gains at most 4 · 128 per block, 16 · 512 < 2^15. */
const FLUSH: i32 = 16;

/** Rows of x sharing one unpacking of the weights (prefill). */
const TILE: i32 = 4;

// @ts-ignore: decorator
@inline function tritLut(): v128 {
  return i8x16(-1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
}

/** Trit of a t2 code, as the scalar tail needs it. */
// @ts-ignore: decorator
@inline function tritOf(code: i32): i32 {
  return code == 0 ? -1 : code == 2 ? 1 : 0;
}

/** Sum of the four int32 lanes. */
// @ts-ignore: decorator
@inline function hsum(v: v128): i32 {
  return i32x4.extract_lane(v, 0) + i32x4.extract_lane(v, 1) + i32x4.extract_lane(v, 2) + i32x4.extract_lane(v, 3);
}

/** Writes x row [0, k) into the plane order above, `blocks` blocks of 64 bytes, zero past k. */
function permuteRow(x: usize, k: i32, blocks: i32, dst: usize): void {
  memory.fill(dst, 0, <usize>blocks << 6);
  const limit = min(k, blocks << 6);
  for (let c = 0; c < limit; c++) {
    const r = c & 63;
    store<i8>(dst + <usize>(c & ~63) + <usize>((r & 3) << 4) + <usize>(r >> 2), load<i8>(x + <usize>c));
  }
}

/** Σ x[c] for c < count. */
function blockSum(x: usize, count: i32): i32 {
  let sum = 0;
  for (let c = 0; c < count; c++) {
    sum += <i32>load<i8>(x + <usize>c);
  }
  return sum;
}

/** Exact dot product of the scalar tail: elements [from, k) of the row. */
function tailDot(w: usize, x: usize, from: i32, k: i32): i32 {
  let sum = 0;
  for (let c = from; c < k; c++) {
    const code = (<i32>load<u8>(w + <usize>(c >> 2)) >> ((c & 3) << 1)) & 3;
    sum += tritOf(code) * <i32>load<i8>(x + <usize>c);
  }
  return sum;
}

/** Dot products of `blocks` whole blocks of weight row w with one permuted x row. */
function dot1(w: usize, blocks: i32, xp: usize): i32 {
  const lut = tritLut();
  const m3 = i8x16.splat(3);
  let acc = i32x4.splat(0);
  let b = 0;
  while (b < blocks) {
    const end = min(b + FLUSH, blocks);
    let a0 = i16x8.splat(0);
    let a1 = i16x8.splat(0);
    for (; b < end; b++) {
      const v = v128.load(w + (<usize>b << 4));
      // i16 shifts are cheaper than i8 shifts; bits crossing into the next byte are masked off by & 3.
      const t0 = i8x16.swizzle(lut, v128.and(v, m3));
      const t1 = i8x16.swizzle(lut, v128.and(i16x8.shr_u(v, 2), m3));
      const t2 = i8x16.swizzle(lut, v128.and(i16x8.shr_u(v, 4), m3));
      const t3 = i8x16.swizzle(lut, v128.and(i16x8.shr_u(v, 6), m3));
      const p = xp + (<usize>b << 6);
      const x0 = v128.load(p);
      const x1 = v128.load(p, 16);
      const x2 = v128.load(p, 32);
      const x3 = v128.load(p, 48);
      a0 = i16x8.add(a0, i16x8.extmul_low_i8x16_s(t0, x0));
      a1 = i16x8.add(a1, i16x8.extmul_high_i8x16_s(t0, x0));
      a0 = i16x8.add(a0, i16x8.extmul_low_i8x16_s(t1, x1));
      a1 = i16x8.add(a1, i16x8.extmul_high_i8x16_s(t1, x1));
      a0 = i16x8.add(a0, i16x8.extmul_low_i8x16_s(t2, x2));
      a1 = i16x8.add(a1, i16x8.extmul_high_i8x16_s(t2, x2));
      a0 = i16x8.add(a0, i16x8.extmul_low_i8x16_s(t3, x3));
      a1 = i16x8.add(a1, i16x8.extmul_high_i8x16_s(t3, x3));
    }
    acc = i32x4.add(acc, i32x4.extadd_pairwise_i16x8_s(a0));
    acc = i32x4.add(acc, i32x4.extadd_pairwise_i16x8_s(a1));
  }
  return hsum(acc);
}

/**
 * Σ code · x over `blocks` whole blocks of weight row w with one permuted x row, codes taken as unsigned
 * 0..2 (the caller subtracts Σ x). Also returns, in `flags`, the OR of (block & block >> 1): a bit 0 of a
 * 2-bit field set there means a code 3, which the caller must then treat exactly (slow path).
 */
function codeDot1(w: usize, blocks: i32, xp: usize, flags: usize): i32 {
  const m3 = i8x16.splat(3);
  let acc = i32x4.splat(0);
  let three = i8x16.splat(0);
  let b = 0;
  while (b < blocks) {
    const end = min(b + FLUSH, blocks);
    let a0 = i16x8.splat(0);
    let a1 = i16x8.splat(0);
    for (; b < end; b++) {
      const v = v128.load(w + (<usize>b << 4));
      three = v128.or(three, v128.and(v, i16x8.shr_u(v, 1)));
      // i16 shifts are cheaper than i8 shifts; bits crossing into the next byte are masked off by & 3.
      const t0 = v128.and(v, m3);
      const t1 = v128.and(i16x8.shr_u(v, 2), m3);
      const t2 = v128.and(i16x8.shr_u(v, 4), m3);
      const t3 = v128.and(i16x8.shr_u(v, 6), m3);
      const p = xp + (<usize>b << 6);
      const x0 = v128.load(p);
      const x1 = v128.load(p, 16);
      const x2 = v128.load(p, 32);
      const x3 = v128.load(p, 48);
      a0 = i16x8.add(a0, i16x8.extmul_low_i8x16_s(t0, x0));
      a1 = i16x8.add(a1, i16x8.extmul_high_i8x16_s(t0, x0));
      a0 = i16x8.add(a0, i16x8.extmul_low_i8x16_s(t1, x1));
      a1 = i16x8.add(a1, i16x8.extmul_high_i8x16_s(t1, x1));
      a0 = i16x8.add(a0, i16x8.extmul_low_i8x16_s(t2, x2));
      a1 = i16x8.add(a1, i16x8.extmul_high_i8x16_s(t2, x2));
      a0 = i16x8.add(a0, i16x8.extmul_low_i8x16_s(t3, x3));
      a1 = i16x8.add(a1, i16x8.extmul_high_i8x16_s(t3, x3));
    }
    acc = i32x4.add(acc, i32x4.extadd_pairwise_i16x8_s(a0));
    acc = i32x4.add(acc, i32x4.extadd_pairwise_i16x8_s(a1));
  }
  store<i32>(flags, v128.any_true(v128.and(three, i8x16.splat(0x55))) ? 1 : 0);
  return hsum(acc);
}

/**
 * Four dot products (four permuted x rows, `stride` bytes apart) against one weight row: each block is
 * unpacked once and used four times. Results go to the four i32 slots at `res`.
 */
function dot4(w: usize, blocks: i32, xp: usize, stride: usize, res: usize): void {
  const lut = tritLut();
  const m3 = i8x16.splat(3);
  let c0 = i32x4.splat(0);
  let c1 = i32x4.splat(0);
  let c2 = i32x4.splat(0);
  let c3 = i32x4.splat(0);
  let b = 0;
  while (b < blocks) {
    const end = min(b + FLUSH, blocks);
    let a0 = i16x8.splat(0);
    let a1 = i16x8.splat(0);
    let a2 = i16x8.splat(0);
    let a3 = i16x8.splat(0);
    for (; b < end; b++) {
      const v = v128.load(w + (<usize>b << 4));
      const t0 = i8x16.swizzle(lut, v128.and(v, m3));
      const t1 = i8x16.swizzle(lut, v128.and(i16x8.shr_u(v, 2), m3));
      const t2 = i8x16.swizzle(lut, v128.and(i16x8.shr_u(v, 4), m3));
      const t3 = i8x16.swizzle(lut, v128.and(i16x8.shr_u(v, 6), m3));
      const p0 = xp + (<usize>b << 6);
      const p1 = p0 + stride;
      const p2 = p1 + stride;
      const p3 = p2 + stride;
      // Low and high halves of a plane go to the same accumulator: 8 products of ≤ 128 per lane per block.
      a0 = i16x8.add(a0, planeDot(t0, t1, t2, t3, p0));
      a1 = i16x8.add(a1, planeDot(t0, t1, t2, t3, p1));
      a2 = i16x8.add(a2, planeDot(t0, t1, t2, t3, p2));
      a3 = i16x8.add(a3, planeDot(t0, t1, t2, t3, p3));
    }
    c0 = i32x4.add(c0, i32x4.extadd_pairwise_i16x8_s(a0));
    c1 = i32x4.add(c1, i32x4.extadd_pairwise_i16x8_s(a1));
    c2 = i32x4.add(c2, i32x4.extadd_pairwise_i16x8_s(a2));
    c3 = i32x4.add(c3, i32x4.extadd_pairwise_i16x8_s(a3));
  }
  store<i32>(res, hsum(c0));
  store<i32>(res, hsum(c1), 4);
  store<i32>(res, hsum(c2), 8);
  store<i32>(res, hsum(c3), 12);
}

/** Σ over the four planes of trits × x plane, as eight int16 lanes (each a sum of 8 products). */
// @ts-ignore: decorator
@inline function planeDot(t0: v128, t1: v128, t2: v128, t3: v128, p: usize): v128 {
  const x0 = v128.load(p);
  const x1 = v128.load(p, 16);
  const x2 = v128.load(p, 32);
  const x3 = v128.load(p, 48);
  let s = i16x8.extmul_low_i8x16_s(t0, x0);
  s = i16x8.add(s, i16x8.extmul_high_i8x16_s(t0, x0));
  s = i16x8.add(s, i16x8.extmul_low_i8x16_s(t1, x1));
  s = i16x8.add(s, i16x8.extmul_high_i8x16_s(t1, x1));
  s = i16x8.add(s, i16x8.extmul_low_i8x16_s(t2, x2));
  s = i16x8.add(s, i16x8.extmul_high_i8x16_s(t2, x2));
  s = i16x8.add(s, i16x8.extmul_low_i8x16_s(t3, x3));
  return i16x8.add(s, i16x8.extmul_high_i8x16_s(t3, x3));
}

/** Scratch bytes `matmulTernaryI8` needs for a given K. */
export function ternaryScratchBytes(k: i32): i32 {
  const rowBytes = (k + 3) >> 2;
  return TILE * ((rowBytes >> 4) << 6) + 64;
}

/**
 * out[m, n] f32 = (x[m, k] i8 · trits(w)[n, k]ᵀ) / xScales[m] · gamma.
 * `scratch` holds ternaryScratchBytes(k) bytes (permuted x rows and four int32 results).
 */
export function matmulTernaryI8(
  x: usize,
  xScales: usize,
  w: usize,
  gamma: f32,
  m: i32,
  k: i32,
  n: i32,
  out: usize,
  scratch: usize,
): void {
  const rowBytes = (k + 3) >> 2;
  const blocks = rowBytes >> 4;
  const tailFrom = blocks << 6;
  const planeBytes = <usize>blocks << 6;
  const res = scratch + planeBytes * TILE;
  let i = 0;
  // Tiles of four activation rows: the weights are unpacked once per tile.
  for (; i + TILE <= m; i += TILE) {
    for (let r = 0; r < TILE; r++) {
      permuteRow(x + <usize>(i + r) * <usize>k, k, blocks, scratch + planeBytes * <usize>r);
    }
    for (let j = 0; j < n; j++) {
      const wr = w + <usize>j * <usize>rowBytes;
      dot4(wr, blocks, scratch, planeBytes, res);
      for (let r = 0; r < TILE; r++) {
        let acc = load<i32>(res + (<usize>r << 2));
        if (tailFrom < k) {
          acc += tailDot(wr, x + <usize>(i + r) * <usize>k, tailFrom, k);
        }
        const sx = load<f32>(xScales + (<usize>(i + r) << 2));
        store<f32>(out + ((<usize>(i + r) * <usize>n + <usize>j) << 2), (<f32>acc / sx) * gamma);
      }
    }
  }
  for (; i < m; i++) {
    const xr = x + <usize>i * <usize>k;
    permuteRow(xr, k, blocks, scratch);
    const sumX = blockSum(xr, min(k, tailFrom));
    const sx = load<f32>(xScales + (<usize>i << 2));
    const o = out + ((<usize>i * <usize>n) << 2);
    for (let j = 0; j < n; j++) {
      const wr = w + <usize>j * <usize>rowBytes;
      // (trit + 1) · x summed, minus Σ x; a row holding a code 3 (never written) takes the exact path.
      let acc = codeDot1(wr, blocks, scratch, res) - sumX;
      if (load<i32>(res) != 0) {
        acc = dot1(wr, blocks, scratch);
      }
      if (tailFrom < k) {
        acc += tailDot(wr, xr, tailFrom, k);
      }
      store<f32>(o + (<usize>j << 2), (<f32>acc / sx) * gamma);
    }
  }
}
