// CPUID / XGETBV feature detection and core counting.
#include "cpu_features.h"

#include <fstream>
#include <set>
#include <thread>
#include <utility>

#if defined(__linux__)
#include <sched.h>
#endif

#if defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
#include <immintrin.h>
#include <intrin.h>
#elif defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace barbell {
namespace {

#if defined(__x86_64__) || defined(_M_X64)
struct Regs {
  unsigned a = 0, b = 0, c = 0, d = 0;
};

Regs cpuid(unsigned leaf, unsigned sub) {
  Regs r;
#if defined(_MSC_VER)
  int v[4];
  __cpuidex(v, static_cast<int>(leaf), static_cast<int>(sub));
  r.a = v[0], r.b = v[1], r.c = v[2], r.d = v[3];
#else
  if (!__get_cpuid_count(leaf, sub, &r.a, &r.b, &r.c, &r.d)) {
    r = Regs{};
  }
#endif
  return r;
}

unsigned long long xgetbv0() {
#if defined(_MSC_VER)
  return _xgetbv(0);
#else
  unsigned eax = 0, edx = 0;
  // Raw encoding of XGETBV, so no -mxsave is needed; only executed when CPUID says OSXSAVE.
  __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<unsigned long long>(edx) << 32) | eax;
#endif
}
#endif

CpuFeatures detect() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(_M_X64)
  const unsigned max_leaf = cpuid(0, 0).a;
  const Regs l1 = cpuid(1, 0);
  const Regs l7 = max_leaf >= 7 ? cpuid(7, 0) : Regs{};
  const bool osxsave = (l1.c >> 27) & 1;
  const unsigned long long xcr0 = osxsave ? xgetbv0() : 0;
  const bool os_ymm = (xcr0 & 0x6) == 0x6;     // SSE + AVX state
  const bool os_zmm = (xcr0 & 0xe6) == 0xe6;   // + opmask, ZMM_Hi256, Hi16_ZMM
  auto add = [&f](bool has, const char* name) {
    if (has) {
      f.flags.emplace_back(name);
    }
  };
  const bool popcnt = (l1.c >> 23) & 1;
  const bool fma = (l1.c >> 12) & 1;
  const bool f16c = (l1.c >> 29) & 1;
  const bool avx = (l1.c >> 28) & 1;
  const bool avx2 = (l7.b >> 5) & 1;
  const bool avx512f = (l7.b >> 16) & 1;
  const bool avx512bw = (l7.b >> 30) & 1;
  const bool avx512vl = (l7.b >> 31) & 1;
  const bool avx512vnni = (l7.c >> 11) & 1;
  add(popcnt, "popcnt");
  add(avx, "avx");
  add(fma, "fma");
  add(f16c, "f16c");
  add(avx2, "avx2");
  add(avx512f, "avx512f");
  add(avx512bw, "avx512bw");
  add(avx512vl, "avx512vl");
  add(avx512vnni, "avx512vnni");
  add(os_ymm, "os-ymm");
  add(os_zmm, "os-zmm");
  const bool level_avx2 = os_ymm && avx && avx2 && fma && f16c && popcnt;
  const bool level_avx512 = level_avx2 && os_zmm && avx512f && avx512bw && avx512vl;
  if (level_avx512 && avx512vnni) {
    f.best = Isa::kAvx512vnni;
  } else if (level_avx512) {
    f.best = Isa::kAvx512bw;
  } else if (level_avx2) {
    f.best = Isa::kAvx2;
  }
#elif defined(__aarch64__) || defined(_M_ARM64)
  f.flags.emplace_back("neon");  // NEON is part of the arm64 baseline
  f.best = Isa::kNeon;
#endif
  return f;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kNeon: return "neon";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512bw: return "avx512bw";
    case Isa::kAvx512vnni: return "avx512vnni";
  }
  return "scalar";
}

bool parse_isa(const std::string& name, Isa best, Isa* out) {
  if (name.empty() || name == "auto") {
    *out = best;
    return true;
  }
  Isa want;
  if (name == "scalar") {
    want = Isa::kScalar;
  } else if (name == "neon") {
    want = Isa::kNeon;
  } else if (name == "avx2") {
    want = Isa::kAvx2;
  } else if (name == "avx512bw") {
    want = Isa::kAvx512bw;
  } else if (name == "avx512vnni" || name == "avx512") {
    want = Isa::kAvx512vnni;
  } else {
    return false;
  }
  // Only a lower path can be forced; NEON and the x86 levels are different families.
  const bool x86 = best != Isa::kNeon;
  if (want == Isa::kScalar) {
    *out = Isa::kScalar;
  } else if (want == Isa::kNeon || !x86) {
    *out = (want == Isa::kNeon && best == Isa::kNeon) ? Isa::kNeon : Isa::kScalar;
  } else {
    *out = static_cast<int>(want) <= static_cast<int>(best) ? want : best;
  }
  return true;
}

int logical_cores() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

int physical_cores() {
#if defined(__linux__)
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    std::set<std::pair<int, int>> cores;
    bool ok = true;
    for (int cpu = 0; cpu < CPU_SETSIZE && ok; ++cpu) {
      if (!CPU_ISSET(cpu, &set)) {
        continue;
      }
      const std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
      std::ifstream pkg(base + "physical_package_id");
      std::ifstream core(base + "core_id");
      int p = -1, c = -1;
      if (!(pkg >> p) || !(core >> c)) {
        ok = false;
        break;
      }
      cores.emplace(p, c);
    }
    if (ok && !cores.empty()) {
      return static_cast<int>(cores.size());
    }
    const int allowed = CPU_COUNT(&set);
    if (allowed > 0) {
      return allowed;
    }
  }
#endif
  return logical_cores();
}

}  // namespace barbell
