/**
 * Reference causal scaled-dot-product attention with grouped KV heads (GQA; MHA when nKvHead = nHead).
 */
import { ShapeError } from "../../../core/errors.js";
import { checkLength, checkSize } from "./check.js";

/** Sizes and position of one attention call. */
export interface AttentionParams {
  /** Query rows in this call (1 when decoding one token). */
  readonly seqQ: number;
  /** Keys/values held in the cache: positions 0 … seqKV − 1. */
  readonly seqKV: number;
  /** Query heads. */
  readonly nHead: number;
  /** KV heads; must divide nHead. Query head h reads KV head ⌊h / (nHead / nKvHead)⌋. */
  readonly nKvHead: number;
  /** Elements per head, shared by q, k and v. */
  readonly headDim: number;
  /** Absolute position of query row 0; row i sits at pos0 + i and sees keys 0 … pos0 + i. */
  readonly pos0: number;
  /** Multiplier on q·k, usually 1 / sqrt(headDim). */
  readonly scale: number;
}

/**
 * Causal attention: for query row i and head h, with g = ⌊h / (nHead / nKvHead)⌋ and T = pos0 + i,
 *   p_t = softmax_t( scale · Σ_d q[i, h, d] · k[t, g, d] ) over t = 0 … T,
 *   out[i, h, d] = Σ_t p_t · v[t, g, d].
 * q, out: [seqQ, nHead, headDim] f32; k, v: [seqKV, nKvHead, headDim] f32 (a KV cache may be longer; only
 * the first seqKV positions are read). Throws ShapeError unless nHead % nKvHead === 0 and
 * pos0 + seqQ ≤ seqKV. `out` must not alias q, k or v.
 *
 * Float semantics: each score is the float64 dot product (ascending d) times `scale` in float64; the
 * softmax is float64 (max-subtracted, exp, sum in ascending t); the weighted sum of v is float64 in
 * ascending t, divided by the softmax sum, and rounded to f32 once per output.
 *
 * Allocation: one Float64Array of seqKV scores and one of headDim partial sums per call, reused for every
 * row and head.
 */
export function attention(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  params: AttentionParams,
  out: Float32Array,
): void {
  const op = "attention";
  const { seqQ, seqKV, nHead, nKvHead, headDim, pos0, scale } = params;
  checkSize(op, "seqQ", seqQ);
  checkSize(op, "seqKV", seqKV);
  checkSize(op, "nHead", nHead);
  checkSize(op, "nKvHead", nKvHead);
  checkSize(op, "headDim", headDim);
  checkSize(op, "pos0", pos0);
  if (nKvHead === 0 || nHead % nKvHead !== 0) {
    throw new ShapeError("dim-mismatch", `[${op}] nHead = ${nHead} is not a multiple of nKvHead = ${nKvHead}`);
  }
  if (pos0 + seqQ > seqKV) {
    throw new ShapeError("bounds", `[${op}] pos0 + seqQ = ${pos0 + seqQ} exceeds seqKV = ${seqKV}`);
  }
  checkLength(op, "q", q, seqQ * nHead * headDim);
  checkLength(op, "k", k, seqKV * nKvHead * headDim);
  checkLength(op, "v", v, seqKV * nKvHead * headDim);
  checkLength(op, "out", out, seqQ * nHead * headDim);

  const group = nHead / nKvHead;
  const kvRow = nKvHead * headDim;
  const scores = new Float64Array(seqKV);
  const sums = new Float64Array(headDim);
  for (let i = 0; i < seqQ; i++) {
    const last = pos0 + i;
    for (let h = 0; h < nHead; h++) {
      const qBase = (i * nHead + h) * headDim;
      const kvHead = Math.floor(h / group) * headDim;
      let max = -Infinity;
      for (let t = 0; t <= last; t++) {
        const kBase = t * kvRow + kvHead;
        let dot = 0;
        for (let d = 0; d < headDim; d++) {
          dot += (q[qBase + d] ?? 0) * (k[kBase + d] ?? 0);
        }
        const score = dot * scale;
        scores[t] = score;
        if (score > max) {
          max = score;
        }
      }
      sums.fill(0);
      let total = 0;
      for (let t = 0; t <= last; t++) {
        const p = Math.exp((scores[t] ?? 0) - max);
        total += p;
        const vBase = t * kvRow + kvHead;
        for (let d = 0; d < headDim; d++) {
          sums[d] = (sums[d] ?? 0) + p * (v[vBase + d] ?? 0);
        }
      }
      for (let d = 0; d < headDim; d++) {
        out[qBase + d] = Math.fround((sums[d] ?? 0) / total);
      }
    }
  }
}
