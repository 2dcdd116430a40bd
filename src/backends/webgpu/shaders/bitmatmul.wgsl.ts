/**
 * Ternary ("t2") and binary ("b1") weights × int8 activations with dot4I8Packed, bit-exact with
 * matmulTernaryI8 / matmulBinaryI8 of the JS reference:
 *   out[i, j] = fround(fround(fround(acc[i, j]) / xScales[i]) · fround(scale))
 * with acc the exact int32 dot product, the three float steps done by the soft-float functions.
 *
 * Tiling: a workgroup of 64 threads computes a TM × TN tile of the output (TM activation rows, TN weight
 * rows). The contraction runs in chunks of 64 weight words: each thread stages its slice of the TM
 * activation rows in workgroup memory (see below), then reads word t of each of the TN weight rows, so
 * the 64 threads read 64 consecutive words of a row (coalesced). Per-thread int32 partial sums are
 * reduced in workgroup memory at the end (integer addition: the order does not matter).
 *
 * Decoding without unpacking: a t2 word holds 16 two-bit codes; `(w >> 2g) & 0x03030303` puts the
 * codes of elements g, 4+g, 8+g, 12+g in the four byte lanes. The activations are staged in the same
 * order (lane t of group g = element 4t + g), so one dot4I8Packed per group gives Σ code·x, and
 * Σ trit·x = Σ code·x − Σ x, with Σ x over the thread's own lanes. Code 3 (never written by packTernary,
 * decoded as 0 by the reference) is handled exactly by a rarely taken branch: it subtracts 2·x for those
 * lanes. A b1 word holds 32 signs; `(w >> g) & 0x01010101` selects elements g, 8+g, 16+g, 24+g, and
 * Σ sign·x = 2·Σ_{bit set} x − Σ x. Lanes past K are staged as 0, so row padding (and, for rows that do
 * not start on a word, the neighbouring row's bytes read with it) contributes nothing.
 */
import { OPS_WGSL } from "../ops.generated.wgsl.js";
import { FLAT_WORKGROUP_WGSL } from "../pipelines.js";
import { UNARY_APPLY_WGSL } from "./elementwise.wgsl.js";
import { SOFTFLOAT_WGSL } from "./softfloat.wgsl.js";

export const BITMATMUL_THREADS = 64;

export type BitWeights = "ternary" | "binary";

/**
 * What a bit matmul writes (the fused block's epilogues, each the same soft-float steps as the kernels it
 * replaces): "plain" y; "residual" sf_add(res, y), the binary kernel's add of the residual (binding 5);
 * "gated" sf_mul(act(g), u) with g from `wts` and u from the second weights (binding 5, gamma in _pad0,
 * the unary op code in _pad1), the unary kernel then the binary kernel's mul (NaN passes act unchanged).
 */
export type BitEpilogue = "plain" | "residual" | "gated";

/** Elements one weight word holds. */
export function elementsPerWord(kind: BitWeights): number {
  return kind === "ternary" ? 16 : 32;
}

/** WGSL: read a u32 at any byte offset of `buf` (two aligned loads when unaligned; reads past the end give 0). */
export function unalignedLoad(name: string, buf: string): string {
  return /* wgsl */ `
fn ${name}(byte_offset: u32) -> u32 {
  let i = byte_offset >> 2u;
  let sh = (byte_offset & 3u) * 8u;
  let n = arrayLength(&${buf});
  let lo = select(0u, ${buf}[i], i < n);
  if (sh == 0u) { return lo; }
  let hi = select(0u, ${buf}[i + 1u], i + 1u < n);
  return (lo >> sh) | (hi << (32u - sh));
}
`;
}

/**
 * Params: m, k, n, row_bytes (weight bytes per row), words (weight words per row, = ceil(k / per word)),
 * gamma bits. Bindings: x (int8 rows of k bytes), x_scales (f32 bits), w, out (f32 bits).
 */
export function bitMatmulShader(kind: BitWeights, tm: number, tn: number, epilogue: BitEpilogue = "plain"): string {
  const gated = epilogue === "gated";
  const outs = gated ? 2 * tm * tn : tm * tn; // int32 sums per thread: gate then up
  const T = BITMATMUL_THREADS;
  const groups = kind === "ternary" ? 4 : 8; // staged x words per weight word
  const perWord = elementsPerWord(kind);
  const xWordsPerThread = perWord / 4; // x words (4 int8 each) a thread loads per activation row
  // Lane t of group g holds element (groups·t + g) of the thread's slice: byte (g & 3) of x word (groups/4)·t + (g >> 2).
  const stage = Array.from({ length: groups }, (_, g) => {
    const lanes = [0, 1, 2, 3].map((t) => `(((xw[${(groups / 4) * t + (g >> 2)}] >> ${8 * (g & 3)}u) & 0xffu) << ${8 * t}u)`);
    return `      xs[${`m * ${T * groups}u + t * ${groups}u + ${g}u`}] = ${lanes.join(" | ")};`;
  }).join("\n");
  const inner =
    kind === "ternary"
      ? /* wgsl */ `
        var d = 0i;
        for (var g = 0u; g < 4u; g = g + 1u) {
          d = d + dot4I8Packed((w >> (2u * g)) & 0x03030303u, xs[xb + g]);
        }
        let threes = w & (w >> 1u) & 0x55555555u;
        if (threes != 0u) {
          for (var g = 0u; g < 4u; g = g + 1u) {
            d = d - 2i * dot4I8Packed((threes >> (2u * g)) & 0x01010101u, xs[xb + g]);
          }
        }
        acc[A] = acc[A] + d - xsum[m];`
      : /* wgsl */ `
        var d = 0i;
        for (var g = 0u; g < 8u; g = g + 1u) {
          d = d + dot4I8Packed((w >> g) & 0x01010101u, xs[xb + g]);
        }
        acc[A] = acc[A] + 2i * d - xsum[m];`;
  const accumulate = (w: string, base: string): string => inner.replaceAll("w & (w >> 1u)", `${w} & (${w} >> 1u)`).replaceAll("(w >>", `(${w} >>`).replaceAll("acc[A]", `acc[${base}m * ${tn}u + j]`);
  const bindings = {
    plain: "",
    residual: "@group(0) @binding(5) var<storage, read> res: array<u32>;",
    gated: "@group(0) @binding(5) var<storage, read> wts_up: array<u32>;",
  }[epilogue];
  const write = {
    plain: "out[m * p.n + j] = y;",
    residual: "out[m * p.n + j] = sf_add(res[m * p.n + j], y);",
    gated: `var total_up = 0i;
      for (var i = 0u; i < ${T}u; i = i + 1u) {
        total_up = total_up + red[(t + ${tm * tn}u) * ${T}u + i];
      }
      let u = sf_mul(sf_div(sf_from_i32(total_up), x_scales[m]), p._pad0);
      let a = select(apply(p._pad1, y), y, (y & 0x7fffffffu) > 0x7f800000u);
      out[m * p.n + j] = sf_mul(a, u);`,
  }[epilogue];
  return /* wgsl */ `
${gated ? OPS_WGSL : ""}
${SOFTFLOAT_WGSL}
${gated ? UNARY_APPLY_WGSL : ""}
${FLAT_WORKGROUP_WGSL}
struct Params { m: u32, k: u32, n: u32, row_bytes: u32, words: u32, gamma_bits: u32, _pad0: u32, _pad1: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read> x_scales: array<u32>;
@group(0) @binding(3) var<storage, read> wts: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<u32>;
${bindings}

var<workgroup> xs: array<u32, ${tm * T * groups}>;
var<workgroup> red: array<i32, ${outs * T}>;

${unalignedLoad("load_x", "x")}
${unalignedLoad("load_w", "wts")}
${gated ? unalignedLoad("load_w_up", "wts_up") : ""}

@compute @workgroup_size(${T})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let tiles_n = (p.n + ${tn - 1}u) / ${tn}u;
  let tile = flat_workgroup(wid, nwg);
  let tiles_m = (p.m + ${tm - 1}u) / ${tm}u;
  if (tile >= tiles_m * tiles_n) { return; }
  let m0 = (tile / tiles_n) * ${tm}u;
  let n0 = (tile % tiles_n) * ${tn}u;
  var acc: array<i32, ${outs}>;
  var xsum: array<i32, ${tm}>;
  var xw: array<u32, ${xWordsPerThread}>;
  for (var word0 = 0u; word0 < p.words; word0 = word0 + ${T}u) {
    // Stage this thread's ${perWord} activations of each row, permuted into dot4 lanes; lanes past k are 0.
    let e0 = (word0 + t) * ${perWord}u;
    for (var m = 0u; m < ${tm}u; m = m + 1u) {
      xsum[m] = 0i;
      for (var q = 0u; q < ${xWordsPerThread}u; q = q + 1u) {
        let e = e0 + q * 4u;
        var v = 0u;
        if (m0 + m < p.m && e < p.k) {
          v = load_x((m0 + m) * p.k + e);
          let valid = p.k - e;
          if (valid < 4u) { v = v & ((1u << (8u * valid)) - 1u); }
        }
        xw[q] = v;
        xsum[m] = xsum[m] + dot4I8Packed(v, 0x01010101u);
      }
${stage}
    }
    workgroupBarrier();
    if (word0 + t < p.words) {
      for (var j = 0u; j < ${tn}u; j = j + 1u) {
        if (n0 + j >= p.n) { break; }
        let w = load_w((n0 + j) * p.row_bytes + (word0 + t) * 4u);
        for (var m = 0u; m < ${tm}u; m = m + 1u) {
          let xb = m * ${T * groups}u + t * ${groups}u;${accumulate("w", "")}
        }${
          gated
            ? `
        let wu = load_w_up((n0 + j) * p.row_bytes + (word0 + t) * 4u);
        for (var m = 0u; m < ${tm}u; m = m + 1u) {
          let xb = m * ${T * groups}u + t * ${groups}u;${accumulate("wu", `${tm * tn}u + `)}
        }`
            : ""
        }
      }
    }
    workgroupBarrier();
  }
  for (var o = 0u; o < ${outs}u; o = o + 1u) {
    red[o * ${T}u + t] = acc[o];
  }
  workgroupBarrier();
  if (t < ${tm * tn}u) {
    let m = m0 + t / ${tn}u;
    let j = n0 + t % ${tn}u;
    if (m < p.m && j < p.n) {
      var total = 0i;
      for (var i = 0u; i < ${T}u; i = i + 1u) {
        total = total + red[t * ${T}u + i];
      }
      let y = sf_mul(sf_div(sf_from_i32(total), x_scales[m]), p.gamma_bits);
      ${write}
    }
  }
}
`;
}
