// Single-thread GMAC/s of one ISA unit's ternary kernel (the prefill GEMM and the decode GEMV of every
// ternary projection), with the activation planes at a chosen offset from a cache line:
//   bench/ternary-kernel/run.sh [avx2|vnni] [m n k iters offset]
// The unit is #included (KERNELS_UNIT), so its anonymous-namespace `ternary` is called directly; the output
// is checked against the same kernel on cache-line-aligned planes (the offset must not change any bit).
#include KERNELS_UNIT

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

int main(int argc, char** argv) {
  using namespace barbell;
  const int m = argc > 1 ? atoi(argv[1]) : 512, n = argc > 2 ? atoi(argv[2]) : 6912, k = argc > 3 ? atoi(argv[3]) : 2560;
  const int iters = argc > 4 ? atoi(argv[4]) : 5, off = argc > 5 ? atoi(argv[5]) : 16;
  std::mt19937 g(1);
  const size_t rb = (static_cast<size_t>(k) + 3) / 4, stride = (static_cast<size_t>(k) + 255) / 256 * 256;
  std::vector<uint8_t> w(rb * n + 4096);
  for (auto& b : w) {
    b = static_cast<uint8_t>(g() % 3 | (g() % 3) << 2 | (g() % 3) << 4 | (g() % 3) << 6);
  }
  std::vector<int8_t> store(stride * m + 256);
  int8_t* aligned = reinterpret_cast<int8_t*>((reinterpret_cast<uintptr_t>(store.data()) + 63) / 64 * 64);
  for (size_t i = 0; i < stride * m; ++i) {
    aligned[i] = static_cast<int8_t>(static_cast<int>(g() % 255) - 127);
  }
  std::vector<int8_t> store2(stride * m + 256);
  int8_t* shifted = reinterpret_cast<int8_t*>((reinterpret_cast<uintptr_t>(store2.data()) + 63) / 64 * 64) + off;
  std::copy(aligned, aligned + stride * m, shifted);
  std::vector<int32_t> xsum(m, 0);
  std::vector<float> xs(m, 1.f), o1(static_cast<size_t>(m) * n), o2(o1.size());
  TernaryArgs a{aligned, stride, xsum.data(), xs.data(), 1.f, w.data(), rb, k, m, n, o1.data()};
  TernaryArgs b = a;
  b.xp = shifted;
  b.out = o2.data();
  double ta = 1e30, tb = 1e30;
  for (int it = 0; it < iters; ++it) {
    const auto t0 = std::chrono::steady_clock::now();
    ternary(a, 0, n);
    const auto t1 = std::chrono::steady_clock::now();
    ternary(b, 0, n);
    const auto t2 = std::chrono::steady_clock::now();
    ta = std::min(ta, std::chrono::duration<double>(t1 - t0).count());
    tb = std::min(tb, std::chrono::duration<double>(t2 - t1).count());
  }
  if (o1 != o2) {
    printf("MISMATCH\n");
    return 1;
  }
  const double mac = static_cast<double>(m) * n * k * 1e-9;
  printf("m=%d n=%d k=%d: planes on a cache line %.1f GMAC/s, at +%d bytes %.1f GMAC/s (%.2fx)\n", m, n, k, mac / ta, off,
         mac / tb, ta / tb);
  return 0;
}
