/**
 * Export of a QAT-trained model (issue 8, point 5; docs/training.md "Export"): the GGUF that `exportGguf`
 * writes loads with `loadModel` like any BitNet file, its logits equal the trainer's `windowLogits` on the
 * same tokens, a trained tokenizer travels in its metadata, and parameters that do not fit are refused
 * with an ExportError.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadModel } from "../../src/engine/model.js";
import { int32Tensor } from "../../src/tensor/index.js";
import { createTape } from "../../src/train/autograd.js";
import { ExportError, exportGguf, exportGgufFile, type ExportOptions } from "../../src/train/export.js";
import { bindParams, windowLogits, type Param, type QatConfig } from "../../src/train/model.js";
import { initTrainState, train, type TrainOptions } from "../../src/train/qat.js";
import { toGgufTokenizerMetadata, toTokenizerConfig, toTokenizerJson, trainByteBpe } from "../../src/train/tokenizer.js";
import { tokenizerFromJson } from "../../src/model/tokenizer/hf-json.js";

// I2_S stores rows of a multiple of 128: hidden and ffn are.
const CONFIG: QatConfig = {
  vocabSize: 16,
  hidden: 128,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  ffn: 256,
  rmsEps: 1e-5,
  ropeTheta: 10_000,
  activation: "relu2",
  tied: false,
};

const OPTIONS: TrainOptions = {
  totalSteps: 20,
  warmupSteps: 2,
  peakLr: 1e-2,
  minLr: 1e-3,
  weightDecay: 0.01,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  clipNorm: 1,
  batchSize: 2,
  seqLen: 12,
};

const PATTERN = [0, 1, 2, 3, 4, 5, 6, 7, 2, 5, 9, 12, 15];
const TOKENS = Array.from({ length: 300 }, (_, i) => PATTERN[i % PATTERN.length] ?? 0);
const WINDOW = TOKENS.slice(4, 4 + 14);

let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "barbell-export-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A few training steps, so the latent weights are no longer the init. */
function trained(config: QatConfig, steps = 3): Param[] {
  const state = initTrainState(config, 11, 12);
  train(state, TOKENS.map((t) => t % config.vocabSize), OPTIONS, undefined, steps);
  return [...state.params];
}

/** The trainer's logits of `window` (positions 0…n−1), one Float32Array per position. */
function trainerLogits(config: QatConfig, params: readonly Param[], window: readonly number[]): Float32Array[] {
  using g = createTape();
  const keep: Disposable[] = [];
  const { tensors, bound } = bindParams(g, config, params);
  try {
    using ids = int32Tensor([...window], ["seq"], [window.length]);
    const all = windowLogits(g, config, bound, ids, keep).toFloat32();
    return window.map((_, i) => all.slice(i * config.vocabSize, (i + 1) * config.vocabSize));
  } finally {
    keep.forEach((d) => d[Symbol.dispose]());
    tensors.forEach((t) => t.dispose());
  }
}

async function exportedLogits(
  name: string,
  config: QatConfig,
  params: readonly Param[],
  window: readonly number[],
  backends: "js" | "default",
  options: ExportOptions = {},
): Promise<Float32Array[]> {
  const path = join(dir, name);
  await exportGgufFile(path, config, params, options);
  using model = await loadModel(path, backends === "js" ? { backends: ["js"], autotune: false } : { autotune: false });
  expect(model.config.arch).toBe(config.activation === "relu2" ? "bitnet-b1.58" : "bitnet");
  expect(model.tokenizer).toBeUndefined();
  if (backends === "default") {
    console.log(`export: default chain = ${model.backend}`);
  }
  return await model.logits(window, { all: true });
}

function worstDiff(a: readonly Float32Array[], b: readonly Float32Array[]): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  a.forEach((row, i) => row.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - (b[i]?.[j] ?? Number.NaN))))));
  return worst;
}

describe("exportGguf → loadModel", () => {
  it("the loaded model's logits equal the trainer's windowLogits bit for bit on the JS backend (I2_S)", async () => {
    const params = trained(CONFIG);
    const want = trainerLogits(CONFIG, params, WINDOW);
    const got = await exportedLogits("untied.gguf", CONFIG, params, WINDOW, "js");
    // Same trits and γ (I2_S keeps γ as f32), same f32 embedding/norms/head, same graph and kernels.
    expect(worstDiff(got, want)).toBe(0);
    expect(got.map((r) => Array.from(r))).toEqual(want.map((r) => Array.from(r)));
  });

  it("matches on the default backend chain within 1e-4 of the logit range, and a tied SiLU model exactly on JS", async () => {
    const params = trained(CONFIG);
    const want = trainerLogits(CONFIG, params, WINDOW);
    const got = await exportedLogits("chain.gguf", CONFIG, params, WINDOW, "default");
    // Other kernels sum f32 products (attention, norms, head) in another order; the ternary×int8 sums are exact.
    const range = Math.max(...want.flatMap((r) => Array.from(r, Math.abs)));
    const worst = worstDiff(got, want);
    console.log(`export: default chain worst |Δlogit| = ${worst.toExponential(2)} (max |logit| ${range.toFixed(3)})`);
    expect(worst).toBeLessThanOrEqual(1e-4 * Math.max(range, 1));

    const silu: QatConfig = { ...CONFIG, activation: "silu", tied: true, layers: 1 };
    const sp = trained(silu, 2);
    expect(worstDiff(await exportedLogits("silu.gguf", silu, sp, WINDOW, "js"), trainerLogits(silu, sp, WINDOW))).toBe(0);
  });

  it("writes rows I2_S cannot hold as F32 γ·trits when asked, which load as ternary with the same logits", async () => {
    const narrow: QatConfig = { ...CONFIG, hidden: 64, ffn: 96, layers: 1 };
    const params = trained(narrow, 2);
    expect(() => exportGguf(narrow, params)).toThrow(ExportError);
    const got = await exportedLogits("narrow.gguf", narrow, params, WINDOW, "js", { weightType: "f32" });
    expect(worstDiff(got, trainerLogits(narrow, params, WINDOW))).toBe(0);
  });
});

const CORPUS = [
  "In the beginning God created the heaven and the earth.",
  "And the earth was without form, and void; and darkness was upon the face of the deep.",
  "And God said, Let there be light: and there was light.",
  "And God saw the light, that it was good: and God divided the light from the darkness.",
  "And God called the light Day, and the darkness he called Night.",
  "And the evening and the morning were the first day.",
];

describe("a trained tokenizer in the exported GGUF", () => {
  it("model.tokenize, detokenize and generate work on text", async () => {
    const bpe = trainByteBpe(CORPUS, { vocabSize: 300 });
    const reference = tokenizerFromJson(toTokenizerJson(bpe), toTokenizerConfig(bpe));
    const ids = CORPUS.flatMap((line) => Array.from(reference.encode(line, { addBos: true })));
    const config: QatConfig = { ...CONFIG, vocabSize: bpe.tokens.length, layers: 1 };
    const state = initTrainState(config, 5, 6);
    train(state, ids, OPTIONS, undefined, 2);
    const path = join(dir, "tokenizer.gguf");
    await exportGgufFile(path, config, state.params, { tokenizer: toGgufTokenizerMetadata(bpe), name: "kjv-tiny" });
    using model = await loadModel(path, { backends: ["js"], autotune: false });
    expect(model.config.name).toBe("kjv-tiny");
    const text = "And God said, Let there be light.";
    const tokens = model.tokenize(text);
    expect(tokens).toEqual(Array.from(reference.encode(text, { addBos: true })));
    expect(tokens[0]).toBe(bpe.bos);
    expect(tokens.length).toBeLessThan(new TextEncoder().encode(text).length);
    expect(model.detokenize(tokens, { skipSpecial: true })).toBe(text);
    // ignoreEos: a sampled first token may be EOS on this tiny model (an empty result failed CI once, 2026-12-07).
    const result = await model.generate(text, { maxTokens: 4, ignoreEos: true }).complete();
    expect(result.promptTokens).toBe(tokens.length);
    expect(result.tokens.length).toBeGreaterThan(0);
    expect(result.tokens.length).toBeLessThanOrEqual(4);
    expect(result.tokens.every((t) => Number.isInteger(t) && t >= 0 && t < config.vocabSize)).toBe(true);
    expect(typeof result.text).toBe("string");
  });
});

describe("export refusals", () => {
  const codeOf = (f: () => unknown): string | undefined => {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(ExportError);
      return (e as ExportError).code;
    }
    return undefined;
  };

  it("gives typed errors for parameters, configs and tokenizers that do not fit", () => {
    const params = trained(CONFIG, 1);
    expect(codeOf(() => exportGguf(CONFIG, params))).toBeUndefined();
    // Parameters of another config.
    expect(codeOf(() => exportGguf({ ...CONFIG, layers: 3 }, params))).toBe("mismatch");
    expect(codeOf(() => exportGguf({ ...CONFIG, ffn: 384 }, params))).toBe("mismatch");
    expect(codeOf(() => exportGguf({ ...CONFIG, tied: true }, params))).toBe("mismatch");
    // A config that fails its own checks.
    expect(codeOf(() => exportGguf({ ...CONFIG, heads: 3 }, params))).toBe("mismatch");
    // A renamed, reshaped, truncated or non-finite parameter.
    const swap = (i: number, p: Partial<Param>): Param[] => params.map((q, j) => (j === i ? { ...q, ...p } : q));
    expect(codeOf(() => exportGguf(CONFIG, swap(1, { name: "blk.0.attn_nrm.weight" })))).toBe("mismatch");
    expect(codeOf(() => exportGguf(CONFIG, swap(2, { shape: [64, 256] })))).toBe("mismatch");
    expect(codeOf(() => exportGguf(CONFIG, swap(3, { data: new Float32Array(10) })))).toBe("mismatch");
    const nan = Float32Array.from(params[2]?.data ?? []);
    nan[7] = Number.NaN;
    expect(codeOf(() => exportGguf(CONFIG, swap(2, { data: nan })))).toBe("non-finite");
    // Options out of range.
    expect(codeOf(() => exportGguf(CONFIG, params, { contextLength: 0 }))).toBe("mismatch");
    expect(codeOf(() => exportGguf(CONFIG, params, { weightType: "tq2_0" as never }))).toBe("unsupported");
    // A tokenizer whose vocabulary is not the model's, or metadata that is no tokenizer.
    const bpe = trainByteBpe(CORPUS, { vocabSize: 280 });
    expect(codeOf(() => exportGguf(CONFIG, params, { tokenizer: toGgufTokenizerMetadata(bpe) }))).toBe("tokenizer");
    expect(codeOf(() => exportGguf(CONFIG, params, { tokenizer: [] }))).toBe("tokenizer");
  });
});
