#include "host_ref.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "../bb_math.h"

namespace bbharness {
namespace {

using Out = std::vector<std::pair<std::string, Comparison>>;

const Tensor& input(const Case& c, const char* name) {
  const Tensor* t = c.find(name, Role::Input);
  if (t == nullptr) throw std::runtime_error(std::string("missing input ") + name);
  return *t;
}

void expect_f32(const Case& c, const char* name, const std::vector<float>& got, Out* out) {
  const Tensor* t = c.find(name, Role::Expected);
  if (t == nullptr) throw std::runtime_error(std::string("missing expected ") + name);
  if (t->elements() != got.size()) throw std::runtime_error(std::string("expected ") + name + " has another size");
  out->emplace_back(name, compare_f32(t->f32(), got.data(), got.size(), c.rtol, c.atol));
}

template <typename T>
void expect_int(const Case& c, const char* name, const std::vector<T>& got, Out* out) {
  const Tensor* t = c.find(name, Role::Expected);
  if (t == nullptr) throw std::runtime_error(std::string("missing expected ") + name);
  if (t->elements() != got.size()) throw std::runtime_error(std::string("expected ") + name + " has another size");
  if constexpr (sizeof(T) == 1) {
    out->emplace_back(name, compare_i8(t->i8(), got.data(), got.size()));
  } else {
    out->emplace_back(name, compare_i32(t->i32(), got.data(), got.size()));
  }
}

void quantize_rows(const float* x, int m, int k, std::vector<int8_t>* q, std::vector<float>* s) {
  q->resize(static_cast<size_t>(m) * k);
  s->resize(m);
  for (int r = 0; r < m; ++r) {
    float amax = 0;
    for (int c = 0; c < k; ++c) amax = std::fmax(amax, std::fabs(x[static_cast<size_t>(r) * k + c]));
    (*s)[r] = bbcuda::quant_scale(amax);
    for (int c = 0; c < k; ++c) (*q)[static_cast<size_t>(r) * k + c] = bbcuda::quant_value(x[static_cast<size_t>(r) * k + c], (*s)[r]);
  }
}

/** The ternary kernel's arithmetic: repacked rows, 16-element words, dot16 (trits_of_codes + dp4a). */
std::vector<int32_t> ternary_acc(const int8_t* x, const uint8_t* t2, int m, int k, int n) {
  const int words = (k + 15) / 16;
  std::vector<uint8_t> row(bbcuda::t2_padded_row_bytes(k));
  std::vector<int8_t> xp(static_cast<size_t>(words) * 16);
  std::vector<int32_t> acc(static_cast<size_t>(m) * n);
  for (int j = 0; j < n; ++j) {
    bbcuda::repack_t2_row(t2 + static_cast<size_t>(j) * bbcuda::t2_row_bytes(k), k, row.data());
    for (int i = 0; i < m; ++i) {
      std::fill(xp.begin(), xp.end(), 0);
      std::memcpy(xp.data(), x + static_cast<size_t>(i) * k, k);
      int a = 0;
      for (int g = 0; g < words; ++g) {
        uint32_t w, xw[4];
        std::memcpy(&w, row.data() + 4 * g, 4);
        std::memcpy(xw, xp.data() + 16 * g, 16);
        a = bbcuda::dot16(w, xw, a);
      }
      acc[static_cast<size_t>(i) * n + j] = a;
    }
  }
  return acc;
}

float dense_value(int dtype, const uint8_t* row, int c) {
  switch (dtype) {
    case 0: {
      float v;
      std::memcpy(&v, row + 4 * c, 4);
      return v;
    }
    case 1:
      return bbcuda::half_to_float(static_cast<uint16_t>(row[2 * c] | (row[2 * c + 1] << 8)));
    case 2:
      return bbcuda::bf16_to_float(static_cast<uint16_t>(row[2 * c] | (row[2 * c + 1] << 8)));
    default: {
      const uint8_t* blk = row + (c / 32) * 34;
      return static_cast<float>(static_cast<int8_t>(blk[2 + c % 32])) *
             bbcuda::half_to_float(static_cast<uint16_t>(blk[0] | (blk[1] << 8)));
    }
  }
}

size_t dense_row_bytes(int dtype, int cols) {
  return dtype == 0 ? cols * 4u : (dtype == 3 ? (cols / 32u) * 34u : cols * 2u);
}

void run(const Case& c, Out* out) {
  const std::string& k = c.kernel;
  if (k == "quantizeActivations") {
    const Tensor& x = input(c, "x");
    const double want_nf = c.attr_or("nonfinite", -1);
    if (want_nf >= 0) {
      long long first = -1;
      for (size_t i = 0; i < x.elements() && first < 0; ++i) {
        if (!std::isfinite(x.f32()[i])) first = static_cast<long long>(i);
      }
      Comparison st;
      st.elements = 1;
      st.ok = first == static_cast<long long>(want_nf);
      st.mismatches = st.ok ? 0 : 1;
      st.want_at_first = want_nf;
      st.got_at_first = static_cast<double>(first);
      out->emplace_back("nonfinite_index", st);
      return;
    }
    std::vector<int8_t> q;
    std::vector<float> s;
    quantize_rows(x.f32(), c.iattr("m"), c.iattr("k"), &q, &s);
    expect_int(c, "q", q, out);
    expect_f32(c, "scales", s, out);
  } else if (k == "matmulTernaryI8") {
    const int m = c.iattr("m"), kk = c.iattr("k"), n = c.iattr("n");
    const Tensor& x = input(c, "x");
    const Tensor& xs = input(c, "xScales");
    const Tensor& w = input(c, "w");
    if (w.data.size() != static_cast<size_t>(n) * bbcuda::t2_row_bytes(kk)) throw std::runtime_error("w size");
    const std::vector<int32_t> acc = ternary_acc(x.i8(), w.data.data(), m, kk, n);
    const float gamma = static_cast<float>(c.attr("gamma"));
    std::vector<float> o(acc.size());
    for (int i = 0; i < m; ++i) {
      for (int j = 0; j < n; ++j) o[static_cast<size_t>(i) * n + j] = bbcuda::scale_acc(acc[static_cast<size_t>(i) * n + j], xs.f32()[i], gamma);
    }
    expect_int(c, "acc", acc, out);
    expect_f32(c, "out", o, out);
  } else if (k == "matmulQ8I8") {
    const int m = c.iattr("m"), kk = c.iattr("k"), n = c.iattr("n");
    const Tensor& x = input(c, "x");
    const Tensor& w = input(c, "w");
    const int blocks = kk / 32;
    std::vector<int8_t> q;
    std::vector<float> s;
    quantize_rows(x.f32(), m * blocks, 32, &q, &s);
    std::vector<float> o(static_cast<size_t>(m) * n);
    for (int j = 0; j < n; ++j) {
      const uint8_t* row = w.data.data() + static_cast<size_t>(j) * blocks * 34;
      for (int i = 0; i < m; ++i) {
        float acc = 0;
        for (int b = 0; b < blocks; ++b) {
          const uint8_t* blk = row + b * 34;
          int idot = 0;
          for (int e = 0; e < 32; ++e) idot += static_cast<int8_t>(blk[2 + e]) * q[(static_cast<size_t>(i) * blocks + b) * 32 + e];
          const float inv = 1.0f / s[static_cast<size_t>(i) * blocks + b];
          acc = acc + bbcuda::q8_term(idot, inv, bbcuda::half_to_float(static_cast<uint16_t>(blk[0] | (blk[1] << 8))));
        }
        o[static_cast<size_t>(i) * n + j] = acc;
      }
    }
    expect_f32(c, "out", o, out);
  } else if (k == "embedding") {
    const int seq = c.iattr("seq"), vocab = c.iattr("vocab"), embed = c.iattr("embed"), dtype = c.iattr("dtype");
    const Tensor& ids = input(c, "ids");
    const Tensor& table = input(c, "table");
    std::vector<float> o(static_cast<size_t>(seq) * embed);
    for (int s = 0; s < seq; ++s) {
      const int id = ids.i32()[s];
      if (id < 0 || id >= vocab) throw std::runtime_error("id outside the vocabulary");
      const uint8_t* row = table.data.data() + static_cast<size_t>(id) * dense_row_bytes(dtype, embed);
      for (int e = 0; e < embed; ++e) o[static_cast<size_t>(s) * embed + e] = dense_value(dtype, row, e);
    }
    expect_f32(c, "out", o, out);
  } else if (k == "rmsNorm") {
    const int rows = c.iattr("rows"), cols = c.iattr("cols");
    const Tensor& x = input(c, "x");
    const Tensor* w = c.find("weight", Role::Input);
    std::vector<float> o(static_cast<size_t>(rows) * cols);
    for (int r = 0; r < rows; ++r) {
      double sum = 0;
      for (int e = 0; e < cols; ++e) sum += static_cast<double>(x.f32()[static_cast<size_t>(r) * cols + e]) * x.f32()[static_cast<size_t>(r) * cols + e];
      const double denom = std::sqrt(sum / cols + c.attr("eps"));
      for (int e = 0; e < cols; ++e) {
        o[static_cast<size_t>(r) * cols + e] = static_cast<float>(x.f32()[static_cast<size_t>(r) * cols + e] / denom * (w == nullptr ? 1.0 : w->f32()[e]));
      }
    }
    expect_f32(c, "out", o, out);
  } else {
    throw std::invalid_argument("no host reference");
  }
}

}  // namespace

CaseResult run_host_case(const Case& c) {
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

std::vector<std::pair<std::string, bool>> compare_self_tests() {
  std::vector<std::pair<std::string, bool>> t;
  const float a[3] = {1.0f, -2.5f, 3.0e-3f};
  float b[3] = {1.0f, -2.5f, 3.0e-3f};
  t.emplace_back("identical arrays compare equal", compare_f32(a, b, 3, 0, 0).ok);
  b[1] = std::nextafter(b[1], 0.0f);
  const Comparison one_ulp = compare_f32(a, b, 3, 0, 0);
  t.emplace_back("a 1-ulp change fails an exact compare at its index", !one_ulp.ok && one_ulp.first_bad == 1);
  t.emplace_back("a 1-ulp change passes rtol 1e-6", compare_f32(a, b, 3, 1e-6, 0).ok);
  const float z[1] = {0.0f}, nz[1] = {-0.0f};
  t.emplace_back("-0 and +0 differ bit for bit", !compare_f32(z, nz, 1, 0, 0).ok);
  const float nan[1] = {std::numeric_limits<float>::quiet_NaN()}, inf[1] = {std::numeric_limits<float>::infinity()};
  t.emplace_back("NaN matches NaN only", compare_f32(nan, nan, 1, 1e-3, 0).ok && !compare_f32(nan, z, 1, 1e-3, 1).ok);
  t.emplace_back("infinity is never within a tolerance of a finite value", !compare_f32(inf, a, 1, 1, 1e30).ok);
  const int32_t i[2] = {5, -7}, j[2] = {5, -8};
  t.emplace_back("an integer off by one fails", !compare_i32(i, j, 2).ok && compare_i32(i, i, 2).ok);
  // dp4a and the trit decode against their definitions.
  t.emplace_back("dp4a of (−1,0,1,0)·(3,4,5,6) + 10 = 12",
                 bbcuda::dp4a_ref(0x000100ffu, 0x06050403u, 10) == 12);
  t.emplace_back("codes 0,1,2,3 decode to −1,0,1,0", bbcuda::trits_of_codes(0x03020100u) == 0x000100ffu);
  return t;
}

}  // namespace bbharness
