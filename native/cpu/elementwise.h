// The element-wise ops this addon implements: one switch per code space of the op table
// (src/backends/ops.ts → ops.generated.h), each case handing `body` the op's element function.
//
// The switches are the one list: the kernels (float_kernels.cc) run an op through them, and
// `implements(op)` asks them without running anything; the addon exports the implemented codes
// (`unaryOps`, `binaryOps`) and the TS glue declares them as the backend's capabilities, so the
// dispatcher routes an op without a case here to the next capable backend. `default` is "not
// implemented here", never a computation: kernels called with such an op return false and the addon
// throws a RangeError (the glue's UsageError "unsupported"); codes outside the enum never get this far.
//
// Implementing a table op on this backend = one case here (then `node scripts/build-native.mjs`).
#pragma once

#include <cmath>
#include <limits>

#include "ops.generated.h"

namespace barbell {
namespace elementwise {

// Math.max / Math.min: NaN propagates, −0 < +0.
inline double js_max(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) {
    return std::numeric_limits<double>::quiet_NaN();
  }
  if (a == b) {
    return std::signbit(a) ? b : a;
  }
  return a > b ? a : b;
}
inline double js_min(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) {
    return std::numeric_limits<double>::quiet_NaN();
  }
  if (a == b) {
    return std::signbit(a) ? a : b;
  }
  return a < b ? a : b;
}

// Unary ops: double → double (the reference's float64 definitions); the caller rounds to f32 once.
template <class Body>
constexpr bool with_unary(ops::Unary op, Body&& body) {
  switch (op) {
    case ops::Unary::kNeg: body([](double x) { return -x; }); return true;
    case ops::Unary::kAbs: body([](double x) { return std::fabs(x); }); return true;
    case ops::Unary::kExp: body([](double x) { return std::exp(x); }); return true;
    case ops::Unary::kRelu: body([](double x) { return std::isnan(x) ? x : (x > 0 ? x : 0.0); }); return true;
    case ops::Unary::kRelu2:
      body([](double x) {
        const double r = std::isnan(x) ? x : (x > 0 ? x : 0.0);
        return r * r;
      });
      return true;
    case ops::Unary::kSilu: body([](double x) { return x / (1 + std::exp(-x)); }); return true;
    case ops::Unary::kGelu:
      body([](double x) {
        const double k = std::sqrt(2 / M_PI);
        return 0.5 * x * (1 + std::tanh(k * (x + 0.044715 * x * x * x)));
      });
      return true;
    case ops::Unary::kSigmoid: body([](double x) { return 1 / (1 + std::exp(-x)); }); return true;
    case ops::Unary::kTanh: body([](double x) { return std::tanh(x); }); return true;
    default: return false;  // not implemented here (see the top of this file)
  }
}

// Binary ops: f32 × f32 → f32 (a single f32 add / sub / mul / div rounds like the reference's
// fround(a op b) in float64; max / min compare in double, exactly).
template <class Body>
constexpr bool with_binary(ops::Binary op, Body&& body) {
  switch (op) {
    case ops::Binary::kAdd: body([](float a, float b) { return a + b; }); return true;
    case ops::Binary::kSub: body([](float a, float b) { return a - b; }); return true;
    case ops::Binary::kMul: body([](float a, float b) { return a * b; }); return true;
    case ops::Binary::kDiv: body([](float a, float b) { return a / b; }); return true;
    case ops::Binary::kMax: body([](float a, float b) { return static_cast<float>(js_max(a, b)); }); return true;
    case ops::Binary::kMin: body([](float a, float b) { return static_cast<float>(js_min(a, b)); }); return true;
    default: return false;  // not implemented here (see the top of this file)
  }
}

// Whether this build has a case for `op` (nothing runs).
constexpr bool implements(ops::Unary op) {
  return with_unary(op, [](auto) {});
}
constexpr bool implements(ops::Binary op) {
  return with_binary(op, [](auto) {});
}

}  // namespace elementwise
}  // namespace barbell
