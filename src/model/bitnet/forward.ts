/**
 * The BitNet forward pass (BITNET.md §1.2), one step over `seq` new tokens of one sequence:
 * prefill when seq > 1, an incremental decode step when seq = 1.
 *
 * The graph is ./graph.ts's (`embedGraph`, `blockGraph`, `logitsGraph`, the one the training tape runs
 * too), run here with `InferenceOps`: K/V rows go into the cache, attention reads it, every block's
 * intermediates are freed when it returns, and a Q8_0 / k-quant head runs on int8 activations as
 * llama.cpp's. Where the backend has a fused block (FusedKernels.bitnetBlock / bitnetBlockBatch), a block
 * is one backend call computing the same graph.
 */
import type { Backend, BitnetBlockParams, BitnetBlockWeights, BitnetLayers, BitnetLayersStep, FusedKernels } from "../../backends/backend.js";
import { BLOCK_TENSOR_NAMES } from "../../backends/ops.js";
import { ShapeError, UsageError } from "../../core/errors.js";
import { attention } from "../../tensor/ops/nn.js";
import { slice } from "../../tensor/ops/shape.js";
import { allocTensor, fill, int32Tensor, type Tensor } from "../../tensor/tensor.js";
import type { BitnetConfig } from "./config.js";
import { blockGraph, embedGraph, InferenceOps, logitsGraph, type KV, type Q } from "./graph.js";
import type { CacheTensor, KvCache } from "./kv-cache.js";
import type { BitnetWeights, LayerWeights } from "./weights.js";

export interface ForwardOptions {
  /** Logits for every new position (parity checks, perplexity); default: only the last one. */
  readonly allLogits?: boolean;
  /**
   * Called with intermediate activations: `token_embd`, per layer `blk.<l>.attn_out`, `blk.<l>.ffn_out`
   * and `blk.<l>.out`, then `output_norm` and `logits`. The tensor is disposed after the call returns, so
   * read it synchronously. Absent: nothing is traced.
   */
  readonly trace?: ForwardTrace;
}

/** Receives a named activation during `forward` (see ForwardOptions.trace). */
export type ForwardTrace = (name: string, t: Tensor) => void;

/**
 * Stores a layer's new K/V rows in the cache(s) and returns the attention output [seq, head, headDim]:
 * for one sequence (every row continues one cache) or for a batch (row b continues caches[b]).
 */
type Attend = (layer: number, q: Q, k: KV, v: KV) => Q;

function cacheLayer(cache: KvCache, layer: number): [CacheTensor, CacheTensor] {
  const keys = cache.keys[layer];
  const values = cache.values[layer];
  if (keys === undefined || values === undefined) {
    throw new ShapeError("bounds", `[forward] the cache has no layer ${layer}`);
  }
  return [keys, values];
}

function attendOne(cache: KvCache): Attend {
  return (layer, q, k, v) => {
    cache.write(layer, k, v);
    const [keys, values] = cacheLayer(cache, layer);
    return attention(q, keys, values, { length: cache.length + q.shape[0], pos0: cache.length });
  };
}

function attendBatch(caches: readonly KvCache[]): Attend {
  return (layer, q, k, v) => {
    const out = allocTensor(q.backend, "f32", [...q.dims] as ["seq", "head", "headDim"], q.shape);
    return fill(out, () => {
      caches.forEach((cache, b) => {
        using qb = slice(q, "seq", b, b + 1);
        using kb = slice(k, "seq", b, b + 1);
        using vb = slice(v, "seq", b, b + 1);
        cache.write(layer, kb, vb);
        const [keys, values] = cacheLayer(cache, layer);
        using ab = attention(qb, keys, values, { length: cache.length + 1, pos0: cache.length });
        out.backend.kernels.writeRows(ab.ref(), out.ref(), b);
      });
    });
  };
}

/** The layer's weights as the fused block takes them, or undefined when a projection is not ternary. */
export function fusedWeights(w: LayerWeights): BitnetBlockWeights | undefined {
  const projections = [w.wq, w.wk, w.wv, w.wo, w.wGate, w.wUp, w.wDown];
  if (projections.some((p) => p.dtype !== "ternary")) {
    return undefined;
  }
  // Written out (not looped over BLOCK_TENSOR_NAMES) so the compiler checks each tensor's type against the record.
  return {
    attnNorm: w.attnNorm.ref(),
    attnSubNorm: w.attnSubNorm.ref(),
    ffnNorm: w.ffnNorm.ref(),
    ffnSubNorm: w.ffnSubNorm.ref(),
    wq: w.wq.ref(),
    wk: w.wk.ref(),
    wv: w.wv.ref(),
    wo: w.wo.ref(),
    wGate: w.wGate.ref(),
    wUp: w.wUp.ref(),
    wDown: w.wDown.ref(),
  };
}

/** The model numbers a fused block needs. */
export function blockParams(c: BitnetConfig): BitnetBlockParams {
  return {
    heads: c.heads,
    kvHeads: c.kvHeads,
    headDim: c.headDim,
    eps: c.rmsEps,
    ropeTheta: c.ropeTheta,
    attnScale: 1 / Math.sqrt(c.headDim),
    activation: c.activation,
  };
}

/**
 * The same block in one backend call (FusedKernels.bitnetBlock), when the backend offers it: the
 * backend computes what `blockGraph` (./graph.ts) composes, with its intermediates in its own scratch memory.
 */
function fusedBlock(
  run: NonNullable<FusedKernels["bitnetBlock"]>,
  c: BitnetConfig,
  weights: BitnetBlockWeights,
  layer: number,
  cache: KvCache,
  h: Tensor<"f32", ["seq", "embed"]>,
  positions: Tensor<"i32", ["seq"]>,
): Tensor<"f32", ["seq", "embed"]> {
  const [keys, values] = cacheLayer(cache, layer);
  const out = allocTensor(h.backend, "f32", ["seq", "embed"] as ["seq", "embed"], h.shape);
  const params = blockParams(c);
  return fill(out, () => run(h.ref(), positions.ref(), keys.ref(), values.ref(), cache.length, weights, params, out.ref()));
}

/** The batched block in one backend call (FusedKernels.bitnetBlockBatch): row b continues caches[b]. */
function fusedBatchBlock(
  run: NonNullable<FusedKernels["bitnetBlockBatch"]>,
  c: BitnetConfig,
  weights: BitnetBlockWeights,
  layer: number,
  caches: readonly KvCache[],
  h: Tensor<"f32", ["seq", "embed"]>,
  positions: Tensor<"i32", ["seq"]>,
): Tensor<"f32", ["seq", "embed"]> {
  const layers = caches.map((cache) => cacheLayer(cache, layer));
  const out = allocTensor(h.backend, "f32", ["seq", "embed"] as ["seq", "embed"], h.shape);
  const params = blockParams(c);
  return fill(out, () =>
    run(
      h.ref(),
      positions.ref(),
      layers.map(([k]) => k.ref()),
      layers.map(([, v]) => v.ref()),
      weights,
      params,
      out.ref(),
    ),
  );
}

/** Each model's layers prepared on a backend's every-block step (undefined: a projection is not ternary). */
const preparedLayers = new WeakMap<BitnetWeights, { readonly step: BitnetLayersStep; readonly layers: BitnetLayers | undefined }>();

/** True when any of the weights' block tensors was disposed. */
function layersDisposed(weights: BitnetWeights): boolean {
  return weights.layers.some((w) => BLOCK_TENSOR_NAMES.some((name) => w[name].isDisposed));
}

/**
 * The model's layers on the backend's every-block step (Backend.layers), prepared the first time the weights
 * are used on it and kept while they are reachable; undefined when there is no step, a projection is not
 * ternary. Disposed weights free the handle and throw UsageError "disposed".
 */
function layersFor(backend: Backend, config: BitnetConfig, weights: BitnetWeights): BitnetLayers | undefined {
  const step = backend.layers;
  if (step === undefined) {
    return undefined;
  }
  let entry = preparedLayers.get(weights);
  if (entry !== undefined && layersDisposed(weights)) {
    entry.layers?.dispose();
    preparedLayers.delete(weights);
    throw new UsageError("disposed", "[forward] the model's weights were disposed");
  }
  if (entry === undefined || entry.step !== step) {
    entry?.layers?.dispose();
    const blocks = weights.layers.map(fusedWeights);
    const ternary = blocks.every((b) => b !== undefined);
    entry = { step, layers: ternary ? step.prepare(blocks as BitnetBlockWeights[], blockParams(config)) : undefined };
    preparedLayers.set(weights, entry);
  }
  return entry.layers;
}

/** Every block in one backend call (BitnetLayers.run): the same bits as one `fusedBlock` per layer. */
function layersStep(
  layers: BitnetLayers,
  caches: readonly KvCache[],
  h: Tensor<"f32", ["seq", "embed"]>,
  positions: Tensor<"i32", ["seq"]>,
  batch: boolean,
): Tensor<"f32", ["seq", "embed"]> {
  const out = allocTensor(h.backend, "f32", ["seq", "embed"] as ["seq", "embed"], h.shape);
  return fill(out, () => {
    const ks = caches.map((c) => c.keys.map((t) => t.ref()));
    const vs = caches.map((c) => c.values.map((t) => t.ref()));
    if (batch) {
      layers.runBatch(h.ref(), positions.ref(), ks, vs, out.ref());
    } else {
      layers.run(h.ref(), positions.ref(), ks[0] ?? [], vs[0] ?? [], (caches[0] as KvCache).length, out.ref());
    }
  });
}

/**
 * Runs `tokens` at positions cache.length… through the model, appends their K/V to the cache and
 * returns logits [seq, vocab] (or [1, vocab] for the last position unless `allLogits`).
 */
export function forward(
  config: BitnetConfig,
  weights: BitnetWeights,
  cache: KvCache,
  tokens: readonly number[],
  options: ForwardOptions = {},
): Tensor<"f32", ["seq", "vocab"]> {
  return step(config, weights, cache, tokens, options, (ops, h) => {
    using last = options.allLogits === true || tokens.length === 1 ? undefined : slice(h, "seq", tokens.length - 1, tokens.length);
    return ops.scoped(() => logitsGraph(ops, config, weights, last ?? h));
  });
}

/**
 * The blocks of one step over `tokens` (their K/V appended to the cache), then `out` of the last hidden state
 * [seq, embed] (disposed after `out` returns).
 */
function step<T>(
  config: BitnetConfig,
  weights: BitnetWeights,
  cache: KvCache,
  tokens: readonly number[],
  options: ForwardOptions,
  out: (ops: InferenceOps, h: Tensor<"f32", ["seq", "embed"]>) => T,
): T {
  const seq = tokens.length;
  if (seq === 0) {
    throw new ShapeError("size", "[forward] no tokens to run");
  }
  cache.reserve(seq);
  const backend = cache.backend;
  const start = cache.length;
  using ids = int32Tensor(tokens, ["seq"], [seq], { backend });
  using positions = int32Tensor(
    tokens.map((_, i) => start + i),
    ["seq"],
    [seq],
    { backend },
  );
  const trace = options.trace;
  const ops = new InferenceOps(positions, attendOne(cache), trace);
  // The fused block skips the per-op trace points, so tracing composes the ops.
  const fused = trace === undefined ? backend.fused?.bitnetBlock : undefined;
  const stack = fused !== undefined ? layersFor(backend, config, weights) : undefined;
  let h = ops.scoped(() => embedGraph(ops, weights, ids));
  try {
    if (stack !== undefined) {
      const next = layersStep(stack, [cache], h, positions, false);
      h.dispose();
      h = next;
    }
    for (const [l, layer] of (stack === undefined ? weights.layers : []).entries()) {
      const fw = fused !== undefined ? fusedWeights(layer) : undefined;
      const next =
        fused !== undefined && fw !== undefined
          ? fusedBlock(fused, config, fw, l, cache, h, positions)
          : ops.scoped(() => blockGraph(ops, config, layer, l, h));
      trace?.(`blk.${l}.out`, next);
      h.dispose();
      h = next;
    }
    cache.advance(seq);
    return out(ops, h);
  } finally {
    h.dispose();
  }
}

/**
 * Most sequences one batched step takes: the one batch limit, also the bound of a batcher's `maxSequences`
 * (src/engine/batch.ts) and of the server's `parallel`.
 */
export const MAX_BATCH_SEQUENCES = 64;

/**
 * One decode step for several independent sequences: `tokens[b]` continues the sequence held in
 * `caches[b]`, each at its own length. The projections read the weights once for the whole batch
 * (a matrix–matrix product instead of one matrix–vector product per sequence); attention runs per
 * sequence over its own cache. Returns logits [batch, vocab], row b for sequence b, and advances every
 * cache by one. Every cache must belong to this model and sit on the weights' backend, and no cache may
 * appear twice.
 */
export function forwardBatch(
  config: BitnetConfig,
  weights: BitnetWeights,
  caches: readonly KvCache[],
  tokens: readonly number[],
): Tensor<"f32", ["seq", "vocab"]> {
  const n = tokens.length;
  if (n === 0 || n !== caches.length || n > MAX_BATCH_SEQUENCES) {
    throw new ShapeError("size", `[forwardBatch] ${n} tokens for ${caches.length} caches (1..${MAX_BATCH_SEQUENCES} sequences)`);
  }
  if (n === 1) {
    return forward(config, weights, caches[0] as KvCache, tokens);
  }
  if (new Set(caches).size !== n) {
    throw new ShapeError("size", "[forwardBatch] a cache appears twice in one batch");
  }
  const backend = caches[0]?.backend;
  for (const cache of caches) {
    if (cache.backend !== backend) {
      throw new ShapeError("size", "[forwardBatch] the caches sit on different backends");
    }
    cache.reserve(1);
  }
  if (backend === undefined) {
    throw new ShapeError("size", "[forwardBatch] no caches");
  }
  using ids = int32Tensor(tokens, ["seq"], [n], { backend });
  using positions = int32Tensor(
    caches.map((c) => c.length),
    ["seq"],
    [n],
    { backend },
  );
  const ops = new InferenceOps(positions, attendBatch(caches));
  const fused = backend.fused?.bitnetBlockBatch;
  const stack = fused !== undefined ? layersFor(backend, config, weights) : undefined;
  let h = ops.scoped(() => embedGraph(ops, weights, ids));
  try {
    if (stack !== undefined) {
      const next = layersStep(stack, caches, h, positions, true);
      h.dispose();
      h = next;
    }
    for (const [l, layer] of (stack === undefined ? weights.layers : []).entries()) {
      const fw = fused !== undefined ? fusedWeights(layer) : undefined;
      const next =
        fused !== undefined && fw !== undefined
          ? fusedBatchBlock(fused, config, fw, l, caches, h, positions)
          : ops.scoped(() => blockGraph(ops, config, layer, l, h));
      h.dispose();
      h = next;
    }
    caches.forEach((c) => c.advance(1));
    return ops.scoped(() => logitsGraph(ops, config, weights, h));
  } finally {
    h.dispose();
  }
}

/**
 * Tokens per forward step when a long prompt is prefilled: activations scale with the step, so a
 * bounded step bounds the memory a prompt needs (a 512-token prompt of the 700M shape needed ~45 MB of
 * activations in one step, ~11 MB in steps of 128), at no measurable cost in speed (each step is still
 * a matrix–matrix product).
 */
export const PREFILL_STEP_TOKENS = 128;

/**
 * Runs a prompt through the model in steps of at most PREFILL_STEP_TOKENS and returns the logits of
 * its last position [1, vocab]. Equal to `forward(…, tokens)` up to float summation order in attention.
 */
export function prefill(
  config: BitnetConfig,
  weights: BitnetWeights,
  cache: KvCache,
  tokens: readonly number[],
): Tensor<"f32", ["seq", "vocab"]> {
  if (tokens.length === 0) {
    throw new ShapeError("size", "[forward] no tokens to run");
  }
  cache.reserve(tokens.length);
  let at = 0;
  for (; at + PREFILL_STEP_TOKENS < tokens.length; at += PREFILL_STEP_TOKENS) {
    extend(config, weights, cache, tokens.slice(at, at + PREFILL_STEP_TOKENS));
  }
  return forward(config, weights, cache, tokens.slice(at));
}

/**
 * `forward` without the head: runs `tokens` through the blocks and appends their K/V to the cache, for the
 * prompt steps whose logits nobody reads (the head is the largest single read of a step: 269 MB on the 2B
 * shape with its Q6_K head).
 */
export function extend(config: BitnetConfig, weights: BitnetWeights, cache: KvCache, tokens: readonly number[]): void {
  step(config, weights, cache, tokens, {}, () => undefined);
}
