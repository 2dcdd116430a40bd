// Kernel interface shared by every ISA path of the native CPU backend.
//
// Each ISA translation unit (kernels_scalar.cc, kernels_avx2.cc, kernels_avx512bw.cc,
// kernels_avx512vnni.cc, kernels_neon.cc) is compiled with its own target flags and exports one
// IsaKernels table. The addon picks a table at load time from CPUID (cpu_features.cc), so a single
// .node runs on any x86-64 (or arm64) CPU. Nothing here may be compiled with -march=native.
//
// All kernels work on caller-checked pointers: addon.cc verifies every typed array is long enough
// before a kernel runs. Kernels that split over threads take a row range [j0, j1) of the output
// columns (weight rows) so the thread pool can hand out chunks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "float_kernels.h"

namespace barbell {

// Ternary weights (t2 layout) × int8 activations.
//
// t2 layout (src/quant/layouts.ts): row j of w has row_bytes = ceil(K/4) bytes; element c is the
// 2-bit code (trit + 1) at bits 2*(c&3) of byte c>>2. Code 3 is never written: a ternary tensor never
// holds it within its K columns (ternaryFromCodes and every loader refuse it), so kernels may read it as any
// value there (the scalar and look-up paths read 0, the AVX2 one-row path +2); the padding codes past K are
// arbitrary and meet zero activations.
//
// SIMD paths multiply the unsigned codes (trit + 1 ∈ {0,1,2}) by the signed activations and
// subtract Σx afterwards (BITNET.md §2.3): Σ (t+1)·x − Σ x = Σ t·x, exact in int32.
// To avoid shuffling weights, the activations are repacked once per call into "planes" that match
// what a SIMD register of packed weight bytes decodes to (see repack_x_planes below).
struct TernaryArgs {
  const int8_t* xp;      // activations: raw x (block == 0) or planes (block > 0), m rows of xp_stride
  size_t xp_stride;      // elements per row of xp
  const int32_t* xsum;   // Σ x per row (exact)
  const float* xscale;   // s_x per row (divides)
  float gamma;           // weight scale (multiplies)
  const uint8_t* w;      // n rows of row_bytes
  size_t row_bytes;
  int k, m, n;
  float* out;            // [m, n]
};

// Binary weights (b1 layout: ceil(K/32) little-endian uint32 words per row, bit set = +1) × int8.
struct BinaryI8Args {
  const int8_t* x;
  const int32_t* xsum;
  const float* xscale;
  float beta;
  const uint32_t* w;
  size_t row_words;
  int k, m, n;
  float* out;
};

// Binary × binary: XNOR-popcount, exact int32 (no scales).
struct BinaryBinaryArgs {
  const uint32_t* x;
  const uint32_t* w;
  size_t row_words;
  int k, m, n;
  int32_t* out;
};

// Dense float weights: f32 or IEEE half (f16), out[i, j] = Σ_c x[i, c] · w[j, c].
struct DenseArgs {
  const float* x;
  const void* w;  // float* or uint16_t* (f16 bits)
  bool f16;
  int k, m, n;
  float* out;
};

// Q8_0 weights × Q8_0-style int8 activations (the integer output head), out[m, n].
// The activations are quantized per 32-element block with BitNet's per-token quantizer applied to
// each block (quantize_rows over rows of 32): q int8, s = 127 / max(absmax, 1e-5), inv = 1 / s (f32).
// With idot the exact int32 Σ w·q of one block and d the weight block's f16 scale (exact in f32):
//   acc ← acc + (idot · inv) · d     for blocks b = 0, 1, … in order, every operation one f32 rounding,
// the same in every path (SIMD paths vectorize across 16 weight rows, never across blocks).
struct Q8I8Args {
  const int8_t* xq;     // [m, k] quantized activations
  const float* xinv;    // [m, k / 32] 1 / s per block
  const int32_t* xsum;  // [m, k / 32] Σ q per block (exact)
  const uint8_t* w;     // n rows of k / 32 blocks of 34 bytes (f16 d, 32 int8)
  int k, m, n;
  float* out;           // [m, n]
};

struct IsaKernels {
  const char* name;
  // Weight bytes consumed per SIMD step by `ternary`; the activation planes are built for it.
  // 0: the kernel reads raw x.
  int ternary_block;
  void (*ternary)(const TernaryArgs& a, int j0, int j1);
  void (*binary_i8)(const BinaryI8Args& a, int j0, int j1);
  void (*binary_binary)(const BinaryBinaryArgs& a, int j0, int j1);
  void (*dense)(const DenseArgs& a, int j0, int j1);
  // Optional (null: the addon uses the portable float64 versions in float_kernels.cc).
  // Causal attention over (query row, head) pairs [p0, p1) in f32; scratch holds seq_kv + 64 floats, twice
  // that where kt is set (the x86 kernels then take two query rows of a head at once).
  void (*attention)(const AttentionArgs& a, int p0, int p1, float* scratch);
  // Dense rows [j0, j1) of out[m, n] = x[m, k] · w[n, k]ᵀ, weights in format `fmt` (DenseFormat),
  // four weight rows per pass: the decode GEMV (m = 1) and the Q8_0 head.
  void (*dense_gemv)(const float* x, const uint8_t* w, int fmt, int k, int m, int n, float* out, int j0, int j1);
  // out = x / (1 + e^−x) in f32.
  void (*silu)(const float* x, size_t n, float* out);
  // Bit-exact vector versions of quantize_rows and (float64) rms_norm (float_kernels.h).
  int64_t (*quantize)(const float* x, int m, int k, int8_t* q, float* scales);
  void (*rms_norm)(const float* x, const float* w, int rows, int cols, double eps, float* out);
  // Weight rows [j0, j1) of the integer Q8_0 head (Q8I8Args); null: the scalar table's.
  void (*q8_i8)(const Q8I8Args& a, int j0, int j1);
  // Optional: one call of the split-K decode attention (attention_decode.inc): query row q (f32, or q8_0 blocks over
  // a q8_0 cache) against cache rows [t0, t1) (≤ kDecodeChunk; k and v point at the rows' bytes, kv_row elements a
  // row) for KV heads [g0, g1) and their query heads: part[h·(D + 2)] = {max score, Σ e^(s − max), Σ e^(s − max)·v}.
  // Null: decode goes through `attention` (or the float64 path). scratch: (g1 − g0)·group·(kDecodeChunk + 8) + 64
  // floats.
  void (*attention_chunk)(int kv_type, const void* q, const void* k, const void* v, size_t kv_row, int t0, int t1, int g0,
                          int g1, int group, int D, double scale, float* part, float* scratch);
  // Optional: repack_x_planes for this table's ternary_block, the same bytes and sums (null: the portable loop).
  void (*repack)(const int8_t* x, int m, int k, int block, int8_t* xp, size_t xp_stride, int32_t* xsum);
};

// Cache positions per task of the split decode attention: fixed, so the partials (and the bits) do not depend on the
// thread count.
constexpr int kDecodeChunk = 256;

// Weight formats of IsaKernels::dense_gemv. Q8_0: rows of k / 32 blocks of 34 bytes (f16 scale d,
// then 32 int8 q; value = q·d); k must be a multiple of 32.
enum DenseFormat { kDenseF32 = 0, kDenseF16 = 1, kDenseQ8 = 2 };

const IsaKernels* scalar_kernels();
#if defined(__x86_64__) || defined(_M_X64)
const IsaKernels* avx2_kernels();
const IsaKernels* avx512bw_kernels();
const IsaKernels* avx512vnni_kernels();
#endif
#if defined(__aarch64__) || defined(_M_ARM64)
const IsaKernels* neon_kernels();
#endif

// Repacks activations for a ternary kernel that consumes `block` weight bytes per step.
//
// A block of B packed weight bytes holds 4B elements: byte b holds elements 4b+0 … 4b+3 in its four
// 2-bit fields. A SIMD kernel turns field i of every byte into one vector of B codes ("plane i"),
// so plane i, lane b is element 4b + i. The activations are laid out the same way:
//
//   x:  e0 e1 e2 e3 | e4 e5 e6 e7 | …            (element order)
//   xp: e0 e4 e8 … e(4B-4) | e1 e5 … | e2 e6 … | e3 e7 …   (4 planes of B bytes per block)
//
// Each row of xp is padded with zeros to a whole number of blocks (xp_stride = round_up(k, 4B)),
// so codes past K (row padding) multiply zero. Also writes the exact Σx of each row.
void repack_x_planes(const int8_t* x, int m, int k, int block, int8_t* xp, size_t xp_stride, int32_t* xsum);

// f16 bits → f32, exact (subnormals, infinities and NaN payloads included).
float half_to_float(uint16_t h);
// IEEE binary16 bits of f, rounded to nearest even (overflow: ±inf; NaN stays NaN, quiet): the KV cache's f16 rows
// and the Q8_0 encoder's scales, the bits of src/quant/half.ts f32BitsToHalfBits.
uint16_t float_to_half_rne(float f);

// Scales one exact accumulator the way the JS reference does: fround(fround(acc / s) * g).
// Compiled with -ffp-contract=off, so this is one division and one multiplication, each rounded.
inline float scale_acc(int32_t acc, float s, float g) {
  float q = static_cast<float>(acc) / s;
  return q * g;
}

// One Q8_0 block (f16 d, then 32 int8) against 32 quantized activations, rounded as every q8_i8 kernel rounds it:
// the exact int32 sum, times 1/s, times d (two f32 roundings; the caller adds the products in block order).
inline float q8_block_product(const uint8_t* blk, const int8_t* x, float inv) {
  uint16_t hd;
  std::memcpy(&hd, blk, 2);
  const int8_t* q = reinterpret_cast<const int8_t*>(blk + 2);
  int32_t idot = 0;
  for (int c = 0; c < 32; ++c) {
    idot += static_cast<int32_t>(q[c]) * static_cast<int32_t>(x[c]);
  }
  const float scaled = static_cast<float>(idot) * inv;
  return scaled * half_to_float(hd);
}

}  // namespace barbell
