// Load-time transcoders (see load.h). Single-threaded: they run once per tensor while the file is read and
// are bound by memory bandwidth, a small fraction of the JS time they replace.
#include "load.h"
#include "tq1.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#ifndef _WIN32
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

namespace barbell {
namespace {

// The low 2 bits of each byte of t, packed into one byte (byte i's field at bits 2i); as pack4 in repack.ts.
inline uint8_t pack4(uint32_t t) {
  uint32_t x = t & 0x03030303u;
  x = (x | (x >> 6)) & 0x000f000fu;
  return static_cast<uint8_t>((x | (x >> 12)) & 0xffu);
}

inline uint32_t load_u32(const uint8_t* p) {
  uint32_t w;
  std::memcpy(&w, p, 4);
  return w;  // little-endian hosts only (x64, arm64)
}

// One 32-byte group of 128 codes → 32 t2 bytes. I2_S holds element p + 32i at bits 6 − 2i of byte p,
// TQ2_0 at bits 2i (`reversed`). Returns false on a code 3.
inline bool group_to_t2(const uint8_t* src, uint8_t* dst, bool tq2, uint32_t* nonzero) {
  for (int g = 0; g < 8; ++g) {
    const uint32_t w = load_u32(src + 4 * g);
    if ((w & (w >> 1) & 0x55555555u) != 0) {
      return false;
    }
    *nonzero |= w ^ 0x55555555u;
    for (int i = 0; i < 4; ++i) {
      dst[8 * i + g] = pack4(w >> (tq2 ? 2 * i : 6 - 2 * i));
    }
  }
  return true;
}

constexpr int64_t kMaxElements = int64_t{1} << 50;

bool get_bytes(const Napi::CallbackInfo& info, size_t idx, const char* name, size_t needed, uint8_t** out) {
  const Napi::Value v = info[idx];
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    Napi::TypeError::New(info.Env(), std::string("[native-cpu] ") + name + " must be a Uint8Array").ThrowAsJavaScriptException();
    return false;
  }
  Napi::Uint8Array a = v.As<Napi::Uint8Array>();
  if (a.ElementLength() < needed) {
    Napi::RangeError::New(info.Env(), std::string("[native-cpu] ") + name + " holds " + std::to_string(a.ElementLength()) +
                                          " bytes, needs " + std::to_string(needed))
        .ThrowAsJavaScriptException();
    return false;
  }
  *out = a.Data();
  return true;
}

bool get_count(const Napi::CallbackInfo& info, size_t idx, const char* name, int64_t multiple, int64_t* out) {
  const Napi::Value v = info[idx];
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  if (!(d >= 0 && d <= static_cast<double>(kMaxElements)) || d != std::floor(d) || static_cast<int64_t>(d) % multiple != 0) {
    Napi::RangeError::New(info.Env(), std::string("[native-cpu] ") + name + " must be a count, a multiple of " + std::to_string(multiple))
        .ThrowAsJavaScriptException();
    return false;
  }
  *out = static_cast<int64_t>(d);
  return true;
}

// transcodeTernary(format, src, n, dst): n codes of I2_S (format 0; n % 128 == 0, src n/4 bytes), TQ2_0
// (format 1; n % 256 == 0, src n/256 blocks of 66 bytes) or TQ1_0 (format 2, blocks of 54 bytes; tq1.h) into n/4 t2 bytes. Returns −2 when the JS decoding
// path must decide (a code 3; for TQ2_0 also non-finite, differing, negative or zero scales of blocks with a
// non-zero code), else for TQ2_0 the fp16 bits of the one scale (−1: every block all zero), for I2_S 0.
Napi::Value TranscodeTernary(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t format = -1, n = 0;
  if (!get_count(info, 0, "format", 1, &format) || format > 2) {
    if (!env.IsExceptionPending()) {
      Napi::RangeError::New(env, "[native-cpu] transcodeTernary: format must be 0 (i2_s), 1 (tq2_0) or 2 (tq1_0)").ThrowAsJavaScriptException();
    }
    return env.Undefined();
  }
  const bool tq2 = format == 1;
  uint8_t* src = nullptr;
  uint8_t* dst = nullptr;
  if (!get_count(info, 2, "n", format == 0 ? 128 : 256, &n) ||
      !get_bytes(info, 1, "src", static_cast<size_t>(format == 2 ? n / 256 * 54 : tq2 ? n / 256 * 66 : n / 4), &src) ||
      !get_bytes(info, 3, "dst", static_cast<size_t>(n / 4), &dst)) {
    return env.Undefined();
  }
  if (format == 2) {
    return Napi::Number::New(env, tq1_0_to_t2(src, n, dst));
  }
  const int64_t groups = n / 128;
  if (!tq2) {
    uint32_t nonzero = 0;
    for (int64_t g = 0; g < groups; ++g) {
      if (!group_to_t2(src + 32 * g, dst + 32 * g, false, &nonzero)) {
        return Napi::Number::New(env, -2);
      }
    }
    return Napi::Number::New(env, 0);
  }
  int32_t scale = -1;
  for (int64_t b = 0; b < groups / 2; ++b) {
    const uint8_t* block = src + 66 * b;
    uint32_t nonzero = 0;
    if (!group_to_t2(block, dst + 64 * b, true, &nonzero) || !group_to_t2(block + 32, dst + 64 * b + 32, true, &nonzero)) {
      return Napi::Number::New(env, -2);
    }
    const int32_t d = block[64] | (block[65] << 8);
    if ((d & 0x7c00) == 0x7c00) {
      return Napi::Number::New(env, -2);
    }
    if (nonzero != 0) {
      if (scale == -1) {
        scale = d;
      }
      if (d != scale || (d & 0x8000) != 0 || (d & 0x7fff) == 0) {
        return Napi::Number::New(env, -2);
      }
    }
  }
  return Napi::Number::New(env, scale);
}

// float32 → binary16 bits, nearest even, overflow to ±inf: a port of f32BitsToHalfBits (src/quant/half.ts).
uint32_t half_bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const uint32_t abs = u & 0x7fffffffu;
  if (abs >= 0x7f800000u) {
    return abs == 0x7f800000u ? (sign | 0x7c00u) : (sign | 0x7e00u | ((abs >> 13) & 0x3ffu));
  }
  if (abs >= 0x477ff000u) {
    return sign | 0x7c00u;
  }
  const uint32_t e = abs >> 23;
  if (e >= 113) {
    const uint32_t mant = abs & 0x7fffffu;
    uint32_t h = ((e - 112) << 10) | (mant >> 13);
    const uint32_t rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u) == 1u)) {
      h++;
    }
    return sign | h;
  }
  if (e < 102) {
    return sign;
  }
  const uint32_t m = (abs & 0x7fffffu) | 0x800000u;
  const uint32_t shift = 126 - e;
  uint32_t q = m >> shift;
  const uint32_t rem = m & ((1u << shift) - 1u);
  const uint32_t half = 1u << (shift - 1);
  if (rem > half || (rem == half && (q & 1u) == 1u)) {
    q++;
  }
  return sign | q;
}

float half_to_float(uint32_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  float f;
  if (exp == 0) {
    f = std::ldexp(static_cast<float>(mant), -24);  // zero or subnormal: exact
    uint32_t u;
    std::memcpy(&u, &f, 4);
    u |= sign;
    std::memcpy(&f, &u, 4);
    return f;
  }
  const uint32_t u = sign | (exp == 31 ? (0xffu << 23) | (mant << 13) : ((exp + 112) << 23) | (mant << 13));
  std::memcpy(&f, &u, 4);
  return f;
}

inline float source_value(const uint8_t* src, int64_t format, int64_t i) {
  uint32_t u = 0;
  if (format == 0) {
    std::memcpy(&u, src + 4 * i, 4);
  } else {
    uint16_t h;
    std::memcpy(&h, src + 2 * i, 2);
    if (format == 1) {
      return half_to_float(h);
    }
    u = static_cast<uint32_t>(h) << 16;
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// encodeQ8_0(format, src, rows, cols, dst): f32 (0), f16 (1) or bf16 (2) rows to Q8_0 as Q8_0.encode in
// src/quant/formats/q8-0.ts does it: d = absmax/127 in float (NaN skipped), id = 1/d, q = roundf(x·id) clamped
// to int8 (NaN → 0), d stored as fp16 clamped to ±65504.
Napi::Value EncodeQ8(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t format = -1, rows = 0, cols = 0;
  if (!get_count(info, 0, "format", 1, &format) || format > 2) {
    if (!env.IsExceptionPending()) {
      Napi::RangeError::New(env, "[native-cpu] encodeQ8_0: format must be 0 (f32), 1 (f16) or 2 (bf16)").ThrowAsJavaScriptException();
    }
    return env.Undefined();
  }
  if (!get_count(info, 2, "rows", 1, &rows) || !get_count(info, 3, "cols", 32, &cols) || (cols > 0 && rows > kMaxElements / cols)) {
    if (!env.IsExceptionPending()) {
      Napi::RangeError::New(env, "[native-cpu] encodeQ8_0: rows × cols is too large").ThrowAsJavaScriptException();
    }
    return env.Undefined();
  }
  const int64_t n = rows * cols;
  uint8_t* src = nullptr;
  uint8_t* dst = nullptr;
  if (!get_bytes(info, 1, "src", static_cast<size_t>(n * (format == 0 ? 4 : 2)), &src) ||
      !get_bytes(info, 4, "dst", static_cast<size_t>(n / 32 * 34), &dst)) {
    return env.Undefined();
  }
  float x[32];
  for (int64_t b = 0; b < n / 32; ++b) {
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) {
      x[j] = source_value(src, format, 32 * b + j);
      const float a = std::fabs(x[j]);
      if (a > amax) {
        amax = a;
      }
    }
    const float d = amax / 127.0f;
    const float id = d == 0.0f ? 0.0f : 1.0f / d;
    uint32_t h = half_bits(d);
    if ((h & 0x7c00u) == 0x7c00u) {
      h = (h & 0x8000u) | 0x7bffu;
    }
    uint8_t* out = dst + 34 * b;
    out[0] = static_cast<uint8_t>(h & 0xffu);
    out[1] = static_cast<uint8_t>(h >> 8);
    for (int j = 0; j < 32; ++j) {
      const float r = std::round(x[j] * id);
      const int q = std::isnan(r) ? 0 : r > 127.0f ? 127 : r < -128.0f ? -128 : static_cast<int>(r);
      out[2 + j] = static_cast<uint8_t>(q & 0xff);
    }
  }
  return env.Undefined();
}

#ifndef _WIN32
struct Mapping {
  void* base;
  size_t size;
};

// mapRange(fd, offset, length): bytes [offset, offset + length) of an open regular file mapped copy-on-write
// (reads come from the page cache without a copy; a write changes only this process's copy, never the file),
// as an ArrayBuffer of exactly those bytes, unmapped when collected. undefined when it cannot be mapped:
// the caller reads instead. The caller keeps the range inside the file.
Napi::Value MapRange(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd = 0, offset = 0, length = 0;
  if (!get_count(info, 0, "fd", 1, &fd) || !get_count(info, 1, "offset", 1, &offset) || !get_count(info, 2, "length", 1, &length)) {
    return env.Undefined();
  }
  const int64_t page = static_cast<int64_t>(sysconf(_SC_PAGESIZE));
  const int64_t start = offset / page * page;
  const size_t size = static_cast<size_t>(length + (offset - start));
  if (length == 0 || page <= 0) {
    return env.Undefined();
  }
  void* base = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, static_cast<int>(fd), static_cast<off_t>(start));
  if (base == MAP_FAILED) {
    return env.Undefined();
  }
  Mapping* mapping = new Mapping{base, size};
  napi_value buffer = nullptr;
  const auto unmap = [](napi_env, void*, void* hint) {
    Mapping* m = static_cast<Mapping*>(hint);
    munmap(m->base, m->size);
    delete m;
  };
  if (napi_create_external_arraybuffer(env, static_cast<uint8_t*>(base) + (offset - start), static_cast<size_t>(length), unmap, mapping, &buffer) !=
      napi_ok) {
    munmap(base, size);
    delete mapping;
    if (env.IsExceptionPending()) {
      env.GetAndClearPendingException();
    }
    return env.Undefined();
  }
  return Napi::Value(env, buffer);
}

// releaseRange(buffer, offset, length): drops the whole pages inside [offset, offset + length) of a mapped
// range from this process (MADV_DONTNEED; they stay in the page cache and read back from the file if touched
// again). For ranges whose bytes were converted and are no longer read.
Napi::Value ReleaseRange(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArrayBuffer() || !info[1].IsNumber() || !info[2].IsNumber()) {
    Napi::TypeError::New(env, "[native-cpu] releaseRange(buffer, offset, length)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::ArrayBuffer buffer = info[0].As<Napi::ArrayBuffer>();
  const double offset = info[1].As<Napi::Number>().DoubleValue();
  const double length = info[2].As<Napi::Number>().DoubleValue();
  const double size = static_cast<double>(buffer.ByteLength());
  if (!(offset >= 0 && length >= 0 && offset + length <= size)) {
    Napi::RangeError::New(env, "[native-cpu] releaseRange: range outside the buffer").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t base = reinterpret_cast<uintptr_t>(buffer.Data());
  const uintptr_t begin = (base + static_cast<uintptr_t>(offset) + page - 1) / page * page;
  const uintptr_t end = (base + static_cast<uintptr_t>(offset + length)) / page * page;
  if (end > begin) {
    madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
  }
  return env.Undefined();
}
#endif

}  // namespace

void RegisterLoadCodecs(Napi::Env env, Napi::Object exports) {
  exports.Set("transcodeTernary", Napi::Function::New(env, TranscodeTernary));
  exports.Set("encodeQ8_0", Napi::Function::New(env, EncodeQ8));
#ifndef _WIN32
  exports.Set("mapRange", Napi::Function::New(env, MapRange));
  exports.Set("releaseRange", Napi::Function::New(env, ReleaseRange));
#endif
}

}  // namespace barbell
