// AVX2 path (Haswell / Zen 1 and later). Compiled with -mavx2 -mfma -mf16c -mpopcnt (binding.gyp).
//
// Ternary × int8, one step = 32 packed weight bytes = 128 elements, decoded into four planes of
// codes exactly as in kernels_avx512.inc (two pshufb look-ups per nibble; code 3 → trit 0):
//   s16 = Σ_p vpmaddubsw(plane_p, x_p)      u8 code × s8 x, adjacent pairs summed into i16
//                                            (|s16| ≤ 4 planes · 2 products · 2 · 128 = 2048)
//   acc += vpmaddwd(s16, 1)                  i16 pairs → i32
// result = reduce(acc) − Σx, because the codes are trit + 1. A single activation row (decode) takes the
// codes by masks instead (ternary_gemv_tile).
#include "kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "generic.h"
#include "simd_float.inc"
#include "attention_decode.inc"
#include "q8_i8_rows.inc"
#include "repack_avx2.inc"

namespace barbell {
namespace {

struct Decoder {
  __m256i lut_a, lut_b, nib;
  Decoder() {
    const __m128i a = _mm_setr_epi8(0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2, 1);
    const __m128i b = _mm_setr_epi8(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 1, 1, 1, 1);
    lut_a = _mm256_broadcastsi128_si256(a);
    lut_b = _mm256_broadcastsi128_si256(b);
    nib = _mm256_set1_epi8(0x0f);
  }
  inline void decode(__m256i w, __m256i p[4]) const {
    const __m256i lo = _mm256_and_si256(w, nib);
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(w, 4), nib);
    p[0] = _mm256_shuffle_epi8(lut_a, lo);
    p[1] = _mm256_shuffle_epi8(lut_b, lo);
    p[2] = _mm256_shuffle_epi8(lut_a, hi);
    p[3] = _mm256_shuffle_epi8(lut_b, hi);
  }
};

inline __m256i loadu(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// A row's last, partial 32-byte block (n < 32 bytes) padded with zero bytes (code 0, which meets zero activations
// past K): copied, so that no load reads past the row (or the array).
inline __m256i load_partial(const uint8_t* p, size_t n) {
  alignas(32) uint8_t buf[32] = {0};
  std::memcpy(buf, p, n);
  return loadu(buf);
}

// One 32-byte block (128 weights) against x, added to int16 lane sums: a vpmaddubsw lane is w·x over two
// weights with w ∈ {0, 1, 2} and |x| ≤ 128, so |lane| ≤ 512 and a block adds ≤ 2048 to each lane;
// kSums16Blocks blocks (≤ 16384) stay exact in int16 before vpmaddwd widens them to int32 (one widening per
// kSums16Blocks blocks instead of one per block: fewer multiply-pipe operations on AVX2).
constexpr size_t kSums16Blocks = 8;
inline __m256i dot4_16(__m256i acc16, const __m256i p[4], const int8_t* x) {
  acc16 = _mm256_add_epi16(acc16, _mm256_maddubs_epi16(p[0], loadu(x)));
  acc16 = _mm256_add_epi16(acc16, _mm256_maddubs_epi16(p[1], loadu(x + 32)));
  acc16 = _mm256_add_epi16(acc16, _mm256_maddubs_epi16(p[2], loadu(x + 64)));
  return _mm256_add_epi16(acc16, _mm256_maddubs_epi16(p[3], loadu(x + 96)));
}
inline __m256i widen16(__m256i acc32, __m256i acc16) { return _mm256_add_epi32(acc32, _mm256_madd_epi16(acc16, _mm256_set1_epi16(1))); }

template <int RW, int RX>
inline void ternary_tile(const TernaryArgs& a, const Decoder& d, int j, int i) {
  const size_t nb = a.row_bytes / 32;
  const size_t tail = a.row_bytes % 32;
  __m256i acc[RW][RX];    // int16 sums of up to kSums16Blocks blocks
  __m256i wide[RW][RX];   // int32 sums (kept in memory by the compiler where registers run out)
  for (int r = 0; r < RW; ++r) {
    for (int s = 0; s < RX; ++s) {
      acc[r][s] = _mm256_setzero_si256();
      wide[r][s] = _mm256_setzero_si256();
    }
  }
  const uint8_t* w0 = a.w + static_cast<size_t>(j) * a.row_bytes;
  const int8_t* x0 = a.xp + static_cast<size_t>(i) * a.xp_stride;
  // Linear software prefetch ≥ 2 KiB (whole tiles) ahead, 64 bytes per two steps: see kernels_avx512.inc.
  const size_t pf = prefetch_distance(2048, RW * a.row_bytes);
  for (size_t blk = 0; blk < nb; ++blk) {
    for (int r = 0; r < RW; ++r) {
      if (((blk * RW + r) & 1) == 0) {
        _mm_prefetch(reinterpret_cast<const char*>(w0 + pf + (blk * RW + r) * 32), _MM_HINT_T0);
      }
      __m256i p[4];
      d.decode(loadu(w0 + static_cast<size_t>(r) * a.row_bytes + blk * 32), p);
      for (int s = 0; s < RX; ++s) {
        acc[r][s] = dot4_16(acc[r][s], p, x0 + static_cast<size_t>(s) * a.xp_stride + blk * 128);
      }
    }
    if ((blk + 1) % kSums16Blocks == 0) {
      for (int r = 0; r < RW; ++r) {
        for (int s = 0; s < RX; ++s) {
          wide[r][s] = widen16(wide[r][s], acc[r][s]);
          acc[r][s] = _mm256_setzero_si256();
        }
      }
    }
  }
  if (tail != 0) {
    for (int r = 0; r < RW; ++r) {
      __m256i p[4];
      d.decode(load_partial(w0 + static_cast<size_t>(r) * a.row_bytes + nb * 32, tail), p);
      for (int s = 0; s < RX; ++s) {
        acc[r][s] = dot4_16(acc[r][s], p, x0 + static_cast<size_t>(s) * a.xp_stride + nb * 128);
      }
    }
  }
  for (int r = 0; r < RW; ++r) {
    for (int s = 0; s < RX; ++s) {
      const int32_t dot = reduce_epi32(widen16(wide[r][s], acc[r][s])) - a.xsum[i + s];
      a.out[static_cast<size_t>(i + s) * a.n + j + r] = scale_acc(dot, a.xscale[i + s], a.gamma);
    }
  }
}

// One activation row (decode: m = 1, or the rows a batch of four leaves) against RW weight rows, the codes
// taken by masks instead of look-ups: 5 operations per 32 bytes instead of 7 (a shift and four ands), 13 per
// 128 weights with the multiplies and adds, which is what bounds this loop (1.2-1.5x the look-up tile in a
// one-thread harness like bench/ternary-kernel's, weights in L2, Zen 5 running AVX2 code). The masks keep bits 2-3 and 6-7 in place, so those planes
// carry 4·code; their products go to their own int16 sums (kGemvSums16Blocks blocks before widening), and the widening
// multiplies the other sums by 4 so that one int32 sum holds 4 · the dot, divided once at the end (exact: every
// product of those planes is a multiple of 4).
// Reads code 3 as trit +2 where the look-up reads 0: ternary tensors never hold it (ternaryFromCodes and the
// loaders refuse it), so both give the oracle's bits on every tensor.
// Blocks per int16 sum of ternary_gemv_tile: a block adds ≤ 2 · 2 · 2 · 128 = 1024 to an acc1 lane and ≤ 2 · 2 · 8 · 128
// = 4096 to an acc4 lane, so 7 blocks stay within int16 (28672).
constexpr size_t kGemvSums16Blocks = 7;
template <int RW>
inline void ternary_gemv_tile(const TernaryArgs& a, int j, int i) {
  const size_t nb = a.row_bytes / 32;
  const size_t tail = a.row_bytes % 32;
  const __m256i m03 = _mm256_set1_epi8(0x03);
  const __m256i m0c = _mm256_set1_epi8(0x0c);
  const __m256i one = _mm256_set1_epi16(1);
  const __m256i four = _mm256_set1_epi16(4);
  __m256i acc1[RW], acc4[RW], wide[RW];
  for (int r = 0; r < RW; ++r) {
    acc1[r] = acc4[r] = wide[r] = _mm256_setzero_si256();
  }
  const uint8_t* w0 = a.w + static_cast<size_t>(j) * a.row_bytes;
  const int8_t* x0 = a.xp + static_cast<size_t>(i) * a.xp_stride;
  // Whole tiles ≥ 8 KiB ahead (the prefill tile's 2 KiB is too short for a decode streaming on one core: the
  // 700M / 2B decode at one thread +2–5 % in alternated runs, two threads and 16 KiB no better).
  const size_t pf = prefetch_distance(8192, RW * a.row_bytes);
  const auto step = [&](int r, __m256i w, const int8_t* x) {
    const __m256i h = _mm256_srli_epi16(w, 4);
    const __m256i s1 = _mm256_add_epi16(_mm256_maddubs_epi16(_mm256_and_si256(w, m03), loadu(x)),
                                        _mm256_maddubs_epi16(_mm256_and_si256(h, m03), loadu(x + 64)));
    const __m256i s4 = _mm256_add_epi16(_mm256_maddubs_epi16(_mm256_and_si256(w, m0c), loadu(x + 32)),
                                        _mm256_maddubs_epi16(_mm256_and_si256(h, m0c), loadu(x + 96)));
    acc1[r] = _mm256_add_epi16(acc1[r], s1);
    acc4[r] = _mm256_add_epi16(acc4[r], s4);
  };
  const auto widen = [&](int r) {  // wide = 4 · the dot (both sums' products ×4), divided when reduced
    wide[r] = _mm256_add_epi32(wide[r], _mm256_add_epi32(_mm256_madd_epi16(acc1[r], four), _mm256_madd_epi16(acc4[r], one)));
    acc1[r] = acc4[r] = _mm256_setzero_si256();
  };
  for (size_t blk = 0; blk < nb; ++blk) {
    for (int r = 0; r < RW; ++r) {
      if (((blk * RW + r) & 1) == 0) {
        _mm_prefetch(reinterpret_cast<const char*>(w0 + pf + (blk * RW + r) * 32), _MM_HINT_T0);
      }
      step(r, loadu(w0 + static_cast<size_t>(r) * a.row_bytes + blk * 32), x0 + blk * 128);
    }
    if ((blk + 1) % kGemvSums16Blocks == 0) {
      for (int r = 0; r < RW; ++r) {
        widen(r);
      }
    }
  }
  for (int r = 0; r < RW; ++r) {
    if (tail != 0) {
      step(r, load_partial(w0 + static_cast<size_t>(r) * a.row_bytes + nb * 32, tail), x0 + nb * 128);
    }
    widen(r);
    const int32_t dot = (reduce_epi32(wide[r]) >> 2) - a.xsum[i];
    a.out[static_cast<size_t>(i) * a.n + j + r] = scale_acc(dot, a.xscale[i], a.gamma);
  }
}

void ternary(const TernaryArgs& a, int j0, int j1) {
  const Decoder d;
  constexpr int kChunk = 16;
  for (int jc = j0; jc < j1; jc += kChunk) {
    const int je = std::min(jc + kChunk, j1);
    int i = 0;
    for (; i + 4 <= a.m; i += 4) {
      int j = jc;
      for (; j + 2 <= je; j += 2) {
        ternary_tile<2, 4>(a, d, j, i);
      }
      for (; j < je; ++j) {
        ternary_tile<1, 4>(a, d, j, i);
      }
    }
    for (; i < a.m; ++i) {
      int j = jc;
      for (; j + 2 <= je; j += 2) {
        ternary_gemv_tile<2>(a, j, i);
      }
      for (; j < je; ++j) {
        ternary_gemv_tile<1>(a, j, i);
      }
    }
  }
}

// 32 sign bits → 32 bytes of 0x00 / 0xFF: byte b takes source byte b/8 (shuffle) and tests bit b%8.
inline __m256i expand_bits(uint32_t bits) {
  const __m256i v = _mm256_set1_epi32(static_cast<int>(bits));
  const __m256i pick = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3,
                                        3, 3, 3, 3, 3, 3);
  const __m256i bit = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ULL));
  const __m256i bytes = _mm256_and_si256(_mm256_shuffle_epi8(v, pick), bit);
  return _mm256_cmpeq_epi8(bytes, bit);
}

// Binary × int8: Σ sign·x = 2·Σ_{bit set} x − Σ x, 32 activations per step.
void binary_i8(const BinaryI8Args& a, int j0, int j1) {
  const size_t full = static_cast<size_t>(a.k) / 32;
  const int rem = a.k % 32;
  const __m256i ones8 = _mm256_set1_epi8(1);
  const __m256i ones16 = _mm256_set1_epi16(1);
  for (int i = 0; i < a.m; ++i) {
    const int8_t* x = a.x + static_cast<size_t>(i) * a.k;
    for (int j = j0; j < j1; ++j) {
      const uint32_t* w = a.w + static_cast<size_t>(j) * a.row_words;
      __m256i acc = _mm256_setzero_si256();
      for (size_t b = 0; b < full; ++b) {
        const __m256i sel = _mm256_and_si256(expand_bits(w[b]), loadu(x + 32 * b));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, sel), ones16));
      }
      int32_t set = reduce_epi32(acc);
      for (int c = 0; c < rem; ++c) {
        set += ((w[full] >> c) & 1u) ? x[32 * full + c] : 0;
      }
      a.out[static_cast<size_t>(i) * a.n + j] = scale_acc(2 * set - a.xsum[i], a.xscale[i], a.beta);
    }
  }
}

template <bool F16>
inline __m256 load_w8(const void* w, size_t off) {
  if constexpr (F16) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(w) + off));
    return _mm256_cvtph_ps(h);
  } else {
    return _mm256_loadu_ps(static_cast<const float*>(w) + off);
  }
}

inline double reduce_pd(__m256 v) {
  const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
  const __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
  const __m256d s = _mm256_add_pd(lo, hi);
  alignas(32) double t[4];
  _mm256_store_pd(t, s);
  return (t[0] + t[1]) + (t[2] + t[3]);
}

template <bool F16, int RX>
void dense_rows(const DenseArgs& a, int j, int i) {
  const size_t k = static_cast<size_t>(a.k);
  const size_t wr = static_cast<size_t>(j) * k;
  constexpr int UN = RX == 1 ? 4 : 2;
  __m256 acc[RX][UN];
  for (int s = 0; s < RX; ++s) {
    for (int u = 0; u < UN; ++u) {
      acc[s][u] = _mm256_setzero_ps();
    }
  }
  size_t c = 0;
  for (; c + 8 * UN <= k; c += 8 * UN) {
    for (int u = 0; u < UN; ++u) {
      const __m256 wv = load_w8<F16>(a.w, wr + c + 8 * u);
      for (int s = 0; s < RX; ++s) {
        acc[s][u] = _mm256_fmadd_ps(_mm256_loadu_ps(a.x + (i + s) * k + c + 8 * u), wv, acc[s][u]);
      }
    }
  }
  for (int s = 0; s < RX; ++s) {
    double sum = 0;
    for (int u = 0; u < UN; ++u) {
      sum += reduce_pd(acc[s][u]);
    }
    const float* x = a.x + (i + s) * k;
    for (size_t t = c; t < k; ++t) {
      const float wv = F16 ? half_to_float(static_cast<const uint16_t*>(a.w)[wr + t]) : static_cast<const float*>(a.w)[wr + t];
      sum += static_cast<double>(x[t]) * wv;
    }
    a.out[static_cast<size_t>(i + s) * a.n + j] = static_cast<float>(sum);
  }
}

template <bool F16>
void dense_impl(const DenseArgs& a, int j0, int j1) {
  for (int j = j0; j < j1; ++j) {
    int i = 0;
    for (; i + 4 <= a.m; i += 4) {
      dense_rows<F16, 4>(a, j, i);
    }
    for (; i < a.m; ++i) {
      dense_rows<F16, 1>(a, j, i);
    }
  }
}

void dense(const DenseArgs& a, int j0, int j1) {
  if (a.f16) {
    dense_impl<true>(a, j0, j1);
  } else {
    dense_impl<false>(a, j0, j1);
  }
}

void attention(const AttentionArgs& a, int p0, int p1, float* scratch) { attention_any<V256>(a, p0, p1, scratch); }
void attention_chunk(int kv_type, const void* q, const void* k, const void* v, size_t kv_row, int t0, int t1, int g0, int g1,
                     int group, int D, double scale, float* part, float* scratch) {
  attention_chunk_any<V256>(kv_type, q, k, v, kv_row, t0, t1, g0, g1, group, D, scale, part, scratch);
}

void dense_gemv(const float* x, const uint8_t* w, int fmt, int k, int m, int n, float* out, int j0, int j1) {
  switch (fmt) {
    case kDenseF32: dense_gemv_t<V256, WFmt::kF32>(x, w, k, m, n, out, j0, j1); break;
    case kDenseF16: dense_gemv_t<V256, WFmt::kF16>(x, w, k, m, n, out, j0, j1); break;
    default: dense_gemv_t<V256, WFmt::kQ8>(x, w, k, m, n, out, j0, j1); break;
  }
}

void silu(const float* x, size_t n, float* out) { silu_f32<V256>(x, n, out); }
int64_t quantize(const float* x, int m, int k, int8_t* q, float* scales) { return quantize_f32<V256>(x, m, k, q, scales); }
void rmsnorm(const float* x, const float* w, int rows, int cols, double eps, float* out) {
  rms_norm_f64<V256>(x, w, rows, cols, eps, out);
}

// The integer Q8_0 head (Q8I8Args in kernels.h), 8 weight rows per tile with one lane per row, so each
// output sums its blocks in order exactly like scalar_q8_i8. Per block the 8 rows' 32 quant bytes are
// transposed into 8 vectors (vector t, lane r = bytes 4t … 4t+3 of row r). Without VNNI the products go
// through vpmaddubsw, which needs an unsigned operand: |w| (≤ 128) times x·sign(w). The activations come
// from the BitNet quantizer, so |x| ≤ 127, x·sign(w) fits int8, and a pair sum ≤ 2·128·127 fits int16.
inline void q8_transpose8(const uint8_t* const* rows, size_t off, __m256i t[8]) {
  __m256i r[8];
  for (int p = 0; p < 8; ++p) {
    r[p] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rows[p] + off));
  }
  __m256i u[8];
  for (int q = 0; q < 4; ++q) {
    u[2 * q] = _mm256_unpacklo_epi32(r[2 * q], r[2 * q + 1]);
    u[2 * q + 1] = _mm256_unpackhi_epi32(r[2 * q], r[2 * q + 1]);
  }
  __m256i v[8];
  for (int h = 0; h < 2; ++h) {  // rows 0-3, then rows 4-7
    __m256i* o = v + 4 * h;
    const __m256i* in = u + 4 * h;
    o[0] = _mm256_unpacklo_epi64(in[0], in[2]);  // dword 0 (low lane), dword 4 (high lane)
    o[1] = _mm256_unpackhi_epi64(in[0], in[2]);
    o[2] = _mm256_unpacklo_epi64(in[1], in[3]);
    o[3] = _mm256_unpackhi_epi64(in[1], in[3]);
  }
  for (int d = 0; d < 4; ++d) {
    t[d] = _mm256_permute2x128_si256(v[d], v[d + 4], 0x20);
    t[d + 4] = _mm256_permute2x128_si256(v[d], v[d + 4], 0x31);
  }
}

template <int MR>
void q8_i8_tile8(const Q8I8Args& a, const uint8_t* const* rows, const uint8_t* next, int j, int i0) {
  const int blocks = a.k / 32;
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[MR];
  for (int r = 0; r < MR; ++r) {
    acc[r] = _mm256_setzero_ps();
  }
  for (int b = 0; b < blocks; ++b) {
    const size_t off = static_cast<size_t>(b) * 34;
    if (next != nullptr) {  // the next tile's rows, in order (see kernels_avx512.inc)
      for (size_t l = 0; l < 8 * 34; l += 64) {
        _mm_prefetch(reinterpret_cast<const char*>(next + b * 8 * 34 + l), _MM_HINT_T1);
      }
    }
    alignas(16) uint16_t hd[8];
    for (int r = 0; r < 8; ++r) {
      std::memcpy(hd + r, rows[r] + off, 2);
    }
    const __m256 d = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(hd)));
    __m256i t[8], mag[8];
    q8_transpose8(rows, off + 2, t);
    for (int u = 0; u < 8; ++u) {
      mag[u] = _mm256_sign_epi8(t[u], t[u]);  // |w|; -128 stays 0x80 = 128 unsigned
    }
    for (int r = 0; r < MR; ++r) {
      const size_t xi = static_cast<size_t>(i0 + r) * blocks + b;
      int32_t xd[8];
      std::memcpy(xd, a.xq + xi * 32, 32);
      __m256i dot = _mm256_setzero_si256();
      for (int u = 0; u < 8; ++u) {
        const __m256i sx = _mm256_sign_epi8(_mm256_set1_epi32(xd[u]), t[u]);
        dot = _mm256_add_epi32(dot, _mm256_madd_epi16(_mm256_maddubs_epi16(mag[u], sx), ones));
      }
      const __m256 scaled = _mm256_mul_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(a.xinv[xi]));
      acc[r] = _mm256_add_ps(acc[r], _mm256_mul_ps(scaled, d));
    }
  }
  for (int r = 0; r < MR; ++r) {
    _mm256_storeu_ps(a.out + static_cast<size_t>(i0 + r) * a.n + j, acc[r]);
  }
}

void q8_i8(const Q8I8Args& a, int j0, int j1) {
  const size_t rb = static_cast<size_t>(a.k / 32) * 34;
  int j = j0;
  if (a.m == 1) {
    j = q8_i8_rows(a, j0, j1);  // q8_i8_rows.inc
  }
  for (; j + 8 <= j1; j += 8) {
    const uint8_t* rows[8];
    for (int r = 0; r < 8; ++r) {
      rows[r] = a.w + static_cast<size_t>(j + r) * rb;
    }
    const uint8_t* next = j + 16 <= a.n ? rows[0] + 8 * rb : nullptr;
    int i = 0;
    for (; i + 4 <= a.m; i += 4) {
      q8_i8_tile8<4>(a, rows, i == 0 ? next : nullptr, j, i);
    }
    switch (a.m - i) {
      case 3: q8_i8_tile8<3>(a, rows, i == 0 ? next : nullptr, j, i); break;
      case 2: q8_i8_tile8<2>(a, rows, i == 0 ? next : nullptr, j, i); break;
      case 1: q8_i8_tile8<1>(a, rows, i == 0 ? next : nullptr, j, i); break;
      default: break;
    }
  }
  if (j < j1) {  // fewer than 8 rows left: the scalar kernel, same arithmetic
    scalar_kernels()->q8_i8(a, j, j1);
  }
}

const IsaKernels kTable = {"avx2", 32, ternary, binary_i8, generic_binary_binary, dense, attention, dense_gemv, silu, quantize, rmsnorm, q8_i8, attention_chunk,
                           repack_planes};

}  // namespace

const IsaKernels* avx2_kernels() { return &kTable; }

}  // namespace barbell
#endif
