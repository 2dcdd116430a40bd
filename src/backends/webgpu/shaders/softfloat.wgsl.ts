/**
 * IEEE binary32 arithmetic in integer WGSL: multiply, divide and add rounded to nearest-even, with
 * subnormals, infinities and NaN, plus exact int32 → f32 and f32 → int (ties to even) conversions.
 *
 * Why: the integer kernels must match the JS reference bit for bit, and WGSL does not promise that of its
 * own float operations. Division may be off by 2.5 ulp, the rounding mode of + and × is unspecified,
 * a compiler may fuse a·b + c into an FMA, subnormals may be flushed, and infinities and NaN may be
 * assumed absent (WGSL §"Floating point evaluation"). These functions run once per output (or once per
 * Q8_0 block and output), never per multiply-accumulate, so their cost is small next to the dot products.
 *
 * Values travel as their bit patterns (u32). Conventions follow the classic soft-float design: a
 * significand `sig` with its leading 1 at bit 30 and 7 rounding bits below the f32 mantissa, and an
 * exponent `exp` one less than the biased exponent of the result (the leading 1 carries into it on packing).
 */
export const SOFTFLOAT_WGSL = /* wgsl */ `
const SF_NAN: u32 = 0x7fc00000u;

// Shifts right, OR-ing every bit shifted out into bit 0 (the sticky bit).
fn sf_shift_right_jam(a: u32, dist: u32) -> u32 {
  if (dist == 0u) { return a; }
  if (dist >= 31u) { return select(0u, 1u, a != 0u); }
  return (a >> dist) | select(0u, 1u, (a << (32u - dist)) != 0u);
}

// Rounds sig (leading 1 at bit 30 when normal) to nearest-even and packs sign, exponent and mantissa.
fn sf_round_pack(sign: u32, exp_in: i32, sig_in: u32) -> u32 {
  var exp = exp_in;
  var sig = sig_in;
  if (exp >= 0xfd) {
    if (exp > 0xfd || sig + 0x40u >= 0x80000000u) {
      return (sign << 31u) | 0x7f800000u;
    }
  }
  if (exp < 0) {
    sig = sf_shift_right_jam(sig, u32(-exp));
    exp = 0;
  }
  let round_bits = sig & 0x7fu;
  sig = (sig + 0x40u) >> 7u;
  if (round_bits == 0x40u) {
    sig = sig & ~1u;
  }
  if (sig == 0u) {
    exp = 0;
  }
  return (sign << 31u) + (u32(exp) << 23u) + sig;
}

// Unpacked finite operand: the biased exponent (1 for subnormals) and the significand with its implicit bit.
struct SfParts {
  exp: i32,
  sig: u32,
}

fn sf_parts(bits: u32) -> SfParts {
  let e = (bits >> 23u) & 0xffu;
  let m = bits & 0x7fffffu;
  if (e == 0u) {
    return SfParts(1, m);
  }
  return SfParts(i32(e), m | 0x800000u);
}

// Normalized parts: leading 1 at bit 23 (subnormals shifted up, exponent lowered to match). sig != 0.
fn sf_norm_parts(bits: u32) -> SfParts {
  var p = sf_parts(bits);
  let shift = i32(countLeadingZeros(p.sig)) - 8;
  p.sig = p.sig << u32(shift);
  p.exp = p.exp - shift;
  return p;
}

fn sf_is_nan(a: u32) -> bool {
  return (a & 0x7fffffffu) > 0x7f800000u;
}

// High and low words of the 64-bit product a · b.
fn sf_mul_wide(a: u32, b: u32) -> vec2<u32> {
  let a0 = a & 0xffffu;
  let a1 = a >> 16u;
  let b0 = b & 0xffffu;
  let b1 = b >> 16u;
  let p00 = a0 * b0;
  let p01 = a0 * b1;
  let p10 = a1 * b0;
  let p11 = a1 * b1;
  let mid = (p00 >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
  let lo = (mid << 16u) | (p00 & 0xffffu);
  let hi = p11 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u);
  return vec2<u32>(hi, lo);
}

// a · b, rounded to nearest-even (IEEE binary32 multiplication).
fn sf_mul(a: u32, b: u32) -> u32 {
  let sign = (a ^ b) >> 31u;
  let ma = a & 0x7fffffffu;
  let mb = b & 0x7fffffffu;
  if (ma > 0x7f800000u || mb > 0x7f800000u) { return SF_NAN; }
  if (ma == 0x7f800000u || mb == 0x7f800000u) {
    if (ma == 0u || mb == 0u) { return SF_NAN; }
    return (sign << 31u) | 0x7f800000u;
  }
  if (ma == 0u || mb == 0u) { return sign << 31u; }
  let pa = sf_norm_parts(ma);
  let pb = sf_norm_parts(mb);
  var exp = pa.exp + pb.exp - 0x7f;
  let wide = sf_mul_wide(pa.sig << 7u, pb.sig << 8u);
  var sig = wide.x | select(0u, 1u, wide.y != 0u);
  if (sig < 0x40000000u) {
    exp = exp - 1;
    sig = sig << 1u;
  }
  return sf_round_pack(sign, exp, sig);
}

// a / b, rounded to nearest-even (IEEE binary32 division), by restoring long division.
fn sf_div(a: u32, b: u32) -> u32 {
  let sign = (a ^ b) >> 31u;
  let ma = a & 0x7fffffffu;
  let mb = b & 0x7fffffffu;
  if (ma > 0x7f800000u || mb > 0x7f800000u) { return SF_NAN; }
  if (ma == 0x7f800000u) {
    if (mb == 0x7f800000u) { return SF_NAN; }
    return (sign << 31u) | 0x7f800000u;
  }
  if (mb == 0x7f800000u) { return sign << 31u; }
  if (mb == 0u) {
    if (ma == 0u) { return SF_NAN; }
    return (sign << 31u) | 0x7f800000u;
  }
  if (ma == 0u) { return sign << 31u; }
  let pa = sf_norm_parts(ma);
  let pb = sf_norm_parts(mb);
  var exp = pa.exp - pb.exp + 0x7e;
  var rem = pa.sig;
  if (rem < pb.sig) {
    rem = rem << 1u;
    exp = exp - 1;
  }
  // 31 quotient bits: the integer bit (lands at bit 30) and 30 fraction bits; the remainder is sticky.
  var q = 0u;
  for (var i = 0u; i < 31u; i = i + 1u) {
    q = q << 1u;
    if (rem >= pb.sig) {
      rem = rem - pb.sig;
      q = q | 1u;
    }
    rem = rem << 1u;
  }
  q = q | select(0u, 1u, rem != 0u);
  return sf_round_pack(sign, exp, q);
}

// a + b, rounded to nearest-even (IEEE binary32 addition; +0 for an exact zero sum of opposite signs).
fn sf_add(a: u32, b: u32) -> u32 {
  let ma = a & 0x7fffffffu;
  let mb = b & 0x7fffffffu;
  if (ma > 0x7f800000u || mb > 0x7f800000u) { return SF_NAN; }
  if (ma == 0x7f800000u || mb == 0x7f800000u) {
    if (ma == 0x7f800000u && mb == 0x7f800000u && (a ^ b) >= 0x80000000u) { return SF_NAN; }
    return select(b, a, ma == 0x7f800000u);
  }
  if (mb == 0u) {
    return select(a, a & b, ma == 0u);
  }
  if (ma == 0u) { return b; }
  // big has the larger magnitude; its sign is the result's (or the exact zero is +0).
  let swap = mb > ma;
  let big = select(a, b, swap);
  let small = select(b, a, swap);
  let pb = sf_parts(big & 0x7fffffffu);
  let ps = sf_parts(small & 0x7fffffffu);
  let sig_big = pb.sig << 6u;
  let sig_small = sf_shift_right_jam(ps.sig << 6u, u32(pb.exp - ps.exp));
  var sig: u32;
  if (((a ^ b) >> 31u) == 0u) {
    sig = sig_big + sig_small;
  } else {
    sig = sig_big - sig_small;
  }
  if (sig == 0u) { return 0u; }
  let lz = i32(countLeadingZeros(sig));
  return sf_round_pack(big >> 31u, pb.exp + 1 - lz, sig << u32(lz - 1));
}

// The int32 v as f32, rounded to nearest-even (exact for |v| <= 2^24).
fn sf_from_i32(v: i32) -> u32 {
  let bits = bitcast<u32>(v);
  let sign = bits >> 31u;
  let mag = select(bits, 0u - bits, sign == 1u);
  if (mag == 0u) { return 0u; }
  let lz = countLeadingZeros(mag);
  var sig: u32;
  if (lz == 0u) {
    sig = (mag >> 1u) | (mag & 1u);
  } else {
    sig = mag << (lz - 1u);
  }
  return sf_round_pack(sign, 157 - i32(lz), sig);
}

// Rounds the f32 a to the nearest integer, ties to even, clamped to [lo, hi] (NaN gives 0).
fn sf_round_even_clamp(a: u32, lo: i32, hi: i32) -> i32 {
  let mag = a & 0x7fffffffu;
  if (mag > 0x7f800000u) { return 0; }
  let negative = (a >> 31u) == 1u;
  let e = i32(mag >> 23u);
  // |a| >= 2^30: certainly outside any int8/int16 clamp range we use.
  if (e >= 0x7f + 30) { return select(hi, lo, negative); }
  if (e < 0x7e) { return 0; } // |a| < 0.5
  let sig = (mag & 0x7fffffu) | 0x800000u;
  var r: u32;
  let shift = 0x7f + 23 - e; // bits below the binary point
  if (shift <= 0) {
    r = sig << u32(-shift);
  } else {
    let s = u32(shift);
    let whole = sig >> s;
    let rest = sig & ((1u << s) - 1u);
    let half = 1u << (s - 1u);
    r = whole + select(0u, 1u, rest > half || (rest == half && (whole & 1u) == 1u));
  }
  let v = select(i32(r), -i32(r), negative);
  return clamp(v, lo, hi);
}

// binary16 bits (low 16 bits of h) widened exactly to binary32 bits.
fn sf_half_to_f32(h: u32) -> u32 {
  let sign = (h & 0x8000u) << 16u;
  let e = (h >> 10u) & 0x1fu;
  let m = h & 0x3ffu;
  if (e == 0x1fu) { return sign | 0x7f800000u | (m << 13u); }
  if (e != 0u) { return sign | ((e + 112u) << 23u) | (m << 13u); }
  if (m == 0u) { return sign; }
  let shift = countLeadingZeros(m) - 21u; // brings the leading 1 to bit 10
  return sign | ((113u - shift) << 23u) | (((m << shift) & 0x3ffu) << 13u);
}
`;
