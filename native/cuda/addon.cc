// N-API entry points of barbell_cuda.node (plain node_api.h; built by scripts/build-cuda.mjs, not node-gyp).
//
// Exports: abiVersion, opTableHash, probe() → { devices, detail }, and one function per C ABI call of
// barbell_cuda.h. Device pointers cross as BigInts. A failing call throws an Error whose `code` is
// "ENODRIVER", "ECUDA", "EARG" or "EDATA" and whose message is bbc_error() (no paths, no stacks).
// Every typed array is checked for its element type and length before its pointer is used.
#include <node_api.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "../cpu/ops.generated.h"
#include "barbell_cuda.h"

namespace {

constexpr size_t kMaxArgs = 10;

struct Args {
  napi_env env;
  size_t argc = kMaxArgs;
  napi_value argv[kMaxArgs];
  bool ok = true;
};

napi_value throw_code(napi_env env, const char* code, const std::string& message) {
  napi_value err, msg, c;
  napi_create_string_utf8(env, message.c_str(), NAPI_AUTO_LENGTH, &msg);
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &c);
  napi_create_error(env, c, msg, &err);
  napi_throw(env, err);
  return nullptr;
}

napi_value check(napi_env env, int rc) {
  if (rc == BBC_OK) {
    napi_value u;
    napi_get_undefined(env, &u);
    return u;
  }
  static const char* codes[] = {"OK", "ENODRIVER", "ECUDA", "EARG", "EDATA"};
  return throw_code(env, rc >= 1 && rc <= 4 ? codes[rc] : "ECUDA", bbc_error());
}

bool get_args(napi_env env, napi_callback_info info, Args* a, size_t want) {
  a->env = env;
  napi_get_cb_info(env, info, &a->argc, a->argv, nullptr, nullptr);
  if (a->argc < want) {
    throw_code(env, "EARG", "too few arguments");
    return false;
  }
  return true;
}

double num(Args& a, size_t i) {
  double v = 0;
  if (a.ok && napi_get_value_double(a.env, a.argv[i], &v) != napi_ok) {
    throw_code(a.env, "EARG", "argument " + std::to_string(i) + " must be a number");
    a.ok = false;
  }
  return v;
}

int inum(Args& a, size_t i) {
  const double v = num(a, i);
  if (a.ok && (v != static_cast<double>(static_cast<int>(v)))) {
    throw_code(a.env, "EARG", "argument " + std::to_string(i) + " must be an int32");
    a.ok = false;
  }
  return static_cast<int>(v);
}

/** A device pointer (a BigInt from alloc); null / undefined only where `optional` (an absent weight). */
void* ptr(Args& a, size_t i, bool optional = false) {
  napi_valuetype t;
  napi_typeof(a.env, a.argv[i], &t);
  if (t == napi_null || t == napi_undefined) {
    if (!optional && a.ok) {
      throw_code(a.env, "EARG", "argument " + std::to_string(i) + " must be a device pointer");
      a.ok = false;
    }
    return nullptr;
  }
  uint64_t v = 0;
  bool lossless = false;
  if (a.ok && napi_get_value_bigint_uint64(a.env, a.argv[i], &v, &lossless) != napi_ok) {
    throw_code(a.env, "EARG", "argument " + std::to_string(i) + " must be a device pointer (BigInt)");
    a.ok = false;
  }
  if (a.ok && v == 0) {
    throw_code(a.env, "EARG", "argument " + std::to_string(i) + " is a null device pointer");
    a.ok = false;
  }
  return reinterpret_cast<void*>(static_cast<uintptr_t>(v));
}

/** A host typed array's bytes (any element type), at least `min_bytes` long. */
uint8_t* host(Args& a, size_t i, size_t min_bytes, size_t* len = nullptr) {
  bool is = false;
  napi_is_typedarray(a.env, a.argv[i], &is);
  if (!a.ok) return nullptr;
  if (!is) {
    throw_code(a.env, "EARG", "argument " + std::to_string(i) + " must be a typed array");
    a.ok = false;
    return nullptr;
  }
  napi_typedarray_type type;
  size_t length = 0, offset = 0;
  void* data = nullptr;
  napi_value buffer;
  napi_get_typedarray_info(a.env, a.argv[i], &type, &length, &data, &buffer, &offset);
  size_t elem = 1;
  switch (type) {
    case napi_int16_array: case napi_uint16_array: elem = 2; break;
    case napi_int32_array: case napi_uint32_array: case napi_float32_array: elem = 4; break;
    case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: elem = 8; break;
    default: elem = 1;
  }
  const size_t bytes = length * elem;
  if (bytes < min_bytes) {
    throw_code(a.env, "EARG", "argument " + std::to_string(i) + " is shorter than the sizes given");
    a.ok = false;
    return nullptr;
  }
  if (len != nullptr) *len = bytes;
  return static_cast<uint8_t*>(data);
}

napi_value bigint(napi_env env, void* p) {
  napi_value v;
  napi_create_bigint_uint64(env, static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p)), &v);
  return v;
}

#define ENTRY(name) napi_value name(napi_env env, napi_callback_info info)
#define ARGS(n)                                       \
  Args a;                                             \
  if (!get_args(env, info, &a, n)) return nullptr;
#define DONE(call)                 \
  if (!a.ok) return nullptr;       \
  return check(env, (call));

ENTRY(Probe) {
  (void)info;
  char detail[256] = {0};
  const int n = bbc_probe(detail, sizeof detail);
  napi_value o, devices, text;
  napi_create_object(env, &o);
  napi_create_int32(env, n, &devices);
  napi_create_string_utf8(env, detail, NAPI_AUTO_LENGTH, &text);
  napi_set_named_property(env, o, "devices", devices);
  napi_set_named_property(env, o, "detail", text);
  return o;
}

ENTRY(Init) { ARGS(1) const int d = inum(a, 0); DONE(bbc_init(d)) }

ENTRY(Alloc) {
  ARGS(1)
  const double bytes = num(a, 0);
  if (!a.ok) return nullptr;
  if (!(bytes >= 0 && bytes <= 9007199254740991.0)) return throw_code(env, "EARG", "bad byte count");
  void* p = nullptr;
  if (check(env, bbc_alloc(static_cast<size_t>(bytes), &p)) == nullptr) return nullptr;
  return bigint(env, p);
}

ENTRY(Free) { ARGS(1) void* p = ptr(a, 0); DONE(bbc_free(p)) }

ENTRY(Write) {
  ARGS(3)
  void* p = ptr(a, 0);
  const double off = num(a, 1);
  size_t len = 0;
  const uint8_t* src = host(a, 2, 0, &len);
  DONE(bbc_write(p, static_cast<size_t>(off), src, len))
}

ENTRY(Read) {
  ARGS(3)
  void* p = ptr(a, 0);
  const double off = num(a, 1), len = num(a, 2);
  if (!a.ok) return nullptr;
  if (!(len >= 0 && len <= 2147483647.0)) return throw_code(env, "EARG", "bad read length");
  void* data = nullptr;
  napi_value buf, arr;
  napi_create_arraybuffer(env, static_cast<size_t>(len), &data, &buf);
  if (check(env, bbc_read(data, p, static_cast<size_t>(off), static_cast<size_t>(len))) == nullptr) return nullptr;
  napi_create_typedarray(env, napi_uint8_array, static_cast<size_t>(len), buf, 0, &arr);
  return arr;
}

ENTRY(Copy) {
  ARGS(5)
  void* d = ptr(a, 0);
  const double doff = num(a, 1);
  void* s = ptr(a, 2);
  const double soff = num(a, 3), n = num(a, 4);
  DONE(bbc_copy(d, static_cast<size_t>(doff), s, static_cast<size_t>(soff), static_cast<size_t>(n)))
}

ENTRY(Sync) {
  (void)info;
  return check(env, bbc_sync());
}

ENTRY(Status) {
  (void)info;
  long long nf = -1, bad = -1;
  const int rc = bbc_status(&nf, &bad);
  if (rc != BBC_OK && rc != BBC_EDATA) return check(env, rc);
  napi_value arr, v0, v1;
  napi_create_array_with_length(env, 2, &arr);
  napi_create_double(env, static_cast<double>(nf), &v0);
  napi_create_double(env, static_cast<double>(bad), &v1);
  napi_set_element(env, arr, 0, v0);
  napi_set_element(env, arr, 1, v1);
  return arr;
}

ENTRY(UploadTernary) {
  ARGS(3)
  const int n = inum(a, 1), k = inum(a, 2);
  if (!a.ok) return nullptr;
  if (n <= 0 || k <= 0) return throw_code(env, "EARG", "ternary: n and k must be positive");
  const uint8_t* src = host(a, 0, static_cast<size_t>(n) * ((static_cast<size_t>(k) + 3) / 4));
  if (!a.ok) return nullptr;
  void* p = nullptr;
  if (check(env, bbc_upload_ternary(src, n, k, &p)) == nullptr) return nullptr;
  return bigint(env, p);
}

ENTRY(RepackTernary) {
  ARGS(3)
  void* raw = ptr(a, 0);
  const int n = inum(a, 1), k = inum(a, 2);
  if (!a.ok) return nullptr;
  void* p = nullptr;
  if (check(env, bbc_repack_ternary(raw, n, k, &p)) == nullptr) return nullptr;
  return bigint(env, p);
}

ENTRY(RepackQ8) {
  ARGS(3)
  void* raw = ptr(a, 0);
  const int n = inum(a, 1), k = inum(a, 2);
  if (!a.ok) return nullptr;
  void *d = nullptr, *q = nullptr;
  if (check(env, bbc_repack_q8(raw, n, k, &d, &q)) == nullptr) return nullptr;
  napi_value arr;
  napi_create_array_with_length(env, 2, &arr);
  napi_set_element(env, arr, 0, bigint(env, d));
  napi_set_element(env, arr, 1, bigint(env, q));
  return arr;
}

// Each entry reads every argument into a local first, and calls the C ABI only when all of them were valid.
#define F(i) static_cast<const float*>(ptr(a, i))
#define OUT(i) static_cast<float*>(ptr(a, i))

ENTRY(Quantize) {
  ARGS(5)
  const float* x = F(0);
  const int m = inum(a, 1), k = inum(a, 2);
  auto* q = static_cast<int8_t*>(ptr(a, 3));
  float* s = OUT(4);
  DONE(bbc_quantize(x, m, k, q, s))
}

ENTRY(Ternary) {
  ARGS(8)
  const auto* x = static_cast<const int8_t*>(ptr(a, 0));
  const float* xs = F(1);
  const void* w = ptr(a, 2);
  const float gamma = static_cast<float>(num(a, 3));
  const int m = inum(a, 4), k = inum(a, 5), n = inum(a, 6);
  float* out = OUT(7);
  DONE(bbc_ternary(x, xs, w, gamma, m, k, n, out))
}

ENTRY(RmsNorm) {
  ARGS(6)
  const float* x = F(0);
  const auto* w = static_cast<const float*>(ptr(a, 1, true));
  const int rows = inum(a, 2), cols = inum(a, 3);
  const double eps = num(a, 4);
  float* out = OUT(5);
  DONE(bbc_rmsnorm(x, w, rows, cols, eps, out))
}

ENTRY(Rope) {
  ARGS(8)
  const float* x = F(0);
  const int seq = inum(a, 1), heads = inum(a, 2), hd = inum(a, 3);
  const auto* pos = static_cast<const int32_t*>(ptr(a, 4));
  const double theta = num(a, 5);
  const int neox = inum(a, 6);
  float* out = OUT(7);
  DONE(bbc_rope(x, seq, heads, hd, pos, theta, neox, out))
}

ENTRY(Attention) {
  ARGS(10)
  const float *q = F(0), *k = F(1), *v = F(2);
  const int seq = inum(a, 3), heads = inum(a, 4), kv = inum(a, 5), hd = inum(a, 6), pos0 = inum(a, 7);
  const double scale = num(a, 8);
  float* out = OUT(9);
  DONE(bbc_attention(q, k, v, seq, heads, kv, hd, pos0, scale, out))
}

ENTRY(Softmax) {
  ARGS(4)
  const float* x = F(0);
  const int rows = inum(a, 1), cols = inum(a, 2);
  float* out = OUT(3);
  DONE(bbc_softmax(x, rows, cols, out))
}

ENTRY(Unary) {
  ARGS(4)
  const int op = inum(a, 0);
  const float* x = F(1);
  const double n = num(a, 2);
  float* out = OUT(3);
  DONE(bbc_unary(op, x, static_cast<long long>(n), out))
}

ENTRY(Binary) {
  // binary(op, a, aStrides: Float64Array, b, bStrides: Float64Array, dims: Float64Array, out)
  ARGS(7)
  const int op = inum(a, 0);
  const float* pa = F(1);
  const float* pb = F(3);
  float* out = OUT(6);
  size_t dims_len = 0;
  const auto* dims = reinterpret_cast<const double*>(host(a, 5, 0, &dims_len));
  const size_t rank = dims_len / 8;
  const auto* as = reinterpret_cast<const double*>(host(a, 2, rank * 8));
  const auto* bs = reinterpret_cast<const double*>(host(a, 4, rank * 8));
  if (!a.ok) return nullptr;
  if (rank > 4) return throw_code(env, "EARG", "binary: rank above 4");
  long long d[4], sa[4], sb[4];
  for (size_t i = 0; i < rank; ++i) {
    d[i] = static_cast<long long>(dims[i]);
    sa[i] = static_cast<long long>(as[i]);
    sb[i] = static_cast<long long>(bs[i]);
  }
  DONE(bbc_binary(op, pa, sa, pb, sb, d, static_cast<int>(rank), out))
}

ENTRY(Embedding) {
  ARGS(7)
  const auto* ids = static_cast<const int32_t*>(ptr(a, 0));
  const int seq = inum(a, 1), dtype = inum(a, 2);
  const void* table = ptr(a, 3);
  const int vocab = inum(a, 4), embed = inum(a, 5);
  float* out = OUT(6);
  DONE(bbc_embedding(ids, seq, dtype, table, vocab, embed, out))
}

ENTRY(Dense) {
  ARGS(7)
  const float* x = F(0);
  const int dtype = inum(a, 1);
  const void* w = ptr(a, 2);
  const int m = inum(a, 3), k = inum(a, 4), n = inum(a, 5);
  float* out = OUT(6);
  DONE(bbc_dense(x, dtype, w, m, k, n, out))
}

ENTRY(Q8Head) {
  ARGS(7)
  const float *x = F(0), *d = F(1);
  const auto* q = static_cast<const int8_t*>(ptr(a, 2));
  const int m = inum(a, 3), k = inum(a, 4), n = inum(a, 5);
  float* out = OUT(6);
  DONE(bbc_q8_head(x, d, q, m, k, n, out))
}

ENTRY(Sample) {
  ARGS(7)
  const float* logits = F(0);
  const int rows = inum(a, 1), vocab = inum(a, 2), top_k = inum(a, 3);
  const float temperature = static_cast<float>(num(a, 4));
  const double seed = num(a, 5);
  auto* ids = static_cast<int32_t*>(ptr(a, 6));
  DONE(bbc_sample(logits, rows, vocab, top_k, temperature, static_cast<unsigned long long>(seed), ids))
}

napi_value Init(napi_env env, napi_value exports) {
  const struct {
    const char* name;
    napi_callback fn;
  } fns[] = {{"probe", Probe},         {"init", Init},       {"alloc", Alloc},         {"free", Free},
             {"write", Write},         {"read", Read},       {"copy", Copy},           {"sync", Sync},
             {"status", Status},       {"uploadTernary", UploadTernary},               {"repackQ8", RepackQ8},
             {"repackTernary", RepackTernary},
             {"quantize", Quantize},   {"ternary", Ternary}, {"rmsNorm", RmsNorm},     {"rope", Rope},
             {"attention", Attention}, {"softmax", Softmax}, {"unary", Unary},         {"binary", Binary},
             {"embedding", Embedding}, {"dense", Dense},     {"q8Head", Q8Head},       {"sample", Sample}};
  for (const auto& f : fns) {
    napi_value v;
    napi_create_function(env, f.name, NAPI_AUTO_LENGTH, f.fn, nullptr, &v);
    napi_set_named_property(env, exports, f.name, v);
  }
  napi_value abi, hash;
  napi_create_int32(env, BBC_ABI_VERSION, &abi);
  napi_create_uint32(env, barbell::ops::kOpTableHash, &hash);
  napi_set_named_property(env, exports, "abiVersion", abi);
  napi_set_named_property(env, exports, "opTableHash", hash);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
