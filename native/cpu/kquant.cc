// Block-format weights on the native CPU backend (kquant.h): Q8_0, Q6_K, Q4_K and Q5_K heads and embedding rows.
#include "kquant.h"

#include <algorithm>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "cpu_features.h"
#include "executor.h"
#include "kernels.h"
#include "napi_args.h"

namespace barbell {

void q6k_dequantize_block(const uint8_t* block, float* out) {
  uint16_t hd;
  std::memcpy(&hd, block + 208, 2);
  const float d = half_to_float(hd);
  const int8_t* sc = reinterpret_cast<const int8_t*>(block + 192);
  for (int h = 0; h < 2; ++h) {
    const uint8_t* ql = block + 64 * h;
    const uint8_t* qh = block + 128 + 32 * h;
    const int8_t* s = sc + 8 * h;
    float* y = out + 128 * h;
    for (int l = 0; l < 32; ++l) {
      const int is = l >> 4;
      const int q1 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      // d · scale is exact in f32 (11 × 8 significant bits), and so is its product with a 6-bit value:
      // the same bits as the reference's float64 computation rounded once.
      y[l] = d * static_cast<float>(s[is]) * static_cast<float>(q1);
      y[l + 32] = d * static_cast<float>(s[is + 2]) * static_cast<float>(q2);
      y[l + 64] = d * static_cast<float>(s[is + 4]) * static_cast<float>(q3);
      y[l + 96] = d * static_cast<float>(s[is + 6]) * static_cast<float>(q4);
    }
  }
}

namespace {

// Q4_K (qh == nullptr) or Q5_K rows: (d · sc) · q − dmin · m, where d · sc, dmin · m and their product with q
// are exact in f32, so the subtraction is the one rounding (fused or not): the reference's bits.
void affine_k_dequantize(const uint8_t* block, const uint8_t* qh, const uint8_t* qs, float* out) {
  uint16_t hd, hm;
  std::memcpy(&hd, block, 2);
  std::memcpy(&hm, block + 2, 2);
  const float d = half_to_float(hd);
  const float dmin = half_to_float(hm);
  for (int c = 0; c < 4; ++c) {
    int sc1, m1, sc2, m2;
    k4_scale_min(block + 4, 2 * c, &sc1, &m1);
    k4_scale_min(block + 4, 2 * c + 1, &sc2, &m2);
    const float d1 = d * static_cast<float>(sc1), o1 = dmin * static_cast<float>(m1);
    const float d2 = d * static_cast<float>(sc2), o2 = dmin * static_cast<float>(m2);
    float* y = out + 64 * c;
    for (int l = 0; l < 32; ++l) {
      const int h = qh == nullptr ? 0 : qh[l] >> (2 * c);
      const int q = qs[32 * c + l];
      y[l] = d1 * static_cast<float>((q & 0xF) | ((h & 1) << 4)) - o1;
      y[l + 32] = d2 * static_cast<float>((q >> 4) | ((h & 2) << 3)) - o2;
    }
  }
}

}  // namespace

void q4k_dequantize_block(const uint8_t* block, float* out) { affine_k_dequantize(block, nullptr, block + 16, out); }

void q5k_dequantize_block(const uint8_t* block, float* out) { affine_k_dequantize(block, block + 16, block + 48, out); }

namespace {

void q8_0_dequantize_block(const uint8_t* block, float* out) {
  uint16_t hd;
  std::memcpy(&hd, block, 2);
  const float d = half_to_float(hd);
  const int8_t* q = reinterpret_cast<const int8_t*>(block + 2);
  for (int e = 0; e < 32; ++e) {
    out[e] = static_cast<float>(q[e]) * d;  // exact: 8 × 11 significant bits
  }
}

// By the codes of kquant.h (BlockCode).
constexpr BlockFormat kBlockFormats[kBlockFormatCount] = {
    {"q8_0", 32, 34, q8_0_dequantize_block},
    {"q6_k", kKBlock, kQ6KBytes, q6k_dequantize_block},
    {"q4_k", kKBlock, kQ4KBytes, q4k_dequantize_block},
    {"q5_k", kKBlock, kQ5KBytes, q5k_dequantize_block},
};

// Σ x·w over one block (a multiple of 8 elements) in eight f32 lanes (vectorizable without reassociating a
// single chain), returned in double.
double block_dot(const float* x, const float* w, int elems) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int c = 0; c < elems; c += 8) {
    for (int l = 0; l < 8; ++l) {
      acc[l] += x[c + l] * w[c + l];
    }
  }
  return (static_cast<double>(acc[0]) + acc[1] + acc[2] + acc[3]) + (static_cast<double>(acc[4]) + acc[5] + acc[6] + acc[7]);
}

// The bytes of `rows` rows of `cols` in format f; false after throwing a JS RangeError.
bool block_bytes(const Napi::CallbackInfo& info, const char* op, const BlockFormat& f, int64_t rows, int64_t cols, size_t* out) {
  if (cols % f.elems != 0) {
    Napi::RangeError::New(info.Env(), std::string("[native-cpu] ") + op + ": " + f.name + " rows need a length that is a multiple of " +
                                          std::to_string(f.elems))
        .ThrowAsJavaScriptException();
    return false;
  }
  if (!checked_product(rows, cols / f.elems * f.bytes, out)) {
    Napi::RangeError::New(info.Env(), std::string("[native-cpu] ") + op + ": rows·cols overflows").ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

}  // namespace

const BlockFormat& block_format(int code) { return kBlockFormats[code]; }

void k_unpack_block(int code, const uint8_t* block, uint8_t* u, int16_t* sc, int16_t* mn, float* d, float* dmin) {
  uint16_t h0;
  if (code == static_cast<int>(BlockCode::kQ6K)) {
    std::memcpy(&h0, block + 208, 2);
    *d = half_to_float(h0);
    *dmin = 0.0f;
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = block + 64 * h;
      const uint8_t* qh = block + 128 + 32 * h;
      uint8_t* y = u + 128 * h;
      for (int l = 0; l < 32; ++l) {
        y[l] = static_cast<uint8_t>((ql[l] & 0xF) | ((qh[l] & 3) << 4));
        y[l + 32] = static_cast<uint8_t>((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4));
        y[l + 64] = static_cast<uint8_t>((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4));
        y[l + 96] = static_cast<uint8_t>((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4));
      }
    }
    for (int j = 0; j < 16; ++j) {
      sc[j] = static_cast<int8_t>(block[192 + j]);
      mn[j] = static_cast<int16_t>(32 * sc[j]);
    }
    return;
  }
  uint16_t h1;
  std::memcpy(&h0, block, 2);
  std::memcpy(&h1, block + 2, 2);
  *d = half_to_float(h0);
  *dmin = half_to_float(h1);
  const bool five = code == static_cast<int>(BlockCode::kQ5K);
  const uint8_t* qs = block + (five ? 48 : 16);
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      const int hb = five ? block[16 + l] >> (2 * c) : 0;
      u[64 * c + l] = static_cast<uint8_t>((qs[32 * c + l] & 0xF) | ((hb & 1) << 4));
      u[64 * c + 32 + l] = static_cast<uint8_t>((qs[32 * c + l] >> 4) | ((hb & 2) << 3));
    }
  }
  for (int j = 0; j < 8; ++j) {
    int s, m;
    k4_scale_min(block + 4, j, &s, &m);
    sc[2 * j] = sc[2 * j + 1] = static_cast<int16_t>(s);
    mn[2 * j] = mn[2 * j + 1] = static_cast<int16_t>(m);
  }
}

void kquant_i8_scalar(const KI8Args& a, int j0, int j1) {
  const int bytes = kBlockFormats[a.code].bytes;
  const int blocks = a.k / kKBlock;
  const size_t rb = static_cast<size_t>(blocks) * static_cast<size_t>(bytes);
  alignas(64) uint8_t u[kKBlock];
  int16_t sc[kKBlock / kKSub], mn[kKBlock / kKSub];
  std::vector<float> acc(static_cast<size_t>(a.m));
  for (int j = j0; j < j1; ++j) {
    std::fill(acc.begin(), acc.end(), 0.0f);
    for (int b = 0; b < blocks; ++b) {
      float d, dmin;
      k_unpack_block(a.code, a.w + static_cast<size_t>(j) * rb + static_cast<size_t>(b) * bytes, u, sc, mn, &d, &dmin);
      for (int i = 0; i < a.m; ++i) {
        const size_t xb = static_cast<size_t>(i) * blocks + b;
        const int8_t* q = a.xq + xb * kKBlock;
        const int16_t* bs = a.xbsum + xb * (kKBlock / kKSub);
        int32_t sa = 0, sb = 0;
        for (int s = 0; s < kKBlock / kKSub; ++s) {
          int32_t dot = 0;
          for (int e = s * kKSub; e < (s + 1) * kKSub; ++e) {
            dot += static_cast<int32_t>(u[e]) * q[e];
          }
          sa += sc[s] * dot;
          sb += mn[s] * bs[s];
        }
        acc[static_cast<size_t>(i)] += k_block_term(a.code, a.xinv[xb], d, dmin, sa, sb);
      }
    }
    for (int i = 0; i < a.m; ++i) {
      a.out[static_cast<size_t>(i) * a.n + j] = acc[static_cast<size_t>(i)];
    }
  }
}

namespace {

// The integer k-quant head's call (denseBlocks with integer = true): quantizes x once, then runs the ISA's kernel.
Napi::Value kquant_i8_napi(const Napi::CallbackInfo& info, Executor& exec, int code, const float* x, const uint8_t* w, int m, int k,
                           int n, float* out) {
  const size_t blocks = static_cast<size_t>(m) * static_cast<size_t>(k / kKBlock);
  AlignedVector<int8_t> xq(blocks * kKBlock);  // whole blocks on cache lines: the kernels load 32 / 64 bytes
  std::vector<float> xinv(blocks);
  std::vector<int16_t> xbsum(blocks * (kKBlock / kKSub));
  // Each 256-element block quantized like one BitNet activation row; then 1 / s and Σ q per 16.
  const int64_t bad = exec.quantize(x, static_cast<int>(blocks), kKBlock, xq.data(), xinv.data());
  if (bad >= 0) {
    return Napi::Number::New(info.Env(), static_cast<double>(bad));
  }
  for (size_t b = 0; b < blocks; ++b) {
    xinv[b] = 1.0f / xinv[b];
  }
  for (size_t s = 0; s < xbsum.size(); ++s) {
    int sum = 0;
    for (int e = 0; e < kKSub; ++e) {
      sum += xq[s * kKSub + e];
    }
    xbsum[s] = static_cast<int16_t>(sum);
  }
  const KI8Args a{code, xq.data(), xinv.data(), xbsum.data(), w, k, m, n, out};
  auto fn = kquant_i8_scalar;
#if defined(__x86_64__) || defined(_M_X64)
  if (exec.isa() >= Isa::kAvx512vnni) {
    fn = kquant_i8_avx512vnni;
  } else if (exec.isa() >= Isa::kAvx2) {
    fn = kquant_i8_avx2;
  }
#endif
  exec.parallel_rows(n, prod(m, k), [&](int j0, int j1) { fn(a, j0, j1); });
  return Napi::Number::New(info.Env(), -1);
}

}  // namespace

void dense_blocks(int code, const float* x, const uint8_t* w, int k, int m, int n, float* out, int j0, int j1) {
  const BlockFormat& f = kBlockFormats[code];
  const int blocks = k / f.elems;
  const size_t rb = static_cast<size_t>(blocks) * static_cast<size_t>(f.bytes);
  alignas(64) float buf[kKBlock];
  std::vector<double> sums(static_cast<size_t>(m));
  for (int j = j0; j < j1; ++j) {
    const uint8_t* row = w + static_cast<size_t>(j) * rb;
    std::fill(sums.begin(), sums.end(), 0.0);
    for (int b = 0; b < blocks; ++b) {
      f.decode(row + static_cast<size_t>(b) * static_cast<size_t>(f.bytes), buf);
      for (int i = 0; i < m; ++i) {
        sums[static_cast<size_t>(i)] += block_dot(x + static_cast<size_t>(i) * k + static_cast<size_t>(b) * f.elems, buf, f.elems);
      }
    }
    for (int i = 0; i < m; ++i) {
      out[static_cast<size_t>(i) * n + j] = static_cast<float>(sums[static_cast<size_t>(i)]);
    }
  }
}

Napi::Value dense_blocks_napi(const Napi::CallbackInfo& info, Executor& exec) {
  ARG_INT(format, 0, kBlockFormatCount - 1);
  const BlockFormat& f = kBlockFormats[format];
  ARG_INT(m, 3, kMaxDim);
  ARG_INT(k, 4, kMaxDim);
  ARG_INT(n, 5, kMaxDim);
  size_t wn = 0;
  if (!block_bytes(info, "denseBlocks", f, n, k, &wn)) {
    return info.Env().Undefined();
  }
  ARG_ARRAY(float, x, 1, prod(m, k));
  ARG_ARRAY(uint8_t, w, 2, wn);
  ARG_ARRAY(float, out, 6, prod(m, n));
  const bool integer = info.Length() > 7 && info[7].IsBoolean() && info[7].As<Napi::Boolean>().Value();
  if (m == 0 || n == 0) {
    return integer ? Napi::Number::New(info.Env(), -1) : info.Env().Undefined();
  }
  const int code = static_cast<int>(format), mi = static_cast<int>(m), ki = static_cast<int>(k), ni = static_cast<int>(n);
  if (integer) {
    if (code == static_cast<int>(BlockCode::kQ8_0)) {
      Napi::RangeError::New(info.Env(), "[native-cpu] denseBlocks: the integer head here takes q4_k, q5_k or q6_k rows (q8_0: q8i8)")
          .ThrowAsJavaScriptException();
      return info.Env().Undefined();
    }
    return kquant_i8_napi(info, exec, code, x, w, mi, ki, ni, out);
  }
  auto fn = dense_blocks;
#if defined(__x86_64__) || defined(_M_X64)
  if (exec.isa() >= Isa::kAvx2 && code != static_cast<int>(BlockCode::kQ8_0)) {
    fn = dense_kquant_avx2;
  }
#endif
  exec.parallel_rows(ni, prod(m, k), [&](int j0, int j1) { fn(code, x, w, ki, mi, ni, out, j0, j1); });
  return info.Env().Undefined();
}

Napi::Value embedding_blocks_napi(const Napi::CallbackInfo& info) {
  ARG_INT(format, 0, kBlockFormatCount - 1);
  const BlockFormat& f = kBlockFormats[format];
  ARG_INT(seq, 2, kMaxDim);
  ARG_INT(vocab, 4, kMaxDim);
  ARG_INT(embed, 5, kMaxDim);
  size_t tn = 0;
  if (!block_bytes(info, "embeddingBlocks", f, vocab, embed, &tn)) {
    return info.Env().Undefined();
  }
  const size_t blocks = static_cast<size_t>(embed / f.elems);
  ARG_ARRAY(int32_t, ids, 1, static_cast<size_t>(seq));
  ARG_ARRAY(uint8_t, table, 3, tn);
  ARG_ARRAY(float, out, 6, prod(seq, embed));
  for (int64_t s = 0; s < seq; ++s) {
    const int32_t id = ids[s];
    if (id < 0 || id >= vocab) {
      return Napi::Number::New(info.Env(), static_cast<double>(s));
    }
    const uint8_t* row = table + static_cast<size_t>(id) * blocks * static_cast<size_t>(f.bytes);
    float* o = out + static_cast<size_t>(s) * static_cast<size_t>(embed);
    for (size_t b = 0; b < blocks; ++b) {
      f.decode(row + b * static_cast<size_t>(f.bytes), o + b * static_cast<size_t>(f.elems));
    }
  }
  return Napi::Number::New(info.Env(), -1);
}

}  // namespace barbell
