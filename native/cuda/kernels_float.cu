// The float kernels: RMSNorm, RoPE (+ the K/V cache writes), split-K attention, softmax, element-wise ops, and
// the sampler. Tolerances against the JS reference's float64 semantics: docs/cuda.md.
#include <cfloat>

#include "bb_math.h"
#include "kernels.h"
#include "reduce.h"

namespace bbcuda {
namespace {

constexpr int kWarp = reduce::kWarp;

__device__ double block_sum_d(double v, double* red) { return reduce::block(v, red, reduce::Sum{}, 0.0); }

__global__ void rmsnorm_kernel(const float* x, const float* w, int cols, double eps, float* out) {
  __shared__ double red[32];
  const long long row = blockIdx.x;
  const float* xr = x + row * cols;
  double sum = 0;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) {
    const double v = xr[c];
    sum += v * v;
  }
  sum = block_sum_d(sum, red);  // also a barrier: in-place rows are read in full before any write
  const double denom = sqrt(sum / cols + eps);
  for (int c = threadIdx.x; c < cols; c += blockDim.x) {
    const double ws = w == nullptr ? 1.0 : static_cast<double>(w[c]);
    out[row * cols + c] = static_cast<float>(__dmul_rn(__ddiv_rn(static_cast<double>(xr[c]), denom), ws));
  }
}

/** One thread per (row, pair); float64 angle and trigonometry as the reference. */
__global__ void rope_kernel(const float* x, int seq, int heads, int hd, const int32_t* pos, double theta, bool neox,
                            float* out, float* cache, const long long* row_off) {
  const int half = hd / 2;
  const long long idx = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  const long long total = static_cast<long long>(seq) * heads * half;
  if (idx >= total) return;
  const int j = static_cast<int>(idx % half);
  const int h = static_cast<int>((idx / half) % heads);
  const int s = static_cast<int>(idx / (static_cast<long long>(half) * heads));
  const int p = pos[s];
  const double angle = static_cast<double>(p) * pow(theta, static_cast<double>(-2 * j) / hd);
  double sn, cs;
  sincos(angle, &sn, &cs);
  const int first = neox ? j : 2 * j;
  const int second = neox ? j + half : 2 * j + 1;
  const long long base = (static_cast<long long>(s) * heads + h) * hd;
  const double xa = x[base + first], xb = x[base + second];
  const float oa = static_cast<float>(xa * cs - xb * sn);
  const float ob = static_cast<float>(xb * cs + xa * sn);
  out[base + first] = oa;
  out[base + second] = ob;
  if (cache != nullptr) {
    float* row = cache + row_off[s] + static_cast<long long>(p) * heads * hd + static_cast<long long>(h) * hd;
    row[first] = oa;
    row[second] = ob;
  }
}

__global__ void cache_write_kernel(const float* src, int width, const int32_t* pos, const long long* row_off,
                                   float* cache) {
  const int s = blockIdx.x;
  float* dst = cache + row_off[s] + static_cast<long long>(pos[s]) * width;
  for (int c = threadIdx.x; c < width; c += blockDim.x) dst[c] = src[static_cast<long long>(s) * width + c];
}

/**
 * Split-K attention, one block of 4 warps per (chunk, head, row). Each warp takes every 4th key of the chunk:
 * the q·k dot over lanes (DJ elements per lane), then an online softmax with per-lane output sums. The warps'
 * states merge in shared memory into one partial (m, l, acc[D]) per chunk; attention_merge combines the chunks.
 */
template <int DJ>
__global__ void attention_kernel(const float* q, const float* k, const float* v, int heads, int kv_heads,
                                 const int32_t* last, const long long* row_off, float scale, float* partial) {
  constexpr int kWarps = 4;
  const int hd = DJ * kWarp;
  const int chunk = blockIdx.x, h = blockIdx.y, i = blockIdx.z;
  const int chunks = gridDim.x;
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int g = h / (heads / kv_heads);
  const int t_last = last[i];
  const int t0 = chunk * kAttnChunk;
  const int t1 = min(t0 + kAttnChunk, t_last + 1);
  float* part = partial + ((static_cast<size_t>(i) * heads + h) * chunks + chunk) * (hd + 2);
  if (t0 >= t1) {
    if (threadIdx.x == 0) {
      part[0] = -INFINITY;
      part[1] = 0.0f;
    }
    return;
  }
  float qr[DJ], acc[DJ];
  const float* qh = q + (static_cast<size_t>(i) * heads + h) * hd;
#pragma unroll
  for (int d = 0; d < DJ; ++d) {
    qr[d] = qh[lane + kWarp * d];
    acc[d] = 0.0f;
  }
  const long long kv_row = static_cast<long long>(kv_heads) * hd;
  const float* kb = k + row_off[i] + static_cast<long long>(g) * hd;
  const float* vb = v + row_off[i] + static_cast<long long>(g) * hd;
  float m = -INFINITY, l = 0.0f;
  for (int t = t0 + warp; t < t1; t += kWarps) {
    const float* kr = kb + t * kv_row;
    float dot = 0.0f;
#pragma unroll
    for (int d = 0; d < DJ; ++d) dot = fmaf(qr[d], kr[lane + kWarp * d], dot);
    for (int o = 16; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
    const float score = dot * scale;
    const float m_new = fmaxf(m, score);
    const float corr = expf(m - m_new);
    const float p = expf(score - m_new);
    l = l * corr + p;
    const float* vr = vb + t * kv_row;
#pragma unroll
    for (int d = 0; d < DJ; ++d) acc[d] = acc[d] * corr + p * vr[lane + kWarp * d];
    m = m_new;
  }
  __shared__ float sm[kWarps], sl[kWarps];
  __shared__ float sacc[kWarps][kAttnMaxHeadDim];
  if (lane == 0) {
    sm[warp] = m;
    sl[warp] = l;
  }
#pragma unroll
  for (int d = 0; d < DJ; ++d) sacc[warp][lane + kWarp * d] = acc[d];
  __syncthreads();
  if (warp == 0) {
    float mm = -INFINITY;
    for (int w = 0; w < kWarps; ++w) mm = fmaxf(mm, sm[w]);
    float ll = 0.0f;
    float out[DJ];
#pragma unroll
    for (int d = 0; d < DJ; ++d) out[d] = 0.0f;
    for (int w = 0; w < kWarps; ++w) {
      const float f = sm[w] == -INFINITY ? 0.0f : expf(sm[w] - mm);
      ll += sl[w] * f;
#pragma unroll
      for (int d = 0; d < DJ; ++d) out[d] += sacc[w][lane + kWarp * d] * f;
    }
    if (lane == 0) {
      part[0] = mm;
      part[1] = ll;
    }
#pragma unroll
    for (int d = 0; d < DJ; ++d) part[2 + lane + kWarp * d] = out[d];
  }
}

__global__ void attention_merge_kernel(const float* partial, int heads, int hd, int chunks, float* out) {
  const int h = blockIdx.x, i = blockIdx.y;
  const float* base = partial + (static_cast<size_t>(i) * heads + h) * chunks * (hd + 2);
  float mm = -INFINITY;
  for (int c = 0; c < chunks; ++c) mm = fmaxf(mm, base[c * (hd + 2)]);
  for (int d = threadIdx.x; d < hd; d += blockDim.x) {
    float num = 0.0f, den = 0.0f;
    for (int c = 0; c < chunks; ++c) {
      const float* p = base + c * (hd + 2);
      if (p[0] == -INFINITY) continue;
      const float f = expf(p[0] - mm);
      den += p[1] * f;
      num += p[2 + d] * f;
    }
    out[(static_cast<size_t>(i) * heads + h) * hd + d] = num / den;
  }
}

__global__ void softmax_kernel(const float* x, int cols, float* out) {
  __shared__ double red[32];
  __shared__ int flags[2];
  const long long row = blockIdx.x;
  const float* xr = x + row * cols;
  if (threadIdx.x == 0) flags[0] = flags[1] = 0;
  __syncthreads();
  double mx = -INFINITY;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) {
    const double v = xr[c];
    if (isnan(v)) flags[0] = 1;
    if (v > mx) mx = v;
  }
  // Block max through the sum helper's layout: negate-free reduction by shuffles.
  for (int o = 16; o > 0; o >>= 1) mx = fmax(mx, __shfl_xor_sync(0xffffffffu, mx, o));
  __shared__ double wmax[32];
  if (threadIdx.x % kWarp == 0) wmax[threadIdx.x / kWarp] = mx;
  __syncthreads();
  mx = -INFINITY;
  for (int w = 0; w < static_cast<int>(blockDim.x / kWarp); ++w) mx = fmax(mx, wmax[w]);
  const bool nan_row = flags[0] != 0;
  __syncthreads();
  if (mx == -INFINITY) {
    for (int c = threadIdx.x; c < cols; c += blockDim.x) out[row * cols + c] = nan_row ? NAN : 0.0f;
    return;
  }
  double sum = 0;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) sum += exp(static_cast<double>(xr[c]) - mx);
  sum = block_sum_d(sum, red);
  for (int c = threadIdx.x; c < cols; c += blockDim.x) {
    out[row * cols + c] = static_cast<float>(exp(static_cast<double>(xr[c]) - mx) / sum);
  }
}

/** The UNARY_OPS codes (ops.ts): neg, abs, exp, relu, relu2, silu, gelu, sigmoid, tanh. */
__device__ float unary_op(int op, float xf) {
  const double x = xf;
  switch (op) {
    case 0:
      return -xf;
    case 1:
      return fabsf(xf);
    case 2:
      return static_cast<float>(exp(x));
    case 3:
      return isnan(xf) ? xf : (xf > 0.0f ? xf : 0.0f);
    case 4: {
      const float r = isnan(xf) ? xf : (xf > 0.0f ? xf : 0.0f);
      return __fmul_rn(r, r);
    }
    case 5:
      return static_cast<float>(x / (1.0 + exp(-x)));
    case 6:
      return static_cast<float>(0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))));
    case 7:
      return static_cast<float>(1.0 / (1.0 + exp(-x)));
    default:
      return static_cast<float>(tanh(x));
  }
}

__global__ void unary_kernel(int op, const float* x, long long n, float* out) {
  for (long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    out[i] = unary_op(op, x[i]);
  }
}

/** max/min propagate NaN and order −0 below +0 (Math.max / Math.min). */
__device__ float binary_op(int op, float a, float b) {
  switch (op) {
    case 0:
      return __fadd_rn(a, b);
    case 1:
      return __fsub_rn(a, b);
    case 2:
      return __fmul_rn(a, b);
    case 3:
      return __fdiv_rn(a, b);
    case 4:
      if (isnan(a) || isnan(b)) return NAN;
      if (a == b) return signbit(a) ? b : a;
      return a > b ? a : b;
    default:
      if (isnan(a) || isnan(b)) return NAN;
      if (a == b) return signbit(a) ? a : b;
      return a < b ? a : b;
  }
}

struct Strides4 {
  long long dims[4], a[4], b[4];
};

__global__ void binary_kernel(int op, const float* a, const float* b, Strides4 st, long long n, float* out) {
  for (long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    long long rest = i, ao = 0, bo = 0;
    for (int d = 3; d >= 0; --d) {
      const long long c = rest % st.dims[d];
      rest /= st.dims[d];
      ao += c * st.a[d];
      bo += c * st.b[d];
    }
    out[i] = binary_op(op, a[ao], b[bo]);
  }
}

__device__ __forceinline__ unsigned long long mix64(unsigned long long z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/** (value, index) ordering of the sampler: larger value first, the lower index on ties (NaN never wins). */
__device__ __forceinline__ bool better(float v, int i, float bv, int bi) {
  return v > bv || (v == bv && i < bi && i >= 0) || (bi < 0 && i >= 0 && !isnan(v));
}

/** Stage 1: block b of row r keeps its chunk's top-k (k rounds of a block argmax) in scratch. */
__global__ void topk_stage1(const float* logits, int vocab, int k, float* scratch) {
  const int r = blockIdx.y, b = blockIdx.x;
  const int per = (vocab + gridDim.x - 1) / gridDim.x;
  const int c0 = b * per, c1 = min(vocab, c0 + per);
  const float* lr = logits + static_cast<size_t>(r) * vocab;
  float* out = scratch + (static_cast<size_t>(r) * gridDim.x + b) * kMaxTopK * 2;
  __shared__ float sv[256];
  __shared__ int si[256];
  __shared__ int taken[kMaxTopK];
  for (int round = 0; round < k; ++round) {
    float bv = -INFINITY;
    int bi = -1;
    for (int c = c0 + threadIdx.x; c < c1; c += blockDim.x) {
      bool used = false;
      for (int t = 0; t < round; ++t) used |= taken[t] == c;
      if (!used && better(lr[c], c, bv, bi)) {
        bv = lr[c];
        bi = c;
      }
    }
    sv[threadIdx.x] = bv;
    si[threadIdx.x] = bi;
    __syncthreads();
    for (int o = blockDim.x / 2; o > 0; o >>= 1) {
      if (threadIdx.x < o && better(sv[threadIdx.x + o], si[threadIdx.x + o], sv[threadIdx.x], si[threadIdx.x])) {
        sv[threadIdx.x] = sv[threadIdx.x + o];
        si[threadIdx.x] = si[threadIdx.x + o];
      }
      __syncthreads();
    }
    if (threadIdx.x == 0) {
      taken[round] = si[0];
      out[2 * round] = sv[0];
      out[2 * round + 1] = __int_as_float(si[0]);
    }
    __syncthreads();
  }
}

/** Stage 2: one block per row merges the candidates, takes the top k and samples (greedy when k == 1). */
__global__ void topk_stage2(const float* scratch, int blocks, int k, float temperature, unsigned long long seed,
                            const int32_t* step, int32_t* ids) {
  const int r = blockIdx.x;
  const float* cand = scratch + static_cast<size_t>(r) * blocks * kMaxTopK * 2;
  const int total = blocks * k;
  __shared__ float sv[256];
  __shared__ int si[256], sslot[256];
  __shared__ float top_v[kMaxTopK];
  __shared__ int top_i[kMaxTopK], used[kMaxTopK];
  for (int round = 0; round < k; ++round) {
    float bv = -INFINITY;
    int bi = -1, bs = -1;
    for (int e = threadIdx.x; e < total; e += blockDim.x) {
      const float* c = cand + (static_cast<size_t>(e / k) * kMaxTopK + e % k) * 2;
      const int idx = __float_as_int(c[1]);
      bool skip = idx < 0;
      for (int t = 0; t < round; ++t) skip |= used[t] == e;
      if (!skip && better(c[0], idx, bv, bi)) {
        bv = c[0];
        bi = idx;
        bs = e;
      }
    }
    sv[threadIdx.x] = bv;
    si[threadIdx.x] = bi;
    sslot[threadIdx.x] = bs;
    __syncthreads();
    for (int o = blockDim.x / 2; o > 0; o >>= 1) {
      if (threadIdx.x < o && better(sv[threadIdx.x + o], si[threadIdx.x + o], sv[threadIdx.x], si[threadIdx.x])) {
        sv[threadIdx.x] = sv[threadIdx.x + o];
        si[threadIdx.x] = si[threadIdx.x + o];
        sslot[threadIdx.x] = sslot[threadIdx.x + o];
      }
      __syncthreads();
    }
    if (threadIdx.x == 0) {
      top_v[round] = sv[0];
      top_i[round] = si[0];
      used[round] = sslot[0];
    }
    __syncthreads();
  }
  if (threadIdx.x != 0) return;
  if (k <= 1 || temperature <= 0.0f) {
    ids[r] = top_i[0];
    return;
  }
  double total_p = 0;
  for (int t = 0; t < k; ++t) total_p += exp((static_cast<double>(top_v[t]) - top_v[0]) / temperature);
  const unsigned long long st = step == nullptr ? 0ull : static_cast<unsigned long long>(step[r]);
  const double u = static_cast<double>(mix64(seed ^ mix64(st * 0x100000001b3ull + r)) >> 11) / 9007199254740992.0;
  double acc = 0;
  int pick = top_i[k - 1];
  for (int t = 0; t < k; ++t) {
    acc += exp((static_cast<double>(top_v[t]) - top_v[0]) / temperature) / total_p;
    if (u < acc) {
      pick = top_i[t];
      break;
    }
  }
  ids[r] = pick;
}

__global__ void advance_kernel(int32_t* pos, int n) {
  if (threadIdx.x < n) pos[threadIdx.x] += 1;
}

__global__ void fill_rows_kernel(long long* row_off, int32_t* pos, int n, long long base, int pos0) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    row_off[i] = base;
    pos[i] = pos0 + i;
  }
}

}  // namespace

cudaError_t launch_rmsnorm(const float* x, const float* w, int rows, int cols, double eps, float* out, cudaStream_t s) {
  rmsnorm_kernel<<<rows, 256, 0, s>>>(x, w, cols, eps, out);
  return cudaGetLastError();
}

cudaError_t launch_rope(const float* x, int seq, int heads, int hd, const int32_t* pos, double theta, bool neox,
                        float* out, float* cache, const long long* row_off, cudaStream_t s) {
  const long long total = static_cast<long long>(seq) * heads * (hd / 2);
  rope_kernel<<<static_cast<unsigned>((total + 255) / 256), 256, 0, s>>>(x, seq, heads, hd, pos, theta, neox, out, cache,
                                                                          row_off);
  return cudaGetLastError();
}

cudaError_t launch_cache_write(const float* src, int seq, int width, const int32_t* pos, const long long* row_off,
                               float* cache, cudaStream_t s) {
  cache_write_kernel<<<seq, 256, 0, s>>>(src, width, pos, row_off, cache);
  return cudaGetLastError();
}

size_t attention_partial_floats(int seq, int heads, int hd, int max_keys) {
  const size_t chunks = static_cast<size_t>((max_keys + kAttnChunk - 1) / kAttnChunk);
  return static_cast<size_t>(seq) * heads * chunks * (hd + 2);
}

cudaError_t launch_attention(const float* q, const float* k, const float* v, int seq, int heads, int kv_heads, int hd,
                             const int32_t* last, const long long* row_off, int max_keys, float scale, float* partial,
                             float* out, cudaStream_t s) {
  const int chunks = (max_keys + kAttnChunk - 1) / kAttnChunk;
  const dim3 grid(chunks, heads, seq);
  switch (hd / kWarp) {
    case 1: attention_kernel<1><<<grid, 128, 0, s>>>(q, k, v, heads, kv_heads, last, row_off, scale, partial); break;
    case 2: attention_kernel<2><<<grid, 128, 0, s>>>(q, k, v, heads, kv_heads, last, row_off, scale, partial); break;
    case 4: attention_kernel<4><<<grid, 128, 0, s>>>(q, k, v, heads, kv_heads, last, row_off, scale, partial); break;
    case 8: attention_kernel<8><<<grid, 128, 0, s>>>(q, k, v, heads, kv_heads, last, row_off, scale, partial); break;
    default: return cudaErrorInvalidValue;
  }
  attention_merge_kernel<<<dim3(heads, seq), 128, 0, s>>>(partial, heads, hd, chunks, out);
  return cudaGetLastError();
}

cudaError_t launch_softmax(const float* x, int rows, int cols, float* out, cudaStream_t s) {
  softmax_kernel<<<rows, 256, 0, s>>>(x, cols, out);
  return cudaGetLastError();
}

cudaError_t launch_unary(int op, const float* x, long long n, float* out, cudaStream_t s) {
  const unsigned blocks = static_cast<unsigned>(n / 256 + 1 < 4096 ? n / 256 + 1 : 4096);
  unary_kernel<<<blocks, 256, 0, s>>>(op, x, n, out);
  return cudaGetLastError();
}

cudaError_t launch_binary(int op, const float* a, const long long* a_strides, const float* b,
                          const long long* b_strides, const long long* dims, int rank, float* out, cudaStream_t s) {
  if (rank < 0 || rank > 4) return cudaErrorInvalidValue;
  Strides4 st{};
  long long n = 1;
  for (int d = 0; d < 4; ++d) {
    const int src = d - (4 - rank);
    st.dims[d] = src >= 0 ? dims[src] : 1;
    st.a[d] = src >= 0 ? a_strides[src] : 0;
    st.b[d] = src >= 0 ? b_strides[src] : 0;
    n *= st.dims[d];
  }
  const unsigned blocks = static_cast<unsigned>(n / 256 + 1 < 4096 ? n / 256 + 1 : 4096);
  binary_kernel<<<blocks, 256, 0, s>>>(op, a, b, st, n, out);
  return cudaGetLastError();
}

cudaError_t launch_sample(const float* logits, int rows, int vocab, int top_k, float temperature, unsigned long long seed,
                          const int32_t* step, float* scratch, int32_t* ids, cudaStream_t s) {
  const int k = top_k < 1 ? 1 : (top_k > kMaxTopK ? kMaxTopK : top_k);
  topk_stage1<<<dim3(kSampleBlocks, rows), 256, 0, s>>>(logits, vocab, k, scratch);
  topk_stage2<<<rows, 256, 0, s>>>(scratch, kSampleBlocks, k, temperature, seed, step, ids);
  return cudaGetLastError();
}

cudaError_t launch_advance(int32_t* pos, int n, cudaStream_t s) {
  advance_kernel<<<1, 1024, 0, s>>>(pos, n);
  return cudaGetLastError();
}

cudaError_t launch_fill_rows(long long* row_off, int32_t* pos, int n, long long base, int pos0, cudaStream_t s) {
  fill_rows_kernel<<<(n + 255) / 256, 256, 0, s>>>(row_off, pos, n, base, pos0);
  return cudaGetLastError();
}

}  // namespace bbcuda
