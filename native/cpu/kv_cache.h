// KV cache rows stored as f32, f16 or q8_0 (KvType, float_kernels.h): rounding f32 rows into a cache row
// and decoding cache rows back to f32, both portable C++ that gives the JS reference's bits
// (src/model/bitnet/kv-cache.ts through the f16 / q8_0 codecs of src/quant/formats).
#pragma once

#include <cstddef>
#include <cstdint>

#include "float_kernels.h"

namespace barbell {

// One block of 32 floats to Q8_0 (34 bytes) as Q8_0.encode in src/quant/formats/q8-0.ts and llama.cpp's
// quantize_row_q8_0_ref: d = absmax / 127 in f32 (NaN skipped), q = roundf(x · (1/d)) (ties away from zero)
// clamped to int8, NaN → 0, d kept as f16 and clamped to ±65504 where ggml would store inf. The one scalar
// encoder: the KV cache rows and load.cc's encodeQ8_0 (whose AVX2 path, load_avx2.cc, gives the same bytes).
void encode_q8_0_block(const float* x, uint8_t* out);

// A Q8_0 block's scale d as stored: f16 (round to nearest even), clamped to ±65504 where ggml would store inf.
// Both block encoders (encode_q8_0_block, load_avx2.cc's q8_block) write it through this.
uint16_t q8_scale_f16(float d);

// Rounds `rows` rows of `elems` floats into `rows` cache rows of type kv_type at dst (kv_bytes(kv_type,
// elems) bytes each, rows back to back). q8_0 (elems a multiple of 32), per block as llama.cpp's
// quantize_row_q8_0_ref: d = absmax / 127 in f32, q = roundf(x · (1/d)) (ties away from zero), d kept as
// f16 and clamped to ±65504 where ggml would store inf. f16: float_to_half_rne. f32: a copy.
void kv_store_rows(int kv_type, const float* src, size_t rows, size_t elems, uint8_t* dst);

// Decodes `rows` cache rows (kv_bytes(kv_type, elems) bytes each) into rows·elems floats; exact.
void kv_decode_rows(int kv_type, const uint8_t* src, size_t rows, size_t elems, float* dst);

// Query rows rounded through q8_0 (kv_store_rows, then kv_decode_rows): attention over a q8_0 K cache multiplies
// the keys by these (the integer K·q of the SIMD paths, simd_float.inc q8_score, in floating point).
void kv_round_q8_rows(const float* src, size_t rows, size_t elems, float* dst);

// Largest head dim the SIMD paths' integer q8_0 K·q takes (its per-head query blocks live on the stack);
// larger ones go through kv_round_q8_rows and the f32 kernels.
constexpr int kKvQ8IntegerMaxHeadDim = 2048;

}  // namespace barbell
