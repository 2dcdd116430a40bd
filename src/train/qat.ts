/**
 * BitNet b1.58 quantization-aware training (issue 8, point 2; docs/training.md): AdamW with decoupled
 * weight decay and bias correction, linear warmup + cosine decay, global-norm gradient clipping, seeded
 * data order over a token array, loss and tokens/s reported per step. The whole state of a run is a
 * `TrainState` (latent weights, Adam moments, step, RNG state), which `saveCheckpoint` stores exactly.
 */
import { ShapeError } from "../core/errors.js";
import { createTape } from "./autograd.js";
import type { TrainRuntime } from "./fast.js";
import { batchLoss, bindParams, checkQatConfig, initParams, type Param, type QatConfig } from "./model.js";
import { Rng } from "../model/sampling/rng.js";

/** Optimizer, schedule and data settings of a run. */
export interface TrainOptions {
  /** Steps of the whole schedule (the cosine reaches `minLr` here). */
  readonly totalSteps: number;
  /** Linear warmup from lr/warmupSteps to `peakLr` over the first steps. */
  readonly warmupSteps: number;
  readonly peakLr: number;
  readonly minLr: number;
  /** Decoupled weight decay (AdamW), applied to matrices only, not to norm weights. */
  readonly weightDecay: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  /** Gradients are scaled down so their global L2 norm is at most this (Infinity: no clipping). */
  readonly clipNorm: number;
  /** Windows per step. */
  readonly batchSize: number;
  /** Tokens predicted per window (each window reads seqLen + 1 tokens). */
  readonly seqLen: number;
}

/** Everything a run needs to continue exactly: what a checkpoint holds. */
export interface TrainState {
  readonly config: QatConfig;
  /** Latent f32 weights, in `paramLayout` order. */
  readonly params: readonly Param[];
  /** Adam first and second moments, one per parameter, same order. */
  readonly m: readonly Float32Array[];
  readonly v: readonly Float32Array[];
  /** Steps done. */
  step: number;
  /** The data-order PRNG state (uint32). */
  rng: number;
}

/** What `train` reports after each step. */
export interface StepReport {
  /** Steps done, this one included. */
  readonly step: number;
  /** Mean cross-entropy of the step's batch (before the update), nats per token. */
  readonly loss: number;
  readonly lr: number;
  /** Global gradient norm before clipping. */
  readonly gradNorm: number;
  /** Tokens predicted in this step. */
  readonly tokens: number;
  /** Throughput of this step (wall clock). */
  readonly tokensPerSecond: number;
}

/** A fresh run: seeded weights (`initSeed`), zero moments, step 0, data order seeded by `dataSeed`. */
export function initTrainState(config: QatConfig, initSeed: number, dataSeed: number): TrainState {
  checkQatConfig(config);
  return stateFrom(config, initParams(config, initSeed), dataSeed);
}

/** A run's first state from given weights (`barbell train --init`): zero moments, step 0, data order seeded by `dataSeed`. */
export function stateFrom(config: QatConfig, params: readonly Param[], dataSeed: number): TrainState {
  return {
    config,
    params,
    m: params.map((p) => new Float32Array(p.data.length)),
    v: params.map((p) => new Float32Array(p.data.length)),
    step: 0,
    rng: new Rng(dataSeed).state,
  };
}

/** Learning rate of step `step` (0-based): linear warmup to peakLr, then cosine down to minLr at totalSteps. */
export function learningRate(o: TrainOptions, step: number): number {
  if (step < o.warmupSteps) {
    return (o.peakLr * (step + 1)) / o.warmupSteps;
  }
  const span = Math.max(1, o.totalSteps - o.warmupSteps);
  const progress = Math.min(1, (step - o.warmupSteps) / span);
  return o.minLr + 0.5 * (o.peakLr - o.minLr) * (1 + Math.cos(Math.PI * progress));
}

function checkOptions(o: TrainOptions): void {
  const ints: [string, number, number][] = [
    ["totalSteps", o.totalSteps, 1],
    ["warmupSteps", o.warmupSteps, 0],
    ["batchSize", o.batchSize, 1],
    ["seqLen", o.seqLen, 1],
  ];
  for (const [name, v, min] of ints) {
    if (!Number.isSafeInteger(v) || v < min) {
      throw new ShapeError("size", `[train] ${name} = ${v} must be an integer ≥ ${min}`);
    }
  }
  const ok =
    o.peakLr >= 0 && o.minLr >= 0 && o.weightDecay >= 0 && o.beta1 >= 0 && o.beta1 < 1 && o.beta2 >= 0 && o.beta2 < 1 && o.eps > 0 && o.clipNorm > 0;
  if (!ok) {
    throw new ShapeError("size", "[train] learning rates, decay, betas (in [0, 1)), eps and clipNorm must be in range");
  }
}

/** The windows of the next batch: `batchSize` seeded starts in the token array, each seqLen + 1 tokens. */
export function nextBatch(tokens: ArrayLike<number>, o: TrainOptions, rng: Rng): number[][] {
  const span = tokens.length - (o.seqLen + 1);
  if (span < 0) {
    throw new ShapeError("size", `[train] ${tokens.length} tokens cannot hold a window of ${o.seqLen + 1}`);
  }
  return Array.from({ length: o.batchSize }, () => {
    const start = rng.below(span + 1);
    return Array.from({ length: o.seqLen + 1 }, (_, i) => tokens[start + i] ?? 0);
  });
}

/** The global L2 norm of `grads` (summed in float64). */
export function globalNorm(grads: readonly (Float32Array | Float64Array)[]): number {
  let sq = 0;
  for (const g of grads) {
    for (let j = 0; j < g.length; j++) {
      const x = g[j] as number;
      sq += x * x;
    }
  }
  return Math.sqrt(sq);
}

/** The factor that brings a global norm `norm` down to at most `maxNorm` (1: no clipping needed). */
export function clipFactor(norm: number, maxNorm: number): number {
  return norm > maxNorm ? maxNorm / norm : 1;
}

/** Scales `grads` in place so their global L2 norm is at most `maxNorm`; returns the norm before. */
export function clipGradients(grads: readonly Float64Array[], maxNorm: number): number {
  const norm = globalNorm(grads);
  const f = clipFactor(norm, maxNorm);
  if (f !== 1) {
    for (const g of grads) {
      for (let j = 0; j < g.length; j++) {
        g[j] = (g[j] as number) * f;
      }
    }
  }
  return norm;
}

/**
 * One AdamW update of `p` (step t ≥ 1, 1-based): m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²;
 * w ← w − lr·(m̂/(√v̂ + eps) + λ·w) with m̂ = m/(1−β1ᵗ), v̂ = v/(1−β2ᵗ) and decoupled decay λ (matrices only).
 * Float64 arithmetic; w, m and v are stored as f32. `gradScale` multiplies each gradient as it is read
 * (the clipping factor: the same float64 products as clipping the gradients in place first).
 */
export function adamwUpdate(
  p: Param,
  grad: Float32Array | Float64Array,
  m: Float32Array,
  v: Float32Array,
  lr: number,
  t: number,
  o: Pick<TrainOptions, "beta1" | "beta2" | "eps" | "weightDecay">,
  gradScale = 1,
): void {
  const bc1 = 1 - Math.pow(o.beta1, t);
  const bc2 = 1 - Math.pow(o.beta2, t);
  const decay = p.matrix ? o.weightDecay : 0;
  const { beta1, beta2, eps } = o;
  const data = p.data;
  const n = Math.min(data.length, grad.length, m.length, v.length);
  for (let j = 0; j < n; j++) {
    const gj = (grad[j] as number) * gradScale;
    // The moments as stored (f32), read back exactly as written.
    const mj = (m[j] = beta1 * (m[j] as number) + (1 - beta1) * gj);
    const vj = (v[j] = beta2 * (v[j] as number) + (1 - beta2) * gj * gj);
    const w = data[j] as number;
    data[j] = w - lr * ((Math.fround(mj) / bc1) / (Math.sqrt(Math.fround(vj) / bc2) + eps) + decay * w);
  }
}

/** The scalars of one AdamW update as TrainKernels.adamw reads them: lr, bc1, bc2, beta1, beta2, eps, decay, gradScale. */
export function adamwParams(p: Param, lr: number, t: number, o: Pick<TrainOptions, "beta1" | "beta2" | "eps" | "weightDecay">, gradScale = 1): Float64Array {
  return Float64Array.of(lr, 1 - Math.pow(o.beta1, t), 1 - Math.pow(o.beta2, t), o.beta1, o.beta2, o.eps, p.matrix ? o.weightDecay : 0, gradScale);
}

/**
 * One step on `state` (mutated): batch, forward on a tape, STE backward, clip, AdamW update. `runtime`
 * says where it runs (createNativeTrainRuntime() in ./fast.ts: native forward and f32 native backward
 * products); absent: the default backend and float64 backward (the reference).
 */
export function trainStep(state: TrainState, tokens: ArrayLike<number>, o: TrainOptions, runtime?: TrainRuntime): StepReport {
  checkOptions(o);
  const started = performance.now();
  const c = state.config;
  const rng = new Rng(state.rng);
  const batch = nextBatch(tokens, o, rng);
  for (const id of batch.flat()) {
    if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize) {
      throw new ShapeError("bounds", `[train] token ${id} is outside the vocabulary of ${c.vocabSize}`);
    }
  }
  // The gradients as the tape's f32 tensors give them (exact in float64, so nothing is lost by not widening).
  const grads: Float32Array[] = [];
  let loss = 0;
  {
    using g = createTape({
      ...(runtime?.matmul === undefined ? {} : { matmul: runtime.matmul }),
      ...(runtime?.kernels === undefined ? {} : { kernels: runtime.kernels }),
    });
    const keep: Disposable[] = [];
    const { tensors, bound } = bindParams(g, c, state.params, runtime?.backend);
    try {
      // All windows as one [batchSize·seqLen] batch (the mean of the windows' mean losses).
      const mean = batchLoss(g, c, bound, batch, keep);
      loss = mean.toFloat32()[0] ?? Number.NaN;
      const gr = g.backwardArrays(mean);
      for (const p of state.params) {
        const t = tensors.get(p.name);
        grads.push((t === undefined ? undefined : gr.get(t)) ?? new Float32Array(p.data.length));
      }
    } finally {
      for (const d of keep) {
        d[Symbol.dispose]();
      }
      for (const t of tensors.values()) {
        t.dispose();
      }
    }
  }
  // Clipping is applied as AdamW reads each gradient (one pass over 5M weights fewer, no float64 copies).
  const gradNorm = globalNorm(grads);
  const factor = clipFactor(gradNorm, o.clipNorm);
  const lr = learningRate(o, state.step);
  const t = state.step + 1;
  const native = runtime?.kernels?.adamw;
  for (const [i, p] of state.params.entries()) {
    const grad = grads[i] ?? new Float32Array(0);
    const m = state.m[i] ?? new Float32Array(0);
    const v = state.v[i] ?? new Float32Array(0);
    if (native === undefined) {
      adamwUpdate(p, grad, m, v, lr, t, o, factor);
    } else {
      // The same float64 arithmetic in native code, over the pool (bit for bit: test/train/native-kernels.test.ts).
      native(p.data, grad, m, v, Math.min(p.data.length, grad.length, m.length, v.length), adamwParams(p, lr, t, o, factor));
    }
  }
  state.step = t;
  state.rng = rng.state;
  const seconds = Math.max((performance.now() - started) / 1000, 1e-9);
  const predicted = o.batchSize * o.seqLen;
  return { step: t, loss, lr, gradNorm, tokens: predicted, tokensPerSecond: predicted / seconds };
}

/**
 * Runs steps until `state.step` reaches `untilStep` (default: options.totalSteps), calling `onStep`
 * after each. Returns the reports. Stopping early and resuming from a checkpoint continues exactly
 * (with the same runtime: the fast one rounds differently from the float64 reference).
 */
export function train(
  state: TrainState,
  tokens: ArrayLike<number>,
  options: TrainOptions,
  onStep?: (report: StepReport) => void,
  untilStep: number = options.totalSteps,
  runtime?: TrainRuntime,
): StepReport[] {
  checkOptions(options);
  const reports: StepReport[] = [];
  while (state.step < untilStep) {
    const r = trainStep(state, tokens, options, runtime);
    reports.push(r);
    onStep?.(r);
  }
  return reports;
}
