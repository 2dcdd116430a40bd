// Float kernels that follow the JS reference's float64 semantics (src/backends/js/kernels): the
// intermediate math is double and each output is rounded to f32 once, so results differ from the
// reference only through libm (exp, sin, cos, pow, tanh) and, in attention, summation order.
// Compiled with the baseline flags. They are the scalar / NEON path; on x86 the AVX2 and AVX-512
// tables (simd_float.inc) replace attention (f32), quantize_rows (bit-exact), rms_norm (float64) and
// SiLU (f32) with vector versions, and the addon splits attention over (row, head) pairs.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ops.generated.h"

namespace barbell {

// Element type of a KV cache (src/model/bitnet/kv-cache.ts KvCacheDType): f32; f16 (binary16, rounded to
// nearest even); q8_0 (per 32 elements along the head dim: an f16 scale d then 32 int8 q, value q·d, as
// llama.cpp's quantize_row_q8_0_ref). A cache row is kv_heads·head_dim elements.
enum KvType : int { kKvF32 = 0, kKvF16 = 1, kKvQ8_0 = 2 };
// Bytes of `elements` cache elements of this type (q8_0: elements is a multiple of 32).
inline size_t kv_bytes(int kv_type, size_t elements) {
  return kv_type == kKvF16 ? elements * 2 : kv_type == kKvQ8_0 ? elements / 32 * 34 : elements * 4;
}

// Returns −1, or the index of the first non-finite x (nothing is written then).
int64_t quantize_rows(const float* x, int m, int k, int8_t* q, float* scales);
void rms_norm(const float* x, const float* w, int rows, int cols, double eps, float* out);
void rope(const float* x, int seq, int heads, int head_dim, const int32_t* pos, double theta, bool neox, float* out);
// rope with precomputed cos / sin: cs[s·half + j], sn[s·half + j] for row s and pair j (the values the
// reference computes: angle = pos · theta^(−2j / head_dim) in float64).
void rope_table(const float* x, int seq, int heads, int head_dim, const double* cs, const double* sn, bool neox,
                float* out);
void softmax_rows(const float* x, int rows, int cols, float* out);

struct AttentionArgs {
  const float* q;
  const float* k;
  const float* v;
  int seq_q, seq_kv, n_head, n_kv_head, head_dim, pos0;
  double scale;
  float* out;
  // Optional: the keys transposed, kt[kv_head][d][t] with row stride kt_stride (≥ seq_kv). The SIMD
  // paths then compute W scores per vector (no horizontal sum per key); set for prefill.
  const float* kt = nullptr;
  size_t kt_stride = 0;
  // KvType of k and v; for f16 / q8_0 the k and v pointers point at the rows' bytes (kv_bytes per row).
  int kv_type = kKvF32;
};
// One (query row, head) pair in float64; scratch holds seq_kv doubles.
void attention_one(const AttentionArgs& a, int i, int h, double* scratch, double* sums);

// Q8_0 dense rows [j0, j1) like the JS reference: each value q·d exact in f32, products and sums in
// float64 (ascending k), one rounding per output. w: n rows of k / 32 blocks of 34 bytes.
void dense_q8_ref(const float* x, const uint8_t* w, int k, int m, int n, float* out, int j0, int j1);

// Element-wise ops by their op-table enum (ops.generated.h), run through the switches of elementwise.h.
// Each returns false, writing nothing, for an op without a case there (elementwise::implements); the
// addon checks that before it calls, and turns a JS code into an enum only after ops::valid_unary /
// valid_binary accepted it.
bool unary(ops::Unary op, const float* x, size_t n, float* out);
// Contiguous out of `shape`; strides in elements.
bool binary_strided(ops::Binary op, const float* a, const int64_t* a_strides, const float* b, const int64_t* b_strides,
                    const int64_t* shape, int rank, float* out);
// The same on n contiguous elements (one loop per op, vectorized by the compiler).
bool binary_flat(ops::Binary op, const float* a, const float* b, size_t n, float* out);
void scale(const float* x, float factor, size_t n, float* out);
// Returns −1, or the position of the first id outside [0, vocab) (nothing further is written).
int64_t embedding(const int32_t* ids, int seq, const void* table, bool f16, int vocab, int embed, float* out);

}  // namespace barbell
