/**
 * QAT training throughput (issue 8, point 3): tokens/s of `trainStep` on a ≈5M-parameter BitNet b1.58
 * config (hidden 256, 4 layers, FFN 688, vocab 4096, untied head, 128-token windows) on random token ids,
 * on two runtimes (src/train/fast.ts, docs/training.md "Speed"):
 *
 * - native: `createNativeTrainRuntime()`: forward on the native-cpu backend, the backward's matmul
 *   products (projections, head, attention) in f32 on the addon's thread pool, a batch of 8 windows
 *   run as one [8·128] batch;
 * - reference: the default backend (JS) and every backward rule in float64 on the host, one 128-token
 *   window per step (the path of the first QAT version; timed on fewer steps: it is slow).
 *
 *   npx tsx bench/train.ts [--quick]     # alone; `npm run bench` includes it
 *   npx tsx bench/train.ts --ab <root> [--steps N]
 *
 * `--ab <root>` compares this checkout's native runtime with the one of another checkout of barbell at
 * <root> (e.g. `git worktree add /tmp/before <commit>`, or `git archive <commit> src | tar -x -C <root>`),
 * both in this process on the same addon, one warm-up step each, then N steps of each interleaved
 * (A B B A …, so drift in the machine's load falls on both): median tokens/s and CPU ms per step (all
 * threads, process.cpuUsage) of each. The ratio is the figure to quote on a shared, loaded machine.
 */
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createNativeTrainRuntime, nativeTrainUnavailable, type TrainRuntime } from "../src/train/fast.js";
import type { QatConfig } from "../src/train/model.js";
import type * as qatModule from "../src/train/qat.js";
import { initTrainState, trainStep, type TrainOptions } from "../src/train/qat.js";
import type * as fastModule from "../src/train/fast.js";
import { Rng } from "../src/model/sampling/rng.js";

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

const BASE_OPTIONS: TrainOptions = {
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

interface Timed {
  readonly name: string;
  readonly options: TrainOptions;
  readonly rates: number[];
  readonly losses: number[];
}

/** One warm-up step (JIT, first allocations), then steps until `budgetMs` (at least `minSteps`, at most `maxSteps`). */
function timeSteps(name: string, options: TrainOptions, runtime: TrainRuntime | undefined, tokens: Uint16Array, budget: { ms: number; minSteps: number; maxSteps: number }): Timed {
  const state = initTrainState(TRAIN_BENCH_CONFIG, 1, 2);
  trainStep(state, tokens, options, runtime);
  const rates: number[] = [];
  const losses: number[] = [];
  const start = performance.now();
  while (rates.length < budget.minSteps || (rates.length < budget.maxSteps && performance.now() - start < budget.ms)) {
    const r = trainStep(state, tokens, options, runtime);
    rates.push(r.tokensPerSecond);
    losses.push(r.loss);
  }
  return { name, options, rates, losses };
}

function row(t: Timed): string {
  const sorted = [...t.rates].sort((a, b) => a - b);
  const median = sorted[sorted.length >> 1] ?? Number.NaN;
  const range = `${(sorted[0] ?? 0).toFixed(0)}–${(sorted[sorted.length - 1] ?? 0).toFixed(0)}`;
  const tokens = t.options.batchSize * t.options.seqLen;
  return `| ${t.name} | ${t.options.batchSize}×${t.options.seqLen} | ${t.rates.length} | ${median.toFixed(0)} | ${range} | ${((tokens * 1000) / median).toFixed(0)} |`;
}

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1] ?? Number.NaN;

/** Trains a few steps on each runtime and reports the median tokens/s. */
export function trainBench(opts: { quick?: boolean } = {}): string[] {
  const quick = opts.quick === true;
  const c = TRAIN_BENCH_CONFIG;
  const rng = new Rng(1);
  const tokens = Uint16Array.from({ length: 16384 }, () => rng.below(c.vocabSize));
  const params = initTrainState(c, 1, 2).params.reduce((n, p) => n + p.data.length, 0);
  const results: Timed[] = [];
  const unavailable = nativeTrainUnavailable();
  let nativeName = "native";
  if (unavailable === undefined) {
    using rt = createNativeTrainRuntime();
    nativeName = rt.name;
    results.push(
      timeSteps(`native: ${rt.name}, f32 backward products`, { ...BASE_OPTIONS, batchSize: 8 }, rt, tokens, {
        ms: quick ? 8_000 : 20_000,
        minSteps: 3,
        maxSteps: quick ? 6 : 16,
      }),
    );
  }
  results.push(
    timeSteps("reference: default backend (JS), float64 backward", BASE_OPTIONS, undefined, tokens, { ms: 0, minSteps: quick ? 2 : 3, maxSteps: 3 }),
  );
  const [fast, ref] = results.length === 2 ? results : [undefined, results[0]];
  const lines = [
    "## QAT training throughput",
    "",
    `Config: ${(params / 1e6).toFixed(2)}M parameters (hidden ${c.hidden}, ${c.layers} layers, ${c.heads}/${c.kvHeads} heads, FFN ${c.ffn}, vocab ${c.vocabSize}, untied head),`,
    "random token ids; tokens/s of whole steps (forward, backward, clipping, AdamW), after one warm-up step.",
    "",
    "| runtime | windows × tokens per step | steps timed | tokens/s (median) | range | ms/step (median) |",
    "|---|---|---|---|---|---|",
    ...results.map(row),
    "",
  ];
  if (fast !== undefined && ref !== undefined) {
    lines.push(`Speed-up of the native runtime over the reference: ${(median(fast.rates) / median(ref.rates)).toFixed(1)}× (same run, same machine).`);
    lines.push(`Loss ${fast.losses[0]?.toFixed(3) ?? "–"} → ${fast.losses[fast.losses.length - 1]?.toFixed(3) ?? "–"} over the native steps (random ids: ≈ ln ${c.vocabSize} = ${Math.log(c.vocabSize).toFixed(3)}).`);
  } else {
    lines.push(`The native runtime cannot run here (${unavailable ?? "?"}); ${nativeName} not timed.`);
  }
  lines.push("");
  return lines;
}

type QatModule = typeof qatModule;
type FastModule = typeof fastModule;

interface StepFns {
  readonly name: string;
  readonly step: () => number;
}

/** One runtime's step function on a fresh state of the bench config (8×128), from the modules of `root` (or this checkout). */
async function stepsOf(root: string | undefined, tokens: Uint16Array): Promise<StepFns & Disposable> {
  const qat = (root === undefined ? await import("../src/train/qat.js") : await import(`${root}/src/train/qat.ts`)) as QatModule;
  const fast = (root === undefined ? await import("../src/train/fast.js") : await import(`${root}/src/train/fast.ts`)) as FastModule;
  const rt = fast.createNativeTrainRuntime();
  const state = qat.initTrainState(TRAIN_BENCH_CONFIG, 1, 2);
  const options = { ...BASE_OPTIONS, batchSize: 8 };
  qat.trainStep(state, tokens, options, rt);
  return {
    name: `${root ?? "this checkout"}: ${rt.name}`,
    step: () => qat.trainStep(state, tokens, options, rt).tokensPerSecond,
    [Symbol.dispose]: () => rt.dispose(),
  };
}

/** The --ab comparison: `steps` steps of each runtime, interleaved A B B A. */
export async function trainAb(root: string, steps: number): Promise<string[]> {
  const rng = new Rng(1);
  const tokens = Uint16Array.from({ length: 16384 }, () => rng.below(TRAIN_BENCH_CONFIG.vocabSize));
  using a = await stepsOf(root, tokens);
  using b = await stepsOf(undefined, tokens);
  const runs = [a, b].map((fns) => ({ fns, rates: [] as number[], cpu: [] as number[] }));
  for (let i = 0; i < steps; i++) {
    for (const r of i % 2 === 0 ? runs : [...runs].reverse()) {
      const before = process.cpuUsage();
      r.rates.push(r.fns.step());
      const used = process.cpuUsage(before);
      r.cpu.push((used.user + used.system) / 1000);
    }
  }
  const [ra, rb] = runs;
  const lines = [
    `## QAT training A/B (8×128 per step, ${steps} steps each, interleaved)`,
    "",
    "| code | tokens/s (median) | range | CPU ms/step (median, all threads) |",
    "|---|---|---|---|",
    ...runs.map((r) => {
      const sorted = [...r.rates].sort((x, y) => x - y);
      return `| ${r.fns.name} | ${median(r.rates).toFixed(0)} | ${(sorted[0] ?? 0).toFixed(0)}–${(sorted[sorted.length - 1] ?? 0).toFixed(0)} | ${median(r.cpu).toFixed(0)} |`;
    }),
    "",
  ];
  if (ra !== undefined && rb !== undefined) {
    lines.push(`This checkout / ${root}: ${(median(rb.rates) / median(ra.rates)).toFixed(2)}× tokens/s, ${(median(rb.cpu) / median(ra.cpu)).toFixed(2)}× CPU time per step.`, "");
  }
  return lines;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const ab = process.argv.indexOf("--ab");
  if (ab >= 0) {
    const root = process.argv[ab + 1];
    const at = process.argv.indexOf("--steps");
    const steps = at >= 0 ? Number(process.argv[at + 1]) : 12;
    if (root === undefined || !Number.isSafeInteger(steps) || steps < 1 || steps > 1000) {
      throw new Error("usage: bench/train.ts --ab <root of another barbell checkout> [--steps 1…1000]");
    }
    process.stdout.write(`${(await trainAb(resolve(root), steps)).join("\n")}\n`);
  } else {
    process.stdout.write(`${trainBench({ quick: process.argv.includes("--quick") }).join("\n")}\n`);
  }
}
