/**
 * The fast training path (docs/training.md "Speed"): backward products in f32 through a matmul kernel
 * (`createTape({ matmul })`) and the native runtime (`createNativeTrainRuntime`: native forward + native
 * f32 backward). Its gradients must match the float64 reference of the same model within a stated
 * tolerance, and a native run must resume from a checkpoint bit for bit.
 */
import { describe, expect, it } from "vitest";
import { ShapeError } from "../../src/core/errors.js";
import { int32Tensor, tensor } from "../../src/tensor/index.js";
import { createTape, type HostMatmul } from "../../src/train/autograd.js";
import { loadCheckpoint, saveCheckpoint } from "../../src/train/checkpoint.js";
import { createNativeTrainRuntime, nativeTrainUnavailable, type TrainRuntime } from "../../src/train/fast.js";
import { batchLoss, bindParams, windowLogits, windowLoss, type QatConfig } from "../../src/train/model.js";
import { initTrainState, train, type TrainOptions, type TrainState } from "../../src/train/qat.js";

const CONFIG: QatConfig = {
  vocabSize: 16,
  hidden: 32,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  ffn: 64,
  rmsEps: 1e-5,
  ropeTheta: 10_000,
  activation: "relu2",
  tied: false,
};

const OPTIONS: TrainOptions = {
  totalSteps: 12,
  warmupSteps: 2,
  peakLr: 1e-2,
  minLr: 1e-3,
  weightDecay: 0.01,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  clipNorm: 1,
  batchSize: 3,
  seqLen: 10,
};

const TOKENS = Array.from({ length: 200 }, (_, i) => (i * 7 + (i >> 3)) % CONFIG.vocabSize);
const WINDOWS = [TOKENS.slice(3, 14), TOKENS.slice(40, 51)];

/** A plain f32 x·wᵀ in JS (the fast path's contract, without the addon). */
const jsMatmul: HostMatmul = (x, w, m, k, n, out) => {
  for (let r = 0; r < m; r++) {
    for (let j = 0; j < n; j++) {
      let acc = 0;
      for (let i = 0; i < k; i++) {
        acc += (x[r * k + i] ?? 0) * (w[j * k + i] ?? 0);
      }
      out[r * n + j] = acc;
    }
  }
};

/**
 * Gradients (by parameter name) of the mean loss over WINDOWS, for a tape made with `runtime`: one window
 * at a time (summed on the tape), or all as one batch (`batchLoss`).
 */
function gradients(config: QatConfig, runtime: TrainRuntime, batched = false): Map<string, Float32Array> {
  const state = initTrainState(config, 5, 6);
  using g = createTape(runtime.matmul === undefined ? {} : { matmul: runtime.matmul });
  const keep: Disposable[] = [];
  const { tensors, bound } = bindParams(g, config, state.params, runtime.backend);
  try {
    let loss;
    if (batched) {
      loss = batchLoss(g, config, bound, WINDOWS, keep);
    } else {
      let total = windowLoss(g, config, bound, WINDOWS[0] ?? [], keep);
      for (const w of WINDOWS.slice(1)) {
        total = g.add(total, windowLoss(g, config, bound, w, keep));
      }
      loss = g.scale(total, 1 / WINDOWS.length);
    }
    using grads = g.backward(loss);
    return new Map([...tensors].map(([name, t]) => [name, grads.get(t).toFloat32()]));
  } finally {
    keep.forEach((d) => d[Symbol.dispose]());
    tensors.forEach((t) => t.dispose());
  }
}

/** Largest |fast − ref| over a parameter, relative to the largest |ref| of that parameter. */
function worstRelative(ref: Map<string, Float32Array>, fast: Map<string, Float32Array>): { name: string; err: number } {
  let worst = { name: "", err: 0 };
  for (const [name, r] of ref) {
    const f = fast.get(name);
    expect(f?.length).toBe(r.length);
    const scale = r.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
    let err = 0;
    for (let i = 0; i < r.length; i++) {
      err = Math.max(err, Math.abs((f?.[i] ?? Number.NaN) - (r[i] ?? 0)));
    }
    const rel = scale === 0 ? err : err / scale;
    if (!(rel <= worst.err)) {
      worst = { name, err: rel };
    }
  }
  return worst;
}

const REFERENCE: TrainRuntime = { name: "reference" };
const native = nativeTrainUnavailable();

/** windowLogits of `ids` (as `windows` windows back to back) on the default backend, as one array. */
function logitsOf(config: QatConfig, ids: readonly number[], windows: number): Float32Array {
  const state = initTrainState(config, 5, 6);
  using g = createTape();
  const keep: Disposable[] = [];
  const { tensors, bound } = bindParams(g, config, state.params);
  try {
    using t = int32Tensor([...ids], ["seq"], [ids.length]);
    return windowLogits(g, config, bound, t, keep, windows).toFloat32();
  } finally {
    keep.forEach((d) => d[Symbol.dispose]());
    tensors.forEach((t) => t.dispose());
  }
}

describe("batched windows", () => {
  it("the logits of a [B·seq] batch equal each window's own logits bit for bit (default backend)", () => {
    const [a = [], b = []] = WINDOWS;
    const batched = logitsOf(CONFIG, [...a, ...b], 2);
    const one = new Float32Array([...logitsOf(CONFIG, a, 1), ...logitsOf(CONFIG, b, 1)]);
    expect(batched).toEqual(one);
  });

  it("a batch as one [B·seq] tensor has the gradients of the windows one at a time (float64 reference)", () => {
    const worst = worstRelative(gradients(CONFIG, REFERENCE), gradients(CONFIG, REFERENCE, true));
    expect(worst.err, worst.name).toBeLessThan(1e-6);
  });
});

describe("attention windows option", () => {
  it("refuses windows that do not split q and k/v into equal parts", () => {
    using g = createTape();
    using q = tensor(new Float32Array(6 * 2 * 4), ["seq", "head", "headDim"], [6, 2, 4]);
    using k = tensor(new Float32Array(6 * 1 * 4), ["ctx", "kvHead", "headDim"], [6, 1, 4]);
    using k5 = tensor(new Float32Array(5 * 1 * 4), ["ctx", "kvHead", "headDim"], [5, 1, 4]);
    expect(() => g.attention(q, k, k, { windows: 4 })).toThrow(ShapeError);
    expect(() => g.attention(q, k5, k5, { windows: 2 })).toThrow(ShapeError);
    expect(() => g.attention(q, k, k, { windows: 0 })).toThrow(ShapeError);
    expect(g.attention(q, k, k, { windows: 3 }).shape).toEqual([6, 2, 4]);
  });
});

describe("fast backward (f32 products through a matmul kernel)", () => {
  it("matches the float64 reference within 1e-5 of each parameter's largest gradient (JS forward; seen: 2e-7)", () => {
    for (const config of [CONFIG, { ...CONFIG, tied: true, activation: "silu" } as const]) {
      const worst = worstRelative(gradients(config, REFERENCE), gradients(config, { name: "js f32", matmul: jsMatmul }, true));
      expect(worst.err, worst.name).toBeLessThan(1e-5);
    }
  });

  it.skipIf(native !== undefined)("native runtime: within 1e-4 of the reference (native forward and f32 products; seen: 3e-7)", () => {
    using rt = createNativeTrainRuntime();
    const worst = worstRelative(gradients(CONFIG, REFERENCE), gradients(CONFIG, rt, true));
    expect(worst.err, worst.name).toBeLessThan(1e-4);
  });
});

describe("native training run", () => {
  it.skipIf(native !== undefined)("resumes from a checkpoint bit for bit, and its losses stay within 1e-3 nats of the reference run's", async () => {
    using rt = createNativeTrainRuntime();
    const run = (state: TrainState, until?: number): number[] => train(state, TOKENS, OPTIONS, undefined, until, rt).map((r) => r.loss);
    const whole = initTrainState(CONFIG, 1, 2);
    const losses = run(whole);
    const half = initTrainState(CONFIG, 1, 2);
    run(half, 5);
    const { state: resumed } = await loadCheckpoint(saveCheckpoint(half, OPTIONS), { config: CONFIG, options: OPTIONS });
    expect(resumed.step).toBe(5);
    run(resumed);
    expect(Buffer.from(saveCheckpoint(resumed, OPTIONS)).equals(Buffer.from(saveCheckpoint(whole, OPTIONS)))).toBe(true);
    const ref = train(initTrainState(CONFIG, 1, 2), TOKENS, OPTIONS).map((r) => r.loss);
    for (const [i, l] of losses.entries()) {
      expect(Math.abs(l - (ref[i] ?? 0))).toBeLessThan(1e-3);
    }
  });
});
