// K-quant weights on the native CPU backend (kquant.h): Q6_K head and embedding rows.
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

// Σ x·w over one block of 256 in eight f32 lanes (vectorizable without reassociating a single chain),
// returned in double.
double block_dot(const float* x, const float* w) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int c = 0; c < kQ6KBlock; c += 8) {
    for (int l = 0; l < 8; ++l) {
      acc[l] += x[c + l] * w[c + l];
    }
  }
  return (static_cast<double>(acc[0]) + acc[1] + acc[2] + acc[3]) + (static_cast<double>(acc[4]) + acc[5] + acc[6] + acc[7]);
}

}  // namespace

void dense_q6k(const float* x, const uint8_t* w, int k, int m, int n, float* out, int j0, int j1) {
  const int blocks = k / kQ6KBlock;
  const size_t rb = static_cast<size_t>(blocks) * kQ6KBytes;
  alignas(64) float buf[kQ6KBlock];
  std::vector<double> sums(static_cast<size_t>(m));
  for (int j = j0; j < j1; ++j) {
    const uint8_t* row = w + static_cast<size_t>(j) * rb;
    std::fill(sums.begin(), sums.end(), 0.0);
    for (int b = 0; b < blocks; ++b) {
      q6k_dequantize_block(row + static_cast<size_t>(b) * kQ6KBytes, buf);
      for (int i = 0; i < m; ++i) {
        sums[static_cast<size_t>(i)] += block_dot(x + static_cast<size_t>(i) * k + static_cast<size_t>(b) * kQ6KBlock, buf);
      }
    }
    for (int i = 0; i < m; ++i) {
      out[static_cast<size_t>(i) * n + j] = static_cast<float>(sums[static_cast<size_t>(i)]);
    }
  }
}

namespace {

// The Q6_K bytes of `rows` rows of `cols` (a multiple of 256); false after throwing a JS RangeError.
bool q6k_bytes(const Napi::CallbackInfo& info, const char* op, int64_t rows, int64_t cols, size_t* out) {
  if (cols % kQ6KBlock != 0) {
    Napi::RangeError::New(info.Env(), std::string("[native-cpu] ") + op + ": the row length must be a multiple of 256")
        .ThrowAsJavaScriptException();
    return false;
  }
  if (!checked_product(rows, cols / kQ6KBlock * kQ6KBytes, out)) {
    Napi::RangeError::New(info.Env(), std::string("[native-cpu] ") + op + ": rows·cols overflows").ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

}  // namespace

Napi::Value dense_q6k_napi(const Napi::CallbackInfo& info, Executor& exec) {
  ARG_INT(m, 2, kMaxDim);
  ARG_INT(k, 3, kMaxDim);
  ARG_INT(n, 4, kMaxDim);
  size_t wn = 0;
  if (!q6k_bytes(info, "denseQ6K", n, k, &wn)) {
    return info.Env().Undefined();
  }
  ARG_ARRAY(float, x, 0, prod(m, k));
  ARG_ARRAY(uint8_t, w, 1, wn);
  ARG_ARRAY(float, out, 5, prod(m, n));
  if (m == 0 || n == 0) {
    return info.Env().Undefined();
  }
  const int mi = static_cast<int>(m), ki = static_cast<int>(k), ni = static_cast<int>(n);
  auto fn = dense_q6k;
#if defined(__x86_64__) || defined(_M_X64)
  if (exec.isa() >= Isa::kAvx2) {
    fn = dense_q6k_avx2;
  }
#endif
  exec.parallel_rows(ni, prod(m, k), [&](int j0, int j1) { fn(x, w, ki, mi, ni, out, j0, j1); });
  return info.Env().Undefined();
}

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

struct BlockFormat {
  const char* name;
  int elems;
  int bytes;
  void (*decode)(const uint8_t* block, float* out);
};

// By the code embeddingBlocks takes (kquant.h).
constexpr BlockFormat kBlockFormats[] = {
    {"q8_0", 32, 34, q8_0_dequantize_block},
    {"q6_k", kQ6KBlock, kQ6KBytes, q6k_dequantize_block},
};

}  // namespace

Napi::Value embedding_blocks_napi(const Napi::CallbackInfo& info) {
  ARG_INT(format, 0, 1);
  const BlockFormat& f = kBlockFormats[format];
  ARG_INT(seq, 2, kMaxDim);
  ARG_INT(vocab, 4, kMaxDim);
  ARG_INT(embed, 5, kMaxDim);
  if (embed % f.elems != 0) {
    Napi::RangeError::New(info.Env(), std::string("[native-cpu] embeddingBlocks: ") + f.name + " rows need a length that is a multiple of " +
                                          std::to_string(f.elems))
        .ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  const size_t blocks = static_cast<size_t>(embed / f.elems);
  size_t tn = 0;
  if (!checked_product(vocab, static_cast<int64_t>(blocks) * f.bytes, &tn)) {
    Napi::RangeError::New(info.Env(), "[native-cpu] embeddingBlocks: vocab·embed overflows").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
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
