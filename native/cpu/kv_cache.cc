// KV cache row store / decode (kv_cache.h). Scalar: a decode step stores kv_heads·head_dim elements per layer,
// far below the cost of the attention that reads the cache.
#include "kv_cache.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "kernels.h"

namespace barbell {

uint16_t q8_scale_f16(float d) {
  const uint16_t h = float_to_half_rne(d);
  return (h & 0x7c00u) == 0x7c00u ? static_cast<uint16_t>((h & 0x8000u) | 0x7bffu) : h;
}

void encode_q8_0_block(const float* x, uint8_t* out) {
  float amax = 0.0f;
  for (int j = 0; j < 32; ++j) {
    const float a = std::fabs(x[j]);
    amax = a > amax ? a : amax;  // NaN skipped, as the reference's absMax
  }
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  const uint16_t h = q8_scale_f16(d);
  std::memcpy(out, &h, 2);
  for (int j = 0; j < 32; ++j) {
    const float q = std::round(x[j] * id);  // round: ties away from zero, as roundf
    const int v = std::isnan(q) ? 0 : q > 127.0f ? 127 : q < -128.0f ? -128 : static_cast<int>(q);
    out[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(v));
  }
}

void kv_store_rows(int kv_type, const float* src, size_t rows, size_t elems, uint8_t* dst) {
  const size_t n = rows * elems;
  if (kv_type == kKvF16) {
    for (size_t i = 0; i < n; ++i) {
      const uint16_t h = float_to_half_rne(src[i]);
      std::memcpy(dst + 2 * i, &h, 2);
    }
  } else if (kv_type == kKvQ8_0) {
    for (size_t b = 0; b < n / 32; ++b) {
      encode_q8_0_block(src + 32 * b, dst + 34 * b);
    }
  } else {
    std::memcpy(dst, src, n * sizeof(float));
  }
}

void kv_decode_rows(int kv_type, const uint8_t* src, size_t rows, size_t elems, float* dst) {
  const size_t n = rows * elems;
  if (kv_type == kKvF16) {
    for (size_t i = 0; i < n; ++i) {
      uint16_t h = 0;
      std::memcpy(&h, src + 2 * i, 2);
      dst[i] = half_to_float(h);
    }
  } else if (kv_type == kKvQ8_0) {
    for (size_t b = 0; b < n / 32; ++b, src += 34, dst += 32) {
      uint16_t h = 0;
      std::memcpy(&h, src, 2);
      const float d = half_to_float(h);
      for (int j = 0; j < 32; ++j) {
        dst[j] = static_cast<float>(static_cast<int8_t>(src[2 + j])) * d;
      }
    }
  } else {
    std::memcpy(dst, src, n * sizeof(float));
  }
}

void kv_round_q8_rows(const float* src, size_t rows, size_t elems, float* dst) {
  std::vector<uint8_t> blocks(kv_bytes(kKvQ8_0, elems));
  for (size_t r = 0; r < rows; ++r) {
    kv_store_rows(kKvQ8_0, src + r * elems, 1, elems, blocks.data());
    kv_decode_rows(kKvQ8_0, blocks.data(), 1, elems, dst + r * elems);
  }
}

}  // namespace barbell
