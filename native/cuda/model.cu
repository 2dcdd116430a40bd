// The device decoder of model.h.
#include <cuda_runtime.h>

#include <cstring>
#include <string>
#include <vector>

#include "barbell_cuda.h"
#include "bb_math.h"
#include "kernels.h"
#include "model.h"

namespace {

using bbcuda::DeviceStatus;

struct Ternary {
  uint8_t* w = nullptr;
  int n = 0, k = 0;
  float gamma = 1.0f;
};

struct Layer {
  float *attn_norm = nullptr, *attn_sub_norm = nullptr, *ffn_norm = nullptr, *ffn_sub_norm = nullptr;
  Ternary wq, wk, wv, wo, w_gate, w_up, w_down;
};

int pad16(int n) { return (n + 15) / 16 * 16; }

size_t dense_bytes(int dtype, size_t rows, size_t cols) {
  switch (dtype) {
    case bbcuda::kF32:
      return rows * cols * 4;
    case bbcuda::kF16:
    case bbcuda::kBF16:
      return rows * cols * 2;
    default:
      return rows * (cols / bbcuda::kQ8Block) * bbcuda::kQ8Bytes;
  }
}

/** Records the last sampled ids of a step into the history and advances every position by one. */
__global__ void record_advance_kernel(const int32_t* ids, int32_t* pos, int32_t* step, int32_t* history, int batch) {
  const int b = threadIdx.x;
  if (b < batch) {
    history[static_cast<size_t>(step[0]) * batch + b] = ids[b];
    pos[b] += 1;
  }
  __syncthreads();
  if (b == 0) step[0] += 1;
}

}  // namespace

struct bbc_model {
  bbc_model_config c{};
  cudaStream_t stream = nullptr;
  DeviceStatus* status = nullptr;
  std::vector<Layer> layers;
  std::vector<void*> owned;
  size_t bytes = 0;
  uint8_t* embd = nullptr;
  float* out_norm = nullptr;
  uint8_t* head = nullptr;    // dense head bytes (or the raw Q8_0 bytes before the repack)
  float* head_d = nullptr;    // Q8_0 head scales
  int8_t* head_q = nullptr;   // Q8_0 head values
  float *kcache = nullptr, *vcache = nullptr;  // [layers][max_batch][ctx][kv][hd]
  // scratch, sized for max(max_rows, max_batch) rows
  float *h = nullptr, *h1 = nullptr, *xn = nullptr, *q = nullptr, *k = nullptr, *v = nullptr, *att = nullptr;
  float *g = nullptr, *u = nullptr, *o = nullptr, *xs = nullptr, *logits = nullptr, *partial = nullptr, *sample = nullptr;
  int8_t* xq = nullptr;
  int xq_stride = 0;
  int32_t *ids = nullptr, *pos = nullptr, *step = nullptr, *history = nullptr;
  long long* row_off = nullptr;
  size_t history_len = 0;

  int alloc(void** p, size_t n) {
    const cudaError_t e = cudaMalloc(p, n == 0 ? 1 : n);
    if (e != cudaSuccess) return bbcuda::report_cuda(e, "model alloc");
    owned.push_back(*p);
    bytes += n;
    // Zeroed before anything else touches it: uploads use cudaMemcpy (the legacy stream), kernels `stream`.
    return cudaMemsetAsync(*p, 0, n == 0 ? 1 : n, stream) == cudaSuccess && cudaStreamSynchronize(stream) == cudaSuccess
               ? BBC_OK
               : bbcuda::report(BBC_ECUDA, "memset");
  }
  template <typename T>
  int alloc_t(T** p, size_t count) {
    void* raw = nullptr;
    const int rc = alloc(&raw, count * sizeof(T));
    *p = static_cast<T*>(raw);
    return rc;
  }
};

#define M_TRY(expr)                      \
  do {                                   \
    const int rc_ = (expr);              \
    if (rc_ != BBC_OK) return rc_;       \
  } while (0)
#define M_CUDA(expr, what)                                        \
  do {                                                            \
    const cudaError_t e_ = (expr);                                \
    if (e_ != cudaSuccess) return bbcuda::report_cuda(e_, what);  \
  } while (0)

namespace {

int upload_ternary(bbc_model* m, Ternary* t, int n, int k, const void* host, size_t bytes, float gamma) {
  if (bytes != static_cast<size_t>(n) * bbcuda::t2_row_bytes(k)) return bbcuda::report(BBC_EARG, "ternary tensor size");
  const size_t src_row = bbcuda::t2_row_bytes(k), dst_row = bbcuda::t2_padded_row_bytes(k);
  std::vector<uint8_t> packed(dst_row * n);
  for (int r = 0; r < n; ++r) {
    bbcuda::repack_t2_row(static_cast<const uint8_t*>(host) + r * src_row, k, packed.data() + r * dst_row);
  }
  if (t->w == nullptr) M_TRY(m->alloc_t(&t->w, packed.size()));
  M_CUDA(cudaMemcpy(t->w, packed.data(), packed.size(), cudaMemcpyHostToDevice), "upload");
  t->n = n;
  t->k = k;
  t->gamma = gamma;
  return BBC_OK;
}

int upload_f32(bbc_model* m, float** dst, size_t count, const void* host, size_t bytes) {
  if (bytes != count * 4) return bbcuda::report(BBC_EARG, "f32 tensor size");
  if (*dst == nullptr) M_TRY(m->alloc_t(dst, count));
  M_CUDA(cudaMemcpy(*dst, host, bytes, cudaMemcpyHostToDevice), "upload");
  return BBC_OK;
}

/** The blocks over rows n (row i: cache of row_off[i], position pos[i]), h in m->h; result in m->h. */
int blocks(bbc_model* m, int n, int max_keys) {
  const bbc_model_config& c = m->c;
  cudaStream_t s = m->stream;
  const int qw = c.heads * c.head_dim, kvw = c.kv_heads * c.head_dim;
  const size_t layer_cache = static_cast<size_t>(c.max_batch) * c.ctx * kvw;
  const long long dims[1] = {static_cast<long long>(n) * c.embed};
  const long long dims_f[1] = {static_cast<long long>(n) * c.ffn};
  const long long one[1] = {1};
  auto nq = [&](const float* x, const float* w, int cols) {
    return bbcuda::launch_norm_quantize(x, w, n, cols, c.eps, m->xn, m->xq, m->xq_stride, m->xs, m->status, s);
  };
  auto proj = [&](const Ternary& t, float* out) {
    return bbcuda::launch_ternary(m->xq, m->xq_stride, m->xs, t.w, t.gamma, n, t.k, t.n, out, s);
  };
  for (int l = 0; l < c.layers; ++l) {
    const Layer& L = m->layers[l];
    float* kc = m->kcache + l * layer_cache;
    float* vc = m->vcache + l * layer_cache;
    M_CUDA(nq(m->h, L.attn_norm, c.embed), "attn norm");
    M_CUDA(proj(L.wq, m->q), "wq");
    M_CUDA(proj(L.wk, m->k), "wk");
    M_CUDA(proj(L.wv, m->v), "wv");
    M_CUDA(bbcuda::launch_rope(m->q, n, c.heads, c.head_dim, m->pos, c.rope_theta, true, m->q, nullptr, nullptr, s), "rope q");
    M_CUDA(bbcuda::launch_rope(m->k, n, c.kv_heads, c.head_dim, m->pos, c.rope_theta, true, m->k, kc, m->row_off, s),
           "rope k");
    M_CUDA(bbcuda::launch_cache_write(m->v, n, kvw, m->pos, m->row_off, vc, s), "v cache");
    M_CUDA(bbcuda::launch_attention(m->q, kc, vc, n, c.heads, c.kv_heads, c.head_dim, m->pos, m->row_off, max_keys,
                                    static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.head_dim))), m->partial,
                                    m->att, s),
           "attention");
    M_CUDA(nq(m->att, L.attn_sub_norm, qw), "attn sub norm");
    M_CUDA(proj(L.wo, m->o), "wo");
    M_CUDA(bbcuda::launch_binary(0, m->h, one, m->o, one, dims, 1, m->h1, s), "residual");
    M_CUDA(nq(m->h1, L.ffn_norm, c.embed), "ffn norm");
    M_CUDA(proj(L.w_gate, m->g), "gate");
    M_CUDA(proj(L.w_up, m->u), "up");
    M_CUDA(bbcuda::launch_unary(c.activation, m->g, static_cast<long long>(n) * c.ffn, m->g, s), "activation");
    M_CUDA(bbcuda::launch_binary(2, m->g, one, m->u, one, dims_f, 1, m->g, s), "gate·up");
    M_CUDA(nq(m->g, L.ffn_sub_norm, c.ffn), "ffn sub norm");
    M_CUDA(proj(L.w_down, m->o), "down");
    M_CUDA(bbcuda::launch_binary(0, m->h1, one, m->o, one, dims, 1, m->h, s), "residual");
  }
  return BBC_OK;
}

/** Final norm and head over `rows` rows starting at row `first` of m->h, then sampling into m->ids. */
int head_and_sample(bbc_model* m, int first, int rows, int top_k, float temperature, unsigned long long seed) {
  const bbc_model_config& c = m->c;
  cudaStream_t s = m->stream;
  const float* hr = m->h + static_cast<size_t>(first) * c.embed;
  M_CUDA(bbcuda::launch_rmsnorm(hr, m->out_norm, rows, c.embed, c.eps, m->xn, s), "output norm");
  if (c.head_dtype == bbcuda::kQ8_0) {
    M_CUDA(bbcuda::launch_q8_head(m->xn, m->head_d, m->head_q, rows, c.embed, c.vocab, m->xq,
                                  reinterpret_cast<float*>(m->u), m->logits, m->status, s),
           "q8 head");
  } else {
    M_CUDA(bbcuda::launch_dense(m->xn, c.head_dtype, m->head, rows, c.embed, c.vocab, m->logits, s), "head");
  }
  M_CUDA(bbcuda::launch_sample(m->logits, rows, c.vocab, top_k, temperature, seed, m->step, m->sample, m->ids, s), "sample");
  return BBC_OK;
}

int check_status(bbc_model* m) {
  DeviceStatus st{};
  M_CUDA(cudaMemcpyAsync(&st, m->status, sizeof st, cudaMemcpyDeviceToHost, m->stream), "status");
  M_CUDA(cudaMemsetAsync(m->status, 0xff, sizeof st, m->stream), "status");
  M_CUDA(cudaStreamSynchronize(m->stream), "status");
  if (st.nonfinite != ~0ull) return bbcuda::report(BBC_EDATA, "non-finite activation");
  if (st.bad_id != ~0ull) return bbcuda::report(BBC_EDATA, "token id outside the vocabulary");
  return BBC_OK;
}

}  // namespace

extern "C" {

int bbc_model_create(const bbc_model_config* cfg, bbc_model** out) {
  *out = nullptr;
  const bbc_model_config& c = *cfg;
  if (c.vocab <= 0 || c.embed <= 0 || c.layers <= 0 || c.heads <= 0 || c.kv_heads <= 0 || c.heads % c.kv_heads != 0 ||
      c.head_dim % 32 != 0 || c.head_dim > bbcuda::kAttnMaxHeadDim || c.ffn <= 0 || c.ctx <= 0 || c.max_batch <= 0 ||
      c.max_batch > 1024 || c.max_rows <= 0 || c.embed % bbcuda::kQ8Block != 0 ||
      (c.activation != 4 && c.activation != 5) || c.embd_dtype < 0 || c.embd_dtype > 3 || c.head_dtype < 0 ||
      c.head_dtype > 3) {
    return bbcuda::report(BBC_EARG, "model config outside what the CUDA decoder accepts");
  }
  auto* m = new bbc_model();
  m->c = c;
  auto fail = [&](int rc) {
    bbc_model_free(m);
    return rc;
  };
  if (cudaStreamCreateWithFlags(&m->stream, cudaStreamNonBlocking) != cudaSuccess) {
    delete m;
    return bbcuda::report(BBC_ECUDA, "stream");
  }
  const int rows = c.max_rows > c.max_batch ? c.max_rows : c.max_batch;
  const int qw = c.heads * c.head_dim, kvw = c.kv_heads * c.head_dim;
  const int widest = c.ffn > qw ? (c.ffn > c.embed ? c.ffn : c.embed) : (qw > c.embed ? qw : c.embed);
  m->xq_stride = pad16(widest);
  m->layers.resize(c.layers);
  const size_t cache = static_cast<size_t>(c.layers) * c.max_batch * c.ctx * kvw;
  int rc = BBC_OK;
  void* status = nullptr;
  if ((rc = m->alloc(&status, sizeof(DeviceStatus))) != BBC_OK) return fail(rc);
  m->status = static_cast<DeviceStatus*>(status);
  cudaMemsetAsync(m->status, 0xff, sizeof(DeviceStatus), m->stream);
  const size_t r = static_cast<size_t>(rows);
  if ((rc = m->alloc_t(&m->kcache, cache)) != BBC_OK || (rc = m->alloc_t(&m->vcache, cache)) != BBC_OK ||
      (rc = m->alloc_t(&m->h, r * c.embed)) != BBC_OK || (rc = m->alloc_t(&m->h1, r * c.embed)) != BBC_OK ||
      (rc = m->alloc_t(&m->xn, r * widest)) != BBC_OK || (rc = m->alloc_t(&m->xq, r * m->xq_stride)) != BBC_OK ||
      (rc = m->alloc_t(&m->xs, r * (widest / bbcuda::kQ8Block + 1))) != BBC_OK ||
      (rc = m->alloc_t(&m->q, r * qw)) != BBC_OK || (rc = m->alloc_t(&m->k, r * kvw)) != BBC_OK ||
      (rc = m->alloc_t(&m->v, r * kvw)) != BBC_OK || (rc = m->alloc_t(&m->att, r * qw)) != BBC_OK ||
      (rc = m->alloc_t(&m->g, r * c.ffn)) != BBC_OK || (rc = m->alloc_t(&m->u, r * (c.ffn > widest ? c.ffn : widest))) != BBC_OK ||
      (rc = m->alloc_t(&m->o, r * c.embed)) != BBC_OK ||
      (rc = m->alloc_t(&m->logits, static_cast<size_t>(c.max_batch) * c.vocab)) != BBC_OK ||
      (rc = m->alloc_t(&m->partial, bbcuda::attention_partial_floats(rows, c.heads, c.head_dim, c.ctx))) != BBC_OK ||
      (rc = m->alloc_t(&m->sample, static_cast<size_t>(c.max_batch) * bbcuda::kSampleScratch)) != BBC_OK ||
      (rc = m->alloc_t(&m->ids, r)) != BBC_OK || (rc = m->alloc_t(&m->pos, r)) != BBC_OK ||
      (rc = m->alloc_t(&m->step, 1)) != BBC_OK || (rc = m->alloc_t(&m->row_off, r)) != BBC_OK ||
      (rc = m->alloc_t(&m->embd, dense_bytes(c.embd_dtype, c.vocab, c.embed))) != BBC_OK ||
      (rc = m->alloc_t(&m->out_norm, c.embed)) != BBC_OK) {
    return fail(rc);
  }
  if (c.head_dtype == bbcuda::kQ8_0) {
    if ((rc = m->alloc_t(&m->head_d, static_cast<size_t>(c.vocab) * (c.embed / bbcuda::kQ8Block))) != BBC_OK ||
        (rc = m->alloc_t(&m->head_q, static_cast<size_t>(c.vocab) * c.embed)) != BBC_OK) {
      return fail(rc);
    }
  } else if (c.head_dtype == c.embd_dtype) {
    m->head = m->embd;  // tied until "output" is set
  } else if ((rc = m->alloc_t(&m->head, dense_bytes(c.head_dtype, c.vocab, c.embed))) != BBC_OK) {
    return fail(rc);
  }
  for (auto& L : m->layers) {
    if ((rc = m->alloc_t(&L.attn_norm, c.embed)) != BBC_OK || (rc = m->alloc_t(&L.attn_sub_norm, qw)) != BBC_OK ||
        (rc = m->alloc_t(&L.ffn_norm, c.embed)) != BBC_OK || (rc = m->alloc_t(&L.ffn_sub_norm, c.ffn)) != BBC_OK) {
      return fail(rc);
    }
    const int shapes[7][2] = {{qw, c.embed}, {kvw, c.embed}, {kvw, c.embed}, {c.embed, qw},
                              {c.ffn, c.embed}, {c.ffn, c.embed}, {c.embed, c.ffn}};
    Ternary* ts[7] = {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down};
    for (int t = 0; t < 7; ++t) {
      ts[t]->n = shapes[t][0];
      ts[t]->k = shapes[t][1];
      if ((rc = m->alloc_t(&ts[t]->w, static_cast<size_t>(ts[t]->n) * bbcuda::t2_padded_row_bytes(ts[t]->k))) != BBC_OK) {
        return fail(rc);
      }
    }
  }
  // The zeroing memsets ran on m->stream; uploads (cudaMemcpy, the legacy stream) must come after them.
  if (cudaStreamSynchronize(m->stream) != cudaSuccess) return fail(bbcuda::report(BBC_ECUDA, "model create"));
  *out = m;
  return BBC_OK;
}

void bbc_model_free(bbc_model* m) {
  if (m == nullptr) return;
  if (m->stream != nullptr) cudaStreamSynchronize(m->stream);
  for (void* p : m->owned) cudaFree(p);
  if (m->history != nullptr) cudaFree(m->history);
  if (m->stream != nullptr) cudaStreamDestroy(m->stream);
  delete m;
}

size_t bbc_model_bytes(const bbc_model* m) { return m->bytes; }

int bbc_model_set(bbc_model* m, int layer, const char* name, const void* host, size_t bytes, float gamma) {
  const bbc_model_config& c = m->c;
  const std::string n(name);
  const int qw = c.heads * c.head_dim, kvw = c.kv_heads * c.head_dim;
  if (layer < 0) {
    if (n == "token_embd") {
      if (bytes != dense_bytes(c.embd_dtype, c.vocab, c.embed)) return bbcuda::report(BBC_EARG, "token_embd size");
      M_CUDA(cudaMemcpy(m->embd, host, bytes, cudaMemcpyHostToDevice), "upload");
      return BBC_OK;
    }
    if (n == "output_norm") return upload_f32(m, &m->out_norm, c.embed, host, bytes);
    if (n == "output") {
      if (bytes != dense_bytes(c.head_dtype, c.vocab, c.embed)) return bbcuda::report(BBC_EARG, "output size");
      if (c.head_dtype == bbcuda::kQ8_0) {
        void* raw = nullptr;
        M_CUDA(cudaMalloc(&raw, bytes), "upload");
        M_CUDA(cudaMemcpy(raw, host, bytes, cudaMemcpyHostToDevice), "upload");
        M_CUDA(bbcuda::launch_repack_q8(static_cast<uint8_t*>(raw), c.vocab, c.embed, m->head_d, m->head_q, m->stream),
               "repack");
        M_CUDA(cudaStreamSynchronize(m->stream), "repack");
        cudaFree(raw);
        return BBC_OK;
      }
      if (m->head == m->embd) M_TRY(m->alloc_t(&m->head, bytes));
      M_CUDA(cudaMemcpy(m->head, host, bytes, cudaMemcpyHostToDevice), "upload");
      return BBC_OK;
    }
    return bbcuda::report(BBC_EARG, "unknown model tensor");
  }
  if (layer >= c.layers) return bbcuda::report(BBC_EARG, "layer out of range");
  Layer& L = m->layers[layer];
  if (n == "attn_norm") return upload_f32(m, &L.attn_norm, c.embed, host, bytes);
  if (n == "attn_sub_norm") return upload_f32(m, &L.attn_sub_norm, qw, host, bytes);
  if (n == "ffn_norm") return upload_f32(m, &L.ffn_norm, c.embed, host, bytes);
  if (n == "ffn_sub_norm") return upload_f32(m, &L.ffn_sub_norm, c.ffn, host, bytes);
  if (n == "wq") return upload_ternary(m, &L.wq, qw, c.embed, host, bytes, gamma);
  if (n == "wk") return upload_ternary(m, &L.wk, kvw, c.embed, host, bytes, gamma);
  if (n == "wv") return upload_ternary(m, &L.wv, kvw, c.embed, host, bytes, gamma);
  if (n == "wo") return upload_ternary(m, &L.wo, c.embed, qw, host, bytes, gamma);
  if (n == "w_gate") return upload_ternary(m, &L.w_gate, c.ffn, c.embed, host, bytes, gamma);
  if (n == "w_up") return upload_ternary(m, &L.w_up, c.ffn, c.embed, host, bytes, gamma);
  if (n == "w_down") return upload_ternary(m, &L.w_down, c.embed, c.ffn, host, bytes, gamma);
  return bbcuda::report(BBC_EARG, "unknown layer tensor");
}

int bbc_model_randomize(bbc_model* m, unsigned long long seed) {
  const bbc_model_config& c = m->c;
  cudaStream_t s = m->stream;
  if (c.embd_dtype != bbcuda::kF16 || (c.head_dtype != bbcuda::kF16 && c.head_dtype != bbcuda::kQ8_0)) {
    return bbcuda::report(BBC_EARG, "randomize: f16 embeddings and an f16 or q8_0 head");
  }
  M_CUDA(bbcuda::launch_random_f16(reinterpret_cast<uint16_t*>(m->embd), static_cast<size_t>(c.vocab) * c.embed, 1.0f,
                                   seed, s),
         "random");
  M_CUDA(bbcuda::launch_random_f32(m->out_norm, c.embed, 1.0f, 0.1f, seed + 1, s), "random");
  if (c.head_dtype == bbcuda::kQ8_0) {
    M_CUDA(bbcuda::launch_random_f32(m->head_d, static_cast<size_t>(c.vocab) * (c.embed / 32), 0.01f, 0.005f, seed + 2, s),
           "random");
    M_CUDA(bbcuda::launch_random_t2(reinterpret_cast<uint8_t*>(m->head_q), static_cast<size_t>(c.vocab) * c.embed, seed + 3,
                                    s),
           "random");
  }
  const int qw = c.heads * c.head_dim;
  for (int l = 0; l < c.layers; ++l) {
    Layer& L = m->layers[l];
    const unsigned long long ls = seed + 100ull * (l + 1);
    M_CUDA(bbcuda::launch_random_f32(L.attn_norm, c.embed, 1.0f, 0.1f, ls, s), "random");
    M_CUDA(bbcuda::launch_random_f32(L.attn_sub_norm, qw, 1.0f, 0.1f, ls + 1, s), "random");
    M_CUDA(bbcuda::launch_random_f32(L.ffn_norm, c.embed, 1.0f, 0.1f, ls + 2, s), "random");
    M_CUDA(bbcuda::launch_random_f32(L.ffn_sub_norm, c.ffn, 1.0f, 0.1f, ls + 3, s), "random");
    Ternary* ts[7] = {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down};
    for (int t = 0; t < 7; ++t) {
      // Random bytes are valid repacked words (any code decodes); γ keeps activations in range.
      M_CUDA(bbcuda::launch_random_t2(ts[t]->w, static_cast<size_t>(ts[t]->n) * bbcuda::t2_padded_row_bytes(ts[t]->k),
                                      ls + 10 + t, s),
             "random");
      ts[t]->gamma = 1.0f / std::sqrt(static_cast<float>(ts[t]->k));
    }
  }
  M_CUDA(cudaStreamSynchronize(s), "randomize");
  return BBC_OK;
}

int bbc_model_prefill(bbc_model* m, int slot, const int32_t* ids, int n, int pos0, int top_k, float temperature,
                      unsigned long long seed, int32_t* next_id) {
  const bbc_model_config& c = m->c;
  if (slot < 0 || slot >= c.max_batch || n <= 0 || n > c.max_rows || pos0 < 0 || pos0 + n > c.ctx) {
    return bbcuda::report(BBC_EARG, "prefill: slot, length or position out of range");
  }
  cudaStream_t s = m->stream;
  const long long base = static_cast<long long>(slot) * c.ctx * c.kv_heads * c.head_dim;
  M_CUDA(cudaMemcpyAsync(m->ids, ids, static_cast<size_t>(n) * 4, cudaMemcpyHostToDevice, s), "prefill ids");
  M_CUDA(cudaMemsetAsync(m->step, 0, 4, s), "prefill");
  M_CUDA(bbcuda::launch_fill_rows(m->row_off, m->pos, n, base, pos0, s), "prefill rows");
  M_CUDA(bbcuda::launch_embedding(m->ids, n, c.embd_dtype, m->embd, c.vocab, c.embed, m->h, m->status, s), "embedding");
  M_TRY(blocks(m, n, pos0 + n));
  M_TRY(head_and_sample(m, n - 1, 1, top_k, temperature, seed));
  M_CUDA(cudaMemcpyAsync(next_id, m->ids, 4, cudaMemcpyDeviceToHost, s), "prefill id");
  return check_status(m);
}

int bbc_model_decode(bbc_model* m, int batch, int steps, const int32_t* first, const int32_t* pos, int use_graph,
                     int top_k, float temperature, unsigned long long seed, int32_t* out_ids) {
  const bbc_model_config& c = m->c;
  if (batch <= 0 || batch > c.max_batch || steps <= 0) return bbcuda::report(BBC_EARG, "decode: batch or steps");
  for (int b = 0; b < batch; ++b) {
    if (pos[b] < 0 || pos[b] + steps > c.ctx) return bbcuda::report(BBC_EARG, "decode: context full");
  }
  cudaStream_t s = m->stream;
  const size_t hist = static_cast<size_t>(steps) * batch;
  if (hist > m->history_len) {
    if (m->history != nullptr) cudaFree(m->history);
    m->history = nullptr;
    M_CUDA(cudaMalloc(&m->history, hist * 4), "history");
    m->history_len = hist;
  }
  std::vector<long long> offs(batch);
  for (int b = 0; b < batch; ++b) offs[b] = static_cast<long long>(b) * c.ctx * c.kv_heads * c.head_dim;
  M_CUDA(cudaMemcpyAsync(m->ids, first, static_cast<size_t>(batch) * 4, cudaMemcpyHostToDevice, s), "decode");
  M_CUDA(cudaMemcpyAsync(m->pos, pos, static_cast<size_t>(batch) * 4, cudaMemcpyHostToDevice, s), "decode");
  M_CUDA(cudaMemcpyAsync(m->row_off, offs.data(), static_cast<size_t>(batch) * 8, cudaMemcpyHostToDevice, s), "decode");
  M_CUDA(cudaMemsetAsync(m->step, 0, 4, s), "decode");
  int max_keys = 0;
  for (int b = 0; b < batch; ++b) max_keys = pos[b] + steps > max_keys ? pos[b] + steps : max_keys;
  auto step = [&]() -> int {
    M_CUDA(bbcuda::launch_embedding(m->ids, batch, c.embd_dtype, m->embd, c.vocab, c.embed, m->h, m->status, s), "embedding");
    M_TRY(blocks(m, batch, max_keys));
    M_TRY(head_and_sample(m, 0, batch, top_k, temperature, seed));
    record_advance_kernel<<<1, 1024, 0, s>>>(m->ids, m->pos, m->step, m->history, batch);
    M_CUDA(cudaGetLastError(), "advance");
    return BBC_OK;
  };
  if (use_graph != 0) {
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    M_CUDA(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), "capture");
    const int rc = step();
    const cudaError_t end = cudaStreamEndCapture(s, &graph);
    if (rc != BBC_OK) return rc;
    M_CUDA(end, "capture");
    M_CUDA(cudaGraphInstantiate(&exec, graph, 0), "instantiate");
    cudaError_t e = cudaSuccess;
    for (int t = 0; t < steps && e == cudaSuccess; ++t) e = cudaGraphLaunch(exec, s);
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    M_CUDA(e, "graph launch");
  } else {
    for (int t = 0; t < steps; ++t) M_TRY(step());
  }
  M_CUDA(cudaMemcpyAsync(out_ids, m->history, hist * 4, cudaMemcpyDeviceToHost, s), "decode ids");
  return check_status(m);
}

}  // extern "C"
