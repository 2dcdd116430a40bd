// The integer k-quant head (KI8Args in kquant.h) with AVX-512BW + VNNI: compiled into the VNNI library with its
// -m flags (binding.gyp) and called only when the executor's ISA is AVX-512 VNNI. A block unpacks into four
// 64-byte code vectors in element order; each is multiplied with the activations by maddubs (u8 × s8 pairs) and
// scaled per 16-element sub-block by vpdpwssd, so the integer sums A and B, and with them the output bits, are
// the scalar kernel's.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kquant.h"
#include "sums8_avx2.inc"

#if defined(__x86_64__) || defined(_M_X64)

namespace barbell {

namespace {

#include "kquant_simd.inc"

// One weight block: codes in element order (4 × 64), per chunk the int16 scale of each lane's sub-block,
// offset multipliers (16 int16), d and dmin.
struct KBlockZ {
  __m512i u[4];
  __m512i s[4];
  __m256i mn;
  float d, dmin;
};

// Lane L (int16, 0..31) of chunk c covers elements 64c + 2L, 64c + 2L + 1: sub-block 4c + L / 8.
inline void chunk_scales(__m256i sc16, KBlockZ& o) {
  const __m512i all = _mm512_castsi256_si512(sc16);
  const __m512i step = _mm512_set_epi16(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
  for (int c = 0; c < 4; ++c) {
    o.s[c] = _mm512_permutexvar_epi16(_mm512_add_epi16(step, _mm512_set1_epi16(static_cast<int16_t>(4 * c))), all);
  }
}

// Per 16-bit word: the first 16 words (bytes 0..31) shifted by lo, the next 16 by hi.
inline __m512i halves(int lo, int hi) {
  return _mm512_inserti64x4(_mm512_set1_epi16(static_cast<int16_t>(lo)), _mm256_set1_epi16(static_cast<int16_t>(hi)), 1);
}

inline __m512i load64(const uint8_t* p) { return _mm512_loadu_si512(reinterpret_cast<const void*>(p)); }
inline __m512i bcast32(const uint8_t* p) { return _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }

inline void unpack_q6k(const uint8_t* block, KBlockZ& o) {
  o.d = f16_at(block + 208);
  o.dmin = 0.0f;
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  const __m512i m3 = _mm512_set1_epi8(3);
  const __m512i sh02 = halves(0, 2), sh46 = halves(4, 6);
  for (int h = 0; h < 2; ++h) {
    // ql[64h..64h+63]: low nibbles are elements 128h + 0..63, high nibbles 128h + 64..127; qh bits 0-1 / 2-3
    // go with the low nibbles of its first / second 32 bytes, bits 4-5 / 6-7 with the high nibbles.
    const __m512i ql = load64(block + 64 * h);
    const __m512i qh = bcast32(block + 128 + 32 * h);
    const __m512i h0 = _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(qh, sh02), m3), 4);
    const __m512i h1 = _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(qh, sh46), m3), 4);
    o.u[2 * h] = _mm512_or_si512(_mm512_and_si512(ql, m4), h0);
    o.u[2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4), h1);
  }
  __m128i sc;
  q6k_scales(block, &sc, &o.mn);
  chunk_scales(_mm256_cvtepi8_epi16(sc), o);
}

template <bool kFive>
inline void unpack_affine(const uint8_t* block, KBlockZ& o) {
  o.d = f16_at(block);
  o.dmin = f16_at(block + 2);
  const uint8_t* qs = block + (kFive ? 48 : 16);
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  const __m512i one = _mm512_set1_epi8(1);
  const __m512i sh04 = halves(0, 4);
  const __m512i qh = kFive ? bcast32(block + 16) : _mm512_setzero_si512();
  for (int c = 0; c < 4; ++c) {
    // qs[32c..32c+31] twice: low nibbles are elements 64c + 0..31, high nibbles 64c + 32..63.
    __m512i u = _mm512_and_si512(_mm512_srlv_epi16(bcast32(qs + 32 * c), sh04), m4);
    if (kFive) {
      u = _mm512_or_si512(u, _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(qh, halves(2 * c, 2 * c + 1)), one), 4));
    }
    o.u[c] = u;
  }
  __m128i sc;
  affine_scales(block, &sc, &o.mn);
  chunk_scales(_mm256_cvtepi8_epi16(sc), o);
}

// A and B of one block against one activation block as eight int32 lanes each (bounds as in the AVX2 kernel: no
// saturation, no overflow).
inline void k_parts(const KBlockZ& o, const int8_t* q, const int16_t* bs, __m256i* a, __m256i* b) {
  __m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();
  acc0 = _mm512_dpwssd_epi32(acc0, _mm512_maddubs_epi16(o.u[0], _mm512_loadu_si512(q)), o.s[0]);
  acc1 = _mm512_dpwssd_epi32(acc1, _mm512_maddubs_epi16(o.u[1], _mm512_loadu_si512(q + 64)), o.s[1]);
  acc0 = _mm512_dpwssd_epi32(acc0, _mm512_maddubs_epi16(o.u[2], _mm512_loadu_si512(q + 128)), o.s[2]);
  acc1 = _mm512_dpwssd_epi32(acc1, _mm512_maddubs_epi16(o.u[3], _mm512_loadu_si512(q + 192)), o.s[3]);
  const __m512i acc = _mm512_add_epi32(acc0, acc1);
  *a = _mm256_add_epi32(_mm512_castsi512_si256(acc), _mm512_extracti64x4_epi64(acc, 1));
  *b = _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(bs)), o.mn);
}

#include "kquant_i8_rows.inc"

}  // namespace

void kquant_i8_avx512vnni(const KI8Args& a, int j0, int j1) {
  kquant_i8_formats<KBlockZ>(a, j0, j1, unpack_q6k, unpack_affine<false>, unpack_affine<true>);
}

}  // namespace barbell

#endif
