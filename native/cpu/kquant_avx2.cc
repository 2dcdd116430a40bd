// The k-quant heads (kquant.h: Q6_K, Q4_K, Q5_K) with AVX2 + FMA + F16C: compiled into the AVX2 library with its
// -m flags and called only when the executor's ISA is AVX2 or above (every AVX-512 CPU here has AVX2).
// Same numerics contract as dense_blocks: each 256-block is decoded exactly (the scalar decoders' bits),
// multiplied with x in f32 FMA lanes, and the lanes of each block are added in double.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kquant.h"
#include "sums8_avx2.inc"

namespace barbell {

namespace {

#include "kquant_simd.inc"

// Code vector i (0..3: elements 32i .. 32i + 31 of a half, values 0..63) of one half of a Q6_K block from its ql
// bytes (ql0, ql1: the half's 64) and qh bytes (its 32). qh bit pairs 0-1, 2-3, 4-5, 6-7 go with vectors 0..3, moved
// to bits 4-5 of their byte (16-bit shifts: what crosses into the neighbouring byte lands outside 0x30).
inline __m256i q6k_code(__m256i ql0, __m256i ql1, __m256i qh, int i) {
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  const __m256i m30 = _mm256_set1_epi8(0x30);
  switch (i) {
    case 0: return _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30));
    case 1: return _mm256_or_si256(_mm256_and_si256(ql1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
    case 2: return _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4), _mm256_and_si256(qh, m30));
    default:
      return _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4), _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
  }
}

// The codes of one half (h 0, 1: elements 128h .. 128h + 127) of a Q6_K block as four 32-byte vectors, q[i] holding
// elements 128h + 32i .. 128h + 32i + 31.
inline void q6k_half_codes(const uint8_t* block, int h, __m256i q[4]) {
  const __m256i ql0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 64 * h));
  const __m256i ql1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 64 * h + 32));
  const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 128 + 32 * h));
  for (int i = 0; i < 4; ++i) {
    q[i] = q6k_code(ql0, ql1, qh, i);
  }
}

// The codes of chunk c (elements 64c .. 64c + 63) of a Q4_K (kFive false: 0..15) or Q5_K block (0..31: the fifth
// bits from qh, the block's 32 qh bytes, bits 2c and 2c + 1) as two 32-byte vectors: lo 64c + 0..31, hi 64c + 32..63.
template <bool kFive>
inline void affine_chunk_codes(const uint8_t* qs, __m256i qh, int c, __m256i* lo, __m256i* hi) {
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  const __m256i one = _mm256_set1_epi8(1);
  const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * c));
  *lo = _mm256_and_si256(q, m4);
  *hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
  if (kFive) {
    // Bits 2c and 2c + 1 of each qh byte (a 16-bit shift, then one bit per byte), moved to bit 4.
    const __m256i shifted = _mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * c));
    *lo = _mm256_or_si256(*lo, _mm256_slli_epi16(_mm256_and_si256(shifted, one), 4));
    *hi = _mm256_or_si256(*hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(shifted, 1), one), 4));
  }
}

// The qh bytes of a Q5_K block (zero for Q4_K, which has none).
template <bool kFive>
inline __m256i affine_qh(const uint8_t* block) {
  return kFive ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 16)) : _mm256_setzero_si256();
}

// Emits the 32 values q (6-bit codes in bytes, 0..63) of one quarter of a half as four vectors of 8
// (elements at offsets at, at + 8, at + 16, at + 24), the first 16 with scale s0 and the next 16 with s1
// (d · scale, exact).
template <typename Sink>
inline void emit_quarter(__m256i q, float s0, float s1, int at, Sink& sink) {
  const __m256i centered = _mm256_sub_epi8(q, _mm256_set1_epi8(32));
  const __m128i lo = _mm256_castsi256_si128(centered);
  const __m128i hi = _mm256_extracti128_si256(centered, 1);
  const __m256 v0 = _mm256_set1_ps(s0);
  const __m256 v1 = _mm256_set1_ps(s1);
  sink(at, _mm256_mul_ps(v0, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo))));
  sink(at + 8, _mm256_mul_ps(v0, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8)))));
  sink(at + 16, _mm256_mul_ps(v1, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi))));
  sink(at + 24, _mm256_mul_ps(v1, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8)))));
}

// Decodes one Q6_K block into `sink(offset, 8 values)`, the same bits as q6k_dequantize_block.
template <typename Sink>
inline void decode_q6k(const uint8_t* block, Sink& sink) {
  const float d = f16_at(block + 208);
  const int8_t* sc = reinterpret_cast<const int8_t*>(block + 192);
#pragma GCC unroll 2
  for (int h = 0; h < 2; ++h) {
    __m256i q[4];
    q6k_half_codes(block, h, q);
    const int8_t* s = sc + 8 * h;
    const int y = 128 * h;
    emit_quarter(q[0], d * static_cast<float>(s[0]), d * static_cast<float>(s[1]), y, sink);
    emit_quarter(q[1], d * static_cast<float>(s[2]), d * static_cast<float>(s[3]), y + 32, sink);
    emit_quarter(q[2], d * static_cast<float>(s[4]), d * static_cast<float>(s[5]), y + 64, sink);
    emit_quarter(q[3], d * static_cast<float>(s[6]), d * static_cast<float>(s[7]), y + 96, sink);
  }
}

// Emits 32 codes (bytes 0..31) as four vectors of 8: (d · sc) · q − dmin · m in one fused rounding, which is
// the scalar decoder's (the product is exact).
template <typename Sink>
inline void emit_affine(__m256i q, float step, float off, int at, Sink& sink) {
  const __m128i lo = _mm256_castsi256_si128(q);
  const __m128i hi = _mm256_extracti128_si256(q, 1);
  const __m256 s = _mm256_set1_ps(step);
  const __m256 o = _mm256_set1_ps(off);
  sink(at, _mm256_fmsub_ps(s, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(lo)), o));
  sink(at + 8, _mm256_fmsub_ps(s, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8))), o));
  sink(at + 16, _mm256_fmsub_ps(s, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(hi)), o));
  sink(at + 24, _mm256_fmsub_ps(s, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8))), o));
}

// Decodes one Q4_K (kFive false) or Q5_K block into `sink(offset, 8 values)`, the same bits as the scalar decoders.
template <bool kFive, typename Sink>
inline void decode_affine(const uint8_t* block, Sink& sink) {
  const float d = f16_at(block);
  const float dmin = f16_at(block + 2);
  const uint8_t* qs = block + (kFive ? 48 : 16);
  const __m256i qh = affine_qh<kFive>(block);
#pragma GCC unroll 4
  for (int c = 0; c < 4; ++c) {
    int sc1, m1, sc2, m2;
    k4_scale_min(block + 4, 2 * c, &sc1, &m1);
    k4_scale_min(block + 4, 2 * c + 1, &sc2, &m2);
    __m256i lo, hi;
    affine_chunk_codes<kFive>(qs, qh, c, &lo, &hi);
    emit_affine(lo, d * static_cast<float>(sc1), dmin * static_cast<float>(m1), 64 * c, sink);
    emit_affine(hi, d * static_cast<float>(sc2), dmin * static_cast<float>(m2), 64 * c + 32, sink);
  }
}

inline double hsum_d(__m256 v) {
  const __m256d a = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
  const __m256d b = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
  const __m256d s = _mm256_add_pd(a, b);
  const __m128d t = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
  return _mm_cvtsd_f64(t) + _mm_cvtsd_f64(_mm_unpackhi_pd(t, t));
}

inline double block_dot(const float* x, const float* w) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  for (int c = 0; c < kQ6KBlock; c += 32) {
    for (int u = 0; u < 4; ++u) {
      acc[u] = _mm256_fmadd_ps(_mm256_loadu_ps(x + c + 8 * u), _mm256_load_ps(w + c + 8 * u), acc[u]);
    }
  }
  return (hsum_d(acc[0]) + hsum_d(acc[1])) + (hsum_d(acc[2]) + hsum_d(acc[3]));
}

// The k-quant head over one decoder: for one activation row the decoded values go straight into FMA lanes
// (the decode GEMV; no buffer), for several the block is decoded once into a buffer.
template <int kBytes, typename Decode>
void dense_avx2(Decode decode, const float* x, const uint8_t* w, int k, int m, int n, float* out, int j0, int j1) {
  const int blocks = k / kKBlock;
  const size_t rb = static_cast<size_t>(blocks) * kBytes;
  alignas(64) float buf[kKBlock];
  std::vector<double> sums(static_cast<size_t>(m));
  for (int j = j0; j < j1; ++j) {
    const uint8_t* row = w + static_cast<size_t>(j) * rb;
    if (j + 1 < j1) {
      _mm_prefetch(reinterpret_cast<const char*>(row + rb), _MM_HINT_T0);
    }
    if (m == 1) {
      double sum = 0;
      for (int b = 0; b < blocks; ++b) {
        const float* xb = x + static_cast<size_t>(b) * kKBlock;
        __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        auto fma = [&](int at, __m256 v) { acc[(at >> 3) & 3] = _mm256_fmadd_ps(_mm256_loadu_ps(xb + at), v, acc[(at >> 3) & 3]); };
        decode(row + static_cast<size_t>(b) * kBytes, fma);
        sum += (hsum_d(acc[0]) + hsum_d(acc[1])) + (hsum_d(acc[2]) + hsum_d(acc[3]));
      }
      out[j] = static_cast<float>(sum);
      continue;
    }
    std::fill(sums.begin(), sums.end(), 0.0);
    auto store = [&](int at, __m256 v) { _mm256_store_ps(buf + at, v); };
    for (int b = 0; b < blocks; ++b) {
      decode(row + static_cast<size_t>(b) * kBytes, store);
      for (int i = 0; i < m; ++i) {
        sums[static_cast<size_t>(i)] += block_dot(x + static_cast<size_t>(i) * k + static_cast<size_t>(b) * kKBlock, buf);
      }
    }
    for (int i = 0; i < m; ++i) {
      out[static_cast<size_t>(i) * n + j] = static_cast<float>(sums[static_cast<size_t>(i)]);
    }
  }
}

// ---- the integer k-quant head (KI8Args in kquant.h) ----

// A block's 16 int8 sub-block scales widened to int16, the even sub-blocks' in the low 128-bit lane and the odd
// ones' in the high lane: chunk c's scale vector (lanes 0..7 sub-block 2c, lanes 8..15 sub-block 2c + 1, as maddubs
// pairs a chunk's 32 codes) is then one in-lane byte shuffle (chunk_scale), not a shuffle and a lane-crossing
// widening per chunk.
inline __m256i even_odd_scales(__m128i sc8) {
  return _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc8, _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15)));
}
inline __m256i chunk_scale(__m256i sc, int c) {
  return _mm256_shuffle_epi8(sc, _mm256_set1_epi16(static_cast<int16_t>(0x0100 + 0x0202 * c)));  // word c of each lane
}

// One Q4_K / Q5_K block as integer vectors: codes in element order (8 × 32), the scales (even_odd_scales), offset
// multipliers (16 int16), d, dmin.
struct KBlockI8 {
  __m256i u[8];
  __m256i sc;
  __m256i mn;
  float d, dmin;
};

template <bool kFive>
inline void unpack_affine_i8(const uint8_t* block, KBlockI8& o) {
  o.d = f16_at(block);
  o.dmin = f16_at(block + 2);
  const uint8_t* qs = block + (kFive ? 48 : 16);
  const __m256i qh = affine_qh<kFive>(block);
  for (int c = 0; c < 4; ++c) {
    affine_chunk_codes<kFive>(qs, qh, c, &o.u[2 * c], &o.u[2 * c + 1]);
  }
  __m128i sc;
  affine_scales(block, &sc, &o.mn);
  o.sc = even_odd_scales(sc);
}

// A and B of one block against one activation block (q: 256 int8, bs: 16 sums) as eight int32 lanes each. maddubs
// pairs stay below 2 · 63 · 128 (no saturation); every int32 lane and sum below 2³¹ (bounds in kquant-head.ts).
inline void k_parts(const KBlockI8& o, const int8_t* q, const int16_t* bs, __m256i* a, __m256i* b) {
  __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
  for (int c = 0; c < 8; c += 2) {
    const __m256i p0 = _mm256_maddubs_epi16(o.u[c], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 32 * c)));
    const __m256i p1 = _mm256_maddubs_epi16(o.u[c + 1], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 32 * c + 32)));
    acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(p0, chunk_scale(o.sc, c)));
    acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(p1, chunk_scale(o.sc, c + 1)));
  }
  *a = _mm256_add_epi32(acc0, acc1);
  *b = _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(bs)), o.mn);
}

// A Q6_K block for the integer head, kept packed until k_parts: its ql and qh bytes as loaded and its scales
// (even_odd_scales). The codes of each chunk are formed right before their multiply: far fewer live registers than
// unpacking the whole block first (that form spilled to the stack; 0.82x the time, bench/kquant-ab).
struct Q6BlockI8 {
  __m256i ql[4];
  __m256i qh[2];
  __m256i sc;
  __m256i mn;
  float d, dmin;
};

inline void unpack_q6k_i8(const uint8_t* block, Q6BlockI8& o) {
  o.d = f16_at(block + 208);
  o.dmin = 0.0f;
  for (int i = 0; i < 4; ++i) {
    o.ql[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 32 * i));
  }
  o.qh[0] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 128));
  o.qh[1] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 160));
  __m128i sc8;
  q6k_scales(block, &sc8, &o.mn);
  o.sc = even_odd_scales(sc8);
}

// k_parts over a packed Q6_K block: per chunk of 32 elements the codes (as q6k_half_codes forms them), one maddubs
// against the activations and one madd by the chunk's scales; the same int32 sums as the unpacked form.
inline void k_parts(const Q6BlockI8& o, const int8_t* q, const int16_t* bs, __m256i* a, __m256i* b) {
  __m256i acc[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
  for (int c = 0; c < 8; ++c) {
    const int h = c / 4;
    const __m256i codes = q6k_code(o.ql[2 * h], o.ql[2 * h + 1], o.qh[h], c % 4);
    const __m256i p = _mm256_maddubs_epi16(codes, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 32 * c)));
    acc[c % 2] = _mm256_add_epi32(acc[c % 2], _mm256_madd_epi16(p, chunk_scale(o.sc, c)));
  }
  *a = _mm256_add_epi32(acc[0], acc[1]);
  *b = _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(bs)), o.mn);
}

#include "kquant_i8_rows.inc"

}  // namespace

void kquant_i8_avx2(const KI8Args& a, int j0, int j1) {
  kquant_i8_formats(a, j0, j1, unpack_q6k_i8, unpack_affine_i8<false>, unpack_affine_i8<true>);
}

void dense_kquant_avx2(int code, const float* x, const uint8_t* w, int k, int m, int n, float* out, int j0, int j1) {
  switch (static_cast<BlockCode>(code)) {
    case BlockCode::kQ6K:
      dense_avx2<kQ6KBytes>([](const uint8_t* b, auto& sink) { decode_q6k(b, sink); }, x, w, k, m, n, out, j0, j1);
      return;
    case BlockCode::kQ4K:
      dense_avx2<kQ4KBytes>([](const uint8_t* b, auto& sink) { decode_affine<false>(b, sink); }, x, w, k, m, n, out, j0, j1);
      return;
    case BlockCode::kQ5K:
      dense_avx2<kQ5KBytes>([](const uint8_t* b, auto& sink) { decode_affine<true>(b, sink); }, x, w, k, m, n, out, j0, j1);
      return;
    case BlockCode::kQ8_0:
      break;
  }
  dense_blocks(code, x, w, k, m, n, out, j0, j1);
}

}  // namespace barbell
