/**
 * Serving benchmark: 1, 4, 8 and 16 concurrent streams through one model actor on the 700M shape
 * (continuous batching: the worker's host decodes up to `parallel` requests in shared steps). The worker
 * runs in-process (`isolation: "in-process"`), so the numbers are the host's and the batcher's, without
 * the child-process IPC hop. Each stream sends a short prompt (8 token ids) and decodes `tokens` tokens
 * greedily. Reported per concurrency: aggregate tokens/s (all completion tokens over the wall time from the
 * first request to the last `done`), aggregate decode tokens/s (tokens after each stream's first, over the
 * time from the first first-token to the last `done`), p50/p99 time to first token and p50/p99 inter-token
 * latency over every stream, the mean batch (rows per decode step), and the ratio to one stream.
 *
 * A second table measures prefix reuse (src/engine/prompt-cache.ts): the time to first token of the second turn of
 * a 1,500-token conversation (a 1,452-token first prompt and its 48-token greedy reply, then 40 new tokens), on a
 * model actor with the prompt cache (warm: the first turn's full prefill steps are copied) and one without (cold),
 * and whether the two second turns gave the same tokens.
 *
 *   npx tsx bench/serve.ts [--quick] [--tokens 48] [--threads 2] [--backends native-cpu,js] [--head q8_0|keep] [--streams 1,8] [--no-prefix]
 *   npm run bench                  # includes it as the last section
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createActorSystem } from "../src/actors/index.js";
import type { BackendName } from "../src/backends/backend.js";
import { PROVIDERS } from "../src/backends/providers.js";
import { probeOnce } from "../src/backends/registry.js";
import { makeBitnetFixture } from "../src/model/bitnet/fixture.js";
import { modelActor, type ModelActorOptions, type ModelMsg } from "../src/serve/index.js";
import type { ActorRef } from "../src/actors/index.js";
import { SHAPES } from "../scripts/shapes.js";

const here = path.dirname(fileURLToPath(import.meta.url));

export interface ServeBenchOptions {
  readonly quick?: boolean;
  /** Tokens per stream. Default 48 (24 with quick). */
  readonly tokens?: number;
  readonly threads?: number;
  readonly backends?: readonly BackendName[];
  readonly concurrency?: readonly number[];
  /** Output head: "keep" (the file's F16) or "q8_0" (requantized at load; integer activations). Default q8_0. */
  readonly head?: "keep" | "q8_0";
  /** Measure prefix reuse (the second table). Default true. */
  readonly prefix?: boolean;
}

/** The conversation of the prefix-reuse table: first prompt, reply, new message (1,452 + 48 = 1,500 tokens before the new one). */
export const PREFIX_CONVERSATION = { first: 1452, reply: 48, next: 40 } as const;

export interface PrefixRow {
  readonly promptTokens: number;
  readonly coldMs: number;
  readonly warmMs: number;
  readonly reused: number;
  readonly identical: boolean;
}

interface StreamTimes {
  readonly open: number;
  readonly tokens: number[]; // arrival time of each token
  readonly done: number;
}

export interface ServeRow {
  readonly streams: number;
  readonly tokens: number;
  readonly wallMs: number;
  readonly aggregate: number;
  readonly decode: number;
  readonly ttft: { p50: number; p99: number };
  readonly itl: { p50: number; p99: number };
  readonly meanBatch: number;
}

function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) {
    return Number.NaN;
  }
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? Number.NaN;
}

function modelFile(): string {
  const dir = path.join(here, ".models");
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, "bitnet-700m-i2s.gguf");
  if (!fs.existsSync(file)) {
    process.stderr.write("bench: generating the 700m model (once; cached in bench/.models)…\n");
    fs.writeFileSync(file, makeBitnetFixture({ ...SHAPES["700m"], seed: 1 }));
  }
  return file;
}

async function oneStream(ref: ActorRef<ModelMsg>, prompt: number[], maxTokens: number): Promise<StreamTimes> {
  const open = performance.now();
  // As an HTTP request without `logprobs` asks the worker: no per-token log-probability.
  const opened = ref.stream({ type: "processInput", request: { tokens: prompt, maxTokens, temperature: 0, logprobs: false } });
  if (!opened.ok) {
    throw opened.error;
  }
  const tokens: number[] = [];
  for await (const item of opened.value) {
    if (item.kind === "token" && item.token !== undefined) {
      tokens.push(performance.now());
    } else if (item.kind === "error") {
      throw new Error(`bench: request failed: ${item.code} ${item.message}`);
    }
  }
  return { open, tokens, done: performance.now() };
}

async function level(ref: ActorRef<ModelMsg>, streams: number, maxTokens: number, vocab: number): Promise<ServeRow> {
  const before = (await ref.ask({ type: "queryStatus" })).worker;
  const prompts = Array.from({ length: streams }, (_, s) => Array.from({ length: 8 }, (_, i) => (1 + s * 131 + i * 17) % vocab));
  const t0 = performance.now();
  const runs = await Promise.all(prompts.map((p) => oneStream(ref, p, maxTokens)));
  const t1 = performance.now();
  const after = (await ref.ask({ type: "queryStatus" })).worker;
  const total = runs.reduce((n, r) => n + r.tokens.length, 0);
  const firstFirst = Math.min(...runs.map((r) => r.tokens[0] ?? t1));
  const ttft = runs.map((r) => (r.tokens[0] ?? r.done) - r.open);
  const itl = runs.flatMap((r) => r.tokens.slice(1).map((t, i) => t - (r.tokens[i] ?? t)));
  const steps = (after?.batchSteps ?? 0) - (before?.batchSteps ?? 0);
  const rows = (after?.batchRows ?? 0) - (before?.batchRows ?? 0);
  return {
    streams,
    tokens: total,
    wallMs: t1 - t0,
    aggregate: total / ((t1 - t0) / 1000),
    decode: (total - streams) / ((t1 - firstFirst) / 1000),
    ttft: { p50: percentile(ttft, 50), p99: percentile(ttft, 99) },
    itl: { p50: percentile(itl, 50), p99: percentile(itl, 99) },
    meanBatch: steps === 0 ? 0 : rows / steps,
  };
}

/** Greedy tokens of one request and the arrival time of the first. */
async function tokensWithFirst(ref: ActorRef<ModelMsg>, prompt: number[], maxTokens: number): Promise<{ tokens: number[]; first: number }> {
  const opened = ref.stream({ type: "processInput", request: { tokens: prompt, maxTokens, temperature: 0, logprobs: false } });
  if (!opened.ok) {
    throw opened.error;
  }
  const tokens: number[] = [];
  let first = 0;
  for await (const item of opened.value) {
    if (item.kind === "token" && item.token !== undefined) {
      first ||= performance.now();
      tokens.push(item.token);
    } else if (item.kind === "error") {
      throw new Error(`bench: request failed: ${item.code} ${item.message}`);
    }
  }
  return { tokens, first };
}

/** Turn 1, then turn 2 of the conversation on a fresh model actor: turn 2's TTFT, tokens and the tokens it reused. */
async function secondTurn(actor: ModelActorOptions, vocab: number): Promise<{ ms: number; tokens: number[]; reused: number; prompt: number }> {
  const system = createActorSystem();
  try {
    const ref = system.spawn(modelActor(actor));
    const ids = (n: number, salt: number): number[] => Array.from({ length: n }, (_, i) => 1 + ((i * 7919 + salt * 104729) % (vocab - 1)));
    const { first, reply, next } = PREFIX_CONVERSATION;
    const turn1 = ids(first, 1);
    // A chat client resends the conversation: the first prompt, the reply's tokens, the new message.
    const answer = await tokensWithFirst(ref, turn1, reply);
    const prompt = [...turn1, ...answer.tokens, ...ids(next, 2)];
    const before = (await ref.ask({ type: "queryStatus" })).worker?.promptCache.tokensReused ?? 0;
    const t0 = performance.now();
    const run = await tokensWithFirst(ref, prompt, 8);
    const after = (await ref.ask({ type: "queryStatus" })).worker?.promptCache.tokensReused ?? 0;
    return { ms: run.first - t0, tokens: run.tokens, reused: after - before, prompt: prompt.length };
  } finally {
    await system.stop();
  }
}

/** Runs the benchmark; returns its Markdown section and the rows. */
export async function serveBench(options: ServeBenchOptions = {}): Promise<{ lines: string[]; rows: ServeRow[] }> {
  const tokens = options.tokens ?? (options.quick === true ? 24 : 48);
  const threads = options.threads ?? Math.min(os.availableParallelism(), 8);
  const concurrency = options.concurrency ?? [1, 4, 8, 16];
  const head = options.head ?? "q8_0";
  let backends = options.backends;
  if (backends === undefined) {
    const available: BackendName[] = [];
    for (const p of PROVIDERS) {
      if ((await probeOnce(p)).available) {
        available.push(p.name);
      }
    }
    backends = available.length > 0 ? [available[0] as BackendName, "js"] : ["js"];
  }
  const file = modelFile();
  const parallel = Math.max(...concurrency);
  const system = createActorSystem();
  const rows: ServeRow[] = [];
  let chain = "";
  try {
    const ref = system.spawn(modelActor({ ladder: [{ name: "700m", path: file, headType: head }], backends, threads, autotune: false, isolation: "in-process", parallel, queue: 0 }));
    const status = await ref.ask({ type: "queryStatus" }, { timeoutMs: 120_000 });
    chain = status.worker?.backend ?? "";
    const vocab = status.worker?.capabilities.vocab ?? 1000;
    await level(ref, 2, 4, vocab); // warm-up: first-call costs (thread pool, caches) stay out of the table
    for (const streams of concurrency) {
      process.stderr.write(`bench: serve, ${streams} stream(s) × ${tokens} tokens on ${chain}, ${threads} thread(s)\n`);
      rows.push(await level(ref, streams, tokens, vocab));
    }
  } finally {
    await system.stop();
  }
  let prefix: PrefixRow | undefined;
  if (options.prefix !== false) {
    process.stderr.write(`bench: serve, second turn of a ${PREFIX_CONVERSATION.first + PREFIX_CONVERSATION.reply}-token conversation, prompt cache off and on\n`);
    const actor = (promptCacheMiB: number): ModelActorOptions => ({
      ladder: [{ name: "700m", path: file, headType: head }],
      backends,
      threads,
      autotune: false,
      isolation: "in-process",
      parallel: 1,
      queue: 0,
      promptCacheMiB,
    });
    const cold = await secondTurn(actor(0), SHAPES["700m"].vocab ?? 32002);
    const warm = await secondTurn(actor(1024), SHAPES["700m"].vocab ?? 32002);
    prefix = { promptTokens: warm.prompt, coldMs: cold.ms, warmMs: warm.ms, reused: warm.reused, identical: warm.tokens.join() === cold.tokens.join() };
  }
  const one = rows.find((r) => r.streams === 1);
  const lines = [
    `## Serving: concurrent streams through one model actor (continuous batching)`,
    "",
    `700M shape, ${head === "q8_0" ? "Q8_0 head (integer activations)" : "F16 head"}, ${chain}, ${threads} thread(s), in-process worker, \`parallel\` ${parallel}; each stream: 8 prompt tokens, ${tokens} greedy tokens.`,
    "Aggregate t/s = all tokens / wall time; decode t/s = tokens after each stream's first / (last done − first first token);",
    "TTFT from opening the stream; ITL between successive tokens of a stream; mean batch = sequences per decode step.",
    "",
    "| streams | aggregate t/s | decode t/s | × 1 stream (decode) | TTFT p50 ms | TTFT p99 ms | ITL p50 ms | ITL p99 ms | mean batch |",
    "|---|---|---|---|---|---|---|---|---|",
    ...rows.map(
      (r) =>
        `| ${r.streams} | ${r.aggregate.toFixed(1)} | ${r.decode.toFixed(1)} | ${one === undefined ? "" : (r.decode / one.decode).toFixed(2)} | ` +
        `${r.ttft.p50.toFixed(0)} | ${r.ttft.p99.toFixed(0)} | ${r.itl.p50.toFixed(1)} | ${r.itl.p99.toFixed(1)} | ${r.meanBatch.toFixed(2)} |`,
    ),
  ];
  if (prefix !== undefined) {
    const { first, reply, next } = PREFIX_CONVERSATION;
    lines.push(
      "",
      "### Prefix reuse: second turn of a conversation (prompt cache)",
      "",
      `The same model and backends, \`parallel\` 1. Turn 1: ${first} prompt tokens, ${reply} greedy tokens; turn 2: the ${first + reply}-token conversation plus ${next} new tokens (${prefix.promptTokens} prompt tokens), 8 greedy tokens. TTFT of turn 2 from opening its stream; cold: a model actor with \`promptCacheMiB: 0\`; warm: 1024 MiB, after turn 1 ran on it.`,
      "",
      "| turn-2 prompt tokens | reused (warm) | TTFT cold ms | TTFT warm ms | warm / cold | same tokens |",
      "|---|---|---|---|---|---|",
      `| ${prefix.promptTokens} | ${prefix.reused} | ${prefix.coldMs.toFixed(0)} | ${prefix.warmMs.toFixed(0)} | ${(prefix.warmMs / prefix.coldMs).toFixed(3)} | ${prefix.identical ? "yes" : "NO"} |`,
    );
  }
  return { lines, rows };
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const flag = (name: string): string | undefined => {
    const i = args.indexOf(`--${name}`);
    return i < 0 ? undefined : args[i + 1];
  };
  const tokens = flag("tokens");
  const threads = flag("threads");
  const backends = flag("backends");
  const head = flag("head");
  const concurrency = flag("streams");
  const { lines } = await serveBench({
    ...(head === "keep" || head === "q8_0" ? { head } : {}),
    ...(concurrency === undefined ? {} : { concurrency: concurrency.split(",").map(Number) }),
    quick: args.includes("--quick"),
    prefix: !args.includes("--no-prefix"),
    ...(tokens === undefined ? {} : { tokens: Number(tokens) }),
    ...(threads === undefined ? {} : { threads: Number(threads) }),
    ...(backends === undefined ? {} : { backends: backends.split(",") as BackendName[] }),
  });
  process.stdout.write(`${lines.join("\n")}\n`);
}
