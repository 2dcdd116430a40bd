/**
 * Reference rotary position embedding (RoPE) over the full head dimension.
 */
import { ShapeError } from "../../../core/errors.js";
import type { RopeMode } from "../../backend.js";
import { checkLength, checkSize } from "./check.js";

export type { RopeMode };

/** For pair j: first = j·stride, second = first + partner (partner in units of headDim/2 for neox). */
const PAIRING = {
  neox: { stride: 1, partnerIsHalf: true },
  adjacent: { stride: 2, partnerIsHalf: false },
} as const satisfies Record<RopeMode, { stride: number; partnerIsHalf: boolean }>;

/**
 * Rotates each pair (a, b) of every head of every position by angle θ = positions[s] · inv_freq[j]:
 *   out[a] = x[a]·cos θ − x[b]·sin θ,   out[b] = x[b]·cos θ + x[a]·sin θ,
 * with inv_freq[j] = theta^(−2j/headDim), j = 0 … headDim/2 − 1, and the pairing given by `mode`.
 *
 * x, out: [seq, heads, headDim] f32, headDim even; positions: [seq] (absolute token positions, 0 for the
 * first token). `out` may be the same array as `x` (in-place is allowed: each pair is read before it is
 * written).
 *
 * Float semantics: inv_freq = Math.pow(theta, −2j/headDim), the angle, cos, sin and both output expressions
 * are float64; each output is rounded to f32 once. Backends using f32 or other libm trigonometry match
 * within a tolerance (larger for large positions), not bit for bit.
 */
export function rope(
  x: Float32Array,
  seq: number,
  heads: number,
  headDim: number,
  positions: Int32Array,
  theta: number,
  mode: RopeMode,
  out: Float32Array,
): void {
  const op = "rope";
  checkSize(op, "seq", seq);
  checkSize(op, "heads", heads);
  checkSize(op, "headDim", headDim);
  if (headDim % 2 !== 0) {
    throw new ShapeError("size", `[${op}] headDim must be even, got ${headDim}`);
  }
  checkLength(op, "x", x, seq * heads * headDim);
  checkLength(op, "positions", positions, seq);
  checkLength(op, "out", out, seq * heads * headDim);
  const half = headDim / 2;
  const { stride, partnerIsHalf } = PAIRING[mode];
  const partner = partnerIsHalf ? half : 1;
  for (let s = 0; s < seq; s++) {
    const pos = positions[s] ?? 0;
    for (let j = 0; j < half; j++) {
      // Trigonometry once per (position, pair), shared by all heads.
      const angle = pos * Math.pow(theta, (-2 * j) / headDim);
      const cos = Math.cos(angle);
      const sin = Math.sin(angle);
      const first = j * stride;
      const second = first + partner;
      for (let h = 0; h < heads; h++) {
        const base = (s * heads + h) * headDim;
        const xa = x[base + first] ?? 0;
        const xb = x[base + second] ?? 0;
        out[base + first] = Math.fround(xa * cos - xb * sin);
        out[base + second] = Math.fround(xb * cos + xa * sin);
      }
    }
  }
}
