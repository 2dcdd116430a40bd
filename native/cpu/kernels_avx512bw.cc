// AVX-512 F/BW/VL path without VNNI (Skylake-X class): vpmaddubsw + vpmaddwd.
// Compiled with -mavx512f -mavx512bw -mavx512vl -mf16c -mfma -mpopcnt (binding.gyp).
#include "kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#define BARBELL_VNNI 0
#include "kernels_avx512.inc"

namespace barbell {
namespace {
const IsaKernels kTable = {"avx512bw", 64, ternary, binary_i8, generic_binary_binary, dense, attention, dense_gemv, silu, quantize, rmsnorm, nullptr, attention_chunk,
                           repack_planes};
}
const IsaKernels* avx512bw_kernels() { return &kTable; }
}  // namespace barbell
#endif
