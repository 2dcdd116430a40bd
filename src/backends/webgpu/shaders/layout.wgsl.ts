/**
 * Data movement and the XNOR product: byte-granular copies (writeRows, concat, unaligned uploads), the
 * strided gather (copyStrided) and binary × binary by popcount. WGSL stores whole 32-bit words, so every
 * kernel here gives each destination word to exactly one thread, which merges the bytes it writes with the
 * bytes it keeps (read-modify-write without races): rows of any byte length and offset can be copied.
 */
import { FLAT_WORKGROUP_WGSL } from "../pipelines.js";

export const LAYOUT_THREADS = 256;
/** Most dimensions copyStrided takes (the strides travel in the uniform parameters). */
export const MAX_GATHER_RANK = 8;

/**
 * Copies `rows` rows of `row_bytes` bytes from src (row r at src_off + r·src_stride) to dst (row r at
 * dst_off + r·dst_stride), one thread per destination word in [first_word, first_word + words).
 * Params: rows, row_bytes, src_off, src_stride, dst_off, dst_stride, first_word, words.
 * Bindings: src, dst (u32 words).
 */
export const COPY_BYTES_WGSL = /* wgsl */ `
${FLAT_WORKGROUP_WGSL}
struct Params { rows: u32, row_bytes: u32, src_off: u32, src_stride: u32, dst_off: u32, dst_stride: u32, first_word: u32, words: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;

fn src_byte(at: u32) -> u32 {
  return (src[at >> 2u] >> ((at & 3u) * 8u)) & 0xffu;
}

@compute @workgroup_size(${LAYOUT_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let i = flat_workgroup(wid, nwg) * ${LAYOUT_THREADS}u + t;
  if (i >= p.words) { return; }
  let word = p.first_word + i;
  var value = dst[word];
  for (var lane = 0u; lane < 4u; lane = lane + 1u) {
    let at = word * 4u + lane;
    if (at < p.dst_off) { continue; }
    let rel = at - p.dst_off;
    let r = rel / p.dst_stride;
    let c = rel % p.dst_stride;
    if (r >= p.rows || c >= p.row_bytes) { continue; }
    let sh = lane * 8u;
    value = (value & ~(0xffu << sh)) | (src_byte(p.src_off + r * p.src_stride + c) << sh);
  }
  dst[word] = value;
}
`;

/**
 * copyStrided: out[i] = src[offset + Σ idx_d · stride_d] for every index of the output shape, elements of
 * 1 or 4 bytes, strides possibly 0 or negative (the host checked every read lies inside src). One thread
 * per output word; bytes of the last word past `count` keep their value (a view may be shorter than its
 * buffer). Params: count, elem_bytes, offset, rank, words, then per dimension (size, stride as i32).
 * Bindings: src, out (u32 words).
 */
export const GATHER_WGSL = /* wgsl */ `
${FLAT_WORKGROUP_WGSL}
struct Params { count: u32, elem_bytes: u32, offset: u32, rank: u32, words: u32, _p0: u32, _p1: u32, _p2: u32, dims: array<vec4<u32>, ${MAX_GATHER_RANK}> }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

fn source_index(i: u32) -> u32 {
  var rest = i;
  var at = i32(p.offset);
  for (var d = i32(p.rank) - 1; d >= 0; d = d - 1) {
    let dim = p.dims[d];
    at = at + i32(rest % dim.x) * bitcast<i32>(dim.y);
    rest = rest / dim.x;
  }
  return u32(at);
}

@compute @workgroup_size(${LAYOUT_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let w = flat_workgroup(wid, nwg) * ${LAYOUT_THREADS}u + t;
  if (w >= p.words) { return; }
  if (p.elem_bytes == 4u) {
    out[w] = src[source_index(w)];
    return;
  }
  var value = out[w];
  for (var lane = 0u; lane < 4u; lane = lane + 1u) {
    let i = w * 4u + lane;
    if (i >= p.count) { break; }
    let s = source_index(i);
    let byte = (src[s >> 2u] >> ((s & 3u) * 8u)) & 0xffu;
    let sh = lane * 8u;
    value = (value & ~(0xffu << sh)) | (byte << sh);
  }
  out[w] = value;
}
`;

/**
 * matmulBinaryBinary: out[i, j] = K − 2·popcount((x_i xor w_j) & mask), exact int32. One thread per output
 * (it is not on the model's path: BitNet's projections take int8 activations). Params: m, k, n, row_words,
 * last_mask. Bindings: x, w (b1 rows of row_words words), out (i32).
 */
export const XNOR_WGSL = /* wgsl */ `
${FLAT_WORKGROUP_WGSL}
struct Params { m: u32, k: u32, n: u32, row_words: u32, last_mask: u32, _p0: u32, _p1: u32, _p2: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<i32>;

@compute @workgroup_size(${LAYOUT_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let o = flat_workgroup(wid, nwg) * ${LAYOUT_THREADS}u + t;
  if (o >= p.m * p.n) { return; }
  let i = o / p.n;
  let j = o % p.n;
  var differing = 0u;
  for (var q = 0u; q < p.row_words; q = q + 1u) {
    let mask = select(0xffffffffu, p.last_mask, q + 1u == p.row_words);
    differing = differing + countOneBits((x[i * p.row_words + q] ^ w[j * p.row_words + q]) & mask);
  }
  out[o] = i32(p.k) - 2 * i32(differing);
}
`;
