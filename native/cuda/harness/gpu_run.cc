#include "gpu_run.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>

#include <cuda_runtime.h>

#include "../barbell_cuda.h"
#include "../model.h"

namespace bbharness {
namespace {

using Out = std::vector<std::pair<std::string, Comparison>>;

void check(int rc, const char* what) {
  if (rc != BBC_OK) throw std::runtime_error(std::string(what) + ": " + bbc_error());
}

/** A device buffer freed on scope exit. */
struct Dev {
  void* p = nullptr;
  explicit Dev(size_t bytes) { check(bbc_alloc(bytes, &p), "alloc"); }
  Dev(const void* host, size_t bytes) : Dev(bytes) { check(bbc_write(p, 0, host, bytes), "write"); }
  ~Dev() {
    if (p != nullptr) bbc_free(p);
  }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  template <typename T>
  T* as() const {
    return static_cast<T*>(p);
  }
};

const Tensor& input(const Case& c, const char* name) {
  const Tensor* t = c.find(name, Role::Input);
  if (t == nullptr) throw std::runtime_error(std::string("missing input ") + name);
  return *t;
}
const Tensor& expected(const Case& c, const char* name) {
  const Tensor* t = c.find(name, Role::Expected);
  if (t == nullptr) throw std::runtime_error(std::string("missing expected ") + name);
  return *t;
}

std::unique_ptr<Dev> up(const Tensor& t) { return std::make_unique<Dev>(t.data.data(), t.data.size()); }

/** Reads `name`'s expected size back from d and compares with the case's rule (integers always exact). */
void compare_out(const Case& c, const char* name, const Dev& d, Out* out) {
  const Tensor& want = expected(c, name);
  std::vector<uint8_t> got(want.data.size());
  check(bbc_read(got.data(), d.p, 0, got.size()), "read");
  const size_t n = want.elements();
  switch (want.dtype) {
    case DType::F32:
      out->emplace_back(name, compare_f32(want.f32(), reinterpret_cast<const float*>(got.data()), n, c.rtol, c.atol));
      break;
    case DType::I32:
      out->emplace_back(name, compare_i32(want.i32(), reinterpret_cast<const int32_t*>(got.data()), n));
      break;
    default:
      out->emplace_back(name, compare_i8(want.i8(), reinterpret_cast<const int8_t*>(got.data()), n));
  }
}

size_t bytes_of(const Case& c, const char* name) { return expected(c, name).data.size(); }

void run(const Case& c, Out* out) {
  const std::string& k = c.kernel;
  long long stale_nf = -1, stale_id = -1;
  bbc_status(&stale_nf, &stale_id);  // clears what an earlier case recorded
  if (k == "quantizeActivations") {
    const int m = c.iattr("m"), kk = c.iattr("k");
    auto x = up(input(c, "x"));
    Dev q(bytes_of(c, "q")), s(bytes_of(c, "scales"));
    check(bbc_quantize(x->as<float>(), m, kk, q.as<int8_t>(), s.as<float>()), "quantize");
    long long nf = -1, bad = -1;
    const int rc = bbc_status(&nf, &bad);
    const double want_nf = c.attr_or("nonfinite", -1);
    Comparison st;
    st.elements = 1;
    st.ok = (rc == BBC_OK && want_nf < 0) || (rc == BBC_EDATA && nf == static_cast<long long>(want_nf));
    st.mismatches = st.ok ? 0 : 1;
    st.want_at_first = want_nf;
    st.got_at_first = static_cast<double>(nf);
    out->emplace_back("nonfinite_index", st);
    if (want_nf < 0) {
      compare_out(c, "q", q, out);
      compare_out(c, "scales", s, out);
    }
  } else if (k == "matmulTernaryI8") {
    const int m = c.iattr("m"), kk = c.iattr("k"), n = c.iattr("n");
    auto x = up(input(c, "x"));
    auto xs = up(input(c, "xScales"));
    void* w = nullptr;
    check(bbc_upload_ternary(input(c, "w").data.data(), n, kk, &w), "upload ternary");
    Dev wd(0);
    bbc_free(wd.p);
    wd.p = w;
    Dev o(bytes_of(c, "out")), acc(bytes_of(c, "acc"));
    check(bbc_ternary(x->as<int8_t>(), xs->as<float>(), w, static_cast<float>(c.attr("gamma")), m, kk, n, o.as<float>()),
          "ternary");
    check(bbc_ternary_acc(x->as<int8_t>(), w, m, kk, n, acc.as<int32_t>()), "ternary acc");
    compare_out(c, "acc", acc, out);
    compare_out(c, "out", o, out);
    // The same weights repacked on the device (what the addon does for buffers written in the file layout).
    auto raw = up(input(c, "w"));
    void* w2 = nullptr;
    check(bbc_repack_ternary(raw->p, n, kk, &w2), "repack ternary");
    Dev wd2(0);
    bbc_free(wd2.p);
    wd2.p = w2;
    Dev o2(bytes_of(c, "out"));
    check(bbc_ternary(x->as<int8_t>(), xs->as<float>(), w2, static_cast<float>(c.attr("gamma")), m, kk, n, o2.as<float>()),
          "ternary (device repack)");
    Out second;
    compare_out(c, "out", o2, &second);
    out->emplace_back("out_device_repack", second.front().second);
  } else if (k == "matmulQ8I8" || k == "matmulDense") {
    const int m = c.iattr("m"), kk = c.iattr("k"), n = c.iattr("n");
    auto x = up(input(c, "x"));
    auto w = up(input(c, "w"));
    Dev o(bytes_of(c, "out"));
    if (k == "matmulQ8I8") {
      void *d = nullptr, *q = nullptr;
      check(bbc_repack_q8(w->p, n, kk, &d, &q), "repack q8");
      check(bbc_q8_head(x->as<float>(), static_cast<float*>(d), static_cast<int8_t*>(q), m, kk, n, o.as<float>()), "q8 head");
      compare_out(c, "out", o, out);
      bbc_free(d);
      bbc_free(q);
    } else {
      check(bbc_dense(x->as<float>(), c.iattr("dtype"), w->p, m, kk, n, o.as<float>()), "dense");
      compare_out(c, "out", o, out);
    }
  } else if (k == "embedding") {
    auto ids = up(input(c, "ids"));
    auto table = up(input(c, "table"));
    Dev o(bytes_of(c, "out"));
    check(bbc_embedding(ids->as<int32_t>(), c.iattr("seq"), c.iattr("dtype"), table->p, c.iattr("vocab"), c.iattr("embed"),
                        o.as<float>()),
          "embedding");
    compare_out(c, "out", o, out);
  } else if (k == "rmsNorm") {
    auto x = up(input(c, "x"));
    const Tensor* wt = c.find("weight", Role::Input);
    std::unique_ptr<Dev> w = wt == nullptr ? nullptr : up(*wt);
    Dev o(bytes_of(c, "out"));
    check(bbc_rmsnorm(x->as<float>(), w == nullptr ? nullptr : w->as<float>(), c.iattr("rows"), c.iattr("cols"),
                      c.attr("eps"), o.as<float>()),
          "rmsnorm");
    compare_out(c, "out", o, out);
  } else if (k == "rope") {
    auto x = up(input(c, "x"));
    auto pos = up(input(c, "positions"));
    Dev o(bytes_of(c, "out"));
    check(bbc_rope(x->as<float>(), c.iattr("seq"), c.iattr("heads"), c.iattr("headDim"), pos->as<int32_t>(), c.attr("theta"),
                   c.iattr("neox"), o.as<float>()),
          "rope");
    compare_out(c, "out", o, out);
  } else if (k == "attention") {
    auto q = up(input(c, "q"));
    auto kk = up(input(c, "k"));
    auto v = up(input(c, "v"));
    Dev o(bytes_of(c, "out"));
    check(bbc_attention(q->as<float>(), kk->as<float>(), v->as<float>(), c.iattr("seq"), c.iattr("heads"), c.iattr("kvHeads"),
                        c.iattr("headDim"), c.iattr("pos0"), c.attr("scale"), o.as<float>()),
          "attention");
    compare_out(c, "out", o, out);
  } else if (k == "softmax") {
    auto x = up(input(c, "x"));
    Dev o(bytes_of(c, "out"));
    check(bbc_softmax(x->as<float>(), c.iattr("rows"), c.iattr("cols"), o.as<float>()), "softmax");
    compare_out(c, "out", o, out);
  } else if (k == "unary") {
    auto x = up(input(c, "x"));
    Dev o(bytes_of(c, "out"));
    check(bbc_unary(c.iattr("op"), x->as<float>(), static_cast<long long>(input(c, "x").elements()), o.as<float>()), "unary");
    compare_out(c, "out", o, out);
  } else if (k == "binary") {
    auto a = up(input(c, "a"));
    auto b = up(input(c, "b"));
    const Tensor& dims = input(c, "dims");
    const int rank = static_cast<int>(dims.elements());
    std::vector<long long> d(rank), as(rank), bs(rank);
    for (int i = 0; i < rank; ++i) {
      d[i] = dims.i32()[i];
      as[i] = input(c, "aStrides").i32()[i];
      bs[i] = input(c, "bStrides").i32()[i];
    }
    Dev o(bytes_of(c, "out"));
    check(bbc_binary(c.iattr("op"), a->as<float>(), as.data(), b->as<float>(), bs.data(), d.data(), rank, o.as<float>()),
          "binary");
    compare_out(c, "out", o, out);
  } else if (k == "sample") {
    auto logits = up(input(c, "logits"));
    Dev ids(bytes_of(c, "ids"));
    check(bbc_sample(logits->as<float>(), c.iattr("rows"), c.iattr("vocab"), 1, 0.0f, 0, ids.as<int32_t>()), "sample");
    compare_out(c, "ids", ids, out);
  } else {
    throw std::invalid_argument("no GPU runner for this kernel");
  }
  check(bbc_sync(), "sync");
}

}  // namespace

CaseResult run_gpu_case(const Case& c) {
  CaseResult r{c.name, c.kernel, "pass", {}};
  try {
    run(c, &r.outputs);
    for (const auto& o : r.outputs) {
      if (!o.second.ok) r.status = "fail";
    }
  } catch (const std::invalid_argument& e) {
    r.status = std::string("skipped: ") + e.what();
  } catch (const std::exception& e) {
    r.status = std::string("error: ") + e.what();
  }
  return r;
}

}  // namespace bbharness
