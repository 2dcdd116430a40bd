// Executor: the kernel steps shared by the single-kernel N-API methods and the fused block.
#include "executor.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "elementwise.h"
#include "kv_cache.h"

namespace barbell {

namespace {
// At least n elements of per-thread scratch, kept between calls (each pool thread has its own).
template <typename T>
T* thread_scratch(size_t n) {
  thread_local AlignedVector<T> local;
  if (local.size() < n) {
    local.resize(n);
  }
  return local.data();
}

// Query rows from which attention transposes the keys first (prefill); decoding reads them in place.
constexpr int kTransposeKeysFrom = 16;
}  // namespace

IsaKernels table_for(Isa isa) {
  const IsaKernels* t = scalar_kernels();
  switch (isa) {
#if defined(__x86_64__) || defined(_M_X64)
    case Isa::kAvx2: t = avx2_kernels(); break;
    case Isa::kAvx512bw: t = avx512bw_kernels(); break;
    case Isa::kAvx512vnni: t = avx512vnni_kernels(); break;
#endif
#if defined(__aarch64__) || defined(_M_ARM64)
    case Isa::kNeon: t = neon_kernels(); break;
#endif
    default: break;
  }
  IsaKernels out = *t;
  const IsaKernels* s = scalar_kernels();
  if (out.ternary == nullptr) {
    out.ternary = s->ternary;
    out.ternary_block = s->ternary_block;
  }
  out.binary_i8 = out.binary_i8 != nullptr ? out.binary_i8 : s->binary_i8;
  out.binary_binary = out.binary_binary != nullptr ? out.binary_binary : s->binary_binary;
  out.dense = out.dense != nullptr ? out.dense : s->dense;
#if defined(__x86_64__) || defined(_M_X64)
  if (out.q8_i8 == nullptr && isa == Isa::kAvx512bw) {
    out.q8_i8 = avx2_kernels()->q8_i8;  // every AVX-512BW CPU has AVX2; only the VNNI path has its own
  }
#endif
  out.q8_i8 = out.q8_i8 != nullptr ? out.q8_i8 : s->q8_i8;
  return out;
}

Executor::Executor(Isa isa, int threads) : isa_(isa), table_(table_for(isa)) {
  pool_ = std::make_unique<ThreadPool>(std::max(1, threads));
}

void Executor::stop() {
  if (pool_) {
    pool_->stop();
    pool_.reset();
  }
}

void Executor::parallel_rows(int n, size_t work_per_row, const std::function<void(int, int)>& fn) {
  const int threads = pool_->threads();
  const size_t total = work_per_row * static_cast<size_t>(n);
  if (threads <= 1 || total < (1u << 16) || n < 8) {
    fn(0, n);
    return;
  }
  // ~8 tasks per thread, rows a multiple of 4 (the SIMD tiles), for load balance; a decode GEMV's tasks (the
  // LM head: 2000 rows, 6 MB of f16 weights a task at 2 threads) cut to about kRowTaskWork multiply-adds
  // (≥ 16 rows) so the wait for the last task at the end of the job stays short.
  constexpr size_t kRowTaskWork = size_t{1} << 19;
  int chunk = std::max(4, (n + threads * 8 - 1) / (threads * 8));
  if (work_per_row * 16 <= kRowTaskWork && static_cast<size_t>(chunk) * work_per_row > kRowTaskWork) {
    chunk = static_cast<int>(kRowTaskWork / work_per_row);
  }
  chunk = (chunk + 3) & ~3;
  const int tasks = (n + chunk - 1) / chunk;
  const std::function<void(int)> job = [&](int t) {
    const int j0 = t * chunk;
    fn(j0, std::min(n, j0 + chunk));
  };
  pool_->run(tasks, job);
}

void Executor::parallel_range(size_t n, size_t grain, const std::function<void(size_t, size_t)>& fn) {
  const size_t threads = static_cast<size_t>(pool_->threads());
  const size_t chunk = std::max(grain, (n + threads * 4 - 1) / (threads * 4));
  if (threads <= 1 || n <= chunk) {
    fn(0, n);
    return;
  }
  const int tasks = static_cast<int>((n + chunk - 1) / chunk);
  const std::function<void(int)> job = [&](int t) {
    const size_t b = static_cast<size_t>(t) * chunk;
    fn(b, std::min(n, b + chunk));
  };
  pool_->run(tasks, job);
}

namespace {
// Elements per chunk below which row-independent steps (norms, quantization, repacking, elementwise)
// stay on the calling thread: decode steps are too small to pay for a pool round trip.
constexpr size_t kParallelGrain = 1 << 15;
}  // namespace

void Executor::prepare_ternary(const int8_t* x, int m, int k) {
  const int block = table_.ternary_block;
  const size_t per = block == 0 ? 1 : 4 * static_cast<size_t>(block);
  xp_stride_ = (static_cast<size_t>(k) + per - 1) / per * per;
  xp_.resize(std::max<size_t>(1, static_cast<size_t>(m) * xp_stride_));
  xsum_.resize(static_cast<size_t>(std::max(1, m)));
  const size_t row_grain = std::max<size_t>(1, kParallelGrain / std::max(1, k));
  const auto repack = table_.repack != nullptr ? table_.repack : repack_x_planes;
  parallel_range(static_cast<size_t>(m), row_grain, [&](size_t r0, size_t r1) {
    repack(x + r0 * k, static_cast<int>(r1 - r0), k, block, xp_.data() + r0 * xp_stride_, xp_stride_,
                    xsum_.data() + r0);
  });
}

void Executor::ternary_prepared(const float* xscale, int m, int k, const TernaryTarget* targets, int count) {
  const size_t row_bytes = static_cast<size_t>((k + 3) / 4);
  const auto fn = table_.ternary;
  auto args = [&](const TernaryTarget& t) {
    return TernaryArgs{xp_.data(), xp_stride_, xsum_.data(), xscale, t.gamma, t.w, row_bytes, k, m, t.n, t.out};
  };
  int rows = 0;
  for (int i = 0; i < count; ++i) {
    rows += targets[i].n;
  }
  const int threads = pool_->threads();
  const size_t work = static_cast<size_t>(m) * static_cast<size_t>(k) * static_cast<size_t>(rows);
  if (threads <= 1 || work < (1u << 16) || rows < 8) {
    for (int i = 0; i < count; ++i) {
      fn(args(targets[i]), 0, targets[i].n);
    }
    return;
  }
  // One job over the rows of every target, in tasks of whole 16-row groups (so two threads' outputs rarely
  // share a 64-byte line) of about kTaskWeightBytes of weights (a decode gemv streams them), at
  // least 4 tasks per thread: the pool gives each thread one contiguous run of tasks and claims are cheap, so
  // small tasks cost little and keep the wait at the end of a job short.
  constexpr size_t kTaskWeightBytes = size_t{32} << 10;
  const int by_bytes = static_cast<int>(std::max<size_t>(16, kTaskWeightBytes / row_bytes));
  int chunk = std::max(16, std::min(by_bytes, (rows + threads * 4 - 1) / (threads * 4)));
  chunk = (chunk + 15) & ~15;
  struct Task {
    int target, j0, j1;
  };
  std::vector<Task> tasks;
  for (int i = 0; i < count; ++i) {
    for (int j = 0; j < targets[i].n; j += chunk) {
      tasks.push_back({i, j, std::min(targets[i].n, j + chunk)});
    }
  }
  std::vector<TernaryArgs> prepared;
  prepared.reserve(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    prepared.push_back(args(targets[i]));
  }
  const std::function<void(int)> job = [&](int t) {
    const Task& task = tasks[static_cast<size_t>(t)];
    fn(prepared[static_cast<size_t>(task.target)], task.j0, task.j1);
  };
  pool_->run(static_cast<int>(tasks.size()), job);
}

// Runs job(0..n-1): inline on one thread (no pool hand-off), else on the pool.
static void run_tasks(ThreadPool& pool, int n, const std::function<void(int)>& job) {
  if (pool.threads() <= 1) {
    for (int t = 0; t < n; ++t) {
      job(t);
    }
  } else {
    pool.run(n, job);
  }
}

namespace {
// One decoded query row: its query heads, cache rows (bytes of the cache's KvType), keys seen and output heads.
struct DecodeRow {
  const float* q;
  const void* k;
  const void* v;
  int T;
  float* out;
};

// Split-K decode attention over the rows (table.attention_chunk; attention_decode.inc): each row's positions cut
// into chunks of kDecodeChunk, each (chunk, KV-head range) a task writing un-normalized partials {m, l, Σ p·v} per
// query head, then per row and head the partials merged chunk 0, 1, 2, … in that order: out = Σ_c w_c·acc_c / Σ_c
// w_c·l_c with w_c = e^(m_c − max m). The chunks and the merge do not depend on the thread count or on how the KV
// heads are split over tasks, so neither do the bits. Over a q8_0 cache the query is rounded to q8_0 blocks once.
void decode_chunked(ThreadPool& pool, const IsaKernels& table, int kv_type, const DecodeRow* rows, int n_rows, int n_head,
                    int n_kv_head, int D, double scale) {
  constexpr int C = kDecodeChunk;
  const int group = n_head / n_kv_head;
  const size_t kv_row = static_cast<size_t>(n_kv_head) * D;
  const size_t head_part = static_cast<size_t>(D) + 2;
  const size_t chunk_part = static_cast<size_t>(n_head) * head_part;
  thread_local std::vector<int> first;   // per row: its first chunk
  thread_local std::vector<int> row_of;  // per chunk: its row
  thread_local std::vector<float> part;  // per chunk: [n_head][D + 2]
  thread_local AlignedVector<uint8_t> qb;  // per row over a q8_0 cache: the query as q8_0 blocks
  first.assign(static_cast<size_t>(n_rows) + 1, 0);
  double work = 0;
  for (int r = 0; r < n_rows; ++r) {
    first[r + 1] = first[r] + (rows[r].T + C - 1) / C;
    work += 2.0 * rows[r].T * n_head * D;
  }
  const int chunks = first[n_rows];
  row_of.resize(static_cast<size_t>(chunks));
  for (int r = 0; r < n_rows; ++r) {
    std::fill(row_of.begin() + first[r], row_of.begin() + first[r + 1], r);
  }
  part.resize(static_cast<size_t>(chunks) * chunk_part);
  const bool q8 = kv_type == kKvQ8_0;
  const size_t q_bytes = q8 ? kv_bytes(kKvQ8_0, static_cast<size_t>(n_head) * D) : 0;
  qb.resize(static_cast<size_t>(n_rows) * q_bytes);
  for (int r = 0; q8 && r < n_rows; ++r) {
    kv_store_rows(kKvQ8_0, rows[r].q, 1, static_cast<size_t>(n_head) * D, qb.data() + r * q_bytes);
  }
  const int threads = pool.threads();
  const bool parallel = threads > 1 && work >= 6.0e4;
  // KV-head ranges per chunk: enough tasks for about four per thread (the bits do not depend on it).
  const int slices = parallel ? std::max(1, std::min(n_kv_head, (4 * threads + chunks - 1) / chunks)) : 1;
  const size_t scratch = static_cast<size_t>(n_head) * (C + 8) + 64;  // every query head of a call's KV-head range
  // The pool's threads see this thread's buffers through these pointers (a thread_local named in the lambda would
  // be the running thread's own).
  const int* first_p = first.data();
  const int* row_of_p = row_of.data();
  float* part_p = part.data();
  const uint8_t* qb_p = qb.data();
  const std::function<void(int)> job = [&, first_p, row_of_p, part_p, qb_p](int task) {
    const int c = task / slices;
    const int s = task % slices;
    const int r = row_of_p[c];
    const int t0 = (c - first_p[r]) * C;
    const void* q = q8 ? static_cast<const void*>(qb_p + r * q_bytes) : static_cast<const void*>(rows[r].q);
    table.attention_chunk(kv_type, q, rows[r].k, rows[r].v, kv_row, t0, std::min(rows[r].T, t0 + C), s * n_kv_head / slices,
                          (s + 1) * n_kv_head / slices, group, D, scale, part_p + c * chunk_part,
                          thread_scratch<float>(scratch));
  };
  if (parallel) {
    pool.run(chunks * slices, job);
  } else {
    for (int t = 0; t < chunks * slices; ++t) {
      job(t);
    }
  }
  for (int r = 0; r < n_rows; ++r) {
    for (int h = 0; h < n_head; ++h) {
      const float* p0 = part.data() + first[r] * chunk_part + h * head_part;
      float mx = p0[0];
      for (int c = first[r] + 1; c < first[r + 1]; ++c) {
        mx = std::max(mx, p0[(c - first[r]) * chunk_part]);
      }
      float* o = rows[r].out + static_cast<size_t>(h) * D;
      std::fill(o, o + D, 0.0f);
      float l = 0;
      for (int c = first[r]; c < first[r + 1]; ++c) {
        const float* pc = p0 + (c - first[r]) * chunk_part;
        const float w = std::exp(pc[0] - mx);
        l += w * pc[1];
        for (int d = 0; d < D; ++d) {
          o[d] += w * pc[2 + d];
        }
      }
      const float inv = 1.0f / l;
      for (int d = 0; d < D; ++d) {
        o[d] *= inv;
      }
    }
  }
}
}  // namespace

void Executor::attention(const AttentionArgs& a) {
  const bool q8 = a.kv_type == kKvQ8_0;
  const size_t q_elems = static_cast<size_t>(a.seq_q) * a.n_head * a.head_dim;
  if (a.kv_type != kKvF32 && (table_.attention_chunk == nullptr || (q8 && a.head_dim > kKvQ8IntegerMaxHeadDim))) {
    // A path without f16 / q8_0 cache readers (scalar, NEON): the rows decoded to f32 (exact), then the f32 kernels;
    // for a q8_0 K cache the query rounded through q8_0 first (kv_round_q8_rows: the integer K·q's product).
    const size_t row = static_cast<size_t>(a.n_kv_head) * a.head_dim;
    std::vector<float> k(static_cast<size_t>(a.seq_kv) * row);
    std::vector<float> v(k.size());
    std::vector<float> qr(q8 ? q_elems : 0);
    kv_decode_rows(a.kv_type, reinterpret_cast<const uint8_t*>(a.k), static_cast<size_t>(a.seq_kv), row, k.data());
    kv_decode_rows(a.kv_type, reinterpret_cast<const uint8_t*>(a.v), static_cast<size_t>(a.seq_kv), row, v.data());
    AttentionArgs f = a;
    if (q8) {
      kv_round_q8_rows(a.q, q_elems / a.head_dim, a.head_dim, qr.data());
      f.q = qr.data();
    }
    f.k = k.data();
    f.v = v.data();
    f.kv_type = kKvF32;
    attention(f);
    return;
  }
  if (a.seq_q < kTransposeKeysFrom && a.kt == nullptr && table_.attention_chunk != nullptr && a.n_kv_head > 0 &&
      a.n_head % a.n_kv_head == 0) {
    // Decode (a few query rows): the split-K kernel; row i sees keys 0 … pos0 + i.
    const size_t Q = static_cast<size_t>(a.n_head) * a.head_dim;
    std::vector<DecodeRow> rows(static_cast<size_t>(a.seq_q));
    for (int i = 0; i < a.seq_q; ++i) {
      rows[i] = {a.q + i * Q, a.k, a.v, a.pos0 + i + 1, a.out + i * Q};
    }
    decode_chunked(*pool_, table_, a.kv_type, rows.data(), a.seq_q, a.n_head, a.n_kv_head, a.head_dim, a.scale);
    return;
  }
  const int pairs = a.seq_q * a.n_head;
  const int threads = pool_->threads();
  // Multiply-adds: Σ over rows of (keys seen) · headDim, twice (q·k and p·v), per head.
  const double work = 2.0 * static_cast<double>(a.seq_q) * a.n_head * a.head_dim * (a.pos0 + (a.seq_q + 1) / 2.0);
  const bool split = threads > 1 && work >= 6.0e4 && pairs > 1;
  // Pairs per task: about 8 tasks per thread for balance (causal rows differ in length).
  const int chunk = split ? std::max(1, pairs / (threads * 8)) : pairs;
  const int tasks = (pairs + chunk - 1) / chunk;
  if (table_.attention != nullptr) {
    const auto fn = table_.attention;
    if (a.seq_q >= kTransposeKeysFrom && a.kt == nullptr) {
      // Prefill: transpose the keys once (kt[kv_head][d][t]) so scores come W at a time.
      AttentionArgs with = a;
      const int D = a.head_dim;
      const size_t stride = (static_cast<size_t>(a.seq_kv) + 15) / 16 * 16;
      const size_t kv_row = static_cast<size_t>(a.n_kv_head) * D;
      kt_.resize(static_cast<size_t>(a.n_kv_head) * D * stride);
      // An f16 / q8_0 cache: each group of 16 rows decoded to f32 first (exact), then transposed.
      std::vector<float> rows(a.kv_type != kKvF32 ? 16 * kv_row : 0);
      const size_t row_bytes = kv_bytes(a.kv_type, kv_row);
      for (int t0 = 0; t0 < a.seq_kv; t0 += 16) {
        const int t1 = std::min(a.seq_kv, t0 + 16);
        const float* src = a.k + static_cast<size_t>(t0) * kv_row;
        if (a.kv_type != kKvF32) {
          kv_decode_rows(a.kv_type, reinterpret_cast<const uint8_t*>(a.k) + static_cast<size_t>(t0) * row_bytes,
                         static_cast<size_t>(t1 - t0), kv_row, rows.data());
          src = rows.data();
        }
        for (size_t c = 0; c < kv_row; ++c) {  // c = kv_head·D + d, the row of kt
          float* dst = kt_.data() + c * stride;
          for (int t = t0; t < t1; ++t) {
            dst[t] = src[static_cast<size_t>(t - t0) * kv_row + c];
          }
        }
      }
      with.kt = kt_.data();
      with.kt_stride = stride;
      std::vector<float> qr(q8 ? q_elems : 0);
      if (q8) {  // transposed keys are f32: the query rounded through q8_0 as in the fallback above
        kv_round_q8_rows(a.q, q_elems / a.head_dim, a.head_dim, qr.data());
        with.q = qr.data();
      }
      attention(with);
      return;
    }
    // Two score rows: the SIMD kernels take two query rows of a head at a time over transposed keys.
    const size_t scratch = 2 * (static_cast<size_t>(a.seq_kv) + 64);
    auto body = [&](int t) {
      fn(a, t * chunk, std::min(pairs, (t + 1) * chunk), thread_scratch<float>(scratch));
    };
    if (!split || tasks == 1) {
      for (int t = 0; t < tasks; ++t) {
        body(t);
      }
    } else {
      const std::function<void(int)> job = body;
      pool_->run(tasks, job);
    }
    return;
  }
  const size_t scratch = static_cast<size_t>(a.seq_kv) + static_cast<size_t>(a.head_dim);
  // Task t handles (row, head) pairs [t·chunk, (t+1)·chunk); `scratch` doubles of per-thread memory.
  auto body = [&](int t, double* scores) {
    double* sums = scores + a.seq_kv;
    const int p1 = std::min(pairs, (t + 1) * chunk);
    for (int p = t * chunk; p < p1; ++p) {
      attention_one(a, p % a.seq_q, p / a.seq_q, scores, sums);  // head-major, like the SIMD paths
    }
  };
  if (!split || tasks == 1) {
    std::vector<double> buf(scratch);
    for (int t = 0; t < tasks; ++t) {
      body(t, buf.data());
    }
  } else {
    const std::function<void(int)> job = [&](int t) {
      body(t, thread_scratch<double>(scratch));
    };
    pool_->run(tasks, job);
  }
}

void Executor::attention_rows(const BlockArgs& a, const float* q, float* out) {
  const int Q = a.heads * a.head_dim;
  int longest = 0;
  for (int b = 0; b < a.seq; ++b) {
    longest = std::max(longest, a.pos[b] + 1);
  }
  const auto args = [&](int b) {
    AttentionArgs r{q + static_cast<size_t>(b) * Q, a.k_caches[b], a.v_caches[b], 1, a.pos[b] + 1, a.heads, a.kv_heads,
                    a.head_dim, a.pos[b], a.attn_scale, out + static_cast<size_t>(b) * Q};
    r.kv_type = a.kv_type;
    return r;
  };
  if (table_.attention_chunk != nullptr && a.heads % a.kv_heads == 0 &&
      (a.kv_type != kKvQ8_0 || a.head_dim <= kKvQ8IntegerMaxHeadDim)) {
    std::vector<DecodeRow> rows(static_cast<size_t>(a.seq));  // one row per sequence, each over its own cache
    for (int b = 0; b < a.seq; ++b) {
      rows[b] = {q + static_cast<size_t>(b) * Q, a.k_caches[b], a.v_caches[b], a.pos[b] + 1, out + static_cast<size_t>(b) * Q};
    }
    decode_chunked(*pool_, table_, a.kv_type, rows.data(), a.seq, a.heads, a.kv_heads, a.head_dim, a.attn_scale);
    return;
  }
  if (a.kv_type != kKvF32) {  // a path without cache readers: one sequence after another through attention()
    for (int b = 0; b < a.seq; ++b) {
      attention(args(b));
    }
    return;
  }
  const int pairs = a.seq * a.heads;
  const auto fn = table_.attention;
  const size_t scratch = static_cast<size_t>(longest) + static_cast<size_t>(a.head_dim) + 64;
  const std::function<void(int)> job = [&](int t) {
    const int b = t / a.heads;
    const int h = t % a.heads;
    const AttentionArgs ab = args(b);
    if (fn != nullptr) {
      fn(ab, h, h + 1, thread_scratch<float>(scratch));  // one query row: pair index = head
    } else {
      double* local = thread_scratch<double>(scratch);
      attention_one(ab, 0, h, local, local + longest);
    }
  };
  run_tasks(*pool_, pairs, job);
}

void Executor::rope(const float* x, int seq, int heads, int head_dim, const int32_t* pos, double theta, bool neox,
                    float* out) {
  // cos / sin of each (position, pair) are cached for the last (theta, head_dim): while decoding,
  // every layer rotates q and k at the same position, so they are computed once per token.
  const int half = head_dim / 2;
  if (theta != rope_theta_ || half != rope_half_) {
    rope_theta_ = theta;
    rope_half_ = half;
    rope_cs_.clear();
    rope_sn_.clear();
    rope_have_.clear();
  }
  const size_t cells = static_cast<size_t>(seq) * static_cast<size_t>(half);
  rope_tcs_.resize(cells);
  rope_tsn_.resize(cells);
  for (int s = 0; s < seq; ++s) {
    const int32_t p = pos[s];
    double* cs = rope_tcs_.data() + static_cast<size_t>(s) * half;
    double* sn = rope_tsn_.data() + static_cast<size_t>(s) * half;
    const bool cacheable = p >= 0 && p < (1 << 20);
    const size_t at = static_cast<size_t>(cacheable ? p : 0);
    if (cacheable && at < rope_have_.size() && rope_have_[at]) {
      std::memcpy(cs, rope_cs_.data() + at * half, sizeof(double) * half);
      std::memcpy(sn, rope_sn_.data() + at * half, sizeof(double) * half);
      continue;
    }
    for (int j = 0; j < half; ++j) {
      const double angle = static_cast<double>(p) * std::pow(theta, (-2.0 * j) / static_cast<double>(head_dim));
      cs[j] = std::cos(angle);
      sn[j] = std::sin(angle);
    }
    if (cacheable) {
      if (at >= rope_have_.size()) {
        rope_have_.resize(at + 1, 0);
        rope_cs_.resize((at + 1) * half);
        rope_sn_.resize((at + 1) * half);
      }
      std::memcpy(rope_cs_.data() + at * half, cs, sizeof(double) * half);
      std::memcpy(rope_sn_.data() + at * half, sn, sizeof(double) * half);
      rope_have_[at] = 1;
    }
  }
  rope_table(x, seq, heads, head_dim, rope_tcs_.data(), rope_tsn_.data(), neox, out);
}

int64_t Executor::quantize(const float* x, int m, int k, int8_t* q, float* scales) {
  const auto qf = table_.quantize != nullptr ? table_.quantize : quantize_rows;
  const size_t row_grain = std::max<size_t>(1, kParallelGrain / std::max(1, k));
  if (pool_->threads() <= 1 || static_cast<size_t>(m) <= row_grain) {
    return qf(x, m, k, q, scales);
  }
  // Rows in parallel; the first non-finite index over all chunks (other rows may have been written).
  std::vector<int64_t> bad(static_cast<size_t>(m), -1);
  parallel_range(static_cast<size_t>(m), row_grain, [&](size_t r0, size_t r1) {
    const int64_t b = qf(x + r0 * k, static_cast<int>(r1 - r0), k, q + r0 * k, scales + r0);
    bad[r0] = b < 0 ? -1 : b + static_cast<int64_t>(r0 * k);
  });
  for (const int64_t b : bad) {
    if (b >= 0) {
      return b;
    }
  }
  return -1;
}

void Executor::rms_norm(const float* x, const float* w, int rows, int cols, double eps, float* out) {
  const auto rf = table_.rms_norm != nullptr ? table_.rms_norm : barbell::rms_norm;
  const size_t row_grain = std::max<size_t>(1, kParallelGrain / std::max(1, cols));
  parallel_range(static_cast<size_t>(rows), row_grain, [&](size_t r0, size_t r1) {
    rf(x + r0 * cols, w, static_cast<int>(r1 - r0), cols, eps, out + r0 * cols);
  });
}

bool Executor::unary(ops::Unary op, const float* x, size_t n, float* out) {
  if (!elementwise::implements(op)) {
    return false;
  }
  parallel_range(n, kParallelGrain, [&](size_t b, size_t e) {
    if (op == ops::Unary::kSilu && table_.silu != nullptr) {
      table_.silu(x + b, e - b, out + b);
    } else {
      barbell::unary(op, x + b, e - b, out + b);
    }
  });
  return true;
}

bool Executor::binary_flat(ops::Binary op, const float* a, const float* b, size_t n, float* out) {
  if (!elementwise::implements(op)) {
    return false;
  }
  parallel_range(n, kParallelGrain, [&](size_t s, size_t e) { barbell::binary_flat(op, a + s, b + s, e - s, out + s); });
  return true;
}

}  // namespace barbell
