// N-API entry points of barbell_native.node (node-addon-api, C++ exceptions disabled).
//
// Exports:
//   features()  → { best, flags, physicalCores, logicalCores }   (cheap; used by the child-process probe)
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
#include <string>
#include <vector>

#include "cpu_features.h"
#include "float_kernels.h"
#include "kernels.h"
#include "thread_pool.h"

namespace barbell {
namespace {

// A table for `isa`, with entries that path lacks taken from the scalar table.
IsaKernels table_for(Isa isa) {
  const IsaKernels* t = scalar_kernels();
  switch (isa) {
#if defined(__x86_64__) || defined(_M_X64)
    case Isa::kAvx2: t = avx2_kernels(); break;
    case Isa::kAvx512bw: t = avx512bw_kernels(); break;
    case Isa::kAvx512vnni: t = avx512vnni_kernels(); break;
#endif
#if defined(__aarch64__) || defined(_M_ARM64)
    case Isa::kNeon: t = neon_kernels(); break;
#endif
    default: break;
  }
  IsaKernels out = *t;
  const IsaKernels* s = scalar_kernels();
  if (out.ternary == nullptr) {
    out.ternary = s->ternary;
    out.ternary_block = s->ternary_block;
  }
  out.binary_i8 = out.binary_i8 != nullptr ? out.binary_i8 : s->binary_i8;
  out.binary_binary = out.binary_binary != nullptr ? out.binary_binary : s->binary_binary;
  out.dense = out.dense != nullptr ? out.dense : s->dense;
  return out;
}

// ---- argument helpers (return false after throwing a JS TypeError / RangeError) ----

template <typename T>
struct ArrayType;
template <> struct ArrayType<int8_t> { static constexpr napi_typedarray_type value = napi_int8_array; };
template <> struct ArrayType<uint8_t> { static constexpr napi_typedarray_type value = napi_uint8_array; };
template <> struct ArrayType<uint16_t> { static constexpr napi_typedarray_type value = napi_uint16_array; };
template <> struct ArrayType<int32_t> { static constexpr napi_typedarray_type value = napi_int32_array; };
template <> struct ArrayType<uint32_t> { static constexpr napi_typedarray_type value = napi_uint32_array; };
template <> struct ArrayType<float> { static constexpr napi_typedarray_type value = napi_float32_array; };

template <typename T>
bool get_array(const Napi::CallbackInfo& info, size_t idx, const char* name, size_t needed, T** out) {
  Napi::Env env = info.Env();
  const Napi::Value v = info[idx];
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != ArrayType<T>::value) {
    Napi::TypeError::New(env, std::string("[native-cpu] ") + name + " has the wrong typed array type")
        .ThrowAsJavaScriptException();
    return false;
  }
  Napi::TypedArrayOf<T> arr = v.As<Napi::TypedArrayOf<T>>();
  if (arr.ElementLength() < needed) {
    Napi::RangeError::New(env, std::string("[native-cpu] ") + name + " holds " + std::to_string(arr.ElementLength()) +
                                   " elements, needs " + std::to_string(needed))
        .ThrowAsJavaScriptException();
    return false;
  }
  *out = arr.Data();
  return true;
}

bool get_int(const Napi::CallbackInfo& info, size_t idx, const char* name, int64_t max, int64_t* out) {
  const Napi::Value v = info[idx];
  if (!v.IsNumber()) {
    Napi::TypeError::New(info.Env(), std::string("[native-cpu] ") + name + " must be a number")
        .ThrowAsJavaScriptException();
    return false;
  }
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= static_cast<double>(max)) || d != static_cast<double>(static_cast<int64_t>(d))) {
    Napi::RangeError::New(info.Env(), std::string("[native-cpu] ") + name + " out of range")
        .ThrowAsJavaScriptException();
    return false;
  }
  *out = static_cast<int64_t>(d);
  return true;
}

constexpr int64_t kMaxDim = 0x7fffffff;
// |Σ code·x| ≤ 2·128·K must fit int32 (codes are trit + 1).
constexpr int64_t kMaxK = 1 << 22;

double get_double(const Napi::CallbackInfo& info, size_t idx) { return info[idx].As<Napi::Number>().DoubleValue(); }

bool checked_product(int64_t a, int64_t b, size_t* out) {
  if (a != 0 && b > INT64_MAX / a) {
    return false;
  }
  *out = static_cast<size_t>(a * b);
  return true;
}

#define ARG_INT(var, idx, max)                                   \
  int64_t var = 0;                                                \
  if (!get_int(info, idx, #var, max, &var)) {                    \
    return info.Env().Undefined();                                \
  }
#define ARG_ARRAY(T, var, idx, needed)                           \
  T* var = nullptr;                                               \
  if (!get_array<T>(info, idx, #var, needed, &var)) {            \
    return info.Env().Undefined();                                \
  }

size_t prod(int64_t a, int64_t b) { return static_cast<size_t>(a) * static_cast<size_t>(b); }

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
                           InstanceMethod<&Context::Embedding>("embedding"),
                           InstanceMethod<&Context::RmsNorm>("rmsNorm"),
                           InstanceMethod<&Context::Rope>("rope"),
                           InstanceMethod<&Context::Softmax>("softmax"),
                           InstanceMethod<&Context::Attention>("attention"),
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
    isa_ = isa;
    table_ = table_for(isa);
    const int n = threads == 0 ? physical_cores() : static_cast<int>(threads);
    pool_ = std::make_unique<ThreadPool>(std::max(1, n));
  }

 private:
  bool alive(const Napi::CallbackInfo& info) {
    if (!pool_) {
      Napi::Error::New(info.Env(), "[native-cpu] context was disposed").ThrowAsJavaScriptException();
      return false;
    }
    return true;
  }

  // Splits n output columns into tasks of whole row chunks; single task for small problems.
  template <typename F>
  void parallel_rows(int n, size_t work_per_row, F&& fn) {
    const int threads = pool_->threads();
    const size_t total = work_per_row * static_cast<size_t>(n);
    if (threads <= 1 || total < (1u << 16) || n < 8) {
      fn(0, n);
      return;
    }
    // ~8 tasks per thread, rows a multiple of 4 (the SIMD tiles), for load balance.
    int chunk = std::max(4, (n + threads * 8 - 1) / (threads * 8));
    chunk = (chunk + 3) & ~3;
    const int tasks = (n + chunk - 1) / chunk;
    const std::function<void(int)> job = [&](int t) {
      const int j0 = t * chunk;
      fn(j0, std::min(n, j0 + chunk));
    };
    pool_->run(tasks, job);
  }

  Napi::Value GetIsa(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), isa_name(isa_)); }
  Napi::Value GetThreads(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), pool_ ? pool_->threads() : 0);
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
    const int block = table_.ternary_block;
    const size_t per = block == 0 ? 1 : 4 * static_cast<size_t>(block);
    const size_t stride = (static_cast<size_t>(k) + per - 1) / per * per;
    xp_.resize(std::max<size_t>(1, prod(m, static_cast<int64_t>(stride))));
    xsum_.resize(static_cast<size_t>(m));
    repack_x_planes(x, static_cast<int>(m), static_cast<int>(k), block, xp_.data(), stride, xsum_.data());
    TernaryArgs a{xp_.data(), stride, xsum_.data(), xs, gamma, w, row_bytes,
                  static_cast<int>(k), static_cast<int>(m), static_cast<int>(n), out};
    const auto fn = table_.ternary;
    parallel_rows(static_cast<int>(n), prod(m, k), [&](int j0, int j1) { fn(a, j0, j1); });
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
    const auto fn = table_.binary_i8;
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
    const auto fn = table_.binary_binary;
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
    if (m == 1 && table_.dense_gemv != nullptr) {
      // Decode GEMV: four weight rows per pass, rows split over the pool.
      const auto g = table_.dense_gemv;
      const int fmt = f16 ? kDenseF16 : kDenseF32;
      const uint8_t* wb = static_cast<const uint8_t*>(w);
      parallel_rows(static_cast<int>(n), prod(m, k), [&](int j0, int j1) {
        g(x, wb, fmt, static_cast<int>(k), 1, static_cast<int>(n), out, j0, j1);
      });
      return info.Env().Undefined();
    }
    DenseArgs a{x, w, f16, static_cast<int>(k), static_cast<int>(m), static_cast<int>(n), out};
    const auto fn = table_.dense;
    parallel_rows(static_cast<int>(n), prod(m, k), [&](int j0, int j1) { fn(a, j0, j1); });
    return info.Env().Undefined();
  }

  // denseQ8(x: Float32Array, w: Uint8Array (Q8_0 rows), m, k, n, out: Float32Array); k % 32 == 0
  Napi::Value DenseQ8(const Napi::CallbackInfo& info) {
    if (!alive(info)) {
      return info.Env().Undefined();
    }
    ARG_INT(m, 2, kMaxDim);
    ARG_INT(k, 3, kMaxDim);
    ARG_INT(n, 4, kMaxDim);
    if (k % 32 != 0) {
      Napi::RangeError::New(info.Env(), "[native-cpu] denseQ8: k must be a multiple of 32").ThrowAsJavaScriptException();
      return info.Env().Undefined();
    }
    size_t wn = 0;
    if (!checked_product(n, k / 32 * 34, &wn)) {
      Napi::RangeError::New(info.Env(), "[native-cpu] denseQ8: n·k overflows").ThrowAsJavaScriptException();
      return info.Env().Undefined();
    }
    ARG_ARRAY(float, x, 0, prod(m, k));
    ARG_ARRAY(uint8_t, w, 1, wn);
    ARG_ARRAY(float, out, 5, prod(m, n));
    if (m == 0 || n == 0 || k == 0) {
      if (k == 0) {
        std::fill(out, out + prod(m, n), 0.0f);
      }
      return info.Env().Undefined();
    }
    const auto g = table_.dense_gemv;
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
    const auto qf = table_.quantize != nullptr ? table_.quantize : quantize_rows;
    const int64_t bad = qf(x, static_cast<int>(m), static_cast<int>(k), q, scales);
    return Napi::Number::New(info.Env(), static_cast<double>(bad));
  }

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
    const auto rf = table_.rms_norm != nullptr ? table_.rms_norm : rms_norm;
    rf(x, w, static_cast<int>(rows), static_cast<int>(cols), get_double(info, 4), out);
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
    // cos / sin of each (position, pair) are cached per context for the last (theta, headDim): while
    // decoding, every layer rotates q and k at the same position, so they are computed once per token.
    const double theta = get_double(info, 5);
    const int half = static_cast<int>(headDim / 2);
    if (theta != rope_theta_ || half != rope_half_) {
      rope_theta_ = theta;
      rope_half_ = half;
      rope_cs_.clear();
      rope_sn_.clear();
      rope_have_.clear();
    }
    rope_tcs_.resize(prod(seq, half));
    rope_tsn_.resize(prod(seq, half));
    for (int64_t s = 0; s < seq; ++s) {
      const int32_t p = pos[s];
      double* cs = rope_tcs_.data() + s * half;
      double* sn = rope_tsn_.data() + s * half;
      const bool cacheable = p >= 0 && p < (1 << 20);
      const size_t at = static_cast<size_t>(cacheable ? p : 0);
      if (cacheable && at < rope_have_.size() && rope_have_[at]) {
        std::memcpy(cs, rope_cs_.data() + at * half, sizeof(double) * half);
        std::memcpy(sn, rope_sn_.data() + at * half, sizeof(double) * half);
        continue;
      }
      for (int j = 0; j < half; ++j) {
        const double angle = static_cast<double>(p) * std::pow(theta, (-2.0 * j) / static_cast<double>(headDim));
        cs[j] = std::cos(angle);
        sn[j] = std::sin(angle);
      }
      if (cacheable) {
        if (at >= rope_have_.size()) {
          rope_have_.resize(at + 1, 0);
          rope_cs_.resize((at + 1) * half);
          rope_sn_.resize((at + 1) * half);
        }
        std::memcpy(rope_cs_.data() + at * half, cs, sizeof(double) * half);
        std::memcpy(rope_sn_.data() + at * half, sn, sizeof(double) * half);
        rope_have_[at] = 1;
      }
    }
    rope_table(x, static_cast<int>(seq), static_cast<int>(heads), static_cast<int>(headDim), rope_tcs_.data(),
               rope_tsn_.data(), info[6].ToBoolean().Value(), out);
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

  // attention(q, k, v, seqQ, seqKV, nHead, nKvHead, headDim, pos0, scale, out)
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
    ARG_ARRAY(float, k, 1, kvn);
    ARG_ARRAY(float, v, 2, kvn);
    ARG_ARRAY(float, out, 10, qn);
    AttentionArgs a{q, k, v, static_cast<int>(seqQ), static_cast<int>(seqKV), static_cast<int>(nHead),
                    static_cast<int>(nKvHead), static_cast<int>(headDim), static_cast<int>(pos0), get_double(info, 9), out};
    const int pairs = static_cast<int>(seqQ * nHead);
    const int threads = pool_->threads();
    // Multiply-adds: Σ over rows of (keys seen) · headDim, twice (q·k and p·v), per head.
    const double work = 2.0 * static_cast<double>(seqQ) * nHead * headDim * (pos0 + (seqQ + 1) / 2.0);
    const bool split = threads > 1 && work >= 6.0e4 && pairs > 1;
    // Pairs per task: about 8 tasks per thread for balance (causal rows differ in length).
    const int chunk = split ? std::max(1, pairs / (threads * 8)) : pairs;
    const int tasks = (pairs + chunk - 1) / chunk;
    if (table_.attention != nullptr) {
      const auto fn = table_.attention;
      const size_t scratch = static_cast<size_t>(seqKV) + 64;
      auto body = [&](int t) {
        thread_local std::vector<float> local;  // one scratch per pool thread, kept between calls
        if (local.size() < scratch) {
          local.resize(scratch);
        }
        fn(a, t * chunk, std::min(pairs, (t + 1) * chunk), local.data());
      };
      if (!split || tasks == 1) {
        for (int t = 0; t < tasks; ++t) {
          body(t);
        }
      } else {
        const std::function<void(int)> job = body;
        pool_->run(tasks, job);
      }
      return info.Env().Undefined();
    }
    const size_t scratch = static_cast<size_t>(seqKV) + static_cast<size_t>(headDim);
    // Task t handles (row, head) pairs [t·chunk, (t+1)·chunk); `scratch` doubles of per-thread memory.
    auto body = [&](int t, double* scores) {
      double* sums = scores + seqKV;
      const int p1 = std::min(pairs, (t + 1) * chunk);
      for (int p = t * chunk; p < p1; ++p) {
        attention_one(a, p / static_cast<int>(nHead), p % static_cast<int>(nHead), scores, sums);
      }
    };
    if (!split || tasks == 1) {
      std::vector<double> buf(scratch);
      for (int t = 0; t < tasks; ++t) {
        body(t, buf.data());
      }
    } else {
      const std::function<void(int)> job = [&](int t) {
        thread_local std::vector<double> local;
        if (local.size() < scratch) {
          local.resize(scratch);
        }
        body(t, local.data());
      };
      pool_->run(tasks, job);
    }
    return info.Env().Undefined();
  }

  // unary(op, x, n, out)
  Napi::Value Unary(const Napi::CallbackInfo& info) {
    if (!alive(info)) {
      return info.Env().Undefined();
    }
    ARG_INT(op, 0, 8);
    ARG_INT(count, 2, INT64_MAX / 8);
    ARG_ARRAY(float, x, 1, static_cast<size_t>(count));
    ARG_ARRAY(float, out, 3, static_cast<size_t>(count));
    if (op == 5 && table_.silu != nullptr) {
      table_.silu(x, static_cast<size_t>(count), out);
    } else {
      unary(static_cast<int>(op), x, static_cast<size_t>(count), out);
    }
    return info.Env().Undefined();
  }

  // binary(op, a, aStrides: Float64Array, b, bStrides: Float64Array, shape: Float64Array, out)
  // The TS glue checked that every stride is a non-negative integer and every read stays in bounds.
  Napi::Value Binary(const Napi::CallbackInfo& info) {
    if (!alive(info)) {
      return info.Env().Undefined();
    }
    ARG_INT(op, 0, 5);
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
    binary_strided(static_cast<int>(op), a, as.data(), b, bs.data(), shape.data(), static_cast<int>(shape.size()), out);
    return info.Env().Undefined();
  }

  // binaryFlat(op, a, b, n, out): contiguous operands of the same length
  Napi::Value BinaryFlat(const Napi::CallbackInfo& info) {
    if (!alive(info)) {
      return info.Env().Undefined();
    }
    ARG_INT(op, 0, 5);
    ARG_INT(count, 3, INT64_MAX / 8);
    ARG_ARRAY(float, a, 1, static_cast<size_t>(count));
    ARG_ARRAY(float, b, 2, static_cast<size_t>(count));
    ARG_ARRAY(float, out, 4, static_cast<size_t>(count));
    binary_flat(static_cast<int>(op), a, b, static_cast<size_t>(count), out);
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
    pool_->run(tasks, [&](int t) {
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
    if (pool_) {
      pool_->stop();
      pool_.reset();
    }
    return info.Env().Undefined();
  }

  Isa isa_ = Isa::kScalar;
  IsaKernels table_{};
  std::unique_ptr<ThreadPool> pool_;
  std::vector<int8_t> xp_;
  std::vector<int32_t> xsum_;
  double rope_theta_ = -1;
  int rope_half_ = -1;
  std::vector<double> rope_cs_, rope_sn_, rope_tcs_, rope_tsn_;
  std::vector<uint8_t> rope_have_;
};

Napi::Value Features(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const CpuFeatures& f = cpu_features();
  Napi::Object o = Napi::Object::New(env);
  o.Set("best", isa_name(f.best));
  Napi::Array flags = Napi::Array::New(env, f.flags.size());
  for (size_t t = 0; t < f.flags.size(); ++t) {
    flags.Set(static_cast<uint32_t>(t), f.flags[t]);
  }
  o.Set("flags", flags);
  o.Set("physicalCores", physical_cores());
  o.Set("logicalCores", logical_cores());
  return o;
}

// Runs every integer kernel of the chosen path on a small odd-sized problem and compares it with the
// scalar path: an illegal instruction here kills the probe's child process, not the user's.
Napi::Value SelfTest(const Napi::CallbackInfo& info) {
  const std::string name = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  Isa isa;
  if (!parse_isa(name, cpu_features().best, &isa)) {
    return Napi::Boolean::New(info.Env(), false);
  }
  const IsaKernels t = table_for(isa);
  const IsaKernels* s = scalar_kernels();
  const int m = 5, k = 301, n = 13;
  const size_t row_bytes = (k + 3) / 4;
  std::vector<int8_t> x(static_cast<size_t>(m) * k);
  std::vector<uint8_t> w(n * row_bytes);
  uint32_t seed = 12345;
  auto rnd = [&seed] {
    seed = seed * 1664525u + 1013904223u;
    return seed >> 8;
  };
  for (auto& v : x) {
    v = static_cast<int8_t>(static_cast<int>(rnd() % 255) - 127);
  }
  for (auto& v : w) {
    v = static_cast<uint8_t>(rnd());
  }
  std::vector<float> xs(m, 3.0f), o1(static_cast<size_t>(m) * n), o2(static_cast<size_t>(m) * n);
  std::vector<int32_t> xsum(m);
  auto run = [&](const IsaKernels& table, std::vector<float>& out) {
    const int block = table.ternary_block;
    const size_t per = block == 0 ? 1 : 4 * static_cast<size_t>(block);
    const size_t stride = (static_cast<size_t>(k) + per - 1) / per * per;
    std::vector<int8_t> xp(stride * m);
    repack_x_planes(x.data(), m, k, block, xp.data(), stride, xsum.data());
    TernaryArgs a{xp.data(), stride, xsum.data(), xs.data(), 0.5f, w.data(), row_bytes, k, m, n, out.data()};
    table.ternary(a, 0, n);
  };
  run(t, o1);
  run(*s, o2);
  bool ok = std::memcmp(o1.data(), o2.data(), o1.size() * sizeof(float)) == 0;
  // Binary × int8 and the dense f16 path on the same data.
  std::vector<uint32_t> wb((k + 31) / 32 * n);
  for (auto& v : wb) {
    v = rnd() ^ (rnd() << 16);
  }
  BinaryI8Args b1{x.data(), xsum.data(), xs.data(), 0.25f, wb.data(), static_cast<size_t>((k + 31) / 32), k, m, n, o1.data()};
  BinaryI8Args b2 = b1;
  b2.out = o2.data();
  t.binary_i8(b1, 0, n);
  s->binary_i8(b2, 0, n);
  ok = ok && std::memcmp(o1.data(), o2.data(), o1.size() * sizeof(float)) == 0;
  std::vector<float> xf(static_cast<size_t>(m) * k, 0.5f);
  std::vector<uint16_t> wh(static_cast<size_t>(n) * k, 0x3c00);  // 1.0
  DenseArgs d1{xf.data(), wh.data(), true, k, m, n, o1.data()};
  t.dense(d1, 0, n);
  for (float v : o1) {
    ok = ok && v == 150.5f;
  }
  return Napi::Boolean::New(info.Env(), ok);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("features", Napi::Function::New(env, Features));
  exports.Set("selfTest", Napi::Function::New(env, SelfTest));
  exports.Set("Context", Context::Init(env));
  return exports;
}

}  // namespace
}  // namespace barbell

// NODE_API_MODULE pastes the name into an identifier, so it needs an unqualified function.
static Napi::Object BarbellInit(Napi::Env env, Napi::Object exports) { return barbell::Init(env, exports); }

NODE_API_MODULE(barbell_native, BarbellInit)
