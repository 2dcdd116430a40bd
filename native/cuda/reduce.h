// Warp and block reductions shared by the CUDA kernels (one copy for kernels_int.cu and kernels_float.cu).
// Block reductions need blockDim.x a multiple of 32 (at most 1024) and `red` a __shared__ array of 32 values;
// every thread of the block gets the result.
#pragma once

#include <cuda_runtime.h>

namespace bbcuda {
namespace reduce {

constexpr int kWarp = 32;

struct Sum {
  template <typename T>
  __device__ __forceinline__ T operator()(T a, T b) const { return a + b; }
};
struct Max {
  __device__ __forceinline__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

/** `op` over the 32 lanes of a warp (butterfly, so every lane ends with the result). */
template <typename T, typename Op>
__device__ __forceinline__ T warp(T v, Op op) {
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

/** `op` over the whole block; `empty` fills the lanes past the last warp (0 for sums and for maxima of |x|). */
template <typename T, typename Op>
__device__ T block(T v, T* red, Op op, T empty) {
  v = warp(v, op);
  const int lane = threadIdx.x % kWarp, w = threadIdx.x / kWarp;
  if (lane == 0) red[w] = v;
  __syncthreads();
  if (w == 0) {
    v = lane < static_cast<int>(blockDim.x / kWarp) ? red[lane] : empty;
    v = warp(v, op);
    if (lane == 0) red[0] = v;
  }
  __syncthreads();
  v = red[0];
  __syncthreads();
  return v;
}

}  // namespace reduce
}  // namespace bbcuda
