// N-API entry points of barbell_native.node (node-addon-api, C++ exceptions disabled).
//
// Exports:
//   features()  → { best, flags, physicalCores, logicalCores }   (cheap; used by the child-process probe)
//   opTableHash → the op table fingerprint this build was generated from (ops.generated.h)
//   unaryOps, binaryOps → the element-wise op codes this build implements (the cases of elementwise.h)
//   selfTest(isa?) → true when the chosen SIMD path matches the scalar path on a small problem
//   Context(threads, isa)  a thread pool bound to one ISA table, with one method per kernel.
//
// Every method re-checks that each typed array has the right element type and is long enough for the
// sizes it is given before any pointer is touched; the TS glue does the shape checks.
#include <napi.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "cpu_features.h"
#include "elementwise.h"
#include "float_kernels.h"
#include "kernels.h"
#include "kquant.h"
#include "kv_napi.h"
#include "layers.h"
#include "load.h"
#include "napi_args.h"
#include "probe.h"
#include "executor.h"
#include "ops.generated.h"
#include "thread_pool.h"
#include "train_kernels.h"

namespace barbell {
namespace {

// Argument helpers and the ARG_* macros: napi_args.h.

class Context : public Napi::ObjectWrap<Context> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Context",
                       {
                           InstanceAccessor<&Context::GetIsa>("isa"),
                           InstanceAccessor<&Context::GetThreads>("threads"),
                           InstanceMethod<&Context::Ternary>("ternary"),
                           InstanceMethod<&Context::BinaryI8>("binaryI8"),
                           InstanceMethod<&Context::BinaryBinary>("binaryBinary"),
                           InstanceMethod<&Context::Dense>("dense"),
                           InstanceMethod<&Context::DenseQ8>("denseQ8"),
                           InstanceMethod<&Context::Quantize>("quantize"),
                           InstanceMethod<&Context::Q8I8>("q8i8"),
                           InstanceMethod<&Context::Embedding>("embedding"),
                           InstanceMethod<&Context::DenseBlocks>("denseBlocks"),
                           InstanceMethod<&Context::EmbeddingBlocks>("embeddingBlocks"),
                           InstanceMethod<&Context::RmsNorm>("rmsNorm"),
                           InstanceMethod<&Context::Rope>("rope"),
                           InstanceMethod<&Context::Softmax>("softmax"),
                           InstanceMethod<&Context::Attention>("attention"),
                           InstanceMethod<&Context::Block>("block"),
                           InstanceMethod<&Context::Layers>("layers"),
                           InstanceMethod<&Context::Unary>("unary"),
                           InstanceMethod<&Context::Binary>("binary"),
                           InstanceMethod<&Context::BinaryFlat>("binaryFlat"),
                           InstanceMethod<&Context::Scale>("scale"),
                           InstanceMethod<&Context::ReadSum>("readSum"),
                           InstanceMethod<&Context::Dispose>("dispose"),
                       });
  }

  explicit Context(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Context>(info) {
    Napi::Env env = info.Env();
    int64_t threads = 0;
    if (!get_int(info, 0, "threads", 1024, &threads)) {
      return;
    }
    std::string isa_name_arg = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
    Isa isa;
    if (!parse_isa(isa_name_arg, cpu_features().best, &isa)) {
      Napi::TypeError::New(env, "[native-cpu] unknown ISA '" + isa_name_arg + "'").ThrowAsJavaScriptException();
      return;
    }
    const int n = threads == 0 ? physical_cores() : static_cast<int>(threads);
    exec_ = std::make_unique<Executor>(isa, std::max(1, n));
  }

 private:
  bool alive(const Napi::CallbackInfo& info) {
    if (!exec_ || !exec_->alive()) {
      Napi::Error::New(info.Env(), "[native-cpu] context was disposed").ThrowAsJavaScriptException();
      return false;
    }
    return true;
  }

  template <typename F>
  void parallel_rows(int n, size_t work_per_row, F&& fn) {
    exec_->parallel_rows(n, work_per_row, fn);
  }

  Napi::Value GetIsa(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), isa_name(exec_->isa())); }
  Napi::Value GetThreads(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), exec_ ? exec_->threads() : 0);
  }

  // ternary(x: Int8Array, xScale: Float32Array, w: Uint8Array, gamma, m, k, n, out: Float32Array)
  Napi::Value Ternary(const Napi::CallbackInfo& info) {
    if (!alive(info)) {
      return info.Env().Undefined();
    }
    ARG_INT(m, 4, kMaxDim);
    ARG_INT(k, 5, kMaxK);
    ARG_INT(n, 6, kMaxDim);
    const size_t row_bytes = static_cast<size_t>((k + 3) / 4);
    ARG_ARRAY(int8_t, x, 0, prod(m, k));
    ARG_ARRAY(float, xs, 1, static_cast<size_t>(m));
    ARG_ARRAY(uint8_t, w, 2, prod(n, static_cast<int64_t>(row_bytes)));
    ARG_ARRAY(float, out, 7, prod(m, n));
    const float gamma = static_cast<float>(get_double(info, 3));
    if (m == 0 || n == 0) {
      return info.Env().Undefined();
    }
    exec_->prepare_ternary(x, static_cast<int>(m), static_cast<int>(k));
    const TernaryTarget target{w, gamma, static_cast<int>(n), out};
    exec_->ternary_prepared(xs, static_cast<int>(m), static_cast<int>(k), &target, 1);
    return info.Env().Undefined();
  }

  // binaryI8(x: Int8Array, xScale: Float32Array, w: Uint32Array, beta, m, k, n, out: Float32Array)
  Napi::Value BinaryI8(const Napi::CallbackInfo& info) {
    if (!alive(info)) {
      return info.Env().Undefined();
    }
    ARG_INT(m, 4, kMaxDim);
    ARG_INT(k, 5, kMaxK);
    ARG_INT(n, 6, kMaxDim);
    const size_t row_words = static_cast<size_t>((k + 31) / 32);
    ARG_ARRAY(int8_t, x, 0, prod(m, k));
    ARG_ARRAY(float, xs, 1, static_cast<size_t>(m));
    ARG_ARRAY(uint32_t, w, 2, prod(n, static_cast<int64_t>(row_words)));
    ARG_ARRAY(float, out, 7, prod(m, n));
    const float beta = static_cast<float>(get_double(info, 3));
    if (m == 0 || n == 0) {
      return info.Env().Undefined();
    }
    xsum_.resize(static_cast<size_t>(m));
    for (int64_t i = 0; i < m; ++i) {
      int32_t s = 0;
      for (int64_t c = 0; c < k; ++c) {
        s += x[i * k + c];
      }
      xsum_[static_cast<size_t>(i)] = s;
    }
    BinaryI8Args a{x, xsum_.data(), xs, beta, w, row_words,
                   static_cast<int>(k), static_cast<int>(m), static_cast<int>(n), out};
    const auto fn = table().binary_i8;
    parallel_rows(static_cast<int>(n), prod(m, k), [&](int j0, int j1) { fn(a, j0, j1); });
    return info.Env().Undefined();
  }

  // binaryBinary(x: Uint32Array, w: Uint32Array, m, k, n, out: Int32Array)
  Napi::Value BinaryBinary(const Napi::CallbackInfo& info) {
    if (!alive(info)) {
      return info.Env().Undefined();
    }
    ARG_INT(m, 2, kMaxDim);
    ARG_INT(k, 3, kMaxK);
    ARG_INT(n, 4, kMaxDim);
    const size_t row_words = static_cast<size_t>((k + 31) / 32);
    ARG_ARRAY(uint32_t, x, 0, prod(m, static_cast<int64_t>(row_words)));
    ARG_ARRAY(uint32_t, w, 1, prod(n, static_cast<int64_t>(row_words)));
    ARG_ARRAY(int32_t, out, 5, prod(m, n));
    if (m == 0 || n == 0) {
      return info.Env().Undefined();
    }
    BinaryBinaryArgs a{x, w, row_words, static_cast<int>(k), static_cast<int>(m), static_cast<int>(n), out};
    const auto fn = table().binary_binary;
    parallel_rows(static_cast<int>(n), prod(m, static_cast<int64_t>(row_words)) * 8, [&](int j0, int j1) { fn(a, j0, j1); });
    return info.Env().Undefined();
  }

  // dense(x: Float32Array, w: Float32Array | Uint16Array (f16 bits), m, k, n, out: Float32Array)
  Napi::Value Dense(const Napi::CallbackInfo& info) {
    if (!alive(info)) {
      return info.Env().Undefined();
    }
    ARG_INT(m, 2, kMaxDim);
    ARG_INT(k, 3, kMaxDim);
    ARG_INT(n, 4, kMaxDim);
    size_t wn = 0;
    if (!checked_product(n, k, &wn)) {
      Napi::RangeError::New(info.Env(), "[native-cpu] dense: n·k overflows").ThrowAsJavaScriptException();
      return info.Env().Undefined();
    }
    ARG_ARRAY(float, x, 0, prod(m, k));
    ARG_ARRAY(float, out, 5, prod(m, n));
    const bool f16 = info[1].IsTypedArray() && info[1].As<Napi::TypedArray>().TypedArrayType() == napi_uint16_array;
    const void* w = nullptr;
    if (f16) {
      uint16_t* p = nullptr;
      if (!get_array<uint16_t>(info, 1, "w", wn, &p)) {
        return info.Env().Undefined();
      }
      w = p;
    } else {
      float* p = nullptr;
      if (!get_array<float>(info, 1, "w", wn, &p)) {
        return info.Env().Undefined();
      }
      w = p;
    }
    if (m == 0 || n == 0) {
      return info.Env().Undefined();
    }
    if (m == 1 && table().dense_gemv != nullptr) {
      // Decode GEMV: four weight rows per pass, rows split over the pool.
      const auto g = table().dense_gemv;
      const int fmt = f16 ? kDenseF16 : kDenseF32;
      const uint8_t* wb = static_cast<const uint8_t*>(w);
      parallel_rows(static_cast<int>(n), prod(m, k), [&](int j0, int j1) {
        g(x, wb, fmt, static_cast<int>(k), 1, static_cast<int>(n), out, j0, j1);
      });
      return info.Env().Undefined();
    }
    DenseArgs a{x, w, f16, static_cast<int>(k), static_cast<int>(m), static_cast<int>(n), out};
    const auto fn = table().dense;
    parallel_rows(static_cast<int>(n), prod(m, k), [&](int j0, int j1) { fn(a, j0, j1); });
    return info.Env().Undefined();
  }

  // The arguments shared by denseQ8 and q8i8: (x: Float32Array, w: Uint8Array (Q8_0 rows), m, k, n, out:
  // Float32Array), k a multiple of 32. False when a JS exception is pending. An empty product (k = 0) is
  // written as zeros here; the caller returns for any empty shape.
  struct Q8Call {
    int64_t m = 0, k = 0, n = 0;
    float* x = nullptr;
    uint8_t* w = nullptr;
    float* out = nullptr;
    bool empty() const { return m == 0 || n == 0 || k == 0; }
  };
  bool q8_args(const Napi::CallbackInfo& info, const char* op, Q8Call* c) {
    if (!get_int(info, 2, "m", kMaxDim, &c->m) || !get_int(info, 3, "k", kMaxDim, &c->k) || !get_int(info, 4, "n", kMaxDim, &c->n)) {
      return false;
    }
    if (c->k % 32 != 0) {
      Napi::RangeError::New(info.Env(), std::string("[native-cpu] ") + op + ": k must be a multiple of 32").ThrowAsJavaScriptException();
      return false;
    }
    size_t wn = 0;
    if (!checked_product(c->n, c->k / 32 * 34, &wn)) {
      Napi::RangeError::New(info.Env(), std::string("[native-cpu] ") + op + ": n·k overflows").ThrowAsJavaScriptException();
      return false;
    }
    if (!get_array<float>(info, 0, "x", prod(c->m, c->k), &c->x) || !get_array<uint8_t>(info, 1, "w", wn, &c->w) ||
        !get_array<float>(info, 5, "out", prod(c->m, c->n), &c->out)) {
      return false;
    }
    if (c->k == 0) {
      std::fill(c->out, c->out + prod(c->m, c->n), 0.0f);
    }
    return true;
  }

  // denseQ8(x: Float32Array, w: Uint8Array (Q8_0 rows), m, k, n, out: Float32Array); k % 32 == 0
  Napi::Value DenseQ8(const Napi::CallbackInfo& info) {
    Q8Call c;
    if (!alive(info) || !q8_args(info, "denseQ8", &c) || c.empty()) {
      return info.Env().Undefined();
    }
    const int64_t m = c.m, k = c.k, n = c.n;
    const float* x = c.x;
    const uint8_t* w = c.w;
    float* out = c.out;
    const auto g = table().dense_gemv;
    const int mi = static_cast<int>(m), ki = static_cast<int>(k), ni = static_cast<int>(n);
    parallel_rows(ni, prod(m, k), [&](int j0, int j1) {
      if (g != nullptr) {
        g(x, w, kDenseQ8, ki, mi, ni, out, j0, j1);
      } else {
        dense_q8_ref(x, w, ki, mi, ni, out, j0, j1);
      }
    });
    return info.Env().Undefined();
  }

  // quantize(x: Float32Array, m, k, q: Int8Array, scales: Float32Array) → −1 or first non-finite index
  Napi::Value Quantize(const Napi::CallbackInfo& info) {
    if (!alive(info)) {
      return info.Env().Undefined();
    }
    ARG_INT(m, 1, kMaxDim);
    ARG_INT(k, 2, kMaxDim);
    ARG_ARRAY(float, x, 0, prod(m, k));
    ARG_ARRAY(int8_t, q, 3, prod(m, k));
    ARG_ARRAY(float, scales, 4, static_cast<size_t>(m));
    const int64_t bad = exec_->quantize(x, static_cast<int>(m), static_cast<int>(k), q, scales);
    return Napi::Number::New(info.Env(), static_cast<double>(bad));
  }

  // q8i8(x: Float32Array, w: Uint8Array (Q8_0 rows), m, k, n, out: Float32Array) → −1 or the first
  // non-finite index of x. The integer Q8_0 head (Q8I8Args in kernels.h); k % 32 == 0.
  Napi::Value Q8I8(const Napi::CallbackInfo& info) {
    Q8Call c;
    if (!alive(info) || !q8_args(info, "q8i8", &c)) {
      return info.Env().Undefined();
    }
    if (c.empty()) {
      return Napi::Number::New(info.Env(), -1);
    }
    const int64_t m = c.m, k = c.k, n = c.n;
    const float* x = c.x;
    const uint8_t* w = c.w;
    float* out = c.out;
    const int mi = static_cast<int>(m), ki = static_cast<int>(k), ni = static_cast<int>(n);
    const size_t blocks = prod(m, k) / 32;
    AlignedVector<int8_t> xq(prod(m, k));  // on cache lines (aligned.h)
    std::vector<float> xinv(blocks);
    std::vector<int32_t> xsum(blocks);
    // Each 32-element block quantized like one BitNet activation row; then 1 / s and Σq per block.
    const int64_t bad = exec_->quantize(x, static_cast<int>(blocks), 32, xq.data(), xinv.data());
    if (bad >= 0) {
      return Napi::Number::New(info.Env(), static_cast<double>(bad));
    }
    for (size_t b = 0; b < blocks; ++b) {
      int32_t sum = 0;
      for (int c = 0; c < 32; ++c) {
        sum += xq[b * 32 + c];
      }
      xsum[b] = sum;
      xinv[b] = 1.0f / xinv[b];
    }
    const Q8I8Args a{xq.data(), xinv.data(), xsum.data(), w, ki, mi, ni, out};
    const auto fn = table().q8_i8;
    const int groups = (ni + 15) / 16;
    exec_->parallel_rows(groups, prod(m, k) * 16, [&](int g0, int g1) { fn(a, g0 * 16, std::min(ni, g1 * 16)); });
    return Napi::Number::New(info.Env(), -1);
  }

  // Block-format rows (kquant.h): k-quant dense heads, Q8_0 / k-quant embeddings.
  Napi::Value DenseBlocks(const Napi::CallbackInfo& info) { return alive(info) ? dense_blocks_napi(info, *exec_) : info.Env().Undefined(); }
  Napi::Value EmbeddingBlocks(const Napi::CallbackInfo& info) { return alive(info) ? embedding_blocks_napi(info) : info.Env().Undefined(); }

  // embedding(ids: Int32Array, seq, table: Float32Array | Uint16Array, vocab, embed, out) → −1 or bad position
  Napi::Value Embedding(const Napi::CallbackInfo& info) {
    if (!alive(info)) {
      return info.Env().Undefined();
    }
    ARG_INT(seq, 1, kMaxDim);
    ARG_INT(vocab, 3, kMaxDim);
    ARG_INT(embed, 4, kMaxDim);
    ARG_ARRAY(int32_t, ids, 0, static_cast<size_t>(seq));
    ARG_ARRAY(float, out, 5, prod(seq, embed));
    const bool f16 = info[2].IsTypedArray() && info[2].As<Napi::TypedArray>().TypedArrayType() == napi_uint16_array;
    const void* table = nullptr;
    if (f16) {
      uint16_t* p = nullptr;
      if (!get_array<uint16_t>(info, 2, "table", prod(vocab, embed), &p)) {
        return info.Env().Undefined();
      }
      table = p;
    } else {
      float* p = nullptr;
      if (!get_array<float>(info, 2, "table", prod(vocab, embed), &p)) {
        return info.Env().Undefined();
      }
      table = p;
    }
    const int64_t bad = embedding(ids, static_cast<int>(seq), table, f16, static_cast<int>(vocab),
                                  static_cast<int>(embed), out);
    return Napi::Number::New(info.Env(), static_cast<double>(bad));
  }

  // rmsNorm(x, weight | null, rows, cols, eps, out)
  Napi::Value RmsNorm(const Napi::CallbackInfo& info) {
    if (!alive(info)) {
      return info.Env().Undefined();
    }
    ARG_INT(rows, 2, kMaxDim);
    ARG_INT(cols, 3, kMaxDim);
    ARG_ARRAY(float, x, 0, prod(rows, cols));
    ARG_ARRAY(float, out, 5, prod(rows, cols));
    float* w = nullptr;
    if (!info[1].IsNull() && !info[1].IsUndefined() && !get_array<float>(info, 1, "weight", static_cast<size_t>(cols), &w)) {
      return info.Env().Undefined();
    }
    exec_->rms_norm(x, w, static_cast<int>(rows), static_cast<int>(cols), get_double(info, 4), out);
    return info.Env().Undefined();
  }

  // rope(x, seq, heads, headDim, positions: Int32Array, theta, neox: boolean, out)
  Napi::Value Rope(const Napi::CallbackInfo& info) {
    if (!alive(info)) {
      return info.Env().Undefined();
    }
    ARG_INT(seq, 1, kMaxDim);
    ARG_INT(heads, 2, kMaxDim);
    ARG_INT(headDim, 3, kMaxDim);
    const size_t total = prod(seq, heads) * static_cast<size_t>(headDim);
    ARG_ARRAY(float, x, 0, total);
    ARG_ARRAY(int32_t, pos, 4, static_cast<size_t>(seq));
    ARG_ARRAY(float, out, 7, total);
    exec_->rope(x, static_cast<int>(seq), static_cast<int>(heads), static_cast<int>(headDim), pos, get_double(info, 5),
                info[6].ToBoolean().Value(), out);
    return info.Env().Undefined();
  }

  // softmax(x, rows, cols, out)
  Napi::Value Softmax(const Napi::CallbackInfo& info) {
    if (!alive(info)) {
      return info.Env().Undefined();
    }
    ARG_INT(rows, 1, kMaxDim);
    ARG_INT(cols, 2, kMaxDim);
    ARG_ARRAY(float, x, 0, prod(rows, cols));
    ARG_ARRAY(float, out, 3, prod(rows, cols));
    softmax_rows(x, static_cast<int>(rows), static_cast<int>(cols), out);
    return info.Env().Undefined();
  }

  // attention(q, k, v, seqQ, seqKV, nHead, nKvHead, headDim, pos0, scale, out[, kvType])
  // kvType (KvType, float_kernels.h): 0 f32 (k, v Float32Arrays), 1 f16 / 2 q8_0 (k, v Uint8Arrays of cache rows).
  Napi::Value Attention(const Napi::CallbackInfo& info) {
    if (!alive(info)) {
      return info.Env().Undefined();
    }
    ARG_INT(seqQ, 3, kMaxDim);
    ARG_INT(seqKV, 4, kMaxDim);
    ARG_INT(nHead, 5, kMaxDim);
    ARG_INT(nKvHead, 6, kMaxDim);
    ARG_INT(headDim, 7, kMaxDim);
    ARG_INT(pos0, 8, kMaxDim);
    if (nKvHead == 0 || nHead % nKvHead != 0 || pos0 + seqQ > seqKV) {
      Napi::RangeError::New(info.Env(), "[native-cpu] attention: inconsistent sizes").ThrowAsJavaScriptException();
      return info.Env().Undefined();
    }
    const size_t qn = prod(seqQ, nHead) * static_cast<size_t>(headDim);
    const size_t kvn = prod(seqKV, nKvHead) * static_cast<size_t>(headDim);
    ARG_ARRAY(float, q, 0, qn);
    ARG_ARRAY(float, out, 10, qn);
    int64_t kvType = 0;
    if (info.Length() > 11 && !get_int(info, 11, "kvType", kKvQ8_0, &kvType)) {
      return info.Env().Undefined();
    }
    if (kvType == kKvQ8_0 && headDim % 32 != 0) {
      Napi::RangeError::New(info.Env(), "[native-cpu] attention: a q8_0 cache needs headDim % 32 == 0").ThrowAsJavaScriptException();
      return info.Env().Undefined();
    }
    float* k = nullptr;
    float* v = nullptr;
    if (kvType == kKvF32 ? !get_array<float>(info, 1, "k", kvn, &k) || !get_array<float>(info, 2, "v", kvn, &v)
                         : !kv_bytes_arg(info, 1, "k", kv_bytes(static_cast<int>(kvType), kvn), &k) ||
                               !kv_bytes_arg(info, 2, "v", kv_bytes(static_cast<int>(kvType), kvn), &v)) {
      return info.Env().Undefined();
    }
    AttentionArgs a{q, k, v, static_cast<int>(seqQ), static_cast<int>(seqKV), static_cast<int>(nHead),
                    static_cast<int>(nKvHead), static_cast<int>(headDim), static_cast<int>(pos0), get_double(info, 9), out};
    a.kv_type = static_cast<int>(kvType);
    exec_->attention(a);
    return info.Env().Undefined();
  }

  // block(h, out, pos: Int32Array, kCache, vCache, norms: Float32Array[4], weights: Uint8Array[7],
  //       gammas: Float64Array(7), dims: Float64Array(8), params: Float64Array(4)) → −1 or stage code
  // dims: seq, embed, heads, kvHeads, headDim, ffn, pos0, capacity; params: eps, theta, attnScale, relu2[, kvType]
  // (KvType; f16 / q8_0 caches are Uint8Arrays of cache rows, f32 ones Float32Arrays).
  // The fused BitNet block (block.cc). Every array is checked against the sizes in dims.
  Napi::Value Block(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!alive(info)) {
      return env.Undefined();
    }
    auto f64 = [&](size_t idx, size_t count, const char* name, double* out) {
      if (!info[idx].IsTypedArray() || info[idx].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
          info[idx].As<Napi::Float64Array>().ElementLength() < count) {
        Napi::TypeError::New(env, std::string("[native-cpu] block: ") + name + " must be a Float64Array of " +
                                      std::to_string(count)).ThrowAsJavaScriptException();
        return false;
      }
      const Napi::Float64Array arr = info[idx].As<Napi::Float64Array>();
      for (size_t t = 0; t < count; ++t) {
        out[t] = arr[t];
      }
      return true;
    };
    double d[8], p[5] = {0, 0, 0, 0, 0}, gam[7];
    const bool has_kv = info[9].IsTypedArray() && info[9].As<Napi::TypedArray>().ElementLength() >= 5;
    if (!f64(8, 8, "dims", d) || !f64(9, has_kv ? 5 : 4, "params", p) || !f64(7, 7, "gammas", gam)) {
      return env.Undefined();
    }
    const int kv_type = p[4] == 1 ? kKvF16 : p[4] == 2 ? kKvQ8_0 : kKvF32;
    if (p[4] != kv_type || (kv_type == kKvQ8_0 && static_cast<int64_t>(d[4]) % 32 != 0)) {
      Napi::RangeError::New(env, "[native-cpu] block: bad kv type").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    int64_t v[8];
    for (int t = 0; t < 8; ++t) {
      if (!(d[t] >= 0 && d[t] <= static_cast<double>(kMaxK)) || d[t] != static_cast<double>(static_cast<int64_t>(d[t]))) {
        Napi::RangeError::New(env, "[native-cpu] block: bad dimension").ThrowAsJavaScriptException();
        return env.Undefined();
      }
      v[t] = static_cast<int64_t>(d[t]);
    }
    const int64_t seq = v[0], embed = v[1], heads = v[2], kvHeads = v[3], headDim = v[4], ffn = v[5], pos0 = v[6],
                  capacity = v[7];
    // Batch mode: kCaches, vCaches (arrays of Float32Array, one per row) at 10 and 11.
    const bool batch = info.Length() > 11 && info[10].IsArray() && info[11].IsArray();
    if (seq == 0 || embed == 0 || heads == 0 || kvHeads == 0 || headDim == 0 || ffn == 0 || heads % kvHeads != 0 ||
        headDim % 2 != 0 || (!batch && pos0 + seq > capacity)) {
      Napi::RangeError::New(env, "[native-cpu] block: inconsistent sizes").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    const int64_t q = heads * headDim, kv = kvHeads * headDim;
    if (q > kMaxK) {
      Napi::RangeError::New(env, "[native-cpu] block: heads·headDim too large").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    ARG_ARRAY(float, h, 0, prod(seq, embed));
    ARG_ARRAY(float, out, 1, prod(seq, embed));
    ARG_ARRAY(int32_t, pos, 2, static_cast<size_t>(seq));
    float* kCache = nullptr;
    float* vCache = nullptr;
    std::vector<float*> kRows, vRows;
    if (batch) {
      const Napi::Array ks = info[10].As<Napi::Array>();
      const Napi::Array vs = info[11].As<Napi::Array>();
      if (ks.Length() != static_cast<uint32_t>(seq) || vs.Length() != static_cast<uint32_t>(seq)) {
        Napi::RangeError::New(env, "[native-cpu] block: one K and one V cache per row").ThrowAsJavaScriptException();
        return env.Undefined();
      }
      for (uint32_t b = 0; b < static_cast<uint32_t>(seq); ++b) {
        // Row b writes position pos[b] of its caches, so each must hold pos[b] + 1 rows.
        const Napi::Value kv_arrays[2] = {ks.Get(b), vs.Get(b)};
        for (int which = 0; which < 2; ++which) {
          const Napi::Value c = kv_arrays[which];
          if (!c.IsTypedArray() || c.As<Napi::TypedArray>().TypedArrayType() != (kv_type == kKvF32 ? napi_float32_array : napi_uint8_array)) {
            Napi::TypeError::New(env, "[native-cpu] block: caches must be Float32Arrays (Uint8Arrays for f16 / q8_0)").ThrowAsJavaScriptException();
            return env.Undefined();
          }
          const Napi::TypedArray ta = c.As<Napi::TypedArray>();
          (which == 0 ? kRows : vRows).push_back(reinterpret_cast<float*>(static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset()));
        }
      }
      ARG_ARRAY(int32_t, posCheck, 2, static_cast<size_t>(seq));
      for (uint32_t b = 0; b < static_cast<uint32_t>(seq); ++b) {
        const size_t klen = ks.Get(b).As<Napi::TypedArray>().ByteLength();
        const size_t vlen = vs.Get(b).As<Napi::TypedArray>().ByteLength();
        if (posCheck[b] < 0 || (static_cast<size_t>(posCheck[b]) + 1) * kv_bytes(kv_type, static_cast<size_t>(kv)) > std::min(klen, vlen)) {
          Napi::RangeError::New(env, "[native-cpu] block: row " + std::to_string(b) + "'s position does not fit its cache")
              .ThrowAsJavaScriptException();
          return env.Undefined();
        }
      }
    } else {
      const size_t cache_bytes = static_cast<size_t>(capacity) * kv_bytes(kv_type, static_cast<size_t>(kv));
      if (kv_type == kKvF32 ? !get_array<float>(info, 3, "kCache", prod(capacity, kv), &kCache) ||
                                  !get_array<float>(info, 4, "vCache", prod(capacity, kv), &vCache)
                            : !kv_bytes_arg(info, 3, "kCache", cache_bytes, &kCache) ||
                                  !kv_bytes_arg(info, 4, "vCache", cache_bytes, &vCache)) {
        return env.Undefined();
      }
    }
    if (h == out) {
      Napi::RangeError::New(env, "[native-cpu] block: out may not alias h").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    BlockArgs a{};
    const int64_t norm_len[4] = {embed, q, embed, ffn};
    // rows, cols of wq, wk, wv, wo, wGate, wUp, wDown
    const int64_t shape[7][2] = {{q, embed}, {kv, embed}, {kv, embed}, {embed, q}, {ffn, embed}, {ffn, embed}, {embed, ffn}};
    if (!info[5].IsArray() || !info[6].IsArray()) {
      Napi::TypeError::New(env, "[native-cpu] block: norms and weights must be arrays").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    const Napi::Array norms = info[5].As<Napi::Array>();
    const Napi::Array weights = info[6].As<Napi::Array>();
    for (uint32_t t = 0; t < 4; ++t) {
      const Napi::Value nv = norms.Get(t);
      if (!nv.IsTypedArray() || nv.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array ||
          nv.As<Napi::Float32Array>().ElementLength() < static_cast<size_t>(norm_len[t])) {
        Napi::TypeError::New(env, "[native-cpu] block: norm " + std::to_string(t) + " has the wrong type or length")
            .ThrowAsJavaScriptException();
        return env.Undefined();
      }
      a.norm[t] = nv.As<Napi::Float32Array>().Data();
    }
    for (uint32_t t = 0; t < 7; ++t) {
      const Napi::Value wv = weights.Get(t);
      const size_t bytes = prod(shape[t][0], (shape[t][1] + 3) / 4);
      if (!wv.IsTypedArray() || wv.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
          wv.As<Napi::Uint8Array>().ElementLength() < bytes) {
        Napi::TypeError::New(env, "[native-cpu] block: weight " + std::to_string(t) + " has the wrong type or length")
            .ThrowAsJavaScriptException();
        return env.Undefined();
      }
      a.w[t] = wv.As<Napi::Uint8Array>().Data();
      a.gamma[t] = static_cast<float>(gam[t]);
    }
    a.h = h;
    a.out = out;
    a.pos = pos;
    a.k_cache = kCache;
    a.v_cache = vCache;
    a.seq = static_cast<int>(seq);
    a.embed = static_cast<int>(embed);
    a.heads = static_cast<int>(heads);
    a.kv_heads = static_cast<int>(kvHeads);
    a.head_dim = static_cast<int>(headDim);
    a.ffn = static_cast<int>(ffn);
    a.pos0 = static_cast<int>(pos0);
    a.capacity = static_cast<int>(capacity);
    a.eps = p[0];
    a.theta = p[1];
    a.attn_scale = p[2];
    a.relu2 = p[3] != 0;
    a.kv_type = kv_type;
    if (batch) {
      a.batch = static_cast<int>(seq);
      a.k_caches = kRows.data();
      a.v_caches = vRows.data();
    }
    if (capture_block(a)) {  // layers.cc is preparing a layer stack: the arguments are its template
      return Napi::Number::New(env, -1);
    }
    return Napi::Number::New(env, exec_->bitnet_block(a));
  }

  // layers(stack, h, out, pos, kCaches, vCaches, dims): every block of a prepared stack (layers.cc).
  Napi::Value Layers(const Napi::CallbackInfo& info) { return alive(info) ? run_layers(*exec_, info) : info.Env().Undefined(); }

  // unary(op, x, n, out)
  Napi::Value Unary(const Napi::CallbackInfo& info) {
    if (!alive(info)) {
      return info.Env().Undefined();
    }
    ARG_OP(op, 0, Unary, "unary");
    ARG_INT(count, 2, INT64_MAX / 8);
    ARG_ARRAY(float, x, 1, static_cast<size_t>(count));
    ARG_ARRAY(float, out, 3, static_cast<size_t>(count));
    exec_->unary(op, x, static_cast<size_t>(count), out);
    return info.Env().Undefined();
  }

  // binary(op, a, aStrides: Float64Array, b, bStrides: Float64Array, shape: Float64Array, out)
  // The TS glue checked that every stride is a non-negative integer and every read stays in bounds.
  Napi::Value Binary(const Napi::CallbackInfo& info) {
    if (!alive(info)) {
      return info.Env().Undefined();
    }
    ARG_OP(op, 0, Binary, "binary");
    auto dims = [&](size_t idx, std::vector<int64_t>* v) {
      if (!info[idx].IsTypedArray() || info[idx].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
        Napi::TypeError::New(info.Env(), "[native-cpu] binary: strides must be a Float64Array").ThrowAsJavaScriptException();
        return false;
      }
      Napi::Float64Array arr = info[idx].As<Napi::Float64Array>();
      for (size_t t = 0; t < arr.ElementLength(); ++t) {
        const double d = arr[t];
        if (!(d >= 0 && d <= 9007199254740991.0) || d != static_cast<double>(static_cast<int64_t>(d))) {
          Napi::RangeError::New(info.Env(), "[native-cpu] binary: bad stride or size").ThrowAsJavaScriptException();
          return false;
        }
        v->push_back(static_cast<int64_t>(d));
      }
      return true;
    };
    std::vector<int64_t> as, bs, shape;
    if (!dims(2, &as) || !dims(4, &bs) || !dims(5, &shape)) {
      return info.Env().Undefined();
    }
    if (as.size() != shape.size() || bs.size() != shape.size() || shape.size() > 16) {
      Napi::RangeError::New(info.Env(), "[native-cpu] binary: rank mismatch").ThrowAsJavaScriptException();
      return info.Env().Undefined();
    }
    size_t total = 1;
    size_t a_last = 0, b_last = 0;
    bool empty = false;
    for (size_t d = 0; d < shape.size(); ++d) {
      total *= static_cast<size_t>(shape[d]);
      empty = empty || shape[d] == 0;
      if (shape[d] > 0) {
        a_last += static_cast<size_t>(shape[d] - 1) * static_cast<size_t>(as[d]);
        b_last += static_cast<size_t>(shape[d] - 1) * static_cast<size_t>(bs[d]);
      }
    }
    ARG_ARRAY(float, out, 6, total);
    if (empty) {
      return info.Env().Undefined();
    }
    ARG_ARRAY(float, a, 1, a_last + 1);
    ARG_ARRAY(float, b, 3, b_last + 1);
    binary_strided(op, a, as.data(), b, bs.data(), shape.data(), static_cast<int>(shape.size()), out);
    return info.Env().Undefined();
  }

  // binaryFlat(op, a, b, n, out): contiguous operands of the same length
  Napi::Value BinaryFlat(const Napi::CallbackInfo& info) {
    if (!alive(info)) {
      return info.Env().Undefined();
    }
    ARG_OP(op, 0, Binary, "binary");
    ARG_INT(count, 3, INT64_MAX / 8);
    ARG_ARRAY(float, a, 1, static_cast<size_t>(count));
    ARG_ARRAY(float, b, 2, static_cast<size_t>(count));
    ARG_ARRAY(float, out, 4, static_cast<size_t>(count));
    exec_->binary_flat(op, a, b, static_cast<size_t>(count), out);
    return info.Env().Undefined();
  }

  // scale(x, factor, n, out)
  Napi::Value Scale(const Napi::CallbackInfo& info) {
    if (!alive(info)) {
      return info.Env().Undefined();
    }
    ARG_INT(count, 2, INT64_MAX / 8);
    ARG_ARRAY(float, x, 0, static_cast<size_t>(count));
    ARG_ARRAY(float, out, 3, static_cast<size_t>(count));
    scale(x, static_cast<float>(get_double(info, 1)), static_cast<size_t>(count), out);
    return info.Env().Undefined();
  }

  // Sums `bytes` as 64-bit words over the pool: a memory read-bandwidth probe for the benchmark's
  // ceiling (each thread streams its own 1 MiB slices). Returns the sum so the reads cannot be elided.
  Napi::Value ReadSum(const Napi::CallbackInfo& info) {
    if (!alive(info)) {
      return info.Env().Undefined();
    }
    ARG_INT(words, 1, INT64_MAX / 8);
    ARG_ARRAY(uint8_t, data, 0, static_cast<size_t>(words) * 8);
    const size_t n = static_cast<size_t>(words);
    const size_t slice = (1u << 20) / 8;
    const int tasks = static_cast<int>((n + slice - 1) / slice);
    std::vector<uint64_t> partial(static_cast<size_t>(tasks), 0);
    exec_->pool().run(tasks, [&](int t) {
      const size_t begin = static_cast<size_t>(t) * slice;
      const size_t end = std::min(n, begin + slice);
      uint64_t a = 0, b = 0, c = 0, d = 0;
      size_t i = begin;
      for (; i + 4 <= end; i += 4) {
        uint64_t w[4];
        std::memcpy(w, data + i * 8, sizeof w);
        a += w[0];
        b += w[1];
        c += w[2];
        d += w[3];
      }
      for (; i < end; i++) {
        uint64_t w;
        std::memcpy(&w, data + i * 8, sizeof w);
        a += w;
      }
      partial[static_cast<size_t>(t)] = a + b + c + d;
    });
    uint64_t sum = 0;
    for (uint64_t p : partial) {
      sum += p;
    }
    return Napi::Number::New(info.Env(), static_cast<double>(sum));
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    if (exec_) {
      exec_->stop();
    }
    return info.Env().Undefined();
  }

  const IsaKernels& table() const { return exec_->table(); }

  std::unique_ptr<Executor> exec_;
  std::vector<int32_t> xsum_;
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("features", Napi::Function::New(env, Features));
  exports.Set("selfTest", Napi::Function::New(env, SelfTest));
  exports.Set("Context", Context::Init(env));
  exports.Set("opTableHash", Napi::Number::New(env, static_cast<double>(ops::kOpTableHash)));
  exports.Set("unaryOps", implemented_codes<ops::Unary>(env, ops::kUnaryCount));
  exports.Set("binaryOps", implemented_codes<ops::Binary>(env, ops::kBinaryCount));
  RegisterLoadCodecs(env, exports);
  RegisterTrainKernels(env, exports);
  RegisterLayers(env, exports);
  return exports;
}

}  // namespace
}  // namespace barbell

// NODE_API_MODULE pastes the name into an identifier, so it needs an unqualified function.
static Napi::Object BarbellInit(Napi::Env env, Napi::Object exports) { return barbell::Init(env, exports); }

NODE_API_MODULE(barbell_native, BarbellInit)
