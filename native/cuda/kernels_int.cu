// The integer kernels: the activation quantizer, ternary × int8 GEMV/GEMM (dp4a), the Q8_0 head, embeddings,
// the Q8_0 upload repack and the timing model's random weights. Exactness: bb_math.h.
#include <cuda_fp16.h>

#include <climits>

#include "bb_math.h"
#include "kernels.h"
#include "reduce.h"

namespace bbcuda {
namespace {

constexpr int kWarp = reduce::kWarp;

__device__ __forceinline__ float warp_max(float v) { return reduce::warp(v, reduce::Max{}); }
__device__ __forceinline__ int warp_sum_i(int v) { return reduce::warp(v, reduce::Sum{}); }
/** Block-wide max of non-negative values. */
__device__ float block_max(float v, float* red) { return reduce::block(v, red, reduce::Max{}, 0.0f); }
__device__ double block_sum_d(double v, double* red) { return reduce::block(v, red, reduce::Sum{}, 0.0); }

/** Quantizes row `row` (k values at xr) into qr (zero padding up to q_stride); checks finiteness. */
__device__ void quantize_row(const float* xr, int k, long long flat0, int8_t* qr, int q_stride, float* scale_out,
                             DeviceStatus* st, float* red) {
  float amax = 0.0f;
  for (int c = threadIdx.x; c < k; c += blockDim.x) {
    const float v = xr[c];
    if (!isfinite(v)) atomicMin(&st->nonfinite, static_cast<unsigned long long>(flat0 + c));
    amax = fmaxf(amax, fabsf(v));
  }
  amax = block_max(amax, red);
  const float s = quant_scale(amax);
  if (threadIdx.x == 0) *scale_out = s;
  for (int c = threadIdx.x; c < q_stride; c += blockDim.x) qr[c] = c < k ? quant_value(xr[c], s) : 0;
}

__global__ void quantize_kernel(const float* x, int k, int8_t* q, int q_stride, float* scales, DeviceStatus* st) {
  __shared__ float red[32];
  const long long row = blockIdx.x;
  quantize_row(x + row * k, k, row * k, q + row * q_stride, q_stride, scales + row, st, red);
}

/** RMSNorm (the rmsnorm kernel's operations) into `normed`, then the quantizer on the rounded f32 row. */
__global__ void norm_quantize_kernel(const float* x, const float* w, int k, double eps, float* normed, int8_t* q,
                                     int q_stride, float* scales, DeviceStatus* st) {
  __shared__ double redd[32];
  __shared__ float red[32];
  const long long row = blockIdx.x;
  const float* xr = x + row * k;
  float* nr = normed + row * k;
  double sum = 0;
  for (int c = threadIdx.x; c < k; c += blockDim.x) {
    const double v = xr[c];
    sum += v * v;
  }
  sum = block_sum_d(sum, redd);
  const double denom = sqrt(sum / k + eps);
  for (int c = threadIdx.x; c < k; c += blockDim.x) {
    const double ws = w == nullptr ? 1.0 : static_cast<double>(w[c]);
    nr[c] = static_cast<float>(__dmul_rn(__ddiv_rn(static_cast<double>(xr[c]), denom), ws));
  }
  __syncthreads();
  quantize_row(nr, k, row * k, q + row * q_stride, q_stride, scales + row, st, red);
}

/**
 * Ternary × int8: one warp per weight row, MT activation rows at once (the weight word is read once for all
 * of them). Each lane reads one 16-element word of the repacked row (coalesced 128-byte warp loads) and the
 * matching 16 activation bytes (one 16-byte load per activation row), then 4 dp4a per row.
 */
template <int MT, bool kScaled>
__global__ void ternary_kernel(const int8_t* x, int x_stride, const float* xs, const uint8_t* w, float gamma, int m,
                               int k, int n, float* out, int32_t* acc_out) {
  const int warps = blockDim.x / kWarp;
  const int j = blockIdx.x * warps + threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  const int i0 = blockIdx.y * MT;
  if (j >= n) return;
  const int words = (k + 15) / 16;
  const uint32_t* wr = reinterpret_cast<const uint32_t*>(w + static_cast<size_t>(j) * t2_padded_row_bytes(k));
  int acc[MT];
#pragma unroll
  for (int r = 0; r < MT; ++r) acc[r] = 0;
  for (int g = lane; g < words; g += kWarp) {
    const uint32_t word = __ldg(wr + g);
#pragma unroll
    for (int r = 0; r < MT; ++r) {
      if (i0 + r < m) {
        const uint4 xv = *reinterpret_cast<const uint4*>(x + static_cast<size_t>(i0 + r) * x_stride + 16 * g);
        const uint32_t xw[4] = {xv.x, xv.y, xv.z, xv.w};
        acc[r] = dot16(word, xw, acc[r]);
      }
    }
  }
#pragma unroll
  for (int r = 0; r < MT; ++r) {
    const int total = warp_sum_i(acc[r]);
    if (lane == 0 && i0 + r < m) {
      if (kScaled) {
        out[static_cast<size_t>(i0 + r) * n + j] = scale_acc(total, xs[i0 + r], gamma);
      } else {
        acc_out[static_cast<size_t>(i0 + r) * n + j] = total;
      }
    }
  }
}

template <bool kScaled>
cudaError_t ternary_launch(const int8_t* x, int x_stride, const float* xs, const uint8_t* w, float gamma, int m, int k,
                           int n, float* out, int32_t* acc, cudaStream_t s) {
  constexpr int kWarpsPerBlock = 4;
  const dim3 block(kWarp * kWarpsPerBlock);
  if (m <= 1) {
    const dim3 grid((n + kWarpsPerBlock - 1) / kWarpsPerBlock, m);
    ternary_kernel<1, kScaled><<<grid, block, 0, s>>>(x, x_stride, xs, w, gamma, m, k, n, out, acc);
  } else if (m <= 4) {
    const dim3 grid((n + kWarpsPerBlock - 1) / kWarpsPerBlock, 1);
    ternary_kernel<4, kScaled><<<grid, block, 0, s>>>(x, x_stride, xs, w, gamma, m, k, n, out, acc);
  } else {
    const dim3 grid((n + kWarpsPerBlock - 1) / kWarpsPerBlock, (m + 7) / 8);
    ternary_kernel<8, kScaled><<<grid, block, 0, s>>>(x, x_stride, xs, w, gamma, m, k, n, out, acc);
  }
  return cudaGetLastError();
}

/** Per-32-block quantization of the head's activations, inv = fround(1 / s) per block. */
__global__ void q8_quantize_kernel(const float* x, long long blocks, int8_t* q, float* inv, DeviceStatus* st) {
  const long long b = static_cast<long long>(blockIdx.x) * (blockDim.x / kWarp) + threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (b >= blocks) return;
  const float v = x[b * kQ8Block + lane];
  if (!isfinite(v)) atomicMin(&st->nonfinite, static_cast<unsigned long long>(b * kQ8Block + lane));
  const float amax = warp_max(fabsf(v));
  const float s = quant_scale(amax);
  q[b * kQ8Block + lane] = quant_value(v, s);
  if (lane == 0) inv[b] = __fdiv_rn(1.0f, s);
}

/** One warp per weight row: lanes compute block terms (exact), lane 0 adds them in block order. */
__global__ void q8_head_kernel(const float* w_d, const int8_t* w_q, const int8_t* xq, const float* xinv, int m, int k,
                               int n, float* out) {
  extern __shared__ float terms[];
  const int warps = blockDim.x / kWarp;
  const int wi = threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  const int j = blockIdx.x * warps + wi;
  const int blocks = k / kQ8Block;
  float* t = terms + static_cast<size_t>(wi) * blocks;
  if (j >= n) return;
  const int8_t* wq = w_q + static_cast<size_t>(j) * k;
  const float* wd = w_d + static_cast<size_t>(j) * blocks;
  for (int i = 0; i < m; ++i) {
    const int8_t* xr = xq + static_cast<size_t>(i) * k;
    for (int b = lane; b < blocks; b += kWarp) {
      const uint4* wv = reinterpret_cast<const uint4*>(wq + b * kQ8Block);
      const uint4* xv = reinterpret_cast<const uint4*>(xr + b * kQ8Block);
      int idot = 0;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const uint4 a = wv[h], c = xv[h];
        idot = dp4a(a.x, c.x, idot);
        idot = dp4a(a.y, c.y, idot);
        idot = dp4a(a.z, c.z, idot);
        idot = dp4a(a.w, c.w, idot);
      }
      t[b] = q8_term(idot, xinv[static_cast<size_t>(i) * blocks + b], wd[b]);
    }
    __syncwarp();
    if (lane == 0) {
      float acc = 0.0f;
      for (int b = 0; b < blocks; ++b) acc = __fadd_rn(acc, t[b]);
      out[static_cast<size_t>(i) * n + j] = acc;
    }
    __syncwarp();
  }
}

/** One thread per repacked 16-element word: t2 rows in the file layout → the device layout (bb_math.h). */
__global__ void repack_t2_kernel(const uint8_t* raw, int n, int k, uint32_t* out) {
  const int words = (k + 15) / 16;
  const long long idx = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= static_cast<long long>(n) * words) return;
  const int r = static_cast<int>(idx / words), g = static_cast<int>(idx % words);
  const uint8_t* row = raw + static_cast<size_t>(r) * t2_row_bytes(k);
  uint32_t w = 0;
  for (int e = 0; e < 16; ++e) w |= static_cast<uint32_t>(t2_code(row, k, 16 * g + e)) << (8 * (e % 4) + 2 * (e / 4));
  out[idx] = w;
}

__global__ void repack_q8_kernel(const uint8_t* raw, long long blocks_total, int8_t* q, float* d) {
  const long long b = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= blocks_total) return;
  const uint8_t* blk = raw + b * kQ8Bytes;
  d[b] = half_to_float(static_cast<uint16_t>(blk[0] | (blk[1] << 8)));
  for (int c = 0; c < kQ8Block; ++c) q[b * kQ8Block + c] = static_cast<int8_t>(blk[2 + c]);
}

__device__ float dense_value(int dtype, const uint8_t* row, int c) {
  switch (dtype) {
    case kF32:
      return reinterpret_cast<const float*>(row)[c];
    case kF16:
      return half_to_float(static_cast<uint16_t>(row[2 * c] | (row[2 * c + 1] << 8)));
    case kBF16:
      return bf16_to_float(static_cast<uint16_t>(row[2 * c] | (row[2 * c + 1] << 8)));
    default: {
      const uint8_t* blk = row + (c / kQ8Block) * kQ8Bytes;
      const float d = half_to_float(static_cast<uint16_t>(blk[0] | (blk[1] << 8)));
      return __fmul_rn(static_cast<float>(static_cast<int8_t>(blk[2 + c % kQ8Block])), d);
    }
  }
}

__device__ size_t dense_row_bytes(int dtype, int cols) {
  switch (dtype) {
    case kF32:
      return static_cast<size_t>(cols) * 4;
    case kF16:
    case kBF16:
      return static_cast<size_t>(cols) * 2;
    default:
      return static_cast<size_t>(cols / kQ8Block) * kQ8Bytes;
  }
}

__global__ void embedding_kernel(const int32_t* ids, int dtype, const uint8_t* table, int vocab, int embed, float* out,
                                 DeviceStatus* st) {
  const int s = blockIdx.x;
  const int id = ids[s];
  const bool ok = id >= 0 && id < vocab;
  if (!ok && threadIdx.x == 0) atomicMin(&st->bad_id, static_cast<unsigned long long>(s));
  const uint8_t* row = table + (ok ? static_cast<size_t>(id) * dense_row_bytes(dtype, embed) : 0);
  for (int c = threadIdx.x; c < embed; c += blockDim.x) {
    out[static_cast<size_t>(s) * embed + c] = ok ? dense_value(dtype, row, c) : 0.0f;
  }
}

/** Warp per output row, MT activation rows; per-lane f32 fma partials, then a warp sum. */
template <int MT>
__global__ void dense_kernel(const float* x, int dtype, const uint8_t* w, int m, int k, int n, float* out) {
  const int warps = blockDim.x / kWarp;
  const int j = blockIdx.x * warps + threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  const int i0 = blockIdx.y * MT;
  if (j >= n) return;
  const uint8_t* row = w + static_cast<size_t>(j) * dense_row_bytes(dtype, k);
  float acc[MT];
#pragma unroll
  for (int r = 0; r < MT; ++r) acc[r] = 0.0f;
  for (int c = lane; c < k; c += kWarp) {
    const float wv = dense_value(dtype, row, c);
#pragma unroll
    for (int r = 0; r < MT; ++r) {
      if (i0 + r < m) acc[r] = fmaf(x[static_cast<size_t>(i0 + r) * k + c], wv, acc[r]);
    }
  }
#pragma unroll
  for (int r = 0; r < MT; ++r) {
    float v = acc[r];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (lane == 0 && i0 + r < m) out[static_cast<size_t>(i0 + r) * n + j] = v;
  }
}

/** The F16 head's fast path (k % 8 == 0): one 16-byte load of 8 halves per lane, exact conversions, f32 fma. */
template <int MT>
__global__ void dense_f16_kernel(const float* x, const uint8_t* w, int m, int k, int n, float* out) {
  const int warps = blockDim.x / kWarp;
  const int j = blockIdx.x * warps + threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  const int i0 = blockIdx.y * MT;
  if (j >= n) return;
  const uint4* row = reinterpret_cast<const uint4*>(w + static_cast<size_t>(j) * k * 2);
  float acc[MT];
#pragma unroll
  for (int r = 0; r < MT; ++r) acc[r] = 0.0f;
  for (int v = lane; v < k / 8; v += kWarp) {
    const uint4 raw = __ldg(row + v);
    const uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
    float wv[8];
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      wv[2 * e] = __half2float(__ushort_as_half(static_cast<unsigned short>(words[e] & 0xffffu)));
      wv[2 * e + 1] = __half2float(__ushort_as_half(static_cast<unsigned short>(words[e] >> 16)));
    }
#pragma unroll
    for (int r = 0; r < MT; ++r) {
      if (i0 + r < m) {
        const float4* xr = reinterpret_cast<const float4*>(x + static_cast<size_t>(i0 + r) * k + 8 * v);
        const float4 a = xr[0], b = xr[1];
        acc[r] = fmaf(a.x, wv[0], acc[r]);
        acc[r] = fmaf(a.y, wv[1], acc[r]);
        acc[r] = fmaf(a.z, wv[2], acc[r]);
        acc[r] = fmaf(a.w, wv[3], acc[r]);
        acc[r] = fmaf(b.x, wv[4], acc[r]);
        acc[r] = fmaf(b.y, wv[5], acc[r]);
        acc[r] = fmaf(b.z, wv[6], acc[r]);
        acc[r] = fmaf(b.w, wv[7], acc[r]);
      }
    }
  }
#pragma unroll
  for (int r = 0; r < MT; ++r) {
    float v = acc[r];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (lane == 0 && i0 + r < m) out[static_cast<size_t>(i0 + r) * n + j] = v;
  }
}

__device__ __forceinline__ unsigned long long mix64(unsigned long long z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

__global__ void random_t2_kernel(uint8_t* w, size_t bytes, unsigned long long seed) {
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < bytes;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    unsigned long long r = mix64(seed ^ (i * 0x2545f4914f6cdd1dull));
    uint8_t b = 0;
    for (int e = 0; e < 4; ++e, r >>= 8) b |= static_cast<uint8_t>((r & 0xffu) % 3u) << (2 * e);
    w[i] = b;
  }
}

__global__ void random_f16_kernel(uint16_t* w, size_t n, float amp, unsigned long long seed) {
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const float u = static_cast<float>(mix64(seed ^ (i * 0x2545f4914f6cdd1dull)) >> 40) / 16777216.0f;
    w[i] = __half_as_ushort(__float2half_rn((2.0f * u - 1.0f) * amp));
  }
}

__global__ void random_f32_kernel(float* w, size_t n, float center, float amp, unsigned long long seed) {
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const float u = static_cast<float>(mix64(seed ^ (i * 0x2545f4914f6cdd1dull)) >> 40) / 16777216.0f;
    w[i] = center + (2.0f * u - 1.0f) * amp;
  }
}

}  // namespace

cudaError_t launch_quantize(const float* x, int m, int k, int8_t* q, int q_stride, float* scales, DeviceStatus* st,
                            cudaStream_t s) {
  quantize_kernel<<<m, 256, 0, s>>>(x, k, q, q_stride, scales, st);
  return cudaGetLastError();
}

cudaError_t launch_norm_quantize(const float* x, const float* w, int m, int k, double eps, float* normed, int8_t* q,
                                 int q_stride, float* scales, DeviceStatus* st, cudaStream_t s) {
  norm_quantize_kernel<<<m, 256, 0, s>>>(x, w, k, eps, normed, q, q_stride, scales, st);
  return cudaGetLastError();
}

cudaError_t launch_ternary(const int8_t* x, int x_stride, const float* xs, const uint8_t* w, float gamma, int m, int k,
                           int n, float* out, cudaStream_t s) {
  return ternary_launch<true>(x, x_stride, xs, w, gamma, m, k, n, out, nullptr, s);
}

cudaError_t launch_ternary_acc(const int8_t* x, int x_stride, const uint8_t* w, int m, int k, int n, int32_t* acc,
                               cudaStream_t s) {
  return ternary_launch<false>(x, x_stride, nullptr, w, 0.0f, m, k, n, nullptr, acc, s);
}

cudaError_t launch_q8_head(const float* x, const float* w_d, const int8_t* w_q, int m, int k, int n, int8_t* xq,
                           float* xinv, float* out, DeviceStatus* st, cudaStream_t s) {
  const long long blocks = static_cast<long long>(m) * (k / kQ8Block);
  q8_quantize_kernel<<<static_cast<unsigned>((blocks + 7) / 8), 256, 0, s>>>(x, blocks, xq, xinv, st);
  constexpr int kWarpsPerBlock = 4;
  const size_t shared = static_cast<size_t>(kWarpsPerBlock) * (k / kQ8Block) * sizeof(float);
  q8_head_kernel<<<(n + kWarpsPerBlock - 1) / kWarpsPerBlock, kWarp * kWarpsPerBlock, shared, s>>>(w_d, w_q, xq, xinv, m,
                                                                                                   k, n, out);
  return cudaGetLastError();
}

cudaError_t launch_repack_q8(const uint8_t* raw, int n, int k, float* d, int8_t* q, cudaStream_t s) {
  const long long blocks = static_cast<long long>(n) * (k / kQ8Block);
  repack_q8_kernel<<<static_cast<unsigned>((blocks + 255) / 256), 256, 0, s>>>(raw, blocks, q, d);
  return cudaGetLastError();
}

cudaError_t launch_repack_t2(const uint8_t* raw, int n, int k, uint8_t* out, cudaStream_t s) {
  const long long words = static_cast<long long>(n) * ((k + 15) / 16);
  repack_t2_kernel<<<static_cast<unsigned>((words + 255) / 256), 256, 0, s>>>(raw, n, k, reinterpret_cast<uint32_t*>(out));
  return cudaGetLastError();
}

cudaError_t launch_embedding(const int32_t* ids, int seq, int dtype, const uint8_t* table, int vocab, int embed,
                             float* out, DeviceStatus* st, cudaStream_t s) {
  embedding_kernel<<<seq, 256, 0, s>>>(ids, dtype, table, vocab, embed, out, st);
  return cudaGetLastError();
}

cudaError_t launch_dense(const float* x, int dtype, const uint8_t* w, int m, int k, int n, float* out, cudaStream_t s) {
  constexpr int kWarpsPerBlock = 4;
  const dim3 block(kWarp * kWarpsPerBlock);
  // The vector path needs 16-byte aligned weight rows and activation rows (cudaMalloc bases, k % 8 == 0).
  if (dtype == kF16 && k % 8 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0 && reinterpret_cast<uintptr_t>(w) % 16 == 0) {
    if (m <= 1) {
      dense_f16_kernel<1><<<dim3((n + 3) / 4, m), block, 0, s>>>(x, w, m, k, n, out);
    } else {
      dense_f16_kernel<8><<<dim3((n + 3) / 4, (m + 7) / 8), block, 0, s>>>(x, w, m, k, n, out);
    }
    return cudaGetLastError();
  }
  if (m <= 1) {
    dense_kernel<1><<<dim3((n + 3) / 4, m), block, 0, s>>>(x, dtype, w, m, k, n, out);
  } else {
    dense_kernel<8><<<dim3((n + 3) / 4, (m + 7) / 8), block, 0, s>>>(x, dtype, w, m, k, n, out);
  }
  return cudaGetLastError();
}

cudaError_t launch_random_t2(uint8_t* w, size_t bytes, unsigned long long seed, cudaStream_t s) {
  random_t2_kernel<<<1024, 256, 0, s>>>(w, bytes, seed);
  return cudaGetLastError();
}
cudaError_t launch_random_f16(uint16_t* w, size_t n, float amp, unsigned long long seed, cudaStream_t s) {
  random_f16_kernel<<<1024, 256, 0, s>>>(w, n, amp, seed);
  return cudaGetLastError();
}
cudaError_t launch_random_f32(float* w, size_t n, float center, float amp, unsigned long long seed, cudaStream_t s) {
  random_f32_kernel<<<1024, 256, 0, s>>>(w, n, center, amp, seed);
  return cudaGetLastError();
}

}  // namespace bbcuda
