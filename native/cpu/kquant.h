// Block-quantized weights on the native CPU backend: the k-quant output heads (matmulDense) and the token
// embedding over Q8_0, Q6_K, Q4_K and Q5_K rows. Numerics are the JS reference's (src/backends/js/kernels/dense.ts):
// a row is dequantized exactly as ggml's dequantize_row_* (Q6_K: d · scale · (q − 32); Q4_K, Q5_K:
// (d · sc) · q − dmin · m; both one f32 rounding at most, so bit for bit the reference's values), the embedding
// is that row, and the head multiplies it with x in f32 partial sums added in double per block (within the
// reference's float64 tolerance, like the Q8_0 rows of matmulDense).
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace barbell {

class Executor;

// Elements per k-quant super-block; bytes per block of each format.
constexpr int kKBlock = 256;
constexpr int kQ6KBlock = kKBlock;
constexpr int kQ6KBytes = 210;  // ql[128], qh[64], scales[16] int8, f16 d
constexpr int kQ4KBytes = 144;  // f16 d, f16 dmin, scales[12] (6-bit scale and min per 32), qs[128]
constexpr int kQ5KBytes = 176;  // f16 d, f16 dmin, scales[12], qh[32] (fifth bits), qs[128]

// The format codes denseBlocks and embeddingBlocks take (src/backends/native-cpu/index.ts BLOCK_FORMATS).
enum class BlockCode : int { kQ8_0 = 0, kQ6K = 1, kQ4K = 2, kQ5K = 3 };
constexpr int kBlockFormatCount = 4;

struct BlockFormat {
  const char* name;
  int elems;
  int bytes;
  void (*decode)(const uint8_t* block, float* out);
};

// The format of a code in [0, kBlockFormatCount).
const BlockFormat& block_format(int code);

// Dequantize one block into out[256].
void q6k_dequantize_block(const uint8_t* block, float* out);
void q4k_dequantize_block(const uint8_t* block, float* out);
void q5k_dequantize_block(const uint8_t* block, float* out);

// Sub-block j's 6-bit scale and min from a Q4_K / Q5_K block's 12 packed bytes (ggml's get_scale_min_k4).
inline void k4_scale_min(const uint8_t* scales, int j, int* sc, int* m) {
  if (j < 4) {
    *sc = scales[j] & 63;
    *m = scales[j + 4] & 63;
  } else {
    *sc = (scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4);
    *m = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
  }
}

// All eight 6-bit scales (bytes 0..7) and mins (bytes 8..15) of a Q4_K / Q5_K block's 12 packed bytes at once,
// with 32-bit word operations (the same values as k4_scale_min for j = 0..7).
inline void k4_scales_mins(const uint8_t* scales, uint8_t out[16]) {
  uint32_t w[3];
  std::memcpy(w, scales, 12);
  const uint32_t r[4] = {w[0] & 0x3F3F3F3Fu, (w[2] & 0x0F0F0F0Fu) | (((w[0] >> 6) & 0x03030303u) << 4), w[1] & 0x3F3F3F3Fu,
                         ((w[2] >> 4) & 0x0F0F0F0Fu) | (((w[1] >> 6) & 0x03030303u) << 4)};
  std::memcpy(out, r, 16);
}

// Rows [j0, j1) of out[m, n] = x[m, k] · decode(w)[n, k]ᵀ, w in rows of format `code` (k a multiple of its block).
void dense_blocks(int code, const float* x, const uint8_t* w, int k, int m, int n, float* out, int j0, int j1);

#if defined(__x86_64__) || defined(_M_X64)
// The same for the k-quants (Q6_K, Q4_K, Q5_K) with AVX2 + FMA + F16C (kquant_avx2.cc): blocks decoded in
// registers, the same bits; call only when the CPU has them.
void dense_kquant_avx2(int code, const float* x, const uint8_t* w, int k, int m, int n, float* out, int j0, int j1);
#endif

// The integer k-quant head (matmulQ8I8 over Q4_K / Q5_K / Q6_K weights; the reference and its exact formula:
// src/backends/js/kernels/kquant-head.ts). x is quantized per 256-element block like one BitNet activation row
// (q int8, inv = 1 / s) with Σ q per 16-element sub-block; a weight block unpacks to codes u (unsigned, element
// order), per-16 scales sc and offset multipliers mn (Q6_K: mn = 32 · sc), and with the exact int32 sums
// A = Σ_j sc_j · Σ_{e∈j} u_e q_e and B = Σ_j mn_j · bsum_j each block adds k_block_term(...) to its output in
// block order, every operation one f32 rounding.
constexpr int kKSub = 16;
struct KI8Args {
  int code;              // BlockCode: kQ6K, kQ4K or kQ5K
  const int8_t* xq;      // [m, k] quantized activations
  const float* xinv;     // [m, k / 256] 1 / s per block
  const int16_t* xbsum;  // [m, k / 16] Σ q per 16 elements (|Σ| ≤ 2048)
  const uint8_t* w;      // n rows of k / 256 blocks
  int k, m, n;
  float* out;            // [m, n]
};

// The f32 contribution of one weight block to one output from its integer sums (the reference's kBlockTerm).
inline float k_block_term(int code, float inv, float d, float dmin, int32_t a, int32_t b) {
  if (code == static_cast<int>(BlockCode::kQ6K)) {
    return (inv * d) * static_cast<float>(a - b);
  }
  const float hi = (inv * d) * static_cast<float>(a);
  const float lo = (inv * dmin) * static_cast<float>(b);
  return hi - lo;
}

// Unpacks one block of Q6_K / Q4_K / Q5_K into codes u[256], sc[16], mn[16]; returns d, dmin (0 for Q6_K).
void k_unpack_block(int code, const uint8_t* block, uint8_t* u, int16_t* sc, int16_t* mn, float* d, float* dmin);

// Weight rows [j0, j1) of the integer k-quant head: scalar (any CPU), AVX2 (kquant_avx2.cc), AVX-512 VNNI
// (kquant_avx512vnni.cc). The same bits in all three.
void kquant_i8_scalar(const KI8Args& a, int j0, int j1);
#if defined(__x86_64__) || defined(_M_X64)
void kquant_i8_avx2(const KI8Args& a, int j0, int j1);
void kquant_i8_avx512vnni(const KI8Args& a, int j0, int j1);
#endif

// denseBlocks(format: BlockCode, x: Float32Array, w: Uint8Array (rows of that format), m, k, n, out: Float32Array
// [, integer: boolean]). With `integer` (k-quant formats only) the integer head above, returning −1 or the first
// non-finite index of x (nothing written); otherwise the float head, returning undefined.
Napi::Value dense_blocks_napi(const Napi::CallbackInfo& info, Executor& exec);

// embeddingBlocks(format: BlockCode, ids: Int32Array, seq, table: Uint8Array (rows of that format), vocab, embed,
// out: Float32Array) → −1, or the position of the first id outside [0, vocab) (rows before it are written).
// embed must be a multiple of the format's block (32, 256). Rows decode exactly as the reference.
Napi::Value embedding_blocks_napi(const Napi::CallbackInfo& info);

}  // namespace barbell
