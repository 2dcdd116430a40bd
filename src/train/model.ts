/**
 * A tiny BitNet b1.58 model for quantization-aware training on the autograd tape (docs/training.md).
 *
 * The parameters are latent f32 weights held on the host (`Float32Array`s, named as in barbell's GGUF
 * files: `token_embd.weight`, `blk.<l>.attn_q.weight`, …). Each training step makes tensors from them and
 * runs the BitNet graph of src/model/bitnet/graph.ts, the one inference runs, with the tape's ops: every
 * projection a `g.bitLinear` (absmean-ternary weights × per-token int8 activations, straight-through
 * backward), the embedding, norms and head in f32.
 */
import { ShapeError } from "../core/errors.js";
import type { Backend } from "../backends/backend.js";
import { int32Tensor, tensor, type Tensor } from "../tensor/index.js";
import type { Dims, Last, MergePair, Replace } from "../tensor/dims.js";
import type { Weights } from "../tensor/ops/matmul.js";
import type { MergeCheck, SplitCheck } from "../tensor/ops/shape.js";
import type { Tape } from "./autograd.js";
import type { BitnetConfig } from "../model/bitnet/config.js";
import { modelGraph, type GraphConfig, type GraphOps, type ModelWeights, type Project } from "../model/bitnet/graph.js";
import { Rng } from "../model/sampling/rng.js";

/**
 * Hyperparameters of a trainable BitNet: the fields of BitnetConfig that shape the weights and the graph
 * (the head width is hidden / heads), and whether the output head is the embedding table (2B4T) or its
 * own f32 matrix.
 */
export interface QatConfig extends Pick<BitnetConfig, "vocabSize" | "hidden" | "layers" | "heads" | "kvHeads" | "ffn" | "rmsEps" | "ropeTheta" | "activation"> {
  readonly tied: boolean;
}

/** Most elements one trainable parameter may hold (guards allocations sized by a config or a checkpoint). */
export const MAX_PARAM_ELEMENTS = 1 << 26;

/** One latent parameter: its name, dims (barbell's names), shape and f32 values. */
export interface Param {
  readonly name: string;
  readonly dims: readonly string[];
  readonly shape: readonly number[];
  /** Is it a matrix (projection, embedding, head)? AdamW decays matrices, not norm weights. */
  readonly matrix: boolean;
  readonly data: Float32Array;
}

/** Checks a config: positive integers, heads that divide the width, an even head width. */
export function checkQatConfig(c: QatConfig): void {
  const ints: [string, number][] = [
    ["vocabSize", c.vocabSize],
    ["hidden", c.hidden],
    ["layers", c.layers],
    ["heads", c.heads],
    ["kvHeads", c.kvHeads],
    ["ffn", c.ffn],
  ];
  for (const [name, v] of ints) {
    if (!Number.isSafeInteger(v) || v < 1) {
      throw new ShapeError("size", `[qat] config.${name} = ${v} is not a positive integer`);
    }
  }
  if (c.hidden % c.heads !== 0 || c.heads % c.kvHeads !== 0 || (c.hidden / c.heads) % 2 !== 0) {
    throw new ShapeError("size", `[qat] ${c.hidden} wide with ${c.heads} heads / ${c.kvHeads} KV heads needs an even head width dividing both`);
  }
  if (!(c.rmsEps > 0) || !(c.ropeTheta > 0)) {
    throw new ShapeError("size", `[qat] rmsEps and ropeTheta must be positive`);
  }
  for (const [rows, cols] of [
    [c.vocabSize, c.hidden],
    [c.ffn, c.hidden],
  ] as const) {
    if (rows * cols > MAX_PARAM_ELEMENTS) {
      throw new ShapeError("size", `[qat] a ${rows}×${cols} parameter exceeds ${MAX_PARAM_ELEMENTS} elements`);
    }
  }
}

/** The parameters a config has, in a fixed order, without values: name, dims, shape. */
export function paramLayout(c: QatConfig): { name: string; dims: string[]; shape: number[] }[] {
  checkQatConfig(c);
  const headDim = c.hidden / c.heads;
  const q = c.heads * headDim;
  const kv = c.kvHeads * headDim;
  const out = [{ name: "token_embd.weight", dims: ["vocab", "embed"], shape: [c.vocabSize, c.hidden] }];
  for (let l = 0; l < c.layers; l++) {
    const b = `blk.${l}`;
    out.push(
      { name: `${b}.attn_norm.weight`, dims: ["embed"], shape: [c.hidden] },
      { name: `${b}.attn_q.weight`, dims: ["q", "embed"], shape: [q, c.hidden] },
      { name: `${b}.attn_k.weight`, dims: ["kv", "embed"], shape: [kv, c.hidden] },
      { name: `${b}.attn_v.weight`, dims: ["kv", "embed"], shape: [kv, c.hidden] },
      { name: `${b}.attn_sub_norm.weight`, dims: ["q"], shape: [q] },
      { name: `${b}.attn_output.weight`, dims: ["embed", "q"], shape: [c.hidden, q] },
      { name: `${b}.ffn_norm.weight`, dims: ["embed"], shape: [c.hidden] },
      { name: `${b}.ffn_gate.weight`, dims: ["ffn", "embed"], shape: [c.ffn, c.hidden] },
      { name: `${b}.ffn_up.weight`, dims: ["ffn", "embed"], shape: [c.ffn, c.hidden] },
      { name: `${b}.ffn_sub_norm.weight`, dims: ["ffn"], shape: [c.ffn] },
      { name: `${b}.ffn_down.weight`, dims: ["embed", "ffn"], shape: [c.hidden, c.ffn] },
    );
  }
  out.push({ name: "output_norm.weight", dims: ["embed"], shape: [c.hidden] });
  if (!c.tied) {
    out.push({ name: "output.weight", dims: ["vocab", "embed"], shape: [c.vocabSize, c.hidden] });
  }
  return out;
}

/**
 * Seeded initialization: norm weights 1; matrices normal with std 1/sqrt(fan-in) (the columns), the
 * embedding with std 1 when tied is false and 1/sqrt(hidden) when it doubles as the head.
 */
export function initParams(c: QatConfig, seed: number): Param[] {
  const rng = new Rng(seed);
  return paramLayout(c).map(({ name, dims, shape }) => {
    const size = shape.reduce((n, s) => n * s, 1);
    const matrix = shape.length === 2;
    const data = new Float32Array(size);
    if (!matrix) {
      data.fill(1);
    } else {
      const std = name === "token_embd.weight" && !c.tied ? 1 : 1 / Math.sqrt(shape[1] ?? 1);
      for (let i = 0; i < size; i++) {
        data[i] = rng.normal() * std;
      }
    }
    return { name, dims, shape, matrix, data };
  });
}

type F32<D extends Dims> = Tensor<"f32", D>;

/** The parameters of one step as tensors on the tape, by role (made by `bindParams`): the graph's weights, latent f32. */
export type Bound = ModelWeights<"latent">;

/**
 * Tensors of the parameters for one step, registered as parameters of `g`, on `backend` (default: the
 * default backend; the forward runs where they live). The returned map (name → tensor) owns them:
 * dispose each after `backward` and after reading the gradients.
 */
export function bindParams(
  g: Tape,
  c: QatConfig,
  params: readonly Param[],
  backend?: Backend,
): { tensors: Map<string, F32<Dims>>; bound: Bound } {
  const options = backend === undefined ? {} : { backend };
  const tensors = new Map<string, F32<Dims>>();
  try {
    for (const p of params) {
      tensors.set(p.name, g.param(tensor(p.data, p.dims, p.shape, options)));
    }
  } catch (e) {
    for (const t of tensors.values()) {
      t.dispose();
    }
    throw e;
  }
  const get = <D extends Dims>(name: string): F32<D> => {
    const t = tensors.get(name);
    if (t === undefined) {
      throw new ShapeError("size", `[qat] parameter ${name} is missing`);
    }
    return t as F32<D>;
  };
  const layers = Array.from({ length: c.layers }, (_, l) => ({
    attnNorm: get<["embed"]>(`blk.${l}.attn_norm.weight`),
    wq: get<["q", "embed"]>(`blk.${l}.attn_q.weight`),
    wk: get<["kv", "embed"]>(`blk.${l}.attn_k.weight`),
    wv: get<["kv", "embed"]>(`blk.${l}.attn_v.weight`),
    attnSubNorm: get<["q"]>(`blk.${l}.attn_sub_norm.weight`),
    wo: get<["embed", "q"]>(`blk.${l}.attn_output.weight`),
    ffnNorm: get<["embed"]>(`blk.${l}.ffn_norm.weight`),
    wGate: get<["ffn", "embed"]>(`blk.${l}.ffn_gate.weight`),
    wUp: get<["ffn", "embed"]>(`blk.${l}.ffn_up.weight`),
    ffnSubNorm: get<["ffn"]>(`blk.${l}.ffn_sub_norm.weight`),
    wDown: get<["embed", "ffn"]>(`blk.${l}.ffn_down.weight`),
  }));
  const tokenEmbd = get<["vocab", "embed"]>("token_embd.weight");
  return {
    tensors,
    bound: {
      tokenEmbd,
      outputNorm: get<["embed"]>("output_norm.weight"),
      output: c.tied ? tokenEmbd : get<["vocab", "embed"]>("output.weight"),
      layers,
    },
  };
}

/** What the graph reads of a config. */
function graphConfig(c: QatConfig): GraphConfig {
  return { heads: c.heads, kvHeads: c.kvHeads, headDim: c.hidden / c.heads, rmsEps: c.rmsEps, ropeTheta: c.ropeTheta, activation: c.activation };
}

/**
 * The graph's ops on the tape: every projection a `bitLinear` (absmean-ternary weights × per-token int8
 * activations, straight-through backward), the rest the tape's f32 ops; rows at `positions`, attention
 * over `windows` independent windows. The tape owns every output.
 */
function tapeOps(g: Tape, positions: Tensor<"i32", ["seq"]>, windows: number): GraphOps<"latent"> {
  return {
    embedding: (ids, table) => g.embedding(ids, table),
    norm<const X extends Dims>(x: F32<X>, weight: F32<readonly [Last<X>]>, eps: number): F32<X> {
      return g.rmsNorm(x, weight, eps);
    },
    project<const X extends Dims, R>(x: F32<X>, group: (p: Project<"latent", X>) => R): R {
      // Each bitLinear quantizes x itself (the same int8 values each time); the tape keeps them for backward.
      return group(<const W extends Dims>(w: Weights<"linear", "f32", X, W>) => g.bitLinear<X, W>(x, w));
    },
    split<D extends Dims, N extends D[number], const A extends string, const B extends string>(
      t: F32<D>,
      dim: N,
      into: SplitCheck<D, N, A, B> extends true ? readonly [A, B] : SplitCheck<D, N, A, B>,
      sizes: readonly [number, number],
    ): F32<Replace<D, N, [A, B]>> {
      return g.split(t, dim, into, sizes);
    },
    merge<D extends Dims, const A extends string, const B extends string, const M extends string>(
      t: F32<D>,
      pair: readonly [A, B],
      into: MergeCheck<D, A, B, M> extends true ? M : MergeCheck<D, A, B, M>,
    ): F32<MergePair<D, A, B, M>> {
      return g.merge(t, pair, into);
    },
    rope: (x, options) => g.rope(x, positions, options),
    attend: (_layer, q, k, v) => g.attention(q, k, v, { windows }),
    add: (a, b) => g.add(a, b),
    mul: (a, b) => g.mul(a, b),
    relu2: (x) => g.relu2(x),
    silu: (x) => g.silu(x),
    head: (x, w) => g.linear(x, w),
  };
}

/**
 * Logits [seq, vocab] of `ids` (positions 0…seq−1) on the tape: the graph of src/model/bitnet/graph.ts
 * (the one inference runs) with the tape's ops. With `windows` = B > 1, `ids` holds B windows of seq/B
 * tokens back to back, each at positions 0…seq/B−1 and attending to itself only: every projection, norm
 * and the head run once on all B·(seq/B) rows (the same numbers per row as one window at a time). The
 * position tensor goes into `keep` (the tape reads it during backward; the caller frees it).
 */
export function windowLogits(g: Tape, c: QatConfig, p: Bound, ids: Tensor<"i32", ["seq"]>, keep: Disposable[], windows = 1): F32<["seq", "vocab"]> {
  const seq = ids.shape[0];
  if (!Number.isSafeInteger(windows) || windows < 1 || seq % windows !== 0) {
    throw new ShapeError("size", `[qat] ${seq} tokens do not split into ${windows} windows`);
  }
  const span = seq / windows;
  const positions = int32Tensor(
    Array.from({ length: seq }, (_, i) => i % span),
    ["seq"],
    [seq],
    { backend: ids.backend },
  );
  keep.push(positions);
  return modelGraph(tapeOps(g, positions, windows), graphConfig(c), p, ids);
}

/**
 * Mean next-token cross-entropy of one window on the tape: `window[0..n-1]` in, `window[1..n]` as targets.
 * The id tensors go into `keep` (the tape reads them during backward; the caller frees them).
 */
export function windowLoss(g: Tape, c: QatConfig, p: Bound, window: readonly number[], keep: Disposable[]): F32<[]> {
  return batchLoss(g, c, p, [window], keep);
}

/**
 * Mean next-token cross-entropy over a batch of windows of the same length, run as one [B·seq] batch
 * (`windowLogits` with `windows` = B): the mean over windows of each window's mean loss.
 */
export function batchLoss(g: Tape, c: QatConfig, p: Bound, batch: readonly (readonly number[])[], keep: Disposable[]): F32<[]> {
  const n = batch[0]?.length ?? 0;
  const seq = n - 1;
  if (seq < 1 || batch.some((w) => w.length !== n)) {
    throw new ShapeError("size", "[qat] windows need at least two tokens, all the same number");
  }
  const backend = p.tokenEmbd.backend;
  const rows = batch.length * seq;
  const ids = int32Tensor(
    batch.flatMap((w) => w.slice(0, seq)),
    ["seq"],
    [rows],
    { backend },
  );
  keep.push(ids);
  const targets = int32Tensor(
    batch.flatMap((w) => w.slice(1)),
    ["seq"],
    [rows],
    { backend },
  );
  keep.push(targets);
  return g.crossEntropy(windowLogits(g, c, p, ids, keep, batch.length), targets);
}
