// Launchers of the CUDA kernels (kernels.cu). Every pointer is device memory; every launcher queues work on
// `stream` and returns cudaGetLastError() of the launch. Shapes are checked by the callers (api.cu, model.cu);
// launchers assume consistent sizes. Semantics: bb_math.h and docs/cuda.md.
#pragma once

#include <cuda_runtime.h>
#include <stdint.h>

namespace bbcuda {

/** Where kernels report data problems: the smallest bad flat index (non-finite activation, bad token id). */
struct DeviceStatus {
  unsigned long long nonfinite;  // ~0ull: none
  unsigned long long bad_id;     // ~0ull: none
};

/** Attention splits the KV length into chunks of this many keys (split-K; one partial per chunk). */
constexpr int kAttnChunk = 256;
/** Largest head dimension of the attention kernel (a multiple of 32). */
constexpr int kAttnMaxHeadDim = 256;
/** Largest top-k of the sampler. */
constexpr int kMaxTopK = 64;

cudaError_t launch_quantize(const float* x, int m, int k, int8_t* q, int q_stride, float* scales, DeviceStatus* st,
                            cudaStream_t s);
/** RMSNorm then the quantizer in one kernel (same operations as the two kernels): x → (normed f32, q, scales). */
cudaError_t launch_norm_quantize(const float* x, const float* w, int m, int k, double eps, float* normed, int8_t* q,
                                 int q_stride, float* scales, DeviceStatus* st, cudaStream_t s);
/** w: repacked rows of t2_padded_row_bytes(k); x: [m] rows of x_stride bytes (x_stride % 16 == 0, readable to
 *  t2_padded_row_bytes(k)·4 elements). out[m, n] = scale_acc(Σ trit·x, xs[i], gamma). */
cudaError_t launch_ternary(const int8_t* x, int x_stride, const float* xs, const uint8_t* w, float gamma, int m, int k,
                           int n, float* out, cudaStream_t s);
/** The exact int32 accumulators (for checks): acc[m, n]. */
cudaError_t launch_ternary_acc(const int8_t* x, int x_stride, const uint8_t* w, int m, int k, int n, int32_t* acc,
                               cudaStream_t s);
cudaError_t launch_rmsnorm(const float* x, const float* w, int rows, int cols, double eps, float* out, cudaStream_t s);
/** RoPE of x[seq, heads, hd] at positions pos[seq]; out may alias x. When cache != nullptr the rotated rows are
 *  also written to cache + row_off[i] + pos[i]·heads·hd (the K cache write). */
cudaError_t launch_rope(const float* x, int seq, int heads, int hd, const int32_t* pos, double theta, bool neox,
                        float* out, float* cache, const long long* row_off, cudaStream_t s);
/** Copies rows src[seq, width] to cache + row_off[i] + pos[i]·width (the V cache write). */
cudaError_t launch_cache_write(const float* src, int seq, int width, const int32_t* pos, const long long* row_off,
                               float* cache, cudaStream_t s);
/** Causal attention: row i of q[seq, H, D] attends over keys 0 … last[i] of the cache at row_off[i]
 *  ([C, KV, D]); split-K in chunks of kAttnChunk, partials merged by a second kernel. max_keys bounds last[i]+1
 *  (sizes the grid; chunks past a row's length exit at once, so a captured graph stays valid as positions grow). */
cudaError_t launch_attention(const float* q, const float* k, const float* v, int seq, int heads, int kv_heads, int hd,
                             const int32_t* last, const long long* row_off, int max_keys, float scale, float* partial,
                             float* out, cudaStream_t s);
/** Floats of scratch launch_attention needs. */
size_t attention_partial_floats(int seq, int heads, int hd, int max_keys);
cudaError_t launch_softmax(const float* x, int rows, int cols, float* out, cudaStream_t s);
cudaError_t launch_unary(int op, const float* x, long long n, float* out, cudaStream_t s);
/** Element-wise binary over out shape dims[rank] (rank ≤ 4), operands read with their own element strides. */
cudaError_t launch_binary(int op, const float* a, const long long* a_strides, const float* b,
                          const long long* b_strides, const long long* dims, int rank, float* out, cudaStream_t s);
/** dtype codes of dense tables: 0 f32, 1 f16, 2 bf16, 3 q8_0 (raw file bytes). */
enum DenseCode { kF32 = 0, kF16 = 1, kBF16 = 2, kQ8_0 = 3 };
cudaError_t launch_embedding(const int32_t* ids, int seq, int dtype, const uint8_t* table, int vocab, int embed,
                             float* out, DeviceStatus* st, cudaStream_t s);
/** out[m, n] = x[m, k] · decode(w)[n, k]ᵀ, f32 accumulation (tolerance, not exact). */
cudaError_t launch_dense(const float* x, int dtype, const uint8_t* w, int m, int k, int n, float* out, cudaStream_t s);
/** The integer Q8_0 head. w_d: [n, k/32] f32 scales and w_q: [n, k] int8 (Q8_0 repacked at upload);
 *  scratch xq [m, k] i8 and xinv [m·k/32] f32. Exact. */
cudaError_t launch_q8_head(const float* x, const float* w_d, const int8_t* w_q, int m, int k, int n, int8_t* xq,
                           float* xinv, float* out, DeviceStatus* st, cudaStream_t s);
/** t2 rows (file layout, n × ceil(k/4) bytes) → the device layout (n × t2_padded_row_bytes(k)), on the device. */
cudaError_t launch_repack_t2(const uint8_t* raw, int n, int k, uint8_t* out, cudaStream_t s);
/** Q8_0 bytes [n, k/32 blocks of 34] → (d f32, q i8): the upload repack, on the device. */
cudaError_t launch_repack_q8(const uint8_t* raw, int n, int k, float* d, int8_t* q, cudaStream_t s);
/** Sampling of row logits[rows, vocab]: greedy (top_k ≤ 1) or top-k with temperature, uniform from (seed, step[r]).
 *  Writes ids[r]; `scratch` holds kSampleScratch floats per row. */
constexpr int kSampleBlocks = 64;
constexpr size_t kSampleScratch = static_cast<size_t>(kSampleBlocks) * kMaxTopK * 2;
cudaError_t launch_sample(const float* logits, int rows, int vocab, int top_k, float temperature, unsigned long long seed,
                          const int32_t* step, float* scratch, int32_t* ids, cudaStream_t s);
/** pos[i] += 1 and step[i] += 1 for i < n (the decode graph's last node). */
cudaError_t launch_advance(int32_t* pos, int n, cudaStream_t s);
/** Fills row_off[i] = base and pos[i] = pos0 + i (a single sequence's rows). */
cudaError_t launch_fill_rows(long long* row_off, int32_t* pos, int n, long long base, int pos0, cudaStream_t s);
/** Deterministic random weights on the device (the timing model): trits for t2 rows, f16 in [−a, a], f32 near 1. */
cudaError_t launch_random_t2(uint8_t* w, size_t bytes, unsigned long long seed, cudaStream_t s);
cudaError_t launch_random_f16(uint16_t* w, size_t n, float amp, unsigned long long seed, cudaStream_t s);
cudaError_t launch_random_f32(float* w, size_t n, float center, float amp, unsigned long long seed, cudaStream_t s);

/** Records an error for bbc_error() (api.cu) and returns its BBC_E* code. */
int report_cuda(cudaError_t e, const char* what);
int report(int code, const char* message);

}  // namespace bbcuda
