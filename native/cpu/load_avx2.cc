// Load.cc's kernels with AVX2 (the I2_S / TQ2_0 → t2 group kernel; the Q8_0 encoder): compiled into the AVX2
// library with its -m flags and called only when the CPU has AVX2 and F16C (load.cc dispatches). The same bytes
// and results as the scalar group_to_t2 and encode_q8_0_block.
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "kernels.h"
#include "kv_cache.h"
#include "load_transcode.h"

namespace barbell {
namespace {

// One 32-byte group of 128 codes → 32 t2 bytes. Each dword g of the source holds a 4×4 matrix of 2-bit codes
// (byte k, field i at bit 8k + 2i); t2 byte 8i + g packs field i (TQ2_0; I2_S: field 3 − i) of bytes 0..3, the
// transpose. Two delta swaps transpose all eight dwords at once, a byte shuffle and a dword permute put
// byte i of dword g at 8i + g. False on a code 3 (nothing written then).
inline bool group_to_t2_avx2(const uint8_t* src, uint8_t* dst, bool tq2, uint32_t* nonzero) {
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src));
  const __m256i m55 = _mm256_set1_epi8(0x55);
  if (!_mm256_testz_si256(_mm256_and_si256(v, _mm256_srli_epi16(v, 1)), m55)) {
    return false;
  }
  if (tq2 && !_mm256_testz_si256(_mm256_xor_si256(v, m55), _mm256_set1_epi8(-1))) {
    *nonzero = 1;
  }
  __m256i x = v;
  __m256i t = _mm256_and_si256(_mm256_xor_si256(_mm256_srli_epi32(x, 12), x), _mm256_set1_epi32(0x0000f0f0));
  x = _mm256_xor_si256(x, _mm256_xor_si256(t, _mm256_slli_epi32(t, 12)));
  t = _mm256_and_si256(_mm256_xor_si256(_mm256_srli_epi32(x, 6), x), _mm256_set1_epi32(0x00cc00cc));
  x = _mm256_xor_si256(x, _mm256_xor_si256(t, _mm256_slli_epi32(t, 6)));
  // Within each 128-bit lane (dwords g = 0..3 of that lane): byte 4i + g ← byte 4g + i (TQ2_0) or 4g + 3 − i.
  const __m256i by_field = tq2 ? _mm256_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15,  //
                                                  0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15)
                               : _mm256_setr_epi8(3, 7, 11, 15, 2, 6, 10, 14, 1, 5, 9, 13, 0, 4, 8, 12,  //
                                                  3, 7, 11, 15, 2, 6, 10, 14, 1, 5, 9, 13, 0, 4, 8, 12);
  x = _mm256_shuffle_epi8(x, by_field);
  x = _mm256_permutevar8x32_epi32(x, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), x);
  return true;
}

// One block as encode_q8_0_block: the same absmax (MAXPS keeps its second operand when the first is NaN, so a
// NaN is skipped as there), d, 1/d and f16 scale; q = trunc(t + copysign(0.49999997, t)), which is roundf (ties
// away from zero) for every float t; NaN → 0 before the clamp to [−128, 127].
inline void q8_block(const __m256* v, uint8_t* out) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 amax = _mm256_setzero_ps();
  for (int k = 0; k < 4; ++k) {
    amax = _mm256_max_ps(_mm256_andnot_ps(sign, v[k]), amax);
  }
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  const float d = _mm_cvtss_f32(m) / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  const uint16_t h = q8_scale_f16(d);
  std::memcpy(out, &h, 2);
  const __m256 vid = _mm256_set1_ps(id);
  const __m256 half = _mm256_set1_ps(0.49999997f);
  __m256i q[4];
  for (int k = 0; k < 4; ++k) {
    const __m256 t = _mm256_mul_ps(v[k], vid);
    __m256 r = _mm256_round_ps(_mm256_add_ps(t, _mm256_or_ps(_mm256_and_ps(t, sign), half)), _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    r = _mm256_and_ps(r, _mm256_cmp_ps(r, r, _CMP_ORD_Q));
    r = _mm256_min_ps(_mm256_max_ps(r, _mm256_set1_ps(-128.0f)), _mm256_set1_ps(127.0f));
    q[k] = _mm256_cvttps_epi32(r);
  }
  // packs interleave the 128-bit lanes: dword order a0-3 b0-3 c0-3 d0-3 | a4-7 b4-7 c4-7 d4-7, put back in order.
  const __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 2), _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
}

// q6k_encode.inc's vector traits: four doubles, compare results as lane masks.
struct Q6kV {
  using D = __m256d;
  using M = __m256d;
  static constexpr int W = 4;
  static D load(const double* p) { return _mm256_load_pd(p); }
  static void store(double* p, D v) { _mm256_store_pd(p, v); }
  static D set1(double v) { return _mm256_set1_pd(v); }
  static D zero() { return _mm256_setzero_pd(); }
  static D add(D a, D b) { return _mm256_add_pd(a, b); }
  static D mul(D a, D b) { return _mm256_mul_pd(a, b); }
  static D fma(D a, D b, D c) { return _mm256_fmadd_pd(a, b, c); }
  static D div(D a, D b) { return _mm256_div_pd(a, b); }
  static D min(D a, D b) { return _mm256_min_pd(a, b); }
  static D max(D a, D b) { return _mm256_max_pd(a, b); }
  static D round_even(D v) { return _mm256_round_pd(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static M gt(D a, D b) { return _mm256_cmp_pd(a, b, _CMP_GT_OQ); }
  static D sub(D a, D b) { return _mm256_sub_pd(a, b); }
  static D abs(D v) { return _mm256_andnot_pd(_mm256_set1_pd(-0.0), v); }
  static M ge(D a, D b) { return _mm256_cmp_pd(a, b, _CMP_GE_OQ); }
  static M both(M a, M b) { return _mm256_and_pd(a, b); }
  static D load_f32(const float* p) { return _mm256_cvtps_pd(_mm_loadu_ps(p)); }
  // W codes 0..63 (NaN → 0) as bytes.
  static void store_codes(uint8_t* p, D c) {
    const __m128i v = _mm256_cvttpd_epi32(_mm256_and_pd(c, _mm256_cmp_pd(c, c, _CMP_ORD_Q)));
    const __m128i b = _mm_packus_epi16(_mm_packs_epi32(v, v), _mm_setzero_si128());
    const uint32_t w = static_cast<uint32_t>(_mm_cvtsi128_si32(b));
    std::memcpy(p, &w, 4);
  }
  static D sel(M m, D a, D b) { return _mm256_blendv_pd(b, a, m); }
};
#define Q6K_SIMD 1
#include "q6k_encode.inc"

}  // namespace

int32_t transcode_2bit_avx2(int64_t format, const uint8_t* src, int64_t n, uint8_t* dst) {
  return transcode_2bit_with(group_to_t2_avx2, format, src, n, dst);
}

void encode_q8_0_avx2(int64_t format, const uint8_t* src, int64_t blocks, uint8_t* dst) {
  __m256 v[4];
  for (int64_t b = 0; b < blocks; ++b) {
    for (int k = 0; k < 4; ++k) {
      v[k] = load8(format, src, 32 * b + 8 * k);
    }
    q8_block(v, dst + 34 * b);
  }
}

void encode_q6_k_avx2(int64_t format, const uint8_t* src, int64_t blocks, uint8_t* dst) {
  encode_q6_k_source(format, src, blocks, dst);
}

}  // namespace barbell
