// The C ABI (barbell_cuda.h) over the kernels: argument checks, scratch memory, status read-back, errors.
#include <cuda_runtime.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "barbell_cuda.h"
#include "bb_math.h"
#include "kernels.h"

namespace {

using bbcuda::DeviceStatus;

thread_local std::string g_error;

struct Context {
  bool ready = false;
  int device = -1;
  cudaStream_t stream = nullptr;
  DeviceStatus* status = nullptr;
  void* scratch = nullptr;
  size_t scratch_bytes = 0;
};
Context g_ctx;

int fail(int code, const std::string& message) {
  g_error = message;
  return code;
}

int cuda_fail(cudaError_t e, const char* what) {
  if (e == cudaErrorInsufficientDriver || e == cudaErrorNoDevice) {
    return fail(BBC_ENODRIVER, std::string(what) + ": " + (e == cudaErrorNoDevice ? "no CUDA device" : "no CUDA driver"));
  }
  return fail(BBC_ECUDA, std::string(what) + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
}

#define BBC_CUDA(call, what)                 \
  do {                                       \
    const cudaError_t e_ = (call);           \
    if (e_ != cudaSuccess) return cuda_fail(e_, what); \
  } while (0)

#define BBC_READY()                                                                   \
  do {                                                                                \
    if (!g_ctx.ready) return fail(BBC_EARG, "bbc_init has not been called");          \
  } while (0)

#define BBC_CHECK(cond, msg)                  \
  do {                                        \
    if (!(cond)) return fail(BBC_EARG, msg);  \
  } while (0)

/** Scratch of at least `bytes` (grows after waiting for queued work; never shrinks). */
int scratch(size_t bytes, void** out) {
  if (bytes > g_ctx.scratch_bytes) {
    BBC_CUDA(cudaStreamSynchronize(g_ctx.stream), "scratch");
    if (g_ctx.scratch != nullptr) cudaFree(g_ctx.scratch);
    g_ctx.scratch = nullptr;
    g_ctx.scratch_bytes = 0;
    const size_t grown = bytes < (1u << 20) ? (1u << 20) : bytes + bytes / 2;
    BBC_CUDA(cudaMalloc(&g_ctx.scratch, grown), "scratch");
    g_ctx.scratch_bytes = grown;
  }
  *out = g_ctx.scratch;
  return BBC_OK;
}

size_t align256(size_t n) { return (n + 255) & ~static_cast<size_t>(255); }

}  // namespace

namespace bbcuda {
int report_cuda(cudaError_t e, const char* what) { return cuda_fail(e, what); }
int report(int code, const char* message) { return fail(code, message); }
}  // namespace bbcuda

extern "C" {

int bbc_probe(char* msg, int len) {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  std::string text;
  if (e == cudaErrorInsufficientDriver) {
    text = "no CUDA driver (the CUDA runtime answered cudaErrorInsufficientDriver)";
    count = 0;
  } else if (e == cudaErrorNoDevice || (e == cudaSuccess && count == 0)) {
    text = "no CUDA device";
    count = 0;
  } else if (e != cudaSuccess) {
    text = std::string("CUDA runtime error ") + cudaGetErrorName(e);
    count = 0;
  } else {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, 0) == cudaSuccess) {
      char buf[256];
      std::snprintf(buf, sizeof buf, "%s, sm_%d%d, %.1f GiB", p.name, p.major, p.minor,
                    static_cast<double>(p.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0));
      text = buf;
    }
  }
  if (msg != nullptr && len > 0) {
    std::snprintf(msg, static_cast<size_t>(len), "%s", text.c_str());
  }
  return count;
}

const char* bbc_error(void) { return g_error.c_str(); }

int bbc_init(int ordinal) {
  if (g_ctx.ready) return ordinal == g_ctx.device ? BBC_OK : fail(BBC_EARG, "already initialised on another device");
  BBC_CUDA(cudaSetDevice(ordinal), "cudaSetDevice");
  BBC_CUDA(cudaStreamCreateWithFlags(&g_ctx.stream, cudaStreamNonBlocking), "cudaStreamCreate");
  BBC_CUDA(cudaMalloc(&g_ctx.status, sizeof(DeviceStatus)), "cudaMalloc");
  BBC_CUDA(cudaMemsetAsync(g_ctx.status, 0xff, sizeof(DeviceStatus), g_ctx.stream), "cudaMemset");
  g_ctx.device = ordinal;
  g_ctx.ready = true;
  return BBC_OK;
}

int bbc_alloc(size_t bytes, void** d_out) {
  BBC_READY();
  *d_out = nullptr;
  BBC_CUDA(cudaMalloc(d_out, bytes == 0 ? 1 : bytes), "cudaMalloc");
  BBC_CUDA(cudaMemsetAsync(*d_out, 0, bytes == 0 ? 1 : bytes, g_ctx.stream), "cudaMemset");
  return BBC_OK;
}

int bbc_free(void* d) {
  BBC_READY();
  BBC_CUDA(cudaStreamSynchronize(g_ctx.stream), "free");
  BBC_CUDA(cudaFree(d), "cudaFree");
  return BBC_OK;
}

int bbc_write(void* d_dst, size_t offset, const void* src, size_t bytes) {
  BBC_READY();
  // Synchronous with respect to the host buffer (pageable memory): the caller may reuse `src` at once.
  BBC_CUDA(cudaMemcpyAsync(static_cast<char*>(d_dst) + offset, src, bytes, cudaMemcpyHostToDevice, g_ctx.stream), "write");
  BBC_CUDA(cudaStreamSynchronize(g_ctx.stream), "write");
  return BBC_OK;
}

int bbc_read(void* dst, const void* d_src, size_t offset, size_t bytes) {
  BBC_READY();
  BBC_CUDA(cudaMemcpyAsync(dst, static_cast<const char*>(d_src) + offset, bytes, cudaMemcpyDeviceToHost, g_ctx.stream),
           "read");
  BBC_CUDA(cudaStreamSynchronize(g_ctx.stream), "read");
  return BBC_OK;
}

int bbc_copy(void* d_dst, size_t dst_offset, const void* d_src, size_t src_offset, size_t bytes) {
  BBC_READY();
  BBC_CUDA(cudaMemcpyAsync(static_cast<char*>(d_dst) + dst_offset, static_cast<const char*>(d_src) + src_offset, bytes,
                           cudaMemcpyDeviceToDevice, g_ctx.stream),
           "copy");
  return BBC_OK;
}

int bbc_sync(void) {
  BBC_READY();
  BBC_CUDA(cudaStreamSynchronize(g_ctx.stream), "sync");
  return BBC_OK;
}

int bbc_status(long long* nonfinite, long long* bad_id) {
  BBC_READY();
  DeviceStatus st{};
  BBC_CUDA(cudaMemcpyAsync(&st, g_ctx.status, sizeof st, cudaMemcpyDeviceToHost, g_ctx.stream), "status");
  BBC_CUDA(cudaMemsetAsync(g_ctx.status, 0xff, sizeof st, g_ctx.stream), "status");
  BBC_CUDA(cudaStreamSynchronize(g_ctx.stream), "status");
  *nonfinite = st.nonfinite == ~0ull ? -1 : static_cast<long long>(st.nonfinite);
  *bad_id = st.bad_id == ~0ull ? -1 : static_cast<long long>(st.bad_id);
  return *nonfinite >= 0 || *bad_id >= 0 ? fail(BBC_EDATA, "non-finite activation or token id outside the vocabulary")
                                         : BBC_OK;
}

int bbc_ternary_row_bytes(int k) { return bbcuda::t2_padded_row_bytes(k); }

int bbc_upload_ternary(const uint8_t* t2, int n, int k, void** d_out) {
  BBC_READY();
  BBC_CHECK(n > 0 && k > 0 && k <= bbcuda::kMaxDotK, "ternary: n and k must be positive and k ≤ MAX_DOT_K");
  const size_t src_row = static_cast<size_t>(bbcuda::t2_row_bytes(k));
  const size_t dst_row = static_cast<size_t>(bbcuda::t2_padded_row_bytes(k));
  std::vector<uint8_t> packed(dst_row * static_cast<size_t>(n));
  for (int r = 0; r < n; ++r) bbcuda::repack_t2_row(t2 + r * src_row, k, packed.data() + r * dst_row);
  int rc = bbc_alloc(packed.size(), d_out);
  if (rc != BBC_OK) return rc;
  return bbc_write(*d_out, 0, packed.data(), packed.size());
}

int bbc_repack_ternary(const void* d_raw, int n, int k, void** d_out) {
  BBC_READY();
  BBC_CHECK(n > 0 && k > 0 && k <= bbcuda::kMaxDotK, "ternary: n and k must be positive and k ≤ MAX_DOT_K");
  const int rc = bbc_alloc(static_cast<size_t>(n) * bbcuda::t2_padded_row_bytes(k), d_out);
  if (rc != BBC_OK) return rc;
  BBC_CUDA(bbcuda::launch_repack_t2(static_cast<const uint8_t*>(d_raw), n, k, static_cast<uint8_t*>(*d_out), g_ctx.stream),
           "repack ternary");
  return BBC_OK;
}

int bbc_repack_q8(const void* d_raw, int n, int k, void** d_scales, void** d_values) {
  BBC_READY();
  BBC_CHECK(n > 0 && k > 0 && k % bbcuda::kQ8Block == 0, "q8_0: k must be a positive multiple of 32");
  int rc = bbc_alloc(static_cast<size_t>(n) * (k / bbcuda::kQ8Block) * 4, d_scales);
  if (rc == BBC_OK) rc = bbc_alloc(static_cast<size_t>(n) * k, d_values);
  if (rc != BBC_OK) return rc;
  BBC_CUDA(bbcuda::launch_repack_q8(static_cast<const uint8_t*>(d_raw), n, k, static_cast<float*>(*d_scales),
                                    static_cast<int8_t*>(*d_values), g_ctx.stream),
           "repack_q8");
  return BBC_OK;
}

int bbc_quantize(const float* d_x, int m, int k, int8_t* d_q, float* d_scales) {
  BBC_READY();
  BBC_CHECK(m > 0 && k > 0, "quantize: empty");
  BBC_CUDA(bbcuda::launch_quantize(d_x, m, k, d_q, k, d_scales, g_ctx.status, g_ctx.stream), "quantize");
  return BBC_OK;
}

/** x [m, k] contiguous → a view the ternary kernel can read in 16-byte words (a padded copy when k % 16 ≠ 0). */
static int ternary_input(const int8_t* d_x, int m, int k, const int8_t** x, int* stride) {
  if (k % 16 == 0 && reinterpret_cast<uintptr_t>(d_x) % 16 == 0) {
    *x = d_x;
    *stride = k;
    return BBC_OK;
  }
  const int padded = (k + 15) / 16 * 16;
  void* buf = nullptr;
  const int rc = scratch(static_cast<size_t>(m) * padded, &buf);
  if (rc != BBC_OK) return rc;
  BBC_CUDA(cudaMemsetAsync(buf, 0, static_cast<size_t>(m) * padded, g_ctx.stream), "ternary pad");
  BBC_CUDA(cudaMemcpy2DAsync(buf, padded, d_x, k, k, m, cudaMemcpyDeviceToDevice, g_ctx.stream), "ternary pad");
  *x = static_cast<const int8_t*>(buf);
  *stride = padded;
  return BBC_OK;
}

int bbc_ternary(const int8_t* d_x, const float* d_xs, const void* d_w, float gamma, int m, int k, int n, float* d_out) {
  BBC_READY();
  BBC_CHECK(m > 0 && n > 0 && k > 0 && k <= bbcuda::kMaxDotK, "ternary: bad sizes");
  const int8_t* x = nullptr;
  int stride = 0;
  const int rc = ternary_input(d_x, m, k, &x, &stride);
  if (rc != BBC_OK) return rc;
  BBC_CUDA(bbcuda::launch_ternary(x, stride, d_xs, static_cast<const uint8_t*>(d_w), gamma, m, k, n, d_out, g_ctx.stream),
           "ternary");
  return BBC_OK;
}

int bbc_ternary_acc(const int8_t* d_x, const void* d_w, int m, int k, int n, int32_t* d_acc) {
  BBC_READY();
  BBC_CHECK(m > 0 && n > 0 && k > 0 && k <= bbcuda::kMaxDotK, "ternary: bad sizes");
  const int8_t* x = nullptr;
  int stride = 0;
  const int rc = ternary_input(d_x, m, k, &x, &stride);
  if (rc != BBC_OK) return rc;
  BBC_CUDA(bbcuda::launch_ternary_acc(x, stride, static_cast<const uint8_t*>(d_w), m, k, n, d_acc, g_ctx.stream),
           "ternary_acc");
  return BBC_OK;
}

int bbc_rmsnorm(const float* d_x, const float* d_w, int rows, int cols, double eps, float* d_out) {
  BBC_READY();
  BBC_CHECK(rows > 0 && cols > 0, "rmsnorm: empty");
  BBC_CUDA(bbcuda::launch_rmsnorm(d_x, d_w, rows, cols, eps, d_out, g_ctx.stream), "rmsnorm");
  return BBC_OK;
}

int bbc_rope(const float* d_x, int seq, int heads, int hd, const int32_t* d_pos, double theta, int neox, float* d_out) {
  BBC_READY();
  BBC_CHECK(seq > 0 && heads > 0 && hd > 0 && hd % 2 == 0, "rope: bad sizes");
  BBC_CUDA(bbcuda::launch_rope(d_x, seq, heads, hd, d_pos, theta, neox != 0, d_out, nullptr, nullptr, g_ctx.stream), "rope");
  return BBC_OK;
}

int bbc_attention(const float* d_q, const float* d_k, const float* d_v, int seq, int heads, int kv_heads, int hd,
                  int pos0, double scale, float* d_out) {
  BBC_READY();
  BBC_CHECK(seq > 0 && kv_heads > 0 && heads % kv_heads == 0 && pos0 >= 0, "attention: bad sizes");
  BBC_CHECK(hd % 32 == 0 && hd <= bbcuda::kAttnMaxHeadDim && (hd / 32 & (hd / 32 - 1)) == 0,
            "attention: head dim must be 32, 64, 128 or 256");
  const int keys = pos0 + seq;
  const size_t rows_bytes = align256(static_cast<size_t>(seq) * (8 + 4));
  const size_t partial_bytes = bbcuda::attention_partial_floats(seq, heads, hd, keys) * 4;
  void* buf = nullptr;
  const int rc = scratch(rows_bytes + partial_bytes, &buf);
  if (rc != BBC_OK) return rc;
  auto* row_off = static_cast<long long*>(buf);
  auto* last = reinterpret_cast<int32_t*>(row_off + seq);
  auto* partial = reinterpret_cast<float*>(static_cast<char*>(buf) + rows_bytes);
  BBC_CUDA(bbcuda::launch_fill_rows(row_off, last, seq, 0, pos0, g_ctx.stream), "attention");
  BBC_CUDA(bbcuda::launch_attention(d_q, d_k, d_v, seq, heads, kv_heads, hd, last, row_off, keys,
                                    static_cast<float>(scale), partial, d_out, g_ctx.stream),
           "attention");
  return BBC_OK;
}

int bbc_softmax(const float* d_x, int rows, int cols, float* d_out) {
  BBC_READY();
  BBC_CHECK(rows > 0 && cols > 0, "softmax: empty");
  BBC_CUDA(bbcuda::launch_softmax(d_x, rows, cols, d_out, g_ctx.stream), "softmax");
  return BBC_OK;
}

int bbc_unary(int op, const float* d_x, long long n, float* d_out) {
  BBC_READY();
  BBC_CHECK(op >= 0 && op <= 8 && n > 0, "unary: unknown op or empty");
  BBC_CUDA(bbcuda::launch_unary(op, d_x, n, d_out, g_ctx.stream), "unary");
  return BBC_OK;
}

int bbc_binary(int op, const float* d_a, const long long* a_strides, const float* d_b, const long long* b_strides,
               const long long* dims, int rank, float* d_out) {
  BBC_READY();
  BBC_CHECK(op >= 0 && op <= 5 && rank >= 0 && rank <= 4, "binary: unknown op or rank above 4");
  BBC_CUDA(bbcuda::launch_binary(op, d_a, a_strides, d_b, b_strides, dims, rank, d_out, g_ctx.stream), "binary");
  return BBC_OK;
}

int bbc_embedding(const int32_t* d_ids, int seq, int dtype, const void* d_table, int vocab, int embed, float* d_out) {
  BBC_READY();
  BBC_CHECK(seq > 0 && vocab > 0 && embed > 0 && dtype >= 0 && dtype <= 3, "embedding: bad sizes or dtype");
  BBC_CHECK(dtype != bbcuda::kQ8_0 || embed % bbcuda::kQ8Block == 0, "embedding: q8_0 rows must be whole blocks");
  BBC_CUDA(bbcuda::launch_embedding(d_ids, seq, dtype, static_cast<const uint8_t*>(d_table), vocab, embed, d_out,
                                    g_ctx.status, g_ctx.stream),
           "embedding");
  return BBC_OK;
}

int bbc_dense(const float* d_x, int dtype, const void* d_w, int m, int k, int n, float* d_out) {
  BBC_READY();
  BBC_CHECK(m > 0 && k > 0 && n > 0 && dtype >= 0 && dtype <= 3, "dense: bad sizes or dtype");
  BBC_CHECK(dtype != bbcuda::kQ8_0 || k % bbcuda::kQ8Block == 0, "dense: q8_0 rows must be whole blocks");
  BBC_CUDA(bbcuda::launch_dense(d_x, dtype, static_cast<const uint8_t*>(d_w), m, k, n, d_out, g_ctx.stream), "dense");
  return BBC_OK;
}

int bbc_q8_head(const float* d_x, const float* d_scales, const int8_t* d_values, int m, int k, int n, float* d_out) {
  BBC_READY();
  BBC_CHECK(m > 0 && n > 0 && k > 0 && k % bbcuda::kQ8Block == 0, "q8 head: k must be a positive multiple of 32");
  BBC_CHECK(k / bbcuda::kQ8Block * 4 * 4 <= 48 * 1024, "q8 head: k above 98304");
  const size_t q_bytes = align256(static_cast<size_t>(m) * k);
  void* buf = nullptr;
  const int rc = scratch(q_bytes + static_cast<size_t>(m) * (k / bbcuda::kQ8Block) * 4, &buf);
  if (rc != BBC_OK) return rc;
  auto* xq = static_cast<int8_t*>(buf);
  auto* xinv = reinterpret_cast<float*>(static_cast<char*>(buf) + q_bytes);
  BBC_CUDA(bbcuda::launch_q8_head(d_x, d_scales, d_values, m, k, n, xq, xinv, d_out, g_ctx.status, g_ctx.stream),
           "q8 head");
  return BBC_OK;
}

int bbc_sample(const float* d_logits, int rows, int vocab, int top_k, float temperature, unsigned long long seed,
               int32_t* d_ids) {
  BBC_READY();
  BBC_CHECK(rows > 0 && vocab > 0 && top_k <= bbcuda::kMaxTopK, "sample: bad sizes or top_k above 64");
  void* buf = nullptr;
  const int rc = scratch(static_cast<size_t>(rows) * bbcuda::kSampleScratch * 4, &buf);
  if (rc != BBC_OK) return rc;
  BBC_CUDA(bbcuda::launch_sample(d_logits, rows, vocab, top_k, temperature, seed, nullptr, static_cast<float*>(buf),
                                 d_ids, g_ctx.stream),
           "sample");
  return BBC_OK;
}

}  // extern "C"
