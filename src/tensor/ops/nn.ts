/** Neural-network ops of a BitNet block: RMSNorm, rotary embedding, softmax, causal GQA attention. */
import type { RopeMode, TensorRef } from "../../backends/backend.js";
import { ShapeError, UsageError } from "../../core/errors.js";
import { KV_CACHE_DTYPES, type KvCacheDType } from "../../quant/dtypes.js";
import type { Dims, Last, Show } from "../dims.js";
import { allocTensor, fill, type Tensor } from "../tensor.js";
import { asMatrix, commonBackend, requireDtype, requireSameSize } from "./check.js";

type NormWeight<X extends Dims, W extends Dims> = [W] extends [readonly [Last<X>]]
  ? Tensor<"f32", W>
  : `[rmsNorm] weight ${Show<W>} must be the last dim of x ${Show<X>}`;

/**
 * RMSNorm over the last dimension: x / sqrt(mean(x²) + eps) · weight. Pass `undefined` for no weight.
 */
export function rmsNorm<const X extends Dims, const W extends Dims>(
  x: Tensor<"f32", X>,
  weight: NormWeight<X, W> | undefined,
  eps = 1e-5,
): Tensor<"f32", X> {
  const w = weight as Tensor<"f32", W> | undefined;
  const backend = w ? commonBackend("rmsNorm", x, w) : commonBackend("rmsNorm", x);
  requireDtype("rmsNorm", "x", x, "f32");
  if (x.rank === 0) {
    throw new ShapeError("rank", "[rmsNorm] x needs at least one dimension");
  }
  const lastName = x.dims[x.rank - 1] ?? "";
  if (w) {
    requireDtype("rmsNorm", "weight", w, "f32");
    if (w.rank !== 1 || w.dims[0] !== lastName) {
      throw new ShapeError("dim-names", `[rmsNorm] weight ${w.describe()} must be [${lastName}]`);
    }
    requireSameSize("rmsNorm", lastName, x.shape[x.rank - 1] ?? 0, w.shape[0] ?? 0);
  }
  if (!(eps > 0)) {
    throw new ShapeError("size", `[rmsNorm] eps must be positive, got ${eps}`);
  }
  const out = allocTensor(backend, "f32", x.dims, x.shape);
  return fill(out, () => backend.kernels.rmsNorm(asMatrix(x), w?.ref(), eps, { ...out.ref(), shape: asMatrix(x).shape }));
}

export interface RopeOptions {
  /** Frequency base θ: 500000 for BitNet b1.58 2B-4T, 10000 for 1bitLLM models. */
  readonly theta: number;
  /** "neox" pairs (j, j + D/2), as HF/GGUF BitNet; "adjacent" pairs (2j, 2j+1). */
  readonly mode: RopeMode;
}

/** Rotary position embedding of x[seq, head, headDim] at integer positions[seq]. */
export function rope<const S extends string, const H extends string, const D extends string>(
  x: Tensor<"f32", readonly [S, H, D]>,
  positions: Tensor<"i32", readonly [NoInfer<S>]>,
  options: RopeOptions,
): Tensor<"f32", [S, H, D]> {
  const backend = commonBackend("rope", x, positions);
  requireDtype("rope", "x", x, "f32");
  requireDtype("rope", "positions", positions, "i32");
  if (x.rank !== 3 || positions.rank !== 1 || positions.dims[0] !== x.dims[0]) {
    throw new ShapeError("rank", `[rope] needs x [seq, head, headDim] and positions [seq], got ${x.describe()}, ${positions.describe()}`);
  }
  requireSameSize("rope", x.dims[0], x.shape[0], positions.shape[0]);
  if (x.shape[2] % 2 !== 0) {
    throw new ShapeError("size", `[rope] ${x.dims[2]}: ${x.shape[2]} is odd`);
  }
  if (!(options.theta > 0)) {
    throw new ShapeError("size", `[rope] theta must be positive, got ${options.theta}`);
  }
  const out = allocTensor(backend, "f32", [...x.dims] as [S, H, D], x.shape);
  return fill(out, () => backend.kernels.rope(x.ref(), positions.ref(), options.theta, options.mode, out.ref()));
}

/** Softmax over the last dimension, named for readability: softmax(scores, "ctx"). */
export function softmax<const X extends Dims>(x: Tensor<"f32", X>, dim: Last<X>): Tensor<"f32", X> {
  const backend = commonBackend("softmax", x);
  requireDtype("softmax", "x", x, "f32");
  if (x.dims[x.rank - 1] !== dim) {
    throw new ShapeError("dim-names", `[softmax] "${dim}" is not the last dimension of ${x.describe()}`);
  }
  const out = allocTensor(backend, "f32", x.dims, x.shape);
  return fill(out, () => backend.kernels.softmax(asMatrix(x), { ...out.ref(), shape: asMatrix(x).shape }));
}

export interface AttentionOptions {
  /**
   * Positions of k and v that hold data (a KV cache is allocated for the whole context but filled
   * from the front). Default: all of them.
   */
  readonly length?: number;
  /** Absolute position of the first query row; query i sees keys 0..pos0+i. Default: length − seq. */
  readonly pos0?: number;
  /** Score scale; default 1/sqrt(headDim). */
  readonly scale?: number;
}

/**
 * Causal attention with grouped KV heads: q[seq, head, headDim] over the cache k, v [ctx, kvHead, headDim]
 * (f32, or an f16 / q8_0 KV cache read decoded; q8_0 needs headDim to be a multiple of 32).
 * Query head h reads KV head floor(h / (head / kvHead)).
 */
export function attention<
  const S extends string,
  const H extends string,
  const D extends string,
  const C extends string,
  const KV extends string,
>(
  q: Tensor<"f32", readonly [S, H, D]>,
  k: Tensor<KvCacheDType, readonly [C, KV, NoInfer<D>]>,
  v: Tensor<KvCacheDType, readonly [NoInfer<C>, NoInfer<KV>, NoInfer<D>]>,
  options: AttentionOptions = {},
): Tensor<"f32", [S, H, D]> {
  const backend = commonBackend("attention", q, k, v);
  requireDtype("attention", "q", q, "f32");
  if (!KV_CACHE_DTYPES.includes(k.dtype) || v.dtype !== k.dtype) {
    throw new UsageError("dtype", `[attention] k and v must share one of ${KV_CACHE_DTYPES.join(", ")}, got ${k.dtype} and ${v.dtype}`);
  }
  for (const [what, t] of [["q", q], ["k", k], ["v", v]] as const) {
    if (t.rank !== 3) {
      throw new ShapeError("rank", `[attention] ${what} must have 3 dims, got ${t.describe()}`);
    }
  }
  const [seq, heads, headDim] = q.shape;
  const [capacity, kvHeads] = k.shape;
  const ctx = options.length ?? capacity;
  if (!Number.isSafeInteger(ctx) || ctx < 1 || ctx > capacity) {
    throw new ShapeError("bounds", `[attention] length ${ctx} is outside ${k.dims[0]}=${capacity}`);
  }
  requireSameSize("attention", q.dims[2], headDim, k.shape[2]);
  for (let i = 0; i < 3; i++) {
    requireSameSize("attention", k.dims[i] ?? "", k.shape[i] ?? 0, v.shape[i] ?? 0);
  }
  if (heads % kvHeads !== 0) {
    throw new ShapeError("size", `[attention] ${q.dims[1]}=${heads} is not a multiple of ${k.dims[1]}=${kvHeads}`);
  }
  const pos0 = options.pos0 ?? ctx - seq;
  if (!Number.isSafeInteger(pos0) || pos0 < 0 || pos0 + seq > ctx) {
    throw new ShapeError("bounds", `[attention] queries at ${pos0}..${pos0 + seq - 1} fall outside ${k.dims[0]}=${ctx}`);
  }
  const out = allocTensor(backend, "f32", [...q.dims] as [S, H, D], q.shape);
  const filled = (t: Tensor): TensorRef => ({ ...t.ref(), shape: [ctx, kvHeads, headDim] });
  return fill(out, () => backend.kernels.attention(q.ref(), filled(k), filled(v), pos0, options.scale ?? 1 / Math.sqrt(headDim), out.ref()));
}
