#include "float_kernels.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels.h"

#include "elementwise.h"

namespace barbell {

int64_t quantize_rows(const float* x, int m, int k, int8_t* q, float* scales) {
  const size_t total = static_cast<size_t>(m) * k;
  for (size_t t = 0; t < total; ++t) {
    if (!std::isfinite(x[t])) {
      return static_cast<int64_t>(t);
    }
  }
  for (int r = 0; r < m; ++r) {
    const float* row = x + static_cast<size_t>(r) * k;
    float absmax = 0.0f;
    for (int c = 0; c < k; ++c) {
      const float v = std::fabs(row[c]);
      absmax = v > absmax ? v : absmax;
    }
    // JS: fround(127 / fround(max(absmax, 1e-5))) — the max is taken in double, then rounded.
    const double clamped = static_cast<double>(absmax) > 1e-5 ? static_cast<double>(absmax) : 1e-5;
    const float s = 127.0f / static_cast<float>(clamped);
    scales[r] = s;
    int8_t* qr = q + static_cast<size_t>(r) * k;
    for (int c = 0; c < k; ++c) {
      const float prod = row[c] * s;                 // one f32 rounding (no contraction: -ffp-contract=off)
      float v = std::nearbyint(prod);                 // half to even under the default rounding mode
      v = v > 127.0f ? 127.0f : (v < -128.0f ? -128.0f : v);
      qr[c] = static_cast<int8_t>(v);
    }
  }
  return -1;
}

void rms_norm(const float* x, const float* w, int rows, int cols, double eps, float* out) {
  for (int r = 0; r < rows; ++r) {
    const size_t base = static_cast<size_t>(r) * cols;
    double sum = 0;
    for (int c = 0; c < cols; ++c) {
      const double v = x[base + c];
      sum += v * v;
    }
    const double denom = std::sqrt(sum / cols + eps);
    for (int c = 0; c < cols; ++c) {
      const double s = w == nullptr ? 1.0 : static_cast<double>(w[c]);
      out[base + c] = static_cast<float>((static_cast<double>(x[base + c]) / denom) * s);
    }
  }
}

void rope(const float* x, int seq, int heads, int head_dim, const int32_t* pos, double theta, bool neox, float* out) {
  const int half = head_dim / 2;
  const int stride = neox ? 1 : 2;
  const int partner = neox ? half : 1;
  for (int s = 0; s < seq; ++s) {
    const double p = pos[s];
    for (int j = 0; j < half; ++j) {
      const double angle = p * std::pow(theta, (-2.0 * j) / head_dim);
      const double cs = std::cos(angle);
      const double sn = std::sin(angle);
      const int first = j * stride;
      const int second = first + partner;
      for (int h = 0; h < heads; ++h) {
        const size_t base = (static_cast<size_t>(s) * heads + h) * head_dim;
        const double xa = x[base + first];
        const double xb = x[base + second];
        out[base + first] = static_cast<float>(xa * cs - xb * sn);
        out[base + second] = static_cast<float>(xb * cs + xa * sn);
      }
    }
  }
}

void rope_table(const float* x, int seq, int heads, int head_dim, const double* cs, const double* sn, bool neox,
                float* out) {
  const int half = head_dim / 2;
  const int stride = neox ? 1 : 2;
  const int partner = neox ? half : 1;
  for (int s = 0; s < seq; ++s) {
    for (int h = 0; h < heads; ++h) {
      const size_t base = (static_cast<size_t>(s) * heads + h) * head_dim;
      for (int j = 0; j < half; ++j) {
        const double c = cs[static_cast<size_t>(s) * half + j];
        const double n = sn[static_cast<size_t>(s) * half + j];
        const int first = j * stride;
        const int second = first + partner;
        const double xa = x[base + first];
        const double xb = x[base + second];
        out[base + first] = static_cast<float>(xa * c - xb * n);
        out[base + second] = static_cast<float>(xb * c + xa * n);
      }
    }
  }
}

void softmax_rows(const float* x, int rows, int cols, float* out) {
  for (int r = 0; r < rows; ++r) {
    const size_t base = static_cast<size_t>(r) * cols;
    double max = -std::numeric_limits<double>::infinity();
    bool nan = false;
    for (int c = 0; c < cols; ++c) {
      const double v = x[base + c];
      nan = nan || std::isnan(v);
      if (v > max) {
        max = v;
      }
    }
    if (max == -std::numeric_limits<double>::infinity()) {
      const float fill = nan ? std::numeric_limits<float>::quiet_NaN() : 0.0f;
      for (int c = 0; c < cols; ++c) {
        out[base + c] = fill;
      }
      continue;
    }
    double sum = 0;
    for (int c = 0; c < cols; ++c) {
      sum += std::exp(static_cast<double>(x[base + c]) - max);
    }
    for (int c = 0; c < cols; ++c) {
      out[base + c] = static_cast<float>(std::exp(static_cast<double>(x[base + c]) - max) / sum);
    }
  }
}

void attention_one(const AttentionArgs& a, int i, int h, double* scores, double* sums) {
  const int group = a.n_head / a.n_kv_head;
  const size_t kv_row = static_cast<size_t>(a.n_kv_head) * a.head_dim;
  const size_t kv_head = static_cast<size_t>(h / group) * a.head_dim;
  const float* q = a.q + (static_cast<size_t>(i) * a.n_head + h) * a.head_dim;
  const int last = a.pos0 + i;
  double max = -std::numeric_limits<double>::infinity();
  for (int t = 0; t <= last; ++t) {
    const float* k = a.k + static_cast<size_t>(t) * kv_row + kv_head;
    // Four partial float64 sums (vectorizable); the reference sums in ascending d.
    double p[4] = {0, 0, 0, 0};
    int d = 0;
    for (; d + 4 <= a.head_dim; d += 4) {
      for (int u = 0; u < 4; ++u) {
        p[u] += static_cast<double>(q[d + u]) * k[d + u];
      }
    }
    for (; d < a.head_dim; ++d) {
      p[0] += static_cast<double>(q[d]) * k[d];
    }
    const double score = ((p[0] + p[1]) + (p[2] + p[3])) * a.scale;
    scores[t] = score;
    if (score > max) {
      max = score;
    }
  }
  for (int d = 0; d < a.head_dim; ++d) {
    sums[d] = 0;
  }
  double total = 0;
  for (int t = 0; t <= last; ++t) {
    const double p = std::exp(scores[t] - max);
    total += p;
    const float* v = a.v + static_cast<size_t>(t) * kv_row + kv_head;
    for (int d = 0; d < a.head_dim; ++d) {
      sums[d] += p * v[d];
    }
  }
  float* o = a.out + (static_cast<size_t>(i) * a.n_head + h) * a.head_dim;
  for (int d = 0; d < a.head_dim; ++d) {
    o[d] = static_cast<float>(sums[d] / total);
  }
}

void dense_q8_ref(const float* x, const uint8_t* w, int k, int m, int n, float* out, int j0, int j1) {
  const int blocks = k / 32;
  const size_t rb = 34 * static_cast<size_t>(blocks);
  for (int j = j0; j < j1; ++j) {
    const uint8_t* row = w + static_cast<size_t>(j) * rb;
    for (int i = 0; i < m; ++i) {
      const float* xi = x + static_cast<size_t>(i) * k;
      double sum = 0;
      for (int b = 0; b < blocks; ++b) {
        uint16_t hd;
        std::memcpy(&hd, row + 34 * static_cast<size_t>(b), 2);
        const float d = half_to_float(hd);
        const int8_t* q = reinterpret_cast<const int8_t*>(row + 34 * static_cast<size_t>(b) + 2);
        for (int e = 0; e < 32; ++e) {
          sum += static_cast<double>(xi[32 * b + e]) * static_cast<double>(static_cast<float>(q[e]) * d);
        }
      }
      out[static_cast<size_t>(i) * n + j] = static_cast<float>(sum);
    }
  }
}

bool unary(ops::Unary op, const float* x, size_t n, float* out) {
  return elementwise::with_unary(op, [&](auto f) {
    for (size_t t = 0; t < n; ++t) {
      out[t] = static_cast<float>(f(static_cast<double>(x[t])));
    }
  });
}

bool binary_strided(ops::Binary op, const float* a, const int64_t* as, const float* b, const int64_t* bs,
                    const int64_t* shape, int rank, float* out) {
  return elementwise::with_binary(op, [&](auto f) {
    int64_t total = 1;
    for (int d = 0; d < rank; ++d) {
      total *= shape[d];
    }
    if (total == 0) {
      return;
    }
    const int64_t inner = rank == 0 ? 1 : shape[rank - 1];
    const int64_t ai = rank == 0 ? 0 : as[rank - 1];
    const int64_t bi = rank == 0 ? 0 : bs[rank - 1];
    std::vector<int64_t> index(rank > 1 ? rank - 1 : 0, 0);
    int64_t abase = 0, bbase = 0;
    for (int64_t o = 0; o < total; o += inner) {
      if (ai == 1 && bi == 1) {
        for (int64_t t = 0; t < inner; ++t) {
          out[o + t] = f(a[abase + t], b[bbase + t]);
        }
      } else {
        for (int64_t t = 0; t < inner; ++t) {
          out[o + t] = f(a[abase + t * ai], b[bbase + t * bi]);
        }
      }
      for (int d = rank - 2; d >= 0; --d) {
        abase += as[d];
        bbase += bs[d];
        if (++index[d] < shape[d]) {
          break;
        }
        index[d] = 0;
        abase -= shape[d] * as[d];
        bbase -= shape[d] * bs[d];
      }
    }
  });
}

bool binary_flat(ops::Binary op, const float* a, const float* b, size_t n, float* out) {
  // One loop per op with the element function inlined: vectorized by the compiler.
  return elementwise::with_binary(op, [&](auto f) {
    for (size_t t = 0; t < n; ++t) {
      out[t] = f(a[t], b[t]);
    }
  });
}

void scale(const float* x, float factor, size_t n, float* out) {
  for (size_t t = 0; t < n; ++t) {
    out[t] = x[t] * factor;
  }
}

int64_t embedding(const int32_t* ids, int seq, const void* table, bool f16, int vocab, int embed, float* out) {
  for (int s = 0; s < seq; ++s) {
    const int32_t id = ids[s];
    if (id < 0 || id >= vocab) {
      return s;
    }
    float* dst = out + static_cast<size_t>(s) * embed;
    const size_t off = static_cast<size_t>(id) * embed;
    if (f16) {
      const uint16_t* src = static_cast<const uint16_t*>(table) + off;
      for (int e = 0; e < embed; ++e) {
        dst[e] = half_to_float(src[e]);
      }
    } else {
      std::memcpy(dst, static_cast<const float*>(table) + off, sizeof(float) * embed);
    }
  }
  return -1;
}

}  // namespace barbell
