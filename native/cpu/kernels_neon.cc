// NEON path for arm64 (baseline ARMv8-A NEON, no dot-product extension). Compiled only on arm64
// (binding.gyp condition and the guard below). Tested against the scalar kernels bit for bit by
// cross-compiling native/cpu/check/isa_check.cc and running it under qemu-aarch64
// (scripts/check-isa.sh, test/backends/neon.test.ts); not yet run on arm64 hardware or through Node.
//
// Ternary × int8, one step = 16 packed weight bytes = 64 elements, same plane scheme as the x86
// paths (kernels.h, repack_x_planes with block 16): plane p = tbl(LUT, (w >> 2p) & 3) gives codes
// (trit + 1, code 3 → 1); vmull_s8 + vpadalq_s16 accumulate code·x into i32; result − Σx.
#include "kernels.h"

#if defined(__aarch64__) || defined(_M_ARM64)
#include <arm_neon.h>

#include "generic.h"

namespace barbell {
namespace {

void ternary(const TernaryArgs& a, int j0, int j1) {
  const uint8_t lut_bytes[16] = {0, 1, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  const uint8x16_t lut = vld1q_u8(lut_bytes);
  const uint8x16_t three = vdupq_n_u8(3);
  const size_t nb = a.row_bytes / 16;
  const size_t tail = a.row_bytes % 16;
  for (int i = 0; i < a.m; ++i) {
    const int8_t* x = a.xp + static_cast<size_t>(i) * a.xp_stride;
    for (int j = j0; j < j1; ++j) {
      const uint8_t* w = a.w + static_cast<size_t>(j) * a.row_bytes;
      int32x4_t acc = vdupq_n_s32(0);
      for (size_t blk = 0; blk < nb + (tail != 0 ? 1 : 0); ++blk) {
        uint8_t buf[16] = {0};
        const uint8_t* src = w + blk * 16;
        if (blk == nb) {
          for (size_t t = 0; t < tail; ++t) {
            buf[t] = src[t];
          }
          src = buf;
        }
        const uint8x16_t wv = vld1q_u8(src);
        const int8_t* xb = x + blk * 64;
        for (int p = 0; p < 4; ++p) {
          uint8x16_t code;
          switch (p) {
            case 0: code = vandq_u8(wv, three); break;
            case 1: code = vandq_u8(vshrq_n_u8(wv, 2), three); break;
            case 2: code = vandq_u8(vshrq_n_u8(wv, 4), three); break;
            default: code = vshrq_n_u8(wv, 6); break;
          }
          const int8x16_t c = vreinterpretq_s8_u8(vqtbl1q_u8(lut, code));
          const int8x16_t xv = vld1q_s8(xb + 16 * p);
          acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(c), vget_low_s8(xv)));
          acc = vpadalq_s16(acc, vmull_s8(vget_high_s8(c), vget_high_s8(xv)));
        }
      }
      const int32_t dot = vaddvq_s32(acc) - a.xsum[i];
      a.out[static_cast<size_t>(i) * a.n + j] = scale_acc(dot, a.xscale[i], a.gamma);
    }
  }
}

const IsaKernels kTable = {"neon", 16, ternary, nullptr, generic_binary_binary, nullptr};

}  // namespace

const IsaKernels* neon_kernels() { return &kTable; }

}  // namespace barbell
#endif
