// Block-quantized weights on the native CPU backend: the Q6_K output head (matmulDense) and the token
// embedding over Q6_K and Q8_0 rows. Numerics are the JS reference's (src/backends/js/kernels/dense.ts): a row is
// dequantized exactly as ggml's dequantize_row_q6_K (d · scale · (q − 32), exact in f32), the embedding is
// that row bit for bit, and the head multiplies it with x in f32 partial sums added in double per block
// (within the reference's float64 tolerance, like the Q8_0 rows of matmulDense).
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>

namespace barbell {

class Executor;

// Q6_K: 256 elements per 210-byte block (ql[128], qh[64], scales[16] int8, f16 d).
constexpr int kQ6KBlock = 256;
constexpr int kQ6KBytes = 210;

// Dequantizes one Q6_K block into out[256].
void q6k_dequantize_block(const uint8_t* block, float* out);

// Rows [j0, j1) of out[m, n] = x[m, k] · decode(w)[n, k]ᵀ, w in Q6_K rows (k % 256 == 0).
void dense_q6k(const float* x, const uint8_t* w, int k, int m, int n, float* out, int j0, int j1);

#if defined(__x86_64__) || defined(_M_X64)
// The same with AVX2 + FMA + F16C (kquant_avx2.cc); call only when the CPU has them.
void dense_q6k_avx2(const float* x, const uint8_t* w, int k, int m, int n, float* out, int j0, int j1);
#endif

// denseQ6K(x: Float32Array, w: Uint8Array (Q6_K rows), m, k, n, out: Float32Array); k % 256 == 0.
Napi::Value dense_q6k_napi(const Napi::CallbackInfo& info, Executor& exec);

// embeddingBlocks(format: 0 = Q8_0 | 1 = Q6_K, ids: Int32Array, seq, table: Uint8Array (rows of that format),
// vocab, embed, out: Float32Array) → −1, or the position of the first id outside [0, vocab) (rows before it
// are written). embed must be a multiple of the format's block (32, 256). Rows decode exactly as the reference.
Napi::Value embedding_blocks_napi(const Napi::CallbackInfo& info);

}  // namespace barbell
