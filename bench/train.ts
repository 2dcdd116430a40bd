/**
 * QAT training throughput (issue 8, point 3): tokens/s of `trainStep` on a ≈5M-parameter BitNet b1.58
 * config (hidden 256, 4 layers, FFN 688, vocab 4096, untied head, 128-token windows) on random token ids.
 * The forward runs on the default backend (JS); the backward on the host in float64 (docs/training.md).
 *
 *   npx tsx bench/train.ts [--quick]     # alone; `npm run bench` includes it
 */
import { fileURLToPath } from "node:url";
import type { QatConfig } from "../src/train/model.js";
import { initTrainState, trainStep, type TrainOptions } from "../src/train/qat.js";
import { Rng } from "../src/train/rng.js";

export const TRAIN_BENCH_CONFIG: QatConfig = {
  vocabSize: 4096,
  hidden: 256,
  layers: 4,
  heads: 4,
  kvHeads: 2,
  ffn: 688,
  rmsEps: 1e-5,
  ropeTheta: 500_000,
  activation: "relu2",
  tied: false,
};

/** Trains a few steps (one warm-up, then until `budgetMs` or `maxSteps`) and reports the median tokens/s. */
export function trainBench(opts: { quick?: boolean } = {}): string[] {
  const quick = opts.quick === true;
  const c = TRAIN_BENCH_CONFIG;
  const options: TrainOptions = {
    totalSteps: 1000,
    warmupSteps: 10,
    peakLr: 1e-3,
    minLr: 1e-4,
    weightDecay: 0.1,
    beta1: 0.9,
    beta2: 0.95,
    eps: 1e-8,
    clipNorm: 1,
    batchSize: 1,
    seqLen: 128,
  };
  const rng = new Rng(1);
  const tokens = Uint16Array.from({ length: 8192 }, () => rng.below(c.vocabSize));
  const state = initTrainState(c, 1, 2);
  const params = state.params.reduce((n, p) => n + p.data.length, 0);
  const budgetMs = quick ? 8_000 : 16_000;
  const maxSteps = quick ? 4 : 12;
  trainStep(state, tokens, options); // warm-up: JIT, first allocations
  const rates: number[] = [];
  const losses: number[] = [];
  const start = performance.now();
  while (rates.length < 3 || (rates.length < maxSteps && performance.now() - start < budgetMs)) {
    const r = trainStep(state, tokens, options);
    rates.push(r.tokensPerSecond);
    losses.push(r.loss);
  }
  const sorted = [...rates].sort((a, b) => a - b);
  const median = sorted[sorted.length >> 1] ?? Number.NaN;
  const range = `${(sorted[0] ?? 0).toFixed(0)}–${(sorted[sorted.length - 1] ?? 0).toFixed(0)}`;
  return [
    "## QAT training throughput",
    "",
    `Config: ${(params / 1e6).toFixed(2)}M parameters (hidden ${c.hidden}, ${c.layers} layers, ${c.heads}/${c.kvHeads} heads, FFN ${c.ffn}, vocab ${c.vocabSize}, untied head),`,
    `${options.batchSize}×${options.seqLen} tokens per step, forward on the default backend, backward on the host (float64).`,
    "",
    "| steps timed | tokens/s (median) | range | ms/step (median) |",
    "|---|---|---|---|",
    `| ${rates.length} (after 1 warm-up) | ${median.toFixed(0)} | ${range} | ${((options.batchSize * options.seqLen * 1000) / median).toFixed(0)} |`,
    "",
    `Loss ${losses[0]?.toFixed(3) ?? "–"} → ${losses[losses.length - 1]?.toFixed(3) ?? "–"} over the timed steps (random ids: ≈ ln ${c.vocabSize} = ${Math.log(c.vocabSize).toFixed(3)}).`,
    "",
  ];
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.stdout.write(`${trainBench({ quick: process.argv.includes("--quick") }).join("\n")}\n`);
}
