// TQ1_0 → t2 (tq1.h). A block's bytes hold 5 trits each as a base-3 fraction: trit k of byte v is
// ((v · 3^k) mod 256) · 3 >> 8 (0..2, already the t2 code trit + 1), the same formula as
// src/quant/formats/tq1-0.ts. Where the trits of a byte land in t2:
//   qs[m],      m < 32: elements m + 32k       → t2 byte m/4 + 8k,       bits 2·(m % 4)   (k = 0..4)
//   qs[32 + m], m < 16: elements 160 + m + 16k → t2 byte 40 + m/4 + 4k,  bits 2·(m % 4)   (k = 0..4)
//   qh[j],      j < 4:  elements 240 + j + 4k  → t2 byte 60 + k,         bits 2·j         (k = 0..3)
#include "tq1.h"

#include <array>

namespace barbell {

namespace {

constexpr int kBlock = 256;
constexpr int kBlockBytes = 54;

// kCodes[v][k]: trit k of byte value v as a t2 code (0..2).
constexpr std::array<std::array<uint8_t, 5>, 256> make_codes() {
  std::array<std::array<uint8_t, 5>, 256> t{};
  for (int v = 0; v < 256; ++v) {
    int p = 1;
    for (int k = 0; k < 5; ++k) {
      t[v][k] = static_cast<uint8_t>((((v * p) & 0xff) * 3) >> 8);
      p *= 3;
    }
  }
  return t;
}
constexpr auto kCodes = make_codes();

// The 64 t2 bytes of one block; returns whether any trit is non-zero (a code other than 1).
bool block_to_t2(const uint8_t* b, uint8_t* out) {
  uint8_t any = 0;
  for (int g = 0; g < 8; ++g) {  // qs[4g .. 4g + 3]
    const auto& c0 = kCodes[b[4 * g]];
    const auto& c1 = kCodes[b[4 * g + 1]];
    const auto& c2 = kCodes[b[4 * g + 2]];
    const auto& c3 = kCodes[b[4 * g + 3]];
    for (int k = 0; k < 5; ++k) {
      const uint8_t v = static_cast<uint8_t>(c0[k] | (c1[k] << 2) | (c2[k] << 4) | (c3[k] << 6));
      out[g + 8 * k] = v;
      any |= v ^ 0x55;
    }
  }
  for (int g = 0; g < 4; ++g) {  // qs[32 + 4g .. 32 + 4g + 3]
    const auto& c0 = kCodes[b[32 + 4 * g]];
    const auto& c1 = kCodes[b[32 + 4 * g + 1]];
    const auto& c2 = kCodes[b[32 + 4 * g + 2]];
    const auto& c3 = kCodes[b[32 + 4 * g + 3]];
    for (int k = 0; k < 5; ++k) {
      const uint8_t v = static_cast<uint8_t>(c0[k] | (c1[k] << 2) | (c2[k] << 4) | (c3[k] << 6));
      out[40 + g + 4 * k] = v;
      any |= v ^ 0x55;
    }
  }
  const auto& h0 = kCodes[b[48]];
  const auto& h1 = kCodes[b[49]];
  const auto& h2 = kCodes[b[50]];
  const auto& h3 = kCodes[b[51]];
  for (int k = 0; k < 4; ++k) {
    const uint8_t v = static_cast<uint8_t>(h0[k] | (h1[k] << 2) | (h2[k] << 4) | (h3[k] << 6));
    out[60 + k] = v;
    any |= v ^ 0x55;
  }
  return any != 0;
}

}  // namespace

int32_t tq1_0_to_t2(const uint8_t* src, int64_t n, uint8_t* dst) {
  int32_t scale = -1;
  for (int64_t blk = 0; blk < n / kBlock; ++blk) {
    const uint8_t* b = src + kBlockBytes * blk;
    const int32_t d = b[52] | (b[53] << 8);
    if ((d & 0x7c00) == 0x7c00) {
      return -2;
    }
    if (block_to_t2(b, dst + 64 * blk)) {
      if (scale == -1) {
        scale = d;
      }
      if (d != scale || (d & 0x8000) != 0 || (d & 0x7fff) == 0) {
        return -2;
      }
    }
  }
  return scale;
}

}  // namespace barbell
