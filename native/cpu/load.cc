// Load-time transcoders (see load.h). Single-threaded: they run once per tensor while the file is read and
// are bound by memory bandwidth, a small fraction of the JS time they replace.
#include "load.h"
#include "cpu_features.h"
#include "kernels.h"
#include "kv_cache.h"
#include "load_transcode.h"
#include "populate.h"
#include "tq1.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <utility>
#include <vector>

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

// n codes of I2_S (format 0) or TQ2_0 (format 1) at src into n/4 t2 bytes at dst (load_transcode.h) with
// the ISA's group kernel: AVX2 where `isa` allows it, else scalar. One thread.
int32_t transcode_2bit(Isa isa, int64_t format, const uint8_t* src, int64_t n, uint8_t* dst) {
#if defined(__x86_64__) || defined(_M_X64)
  if (isa >= Isa::kAvx2) {
    return transcode_2bit_avx2(format, src, n, dst);
  }
#endif
  (void)isa;
  return transcode_2bit_with(group_to_t2, format, src, n, dst);
}

// Codes per thread below which a transcode runs on the calling thread alone.
constexpr int64_t kParallelCodes = int64_t{1} << 22;
constexpr unsigned kMaxLoadThreads = 8;

// How many threads (up to kMaxLoadThreads, at least kParallelCodes values each) a load conversion of n values uses.
unsigned load_parts(int64_t n) {
  const unsigned hw = std::max(1u, std::min(kMaxLoadThreads, std::thread::hardware_concurrency()));
  return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>(hw, n / kParallelCodes)));
}

// run(p) for p in [0, parts): p = 0 on the calling thread, the others on threads of their own, joined.
template <typename Run>
void run_parts(unsigned parts, const Run& run) {
  std::vector<std::thread> threads;
  threads.reserve(parts - 1);
  for (unsigned p = 1; p < parts; ++p) {
    threads.emplace_back(run, p);
  }
  run(0);
  for (std::thread& t : threads) {
    t.join();
  }
}

// transcode_2bit over up to kMaxLoadThreads threads, in chunks of whole blocks; the chunks' results combined
// as one pass would give them (−2 if any chunk says so or two chunks found different scales).
int32_t transcode_2bit_parallel(Isa isa, int64_t format, const uint8_t* src, int64_t n, uint8_t* dst) {
  const int64_t block = format == 0 ? 128 : 256;
  const int64_t src_block = format == 0 ? 32 : 66;
  const int64_t blocks = n / block;
  const unsigned parts = load_parts(n);
  if (parts == 1) {
    return transcode_2bit(isa, format, src, n, dst);
  }
  std::vector<int32_t> results(parts, 0);
  run_parts(parts, [&](unsigned p) {
    const int64_t b0 = blocks * p / parts;
    const int64_t b1 = blocks * (p + 1) / parts;
    results[p] = transcode_2bit(isa, format, src + b0 * src_block, (b1 - b0) * block, dst + b0 * block / 4);
  });
  int32_t scale = format == 0 ? 0 : -1;
  for (const int32_t r : results) {
    if (r == -2 || (format == 1 && r != -1 && scale != -1 && r != scale)) {
      return -2;
    }
    if (format == 1 && r != -1) {
      scale = r;
    }
  }
  return scale;
}

// transcodeTernary(format, src, n, dst, isa?): n codes of I2_S (format 0; n % 128 == 0, src n/4 bytes), TQ2_0
// (format 1; n % 256 == 0, src n/256 blocks of 66 bytes) or TQ1_0 (format 2, blocks of 54 bytes; tq1.h) into n/4 t2 bytes. Returns −2 when the JS decoding
// path must decide (a code 3; for TQ2_0 also non-finite, differing, negative or zero scales of blocks with a
// non-zero code), else for TQ2_0 the fp16 bits of the one scale (−1: every block all zero), for I2_S 0. `isa`
// ("scalar", "avx2", …; parse_isa) forces a lower path for I2_S / TQ2_0 (tests compare the paths with it).
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
  Isa isa = cpu_features().best;
  if (info.Length() > 4 && !info[4].IsUndefined() &&
      (!info[4].IsString() || !parse_isa(info[4].As<Napi::String>().Utf8Value(), cpu_features().best, &isa))) {
    Napi::RangeError::New(env, "[native-cpu] transcodeTernary: isa must be an ISA path name").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (format == 2) {
    return Napi::Number::New(env, tq1_0_to_t2(src, n, dst));
  }
  return Napi::Number::New(env, transcode_2bit_parallel(isa, format, src, n, dst));
}

// firstCode3(bytes): the index of the first byte of t2 codes holding the 2-bit code 3, or −1; what
// firstCode3 in src/tensor/ops/quant.ts answers, eight bytes at a time.
Napi::Value FirstCode3(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint8_t* p = nullptr;
  if (!get_bytes(info, 0, "bytes", 0, &p)) {
    return env.Undefined();
  }
  const size_t n = info[0].As<Napi::Uint8Array>().ElementLength();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    if ((w & (w >> 1) & 0x5555555555555555ULL) != 0) {
      break;
    }
  }
  for (; i < n; ++i) {
    if ((p[i] & (p[i] >> 1) & 0x55) != 0) {
      return Napi::Number::New(env, static_cast<double>(i));
    }
  }
  return Napi::Number::New(env, -1);
}

#include "q6k_encode.inc"

// Hints for fresh memory at `dst` that a conversion fills once: its page tables filled in one call per 2 MiB window
// (populate_for_write) instead of a page fault per 4 KiB, as transparent huge pages where a window lies wholly inside
// `memory` (the ArrayBuffer holding dst, where the caller knows it; else dst's own bytes). The source side is
// readable()'s populate. Together, for the 2B's F16 head requantized on first use: 262k → 131k faults per process,
// ~1 CPU s less; its ternary projections: 180k → 126k (AMD EPYC Zen 5 class, Linux 6.18, loaded). Projections
// smaller than 2 MiB (the 700M's, the 2B's attention) get huge pages since their codes share arena ArrayBuffers
// (host-memory.ts ByteArena). Only hints: errors are ignored, and where the kernel lacks them nothing changes.
void prefault_destination(uint8_t* dst, size_t bytes, std::pair<uintptr_t, uintptr_t> memory = {0, 0}) {
  const uintptr_t lo = reinterpret_cast<uintptr_t>(dst);
  if (memory.second <= memory.first) {
    memory = {lo, lo + bytes};
  }
  populate_for_write(lo, lo + bytes, lo, lo + bytes, memory.first, memory.second);
}

// The [begin, end) addresses of the ArrayBuffer under the Uint8Array argument idx (get_bytes checked its type).
std::pair<uintptr_t, uintptr_t> buffer_bounds(const Napi::CallbackInfo& info, size_t idx) {
  Napi::ArrayBuffer buffer = info[idx].As<Napi::Uint8Array>().ArrayBuffer();
  const uintptr_t data = reinterpret_cast<uintptr_t>(buffer.Data());
  return {data, data + buffer.ByteLength()};
}

// False when pages of [p, p + n) of a file mapping cannot be read because the file became shorter than the
// mapping (truncated or rewritten on disk after it was opened): reading them would end the process with SIGBUS,
// populating them fails with EFAULT instead. Also fills their page tables in one call. True where the kernel
// lacks MADV_POPULATE_READ (no check there). A truncation between this check and the read is not caught.
bool readable(const uint8_t* p, size_t n) {
#if defined(__linux__)
  if (n == 0) {
    return true;
  }
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = reinterpret_cast<uintptr_t>(p) / page * page;
  const uintptr_t end = (reinterpret_cast<uintptr_t>(p) + n + page - 1) / page * page;
  return populate_pages(begin, end, false) != EFAULT;
#else
  (void)p, (void)n;
  return true;
#endif
}

// Blocks of 32 source values (f32 0, f16 1, bf16 2) to Q8_0 (encode_q8_0_block, kv_cache.h): the AVX2 path
// (load_avx2.cc, the same bytes) where `isa` allows it, else scalar.
void encode_q8_0_blocks(Isa isa, int64_t format, const uint8_t* src, int64_t blocks, uint8_t* dst) {
#if defined(__x86_64__) || defined(_M_X64)
  if (isa >= Isa::kAvx2) {
    encode_q8_0_avx2(format, src, blocks, dst);
    return;
  }
#endif
  (void)isa;
  float x[32];
  for (int64_t b = 0; b < blocks; ++b) {
    for (int j = 0; j < 32; ++j) {
      x[j] = source_value(src, format, 32 * b + j);
    }
    encode_q8_0_block(x, dst + 34 * b);
  }
}

// Blocks of 256 source values (f32 0, f16 1, bf16 2) to Q6_K (q6k_encode.inc): the unit compiled for the widest
// path `isa` allows (load_avx512.cc, load_avx2.cc: the same source, so the same bytes), else this one.
void encode_q6_k_blocks(Isa isa, int64_t format, const uint8_t* src, int64_t blocks, uint8_t* dst) {
#if defined(__x86_64__) || defined(_M_X64)
  if (isa >= Isa::kAvx512bw) {
    encode_q6_k_avx512(format, src, blocks, dst);
    return;
  }
  if (isa >= Isa::kAvx2) {
    encode_q6_k_avx2(format, src, blocks, dst);
    return;
  }
#endif
  (void)isa;
  encode_q6_k_source(format, src, blocks, dst);
}

// encodeQ8_0 / encodeQ6_K(format, src, rows, cols, dst, isa?): f32 (0), f16 (1) or bf16 (2) rows to Q8_0 / Q6_K as
// Q8_0.encode / Q6_K.encode in src/quant/formats do it (cols a multiple of the block: 32 / 256), over up to
// kMaxLoadThreads threads for large inputs (blocks are independent: the same bytes for any split). `isa` ("scalar",
// "avx2", …) forces a lower path. True, or false (nothing written) when src is a file mapping that became shorter
// (readable). `cost`: the encoder's work per value relative to Q8_0's, which lowers the size at which it is split.
template <int64_t kBlock, int64_t kBlockBytes, int64_t kCost, void (*Encode)(Isa, int64_t, const uint8_t*, int64_t, uint8_t*)>
Napi::Value EncodeRows(const Napi::CallbackInfo& info, const char* name) {
  Napi::Env env = info.Env();
  const std::string fn = std::string("[native-cpu] ") + name + ": ";
  int64_t format = -1, rows = 0, cols = 0;
  if (!get_count(info, 0, "format", 1, &format) || format > 2) {
    if (!env.IsExceptionPending()) {
      Napi::RangeError::New(env, fn + "format must be 0 (f32), 1 (f16) or 2 (bf16)").ThrowAsJavaScriptException();
    }
    return env.Undefined();
  }
  if (!get_count(info, 2, "rows", 1, &rows) || !get_count(info, 3, "cols", kBlock, &cols) || (cols > 0 && rows > kMaxElements / cols)) {
    if (!env.IsExceptionPending()) {
      Napi::RangeError::New(env, fn + "rows × cols is too large").ThrowAsJavaScriptException();
    }
    return env.Undefined();
  }
  const int64_t n = rows * cols;
  const int64_t width = format == 0 ? 4 : 2;
  uint8_t* src = nullptr;
  uint8_t* dst = nullptr;
  if (!get_bytes(info, 1, "src", static_cast<size_t>(n * width), &src) ||
      !get_bytes(info, 4, "dst", static_cast<size_t>(n / kBlock * kBlockBytes), &dst)) {
    return env.Undefined();
  }
  Isa isa = cpu_features().best;
  if (info.Length() > 5 && !info[5].IsUndefined() &&
      (!info[5].IsString() || !parse_isa(info[5].As<Napi::String>().Utf8Value(), cpu_features().best, &isa))) {
    Napi::RangeError::New(env, fn + "isa must be an ISA path name").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (!readable(src, static_cast<size_t>(n * width))) {
    return Napi::Boolean::New(env, false);  // a mapped file became shorter (readable)
  }
  const int64_t blocks = n / kBlock;
  const unsigned parts = load_parts(n * kCost);
  run_parts(parts, [&](unsigned p) {
    const int64_t b0 = blocks * p / parts;
    const int64_t b1 = blocks * (p + 1) / parts;
    prefault_destination(dst + b0 * kBlockBytes, static_cast<size_t>((b1 - b0) * kBlockBytes));
    Encode(isa, format, src + b0 * kBlock * width, b1 - b0, dst + b0 * kBlockBytes);
  });
  return Napi::Boolean::New(env, true);
}

// The Q6_K fit takes ~3 times the Q8_0 encoder's time per value (2B head: 0.65 / 0.22 CPU s), so it is split at a
// quarter of the size.
Napi::Value EncodeQ8(const Napi::CallbackInfo& info) { return EncodeRows<32, 34, 1, encode_q8_0_blocks>(info, "encodeQ8_0"); }
Napi::Value EncodeQ6K(const Napi::CallbackInfo& info) { return EncodeRows<256, 210, 4, encode_q6_k_blocks>(info, "encodeQ6_K"); }

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

// A whole file mapped read-only (mapFile), which loaders read ranges of without an ArrayBuffer per range: no
// external memory is reported to V8 until bytes are converted. Unmapped when its JS handle is collected.
struct FileMap {
  void* base;
  size_t size;
};

const napi_type_tag kFileMapTag = {0x62617262656c6c2dULL, 0x66696c656d617031ULL};

// The FileMap behind argument idx (a handle from mapFile); a TypeError and nullptr for anything else.
FileMap* get_map(const Napi::CallbackInfo& info, size_t idx) {
  Napi::Env env = info.Env();
  const Napi::Value v = info[idx];
  bool ours = false;
  if (v.IsExternal()) {
    napi_check_object_type_tag(env, v, &kFileMapTag, &ours);
  }
  if (!ours) {
    Napi::TypeError::New(env, "[native-cpu] expected a file mapping from mapFile").ThrowAsJavaScriptException();
    return nullptr;
  }
  FileMap* m = v.As<Napi::External<FileMap>>().Data();
  if (m->base == nullptr) {
    Napi::Error::New(env, "[native-cpu] the file mapping was closed").ThrowAsJavaScriptException();
    return nullptr;
  }
  return m;
}

// The map's bytes [offset, offset + length), or nullptr (RangeError thrown) when outside it.
const uint8_t* map_range(const Napi::CallbackInfo& info, const FileMap* m, int64_t offset, int64_t length) {
  if (offset < 0 || length < 0 || static_cast<uint64_t>(offset) > m->size || static_cast<uint64_t>(length) > m->size - static_cast<uint64_t>(offset)) {
    Napi::RangeError::New(info.Env(), "[native-cpu] range outside the mapped file").ThrowAsJavaScriptException();
    return nullptr;
  }
  return static_cast<const uint8_t*>(m->base) + offset;
}

// mapFile(fd, size): the first `size` bytes of an open regular file mapped read-only as a handle for the
// *Mapped functions; undefined when it cannot be mapped (the caller reads instead).
Napi::Value MapFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd = 0, size = 0;
  if (!get_count(info, 0, "fd", 1, &fd) || !get_count(info, 1, "size", 1, &size)) {
    return env.Undefined();
  }
  if (size == 0) {
    return env.Undefined();
  }
  void* base = mmap(nullptr, static_cast<size_t>(size), PROT_READ, MAP_PRIVATE, static_cast<int>(fd), 0);
  if (base == MAP_FAILED) {
    return env.Undefined();
  }
  FileMap* m = new FileMap{base, static_cast<size_t>(size)};
  Napi::External<FileMap> handle = Napi::External<FileMap>::New(env, m, [](Napi::Env, FileMap* fm) {
    munmap(fm->base, fm->size);
    delete fm;
  });
  napi_type_tag_object(env, handle, &kFileMapTag);
  return handle;
}

// copyMapped(map, offset, dst): dst.length bytes of the mapped file at offset copied into dst; true, or false
// (nothing copied) when the file is now shorter than those bytes (readable).
Napi::Value CopyMapped(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FileMap* m = get_map(info, 0);
  int64_t offset = 0;
  uint8_t* dst = nullptr;
  if (m == nullptr || !get_count(info, 1, "offset", 1, &offset) || !get_bytes(info, 2, "dst", 0, &dst)) {
    return env.Undefined();
  }
  const size_t length = info[2].As<Napi::Uint8Array>().ElementLength();
  const uint8_t* src = map_range(info, m, offset, static_cast<int64_t>(length));
  if (src == nullptr) {
    return env.Undefined();
  }
  if (!readable(src, length)) {
    return Napi::Boolean::New(env, false);
  }
  prefault_destination(dst, length);  // a large copy (a head kept as stored) into fresh memory
  std::memcpy(dst, src, length);
  return Napi::Boolean::New(env, true);
}

// transcodeMapped(map, offset, format, n, dst): transcodeTernary's I2_S (0) / TQ2_0 (1) transcode reading the
// source at `offset` of the mapped file, on up to kMaxLoadThreads threads; the same results, or −3 (nothing
// written) when the file is now shorter than the source bytes (readable).
Napi::Value TranscodeMapped(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FileMap* m = get_map(info, 0);
  int64_t offset = 0, format = -1, n = 0;
  if (m == nullptr || !get_count(info, 1, "offset", 1, &offset) || !get_count(info, 2, "format", 1, &format)) {
    return env.Undefined();
  }
  if (format > 1) {
    Napi::RangeError::New(env, "[native-cpu] transcodeMapped: format must be 0 (i2_s) or 1 (tq2_0)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uint8_t* dst = nullptr;
  if (!get_count(info, 3, "n", format == 0 ? 128 : 256, &n) || !get_bytes(info, 4, "dst", static_cast<size_t>(n / 4), &dst)) {
    return env.Undefined();
  }
  const int64_t src_bytes = format == 0 ? n / 4 : n / 256 * 66;
  const uint8_t* src = map_range(info, m, offset, src_bytes);
  if (src == nullptr) {
    return env.Undefined();
  }
  if (!readable(src, static_cast<size_t>(src_bytes))) {
    return Napi::Number::New(env, -3);
  }
  prefault_destination(dst, static_cast<size_t>(n / 4), buffer_bounds(info, 4));
  return Napi::Number::New(env, transcode_2bit_parallel(cpu_features().best, format, src, n, dst));
}

// releaseMapped(map, offset, length): drops the whole pages of [offset, offset + length) of the mapping from
// this process (they stay in the page cache).
Napi::Value ReleaseMapped(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  FileMap* m = get_map(info, 0);
  int64_t offset = 0, length = 0;
  if (m == nullptr || !get_count(info, 1, "offset", 1, &offset) || !get_count(info, 2, "length", 1, &length)) {
    return env.Undefined();
  }
  const uint8_t* at = map_range(info, m, offset, length);
  if (at == nullptr) {
    return env.Undefined();
  }
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(at) + page - 1) / page * page;
  const uintptr_t end = (reinterpret_cast<uintptr_t>(at) + static_cast<uintptr_t>(length)) / page * page;
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
  exports.Set("encodeQ6_K", Napi::Function::New(env, EncodeQ6K));
  exports.Set("firstCode3", Napi::Function::New(env, FirstCode3));
#ifndef _WIN32
  exports.Set("mapRange", Napi::Function::New(env, MapRange));
  exports.Set("releaseRange", Napi::Function::New(env, ReleaseRange));
  exports.Set("mapFile", Napi::Function::New(env, MapFile));
  exports.Set("copyMapped", Napi::Function::New(env, CopyMapped));
  exports.Set("transcodeMapped", Napi::Function::New(env, TranscodeMapped));
  exports.Set("releaseMapped", Napi::Function::New(env, ReleaseMapped));
#endif
}

}  // namespace barbell
