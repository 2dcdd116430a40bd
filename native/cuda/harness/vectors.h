// The conformance-vector file the exporter (scripts/cuda/export-vectors.ts) writes and the harness reads.
//
// Little-endian. File: "BBCV", u32 version (1), u32 case count, then each case:
//   str name, str kernel, u32 attr count × (str key, f64 value),
//   u32 tensor count × (str name, u8 dtype, u8 role, u8 rank, u32 dims[rank], u64 bytes, data),
//   f64 rtol, f64 atol        (both 0: the expected outputs must match bit for bit)
// str = u16 length + UTF-8 bytes. dtype: 0 f32, 1 i8, 2 i32, 3 raw bytes (t2 rows, f16 / q8_0 blocks).
// role: 0 input, 1 expected output. Every count and size is checked against the limits below before anything
// is sized from it; a malformed file is an error message, never a crash.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace bbharness {

constexpr uint32_t kVersion = 1;
constexpr uint32_t kMaxCases = 4096;
constexpr uint32_t kMaxAttrs = 64;
constexpr uint32_t kMaxTensors = 256;
constexpr uint32_t kMaxRank = 4;
/** One tensor's bytes, and a whole file's (the device tool carries at most 64 MiB per call). */
constexpr uint64_t kMaxTensorBytes = 64ull << 20;
constexpr uint64_t kMaxFileBytes = 64ull << 20;

enum class DType : uint8_t { F32 = 0, I8 = 1, I32 = 2, Raw = 3 };
enum class Role : uint8_t { Input = 0, Expected = 1 };

struct Tensor {
  std::string name;
  DType dtype = DType::Raw;
  Role role = Role::Input;
  std::vector<uint32_t> dims;
  std::vector<uint8_t> data;

  size_t elements() const;
  const float* f32() const { return reinterpret_cast<const float*>(data.data()); }
  const int8_t* i8() const { return reinterpret_cast<const int8_t*>(data.data()); }
  const int32_t* i32() const { return reinterpret_cast<const int32_t*>(data.data()); }
};

struct Case {
  std::string name;
  std::string kernel;
  std::map<std::string, double> attrs;
  std::vector<Tensor> tensors;
  double rtol = 0, atol = 0;

  bool exact() const { return rtol == 0 && atol == 0; }
  const Tensor* find(const std::string& name, Role role) const;
  /** An attribute, or throws std::runtime_error naming it. */
  double attr(const std::string& key) const;
  int iattr(const std::string& key) const { return static_cast<int>(attr(key)); }
  double attr_or(const std::string& key, double fallback) const;
};

/** Parses a vector file's bytes; on failure returns false with the reason in *error. */
bool parse_vectors(const std::vector<uint8_t>& bytes, std::vector<Case>* cases, std::string* error);
/** Reads and parses a file (bounded by kMaxFileBytes). */
bool load_vectors(const std::string& path, std::vector<Case>* cases, std::string* error);

}  // namespace bbharness
