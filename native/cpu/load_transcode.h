// The I2_S / TQ2_0 → t2 transcode loop (load.cc), shared by the scalar path (load.cc) and the AVX2 one
// (load_avx2.cc), which differ only in the 32-byte group kernel. Both must give the same bytes and results.
#pragma once

#include <cstdint>

#if defined(__AVX2__) && defined(__F16C__)
#include <immintrin.h>
#endif

namespace barbell {

// n codes of I2_S (format 0) or TQ2_0 (format 1) at src into n/4 t2 bytes at dst with `group(src, dst, tq2,
// &nonzero)` converting one 32-byte group of 128 codes (false on a code 3; nonzero made non-zero when a code
// is not 1). Returns −2 when the JS decoding path must decide (a code 3; for TQ2_0 also non-finite, differing,
// negative or zero scales of blocks with a non-zero code), else for TQ2_0 the fp16 bits of the one scale (−1:
// every block all zero), for I2_S 0. dst is unspecified after −2.
template <typename Group>
inline int32_t transcode_2bit_with(Group group, int64_t format, const uint8_t* src, int64_t n, uint8_t* dst) {
  const int64_t groups = n / 128;
  if (format == 0) {
    uint32_t nonzero = 0;
    for (int64_t g = 0; g < groups; ++g) {
      if (!group(src + 32 * g, dst + 32 * g, false, &nonzero)) {
        return -2;
      }
    }
    return 0;
  }
  int32_t scale = -1;
  for (int64_t b = 0; b < groups / 2; ++b) {
    const uint8_t* block = src + 66 * b;
    uint32_t nonzero = 0;
    if (!group(block, dst + 64 * b, true, &nonzero) || !group(block + 32, dst + 64 * b + 32, true, &nonzero)) {
      return -2;
    }
    const int32_t d = block[64] | (block[65] << 8);
    if ((d & 0x7c00) == 0x7c00) {
      return -2;
    }
    if (nonzero != 0) {
      if (scale == -1) {
        scale = d;
      }
      if (d != scale || (d & 0x8000) != 0 || (d & 0x7fff) == 0) {
        return -2;
      }
    }
  }
  return scale;
}

#if defined(__AVX2__) && defined(__F16C__)
// For the units compiled with AVX2 and F16C (load_avx2.cc, load_avx512.cc): eight source values of `format` (f32 0,
// f16 1, bf16 2) at element i as floats; f16 and bf16 widen exactly. In an unnamed namespace: each unit gets its own
// copy for its own -m flags (one shared inline definition could be the AVX-512 unit's, run on an AVX2-only CPU).
namespace {
inline __m256 load8(int64_t format, const uint8_t* src, int64_t i) {
  if (format == 0) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(src + 4 * i));
  }
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * i));
  if (format == 1) {
    return _mm256_cvtph_ps(h);
  }
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
}  // namespace
#endif

#if defined(__x86_64__) || defined(_M_X64)
// transcode_2bit_with over the AVX2 group kernel (load_avx2.cc); call only where the CPU has AVX2.
int32_t transcode_2bit_avx2(int64_t format, const uint8_t* src, int64_t n, uint8_t* dst);
// `blocks` blocks of 32 f32 (format 0), f16 (1) or bf16 (2) values at src to Q8_0 at dst, the same bytes as
// encode_q8_0_block (kv_cache.h) on each block (load_avx2.cc); call only where the CPU has AVX2 and F16C.
void encode_q8_0_avx2(int64_t format, const uint8_t* src, int64_t blocks, uint8_t* dst);
// `blocks` blocks of 256 f32 (format 0), f16 (1) or bf16 (2) values at src to Q6_K at dst (q6k_encode.inc compiled
// with AVX2 in load_avx2.cc, with AVX-512 in load_avx512.cc; the same bytes as the baseline unit's); call only
// where the CPU has that ISA.
void encode_q6_k_avx2(int64_t format, const uint8_t* src, int64_t blocks, uint8_t* dst);
void encode_q6_k_avx512(int64_t format, const uint8_t* src, int64_t blocks, uint8_t* dst);
#endif

}  // namespace barbell
