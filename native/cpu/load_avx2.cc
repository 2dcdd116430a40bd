// The I2_S / TQ2_0 → t2 group kernel of load.cc with AVX2: compiled into the AVX2 library with its -m flags and
// called only when the CPU has AVX2 (load.cc dispatches). The same bytes and results as the scalar group_to_t2.
#include <immintrin.h>

#include "load_transcode.h"

namespace barbell {
namespace {

// One 32-byte group of 128 codes → 32 t2 bytes. Each dword g of the source holds a 4×4 matrix of 2-bit codes
// (byte k, field i at bit 8k + 2i); t2 byte 8i + g packs field i (TQ2_0; I2_S: field 3 − i) of bytes 0..3, the
// transpose. Two delta swaps transpose all eight dwords at once, a byte shuffle and a dword permute put
// byte i of dword g at 8i + g. False on a code 3 (nothing written then).
inline bool group_to_t2_avx2(const uint8_t* src, uint8_t* dst, bool tq2, uint32_t* nonzero) {
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src));
  const __m256i m55 = _mm256_set1_epi8(0x55);
  if (!_mm256_testz_si256(_mm256_and_si256(v, _mm256_srli_epi16(v, 1)), m55)) {
    return false;
  }
  if (tq2 && !_mm256_testz_si256(_mm256_xor_si256(v, m55), _mm256_set1_epi8(-1))) {
    *nonzero = 1;
  }
  __m256i x = v;
  __m256i t = _mm256_and_si256(_mm256_xor_si256(_mm256_srli_epi32(x, 12), x), _mm256_set1_epi32(0x0000f0f0));
  x = _mm256_xor_si256(x, _mm256_xor_si256(t, _mm256_slli_epi32(t, 12)));
  t = _mm256_and_si256(_mm256_xor_si256(_mm256_srli_epi32(x, 6), x), _mm256_set1_epi32(0x00cc00cc));
  x = _mm256_xor_si256(x, _mm256_xor_si256(t, _mm256_slli_epi32(t, 6)));
  // Within each 128-bit lane (dwords g = 0..3 of that lane): byte 4i + g ← byte 4g + i (TQ2_0) or 4g + 3 − i.
  const __m256i by_field = tq2 ? _mm256_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15,  //
                                                  0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15)
                               : _mm256_setr_epi8(3, 7, 11, 15, 2, 6, 10, 14, 1, 5, 9, 13, 0, 4, 8, 12,  //
                                                  3, 7, 11, 15, 2, 6, 10, 14, 1, 5, 9, 13, 0, 4, 8, 12);
  x = _mm256_shuffle_epi8(x, by_field);
  x = _mm256_permutevar8x32_epi32(x, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), x);
  return true;
}

}  // namespace

int32_t transcode_2bit_avx2(int64_t format, const uint8_t* src, int64_t n, uint8_t* dst) {
  return transcode_2bit_with(group_to_t2_avx2, format, src, n, dst);
}

}  // namespace barbell
