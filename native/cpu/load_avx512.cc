// Load.cc's Q6_K encoder (q6k_encode.inc) compiled with the AVX-512 library's -m flags, so its lanes (a block's
// 16 sub-blocks) run eight doubles at a time; called only when the CPU has AVX-512 (load.cc dispatches). The same
// source as the baseline and AVX2 units, so the same bytes.
#include <cmath>
#include <cstdint>
#include <cstring>

#include <immintrin.h>

#include "kernels.h"
#include "kv_cache.h"
#include "load_transcode.h"

namespace barbell {
namespace {

// q6k_encode.inc's vector traits: eight doubles, AVX-512 masks.
struct Q6kV {
  using D = __m512d;
  using M = __mmask8;
  static constexpr int W = 8;
  static D load(const double* p) { return _mm512_load_pd(p); }
  static void store(double* p, D v) { _mm512_store_pd(p, v); }
  static D set1(double v) { return _mm512_set1_pd(v); }
  static D zero() { return _mm512_setzero_pd(); }
  static D add(D a, D b) { return _mm512_add_pd(a, b); }
  static D mul(D a, D b) { return _mm512_mul_pd(a, b); }
  static D fma(D a, D b, D c) { return _mm512_fmadd_pd(a, b, c); }
  static D div(D a, D b) { return _mm512_div_pd(a, b); }
  static D min(D a, D b) { return _mm512_min_pd(a, b); }
  static D max(D a, D b) { return _mm512_max_pd(a, b); }
  static D round_even(D v) { return _mm512_roundscale_pd(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static M gt(D a, D b) { return _mm512_cmp_pd_mask(a, b, _CMP_GT_OQ); }
  static D sub(D a, D b) { return _mm512_sub_pd(a, b); }
  static D abs(D v) { return _mm512_abs_pd(v); }
  static M ge(D a, D b) { return _mm512_cmp_pd_mask(a, b, _CMP_GE_OQ); }
  static M both(M a, M b) { return static_cast<M>(a & b); }
  static D load_f32(const float* p) { return _mm512_cvtps_pd(_mm256_loadu_ps(p)); }
  // W codes 0..63 (NaN → 0) as bytes.
  static void store_codes(uint8_t* p, D c) {
    const __m256i v = _mm512_maskz_cvttpd_epi32(_mm512_cmp_pd_mask(c, c, _CMP_ORD_Q), c);
    _mm_storel_epi64(reinterpret_cast<__m128i*>(p), _mm256_cvtepi32_epi8(v));
  }
  static D sel(M m, D a, D b) { return _mm512_mask_blend_pd(m, b, a); }
};
#define Q6K_SIMD 1
#include "q6k_encode.inc"

}  // namespace

void encode_q6_k_avx512(int64_t format, const uint8_t* src, int64_t blocks, uint8_t* dst) {
  encode_q6_k_source(format, src, blocks, dst);
}

}  // namespace barbell
