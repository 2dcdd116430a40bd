// Element-level semantics shared by the CUDA kernels and the host-side checks (compiled by nvcc for the device
// and by g++ for the harness's CPU self-check), so the host check exercises the same arithmetic the kernels run.
//
// Every integer step is exact; every float step names its IEEE operation (_rn intrinsics on the device, plain
// float operators on the host, where the harness is built with -ffp-contract=off), matching the JS reference
// (src/backends/js/kernels/matmul.ts, src/quant/values.ts quantizeActivations, dense.ts matmulQ8I8).
#pragma once

#include <stdint.h>

#if defined(__CUDACC__)
#define BB_HD __host__ __device__ __forceinline__
#else
#define BB_HD inline
#endif

#if defined(__CUDA_ARCH__)
#define BB_FMUL(a, b) __fmul_rn((a), (b))
#define BB_FDIV(a, b) __fdiv_rn((a), (b))
#define BB_FADD(a, b) __fadd_rn((a), (b))
#define BB_RINT(a) rintf(a)
#else
#include <cmath>
#define BB_FMUL(a, b) ((a) * (b))
#define BB_FDIV(a, b) ((a) / (b))
#define BB_FADD(a, b) ((a) + (b))
#define BB_RINT(a) std::nearbyint(a)
#endif

namespace bbcuda {

/** Largest K of the int8 kernels (src/backends/js/kernels/matmul.ts MAX_DOT_K): 128·K fits an int32. */
constexpr int kMaxDotK = (1 << 24) - 1;
/** Elements per Q8_0 block, bytes per block (f16 scale + 32 int8). */
constexpr int kQ8Block = 32;
constexpr int kQ8Bytes = 34;
/** The quantizer's absmax floor (src/quant/values.ts QUANT_EPS), compared in double as JS does. */
constexpr double kQuantEps = 1e-5;

/** t2 code → trit: code = trit + 1, code 3 decodes to 0 (src/quant/layouts.ts). */
BB_HD int trit_of_code(unsigned code) { return code == 0u ? -1 : (code == 2u ? 1 : 0); }

/** dp4a: Σ of four int8 × int8 products plus c (the device instruction's definition; exact). */
BB_HD int dp4a_ref(uint32_t a, uint32_t b, int c) {
  for (int i = 0; i < 4; ++i) {
    c += static_cast<int>(static_cast<int8_t>(a >> (8 * i))) * static_cast<int>(static_cast<int8_t>(b >> (8 * i)));
  }
  return c;
}

/** The quantizer's scale from a row's absmax: fround(127 / fround(max(absmax, 1e-5))). */
BB_HD float quant_scale(float absmax) {
  const double clamped = static_cast<double>(absmax) > kQuantEps ? static_cast<double>(absmax) : kQuantEps;
  return BB_FDIV(127.0f, static_cast<float>(clamped));
}

/** One element: clamp(roundHalfEven(fround(x · s)), −128, 127). */
BB_HD int8_t quant_value(float x, float s) {
  float v = BB_RINT(BB_FMUL(x, s));
  v = v > 127.0f ? 127.0f : (v < -128.0f ? -128.0f : v);
  return static_cast<int8_t>(v);
}

/** The BitLinear scaling: fround(fround(fround(acc) / s_x) · γ). */
BB_HD float scale_acc(int acc, float sx, float gamma) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(__fdiv_rn(__int2float_rn(acc), sx), gamma);
#else
  return (static_cast<float>(acc) / sx) * gamma;
#endif
}

/** One Q8 head term: fround(fround(idot · inv) · d), added in block order by the caller. */
BB_HD float q8_term(int idot, float inv, float d) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(__fmul_rn(__int2float_rn(idot), inv), d);
#else
  return (static_cast<float>(idot) * inv) * d;
#endif
}

/** IEEE half → float, exact (subnormals, infinities and NaN included). */
BB_HD float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else {
      int e = -1;
      do {
        ++e;
        man <<= 1;
      } while ((man & 0x400u) == 0);
      bits = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (man << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
  }
  float f;
  {
    union {
      uint32_t u;
      float f;
    } u{bits};
    f = u.f;
  }
  return f;
}

/** bfloat16 → float: the high half of a float32. */
BB_HD float bf16_to_float(uint16_t h) {
  union {
    uint32_t u;
    float f;
  } u{static_cast<uint32_t>(h) << 16};
  return u.f;
}

/** Bytes of one t2 row of K trits, and of a repacked device row (whole 16-element words; padding code 1 = trit 0). */
BB_HD int t2_row_bytes(int k) { return (k + 3) / 4; }
BB_HD int t2_padded_row_bytes(int k) { return ((k + 15) / 16) * 4; }

/** The t2 code of element c of a row (codes past k read as 1, trit 0). */
BB_HD unsigned t2_code(const uint8_t* row, int k, int c) {
  return c < k ? (static_cast<unsigned>(row[c >> 2]) >> ((c & 3) * 2)) & 3u : 1u;
}

/**
 * The device layout of a ternary row, made once at upload: each group of 16 elements is one little-endian
 * uint32 whose element e sits in byte e % 4 at bits 2·(e / 4). Then (word >> 2i) & 0x03030303 holds the codes
 * of elements 4i … 4i+3 in byte order: the four trits that dp4a multiplies with activation word i of the group.
 */
BB_HD void repack_t2_row(const uint8_t* src, int k, uint8_t* dst) {
  const int words = (k + 15) / 16;
  for (int g = 0; g < words; ++g) {
    uint32_t w = 0;
    for (int e = 0; e < 16; ++e) {
      w |= static_cast<uint32_t>(t2_code(src, k, 16 * g + e)) << (8 * (e % 4) + 2 * (e / 4));
    }
    for (int b = 0; b < 4; ++b) {
      dst[4 * g + b] = static_cast<uint8_t>(w >> (8 * b));
    }
  }
}

/** Four codes (one a byte) → four int8 trits: code − 1, and code 3 → 0 (per byte, no carries). */
BB_HD uint32_t trits_of_codes(uint32_t codes) {
#if defined(__CUDA_ARCH__)
  return __vsub4(codes, 0x01010101u) & ~__vcmpeq4(codes, 0x03030303u);
#else
  uint32_t out = 0;
  for (int b = 0; b < 4; ++b) {
    const int t = trit_of_code((codes >> (8 * b)) & 3u);
    out |= static_cast<uint32_t>(static_cast<uint8_t>(static_cast<int8_t>(t))) << (8 * b);
  }
  return out;
#endif
}

/** dp4a on the device, its definition on the host. */
BB_HD int dp4a(uint32_t a, uint32_t b, int c) {
#if defined(__CUDA_ARCH__)
  return __dp4a(static_cast<int>(a), static_cast<int>(b), c);
#else
  return dp4a_ref(a, b, c);
#endif
}

/** Σ trit·x over one repacked 16-element word and its four activation words (exact). */
BB_HD int dot16(uint32_t w, const uint32_t x[4], int acc) {
  for (int i = 0; i < 4; ++i) {
    acc = dp4a(trits_of_codes((w >> (2 * i)) & 0x03030303u), x[i], acc);
  }
  return acc;
}
/** A t2 byte of four zero trits (code 1 each): what the repacked rows are padded with. */
constexpr uint8_t kT2ZeroByte = 0x55;

}  // namespace bbcuda
