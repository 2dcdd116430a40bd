// The execution state one Context owns: the ISA kernel table, the thread pool, and the scratch memory
// and caches that kernels reuse between calls (repacked activations, RoPE cos/sin, the fused block's
// activation arena). Context (addon.cc) is the N-API face; Executor does the work, so the single-kernel
// entry points and the fused transformer block (block.cc) share one implementation of each step.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "aligned.h"
#include "cpu_features.h"
#include "float_kernels.h"
#include "kernels.h"
#include "thread_pool.h"

namespace barbell {

// A table for `isa`, with entries that path lacks taken from the scalar table.
IsaKernels table_for(Isa isa);

// One ternary weight matrix applied to prepared activations: out[m, n] = planes · w[n, k]ᵀ, scaled.
struct TernaryTarget {
  const uint8_t* w;  // n rows of ceil(k / 4) bytes (t2 layout)
  float gamma;
  int n;
  float* out;  // [m, n]
};

// The fused BitNet block (BITNET.md §1.2), one step over `seq` new tokens. See block.cc.
struct BlockArgs {
  const float* h;        // [seq, embed] residual stream in
  float* out;            // [seq, embed] residual stream out (may not alias h)
  const int32_t* pos;    // [seq] positions
  float* k_cache;        // [capacity, kv_heads, head_dim]; rows pos0 … pos0 + seq − 1 are written
  float* v_cache;
  int seq, embed, heads, kv_heads, head_dim, ffn, pos0, capacity;
  double eps, theta, attn_scale;
  bool relu2;            // ReLU² FFN (bitnet-b1.58); false: SiLU (bitnet)
  const float* norm[4];  // attn_norm [embed], attn_sub_norm [heads·head_dim], ffn_norm [embed], ffn_sub_norm [ffn]
  const uint8_t* w[7];   // wq, wk, wv, wo, wGate, wUp, wDown (t2 layout)
  float gamma[7];
  // Batch mode (batch > 0, then batch == seq): row b of h is the next token of its own sequence, whose
  // caches are k_caches[b] / v_caches[b] with pos[b] positions filled; k_cache, v_cache, pos0 and
  // capacity are unused. The caller checked that row pos[b] fits each cache.
  int batch = 0;
  float* const* k_caches = nullptr;
  float* const* v_caches = nullptr;
  // KvType of every cache (float_kernels.h). For f16 / q8_0 the cache pointers above point at the rows'
  // bytes (kv_bytes(kv_type, kv_heads·head_dim) per row): the block rounds K and V into them and its
  // attention reads them decoded. Default: f32.
  int kv_type = kKvF32;
};

class Executor {
 public:
  Executor(Isa isa, int threads);

  Isa isa() const { return isa_; }
  const IsaKernels& table() const { return table_; }
  int threads() const { return pool_ ? pool_->threads() : 0; }
  bool alive() const { return static_cast<bool>(pool_); }
  ThreadPool& pool() { return *pool_; }
  void stop();

  // Splits n output rows into tasks of whole row chunks over the pool; one task for small problems.
  void parallel_rows(int n, size_t work_per_row, const std::function<void(int, int)>& fn);

  // Splits [0, n) into about 4 chunks per thread of at least `grain` items each and runs fn(begin, end)
  // over the pool; one inline call when that makes a single chunk. For row-independent steps.
  void parallel_range(size_t n, size_t grain, const std::function<void(size_t, size_t)>& fn);

  // Rearranges int8 activations [m, k] into the planes the ternary kernel reads (kernels.h) and
  // computes Σx per row, into scratch owned by the executor; valid until the next call.
  void prepare_ternary(const int8_t* x, int m, int k);
  // Runs every target on the prepared activations, all targets' rows split over the pool as one job.
  void ternary_prepared(const float* xscale, int m, int k, const TernaryTarget* targets, int count);

  // Causal attention over (query row, head) pairs, split over the pool when it pays.
  void attention(const AttentionArgs& a);
  // Batch mode of the block: row b of q [batch, heads·head_dim] attends over its own caches (pos[b] + 1
  // positions); every (row, head) pair is one task of one pool job.
  void attention_rows(const BlockArgs& a, const float* q, float* out);
  // RoPE of x [seq, heads, head_dim] (cos/sin cached per position for the last theta and head_dim).
  void rope(const float* x, int seq, int heads, int head_dim, const int32_t* pos, double theta, bool neox, float* out);
  // The table's vector kernels where it has them, else the portable ones.
  // Rows (elements) split over the pool when large; results identical to one call.
  int64_t quantize(const float* x, int m, int k, int8_t* q, float* scales);
  void rms_norm(const float* x, const float* w, int rows, int cols, double eps, float* out);
  // False (nothing written) for an op without a case in elementwise.h.
  bool unary(ops::Unary op, const float* x, size_t n, float* out);
  bool binary_flat(ops::Binary op, const float* a, const float* b, size_t n, float* out);

  // The fused block; returns −1, or (when an activation to quantize is not finite) the stage code
  // 0 … 3 (attn input, attn output, ffn input, ffn hidden). Nothing is written to the cache then
  // beyond the rows of this step.
  int bitnet_block(const BlockArgs& a);

 private:
  Isa isa_;
  IsaKernels table_;
  std::unique_ptr<ThreadPool> pool_;
  AlignedVector<int8_t> xp_;  // rows of xp_stride_ (on x86 a multiple of 128 or 256): every block on a cache line
  std::vector<int32_t> xsum_;
  size_t xp_stride_ = 0;
  double rope_theta_ = -1;
  int rope_half_ = -1;
  std::vector<double> rope_cs_, rope_sn_, rope_tcs_, rope_tsn_;
  std::vector<uint8_t> rope_have_;
  AlignedVector<float> kt_;  // transposed keys for prefill attention
  // The fused block's activation arena (grown, never shrunk; one per context).
  AlignedVector<float> arena_f32_;  // its regions start on cache lines (block.cc)
  AlignedVector<int8_t> arena_i8_;
};

}  // namespace barbell
