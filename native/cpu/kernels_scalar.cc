// Scalar (portable C++) kernels: the fallback on every CPU and the reference the SIMD paths are
// compared against in the self test. Compiled with the baseline flags only.
#include <cmath>
#include <cstring>

#include "generic.h"
#include "kernels.h"

namespace barbell {
namespace {

// Trits of the four codes of a t2 byte; code 3 decodes to 0 like the JS reference.
struct TritTable {
  int8_t t[256][4];
  TritTable() {
    static const int8_t of_code[4] = {-1, 0, 1, 0};
    for (int b = 0; b < 256; ++b) {
      for (int i = 0; i < 4; ++i) {
        t[b][i] = of_code[(b >> (2 * i)) & 3];
      }
    }
  }
};
const TritTable kTrits;

void scalar_ternary(const TernaryArgs& a, int j0, int j1) {
  const size_t full = static_cast<size_t>(a.k) / 4;  // bytes whose 4 codes are all data
  const int rem = a.k & 3;
  for (int i = 0; i < a.m; ++i) {
    const int8_t* x = a.xp + static_cast<size_t>(i) * a.xp_stride;
    for (int j = j0; j < j1; ++j) {
      const uint8_t* w = a.w + static_cast<size_t>(j) * a.row_bytes;
      int32_t acc = 0;
      for (size_t b = 0; b < full; ++b) {
        const int8_t* t = kTrits.t[w[b]];
        acc += t[0] * x[4 * b] + t[1] * x[4 * b + 1] + t[2] * x[4 * b + 2] + t[3] * x[4 * b + 3];
      }
      for (int r = 0; r < rem; ++r) {
        acc += kTrits.t[w[full]][r] * x[4 * full + r];
      }
      a.out[static_cast<size_t>(i) * a.n + j] = scale_acc(acc, a.xscale[i], a.gamma);
    }
  }
}

void scalar_binary_i8(const BinaryI8Args& a, int j0, int j1) {
  for (int i = 0; i < a.m; ++i) {
    const int8_t* x = a.x + static_cast<size_t>(i) * a.k;
    for (int j = j0; j < j1; ++j) {
      const uint32_t* w = a.w + static_cast<size_t>(j) * a.row_words;
      // Σ sign·x = 2·Σ_{bit set} x − Σ x.
      int32_t set = 0;
      for (int c = 0; c < a.k; ++c) {
        set += ((w[c >> 5] >> (c & 31)) & 1u) ? x[c] : 0;
      }
      a.out[static_cast<size_t>(i) * a.n + j] = scale_acc(2 * set - a.xsum[i], a.xscale[i], a.beta);
    }
  }
}

void scalar_dense(const DenseArgs& a, int j0, int j1) {
  const float* wf = static_cast<const float*>(a.w);
  const uint16_t* wh = static_cast<const uint16_t*>(a.w);
  for (int j = j0; j < j1; ++j) {
    const size_t wr = static_cast<size_t>(j) * a.k;
    for (int i = 0; i < a.m; ++i) {
      const float* x = a.x + static_cast<size_t>(i) * a.k;
      // Same semantics as the JS reference: float64 products and sum, rounded once.
      double sum = 0;
      for (int c = 0; c < a.k; ++c) {
        const float wv = a.f16 ? half_to_float(wh[wr + c]) : wf[wr + c];
        sum += static_cast<double>(x[c]) * static_cast<double>(wv);
      }
      a.out[static_cast<size_t>(i) * a.n + j] = static_cast<float>(sum);
    }
  }
}

// The integer Q8_0 head, one output at a time: blocks in order, each step one f32 rounding (kernels.h).
void scalar_q8_i8(const Q8I8Args& a, int j0, int j1) {
  const int blocks = a.k / 32;
  const size_t row_bytes = static_cast<size_t>(blocks) * 34;
  for (int j = j0; j < j1; ++j) {
    const uint8_t* row = a.w + static_cast<size_t>(j) * row_bytes;
    for (int i = 0; i < a.m; ++i) {
      const int8_t* x = a.xq + static_cast<size_t>(i) * a.k;
      const float* inv = a.xinv + static_cast<size_t>(i) * blocks;
      float acc = 0.0f;
      for (int b = 0; b < blocks; ++b) {
        acc = acc + q8_block_product(row + static_cast<size_t>(b) * 34, x + b * 32, inv[b]);
      }
      a.out[static_cast<size_t>(i) * a.n + j] = acc;
    }
  }
}

const IsaKernels kScalar = {"scalar", 0, scalar_ternary, scalar_binary_i8, generic_binary_binary, scalar_dense,
                            nullptr, nullptr, nullptr, nullptr, nullptr, scalar_q8_i8};

}  // namespace

const IsaKernels* scalar_kernels() { return &kScalar; }

uint16_t float_to_half_rne(float f) {
  uint32_t u = 0;
  std::memcpy(&u, &f, sizeof u);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const uint32_t abs = u & 0x7fffffffu;
  if (abs >= 0x7f800000u) {
    return static_cast<uint16_t>(abs == 0x7f800000u ? (sign | 0x7c00u) : (sign | 0x7e00u | ((abs >> 13) & 0x3ffu)));
  }
  if (abs >= 0x477ff000u) {  // 65520 and above round to inf
    return static_cast<uint16_t>(sign | 0x7c00u);
  }
  const uint32_t e = abs >> 23;
  if (e >= 113) {
    const uint32_t mant = abs & 0x7fffffu;
    uint32_t h = ((e - 112) << 10) | (mant >> 13);
    const uint32_t rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u) == 1u)) {
      ++h;
    }
    return static_cast<uint16_t>(sign | h);
  }
  if (e < 102) {
    return static_cast<uint16_t>(sign);
  }
  const uint32_t m = (abs & 0x7fffffu) | 0x800000u;
  const uint32_t shift = 126 - e;
  uint32_t q = m >> shift;
  const uint32_t rem = m & ((1u << shift) - 1);
  const uint32_t half = 1u << (shift - 1);
  if (rem > half || (rem == half && (q & 1u) == 1u)) {
    ++q;
  }
  return static_cast<uint16_t>(sign | q);
}

float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);  // inf / NaN (payload kept)
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {
    // Subnormal half: normalize.
    int e = -1;
    do {
      ++e;
      mant <<= 1;
    } while ((mant & 0x400u) == 0);
    bits = sign | (static_cast<uint32_t>(112 - e) << 23) | ((mant & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

void repack_x_planes(const int8_t* x, int m, int k, int block, int8_t* xp, size_t xp_stride, int32_t* xsum) {
  for (int i = 0; i < m; ++i) {
    const int8_t* row = x + static_cast<size_t>(i) * k;
    int8_t* dst = xp + static_cast<size_t>(i) * xp_stride;
    int32_t sum = 0;
    for (int c = 0; c < k; ++c) {
      sum += row[c];
    }
    xsum[i] = sum;
    if (block == 0) {
      std::memcpy(dst, row, static_cast<size_t>(k));
      continue;
    }
    const size_t per = 4 * static_cast<size_t>(block);  // elements per block
    for (size_t base = 0; base < xp_stride; base += per) {
      for (int p = 0; p < 4; ++p) {
        for (int b = 0; b < block; ++b) {
          const size_t c = base + 4 * static_cast<size_t>(b) + p;
          dst[base + static_cast<size_t>(p) * block + b] = c < static_cast<size_t>(k) ? row[c] : 0;
        }
      }
    }
  }
}

}  // namespace barbell
