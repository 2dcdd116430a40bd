/**
 * BitNet b1.58 QAT (docs/training.md): the straight-through BitLinear, a tiny training run whose loss must
 * fall below a stated bound, the schedule and data order, and checkpoints that resume bit for bit and refuse
 * damaged or foreign files with a CheckpointError.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { BitnetConfig } from "../../src/model/bitnet/config.js";
import { forward } from "../../src/model/bitnet/forward.js";
import { KvCache } from "../../src/model/bitnet/kv-cache.js";
import type { BitnetWeights } from "../../src/model/bitnet/weights.js";
import { absmeanTernarize, quantizeActivations as quantizeHost } from "../../src/quant/values.js";
import { defaultBackend } from "../../src/tensor/context.js";
import { int32Tensor, linearQuantized, quantizeActivations, tensor, ternarize, type Tensor } from "../../src/tensor/index.js";
import { createTape } from "../../src/train/autograd.js";
import {
  CheckpointError,
  loadCheckpoint,
  loadCheckpointFile,
  saveCheckpoint,
  saveCheckpointFile,
} from "../../src/train/checkpoint.js";
import { bindParams, windowLogits, type QatConfig } from "../../src/train/model.js";
import {
  adamwUpdate,
  clipGradients,
  initTrainState,
  learningRate,
  nextBatch,
  train,
  type TrainOptions,
  type TrainState,
} from "../../src/train/qat.js";
import { Rng } from "../../src/model/sampling/rng.js";

const CONFIG: QatConfig = {
  vocabSize: 8,
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
  totalSteps: 120,
  warmupSteps: 10,
  peakLr: 1e-2,
  minLr: 1e-3,
  weightDecay: 0.01,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  clipNorm: 1,
  batchSize: 2,
  seqLen: 16,
};

/** A period-10 sequence in which 2 and 5 each have two successors: 2→3 | 2→5, 5→6 | 5→0. */
const PATTERN = [0, 1, 2, 3, 4, 5, 6, 7, 2, 5];
const TOKENS = Array.from({ length: 400 }, (_, i) => PATTERN[i % PATTERN.length] ?? 0);

function values(rng: Rng, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => rng.next() * 2 - 1);
}

describe("bitLinear (straight-through estimator)", () => {
  it("forwards as the inference op pair and sends the STE gradients back", () => {
    const rows = 3;
    const k = 8;
    const n = 4;
    const rng = new Rng(7);
    const xv = values(rng, rows * k);
    const wv = values(rng, n * k);
    const r = Float64Array.from(values(rng, rows * n));
    using x = tensor(xv, ["seq", "embed"], [rows, k]);
    using w = tensor(wv, ["q", "embed"], [n, k]);
    using rt = tensor(Float32Array.from(r), ["seq", "q"], [rows, n]);
    using g = createTape();
    g.param(x);
    g.param(w);
    const y = g.bitLinear(x, g.param(w));
    // Forward: bit for bit the inference BitLinear (ternarize + quantizeActivations + linearQuantized).
    const wt = ternarize(w);
    if (!wt.ok) {
      throw wt.error;
    }
    using wTernary = wt.value;
    using xq = quantizeActivations(x);
    using ref = linearQuantized(xq, wTernary);
    expect(Array.from(y.toFloat32())).toEqual(Array.from(ref.toFloat32()));
    // Backward of L = Σ r·y: gx = r · (γ·W_t), gw = rᵀ · (x_q / s_x), from the host quantizers in float64.
    using grads = g.backward(g.sum(g.mul(y, rt)));
    const tq = absmeanTernarize(wv);
    const aq = quantizeHost(xv, rows, k);
    if (!tq.ok || !aq.ok) {
      throw new Error("quantizers failed");
    }
    const gamma = tq.value.scale;
    const expGx = new Float64Array(rows * k);
    const expGw = new Float64Array(n * k);
    for (let s = 0; s < rows; s++) {
      for (let j = 0; j < n; j++) {
        const rj = r[s * n + j] ?? 0;
        for (let i = 0; i < k; i++) {
          expGx[s * k + i] = (expGx[s * k + i] ?? 0) + rj * gamma * (tq.value.values[j * k + i] ?? 0);
          expGw[j * k + i] = (expGw[j * k + i] ?? 0) + rj * ((aq.value.values[s * k + i] ?? 0) / (aq.value.scales[s] ?? 1));
        }
      }
    }
    const gx = grads.get(x);
    const gw = grads.get(w);
    expect(gx.dims).toEqual(["seq", "embed"]);
    expect(gw.shape).toEqual([n, k]);
    const gxv = gx.toFloat32();
    const gwv = gw.toFloat32();
    expGx.forEach((v, i) => expect(gxv[i]).toBeCloseTo(v, 5));
    expGw.forEach((v, i) => expect(gwv[i]).toBeCloseTo(v, 5));
    // Not the float gradient: the quantizers changed what each gradient multiplies by.
    const floatGx = (i: number): number => {
      const s = Math.floor(i / k);
      let sum = 0;
      for (let j = 0; j < n; j++) {
        sum += (r[s * n + j] ?? 0) * (wv[j * k + (i % k)] ?? 0);
      }
      return sum;
    };
    expect(Array.from(gxv).some((v, i) => Math.abs(v - floatGx(i)) > 1e-3)).toBe(true);
  });
});

describe("schedule and data order", () => {
  it("warms up linearly, then follows a cosine down to minLr", () => {
    expect(learningRate(OPTIONS, 0)).toBeCloseTo(1e-3, 12);
    expect(learningRate(OPTIONS, 9)).toBeCloseTo(1e-2, 12);
    expect(learningRate(OPTIONS, 65)).toBeCloseTo((1e-2 + 1e-3) / 2, 12);
    expect(learningRate(OPTIONS, 120)).toBeCloseTo(1e-3, 12);
  });

  it("AdamW: bias-corrected first steps and decoupled decay on matrices only", () => {
    const o = { beta1: 0.9, beta2: 0.99, eps: 0, weightDecay: 0.1 };
    const w = { name: "w", dims: ["a", "b"], shape: [1, 2], matrix: true, data: Float32Array.of(0.5, -0.25) };
    const norm = { name: "n", dims: ["a"], shape: [2], matrix: false, data: Float32Array.of(0.5, -0.25) };
    const m = new Float32Array(2);
    const v = new Float32Array(2);
    // Step 1: m̂ = g, v̂ = g², so the step is lr·(sign(g) + λ·w) whatever |g| is.
    adamwUpdate(w, Float64Array.of(2, -3), m, v, 0.01, 1, o);
    expect(w.data[0]).toBeCloseTo(0.5 - 0.01 * (1 + 0.1 * 0.5), 7);
    expect(w.data[1]).toBeCloseTo(-0.25 - 0.01 * (-1 + 0.1 * -0.25), 7);
    expect(Array.from(m)).toEqual([Math.fround(0.2), Math.fround(-0.3)]);
    adamwUpdate(norm, Float64Array.of(2, -3), new Float32Array(2), new Float32Array(2), 0.01, 1, o);
    expect(norm.data[0]).toBeCloseTo(0.5 - 0.01, 7);
    // Step 2 with the gradient's sign flipped: m̂ = (0.9·0.1·g − 0.1·g)/(1−0.81), v̂ = g² → −0.0526·sign(g).
    const before = w.data[0] ?? 0;
    adamwUpdate(w, Float64Array.of(-2, 3), m, v, 0.01, 2, o);
    const mHat = (0.9 * 0.2 + 0.1 * -2) / (1 - 0.81);
    const vHat = (0.99 * 0.04 + 0.01 * 4) / (1 - 0.99 ** 2);
    expect(w.data[0]).toBeCloseTo(before - 0.01 * (mHat / Math.sqrt(vHat) + 0.1 * before), 6);
  });

  it("clips the global gradient norm, and only when above the bound", () => {
    const grads = [Float64Array.of(3, 0), Float64Array.of(4)];
    expect(clipGradients(grads, 1)).toBeCloseTo(5, 12);
    expect(grads[0]?.[0]).toBeCloseTo(0.6, 12);
    expect(grads[1]?.[0]).toBeCloseTo(0.8, 12);
    const small = [Float64Array.of(0.3, 0.4)];
    expect(clipGradients(small, 1)).toBeCloseTo(0.5, 12);
    expect(Array.from(small[0] ?? [])).toEqual([0.3, 0.4]);
  });

  it("draws the same windows for the same seed and others for another", () => {
    const a = nextBatch(TOKENS, OPTIONS, new Rng(5));
    expect(nextBatch(TOKENS, OPTIONS, new Rng(5))).toEqual(a);
    expect(nextBatch(TOKENS, OPTIONS, new Rng(6))).not.toEqual(a);
    expect(a.every((w) => w.length === OPTIONS.seqLen + 1)).toBe(true);
  });
});

describe("QAT training run", () => {
  it("learns a periodic sequence: mean loss of the last 10 steps < 0.2 nats within 120 steps", () => {
    // The bound: uniform guessing costs ln 8 ≈ 2.08 nats, the best unigram model 2.03, and the best bigram
    // model 0.28 (2 and 5 each have two successors, 4 of 10 positions: 0.4·ln 2). The pattern is
    // deterministic given two tokens of context, so < 0.2 needs attention to look back past the last
    // token; only each window's first prediction (no context) stays uncertain, ≈ 0.4·ln 2 / 16 ≈ 0.02.
    const state = initTrainState(CONFIG, 1, 2);
    const reports = train(state, TOKENS, OPTIONS);
    expect(reports).toHaveLength(OPTIONS.totalSteps);
    expect(reports[0]?.loss).toBeGreaterThan(1.5);
    const last = reports.slice(-10).reduce((s, r) => s + r.loss, 0) / 10;
    console.log(`QAT: loss ${reports[0]?.loss.toFixed(3)} → ${last.toFixed(4)} (mean of the last 10 steps)`);
    expect(last).toBeLessThan(0.2);
    expect(reports.every((r) => r.tokens === OPTIONS.batchSize * OPTIONS.seqLen && r.tokensPerSecond > 0)).toBe(true);
  });
});

describe("parity with inference", () => {
  it("the training graph's logits equal forward() on the ternarized weights, bit for bit", () => {
    const state = initTrainState(CONFIG, 9, 9);
    train(state, TOKENS, OPTIONS, undefined, 5);
    const window = TOKENS.slice(3, 3 + 12);
    const seq = window.length;
    using g = createTape();
    const keep: Disposable[] = [];
    const { tensors, bound } = bindParams(g, CONFIG, state.params);
    const ternary: Tensor[] = [];
    try {
      using ids = int32Tensor(window, ["seq"], [seq]);
      const trained = windowLogits(g, CONFIG, bound, ids, keep).toFloat32();
      const tern = <D extends readonly string[]>(t: Tensor<"f32", D>): Tensor<"ternary", D> => {
        const r = ternarize(t);
        if (!r.ok) {
          throw r.error;
        }
        ternary.push(r.value);
        return r.value;
      };
      const weights: BitnetWeights = {
        tokenEmbd: bound.tokenEmbd,
        outputNorm: bound.outputNorm,
        output: bound.output,
        tied: CONFIG.tied,
        floatProjections: false,
        layers: bound.layers.map((l) => ({
          attnNorm: l.attnNorm,
          wq: tern(l.wq),
          wk: tern(l.wk),
          wv: tern(l.wv),
          attnSubNorm: l.attnSubNorm,
          wo: tern(l.wo),
          ffnNorm: l.ffnNorm,
          wGate: tern(l.wGate),
          wUp: tern(l.wUp),
          ffnSubNorm: l.ffnSubNorm,
          wDown: tern(l.wDown),
        })),
        dispose: () => undefined,
        [Symbol.dispose]: () => undefined,
      };
      const config: BitnetConfig = {
        arch: "bitnet-b1.58",
        name: undefined,
        vocabSize: CONFIG.vocabSize,
        contextLength: 64,
        hidden: CONFIG.hidden,
        layers: CONFIG.layers,
        ffn: CONFIG.ffn,
        heads: CONFIG.heads,
        kvHeads: CONFIG.kvHeads,
        headDim: CONFIG.hidden / CONFIG.heads,
        rmsEps: CONFIG.rmsEps,
        ropeTheta: CONFIG.ropeTheta,
        activation: CONFIG.activation,
      };
      using cache = new KvCache(config, 64, defaultBackend());
      using logits = forward(config, weights, cache, window, { allLogits: true });
      const inferred = logits.toFloat32();
      expect(inferred.length).toBe(trained.length);
      const worst = inferred.reduce((m, v, i) => Math.max(m, Math.abs(v - (trained[i] ?? 0))), 0);
      // Same ops, same quantizers, same order: bit for bit on the default backend (0 reached).
      expect(worst).toBe(0);
      expect(Array.from(inferred)).toEqual(Array.from(trained));
    } finally {
      keep.forEach((d) => d[Symbol.dispose]());
      tensors.forEach((t) => t.dispose());
      ternary.forEach((t) => t.dispose());
    }
  });
});

const SHORT: TrainOptions = { ...OPTIONS, totalSteps: 12, warmupSteps: 3 };

function snapshot(s: TrainState): number[][] {
  return [...s.params.map((p) => Array.from(p.data)), ...s.m.map((a) => Array.from(a)), ...s.v.map((a) => Array.from(a)), [s.step, s.rng]];
}

describe("checkpoints", () => {
  it("resuming after k steps equals the uninterrupted run bit for bit (bytes and file)", async () => {
    const whole = initTrainState(CONFIG, 3, 4);
    const wholeLosses = train(whole, TOKENS, SHORT).map((r) => r.loss);

    const first = initTrainState(CONFIG, 3, 4);
    const before = train(first, TOKENS, SHORT, undefined, 5).map((r) => r.loss);
    const { state: resumed, options } = await loadCheckpoint(saveCheckpoint(first, SHORT), { config: CONFIG, options: SHORT });
    expect(resumed.step).toBe(5);
    const after = train(resumed, TOKENS, options).map((r) => r.loss);
    expect([...before, ...after]).toEqual(wholeLosses);
    expect(snapshot(resumed)).toEqual(snapshot(whole));

    const dir = await mkdtemp(join(tmpdir(), "barbell-qat-"));
    try {
      const second = initTrainState(CONFIG, 3, 4);
      train(second, TOKENS, SHORT, undefined, 8);
      await saveCheckpointFile(join(dir, "ckpt.safetensors"), second, SHORT);
      const loaded = await loadCheckpointFile(join(dir, "ckpt.safetensors"), { config: CONFIG });
      const rest = train(loaded.state, TOKENS, loaded.options).map((r) => r.loss);
      expect(rest).toEqual(wholeLosses.slice(8));
      expect(snapshot(loaded.state)).toEqual(snapshot(whole));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("refuses damaged, foreign and mismatched checkpoints with a typed error", async () => {
    const state = initTrainState({ ...CONFIG, layers: 1 }, 1, 1);
    train(state, TOKENS, SHORT, undefined, 2);
    const good = saveCheckpoint(state, SHORT);
    await expect(loadCheckpoint(good)).resolves.toBeDefined();

    const refusal = async (bytes: Uint8Array, code: string, expect_ = {}): Promise<void> => {
      const e: unknown = await loadCheckpoint(bytes, expect_).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(e).toBeInstanceOf(CheckpointError);
      expect((e as CheckpointError).code).toBe(code);
    };
    // One flipped bit in the tensor data (the last byte: an Adam moment).
    const flipped = good.slice();
    flipped[flipped.length - 1] = (flipped[flipped.length - 1] ?? 0) ^ 1;
    await refusal(flipped, "corrupt");
    // Truncated.
    await refusal(good.slice(0, good.length - 4), "corrupt");
    // Not safetensors at all.
    await refusal(new TextEncoder().encode("hello, world, this is not a checkpoint"), "corrupt");
    // The step edited in the header (same length, so the file still parses): the checksum catches it.
    const text = new TextDecoder().decode(good);
    const at = text.indexOf('"step":"2"');
    expect(at).toBeGreaterThan(0);
    const edited = good.slice();
    edited[at + 8] = "7".charCodeAt(0);
    await refusal(edited, "corrupt");
    // Another format tag.
    const fat = text.indexOf("barbell.qat-checkpoint");
    const foreign = good.slice();
    foreign[fat] = "B".charCodeAt(0);
    await refusal(foreign, "unsupported");
    // A different model or different options than the caller expects.
    await refusal(good, "mismatch", { config: CONFIG });
    await refusal(good, "mismatch", { options: { ...SHORT, peakLr: 2e-2 } });
  });
});
