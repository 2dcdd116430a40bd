// The probe's exports of barbell_native.node: features() (CPUID/XGETBV and core counts, cheap) and
// selfTest(isa?) (every integer kernel of a SIMD path against the scalar path on a small odd-sized
// problem; an illegal instruction kills the probe's child process, not the user's).
#include "probe.h"

#include <cstring>
#include <string>
#include <vector>

#include "cpu_features.h"
#include "executor.h"
#include "kernels.h"

namespace barbell {

Napi::Value Features(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const CpuFeatures& f = cpu_features();
  Napi::Object o = Napi::Object::New(env);
  o.Set("best", isa_name(f.best));
  Napi::Array flags = Napi::Array::New(env, f.flags.size());
  for (size_t t = 0; t < f.flags.size(); ++t) {
    flags.Set(static_cast<uint32_t>(t), f.flags[t]);
  }
  o.Set("flags", flags);
  o.Set("physicalCores", physical_cores());
  o.Set("logicalCores", logical_cores());
  return o;
}

// Runs every integer kernel of the chosen path on a small odd-sized problem and compares it with the
// scalar path: an illegal instruction here kills the probe's child process, not the user's.
Napi::Value SelfTest(const Napi::CallbackInfo& info) {
  const std::string name = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  Isa isa;
  if (!parse_isa(name, cpu_features().best, &isa)) {
    return Napi::Boolean::New(info.Env(), false);
  }
  const IsaKernels t = table_for(isa);
  const IsaKernels* s = scalar_kernels();
  const int m = 5, k = 301, n = 13;
  const size_t row_bytes = (k + 3) / 4;
  std::vector<int8_t> x(static_cast<size_t>(m) * k);
  std::vector<uint8_t> w(n * row_bytes);
  uint32_t seed = 12345;
  auto rnd = [&seed] {
    seed = seed * 1664525u + 1013904223u;
    return seed >> 8;
  };
  for (auto& v : x) {
    v = static_cast<int8_t>(static_cast<int>(rnd() % 255) - 127);
  }
  for (auto& v : w) {  // codes 0..2 (a ternary tensor never holds code 3; the padding codes past k are any)
    v = static_cast<uint8_t>(rnd() % 3 | rnd() % 3 << 2 | rnd() % 3 << 4 | rnd() % 3 << 6);
  }
  for (int r = 0; r < n; ++r) {
    w[r * row_bytes + row_bytes - 1] |= static_cast<uint8_t>(0xff << (2 * (k % 4)));  // k % 4 == 1: 3 codes of padding
  }
  std::vector<float> xs(m, 3.0f), o1(static_cast<size_t>(m) * n), o2(static_cast<size_t>(m) * n);
  std::vector<int32_t> xsum(m);
  auto run = [&](const IsaKernels& table, std::vector<float>& out) {
    const int block = table.ternary_block;
    const size_t per = block == 0 ? 1 : 4 * static_cast<size_t>(block);
    const size_t stride = (static_cast<size_t>(k) + per - 1) / per * per;
    std::vector<int8_t> xp(stride * m);
    repack_x_planes(x.data(), m, k, block, xp.data(), stride, xsum.data());
    TernaryArgs a{xp.data(), stride, xsum.data(), xs.data(), 0.5f, w.data(), row_bytes, k, m, n, out.data()};
    table.ternary(a, 0, n);
  };
  run(t, o1);
  run(*s, o2);
  bool ok = std::memcmp(o1.data(), o2.data(), o1.size() * sizeof(float)) == 0;
  // Binary × int8 and the dense f16 path on the same data.
  std::vector<uint32_t> wb((k + 31) / 32 * n);
  for (auto& v : wb) {
    v = rnd() ^ (rnd() << 16);
  }
  BinaryI8Args b1{x.data(), xsum.data(), xs.data(), 0.25f, wb.data(), static_cast<size_t>((k + 31) / 32), k, m, n, o1.data()};
  BinaryI8Args b2 = b1;
  b2.out = o2.data();
  t.binary_i8(b1, 0, n);
  s->binary_i8(b2, 0, n);
  ok = ok && std::memcmp(o1.data(), o2.data(), o1.size() * sizeof(float)) == 0;
  std::vector<float> xf(static_cast<size_t>(m) * k, 0.5f);
  std::vector<uint16_t> wh(static_cast<size_t>(n) * k, 0x3c00);  // 1.0
  DenseArgs d1{xf.data(), wh.data(), true, k, m, n, o1.data()};
  t.dense(d1, 0, n);
  for (float v : o1) {
    ok = ok && v == 150.5f;
  }
  return Napi::Boolean::New(info.Env(), ok);
}

}  // namespace barbell
