/**
 * Element-wise kernels: unary activations, binary arithmetic with stride broadcasting, and scale. Op
 * codes are the generated constants of the op table (ops.generated.wgsl.ts), passed as a parameter.
 *
 * Exactness: add, sub, mul, div and scale use the soft-float functions, so they are the IEEE f32
 * operations bit for bit (WGSL's own division is only within 2.5 ulp); max and min compare bit patterns
 * (NaN propagates, −0 orders below +0, as the reference); neg, abs, relu and relu2 are exact. exp, silu,
 * gelu, sigmoid and tanh use f32 `exp` in overflow-free forms and match within a tolerance. NaN inputs are
 * passed through explicitly (WGSL may assume there are none).
 */
import { OPS_WGSL } from "../ops.generated.wgsl.js";
import { FLAT_WORKGROUP_WGSL } from "../pipelines.js";
import { SOFTFLOAT_WGSL } from "./softfloat.wgsl.js";

export const ELEMENTWISE_THREADS = 256;
/** Most dimensions a broadcast binary op takes (the strides travel in the uniform parameters). */
export const MAX_BINARY_RANK = 8;

/**
 * WGSL: `apply(op, bits)`, the unary ops by code (needs OPS_WGSL and SOFTFLOAT_WGSL before it). Shared by the
 * unary kernel and the fused block's gated projection, so both compute the same expressions.
 */
export const UNARY_APPLY_WGSL = /* wgsl */ `
// 1 / (1 + e^-v) without overflow.
fn sigmoid(v: f32) -> f32 {
  if (v >= 0.0) { return 1.0 / (1.0 + exp(-v)); }
  let e = exp(v);
  return e / (1.0 + e);
}

fn tanh_stable(v: f32) -> f32 {
  let e = exp(-2.0 * abs(v));
  return sign(v) * (1.0 - e) / (1.0 + e);
}

fn apply(op: u32, bits: u32) -> u32 {
  let v = bitcast<f32>(bits);
  switch op {
    case UNARY_NEG: { return bits ^ 0x80000000u; }
    case UNARY_ABS: { return bits & 0x7fffffffu; }
    case UNARY_RELU: { return select(0u, bits, (bits >> 31u) == 0u && bits != 0u); }
    case UNARY_RELU2: {
      let r = select(0u, bits, (bits >> 31u) == 0u);
      return sf_mul(r, r);
    }
    case UNARY_EXP: {
      if (v > 88.72283) { return 0x7f800000u; }
      if (v < -103.97) { return 0u; }
      return bitcast<u32>(exp(v));
    }
    case UNARY_SIGMOID: { return bitcast<u32>(sigmoid(v)); }
    case UNARY_SILU: { return bitcast<u32>(v * sigmoid(v)); }
    case UNARY_TANH: { return bitcast<u32>(tanh_stable(v)); }
    case UNARY_GELU: {
      let inner = 0.7978845608028654 * (v + 0.044715 * v * v * v);
      return bitcast<u32>(0.5 * v * (1.0 + tanh_stable(clamp(inner, -20.0, 20.0))));
    }
    default: { return 0x7fc00000u; }
  }
}
`;

/** Params: count, op, factor bits (scale). Bindings: x, out (f32 bits). */
export const UNARY_WGSL = /* wgsl */ `
${OPS_WGSL}
${SOFTFLOAT_WGSL}
${FLAT_WORKGROUP_WGSL}
struct Params { count: u32, op: u32, factor_bits: u32, scale_only: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

${UNARY_APPLY_WGSL}
@compute @workgroup_size(${ELEMENTWISE_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let i = flat_workgroup(wid, nwg) * ${ELEMENTWISE_THREADS}u + t;
  if (i >= p.count) { return; }
  let bits = x[i];
  if ((bits & 0x7fffffffu) > 0x7f800000u) { out[i] = bits; return; }
  if (p.scale_only != 0u) {
    out[i] = sf_mul(bits, p.factor_bits);
  } else {
    out[i] = apply(p.op, bits);
  }
}
`;

/**
 * Params: count, op, rank, then per dimension (size, a stride, b stride) packed in vec4s.
 * Bindings: a, b, out (f32 bits).
 */
export const BINARY_WGSL = /* wgsl */ `
${OPS_WGSL}
${SOFTFLOAT_WGSL}
${FLAT_WORKGROUP_WGSL}
struct Params { count: u32, op: u32, rank: u32, _pad: u32, dims: array<vec4<u32>, ${MAX_BINARY_RANK}> }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<u32>;
@group(0) @binding(2) var<storage, read> b: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;

fn is_nan(v: u32) -> bool { return (v & 0x7fffffffu) > 0x7f800000u; }

// x < y for non-NaN f32 bit patterns, with −0 below +0.
fn less(x: u32, y: u32) -> bool {
  let xs = (x >> 31u) == 1u;
  let ys = (y >> 31u) == 1u;
  if (xs != ys) { return xs; }
  if (xs) { return x > y; }
  return x < y;
}

fn combine(op: u32, x: u32, y: u32) -> u32 {
  switch op {
    case BINARY_ADD: { return sf_add(x, y); }
    case BINARY_SUB: { return sf_add(x, y ^ 0x80000000u); }
    case BINARY_MUL: { return sf_mul(x, y); }
    case BINARY_DIV: { return sf_div(x, y); }
    case BINARY_MAX: {
      if (is_nan(x) || is_nan(y)) { return 0x7fc00000u; }
      return select(x, y, less(x, y));
    }
    case BINARY_MIN: {
      if (is_nan(x) || is_nan(y)) { return 0x7fc00000u; }
      return select(x, y, less(y, x));
    }
    default: { return 0x7fc00000u; }
  }
}

@compute @workgroup_size(${ELEMENTWISE_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let i = flat_workgroup(wid, nwg) * ${ELEMENTWISE_THREADS}u + t;
  if (i >= p.count) { return; }
  var rest = i;
  var ia = 0u;
  var ib = 0u;
  for (var d = i32(p.rank) - 1; d >= 0; d = d - 1) {
    let dim = p.dims[d];
    let idx = rest % dim.x;
    rest = rest / dim.x;
    ia = ia + idx * dim.y;
    ib = ib + idx * dim.z;
  }
  out[i] = combine(p.op, a[ia], b[ib]);
}
`;
