/**
 * The heavy backward rules of the tape (src/train/autograd.ts): the two products of a linear layer in f32
 * through a host matmul, and attention's backward in f32 (fast path) and float64 (reference), with the
 * tiled transpose they share. Split out of autograd.ts to keep each file readable.
 */
import type { HostMatmul } from "./autograd.js";

/** The sizes of one attention backward: query rows, key rows, heads, KV heads, head width, score scale. */
export interface AttentionDims {
  readonly seq: number;
  readonly ctx: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly hd: number;
  readonly factor: number;
}

/** src[rows, cols] → [cols, rows] as f32 (in 32×32 tiles, so reads and writes stay in cache). */
export function transposeF32(src: Float32Array, rows: number, cols: number): Float32Array {
  // Monomorphic (Float32Array in and out, no `??` on reads): V8 keeps this loop on its fast typed-array path.
  const out = new Float32Array(rows * cols);
  const tile = 32;
  for (let r0 = 0; r0 < rows; r0 += tile) {
    const r1 = Math.min(rows, r0 + tile);
    for (let c0 = 0; c0 < cols; c0 += tile) {
      const c1 = Math.min(cols, c0 + tile);
      for (let r = r0; r < r1; r++) {
        const base = r * cols;
        for (let c = c0; c < c1; c++) {
          out[c * rows + r] = src[base + c] as number;
        }
      }
    }
  }
  return out;
}

/**
 * The two products of a linear layer's backward in f32 with `mm`: g[rows, n], the weights transposed
 * wT[k, n] and the input transposed xT[k, rows] → gx[rows, k] = g·w and gw[n, k] = gᵀ·x (as float64).
 */
export function linearBackwardF32(mm: HostMatmul, g: Float64Array, rows: number, n: number, k: number, wT: Float32Array, xT: Float32Array): Float64Array[] {
  const g32 = new Float32Array(g);
  const gx = new Float32Array(rows * k);
  mm(g32, wT, rows, n, k, gx);
  const gw = new Float32Array(n * k);
  mm(transposeF32(g32, rows, n), xT, n, rows, k, gw);
  return [new Float64Array(gx), new Float64Array(gw)];
}

/**
 * Heads h0…h0+count−1 of a [rows, heads, hd] array as f32 [count·rows, hd] (head-major: row i·rows + r is
 * head h0+i at row r), or transposed [hd, count·rows].
 */
export function headRows(src: Float32Array, rows: number, heads: number, h0: number, count: number, hd: number, transposed: boolean): Float32Array {
  const total = count * rows;
  const out = new Float32Array(total * hd);
  for (let i = 0; i < count; i++) {
    for (let r = 0; r < rows; r++) {
      const base = (r * heads + h0 + i) * hd;
      const row = i * rows + r;
      if (transposed) {
        for (let d = 0; d < hd; d++) {
          out[d * total + row] = src[base + d] as number;
        }
      } else {
        out.set(src.subarray(base, base + hd), row * hd);
      }
    }
  }
  return out;
}

/**
 * The backward of causal GQA attention with its products in f32 through `mm`, one KV head at a time with
 * the query heads that share it stacked as rows (R = group·seq): S = Q·Kᵀ·scale, P = causal softmax(S)
 * (float64), dV = Pᵀ·G, dP = G·Vᵀ, dS = P∘(dP − Σ P∘dP)·scale, dQ = dS·K, dK = dSᵀ·Q.
 */
export function attentionBackwardF32(
  mm: HostMatmul,
  gOut: Float64Array,
  qv: Float32Array,
  kv: Float32Array,
  vv: Float32Array,
  d: AttentionDims,
): Float64Array[] {
  const { seq, ctx, heads, kvHeads, hd, factor } = d;
  const group = heads / kvHeads;
  const pos0 = ctx - seq;
  const rows = group * seq;
  // The output gradient as f32 once (the products read it in f32 anyway): every gather below is Float32Array → Float32Array.
  const g = new Float32Array(gOut);
  const gq = new Float64Array(seq * heads * hd);
  const gk = new Float64Array(ctx * kvHeads * hd);
  const gv = new Float64Array(ctx * kvHeads * hd);
  const scores = new Float32Array(rows * ctx);
  const dp = new Float32Array(rows * ctx);
  const ds = new Float32Array(rows * ctx);
  const out = new Float32Array(Math.max(rows, ctx) * hd);
  for (let kh = 0; kh < kvHeads; kh++) {
    const h0 = kh * group;
    const kH = headRows(kv, ctx, kvHeads, kh, 1, hd, false);
    const kT = headRows(kv, ctx, kvHeads, kh, 1, hd, true);
    const vH = headRows(vv, ctx, kvHeads, kh, 1, hd, false);
    const qH = headRows(qv, seq, heads, h0, group, hd, false);
    const qT = headRows(qv, seq, heads, h0, group, hd, true);
    const gH = headRows(g, seq, heads, h0, group, hd, false);
    const gT = headRows(g, seq, heads, h0, group, hd, true);
    mm(qH, kH, rows, hd, ctx, scores);
    mm(gH, vH, rows, hd, ctx, dp);
    for (let row = 0; row < rows; row++) {
      const visible = pos0 + (row % seq) + 1;
      const base = row * ctx;
      let max = -Infinity;
      for (let c = 0; c < visible; c++) {
        max = Math.max(max, (scores[base + c] ?? 0) * factor);
      }
      let sum = 0;
      for (let c = 0; c < visible; c++) {
        const e = Math.exp((scores[base + c] ?? 0) * factor - max);
        scores[base + c] = e;
        sum += e;
      }
      let dot = 0;
      for (let c = 0; c < visible; c++) {
        dot += ((scores[base + c] ?? 0) / sum) * (dp[base + c] ?? 0);
      }
      for (let c = 0; c < visible; c++) {
        const pc = (scores[base + c] ?? 0) / sum;
        scores[base + c] = pc;
        ds[base + c] = pc * ((dp[base + c] ?? 0) - dot) * factor;
      }
      scores.fill(0, base + visible, base + ctx);
      ds.fill(0, base + visible, base + ctx);
    }
    const pT = transposeF32(scores, rows, ctx);
    const dsT = transposeF32(ds, rows, ctx);
    // dV = Pᵀ·G: [ctx, R] · [R, hd] (mm takes the right operand transposed: gT [hd, R]); summed over the group.
    mm(pT, gT, ctx, rows, hd, out);
    addHead(gv, out, ctx, kvHeads, kh, hd);
    // dK = dSᵀ·Q.
    mm(dsT, qT, ctx, rows, hd, out);
    addHead(gk, out, ctx, kvHeads, kh, hd);
    // dQ = dS·K, then each query head's rows to its place.
    mm(ds, kT, rows, ctx, hd, out);
    for (let i = 0; i < group; i++) {
      addHead(gq, out.subarray(i * seq * hd, (i + 1) * seq * hd), seq, heads, h0 + i, hd);
    }
  }
  return [gq, gk, gv];
}

/** dst[(r·heads + h)·hd + d] += src[r·hd + d]. */
export function addHead(dst: Float64Array, src: Float32Array, rows: number, heads: number, h: number, hd: number): void {
  for (let r = 0; r < rows; r++) {
    const base = (r * heads + h) * hd;
    for (let d = 0; d < hd; d++) {
      dst[base + d] = (dst[base + d] ?? 0) + (src[r * hd + d] ?? 0);
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
