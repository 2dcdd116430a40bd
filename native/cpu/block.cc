// The fused BitNet transformer block: one N-API call runs what src/model/bitnet/forward.ts `block`
// runs as ~25 tensor ops, in the same order and with the same kernels (so the result is the same
// bits as the op-by-op path on this backend), with every intermediate in one reused arena instead of
// a fresh buffer per op. Per block, with h the residual stream [seq, embed]:
//
//   x = RMSNorm(h)·attn_norm;  xq = quant(x);  q, k, v = BitLinear(xq)   (one job over all rows)
//   q, k = RoPE(q, k) (NeoX);  k → cache rows, v written straight into its cache rows (an f16 / q8_0 cache:
//   both rounded into them, kv_cache.h)
//   a = attention(q, cache);   o = BitLinear_o(quant(RMSNorm(a)·attn_sub_norm));  h1 = h + o
//   y = RMSNorm(h1)·ffn_norm;  g, u = BitLinear(quant(y))                 (one job)
//   d = BitLinear_down(quant(RMSNorm(act(g) ⊙ u)·ffn_sub_norm));  out = h1 + d
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "elementwise.h"
#include "executor.h"
#include "kv_cache.h"

namespace barbell {

// The block runs these element-wise ops itself: a build without their cases does not compile.
static_assert(elementwise::implements(ops::Unary::kSilu) && elementwise::implements(ops::Binary::kMul) &&
                  elementwise::implements(ops::Binary::kAdd),
              "the fused block needs silu, mul and add in elementwise.h");

int Executor::bitnet_block(const BlockArgs& a) {
  const size_t S = static_cast<size_t>(a.seq);
  const int E = a.embed;
  const int Q = a.heads * a.head_dim;
  const int KV = a.kv_heads * a.head_dim;
  const int F = a.ffn;
  const size_t wide = static_cast<size_t>(std::max({E, Q, F}));
  // Arena layout (floats): x [S·wide] | q [S·Q] | qr [S·Q] | k [S·KV] | att [S·Q] | h1 [S·E]
  //                        | g [S·F] | u [S·F] | o [S·E] | kr, v [S·KV each, batch mode] | scales [S]; each region
  //                        rounded up to whole cache lines (aligned.h); int8: xq [S·wide].
  const size_t sizes[12] = {S * wide, S * Q, S * Q, S * KV, S * Q, S * E, S * F, S * F, S * E, S * KV, S * KV, S};
  constexpr size_t kLine = kCacheLine / sizeof(float);
  size_t at[12];
  size_t need = 0;
  for (int r = 0; r < 12; ++r) {
    at[r] = need;
    need += (sizes[r] + kLine - 1) / kLine * kLine;
  }
  if (arena_f32_.size() < need) {
    arena_f32_.resize(need);
  }
  if (arena_i8_.size() < S * wide) {
    arena_i8_.resize(S * wide);
  }
  float* const base = arena_f32_.data();
  float* x = base + at[0];
  float* q = base + at[1];
  float* qr = base + at[2];
  float* k = base + at[3];
  float* att = base + at[4];
  float* h1 = base + at[5];
  float* g = base + at[6];
  float* u = base + at[7];
  float* o = base + at[8];
  float* kr = base + at[9];
  float* vb = base + at[10];
  float* scales = base + at[11];
  int8_t* xq = arena_i8_.data();
  const bool batch = a.batch > 0;
  // One sequence with an f32 cache: K (after RoPE) and V go straight into the cache rows. A batch, or an
  // f16 / q8_0 cache: into the arena, then each row rounded into its cache row (kv_store_rows).
  const bool direct = !batch && a.kv_type == kKvF32;
  const size_t row_bytes = kv_bytes(a.kv_type, static_cast<size_t>(KV));
  float* k_rows = direct ? a.k_cache + static_cast<size_t>(a.pos0) * KV : kr;
  float* v_rows = direct ? a.v_cache + static_cast<size_t>(a.pos0) * KV : vb;
  const int seq = a.seq;

  // Quantizes x [seq, cols] and repacks it for the ternary kernel; false if x is not finite.
  auto quant = [&](const float* in, int cols) {
    if (quantize(in, seq, cols, xq, scales) >= 0) {
      return false;
    }
    prepare_ternary(xq, seq, cols);
    return true;
  };

  // Attention branch.
  rms_norm(a.h, a.norm[0], seq, E, a.eps, x);
  if (!quant(x, E)) {
    return 0;
  }
  {
    const TernaryTarget t[3] = {{a.w[0], a.gamma[0], Q, q}, {a.w[1], a.gamma[1], KV, k}, {a.w[2], a.gamma[2], KV, v_rows}};
    ternary_prepared(scales, seq, E, t, 3);
  }
  rope(q, seq, a.heads, a.head_dim, a.pos, a.theta, true, qr);
  rope(k, seq, a.kv_heads, a.head_dim, a.pos, a.theta, true, k_rows);
  if (batch) {
    for (int b = 0; b < seq; ++b) {
      const size_t at = static_cast<size_t>(a.pos[b]) * row_bytes;
      kv_store_rows(a.kv_type, kr + static_cast<size_t>(b) * KV, 1, KV, reinterpret_cast<uint8_t*>(a.k_caches[b]) + at);
      kv_store_rows(a.kv_type, vb + static_cast<size_t>(b) * KV, 1, KV, reinterpret_cast<uint8_t*>(a.v_caches[b]) + at);
    }
    attention_rows(a, qr, att);
  } else {
    if (!direct) {
      const size_t at = static_cast<size_t>(a.pos0) * row_bytes;
      kv_store_rows(a.kv_type, kr, S, KV, reinterpret_cast<uint8_t*>(a.k_cache) + at);
      kv_store_rows(a.kv_type, vb, S, KV, reinterpret_cast<uint8_t*>(a.v_cache) + at);
    }
    AttentionArgs att_args{qr, a.k_cache, a.v_cache, seq, a.pos0 + seq, a.heads, a.kv_heads, a.head_dim, a.pos0,
                           a.attn_scale, att};
    att_args.kv_type = a.kv_type;
    attention(att_args);
  }
  rms_norm(att, a.norm[1], seq, Q, a.eps, x);
  if (!quant(x, Q)) {
    return 1;
  }
  {
    const TernaryTarget t[1] = {{a.w[3], a.gamma[3], E, o}};
    ternary_prepared(scales, seq, Q, t, 1);
  }
  binary_flat(ops::Binary::kAdd, a.h, o, S * E, h1);

  // Feed-forward branch.
  rms_norm(h1, a.norm[2], seq, E, a.eps, x);
  if (!quant(x, E)) {
    return 2;
  }
  {
    const TernaryTarget t[2] = {{a.w[4], a.gamma[4], F, g}, {a.w[5], a.gamma[5], F, u}};
    ternary_prepared(scales, seq, E, t, 2);
  }
  if (a.relu2) {
    // ReLU²(g) ⊙ u in f32: max(g, 0)² is exact in double and rounds once either way, so an f32 product
    // gives the bits of the composed relu2 + mul kernels (two roundings, the same two).
    parallel_range(S * F, 1 << 15, [&](size_t b, size_t e) {
      for (size_t t = b; t < e; ++t) {
        // r = max(x, 0) with NaN propagating, as in the reference ((x > 0 || x != x) ? x : +0), as a bit
        // mask: the non-NaN negatives (-0 included) are the bit patterns 0x80000000..0xff800000. No branch
        // on the sign of g (it mispredicted about every other element), so the loop vectorizes.
        uint32_t bits = 0;
        std::memcpy(&bits, &g[t], sizeof bits);
        const uint32_t keep = (bits - 0x80000000u) > 0x7f800000u ? ~0u : 0u;
        bits &= keep;
        float r = 0.0f;
        std::memcpy(&r, &bits, sizeof r);
        const float sq = r * r;
        g[t] = sq * u[t];
      }
    });
  } else {
    unary(ops::Unary::kSilu, g, S * F, g);
    binary_flat(ops::Binary::kMul, g, u, S * F, g);
  }
  rms_norm(g, a.norm[3], seq, F, a.eps, x);
  if (!quant(x, F)) {
    return 3;
  }
  {
    const TernaryTarget t[1] = {{a.w[6], a.gamma[6], E, o}};
    ternary_prepared(scales, seq, F, t, 1);
  }
  binary_flat(ops::Binary::kAdd, h1, o, S * E, a.out);
  return -1;
}

}  // namespace barbell
