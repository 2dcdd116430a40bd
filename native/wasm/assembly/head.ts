/**
 * The integer output head (matmulQ8I8): out[m, n] = x[m, k] · w[n, k]ᵀ with w in Q8_0, Q4_K, Q5_K or Q6_K and
 * x quantized per block (32 elements for Q8_0, 256 for the k-quants), every product an integer one. The exact
 * semantics, which these kernels meet bit for bit, are the JS reference's: matmulQ8I8 in
 * src/backends/js/kernels/dense.ts (Q8_0) and matmulKI8 in src/backends/js/kernels/kquant-head.ts (k-quants).
 *
 * The integer sums do not depend on the order they are taken in, so the SIMD code may reorder them freely:
 *   Q8_0:  idot = Σ w·q over a block of 32 (i8 → i16, i32x4.dot_i16x8_s).
 *   Q4_K / Q5_K: A = Σ_e (sc·u)_e · q_e with the 6-bit scale folded into the code (sc·u ≤ 63·31 fits i16),
 *          B = Σ_t mn_t · (Σ q over the 32 elements of sub-block t).
 *   Q6_K:  A − B = Σ_e (sc·(u − 32))_e · q_e directly (|sc·(u − 32)| ≤ 4096 fits i16).
 * The float steps are the reference's, one f32 operation each and in block order (wasm f32 arithmetic is IEEE
 * single, and an int32 of < 2^24 magnitude or an int32 → f32 conversion rounds as Math.fround does; a float64
 * product, quotient or sum of two f32 rounded to f32 is the f32 operation's result).
 *
 * Several activation rows: each k-quant block is decoded once into an int16 copy (scratch) that every row's
 * dot product reads (headK). One row (decoding): the codes go straight into the dot products (headK1).
 * The embedding of a Q8_0 / k-quant table (embeddingBlocks) reuses the block decoders.
 */
import { halfToF32, halfToF32x4 } from "./dense";
import { quantizeActivations } from "./float";

/** Weight formats, as the glue passes them. */
const FORMAT_Q8_0: i32 = 0;
const FORMAT_Q4_K: i32 = 1;
const FORMAT_Q5_K: i32 = 2;

/** Elements per k-quant super-block (and per activation block of the k-quant head). */
const K_BLOCK: i32 = 256;
/** Elements per Q8_0 block. */
const Q8_BLOCK: i32 = 32;
/** Σ q sums per k-quant activation block (one per 32-element sub-block). */
const K_SUMS: i32 = 8;

/** Scratch bytes per thread: the decoded block as i16 (512 bytes) and the Q4_K/Q5_K mins as i32 (32 bytes). */
export function headScratchBytes(): i32 {
  return 2 * K_BLOCK + 4 * K_SUMS;
}

/**
 * Quantizes the head's activations x[m, k] per block of `block` (32 or 256) elements: q (int8, m·k bytes),
 * inv[r] = f32(1 / s[r]) per block (m·k / block of them), and for block = 256 the Σ q of each 32 elements
 * (bsum, m·k / 32 int32). x must be finite (the glue checks).
 */
export function quantizeHeadActivations(x: usize, m: i32, k: i32, block: i32, q: usize, inv: usize, bsum: usize): void {
  const rows = <i32>((<i64>m * <i64>k) / <i64>block);
  quantizeActivations(x, rows, block, q, inv);
  for (let r = 0; r < rows; r++) {
    const p = inv + (<usize>r << 2);
    store<f32>(p, <f32>1 / load<f32>(p));
  }
  if (block != K_BLOCK) {
    return;
  }
  const sums = <i32>(<i64>rows * <i64>K_SUMS);
  for (let t = 0; t < sums; t++) {
    const p = q + (<usize>t << 5);
    // Σ of 32 int8: widen to i16 pairs, then i32 lanes.
    const a = i32x4.extadd_pairwise_i16x8_s(i16x8.extadd_pairwise_i8x16_s(v128.load(p)));
    const b = i32x4.extadd_pairwise_i16x8_s(i16x8.extadd_pairwise_i8x16_s(v128.load(p, 16)));
    store<i32>(bsum + (<usize>t << 2), hsumI(i32x4.add(a, b)));
  }
}

// @ts-ignore: decorator
@inline function hsumI(v: v128): i32 {
  return i32x4.extract_lane(v, 0) + i32x4.extract_lane(v, 1) + i32x4.extract_lane(v, 2) + i32x4.extract_lane(v, 3);
}

/** Σ over 16 int8 pairs, as i32x4 partial sums. */
// @ts-ignore: decorator
@inline function dot16(a: v128, b: v128): v128 {
  return i32x4.add(
    i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(a), i16x8.extend_low_i8x16_s(b)),
    i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(a), i16x8.extend_high_i8x16_s(b)),
  );
}

/** The four lane sums of a, b, c, d as one i32x4 [Σa, Σb, Σc, Σd]. */
// @ts-ignore: decorator
@inline function hsum4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = i32x4.add(v128.shuffle<i32>(a, b, 0, 1, 4, 5), v128.shuffle<i32>(a, b, 2, 3, 6, 7));
  const cd = i32x4.add(v128.shuffle<i32>(c, d, 0, 1, 4, 5), v128.shuffle<i32>(c, d, 2, 3, 6, 7));
  return i32x4.add(v128.shuffle<i32>(ab, cd, 0, 2, 4, 6), v128.shuffle<i32>(ab, cd, 1, 3, 5, 7));
}

/** idot of one Q8_0 weight block at wb with the 32 int8 activations at qb, as i32x4 partial sums. */
// @ts-ignore: decorator
@inline function blockDot(wb: usize, q0: v128, q1: v128): v128 {
  return i32x4.add(dot16(v128.load(wb, 2), q0), dot16(v128.load(wb, 18), q1));
}

/**
 * Output columns [j0, j1) of the Q8_0 head. Four columns at a time share the activation loads and run four
 * independent accumulations in the lanes of one f32x4 (each lane's f32 steps are the scalar ones).
 */
function headQ8(q: usize, inv: usize, w: usize, m: i32, k: i32, n: i32, out: usize, j0: i32, j1: i32): void {
  const blocks = k / Q8_BLOCK;
  const rowBytes = <usize>blocks * 34;
  let j = j0;
  for (; j + 4 <= j1; j += 4) {
    const w0 = w + <usize>j * rowBytes;
    for (let i = 0; i < m; i++) {
      const qr = q + <usize>i * <usize>k;
      const ir = inv + ((<usize>i * <usize>blocks) << 2);
      let acc = f32x4.splat(0);
      for (let b = 0; b < blocks; b++) {
        const wb = w0 + <usize>b * 34;
        const qb = qr + (<usize>b << 5);
        const q0 = v128.load(qb);
        const q1 = v128.load(qb, 16);
        const s = hsum4(blockDot(wb, q0, q1), blockDot(wb + rowBytes, q0, q1), blockDot(wb + 2 * rowBytes, q0, q1), blockDot(wb + 3 * rowBytes, q0, q1));
        let h = i32x4.splat(<i32>load<u16>(wb));
        h = i32x4.replace_lane(h, 1, <i32>load<u16>(wb + rowBytes));
        h = i32x4.replace_lane(h, 2, <i32>load<u16>(wb + 2 * rowBytes));
        h = i32x4.replace_lane(h, 3, <i32>load<u16>(wb + 3 * rowBytes));
        const t = f32x4.mul(f32x4.mul(f32x4.convert_i32x4_s(s), f32x4.splat(load<f32>(ir + (<usize>b << 2)))), halfToF32x4(h));
        acc = f32x4.add(acc, t);
      }
      v128.store(out + ((<usize>i * <usize>n + <usize>j) << 2), acc);
    }
  }
  for (; j < j1; j++) {
    const wr = w + <usize>j * rowBytes;
    for (let i = 0; i < m; i++) {
      const qr = q + <usize>i * <usize>k;
      const ir = inv + ((<usize>i * <usize>blocks) << 2);
      let acc: f32 = 0;
      for (let b = 0; b < blocks; b++) {
        const wb = wr + <usize>b * 34;
        const qb = qr + (<usize>b << 5);
        const d = halfToF32(<u32>load<u16>(wb));
        acc = acc + (<f32>hsumI(blockDot(wb, v128.load(qb), v128.load(qb, 16))) * load<f32>(ir + (<usize>b << 2))) * d;
      }
      store<f32>(out + ((<usize>i * <usize>n + <usize>j) << 2), acc);
    }
  }
}

/** Stores 16 codes (u8) times `scale` as 16 i16 at dst. */
// @ts-ignore: decorator
@inline function storeScaled(dst: usize, codes: v128, scale: i32): void {
  const s = i16x8.splat(<i16>scale);
  v128.store(dst, i16x8.mul(i16x8.extend_low_i8x16_u(codes), s));
  v128.store(dst, i16x8.mul(i16x8.extend_high_i8x16_u(codes), s), 16);
}

/** The 6-bit scale (or, with `min`, the 6-bit min) of sub-block t of a Q4_K/Q5_K block's 12 scale bytes at s. */
// @ts-ignore: decorator
@inline function scaleMin(s: usize, t: i32, min: bool): i32 {
  if (t < 4) {
    return <i32>load<u8>(s + <usize>(min ? t + 4 : t)) & 63;
  }
  const lo = <i32>load<u8>(s + <usize>(t + 4));
  const top = <i32>load<u8>(s + <usize>(min ? t : t - 4)) >> 6;
  return (min ? lo >> 4 : lo & 0xf) | (top << 4);
}

/** Decodes a Q4_K / Q5_K block at blk into scratch: sc·u as i16 [256], then the 8 mins as i32. */
function decodeAffine(blk: usize, five: bool, scratch: usize): void {
  const scales = blk + 4;
  const qs = blk + (five ? 48 : 16);
  const one = i8x16.splat(1);
  for (let c = 0; c < 4; c++) {
    const sLo = scaleMin(scales, 2 * c, false);
    const sHi = scaleMin(scales, 2 * c + 1, false);
    store<i32>(scratch + 512 + (<usize>(2 * c) << 2), scaleMin(scales, 2 * c, true));
    store<i32>(scratch + 512 + (<usize>(2 * c + 1) << 2), scaleMin(scales, 2 * c + 1, true));
    for (let h = 0; h < 2; h++) {
      const v = v128.load(qs + <usize>(32 * c + 16 * h));
      let lo = v128.and(v, i8x16.splat(0xf));
      let hi = i8x16.shr_u(v, 4);
      if (five) {
        const bits = v128.load(blk + 16 + <usize>(16 * h));
        lo = v128.or(lo, i8x16.shl(v128.and(i8x16.shr_u(bits, 2 * c), one), 4));
        hi = v128.or(hi, i8x16.shl(v128.and(i8x16.shr_u(bits, 2 * c + 1), one), 4));
      }
      storeScaled(scratch + (<usize>(64 * c + 16 * h) << 1), lo, sLo);
      storeScaled(scratch + (<usize>(64 * c + 32 + 16 * h) << 1), hi, sHi);
    }
  }
}

/** Decodes a Q6_K block at blk into scratch: sc·(u − 32) as i16 [256], or with `unscaled` u − 32. */
function decodeQ6(blk: usize, scratch: usize, unscaled: bool): void {
  const low = i8x16.splat(0xf);
  const three = i8x16.splat(3);
  for (let half = 0; half < 2; half++) {
    const ql = blk + <usize>(64 * half);
    const qh = blk + 128 + <usize>(32 * half);
    for (let h = 0; h < 2; h++) {
      const a = v128.load(ql + <usize>(16 * h));
      const b = v128.load(ql + 32 + <usize>(16 * h));
      const hb = v128.load(qh + <usize>(16 * h));
      const y = 128 * half + 16 * h;
      const sc = blk + 192 + <usize>(y >> 4);
      storeSigned(scratch + (<usize>y << 1), v128.or(v128.and(a, low), i8x16.shl(v128.and(hb, three), 4)), unscaled ? 1 : <i32>load<i8>(sc));
      storeSigned(scratch + (<usize>(y + 32) << 1), v128.or(v128.and(b, low), i8x16.shl(v128.and(i8x16.shr_u(hb, 2), three), 4)), unscaled ? 1 : <i32>load<i8>(sc, 2));
      storeSigned(scratch + (<usize>(y + 64) << 1), v128.or(i8x16.shr_u(a, 4), i8x16.shl(v128.and(i8x16.shr_u(hb, 4), three), 4)), unscaled ? 1 : <i32>load<i8>(sc, 4));
      storeSigned(scratch + (<usize>(y + 96) << 1), v128.or(i8x16.shr_u(b, 4), i8x16.shl(i8x16.shr_u(hb, 6), 4)), unscaled ? 1 : <i32>load<i8>(sc, 6));
    }
  }
}

/** Stores 16 Q6_K codes u (0..63) as sc · (u − 32), i16, at dst. */
// @ts-ignore: decorator
@inline function storeSigned(dst: usize, codes: v128, scale: i32): void {
  const s = i16x8.splat(<i16>scale);
  const c = i8x16.sub(codes, i8x16.splat(32));
  v128.store(dst, i16x8.mul(i16x8.extend_low_i8x16_s(c), s));
  v128.store(dst, i16x8.mul(i16x8.extend_high_i8x16_s(c), s), 16);
}

/** Σ_e w16[e] · q[e] over 256 elements (w16: i16 at w, q: int8 at q). */
// @ts-ignore: decorator
@inline function dot256(w: usize, q: usize): i32 {
  let a0 = i32x4.splat(0);
  let a1 = i32x4.splat(0);
  for (let e = 0; e < K_BLOCK; e += 16) {
    const x = v128.load(q + <usize>e);
    const p = w + (<usize>e << 1);
    a0 = i32x4.add(a0, i32x4.dot_i16x8_s(v128.load(p), i16x8.extend_low_i8x16_s(x)));
    a1 = i32x4.add(a1, i32x4.dot_i16x8_s(v128.load(p, 16), i16x8.extend_high_i8x16_s(x)));
  }
  return hsumI(i32x4.add(a0, a1));
}

/** Output columns [j0, j1) of a k-quant head; out[i, j] accumulates the blocks' terms in order. */
function headK(q: usize, inv: usize, bsum: usize, w: usize, format: i32, m: i32, k: i32, n: i32, out: usize, scratch: usize, j0: i32, j1: i32): void {
  const blocks = k / K_BLOCK;
  const blockBytes: usize = format == FORMAT_Q4_K ? 144 : format == FORMAT_Q5_K ? 176 : 210;
  const q6 = format != FORMAT_Q4_K && format != FORMAT_Q5_K;
  for (let j = j0; j < j1; j++) {
    for (let i = 0; i < m; i++) {
      store<f32>(out + ((<usize>i * <usize>n + <usize>j) << 2), 0);
    }
    for (let b = 0; b < blocks; b++) {
      const blk = w + (<usize>j * <usize>blocks + <usize>b) * blockBytes;
      let d: f32;
      let dmin: f32 = 0;
      if (q6) {
        decodeQ6(blk, scratch, false);
        d = halfToF32(<u32>load<u16>(blk, 208));
      } else {
        decodeAffine(blk, format == FORMAT_Q5_K, scratch);
        d = halfToF32(<u32>load<u16>(blk));
        dmin = halfToF32(<u32>load<u16>(blk, 2));
      }
      const mins0 = v128.load(scratch, 512);
      const mins1 = v128.load(scratch, 528);
      for (let i = 0; i < m; i++) {
        const xb = <usize>i * <usize>blocks + <usize>b;
        const a = dot256(scratch, q + (xb << 8));
        const iv = load<f32>(inv + (xb << 2));
        let t: f32;
        if (q6) {
          t = (iv * d) * <f32>a;
        } else {
          const s = bsum + (xb << 5);
          const bs = hsumI(i32x4.add(i32x4.mul(mins0, v128.load(s)), i32x4.mul(mins1, v128.load(s, 16))));
          t = (iv * d) * <f32>a - (iv * dmin) * <f32>bs;
        }
        const o = out + ((<usize>i * <usize>n + <usize>j) << 2);
        store<f32>(o, load<f32>(o) + t);
      }
    }
  }
}

/**
 * A k-quant head for one activation row (decoding): each block's codes go straight from the weight bytes into
 * the dot products, per 32 (Q4_K/Q5_K) or 16 (Q6_K) elements of one scale, without the decoded copy headK
 * keeps for several rows. Same integers A, B (Q6_K: A − B) and the same f32 steps as headK.
 */
function headK1(q: usize, inv: usize, bsum: usize, w: usize, format: i32, k: i32, out: usize, j0: i32, j1: i32): void {
  const blocks = k / K_BLOCK;
  const blockBytes: usize = format == FORMAT_Q4_K ? 144 : format == FORMAT_Q5_K ? 176 : 210;
  const five = format == FORMAT_Q5_K;
  const low = i8x16.splat(0xf);
  const three = i8x16.splat(3);
  const one = i8x16.splat(1);
  const bias = i8x16.splat(32);
  for (let j = j0; j < j1; j++) {
    let acc: f32 = 0;
    for (let b = 0; b < blocks; b++) {
      const blk = w + (<usize>j * <usize>blocks + <usize>b) * blockBytes;
      const qb = q + (<usize>b << 8);
      const iv = load<f32>(inv + (<usize>b << 2));
      let sum = i32x4.splat(0);
      if (format != FORMAT_Q4_K && !five) {
        for (let half = 0; half < 2; half++) {
          const ql = blk + <usize>(64 * half);
          const qh = blk + 128 + <usize>(32 * half);
          for (let h = 0; h < 2; h++) {
            const a = v128.load(ql + <usize>(16 * h));
            const c = v128.load(ql + 32 + <usize>(16 * h));
            const hb = v128.load(qh + <usize>(16 * h));
            const y = 128 * half + 16 * h;
            const sc = blk + 192 + <usize>(y >> 4);
            const qy = qb + <usize>y;
            const u0 = i8x16.sub(v128.or(v128.and(a, low), i8x16.shl(v128.and(hb, three), 4)), bias);
            const u1 = i8x16.sub(v128.or(v128.and(c, low), i8x16.shl(v128.and(i8x16.shr_u(hb, 2), three), 4)), bias);
            const u2 = i8x16.sub(v128.or(i8x16.shr_u(a, 4), i8x16.shl(v128.and(i8x16.shr_u(hb, 4), three), 4)), bias);
            const u3 = i8x16.sub(v128.or(i8x16.shr_u(c, 4), i8x16.shl(i8x16.shr_u(hb, 6), 4)), bias);
            sum = i32x4.add(sum, i32x4.mul(dot16(u0, v128.load(qy)), i32x4.splat(<i32>load<i8>(sc))));
            sum = i32x4.add(sum, i32x4.mul(dot16(u1, v128.load(qy, 32)), i32x4.splat(<i32>load<i8>(sc, 2))));
            sum = i32x4.add(sum, i32x4.mul(dot16(u2, v128.load(qy, 64)), i32x4.splat(<i32>load<i8>(sc, 4))));
            sum = i32x4.add(sum, i32x4.mul(dot16(u3, v128.load(qy, 96)), i32x4.splat(<i32>load<i8>(sc, 6))));
          }
        }
        acc = acc + (iv * halfToF32(<u32>load<u16>(blk, 208))) * <f32>hsumI(sum);
        continue;
      }
      const scales = blk + 4;
      const qs = blk + (five ? 48 : 16);
      let bs = 0;
      for (let c = 0; c < 4; c++) {
        let lo = i32x4.splat(0);
        let hi = i32x4.splat(0);
        for (let h = 0; h < 2; h++) {
          const v = v128.load(qs + <usize>(32 * c + 16 * h));
          let cl = v128.and(v, low);
          let ch = i8x16.shr_u(v, 4);
          if (five) {
            const bits = v128.load(blk + 16 + <usize>(16 * h));
            cl = v128.or(cl, i8x16.shl(v128.and(i8x16.shr_u(bits, 2 * c), one), 4));
            ch = v128.or(ch, i8x16.shl(v128.and(i8x16.shr_u(bits, 2 * c + 1), one), 4));
          }
          const qy = qb + <usize>(64 * c + 16 * h);
          lo = i32x4.add(lo, dot16(cl, v128.load(qy)));
          hi = i32x4.add(hi, dot16(ch, v128.load(qy, 32)));
        }
        sum = i32x4.add(sum, i32x4.mul(lo, i32x4.splat(scaleMin(scales, 2 * c, false))));
        sum = i32x4.add(sum, i32x4.mul(hi, i32x4.splat(scaleMin(scales, 2 * c + 1, false))));
        const sb = bsum + ((<usize>b * <usize>K_SUMS + <usize>(2 * c)) << 2);
        bs += scaleMin(scales, 2 * c, true) * load<i32>(sb) + scaleMin(scales, 2 * c + 1, true) * load<i32>(sb, 4);
      }
      const d = halfToF32(<u32>load<u16>(blk));
      const dmin = halfToF32(<u32>load<u16>(blk, 2));
      acc = acc + ((iv * d) * <f32>hsumI(sum) - (iv * dmin) * <f32>bs);
    }
    store<f32>(out + (<usize>j << 2), acc);
  }
}

/**
 * Output columns [j0, j1) of out[m, n] = x[m, k] · w[n, k]ᵀ for the integer head, x prepared by
 * quantizeHeadActivations (q, inv, and bsum for the k-quants). format: 0 Q8_0, 1 Q4_K, 2 Q5_K, 3 Q6_K.
 * scratch: headScratchBytes() bytes of this thread's own.
 */
export function matmulHeadI8(q: usize, inv: usize, bsum: usize, w: usize, format: i32, m: i32, k: i32, n: i32, out: usize, scratch: usize, j0: i32, j1: i32): void {
  if (format == FORMAT_Q8_0) {
    headQ8(q, inv, w, m, k, n, out, j0, j1);
  } else if (m == 1) {
    headK1(q, inv, bsum, w, format, k, out, j0, j1);
  } else {
    headK(q, inv, bsum, w, format, m, k, n, out, scratch, j0, j1);
  }
}

/** Writes 8 i16 values v · d − o as f32 at dst (one f32 multiply, one subtract per element). */
// @ts-ignore: decorator
@inline function storeValues(dst: usize, v: v128, d: v128, o: v128): void {
  const lo = f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(v));
  const hi = f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(v));
  v128.store(dst, f32x4.sub(f32x4.mul(lo, d), o));
  v128.store(dst, f32x4.sub(f32x4.mul(hi, d), o), 16);
}

/** Is the binary16 at p infinite or NaN (the reference decoders refuse such a block)? */
// @ts-ignore: decorator
@inline function badHalf(p: usize): bool {
  return (<u32>load<u16>(p) & 0x7c00) == 0x7c00;
}

/**
 * out[s, e] = decode(table)[ids[s], e] for a Q8_0 / Q4_K / Q5_K / Q6_K table (format codes as matmulHeadI8),
 * bit for bit the reference decoders' values: q · d (Q8_0), (d · sc) · (u − 32) (Q6_K), and for Q4_K / Q5_K
 * the exact integer sc·u (the head's decode) times d, minus the exact dmin · min, each rounded once as the
 * reference's float64 expressions are (d · sc · u is exact in both). Ids were checked by the caller. Returns −1,
 * or the index within its row of the first block whose scale is not finite (rows before it are written).
 * scratch: headScratchBytes() bytes.
 */
export function embeddingBlocks(ids: usize, seq: i32, table: usize, format: i32, embed: i32, scratch: usize, out: usize): i32 {
  const q8 = format == FORMAT_Q8_0;
  const q6 = !q8 && format != FORMAT_Q4_K && format != FORMAT_Q5_K;
  const elems = q8 ? Q8_BLOCK : K_BLOCK;
  const blockBytes: usize = q8 ? 34 : format == FORMAT_Q4_K ? 144 : format == FORMAT_Q5_K ? 176 : 210;
  const blocks = embed / elems;
  const zero = f32x4.splat(0);
  for (let s = 0; s < seq; s++) {
    const row = table + <usize>load<i32>(ids + (<usize>s << 2)) * <usize>blocks * blockBytes;
    const o = out + ((<usize>s * <usize>embed) << 2);
    for (let b = 0; b < blocks; b++) {
      const blk = row + <usize>b * blockBytes;
      const dst = o + (<usize>(b * elems) << 2);
      if (q8) {
        if (badHalf(blk)) {
          return b;
        }
        const d = f32x4.splat(halfToF32(<u32>load<u16>(blk)));
        for (let h = 0; h < 2; h++) {
          const v = v128.load(blk + 2 + <usize>(16 * h));
          storeValues(dst + <usize>(64 * h), i16x8.extend_low_i8x16_s(v), d, zero);
          storeValues(dst + <usize>(64 * h + 32), i16x8.extend_high_i8x16_s(v), d, zero);
        }
        continue;
      }
      if (q6) {
        if (badHalf(blk + 208)) {
          return b;
        }
        // (d · sc) · (u − 32) as the reference (an exact d · sc, then one rounding), zeros' signs included.
        decodeQ6(blk, scratch, true);
        const d = halfToF32(<u32>load<u16>(blk, 208));
        for (let e = 0; e < K_BLOCK; e += 8) {
          const dsc = f32x4.splat(d * <f32>load<i8>(blk + 192 + <usize>(e >> 4)));
          storeValues(dst + (<usize>e << 2), v128.load(scratch + (<usize>e << 1)), dsc, zero);
        }
        continue;
      }
      if (badHalf(blk) || badHalf(blk + 2)) {
        return b;
      }
      decodeAffine(blk, format == FORMAT_Q5_K, scratch);
      const dv = halfToF32(<u32>load<u16>(blk));
      const d = f32x4.splat(dv);
      const dmin = halfToF32(<u32>load<u16>(blk, 2));
      for (let e = 0; e < K_BLOCK; e += 8) {
        const mn = f32x4.splat(dmin * <f32>load<i32>(scratch + 512 + (<usize>(e >> 5) << 2)));
        storeValues(dst + (<usize>e << 2), v128.load(scratch + (<usize>e << 1)), d, mn);
      }
    }
  }
  return -1;
}
