/**
 * Float kernels: RMSNorm, softmax, RoPE (from a precomputed cos/sin table) and causal attention with
 * grouped KV heads. They compute in f32 (the JS reference uses float64 and rounds once), so they match
 * within a stated tolerance, not bit for bit. Kernels that the reference allows in place (RMSNorm,
 * softmax, RoPE) have an in-place variant: WebGPU forbids binding one buffer twice when one binding is
 * writable, so there x and out are one read_write binding (every element is read and written by the same
 * thread).
 */
import { FLAT_WORKGROUP_WGSL, statusBinding, STATUS } from "../pipelines.js";
import { SOFTFLOAT_WGSL } from "./softfloat.wgsl.js";

export const ROW_THREADS = 256;
export const ROPE_THREADS = 256;
export const ATTENTION_THREADS = 64;
/** Largest head dimension the attention kernel keeps per thread (ATTENTION_THREADS · 4). */
export const MAX_ATTENTION_HEAD_DIM = 256;

function ioBindings(inPlace: boolean, first: number): string {
  return inPlace
    ? `@group(0) @binding(${first}) var<storage, read_write> x: array<f32>;`
    : `@group(0) @binding(${first}) var<storage, read> x: array<f32>;\n@group(0) @binding(${first + 1}) var<storage, read_write> out: array<f32>;`;
}

/** How a kernel writes element i: through `out`, or back into `x` when in place. */
function store(inPlace: boolean): string {
  return `fn store(i: u32, v: f32) { ${inPlace ? "x[i] = v;" : "out[i] = v;"} }`;
}

/** WGSL: a tree reduction of `red` (ROW_THREADS f32) with `op`, result in red[0]. */
function treeReduce(op: string): string {
  return `
  workgroupBarrier();
  for (var stride = ${ROW_THREADS / 2}u; stride > 0u; stride = stride >> 1u) {
    if (t < stride) { red[t] = ${op}(red[t], red[t + stride]); }
    workgroupBarrier();
  }`;
}

/**
 * RMSNorm. Params: rows, cols, eps (f32), has_weight. Bindings: x[, out], weight (a 4-byte dummy when none).
 * `withScales` (not in place; the fused block) also does pass 1 of the activation quantizer
 * (quantize.wgsl.ts) on the normalized row: the absmax of the values it stores (a max of bit patterns, so
 * the order does not matter), the soft-float scale to binding 4 and a non-finite value's index to the
 * status buffer (binding 5). Params then add the quantizer's eps bits.
 */
export function rmsNormShader(inPlace: boolean, withScales = false): string {
  const weightBinding = inPlace ? 2 : 3;
  const scales = withScales && !inPlace;
  return /* wgsl */ `
${scales ? SOFTFLOAT_WGSL : ""}
${FLAT_WORKGROUP_WGSL}
struct Params { rows: u32, cols: u32, eps: f32, has_weight: u32${scales ? ", quant_eps_bits: u32, _p0: u32, _p1: u32, _p2: u32" : ""} }
@group(0) @binding(0) var<uniform> p: Params;
${ioBindings(inPlace, 1)}
@group(0) @binding(${weightBinding}) var<storage, read> weight: array<f32>;
${scales ? `@group(0) @binding(4) var<storage, read_write> scales: array<u32>;\n${statusBinding(5)}\nvar<workgroup> mx: array<u32, ${ROW_THREADS}>;` : ""}
${store(inPlace)}
fn add(a: f32, b: f32) -> f32 { return a + b; }

var<workgroup> red: array<f32, ${ROW_THREADS}>;

@compute @workgroup_size(${ROW_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let row = flat_workgroup(wid, nwg);
  if (row >= p.rows) { return; }
  let base = row * p.cols;
  var s = 0.0;
  for (var c = t; c < p.cols; c = c + ${ROW_THREADS}u) {
    let v = x[base + c];
    s = s + v * v;
  }
  red[t] = s;
  ${treeReduce("add")}
  let inv = 1.0 / sqrt(red[0] / f32(p.cols) + p.eps);
  ${scales ? "var m = 0u;" : ""}
  for (var c = t; c < p.cols; c = c + ${ROW_THREADS}u) {
    let w = select(1.0, weight[c], p.has_weight != 0u);
    let v = x[base + c] * inv * w;
    store(base + c, v);${
      scales
        ? `
    let mag = bitcast<u32>(v) & 0x7fffffffu;
    if (mag >= 0x7f800000u) {
      atomicMin(&status[${STATUS.nonFinite}], base + c);
    }
    m = max(m, mag);`
        : ""
    }
  }${
    scales
      ? `
  mx[t] = m;
  workgroupBarrier();
  for (var stride = ${ROW_THREADS / 2}u; stride > 0u; stride = stride >> 1u) {
    if (t < stride) { mx[t] = max(mx[t], mx[t + stride]); }
    workgroupBarrier();
  }
  if (t == 0u) {
    scales[row] = sf_div(0x42fe0000u, max(mx[0], p.quant_eps_bits)); // 127 / absmax, as quantScalesShader
  }`
      : ""
  }
}
`;
}

/**
 * Softmax over rows. −Inf entries (read as bits, since WGSL may assume no infinities) get 0; a fully
 * masked row gives zeros; a NaN or +Inf anywhere makes the row NaN, as in the reference.
 * Params: rows, cols, NaN bits. Bindings: x[, out].
 */
export function softmaxShader(inPlace: boolean): string {
  return /* wgsl */ `
${FLAT_WORKGROUP_WGSL}
struct Params { rows: u32, cols: u32, nan_bits: u32, _pad: u32 } // nan_bits: a NaN (WGSL has no NaN constant)
@group(0) @binding(0) var<uniform> p: Params;
${ioBindings(inPlace, 1)}
${store(inPlace)}
fn add(a: f32, b: f32) -> f32 { return a + b; }

var<workgroup> red: array<f32, ${ROW_THREADS}>;
var<workgroup> flags: atomic<u32>; // bit 0: a NaN or +Inf; bit 1: a value other than −Inf

const NEG_INF_BITS: u32 = 0xff800000u;

@compute @workgroup_size(${ROW_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let row = flat_workgroup(wid, nwg);
  if (row >= p.rows) { return; }
  if (t == 0u) { atomicStore(&flags, 0u); }
  workgroupBarrier();
  let base = row * p.cols;
  var mx = -3.4028234663852886e38;
  var f = 0u;
  for (var c = t; c < p.cols; c = c + ${ROW_THREADS}u) {
    let bits = bitcast<u32>(x[base + c]);
    if (bits == NEG_INF_BITS) { continue; }
    if ((bits & 0x7fffffffu) >= 0x7f800000u) { f = f | 1u; } else { f = f | 2u; mx = max(mx, bitcast<f32>(bits)); }
  }
  atomicOr(&flags, f);
  red[t] = mx;
  ${treeReduce("max")}
  let row_max = red[0];
  let row_flags = atomicLoad(&flags);
  workgroupBarrier();
  var s = 0.0;
  for (var c = t; c < p.cols; c = c + ${ROW_THREADS}u) {
    let bits = bitcast<u32>(x[base + c]);
    if (bits != NEG_INF_BITS) { s = s + exp(bitcast<f32>(bits) - row_max); }
  }
  red[t] = s;
  ${treeReduce("add")}
  let total = red[0];
  for (var c = t; c < p.cols; c = c + ${ROW_THREADS}u) {
    let bits = bitcast<u32>(x[base + c]);
    var v = 0.0;
    if ((row_flags & 1u) != 0u) {
      v = bitcast<f32>(p.nan_bits);
    } else if (bits != NEG_INF_BITS) {
      v = exp(bitcast<f32>(bits) - row_max) / total;
    }
    store(base + c, v);
  }
}
`;
}

/** Positions per step of the RoPE table's high part (see ropeShader). */
export const ROPE_STEP = 1024;

/**
 * RoPE from a factored table of (cos, sin) pairs computed in float64 on the host like the reference's
 * angles: rows [0, low_rows) hold the angles of positions 0 … ROPE_STEP − 1, then one row per multiple of
 * ROPE_STEP. Position pos = hi·ROPE_STEP + lo rotates by the sum of the two angles:
 *   cos = cos_hi·cos_lo − sin_hi·sin_lo,  sin = sin_hi·cos_lo + cos_hi·sin_lo
 * (a few f32 ulp; exactly the low row below ROPE_STEP, where the high row is (1, 0)). So a table for a
 * million positions takes 2·1024 rows instead of 10^6, and is built once per (theta, headDim).
 * One thread per (row, head, pair). A position outside the table is recorded in the status buffer and its
 * row copied unrotated.
 * Params: seq, heads, head_dim, table_positions, neox, low_rows. Bindings: x[, out], positions (i32), table, status.
 */
export function ropeShader(inPlace: boolean): string {
  const first = inPlace ? 2 : 3;
  return /* wgsl */ `
${FLAT_WORKGROUP_WGSL}
struct Params { seq: u32, heads: u32, head_dim: u32, table_positions: u32, neox: u32, low_rows: u32, _pad1: u32, _pad2: u32 }
@group(0) @binding(0) var<uniform> p: Params;
${ioBindings(inPlace, 1)}
@group(0) @binding(${first}) var<storage, read> positions: array<i32>;
@group(0) @binding(${first + 1}) var<storage, read> table: array<vec2<f32>>;
${statusBinding(first + 2)}
${store(inPlace)}

@compute @workgroup_size(${ROPE_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let half = p.head_dim / 2u;
  let i = flat_workgroup(wid, nwg) * ${ROPE_THREADS}u + t;
  if (i >= p.seq * p.heads * half) { return; }
  let j = i % half;
  let sh = i / half; // row · heads + head
  let s = sh / p.heads;
  let base = sh * p.head_dim;
  var a = base + 2u * j;
  var b = a + 1u;
  if (p.neox != 0u) {
    a = base + j;
    b = a + half;
  }
  let xa = x[a];
  let xb = x[b];
  let pos = positions[s];
  if (pos < 0 || u32(pos) >= p.table_positions) {
    atomicMin(&status[${STATUS.badPosition}], s);
    store(a, xa);
    store(b, xb);
    return;
  }
  let lo = table[(u32(pos) % ${ROPE_STEP}u) * half + j];
  let hi = table[(p.low_rows + u32(pos) / ${ROPE_STEP}u) * half + j];
  let c = hi.x * lo.x - hi.y * lo.y;
  let sn = hi.y * lo.x + hi.x * lo.y;
  store(a, xa * c - xb * sn);
  store(b, xb * c + xa * sn);
}
`;
}

/**
 * Causal attention with grouped KV heads against a KV cache: one workgroup per (query row, head), keys
 * in chunks of 64 (one per thread) with an online softmax (running max and sum), the output dims spread
 * over the threads (up to 4 each). Params: seq_q, heads, kv_heads, head_dim, pos0, scale.
 * Bindings: q, k, v, out.
 */
export const ATTENTION_WGSL = /* wgsl */ `
${FLAT_WORKGROUP_WGSL}
struct Params { seq_q: u32, heads: u32, kv_heads: u32, head_dim: u32, pos0: u32, scale: f32, _pad0: u32, _pad1: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

const T: u32 = ${ATTENTION_THREADS}u;
const DIMS_PER_THREAD: u32 = ${MAX_ATTENTION_HEAD_DIM / ATTENTION_THREADS}u;

var<workgroup> qs: array<f32, ${MAX_ATTENTION_HEAD_DIM}>;
var<workgroup> sc: array<f32, ${ATTENTION_THREADS}>;
var<workgroup> red: array<f32, ${ATTENTION_THREADS}>;

@compute @workgroup_size(${ATTENTION_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let unit = flat_workgroup(wid, nwg);
  if (unit >= p.seq_q * p.heads) { return; }
  let i = unit / p.heads;
  let h = unit % p.heads;
  let d_len = p.head_dim;
  let g = h / (p.heads / p.kv_heads);
  let kv_row = p.kv_heads * d_len;
  let q_base = unit * d_len;
  for (var d = t; d < d_len; d = d + T) { qs[d] = q[q_base + d]; }
  workgroupBarrier();
  let last = p.pos0 + i; // keys 0 … last
  var run_max = 0.0;
  var run_sum = 0.0;
  var acc: array<f32, ${MAX_ATTENTION_HEAD_DIM / ATTENTION_THREADS}>;
  for (var c0 = 0u; c0 <= last; c0 = c0 + T) {
    let key = c0 + t;
    var score = -3.4028234663852886e38;
    if (key <= last) {
      let k_base = key * kv_row + g * d_len;
      var dot = 0.0;
      for (var d = 0u; d < d_len; d = d + 1u) { dot = dot + qs[d] * k[k_base + d]; }
      score = dot * p.scale;
    }
    red[t] = score;
    workgroupBarrier();
    for (var stride = T / 2u; stride > 0u; stride = stride >> 1u) {
      if (t < stride) { red[t] = max(red[t], red[t + stride]); }
      workgroupBarrier();
    }
    let chunk_max = red[0];
    let new_max = select(max(run_max, chunk_max), chunk_max, c0 == 0u);
    let pr = select(0.0, exp(score - new_max), key <= last);
    workgroupBarrier();
    sc[t] = pr;
    red[t] = pr;
    workgroupBarrier();
    for (var stride = T / 2u; stride > 0u; stride = stride >> 1u) {
      if (t < stride) { red[t] = red[t] + red[t + stride]; }
      workgroupBarrier();
    }
    let correction = select(exp(run_max - new_max), 0.0, c0 == 0u);
    run_sum = run_sum * correction + red[0];
    run_max = new_max;
    let count = min(T, last + 1u - c0);
    for (var r = 0u; r < DIMS_PER_THREAD; r = r + 1u) {
      let d = t + r * T;
      if (d < d_len) {
        var s = acc[r] * correction;
        for (var e = 0u; e < count; e = e + 1u) {
          s = s + sc[e] * v[(c0 + e) * kv_row + g * d_len + d];
        }
        acc[r] = s;
      }
    }
    workgroupBarrier();
  }
  for (var r = 0u; r < DIMS_PER_THREAD; r = r + 1u) {
    let d = t + r * T;
    if (d < d_len) { out[q_base + d] = acc[r] / run_sum; }
  }
}
`;
