// In-process A/B of two versions of native/cpu/attention_decode.inc (the split-K decode attention): both compiled
// into this one binary (namespaces A = OLD_INC, B = NEW_INC), their attention_chunk calls alternated call by call
// over the same caches, so a noisy host slows both alike; every call's partials must be the same bits, or it stops.
// Built and run by run.sh (not part of the build or the tests).
//   args: layers T kv_heads head_dim group kv_type(0 f32, 1 f16, 2 q8_0) iterations
// layers > 1 gives each layer its own cache, cycled call by call, so the cache comes from memory as in a model.
#include <immintrin.h>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <random>
#include <vector>
#include "kernels.h"
#include "generic.h"
#include "float_kernels.h"
#include "kv_cache.h"
#include "executor.h"
namespace A { using namespace ::barbell;
#include "simd_float.inc"
#include OLD_INC
}
namespace B { using namespace ::barbell;
#include "simd_float.inc"
#include NEW_INC
}
#if defined(__AVX512F__)
#define VV V512
#else
#define VV V256
#endif
using namespace std::chrono;
int main(int argc, char** argv) {
  const int layers = argc > 1 ? atoi(argv[1]) : 30, T = argc > 2 ? atoi(argv[2]) : 4096, kvh = argc > 3 ? atoi(argv[3]) : 5, D = argc > 4 ? atoi(argv[4]) : 128, group = argc > 5 ? atoi(argv[5]) : 4;
  const int kvtype = argc > 6 ? atoi(argv[6]) : 2;
  const int iters = argc > 7 ? atoi(argv[7]) : 300;
  const size_t kv_row = size_t(kvh) * D, row_bytes = barbell::kv_bytes(kvtype, kv_row);
  std::mt19937 rng(1);
  std::vector<std::vector<uint8_t>> K(layers), Vc(layers);
  for (int l = 0; l < layers; ++l) {
    K[l].resize(T * row_bytes); Vc[l].resize(T * row_bytes);
    for (auto* c : {&K[l], &Vc[l]}) {
      if (kvtype == 2) {
        for (size_t i = 0; i < c->size(); ++i) (*c)[i] = rng() & 0xff;
        for (size_t b = 0; b < c->size(); b += 34) { uint16_t h = _cvtss_sh(0.001f + (rng() % 1000) * 1e-5f, 0); memcpy(&(*c)[b], &h, 2); }
      } else if (kvtype == 1) {
        for (size_t i = 0; i < c->size(); i += 2) { uint16_t h = _cvtss_sh(((int)(rng() % 2001) - 1000) * 1e-3f, 0); memcpy(&(*c)[i], &h, 2); }
      } else {
        for (size_t i = 0; i < c->size(); i += 4) { float f = ((int)(rng() % 2001) - 1000) * 1e-3f; memcpy(&(*c)[i], &f, 4); }
      }
    }
  }
  const int nh = kvh * group;
  std::vector<uint8_t> q(barbell::kv_bytes(2, size_t(nh) * D) + size_t(nh) * D * 4);
  for (size_t i = 0; i < q.size(); ++i) q[i] = rng() & 0x7f;
  if (kvtype == 2) for (size_t b = 0; b < size_t(nh) * D / 32; ++b) { uint16_t h = _cvtss_sh(0.01f, 0); memcpy(&q[b * 34], &h, 2); }
  else { float* f = reinterpret_cast<float*>(q.data()); for (size_t i = 0; i < size_t(nh) * D; ++i) f[i] = ((int)(rng() % 2001) - 1000) * 1e-3f; }
  const int C = barbell::kDecodeChunk, chunks = (T + C - 1) / C;
  std::vector<float> pa(size_t(chunks) * nh * (D + 2)), pb(pa.size()), scratch(size_t(nh) * (C + 8) + 64);
  double ta[2] = {0, 0};
  std::vector<double> sa, sb;
  for (int it = 0; it < iters; ++it) {
    const int l = it % layers;
    for (int v = 0; v < 2; ++v) {
      const int which = (it + v) % 2;
      auto t0 = steady_clock::now();
      for (int c = 0; c < chunks; ++c) {
        float* part = (which == 0 ? pa : pb).data() + size_t(c) * nh * (D + 2);
        if (which == 0) A::barbell::attention_chunk_any<A::barbell::VV>(kvtype, q.data(), K[l].data(), Vc[l].data(), kv_row, c * C, std::min(T, c * C + C), 0, kvh, group, D, 0.088, part, scratch.data());
        else B::barbell::attention_chunk_any<B::barbell::VV>(kvtype, q.data(), K[l].data(), Vc[l].data(), kv_row, c * C, std::min(T, c * C + C), 0, kvh, group, D, 0.088, part, scratch.data());
      }
      double us = duration<double, std::micro>(steady_clock::now() - t0).count();
      (which == 0 ? sa : sb).push_back(us);
    }
    if (memcmp(pa.data(), pb.data(), pa.size() * 4) != 0 && it >= 1) { printf("MISMATCH at it %d\n", it); return 1; }
  }
  std::sort(sa.begin(), sa.end()); std::sort(sb.begin(), sb.end());
  printf("old median %.1f us (p10 %.1f)  new median %.1f us (p10 %.1f)  ratio %.3f  bits equal\n", sa[sa.size() / 2], sa[sa.size() / 10], sb[sb.size() / 2], sb[sb.size() / 10], sb[sb.size() / 2] / sa[sa.size() / 2]);
}
