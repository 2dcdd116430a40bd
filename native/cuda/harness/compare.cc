#include "compare.h"

#include <cmath>
#include <cstdio>
#include <cstring>

namespace bbharness {

Comparison compare_f32(const float* want, const float* got, size_t n, double rtol, double atol) {
  Comparison c;
  c.elements = n;
  const bool exact = rtol == 0 && atol == 0;
  for (size_t i = 0; i < n; ++i) {
    const double w = want[i], g = got[i];
    bool same;
    if (exact) {
      uint32_t a, b;
      std::memcpy(&a, &want[i], 4);
      std::memcpy(&b, &got[i], 4);
      same = a == b || (std::isnan(w) && std::isnan(g));
    } else if (std::isnan(w) || std::isnan(g)) {
      same = std::isnan(w) && std::isnan(g);
    } else if (std::isinf(w) || std::isinf(g)) {
      same = w == g;
    } else {
      const double d = std::fabs(w - g);
      same = d <= atol + rtol * std::fabs(w);
      if (d > c.max_abs) c.max_abs = d;
      if (w != 0 && d / std::fabs(w) > c.max_rel) c.max_rel = d / std::fabs(w);
    }
    if (!same) {
      if (c.first_bad < 0) {
        c.first_bad = static_cast<long long>(i);
        c.want_at_first = w;
        c.got_at_first = g;
      }
      ++c.mismatches;
    }
  }
  c.ok = c.mismatches == 0;
  return c;
}

template <typename T>
Comparison compare_int(const T* want, const T* got, size_t n) {
  Comparison c;
  c.elements = n;
  for (size_t i = 0; i < n; ++i) {
    if (want[i] != got[i]) {
      const double d = std::fabs(static_cast<double>(want[i]) - static_cast<double>(got[i]));
      if (d > c.max_abs) c.max_abs = d;
      if (c.first_bad < 0) {
        c.first_bad = static_cast<long long>(i);
        c.want_at_first = want[i];
        c.got_at_first = got[i];
      }
      ++c.mismatches;
    }
  }
  c.ok = c.mismatches == 0;
  return c;
}

Comparison compare_i32(const int32_t* want, const int32_t* got, size_t n) { return compare_int(want, got, n); }
Comparison compare_i8(const int8_t* want, const int8_t* got, size_t n) { return compare_int(want, got, n); }

std::string json_number(double v) {
  if (!std::isfinite(v)) return std::isnan(v) ? "\"NaN\"" : (v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

std::string to_json(const Comparison& c) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "{\"ok\":%s,\"elements\":%zu,\"mismatches\":%zu,\"first_bad\":%lld,",
                c.ok ? "true" : "false", c.elements, c.mismatches, c.first_bad);
  return std::string(buf) + "\"want\":" + json_number(c.want_at_first) + ",\"got\":" + json_number(c.got_at_first) +
         ",\"max_abs\":" + json_number(c.max_abs) + ",\"max_rel\":" + json_number(c.max_rel) + "}";
}

}  // namespace bbharness
