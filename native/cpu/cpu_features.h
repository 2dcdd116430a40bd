// CPU feature detection for runtime dispatch.
#pragma once

#include <string>
#include <vector>

namespace barbell {

enum class Isa { kScalar = 0, kNeon = 1, kAvx2 = 2, kAvx512bw = 3, kAvx512vnni = 4 };

struct CpuFeatures {
  Isa best = Isa::kScalar;
  std::vector<std::string> flags;  // e.g. "avx2", "fma", "f16c", "avx512f", "avx512vnni", "os-zmm"
};

// Detected once: CPUID leaves 1 and 7 plus XGETBV(0), so AVX/AVX-512 paths are only chosen when the OS
// saves the YMM/ZMM/opmask state on context switches.
const CpuFeatures& cpu_features();

const char* isa_name(Isa isa);
// Parses "scalar", "neon", "avx2", "avx512bw", "avx512vnni", "avx512" (= best AVX-512 level), or
// "" / "auto" (= best). Returns false for an unknown name.
bool parse_isa(const std::string& name, Isa best, Isa* out);

// Physical cores available to this process (Linux: sysfs topology of the affinity mask), else the
// hardware concurrency; at least 1.
int physical_cores();
int logical_cores();

}  // namespace barbell
