#include "vectors.h"

#include <cstring>
#include <fstream>
#include <stdexcept>

namespace bbharness {

size_t Tensor::elements() const {
  size_t n = 1;
  for (uint32_t d : dims) n *= d;
  return n;
}

const Tensor* Case::find(const std::string& n, Role role) const {
  for (const Tensor& t : tensors) {
    if (t.name == n && t.role == role) return &t;
  }
  return nullptr;
}

double Case::attr(const std::string& key) const {
  const auto it = attrs.find(key);
  if (it == attrs.end()) throw std::runtime_error("case " + name + ": missing attribute " + key);
  return it->second;
}

double Case::attr_or(const std::string& key, double fallback) const {
  const auto it = attrs.find(key);
  return it == attrs.end() ? fallback : it->second;
}

namespace {

class Reader {
 public:
  explicit Reader(const std::vector<uint8_t>& b) : b_(b) {}
  bool take(void* out, size_t n) {
    if (n > b_.size() - at_) return false;
    std::memcpy(out, b_.data() + at_, n);
    at_ += n;
    return true;
  }
  template <typename T>
  bool num(T* v) {
    return take(v, sizeof(T));
  }
  bool str(std::string* s) {
    uint16_t n = 0;
    if (!num(&n) || n > b_.size() - at_) return false;
    s->assign(reinterpret_cast<const char*>(b_.data() + at_), n);
    at_ += n;
    return true;
  }
  size_t left() const { return b_.size() - at_; }

 private:
  const std::vector<uint8_t>& b_;
  size_t at_ = 0;
};

size_t dtype_bytes(DType d) { return d == DType::F32 || d == DType::I32 ? 4 : 1; }

}  // namespace

bool parse_vectors(const std::vector<uint8_t>& bytes, std::vector<Case>* cases, std::string* error) {
  auto bad = [&](const std::string& why) {
    *error = why;
    return false;
  };
  if (bytes.size() > kMaxFileBytes) return bad("file larger than 64 MiB");
  Reader r(bytes);
  char magic[4];
  uint32_t version = 0, count = 0;
  if (!r.take(magic, 4) || std::memcmp(magic, "BBCV", 4) != 0) return bad("not a BBCV vector file");
  if (!r.num(&version) || version != kVersion) return bad("unsupported vector file version");
  if (!r.num(&count) || count > kMaxCases) return bad("case count missing or above the limit");
  cases->clear();
  for (uint32_t c = 0; c < count; ++c) {
    Case k;
    uint32_t attrs = 0, tensors = 0;
    if (!r.str(&k.name) || !r.str(&k.kernel)) return bad("truncated case header");
    const std::string where = "case " + std::to_string(c) + " (" + k.name + "): ";
    if (!r.num(&attrs) || attrs > kMaxAttrs) return bad(where + "attribute count missing or above the limit");
    for (uint32_t a = 0; a < attrs; ++a) {
      std::string key;
      double v = 0;
      if (!r.str(&key) || !r.num(&v)) return bad(where + "truncated attribute");
      k.attrs[key] = v;
    }
    if (!r.num(&tensors) || tensors > kMaxTensors) return bad(where + "tensor count missing or above the limit");
    for (uint32_t t = 0; t < tensors; ++t) {
      Tensor x;
      uint8_t dtype = 0, role = 0, rank = 0;
      uint64_t n = 0;
      if (!r.str(&x.name) || !r.num(&dtype) || !r.num(&role) || !r.num(&rank)) return bad(where + "truncated tensor");
      if (dtype > 3 || role > 1 || rank > kMaxRank) return bad(where + "tensor " + x.name + ": bad dtype, role or rank");
      x.dtype = static_cast<DType>(dtype);
      x.role = static_cast<Role>(role);
      uint64_t elements = 1;
      for (uint8_t d = 0; d < rank; ++d) {
        uint32_t dim = 0;
        if (!r.num(&dim)) return bad(where + "truncated dims");
        x.dims.push_back(dim);
        elements *= dim;
        if (elements > kMaxTensorBytes) return bad(where + "tensor " + x.name + " above the size limit");
      }
      if (!r.num(&n) || n > kMaxTensorBytes) return bad(where + "tensor " + x.name + ": bad byte length");
      if (n > r.left()) return bad(where + "tensor " + x.name + ": truncated data");
      if (x.dtype != DType::Raw && n != elements * dtype_bytes(x.dtype)) {
        return bad(where + "tensor " + x.name + ": byte length does not match its dims");
      }
      x.data.resize(n);
      if (!r.take(x.data.data(), n)) return bad(where + "truncated data");
      k.tensors.push_back(std::move(x));
    }
    if (!r.num(&k.rtol) || !r.num(&k.atol)) return bad(where + "truncated tolerance");
    if (!(k.rtol >= 0 && k.atol >= 0)) return bad(where + "negative or NaN tolerance");
    cases->push_back(std::move(k));
  }
  if (r.left() != 0) return bad("trailing bytes after the last case");
  return true;
}

bool load_vectors(const std::string& path, std::vector<Case>* cases, std::string* error) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) {
    *error = "cannot open the vector file";
    return false;
  }
  const std::streamoff size = in.tellg();
  if (size < 0 || static_cast<uint64_t>(size) > kMaxFileBytes) {
    *error = "vector file larger than 64 MiB";
    return false;
  }
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  in.seekg(0);
  if (!in.read(reinterpret_cast<char*>(bytes.data()), size)) {
    *error = "cannot read the vector file";
    return false;
  }
  return parse_vectors(bytes, cases, error);
}

}  // namespace bbharness
