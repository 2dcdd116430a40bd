/**
 * Kernels over dense weights in their file formats (f32, f16, bf16, q8_0, q6_k): the float head, the
 * integer Q8_0 head and the embedding lookup.
 *
 * - matmulQ8I8 is exact (semantics in src/backends/js/kernels/dense.ts): per output
 *   acc ← fround(acc + fround(fround(idot · inv) · d)) over the blocks in order. A workgroup computes a
 *   TM × TN tile; its 64 threads take one block each per chunk of 64 blocks, compute the block's term for
 *   every output of the tile with dot4I8Packed and the soft-float multiply, and put the terms in workgroup
 *   memory; then one thread per output adds that chunk's terms in block order. The parallel part (the
 *   integer dots, coalesced weight reads) is most of the work; the ordered sum is one soft-float add per
 *   block and output.
 * - matmulDense is a float kernel (stated tolerance): per-thread f32 partial sums over a strided slice of
 *   k, reduced in workgroup memory.
 * - embedding copies (f32), widens (f16, bf16: exactly) or scales (q8_0: q·d; q6_k: (d·scale)·(q6 − 32),
 *   d·scale exact, one rounding, as the reference decoders) one table row per output row; a token id outside [0, vocab) is recorded in the status buffer and its row left as 0.
 */
import { FLAT_WORKGROUP_WGSL, statusBinding, STATUS } from "../pipelines.js";
import { unalignedLoad } from "./bitmatmul.wgsl.js";
import { SOFTFLOAT_WGSL } from "./softfloat.wgsl.js";

export const DENSE_THREADS = 64;
export const EMBEDDING_THREADS = 256;
/** Bytes of one Q8_0 block: an f16 scale and 32 int8. */
export const Q8_0_BLOCK_BYTES = 34;

/** Bytes of one Q6_K block (src/quant/formats/q6-k.ts): ql[128], qh[64], 16 int8 scales, an f16 d; 256 elements. */
export const Q6_K_BLOCK_BYTES = 210;

export type DenseFormat = "f32" | "f16" | "bf16" | "q8_0" | "q6_k";

/**
 * WGSL: element e (0…255) of the Q6_K block at byte offset `at` of `buf`, as its integer factors: the int8 sub-block
 * scale and q6 − 32 (value = d · scale · (q6 − 32); d · scale is exact in f32). Layout in q6-k.ts.
 */
function q6kAt(buf: string): string {
  return /* wgsl */ `
fn q6k_byte(at: u32) -> u32 { return (${buf}[at >> 2u] >> ((at & 3u) * 8u)) & 0xffu; }
fn q6k_scale(at: u32, e: u32) -> i32 {
  let n = e / 128u;
  let r = e % 128u;
  let sc = q6k_byte(at + 192u + 8u * n + (r % 32u) / 16u + 2u * (r / 32u));
  return bitcast<i32>(sc << 24u) >> 24u;
}
fn q6k_code(at: u32, e: u32) -> i32 {
  let n = e / 128u;
  let r = e % 128u;
  let quarter = r / 32u;
  let l = r % 32u;
  let low = (q6k_byte(at + 64u * n + l + (quarter & 1u) * 32u) >> ((quarter >> 1u) * 4u)) & 0xfu;
  let high = (q6k_byte(at + 128u + 32u * n + l) >> (2u * quarter)) & 3u;
  return i32(low | (high << 4u)) - 32;
}
fn q6k_d(at: u32) -> u32 {
  return sf_half_to_f32(q6k_byte(at + 208u) | (q6k_byte(at + 209u) << 8u));
}
`;
}

/** WGSL: the f16 at a 2-aligned byte offset of `buf`, as f32 bits. */
function halfAt(name: string, buf: string): string {
  return /* wgsl */ `
fn ${name}(byte_offset: u32) -> u32 {
  let word = ${buf}[byte_offset >> 2u];
  return sf_half_to_f32((word >> ((byte_offset & 2u) * 8u)) & 0xffffu);
}
`;
}

/**
 * The integer Q8_0 head. Params: m, blocks (k / 32), n, row_bytes. Bindings: xq (int8, blocks of 32 per
 * row, quantized per block), inv (f32 bits per (row, block)), w (q8_0 rows), out (f32 bits).
 */
export function q8i8Shader(tm: number, tn: number): string {
  const T = DENSE_THREADS;
  const outs = tm * tn;
  return /* wgsl */ `
${SOFTFLOAT_WGSL}
${FLAT_WORKGROUP_WGSL}
struct Params { m: u32, blocks: u32, n: u32, row_bytes: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> xq: array<u32>;
@group(0) @binding(2) var<storage, read> inv: array<u32>;
@group(0) @binding(3) var<storage, read> wts: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<u32>;

var<workgroup> terms: array<u32, ${outs * T}>;

${unalignedLoad("load_w", "wts")}
${halfAt("half_w", "wts")}

@compute @workgroup_size(${T})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let tiles_n = (p.n + ${tn - 1}u) / ${tn}u;
  let tiles_m = (p.m + ${tm - 1}u) / ${tm}u;
  let tile = flat_workgroup(wid, nwg);
  if (tile >= tiles_m * tiles_n) { return; }
  let m0 = (tile / tiles_n) * ${tm}u;
  let n0 = (tile % tiles_n) * ${tn}u;
  var acc = 0u; // the running sum of output t (f32 bits), kept by thread t < ${outs}
  var xw: array<u32, ${8 * tm}>;
  for (var b0 = 0u; b0 < p.blocks; b0 = b0 + ${T}u) {
    let b = b0 + t;
    if (b < p.blocks) {
      for (var m = 0u; m < ${tm}u; m = m + 1u) {
        let row = min(m0 + m, p.m - 1u);
        for (var q = 0u; q < 8u; q = q + 1u) {
          xw[m * 8u + q] = xq[(row * p.blocks + b) * 8u + q];
        }
      }
      for (var j = 0u; j < ${tn}u; j = j + 1u) {
        let at = min(n0 + j, p.n - 1u) * p.row_bytes + b * ${Q8_0_BLOCK_BYTES}u;
        let d = half_w(at);
        var qw: array<u32, 8>;
        for (var q = 0u; q < 8u; q = q + 1u) {
          qw[q] = load_w(at + 2u + q * 4u);
        }
        for (var m = 0u; m < ${tm}u; m = m + 1u) {
          var idot = 0i;
          for (var q = 0u; q < 8u; q = q + 1u) {
            idot = idot + dot4I8Packed(qw[q], xw[m * 8u + q]);
          }
          let row = min(m0 + m, p.m - 1u);
          terms[(m * ${tn}u + j) * ${T}u + t] = sf_mul(sf_mul(sf_from_i32(idot), inv[row * p.blocks + b]), d);
        }
      }
    }
    workgroupBarrier();
    if (t < ${outs}u) {
      let count = min(${T}u, p.blocks - b0);
      for (var i = 0u; i < count; i = i + 1u) {
        acc = sf_add(acc, terms[t * ${T}u + i]);
      }
    }
    workgroupBarrier();
  }
  if (t < ${outs}u) {
    let m = m0 + t / ${tn}u;
    let j = n0 + t % ${tn}u;
    if (m < p.m && j < p.n) {
      out[m * p.n + j] = acc;
    }
  }
}
`;
}

function denseDecl(format: DenseFormat): string {
  switch (format) {
    case "f32":
      return /* wgsl */ `
@group(0) @binding(2) var<storage, read> wts: array<f32>;
// Adds Σ x·w over the slice of row j this thread owns (units: elements).
fn row_units() -> u32 { return p.k; }
fn partial(x_base: u32, j: u32, u: u32) -> f32 {
  return x[x_base + u] * wts[j * p.k + u];
}
`;
    case "f16":
      return /* wgsl */ `
@group(0) @binding(2) var<storage, read> wts: array<u32>;
fn row_units() -> u32 { return p.k; }
fn partial(x_base: u32, j: u32, u: u32) -> f32 {
  let e = j * p.k + u;
  let h = (wts[e >> 1u] >> ((e & 1u) * 16u)) & 0xffffu;
  return x[x_base + u] * bitcast<f32>(sf_half_to_f32(h));
}
`;
    case "bf16":
      return /* wgsl */ `
@group(0) @binding(2) var<storage, read> wts: array<u32>;
fn row_units() -> u32 { return p.k; }
fn partial(x_base: u32, j: u32, u: u32) -> f32 {
  let e = j * p.k + u;
  return x[x_base + u] * bitcast<f32>(((wts[e >> 1u] >> ((e & 1u) * 16u)) & 0xffffu) << 16u);
}
`;
    case "q6_k":
      return /* wgsl */ `
@group(0) @binding(2) var<storage, read> wts: array<u32>;
${q6kAt("wts")}
// One unit is one sub-block of 16 elements (one scale).
fn row_units() -> u32 { return p.k / 16u; }
fn partial(x_base: u32, j: u32, u: u32) -> f32 {
  let at = j * p.row_bytes + (u / 16u) * ${Q6_K_BLOCK_BYTES}u;
  let e0 = (u % 16u) * 16u;
  let ds = bitcast<f32>(q6k_d(at)) * f32(q6k_scale(at, e0));
  var s = 0.0;
  for (var e = 0u; e < 16u; e = e + 1u) {
    s = s + x[x_base + u * 16u + e] * f32(q6k_code(at, e0 + e));
  }
  return s * ds;
}
`;
    case "q8_0":
      return /* wgsl */ `
@group(0) @binding(2) var<storage, read> wts: array<u32>;
${unalignedLoad("load_w", "wts")}
${halfAt("half_w", "wts")}
// One unit is one block of 32.
fn row_units() -> u32 { return p.k / 32u; }
fn partial(x_base: u32, j: u32, u: u32) -> f32 {
  let at = j * p.row_bytes + u * ${Q8_0_BLOCK_BYTES}u;
  let d = bitcast<f32>(half_w(at));
  var s = 0.0;
  for (var q = 0u; q < 8u; q = q + 1u) {
    let word = load_w(at + 2u + q * 4u);
    for (var b = 0u; b < 4u; b = b + 1u) {
      let v = f32(bitcast<i32>(word << (24u - 8u * b)) >> 24u);
      s = s + x[x_base + u * 32u + q * 4u + b] * v;
    }
  }
  return s * d;
}
`;
  }
}

/** Float head. Params: m, k, n, row_bytes. Bindings: x (f32), w (format), out (f32). */
export function denseShader(format: DenseFormat, tm: number, tn: number): string {
  const T = DENSE_THREADS;
  const outs = tm * tn;
  return /* wgsl */ `
${SOFTFLOAT_WGSL}
${FLAT_WORKGROUP_WGSL}
struct Params { m: u32, k: u32, n: u32, row_bytes: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
${denseDecl(format)}

var<workgroup> red: array<f32, ${outs * T}>;

@compute @workgroup_size(${T})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let tiles_n = (p.n + ${tn - 1}u) / ${tn}u;
  let tiles_m = (p.m + ${tm - 1}u) / ${tm}u;
  let tile = flat_workgroup(wid, nwg);
  if (tile >= tiles_m * tiles_n) { return; }
  let m0 = (tile / tiles_n) * ${tm}u;
  let n0 = (tile % tiles_n) * ${tn}u;
  var acc: array<f32, ${outs}>;
  let units = row_units();
  for (var u = t; u < units; u = u + ${T}u) {
    for (var j = 0u; j < ${tn}u; j = j + 1u) {
      let row_j = min(n0 + j, p.n - 1u);
      for (var m = 0u; m < ${tm}u; m = m + 1u) {
        let row_m = min(m0 + m, p.m - 1u);
        acc[m * ${tn}u + j] = acc[m * ${tn}u + j] + partial(row_m * p.k, row_j, u);
      }
    }
  }
  for (var o = 0u; o < ${outs}u; o = o + 1u) {
    red[o * ${T}u + t] = acc[o];
  }
  workgroupBarrier();
  for (var stride = ${T / 2}u; stride > 0u; stride = stride >> 1u) {
    if (t < stride) {
      for (var o = 0u; o < ${outs}u; o = o + 1u) {
        red[o * ${T}u + t] = red[o * ${T}u + t] + red[o * ${T}u + t + stride];
      }
    }
    workgroupBarrier();
  }
  if (t < ${outs}u) {
    let m = m0 + t / ${tn}u;
    let j = n0 + t % ${tn}u;
    if (m < p.m && j < p.n) {
      out[m * p.n + j] = red[t * ${T}u];
    }
  }
}
`;
}

/** Embedding. Params: seq, embed, vocab, row_bytes. Bindings: ids (i32), table (format), out (f32 bits), status. */
export function embeddingShader(format: DenseFormat): string {
  const T = EMBEDDING_THREADS;
  const decode: Record<DenseFormat, string> = {
    f32: "return table[row * p.embed + c];",
    f16: "let e = row * p.embed + c;\n  return sf_half_to_f32((table[e >> 1u] >> ((e & 1u) * 16u)) & 0xffffu);",
    bf16: "let e = row * p.embed + c;\n  return ((table[e >> 1u] >> ((e & 1u) * 16u)) & 0xffffu) << 16u;",
    q8_0: `let at = row * p.row_bytes + (c / 32u) * ${Q8_0_BLOCK_BYTES}u;
  let q = bitcast<i32>(load_t(at + 2u + c % 32u) << 24u) >> 24u;
  return sf_mul(sf_from_i32(q), half_t(at));`,
    q6_k: `let at = row * p.row_bytes + (c / 256u) * ${Q6_K_BLOCK_BYTES}u;
  let e = c % 256u;
  return sf_mul(sf_mul(q6k_d(at), sf_from_i32(q6k_scale(at, e))), sf_from_i32(q6k_code(at, e)));`,
  };
  const helpers = format === "q8_0" ? unalignedLoad("load_t", "table") + halfAt("half_t", "table") : format === "q6_k" ? q6kAt("table") : "";
  return /* wgsl */ `
${SOFTFLOAT_WGSL}
${FLAT_WORKGROUP_WGSL}
struct Params { seq: u32, embed: u32, vocab: u32, row_bytes: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<i32>;
@group(0) @binding(2) var<storage, read> table: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;
${statusBinding(4)}
${helpers}

fn element(row: u32, c: u32) -> u32 {
  ${decode[format]}
}

@compute @workgroup_size(${T})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let i = flat_workgroup(wid, nwg) * ${T}u + t;
  if (i >= p.seq * p.embed) { return; }
  let s = i / p.embed;
  let c = i % p.embed;
  let id = ids[s];
  if (id < 0 || u32(id) >= p.vocab) {
    atomicMin(&status[${STATUS.badId}], s);
    out[i] = 0u;
    return;
  }
  out[i] = element(u32(id), c);
}
`;
}
