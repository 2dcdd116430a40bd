/**
 * 16-bit float conversions: IEEE-754 binary16 ("half", fp16) and bfloat16.
 *
 *   binary16:  sign(1) exponent(5, bias 15) mantissa(10)    max 65504, min subnormal 2^-24
 *   bfloat16:  the upper 16 bits of a binary32              sign(1) exponent(8) mantissa(7)
 *
 * Encoders round to nearest, ties to even (as F16C `vcvtps2ph` with mode 0, ggml and PyTorch).
 * All functions reuse one module-level scratch word, so no call allocates.
 */

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** Bit pattern of `x` rounded to float32. */
export function f32Bits(x: number): number {
  scratchF32[0] = x;
  return scratchU32[0] ?? 0;
}

/** The float32 value of a 32-bit pattern (NaN payloads are not kept once read as a JS number). */
export function f32FromBits(bits: number): number {
  scratchU32[0] = bits;
  return scratchF32[0] ?? 0;
}

/** Converts a binary16 bit pattern to binary32 bits (exact widening; NaN sign and payload kept). */
export function halfBitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) {
    return (sign | 0x7f800000 | (mant << 13)) >>> 0;
  }
  if (exp !== 0) {
    return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
  }
  if (mant === 0) {
    return sign >>> 0;
  }
  // Subnormal half: normalize the mantissa so it becomes a normal float32.
  let m = mant;
  let e = 113;
  while ((m & 0x400) === 0) {
    m <<= 1;
    e--;
  }
  return (sign | (e << 23) | ((m & 0x3ff) << 13)) >>> 0;
}

/**
 * float32 bits of every binary16 pattern. 256 KiB, built once; decoders copy entries through a
 * Uint32Array view so NaN bit patterns survive.
 */
export const HALF_TO_F32_BITS: Uint32Array = (() => {
  const table = new Uint32Array(65536);
  for (let h = 0; h < 65536; h++) {
    table[h] = halfBitsToF32Bits(h);
  }
  return table;
})();

/** The same table read as float32 values. */
export const HALF_TO_F32: Float32Array = new Float32Array(HALF_TO_F32_BITS.buffer);

/** Converts a binary16 bit pattern (0..65535) to its number value. */
export function halfToF32(h: number): number {
  return HALF_TO_F32[h & 0xffff] ?? 0;
}

/** Converts float32 bits to binary16 bits, rounding to nearest even; overflow gives ±inf. */
export function f32BitsToHalfBits(u: number): number {
  const sign = (u >>> 16) & 0x8000;
  const abs = u & 0x7fffffff;
  if (abs >= 0x7f800000) {
    // Inf stays inf; NaN keeps the top mantissa bits and is forced quiet so it cannot become inf.
    return abs === 0x7f800000 ? sign | 0x7c00 : sign | 0x7e00 | ((abs >>> 13) & 0x3ff);
  }
  if (abs >= 0x477ff000) {
    // 65520 is the tie between 65504 (odd mantissa) and 65536, so it and above round to inf.
    return sign | 0x7c00;
  }
  const e = abs >>> 23;
  if (e >= 113) {
    const mant = abs & 0x7fffff;
    let h = ((e - 112) << 10) | (mant >>> 13);
    const rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) {
      h++; // a carry out of the mantissa correctly bumps the exponent
    }
    return sign | h;
  }
  if (e < 102) {
    return sign; // below half of the smallest subnormal (2^-25)
  }
  // Subnormal result in units of 2^-24: the 24-bit significand shifted right by 126 - e (14..24).
  const m = (abs & 0x7fffff) | 0x800000;
  const shift = 126 - e;
  let q = m >>> shift;
  const rem = m & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (rem > half || (rem === half && (q & 1) === 1)) {
    q++; // may reach 0x400, which is exactly the smallest normal half
  }
  return sign | q;
}

/** Converts a number to binary16 bits (via float32 first, as C's `(ggml_fp16_t)(float)x`). */
export function f32ToHalf(x: number): number {
  scratchF32[0] = x;
  return f32BitsToHalfBits(scratchU32[0] ?? 0);
}

/** Rounds a number to the nearest binary16 value and returns it as a number. */
export function roundToHalf(x: number): number {
  return halfToF32(f32ToHalf(x));
}

/** Converts a bfloat16 bit pattern to its number value (`bits << 16` read as float32). */
export function bf16ToF32(b: number): number {
  scratchU32[0] = (b & 0xffff) << 16;
  return scratchF32[0] ?? 0;
}

/** Converts float32 bits to bfloat16 bits, rounding to nearest even; NaN stays a quiet NaN. */
export function f32BitsToBf16Bits(u: number): number {
  if ((u & 0x7fffffff) > 0x7f800000) {
    return ((u >>> 16) | 0x40) & 0xffff;
  }
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Converts a number to bfloat16 bits (via float32 first). */
export function f32ToBf16(x: number): number {
  scratchF32[0] = x;
  return f32BitsToBf16Bits(scratchU32[0] ?? 0);
}
