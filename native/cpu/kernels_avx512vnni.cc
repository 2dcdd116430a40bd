// AVX-512 VNNI path (Ice Lake, Zen 4/5): vpdpbusd does the u8×s8 multiply-accumulate in one step.
// Compiled with the AVX-512BW flags plus -mavx512vnni (binding.gyp).
#include "kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#define BARBELL_VNNI 1
#include "kernels_avx512.inc"

namespace barbell {
namespace {
const IsaKernels kTable = {"avx512vnni", 64, ternary, binary_i8, generic_binary_binary, dense, attention, dense_gemv, silu, quantize, rmsnorm, q8_i8, attention_chunk,
                           repack_planes};
}
const IsaKernels* avx512vnni_kernels() { return &kTable; }
}  // namespace barbell
#endif
