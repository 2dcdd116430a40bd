/**
 * The heavy backward rules of the tape (src/train/autograd.ts): the two products of a linear layer in f32
 * through a gemm, attention's backward in f32 (fast path) and float64 (reference), and the index maps of
 * broadcasting and layout ops. Split out of autograd.ts to keep each file readable.
 */
import { contiguousStrides } from "../backends/storage.js";
import type { Tensor } from "../tensor/tensor.js";
import { f32, like, TRANS_A, TRANS_B, type Grad, type HostGemm } from "./kernels.js";

/** Index in b (broadcast by name onto a) of every element of a. */
export function broadcastIndex(a: Tensor, b: Tensor): Int32Array {
  const bStrides = contiguousStrides(b.shape);
  const strides = a.dims.map((name) => {
    const j = b.dims.indexOf(name);
    return j < 0 ? 0 : (bStrides[j] ?? 0);
  });
  return gatherIndex(a.shape, strides, 0);
}

/** For every element of an output of `shape` (row-major), its index in a source read with `strides`. */
export function gatherIndex(shape: readonly number[], strides: readonly number[], offset: number): Int32Array {
  const count = shape.reduce((n, s) => n * s, 1);
  const index = new Int32Array(count);
  const at = new Array<number>(shape.length).fill(0);
  let src = offset;
  for (let i = 0; i < count; i++) {
    index[i] = src;
    for (let d = shape.length - 1; d >= 0; d--) {
      at[d] = (at[d] ?? 0) + 1;
      src += strides[d] ?? 0;
      if ((at[d] ?? 0) < (shape[d] ?? 1)) {
        break;
      }
      src -= (strides[d] ?? 0) * (shape[d] ?? 1);
      at[d] = 0;
    }
  }
  return index;
}

export function scatter(g: Grad, index: Int32Array, size: number): Grad {
  const out = like(g, size);
  for (let i = 0; i < g.length; i++) {
    const j = index[i] ?? 0;
    out[j] = (out[j] ?? 0) + (g[i] ?? 0);
  }
  return out;
}

/** The sizes of one attention backward: query rows, key rows, heads, KV heads, head width, score scale. */
export interface AttentionDims {
  readonly seq: number;
  readonly ctx: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly hd: number;
  readonly factor: number;
}

/**
 * The two products of a linear layer's backward in f32 with `gemm`: g[rows, n], the weights w[n, k] and the
 * input x[rows, k] (both as stored, nothing transposed) → gx[rows, k] = g·w and gw[n, k] = gᵀ·x, as f32.
 */
export function linearBackwardF32(gemm: HostGemm, g: Grad, rows: number, n: number, k: number, w: Float32Array, x: Float32Array): Float32Array[] {
  const g32 = f32(g);
  const gx = new Float32Array(rows * k);
  gemm(g32, w, gx, rows, k, n, 0);
  const gw = new Float32Array(n * k);
  gemm(g32, x, gw, n, k, rows, TRANS_A);
  return [gx, gw];
}

/**
 * Heads h0…h0+count−1 of a [rows, heads, hd] array as f32 [count·rows, hd] (head-major: row i·rows + r is
 * head h0+i at row r).
 */
export function headRows(src: Float32Array, rows: number, heads: number, h0: number, count: number, hd: number): Float32Array {
  const out = new Float32Array(count * rows * hd);
  for (let i = 0; i < count; i++) {
    for (let r = 0; r < rows; r++) {
      const base = (r * heads + h0 + i) * hd;
      out.set(src.subarray(base, base + hd), (i * rows + r) * hd);
    }
  }
  return out;
}

/**
 * The backward of causal GQA attention with its products in f32 through `gemm` (operands as stored, the
 * transposes in the product's flags), one KV head at a time with the query heads that share it stacked as
 * rows (R = group·seq): S = Q·Kᵀ·scale, P = causal softmax(S) (float64), dV = Pᵀ·G, dP = G·Vᵀ,
 * dS = P∘(dP − Σ P∘dP)·scale, dQ = dS·K, dK = dSᵀ·Q. Gradients come back as f32.
 */
export function attentionBackwardF32(
  gemm: HostGemm,
  gOut: Grad,
  qv: Float32Array,
  kv: Float32Array,
  vv: Float32Array,
  d: AttentionDims,
): Float32Array[] {
  const { seq, ctx, heads, kvHeads, hd, factor } = d;
  const group = heads / kvHeads;
  const pos0 = ctx - seq;
  const rows = group * seq;
  const g = f32(gOut);
  const gq = new Float32Array(seq * heads * hd);
  const gk = new Float32Array(ctx * kvHeads * hd);
  const gv = new Float32Array(ctx * kvHeads * hd);
  const scores = new Float32Array(rows * ctx);
  const dp = new Float32Array(rows * ctx);
  const ds = new Float32Array(rows * ctx);
  const out = new Float32Array(Math.max(rows, ctx) * hd);
  for (let kh = 0; kh < kvHeads; kh++) {
    const h0 = kh * group;
    const kH = headRows(kv, ctx, kvHeads, kh, 1, hd);
    const vH = headRows(vv, ctx, kvHeads, kh, 1, hd);
    const qH = headRows(qv, seq, heads, h0, group, hd);
    const gH = headRows(g, seq, heads, h0, group, hd);
    gemm(qH, kH, scores, rows, ctx, hd, TRANS_B);
    gemm(gH, vH, dp, rows, ctx, hd, TRANS_B);
    for (let row = 0; row < rows; row++) {
      const visible = pos0 + (row % seq) + 1;
      const base = row * ctx;
      let max = -Infinity;
      for (let c = 0; c < visible; c++) {
        max = Math.max(max, (scores[base + c] as number) * factor);
      }
      let sum = 0;
      for (let c = 0; c < visible; c++) {
        const e = Math.exp((scores[base + c] as number) * factor - max);
        scores[base + c] = e;
        sum += e;
      }
      let dot = 0;
      for (let c = 0; c < visible; c++) {
        dot += ((scores[base + c] as number) / sum) * (dp[base + c] as number);
      }
      for (let c = 0; c < visible; c++) {
        const pc = (scores[base + c] as number) / sum;
        scores[base + c] = pc;
        ds[base + c] = pc * ((dp[base + c] as number) - dot) * factor;
      }
      scores.fill(0, base + visible, base + ctx);
      ds.fill(0, base + visible, base + ctx);
    }
    // dV = Pᵀ·G: [ctx, R] · [R, hd], summed over the group's rows.
    gemm(scores, gH, out, ctx, hd, rows, TRANS_A);
    addHead(gv, out, ctx, kvHeads, kh, hd);
    // dK = dSᵀ·Q.
    gemm(ds, qH, out, ctx, hd, rows, TRANS_A);
    addHead(gk, out, ctx, kvHeads, kh, hd);
    // dQ = dS·K, then each query head's rows to its place.
    gemm(ds, kH, out, rows, hd, ctx, 0);
    for (let i = 0; i < group; i++) {
      addHead(gq, out.subarray(i * seq * hd, (i + 1) * seq * hd), seq, heads, h0 + i, hd);
    }
  }
  return [gq, gk, gv];
}

/** dst[(r·heads + h)·hd + d] += src[r·hd + d]. */
export function addHead(dst: Float32Array, src: Float32Array, rows: number, heads: number, h: number, hd: number): void {
  for (let r = 0; r < rows; r++) {
    const base = (r * heads + h) * hd;
    for (let d = 0; d < hd; d++) {
      dst[base + d] = (dst[base + d] as number) + (src[r * hd + d] as number);
    }
  }
}

/** The backward of causal GQA attention in float64 (the reference): probabilities recomputed, then dV, dP, dS, dQ, dK. */
export function attentionBackwardF64(
  g: ArrayLike<number>,
  qv: ArrayLike<number>,
  kv: ArrayLike<number>,
  vv: ArrayLike<number>,
  d: AttentionDims,
): Float64Array[] {
  const { seq, ctx, heads, kvHeads, hd, factor } = d;
  const group = heads / kvHeads;
  const pos0 = ctx - seq;
  const gq = new Float64Array(seq * heads * hd);
  const gk = new Float64Array(ctx * kvHeads * hd);
  const gv = new Float64Array(ctx * kvHeads * hd);
  const p = new Float64Array(ctx);
  const dp = new Float64Array(ctx);
  for (let s = 0; s < seq; s++) {
    const visible = pos0 + s + 1;
    for (let h = 0; h < heads; h++) {
      const kh = Math.floor(h / group);
      const qBase = (s * heads + h) * hd;
      let max = -Infinity;
      for (let c = 0; c < visible; c++) {
        const kBase = (c * kvHeads + kh) * hd;
        let dot = 0;
        for (let d = 0; d < hd; d++) {
          dot += (qv[qBase + d] ?? 0) * (kv[kBase + d] ?? 0);
        }
        p[c] = dot * factor;
        max = Math.max(max, dot * factor);
      }
      let sum = 0;
      for (let c = 0; c < visible; c++) {
        p[c] = Math.exp((p[c] ?? 0) - max);
        sum += p[c] ?? 0;
      }
      let dotPdp = 0;
      for (let c = 0; c < visible; c++) {
        p[c] = (p[c] ?? 0) / sum;
        const vBase = (c * kvHeads + kh) * hd;
        let d2 = 0;
        for (let d = 0; d < hd; d++) {
          const go = g[qBase + d] ?? 0;
          d2 += go * (vv[vBase + d] ?? 0);
          gv[vBase + d] = (gv[vBase + d] ?? 0) + (p[c] ?? 0) * go;
        }
        dp[c] = d2;
        dotPdp += (p[c] ?? 0) * d2;
      }
      for (let c = 0; c < visible; c++) {
        const ds = (p[c] ?? 0) * ((dp[c] ?? 0) - dotPdp) * factor;
        const kBase = (c * kvHeads + kh) * hd;
        for (let d = 0; d < hd; d++) {
          gq[qBase + d] = (gq[qBase + d] ?? 0) + ds * (kv[kBase + d] ?? 0);
          gk[kBase + d] = (gk[kBase + d] ?? 0) + ds * (qv[qBase + d] ?? 0);
        }
      }
    }
  }
  return [gq, gk, gv];
}
