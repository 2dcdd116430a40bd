/**
 * The BitNet b1.58 graph, written once (BITNET.md §1.2), against a small set of ops (`GraphOps`).
 *
 * Per block, with h the residual stream [seq, embed]:
 *   x = RMSNorm(h) ·attn_norm;  q, k, v = BitLinear(x)        (one int8 quantization of x)
 *   q, k = RoPE(q, k);  a = attend(q, k, v)                   (causal, grouped KV heads)
 *   h += BitLinear_o(RMSNorm(a) ·attn_sub_norm)
 *   y = RMSNorm(h) ·ffn_norm;  g, u = BitLinear(y)             (one int8 quantization of y)
 *   h += BitLinear_down(RMSNorm(act(g) ⊙ u) ·ffn_sub_norm)     (act: ReLU² or SiLU by arch)
 * then logits = head · RMSNorm(h) ·output_norm, in float.
 *
 * Two op sets run it: `InferenceOps` here (the tensor ops on packed ternary weights; attention through a
 * KV cache; every intermediate of a `scoped` body freed when it returns), used by forward.ts's op-by-op
 * path, and the autograd tape's (src/train/model.ts: latent f32 weights, each projection a `bitLinear`,
 * nothing freed until the tape is). forward.ts's fused blocks (FusedKernels.bitnetBlock / bitnetBlockBatch)
 * compute the same block in one backend call; test/conformance checks them against this one.
 */
import type { DenseDType } from "../../backends/backend.js";
import { isIntegerHeadFormat } from "../../quant/dtypes.js";
import type { Dims, Last, MergePair, Replace } from "../../tensor/dims.js";
import { add, mul, relu2, silu } from "../../tensor/ops/elementwise.js";
import { contractDense, contractPacked, embedding, matmul, matmulQ8I8, type Contracted, type IntegerHeadDType, type Weights } from "../../tensor/ops/matmul.js";
import { rmsNorm, rope, type RopeOptions } from "../../tensor/ops/nn.js";
import { quantizeActivations } from "../../tensor/ops/quant.js";
import { merge, split, type MergeCheck, type SplitCheck } from "../../tensor/ops/shape.js";
import { tensorArg, type Tensor } from "../../tensor/tensor.js";
import type { BitnetConfig } from "./config.js";

type F32<D extends Dims> = Tensor<"f32", D>;

/** How a graph's weights are stored, as dtypes: for inference, or latent f32 weights for training. */
interface WeightDTypes {
  /** Packed ternary projections (dense floats when run in float mode); embedding and head in their file format. */
  readonly inference: { readonly projection: "ternary" | DenseDType; readonly table: DenseDType };
  /** Latent f32 weights everywhere (the tape ternarizes each projection in its forward). */
  readonly latent: { readonly projection: "f32"; readonly table: "f32" };
}
export type WeightKind = keyof WeightDTypes;
type ProjectionDType<K extends WeightKind> = WeightDTypes[K]["projection"];
type TableDType<K extends WeightKind> = WeightDTypes[K]["table"];

/** A projection [out, in] of a kind of weights. */
export type ProjectionOf<K extends WeightKind, Out extends string, In extends string> = Tensor<ProjectionDType<K>, [Out, In]>;

/** One transformer block. `q` = heads·headDim, `kv` = kvHeads·headDim. */
export interface BlockWeights<K extends WeightKind> {
  readonly attnNorm: F32<["embed"]>;
  readonly wq: ProjectionOf<K, "q", "embed">;
  readonly wk: ProjectionOf<K, "kv", "embed">;
  readonly wv: ProjectionOf<K, "kv", "embed">;
  readonly attnSubNorm: F32<["q"]>;
  readonly wo: ProjectionOf<K, "embed", "q">;
  readonly ffnNorm: F32<["embed"]>;
  readonly wGate: ProjectionOf<K, "ffn", "embed">;
  readonly wUp: ProjectionOf<K, "ffn", "embed">;
  readonly ffnSubNorm: F32<["ffn"]>;
  readonly wDown: ProjectionOf<K, "embed", "ffn">;
}

/** The whole model's weights; `output` is the same tensor as `tokenEmbd` when the head is tied. */
export interface ModelWeights<K extends WeightKind> {
  readonly tokenEmbd: Tensor<TableDType<K>, ["vocab", "embed"]>;
  readonly outputNorm: F32<["embed"]>;
  readonly output: Tensor<TableDType<K>, ["vocab", "embed"]>;
  readonly layers: readonly BlockWeights<K>[];
}

/** The hyperparameters the graph reads. */
export type GraphConfig = Pick<BitnetConfig, "heads" | "kvHeads" | "headDim" | "rmsEps" | "ropeTheta" | "activation">;

/** Query rows, and the new key/value rows, of one layer. */
export type Q = F32<["seq", "head", "headDim"]>;
export type KV = F32<["seq", "kvHead", "headDim"]>;

/** Projects the group's x with one weight [out, in] (the weight's names checked against x's at compile time). */
export type Project<K extends WeightKind, X extends Dims> = <const W extends Dims>(w: Weights<"linear", ProjectionDType<K>, X, W>) => F32<Contracted<X, W>>;

/** The ops the graph is written against (see the two op sets in the file comment). */
export interface GraphOps<K extends WeightKind> {
  /** Rows of the embedding table. */
  embedding(ids: Tensor<"i32", ["seq"]>, table: Tensor<TableDType<K>, ["vocab", "embed"]>): F32<["seq", "embed"]>;
  /** RMSNorm over the last dim, times weight. */
  norm<const X extends Dims>(x: F32<X>, weight: F32<readonly [Last<X>]>, eps: number): F32<X>;
  /**
   * A group of BitLinear projections of x that share one activation quantization: `group` projects with
   * the `p` it is given, and its result is returned.
   */
  project<const X extends Dims, R>(x: F32<X>, group: (p: Project<K, X>) => R): R;
  split<D extends Dims, N extends D[number], const A extends string, const B extends string>(
    t: F32<D>,
    dim: N,
    into: SplitCheck<D, N, A, B> extends true ? readonly [A, B] : SplitCheck<D, N, A, B>,
    sizes: readonly [number, number],
  ): F32<Replace<D, N, [A, B]>>;
  merge<D extends Dims, const A extends string, const B extends string, const M extends string>(
    t: F32<D>,
    pair: readonly [A, B],
    into: MergeCheck<D, A, B, M> extends true ? M : MergeCheck<D, A, B, M>,
  ): F32<MergePair<D, A, B, M>>;
  /** Rotary embedding at the rows' positions (the op set knows them). */
  rope<const H extends string>(x: F32<["seq", H, "headDim"]>, options: RopeOptions): F32<["seq", H, "headDim"]>;
  /** Causal attention of layer `layer`'s new rows (through a KV cache, or over training windows). */
  attend(layer: number, q: Q, k: KV, v: KV): Q;
  add(a: F32<["seq", "embed"]>, b: F32<["seq", "embed"]>): F32<["seq", "embed"]>;
  mul(a: F32<["seq", "ffn"]>, b: F32<["seq", "ffn"]>): F32<["seq", "ffn"]>;
  relu2<const D extends Dims>(x: F32<D>): F32<D>;
  silu<const D extends Dims>(x: F32<D>): F32<D>;
  /** The output head, in float (or the integer head of a Q8_0 / k-quant file). */
  head(x: F32<["seq", "embed"]>, w: Tensor<TableDType<K>, ["vocab", "embed"]>): F32<["seq", "vocab"]>;
  /** Receives named activations (forward's ForwardOptions.trace); absent: nothing is traced. */
  readonly trace?: ((name: string, t: Tensor) => void) | undefined;
}

/** One transformer block of layer `layer` on the residual stream h. */
export function blockGraph<K extends WeightKind>(
  ops: GraphOps<K>,
  c: GraphConfig,
  w: BlockWeights<K>,
  layer: number,
  h: F32<["seq", "embed"]>,
): F32<["seq", "embed"]> {
  const ropeOptions = { theta: c.ropeTheta, mode: "neox" } as const;
  // Attention branch.
  const x = ops.norm(h, w.attnNorm, c.rmsEps);
  const [q, k, v] = ops.project(x, (p) => [p(w.wq), p(w.wk), p(w.wv)] as const);
  const qh = ops.split(q, "q", ["head", "headDim"], [c.heads, c.headDim]);
  const kh = ops.split(k, "kv", ["kvHead", "headDim"], [c.kvHeads, c.headDim]);
  const vh = ops.split(v, "kv", ["kvHead", "headDim"], [c.kvHeads, c.headDim]);
  const a = ops.attend(layer, ops.rope(qh, ropeOptions), ops.rope(kh, ropeOptions), vh);
  const an = ops.norm(ops.merge(a, ["head", "headDim"], "q"), w.attnSubNorm, c.rmsEps);
  const o = ops.project(an, (p) => p(w.wo));
  ops.trace?.(`blk.${layer}.attn_out`, o);
  const h1 = ops.add(h, o);
  // Feed-forward branch.
  const y = ops.norm(h1, w.ffnNorm, c.rmsEps);
  const [g, u] = ops.project(y, (p) => [p(w.wGate), p(w.wUp)] as const);
  const m = ops.mul(c.activation === "relu2" ? ops.relu2(g) : ops.silu(g), u);
  const mn = ops.norm(m, w.ffnSubNorm, c.rmsEps);
  const d = ops.project(mn, (p) => p(w.wDown));
  ops.trace?.(`blk.${layer}.ffn_out`, d);
  return ops.add(h1, d);
}

/** The first step: the embedding rows of `ids`. */
export function embedGraph<K extends WeightKind>(ops: GraphOps<K>, weights: ModelWeights<K>, ids: Tensor<"i32", ["seq"]>): F32<["seq", "embed"]> {
  const h = ops.embedding(ids, weights.tokenEmbd);
  ops.trace?.("token_embd", h);
  return h;
}

/** The last step: logits = head · RMSNorm(h) ·output_norm. */
export function logitsGraph<K extends WeightKind>(ops: GraphOps<K>, c: GraphConfig, weights: ModelWeights<K>, h: F32<["seq", "embed"]>): F32<["seq", "vocab"]> {
  const normed = ops.norm(h, weights.outputNorm, c.rmsEps);
  ops.trace?.("output_norm", normed);
  const logits = ops.head(normed, weights.output);
  ops.trace?.("logits", logits);
  return logits;
}

/** The whole graph, op by op: logits [seq, vocab] of every row of `ids` (the training forward). */
export function modelGraph<K extends WeightKind>(ops: GraphOps<K>, c: GraphConfig, weights: ModelWeights<K>, ids: Tensor<"i32", ["seq"]>): F32<["seq", "vocab"]> {
  let h = embedGraph(ops, weights, ids);
  for (const [l, w] of weights.layers.entries()) {
    h = blockGraph(ops, c, w, l, h);
    ops.trace?.(`blk.${l}.out`, h);
  }
  return logitsGraph(ops, c, weights, h);
}

/**
 * The inference op set: the tensor ops on the weights as loaded, attention through `attend` (which
 * stores the new K/V rows in the cache(s)). Every tensor an op makes is held until the `scoped` body that
 * made it returns; then all but the body's result are freed (all of them when it throws).
 */
export class InferenceOps implements GraphOps<"inference"> {
  #made: Disposable[] = [];
  readonly #positions: Tensor<"i32", ["seq"]>;
  readonly #attend: (layer: number, q: Q, k: KV, v: KV) => Q;
  readonly trace: ((name: string, t: Tensor) => void) | undefined;

  constructor(positions: Tensor<"i32", ["seq"]>, attend: (layer: number, q: Q, k: KV, v: KV) => Q, trace?: (name: string, t: Tensor) => void) {
    this.#positions = positions;
    this.#attend = attend;
    this.trace = trace;
  }

  #keep<T extends Disposable>(t: T): T {
    this.#made.push(t);
    return t;
  }

  /** Runs `body` and frees every tensor the ops made in it except its result. */
  scoped<T extends Tensor>(body: () => T): T {
    const outer = this.#made;
    const made: Disposable[] = [];
    this.#made = made;
    let result: T | undefined;
    try {
      result = body();
      return result;
    } finally {
      this.#made = outer;
      for (const t of made) {
        if (t !== result) {
          t[Symbol.dispose]();
        }
      }
    }
  }

  embedding(ids: Tensor<"i32", ["seq"]>, table: Tensor<DenseDType, ["vocab", "embed"]>): F32<["seq", "embed"]> {
    return this.#keep(embedding(ids, table));
  }

  norm<const X extends Dims>(x: F32<X>, weight: F32<readonly [Last<X>]>, eps: number): F32<X> {
    return this.#keep(rmsNorm<X, readonly [Last<X>]>(x, weight, eps));
  }

  project<const X extends Dims, R>(x: F32<X>, group: (p: Project<"inference", X>) => R): R {
    using xq = quantizeActivations(x);
    return group(<const W extends Dims>(wIn: Weights<"linear", "ternary" | DenseDType, X, W>): F32<Contracted<X, W>> => {
      const w = tensorArg<Tensor<"ternary" | DenseDType, W>>("project", "w", wIn);
      // A dtype test does not narrow the class: hence the plain downcasts.
      return this.#keep(w.dtype === "ternary" ? contractPacked(xq, w as Tensor<"ternary", W>) : contractDense(x, w as Tensor<DenseDType, W>));
    });
  }

  split<D extends Dims, N extends D[number], const A extends string, const B extends string>(
    t: F32<D>,
    dim: N,
    into: SplitCheck<D, N, A, B> extends true ? readonly [A, B] : SplitCheck<D, N, A, B>,
    sizes: readonly [number, number],
  ): F32<Replace<D, N, [A, B]>> {
    return this.#keep(split<"f32", D, N, A, B>(t, dim, into, sizes));
  }

  merge<D extends Dims, const A extends string, const B extends string, const M extends string>(
    t: F32<D>,
    pair: readonly [A, B],
    into: MergeCheck<D, A, B, M> extends true ? M : MergeCheck<D, A, B, M>,
  ): F32<MergePair<D, A, B, M>> {
    return this.#keep(merge<"f32", D, A, B, M>(t, pair, into));
  }

  rope<const H extends string>(x: F32<["seq", H, "headDim"]>, options: RopeOptions): F32<["seq", H, "headDim"]> {
    return this.#keep(rope(x, this.#positions, options));
  }

  attend(layer: number, q: Q, k: KV, v: KV): Q {
    return this.#keep(this.#attend(layer, q, k, v));
  }

  add(a: F32<["seq", "embed"]>, b: F32<["seq", "embed"]>): F32<["seq", "embed"]> {
    return this.#keep(add(a, b));
  }

  mul(a: F32<["seq", "ffn"]>, b: F32<["seq", "ffn"]>): F32<["seq", "ffn"]> {
    return this.#keep(mul(a, b));
  }

  relu2<const D extends Dims>(x: F32<D>): F32<D> {
    return this.#keep(relu2(x));
  }

  silu<const D extends Dims>(x: F32<D>): F32<D> {
    return this.#keep(silu(x));
  }

  /**
   * A Q8_0 head (from the file, or `headType: "q8_0"`) runs as llama.cpp runs one: the activations
   * quantized per 32-element block and integer dot products (matmulQ8I8). A Q4_K / Q5_K / Q6_K head does
   * too (activations per 256-element block, llama.cpp's Q8_K) on a host backend; a device backend (WebGPU,
   * CUDA), which has no integer k-quant kernel, runs it in float, as any other head (docs/heads.md).
   */
  head(x: F32<["seq", "embed"]>, w: Tensor<DenseDType, ["vocab", "embed"]>): F32<["seq", "vocab"]> {
    const integer = isIntegerHeadFormat(w.dtype) && (w.dtype === "q8_0" || w.backend.memoryKind === "host");
    return this.#keep(integer ? matmulQ8I8(x, w as Tensor<IntegerHeadDType, ["vocab", "embed"]>) : matmul(x, w));
  }
}
