/**
 * Dense float weights (the output head, embeddings): f32, IEEE binary16 ("f16") and bfloat16 rows, decoded
 * on the fly with exact integer/bit operations, and f32 dot products (4-lane partial sums; the JS reference
 * sums in float64, so results agree within a tolerance, not bit for bit).
 *
 * Row formats are chosen at compile time by a marker type: f32 → f32, u16 → f16, i16 → bf16.
 */

/** 2^112 as f32: moves a binary16 exponent (bias 15) to binary32 (bias 127). */
const HALF_EXP_SHIFT: f32 = reinterpret<f32>(0x77800000);

/**
 * Four binary16 values (low 16 bits of each i32 lane) → four f32, exactly:
 *
 *   h = s eeeee mmmmmmmmmm            mag = h & 0x7fff
 *   bits = mag << 13       →  f32 with exponent eeeee (bias 127) and the 10 mantissa bits on top
 *   bits · 2^112 (as f32)  →  the right value for normal AND subnormal halves (a power-of-two product is
 *                              exact; a subnormal half becomes an f32 subnormal, then a normal number)
 *   eeeee = 31 (inf/NaN)   →  bits | 0x7f800000 instead (mantissa / NaN payload kept)
 *   | sign << 16
 */
// @ts-ignore: decorator
@inline export function halfToF32x4(h: v128): v128 {
  const mag = v128.and(h, i32x4.splat(0x7fff));
  const bits = i32x4.shl(mag, 13);
  const scaled = f32x4.mul(bits, f32x4.splat(HALF_EXP_SHIFT));
  const special = i32x4.gt_s(mag, i32x4.splat(0x7bff));
  const body = v128.bitselect(v128.or(bits, i32x4.splat(0x7f800000)), scaled, special);
  return v128.or(body, i32x4.shl(v128.and(h, i32x4.splat(0x8000)), 16));
}

/** Scalar version of halfToF32x4. */
export function halfToF32(h: u32): f32 {
  const mag = h & 0x7fff;
  const sign = (h & 0x8000) << 16;
  if (mag > 0x7bff) {
    return reinterpret<f32>((mag << 13) | 0x7f800000 | sign);
  }
  const v = reinterpret<f32>(mag << 13) * HALF_EXP_SHIFT;
  return reinterpret<f32>(reinterpret<u32>(v) | sign);
}

/** Bytes per element of a row format. */
// @ts-ignore: decorator
@inline function elementBytes<T>(): usize {
  return isFloat<T>() ? 4 : 2;
}

/** Elements [c, c + 4) of row w as f32x4. */
// @ts-ignore: decorator
@inline function load4<T>(w: usize, c: i32): v128 {
  if (isFloat<T>()) {
    return v128.load(w + (<usize>c << 2));
  }
  const wide = i32x4.extend_low_i16x8_u(v128.load64_zero(w + (<usize>c << 1)));
  if (isSigned<T>()) {
    return i32x4.shl(wide, 16); // bf16: the upper half of an f32
  }
  return halfToF32x4(wide);
}

/** Element c of row w as f32. */
// @ts-ignore: decorator
@inline function load1<T>(w: usize, c: i32): f32 {
  if (isFloat<T>()) {
    return load<f32>(w + (<usize>c << 2));
  }
  const bits = <u32>load<u16>(w + (<usize>c << 1));
  if (isSigned<T>()) {
    return reinterpret<f32>(bits << 16);
  }
  return halfToF32(bits);
}

// @ts-ignore: decorator
@inline function hsumF(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

/** Σ_c x[c] · w[c] over k elements. */
function dot1<T>(x: usize, w: usize, k: i32): f32 {
  let a0 = f32x4.splat(0);
  let a1 = f32x4.splat(0);
  let c = 0;
  for (; c + 8 <= k; c += 8) {
    a0 = f32x4.add(a0, f32x4.mul(v128.load(x + (<usize>c << 2)), load4<T>(w, c)));
    a1 = f32x4.add(a1, f32x4.mul(v128.load(x + (<usize>c << 2), 16), load4<T>(w, c + 4)));
  }
  let s = hsumF(f32x4.add(a0, a1));
  for (; c < k; c++) {
    s += load<f32>(x + (<usize>c << 2)) * load1<T>(w, c);
  }
  return s;
}

/** Four dot products (x rows `xStride` bytes apart) with one weight row, decoding it once. */
function dot4<T>(x: usize, xStride: usize, w: usize, k: i32, out: usize, outStride: usize): void {
  let a0 = f32x4.splat(0);
  let a1 = f32x4.splat(0);
  let a2 = f32x4.splat(0);
  let a3 = f32x4.splat(0);
  let c = 0;
  for (; c + 4 <= k; c += 4) {
    const wv = load4<T>(w, c);
    const p = x + (<usize>c << 2);
    a0 = f32x4.add(a0, f32x4.mul(v128.load(p), wv));
    a1 = f32x4.add(a1, f32x4.mul(v128.load(p + xStride), wv));
    a2 = f32x4.add(a2, f32x4.mul(v128.load(p + 2 * xStride), wv));
    a3 = f32x4.add(a3, f32x4.mul(v128.load(p + 3 * xStride), wv));
  }
  let s0 = hsumF(a0);
  let s1 = hsumF(a1);
  let s2 = hsumF(a2);
  let s3 = hsumF(a3);
  for (; c < k; c++) {
    const wv = load1<T>(w, c);
    const p = x + (<usize>c << 2);
    s0 += load<f32>(p) * wv;
    s1 += load<f32>(p + xStride) * wv;
    s2 += load<f32>(p + 2 * xStride) * wv;
    s3 += load<f32>(p + 3 * xStride) * wv;
  }
  store<f32>(out, s0);
  store<f32>(out + outStride, s1);
  store<f32>(out + 2 * outStride, s2);
  store<f32>(out + 3 * outStride, s3);
}

/** Output columns [j0, j1) of out[m, n] = x[m, k] · w[n, k]ᵀ. */
function matmul<T>(x: usize, w: usize, m: i32, k: i32, n: i32, out: usize, j0: i32, j1: i32): void {
  const wRow = <usize>k * elementBytes<T>();
  const xRow = <usize>k << 2;
  const oRow = <usize>n << 2;
  let i = 0;
  for (; i + 4 <= m; i += 4) {
    for (let j = j0; j < j1; j++) {
      dot4<T>(x + <usize>i * xRow, xRow, w + <usize>j * wRow, k, out + <usize>i * oRow + (<usize>j << 2), oRow);
    }
  }
  for (; i < m; i++) {
    const xr = x + <usize>i * xRow;
    const o = out + <usize>i * oRow;
    for (let j = j0; j < j1; j++) {
      store<f32>(o + (<usize>j << 2), dot1<T>(xr, w + <usize>j * wRow, k));
    }
  }
}

/** out[m, n] = x[m, k] · w[n, k]ᵀ with f32 weights, output columns [j0, j1) only. */
export function matmulF32(x: usize, w: usize, m: i32, k: i32, n: i32, out: usize, j0: i32, j1: i32): void {
  matmul<f32>(x, w, m, k, n, out, j0, j1);
}

/** out[m, n] = x[m, k] · w[n, k]ᵀ with binary16 weights, output columns [j0, j1) only. */
export function matmulF16(x: usize, w: usize, m: i32, k: i32, n: i32, out: usize, j0: i32, j1: i32): void {
  matmul<u16>(x, w, m, k, n, out, j0, j1);
}

/** out[m, n] = x[m, k] · w[n, k]ᵀ with bfloat16 weights, output columns [j0, j1) only. */
export function matmulBF16(x: usize, w: usize, m: i32, k: i32, n: i32, out: usize, j0: i32, j1: i32): void {
  matmul<i16>(x, w, m, k, n, out, j0, j1);
}

function decodeRow<T>(w: usize, k: i32, out: usize): void {
  let c = 0;
  for (; c + 4 <= k; c += 4) {
    v128.store(out + (<usize>c << 2), load4<T>(w, c));
  }
  for (; c < k; c++) {
    store<f32>(out + (<usize>c << 2), load1<T>(w, c));
  }
}

/**
 * out[s, e] = decode(table)[ids[s], e]. Ids were checked against the vocabulary by the caller.
 * format: 0 f32, 1 f16, 2 bf16.
 */
export function embedding(ids: usize, seq: i32, table: usize, format: i32, embed: i32, out: usize): void {
  const rowBytes = <usize>embed * (format == 0 ? 4 : 2);
  for (let s = 0; s < seq; s++) {
    const row = table + <usize>load<i32>(ids + (<usize>s << 2)) * rowBytes;
    const o = out + ((<usize>s * <usize>embed) << 2);
    if (format == 0) {
      memory.copy(o, row, rowBytes);
    } else if (format == 1) {
      decodeRow<u16>(row, embed, o);
    } else {
      decodeRow<i16>(row, embed, o);
    }
  }
}
