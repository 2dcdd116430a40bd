// Comparison of a kernel's output with the JS reference's: bit for bit (exact cases), or element-wise
// |got − want| ≤ atol + rtol·|want| (float cases). NaN matches NaN only; infinities must match exactly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace bbharness {

struct Comparison {
  bool ok = true;
  size_t elements = 0;
  size_t mismatches = 0;
  long long first_bad = -1;
  double max_abs = 0;
  double max_rel = 0;
  double want_at_first = 0, got_at_first = 0;
};

Comparison compare_f32(const float* want, const float* got, size_t n, double rtol, double atol);
Comparison compare_i32(const int32_t* want, const int32_t* got, size_t n);
Comparison compare_i8(const int8_t* want, const int8_t* got, size_t n);
/** One JSON object: {"ok":…, "elements":…, "mismatches":…, "first_bad":…, "max_abs":…, "max_rel":…}. */
std::string to_json(const Comparison& c);
/** A JSON number, or the strings "NaN" / "Infinity" / "-Infinity" (JSON has no non-finite numbers). */
std::string json_number(double v);

}  // namespace bbharness
