/**
 * Per-row absmax int8 quantization, bit-exact with `quantizeActivations` (src/quant/values.ts):
 *   s = fround(127 / max(absmax, fround(QUANT_EPS))),  q = clamp(roundHalfEven(fround(x · s)), −128, 127).
 * Two passes, so that rows whose int8 output does not start on a 4-byte boundary never share a written
 * word between workgroups:
 *   1. scales: one workgroup per row reduces |x| (as bit patterns: exact, order-free) and divides with
 *      the soft-float division; optionally also 1/s (the Q8_0 head's per-block inverse);
 *   2. values: one thread per output word (4 int8) multiplies and rounds with the soft-float operations.
 * x is read as raw bits, so NaN and ±Inf are seen as they are; the first one's index goes to the status
 * buffer (the reference throws ValueError "non-finite").
 */
import { FLAT_WORKGROUP_WGSL, statusBinding, STATUS } from "../pipelines.js";
import { SOFTFLOAT_WGSL } from "./softfloat.wgsl.js";

export const QUANT_SCALES_THREADS = 64;
export const QUANT_VALUES_THREADS = 256;

/** Pass 1. Params: rows, cols, eps bits. Bindings: x, scales[, inverses], status. */
export function quantScalesShader(withInverse: boolean): string {
  return /* wgsl */ `
${SOFTFLOAT_WGSL}
${FLAT_WORKGROUP_WGSL}
struct Params { rows: u32, cols: u32, eps_bits: u32, _pad: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> scales: array<u32>;
${withInverse ? "@group(0) @binding(3) var<storage, read_write> inverses: array<u32>;" : ""}
${statusBinding(withInverse ? 4 : 3)}

var<workgroup> partial: array<u32, ${QUANT_SCALES_THREADS}>;

@compute @workgroup_size(${QUANT_SCALES_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let row = flat_workgroup(wid, nwg);
  if (row >= p.rows) { return; }
  let base = row * p.cols;
  var m = 0u;
  for (var c = t; c < p.cols; c = c + ${QUANT_SCALES_THREADS}u) {
    let mag = x[base + c] & 0x7fffffffu;
    if (mag >= 0x7f800000u) {
      atomicMin(&status[${STATUS.nonFinite}], base + c);
    }
    m = max(m, mag);
  }
  partial[t] = m;
  workgroupBarrier();
  for (var stride = ${QUANT_SCALES_THREADS / 2}u; stride > 0u; stride = stride >> 1u) {
    if (t < stride) {
      partial[t] = max(partial[t], partial[t + stride]);
    }
    workgroupBarrier();
  }
  if (t == 0u) {
    let absmax = max(partial[0], p.eps_bits);
    let s = sf_div(0x42fe0000u, absmax); // 127 / absmax
    scales[row] = s;
    ${withInverse ? "inverses[row] = sf_div(0x3f800000u, s); // fround(1 / s)" : ""}
  }
}
`;
}

/** Pass 2. Params: rows, cols, words (= ceil(rows·cols / 4)). Bindings: x, scales, q (int8 packed 4 per u32). */
export const QUANT_VALUES_WGSL = /* wgsl */ `
${SOFTFLOAT_WGSL}
${FLAT_WORKGROUP_WGSL}
struct Params { rows: u32, cols: u32, words: u32, _pad: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read> scales: array<u32>;
@group(0) @binding(3) var<storage, read_write> q: array<u32>;

@compute @workgroup_size(${QUANT_VALUES_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let w = flat_workgroup(wid, nwg) * ${QUANT_VALUES_THREADS}u + t;
  if (w >= p.words) { return; }
  let total = p.rows * p.cols;
  var packed = 0u;
  for (var b = 0u; b < 4u; b = b + 1u) {
    let e = w * 4u + b;
    if (e < total) {
      let s = scales[e / p.cols];
      let v = sf_round_even_clamp(sf_mul(x[e], s), -128, 127);
      packed = packed | ((bitcast<u32>(v) & 0xffu) << (8u * b));
    }
  }
  q[w] = packed;
}
`;
