// Argument helpers of the N-API entry points (addon.cc): each checks one JS argument (a typed array of the
// right element type and length, an integer in range, an element-wise op code of the generated enum) and
// returns false after throwing a JS TypeError / RangeError; the ARG_* macros return undefined from the
// method on that false. Included by addon.cc only (kept apart to hold the 800-line limit per file).
#pragma once

#include <napi.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "elementwise.h"
#include "ops.generated.h"

namespace barbell {

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

inline bool get_int(const Napi::CallbackInfo& info, size_t idx, const char* name, int64_t max, int64_t* out) {
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

// An element-wise op code from JS. Anything but a code of the generated enum (0 … count − 1) is a
// RangeError "unknown op code" (the TS glue turns it into a UsageError), never a default op.
inline bool get_op_code(const Napi::CallbackInfo& info, size_t idx, const char* kernel, int count, int64_t* out) {
  const Napi::Value v = info[idx];
  if (!v.IsNumber()) {
    Napi::TypeError::New(info.Env(), std::string("[native-cpu] ") + kernel + ": the op code must be a number")
        .ThrowAsJavaScriptException();
    return false;
  }
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d < count) || d != static_cast<double>(static_cast<int64_t>(d))) {
    std::ostringstream text;
    text << "[native-cpu] " << kernel << ": unknown op code " << d << " (this build has " << count << " " << kernel
         << " ops)";
    Napi::RangeError::New(info.Env(), text.str()).ThrowAsJavaScriptException();
    return false;
  }
  *out = static_cast<int64_t>(d);
  return true;
}

// A table op this build has no case for (elementwise.h): the TS glue never routes one here (it declares
// only the exported `unaryOps` / `binaryOps`), so a call is a caller's error, reported, never computed.
inline void unimplemented(const Napi::CallbackInfo& info, const char* kernel, const char* const* names, int count, int64_t code) {
  const std::string name = code >= 0 && code < count ? names[code] : std::to_string(code);
  Napi::RangeError::New(info.Env(), std::string("[native-cpu] ") + kernel + ": op " + name +
                                        " is not implemented by this build (see its unaryOps / binaryOps)")
      .ThrowAsJavaScriptException();
}

// The codes of `Enum` with a case in elementwise.h, as a JS array of numbers.
template <class Enum>
Napi::Array implemented_codes(Napi::Env env, int count) {
  Napi::Array list = Napi::Array::New(env);
  uint32_t n = 0;
  for (int code = 0; code < count; ++code) {
    if (elementwise::implements(static_cast<Enum>(code))) {
      list.Set(n++, Napi::Number::New(env, code));
    }
  }
  return list;
}

constexpr int64_t kMaxDim = 0x7fffffff;
// |Σ code·x| ≤ 2·128·K must fit int32 (codes are trit + 1).
constexpr int64_t kMaxK = 1 << 22;

inline double get_double(const Napi::CallbackInfo& info, size_t idx) { return info[idx].As<Napi::Number>().DoubleValue(); }

inline bool checked_product(int64_t a, int64_t b, size_t* out) {
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
#define ARG_OP(var, idx, Enum, kernel)                                         \
  ops::Enum var{};                                                              \
  {                                                                             \
    int64_t code = 0;                                                           \
    if (!get_op_code(info, idx, kernel, ops::k##Enum##Count, &code)) {          \
      return info.Env().Undefined();                                            \
    }                                                                           \
    var = static_cast<ops::Enum>(code);                                         \
    if (!elementwise::implements(var)) {                                        \
      unimplemented(info, kernel, ops::k##Enum##Names, ops::k##Enum##Count, code); \
      return info.Env().Undefined();                                            \
    }                                                                           \
  }
#define ARG_ARRAY(T, var, idx, needed)                           \
  T* var = nullptr;                                               \
  if (!get_array<T>(info, idx, #var, needed, &var)) {            \
    return info.Env().Undefined();                                \
  }

inline size_t prod(int64_t a, int64_t b) { return static_cast<size_t>(a) * static_cast<size_t>(b); }

}  // namespace barbell
