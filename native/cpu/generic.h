// Portable kernel bodies included by several ISA translation units.
//
// Everything here is in an anonymous namespace: each translation unit gets its own copy compiled
// with its own target flags (e.g. POPCNT in the AVX2 unit), and no inline function with one name
// but different instructions can be merged across units by the linker (an ODR hazard).
#pragma once

#include <cstring>

#include "kernels.h"

namespace barbell {
namespace {

// How far ahead a ternary tile prefetches its weights: whole tiles of `tile` bytes, at least `bytes` (the tiles'
// linear software prefetch, kernels_avx512.inc and kernels_avx2.cc).
constexpr size_t prefetch_distance(size_t bytes, size_t tile) { return (bytes + tile - 1) / tile * tile; }

inline uint64_t load_u64(const void* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);  // unaligned-safe
  return v;
}

// Number of ±1 agreements minus disagreements over k bits: k − 2·popcount(x XOR w), padding masked.
inline int32_t dot_binary_binary(const uint32_t* x, const uint32_t* w, size_t words, int k) {
  int64_t differing = 0;
  const size_t full_words = static_cast<size_t>(k) / 32;  // words holding no padding bits
  size_t t = 0;
  for (; t + 2 <= full_words; t += 2) {
    differing += __builtin_popcountll(load_u64(x + t) ^ load_u64(w + t));
  }
  for (; t < words; ++t) {
    uint32_t v = x[t] ^ w[t];
    if (t == full_words) {
      v &= (1u << (k & 31)) - 1u;  // the partial last word: drop padding bits
    }
    differing += __builtin_popcount(v);
  }
  return static_cast<int32_t>(k - 2 * differing);
}

void generic_binary_binary(const BinaryBinaryArgs& a, int j0, int j1) {
  for (int i = 0; i < a.m; ++i) {
    const uint32_t* x = a.x + static_cast<size_t>(i) * a.row_words;
    for (int j = j0; j < j1; ++j) {
      const uint32_t* w = a.w + static_cast<size_t>(j) * a.row_words;
      a.out[static_cast<size_t>(i) * a.n + j] = dot_binary_binary(x, w, a.row_words, a.k);
    }
  }
}

}  // namespace
}  // namespace barbell
