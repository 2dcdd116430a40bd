// The C ABI of barbell's CUDA layer: what the N-API addon (addon.cc) and the standalone harness call.
// Every function returns 0 (BBC_OK) or a BBC_E* code; bbc_error() gives the last message (thread-local).
// Pointers named d_* are device memory. Calls queue work on the context's stream; bbc_sync() waits for it,
// bbc_read() waits before it copies, bbc_status() reports the data problems the kernels recorded.
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
  BBC_OK = 0,
  BBC_ENODRIVER = 1,  // the runtime answered cudaErrorInsufficientDriver / cudaErrorNoDevice
  BBC_ECUDA = 2,      // any other CUDA error (message in bbc_error())
  BBC_EARG = 3,       // a size or argument outside what the kernels accept
  BBC_EDATA = 4       // bbc_status(): a non-finite activation or a token id outside the vocabulary
};

/** Version of this ABI; the addon and the TS glue refuse another. */
#define BBC_ABI_VERSION 1

/** Probes the runtime: count of devices (≥ 1) and a description of device 0 in `msg`, or 0 and the reason
 *  ("no CUDA driver", "no CUDA device", …). Never throws, never aborts. */
int bbc_probe(char* msg, int len);
const char* bbc_error(void);
/** Makes device `ordinal` current and creates the stream and scratch (idempotent). */
int bbc_init(int ordinal);
int bbc_alloc(size_t bytes, void** d_out);
int bbc_free(void* d);
int bbc_write(void* d_dst, size_t offset, const void* src, size_t bytes);
int bbc_read(void* dst, const void* d_src, size_t offset, size_t bytes);
int bbc_copy(void* d_dst, size_t dst_offset, const void* d_src, size_t src_offset, size_t bytes);
int bbc_sync(void);
/** Reads and clears the recorded data problems: *nonfinite / *bad_id = first bad flat index or −1. */
int bbc_status(long long* nonfinite, long long* bad_id);

/** Uploads t2 rows (n × ceil(k/4) host bytes) in the device layout (bb_math.h repack_t2_row). */
int bbc_upload_ternary(const uint8_t* t2, int n, int k, void** d_out);
/** The same repack on the device, from t2 bytes already uploaded (d_raw stays the caller's). */
int bbc_repack_ternary(const void* d_raw, int n, int k, void** d_out);
/** Bytes of one device ternary row. */
int bbc_ternary_row_bytes(int k);
/** Splits device Q8_0 bytes [n, k] into f32 scales [n, k/32] and int8 values [n, k] (the head's layout). */
int bbc_repack_q8(const void* d_raw, int n, int k, void** d_scales, void** d_values);

int bbc_quantize(const float* d_x, int m, int k, int8_t* d_q, float* d_scales);
int bbc_ternary(const int8_t* d_x, const float* d_xs, const void* d_w, float gamma, int m, int k, int n, float* d_out);
int bbc_ternary_acc(const int8_t* d_x, const void* d_w, int m, int k, int n, int32_t* d_acc);
int bbc_rmsnorm(const float* d_x, const float* d_w, int rows, int cols, double eps, float* d_out);
int bbc_rope(const float* d_x, int seq, int heads, int hd, const int32_t* d_pos, double theta, int neox, float* d_out);
int bbc_attention(const float* d_q, const float* d_k, const float* d_v, int seq, int heads, int kv_heads, int hd,
                  int pos0, double scale, float* d_out);
int bbc_softmax(const float* d_x, int rows, int cols, float* d_out);
int bbc_unary(int op, const float* d_x, long long n, float* d_out);
int bbc_binary(int op, const float* d_a, const long long* a_strides, const float* d_b, const long long* b_strides,
               const long long* dims, int rank, float* d_out);
/** dtype: 0 f32, 1 f16, 2 bf16, 3 q8_0 (file bytes). */
int bbc_embedding(const int32_t* d_ids, int seq, int dtype, const void* d_table, int vocab, int embed, float* d_out);
int bbc_dense(const float* d_x, int dtype, const void* d_w, int m, int k, int n, float* d_out);
int bbc_q8_head(const float* d_x, const float* d_scales, const int8_t* d_values, int m, int k, int n, float* d_out);
/** Greedy (top_k ≤ 1) or top-k sampling of logits [rows, vocab] into ids [rows]. */
int bbc_sample(const float* d_logits, int rows, int vocab, int top_k, float temperature, unsigned long long seed,
               int32_t* d_ids);

#ifdef __cplusplus
}
#endif
