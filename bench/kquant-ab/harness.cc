// In-process A/B of the integer k-quant head (KI8Args, kquant.h) at a git revision (OLD: the file compiled with its
// entry point renamed) against the working tree (NEW), both in this one binary: calls alternated over the same
// weights, every output compared bit for bit (a difference stops the run). One thread, one activation row (the
// decode GEMV). Built and run by run.sh (not part of the build or the tests).
//   args: format (1 Q6_K, 2 Q4_K, 3 Q5_K) n k iterations copies
// copies > 1 cycles through that many weight matrices, so they come from memory as a model's head does.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "kquant.h"

namespace barbell {
void KQ_OLD(const KI8Args& a, int j0, int j1);
void KQ_NEW(const KI8Args& a, int j0, int j1);
// Not reached (Q8_0 and the scalar fallback are not timed here); defined so the two units link without kquant.cc.
void kquant_i8_scalar(const KI8Args&, int, int) { std::abort(); }
void dense_blocks(int, const float*, const uint8_t*, int, int, int, float*, int, int) { std::abort(); }
}  // namespace barbell

int main(int argc, char** argv) {
  using namespace barbell;
  const int code = argc > 1 ? atoi(argv[1]) : 1, n = argc > 2 ? atoi(argv[2]) : 128256, k = argc > 3 ? atoi(argv[3]) : 2560;
  const int iters = argc > 4 ? atoi(argv[4]) : 9, copies = argc > 5 ? atoi(argv[5]) : 1;
  const int bytes = code == 1 ? kQ6KBytes : code == 2 ? kQ4KBytes : kQ5KBytes;
  const int blocks = k / kKBlock;
  std::mt19937 g(1);
  std::vector<std::vector<uint8_t>> w(copies, std::vector<uint8_t>(static_cast<size_t>(n) * blocks * bytes));
  for (auto& m : w) {
    for (auto& b : m) b = static_cast<uint8_t>(g());
    for (size_t blk = 0; blk < static_cast<size_t>(n) * blocks; ++blk) {  // finite, small f16 scales
      uint8_t* p = m.data() + blk * bytes;
      const uint16_t d = static_cast<uint16_t>(0x1000 + g() % 512), dmin = static_cast<uint16_t>(0x0C00 + g() % 512);
      if (code == 1) {
        std::memcpy(p + 208, &d, 2);
      } else {
        std::memcpy(p, &d, 2);
        std::memcpy(p + 2, &dmin, 2);
      }
    }
  }
  std::vector<int8_t> xq(k);
  std::vector<float> xinv(blocks);
  std::vector<int16_t> bs(k / kKSub);
  for (auto& q : xq) q = static_cast<int8_t>(static_cast<int>(g() % 255) - 127);
  for (auto& v : xinv) v = 0.01f + static_cast<float>(g() % 100) * 1e-4f;
  for (int s = 0; s < k / kKSub; ++s) {
    int t = 0;
    for (int e = 0; e < kKSub; ++e) t += xq[s * kKSub + e];
    bs[s] = static_cast<int16_t>(t);
  }
  std::vector<float> o1(n), o2(n);
  std::vector<double> ta, tb;
  const auto now = [] { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); };
  for (int it = 0; it < iters; ++it) {
    double t0 = now();
    for (int c = 0; c < copies; ++c) KQ_OLD(KI8Args{code, xq.data(), xinv.data(), bs.data(), w[c].data(), k, 1, n, o1.data()}, 0, n);
    double t1 = now();
    for (int c = 0; c < copies; ++c) KQ_NEW(KI8Args{code, xq.data(), xinv.data(), bs.data(), w[c].data(), k, 1, n, o2.data()}, 0, n);
    double t2 = now();
    ta.push_back((t1 - t0) / copies);
    tb.push_back((t2 - t1) / copies);
    if (std::memcmp(o1.data(), o2.data(), sizeof(float) * n) != 0) {
      std::printf("MISMATCH: the two versions' outputs differ\n");
      return 1;
    }
  }
  std::sort(ta.begin(), ta.end());
  std::sort(tb.begin(), tb.end());
  const double mb = static_cast<double>(n) * blocks * bytes;
  const double a = ta[iters / 2], b = tb[iters / 2];
  std::printf("format %d, %d x %d, copies %d: old %.3f ms (%.1f GB/s), new %.3f ms (%.1f GB/s), new/old %.3f\n", code, n, k,
              copies, a * 1e3, mb / a * 1e-9, b * 1e3, mb / b * 1e-9, b / a);
  return 0;
}
