/**
 * Overload benchmark (loopback only, bounded): `barbell serve`'s HTTP server under 4× its capacity, with
 * admission by count only and with admission by predicted wait (`--max-wait`).
 *
 * For each mode a fresh server (one model, `parallel` 2, `queue` 4 by default, the worker in a child process)
 * first answers requests one at a time (unloaded: time to first token per bucket), then `load × (parallel +
 * queue)` clients send streaming completions in closed loops until `accepted` requests have been admitted (or
 * `MAX_REQUESTS` sent, or `MAX_PHASE_MS` passed). A client whose request is refused (429) waits what its
 * Retry-After says (at most `MAX_PAUSE_MS`), or with `--pause ms` that fixed time (impatient clients that keep
 * the pressure on), and sends its next one. Buckets: prompts of 16 and 128 token ids
 * × max_tokens 16, 64 and 192 (greedy; a request ends early if the model emits its end-of-text token).
 * Time to first token (TTFT) is measured by the client, from sending to the first event. An accepted request
 * is lost when its stream does not end with `[DONE]`.
 *
 *   npx tsx bench/overload.ts [--model file.gguf] [--parallel 2] [--queue 4] [--load 4] [--accepted 80]
 *                             [--max-wait 1000] [--pause ms] [--backend native-cpu,js] [--threads n]
 *
 * Reported per mode: sent, accepted, 429s, lost, other statuses, TTFT p50/p99 of accepted requests overall
 * and per max_tokens bucket against the unloaded p99 of that bucket; with --max-wait, whether p99 TTFT ≤
 * max-wait + one unloaded prefill (the unloaded p99 TTFT of the longest prompt).
 */
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { BackendName } from "../src/backends/backend.js";
import { parseBackendList } from "../src/backends/registry.js";
import { createServer } from "../src/serve/http/index.js";

const here = path.dirname(fileURLToPath(import.meta.url));

interface Options {
  readonly model: string;
  readonly parallel: number;
  readonly queue: number;
  readonly load: number;
  readonly accepted: number;
  readonly maxWaitMs: number;
  /** Fixed wait after a 429; undefined: the Retry-After header's. */
  readonly pauseMs: number | undefined;
  readonly backends: readonly BackendName[];
  readonly threads: number | undefined;
}

/** Most requests one mode may send, and the longest it may run: the loops stop by themselves. */
const MAX_REQUESTS = 10_000;
const MAX_PHASE_MS = 10 * 60_000;
const PROMPTS = [16, 128] as const;
const MAX_TOKENS = [16, 64, 192] as const;
const UNLOADED_REPEATS = 5;
/** Longest a client waits after a 429. */
const MAX_PAUSE_MS = 5_000;

function parseArgs(argv: readonly string[]): Options {
  const get = (name: string): string | undefined => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const int = (name: string, fallback: number, min: number, max: number): number => {
    const text = get(name);
    const v = text === undefined ? fallback : Number(text);
    if (!(Number.isSafeInteger(v) && v >= min && v <= max)) {
      throw new RangeError(`--${name} must be an integer in ${min}..${max}, got ${String(text)}`);
    }
    return v;
  };
  const threads = get("threads");
  return {
    model: get("model") ?? path.join(here, "..", "models", "barbell-kjv.gguf"),
    parallel: int("parallel", 2, 1, 64),
    queue: int("queue", 4, 0, 256),
    load: int("load", 4, 1, 64),
    accepted: int("accepted", 80, 1, MAX_REQUESTS),
    maxWaitMs: int("max-wait", 1000, 1, 3_600_000),
    pauseMs: get("pause") === undefined ? undefined : int("pause", 200, 1, MAX_PAUSE_MS),
    backends: parseBackendList(get("backend") ?? "native-cpu,js"),
    threads: threads === undefined ? undefined : int("threads", 1, 1, 256),
  };
}

function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) {
    return Number.NaN;
  }
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? Number.NaN;
}

/** A small seeded generator (mulberry32): the same request mix in every mode. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Outcome {
  readonly status: number;
  /** Retry-After of a 429, in ms. */
  readonly retryAfterMs: number;
  readonly maxTokens: number;
  readonly ttftMs: number | undefined;
  readonly complete: boolean;
}

async function send(url: string, prompt: number, maxTokens: number, vocab: number): Promise<Outcome> {
  const ids = Array.from({ length: prompt }, (_, i) => 1 + ((i * 37) % (vocab - 1)));
  const start = performance.now();
  const res = await fetch(`${url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "m", prompt: ids, max_tokens: maxTokens, temperature: 0, stream: true }),
  });
  if (res.status !== 200 || res.body === null) {
    await res.text();
    return { status: res.status, retryAfterMs: 1000 * Number(res.headers.get("retry-after") ?? "1"), maxTokens, ttftMs: undefined, complete: false };
  }
  let ttft: number | undefined;
  let text = "";
  const decoder = new TextDecoder();
  for await (const chunk of res.body) {
    ttft ??= performance.now() - start;
    text += decoder.decode(chunk as Uint8Array, { stream: true });
  }
  return { status: 200, retryAfterMs: 0, maxTokens, ttftMs: ttft, complete: text.trimEnd().endsWith("data: [DONE]") };
}

interface Phase {
  readonly mode: string;
  readonly unloaded: Map<number, number[]>; // max_tokens → TTFTs
  readonly unloadedPrefill: number;
  readonly outcomes: Outcome[];
  readonly wallMs: number;
  /** The admission's predictor at the end (what it learned). */
  readonly rates: string;
}

async function runMode(o: Options, maxWaitMs: number | undefined): Promise<Phase> {
  const server = await createServer({
    models: [{ name: "m", path: o.model, parallel: o.parallel, queue: o.queue, backends: o.backends, ...(o.threads === undefined ? {} : { threads: o.threads }) }],
    ...(maxWaitMs === undefined ? {} : { maxWaitMs }),
    log: () => undefined,
  });
  try {
    const url = await server.listen(0, "127.0.0.1");
    const vocab = server.served[0]?.info.vocabSize ?? 2;
    // Warm-up (first load of kernels, JIT), then the unloaded TTFTs, one request at a time.
    await send(url, 16, 4, vocab);
    const unloaded = new Map<number, number[]>();
    const byPrompt = new Map<number, number[]>();
    for (let r = 0; r < UNLOADED_REPEATS; r++) {
      for (const prompt of PROMPTS) {
        for (const maxTokens of MAX_TOKENS) {
          const out = await send(url, prompt, maxTokens, vocab);
          if (out.status !== 200 || out.ttftMs === undefined) {
            throw new Error(`unloaded request answered ${out.status}`);
          }
          unloaded.set(maxTokens, [...(unloaded.get(maxTokens) ?? []), out.ttftMs]);
          byPrompt.set(prompt, [...(byPrompt.get(prompt) ?? []), out.ttftMs]);
        }
      }
    }
    const random = seeded(42);
    const clients = o.load * (o.parallel + o.queue);
    const outcomes: Outcome[] = [];
    let sent = 0;
    let admitted = 0;
    const start = performance.now();
    const client = async (): Promise<void> => {
      while (admitted < o.accepted && sent < MAX_REQUESTS && performance.now() - start < MAX_PHASE_MS) {
        sent++;
        const prompt = PROMPTS[Math.floor(random() * PROMPTS.length)] ?? 16;
        const maxTokens = MAX_TOKENS[Math.floor(random() * MAX_TOKENS.length)] ?? 16;
        const out = await send(url, prompt, maxTokens, vocab);
        outcomes.push(out);
        admitted += out.status === 200 ? 1 : 0;
        if (out.status === 429) {
          await new Promise((resolve) => setTimeout(resolve, Math.min(MAX_PAUSE_MS, o.pauseMs ?? out.retryAfterMs)));
        }
      }
    };
    await Promise.all(Array.from({ length: clients }, client));
    const wallMs = performance.now() - start;
    return {
      mode: maxWaitMs === undefined ? "count only" : `max-wait ${maxWaitMs} ms`,
      unloaded,
      unloadedPrefill: percentile(byPrompt.get(Math.max(...PROMPTS)) ?? [], 99),
      outcomes,
      wallMs,
      rates: ((r) => (r === undefined ? "" : `predictor: prefill ${r.prefillTokensPerSecond.toFixed(0)} tokens/s, decode ${r.decodeTokensPerSecond.toFixed(0)} tokens/s (aggregate), ${r.measurements} measurements`))(server.served[0]?.admission.predictor.rates),
    };
  } finally {
    await server.shutdown(5_000);
  }
}

function report(o: Options, p: Phase, maxWaitMs: number | undefined): void {
  const accepted = p.outcomes.filter((x) => x.status === 200);
  const refused = p.outcomes.filter((x) => x.status === 429).length;
  const lost = accepted.filter((x) => !x.complete).length;
  const other = p.outcomes.filter((x) => x.status !== 200 && x.status !== 429).length;
  const ttft = accepted.flatMap((x) => (x.ttftMs === undefined ? [] : [x.ttftMs]));
  const f = (ms: number): string => (Number.isFinite(ms) ? ms.toFixed(0) : "-");
  const pause = o.pauseMs === undefined ? "429: wait Retry-After" : `429: wait ${o.pauseMs} ms`;
  console.log(`\n## ${p.mode} (parallel ${o.parallel}, queue ${o.queue}, ${o.load * (o.parallel + o.queue)} clients, ${pause}, ${(p.wallMs / 1000).toFixed(1)} s)`);
  console.log(`sent ${p.outcomes.length}, accepted ${accepted.length}, 429 ${refused}, lost ${lost}, other ${other}; ${p.rates}`);
  console.log(`TTFT of accepted: p50 ${f(percentile(ttft, 50))} ms, p99 ${f(percentile(ttft, 99))} ms; unloaded prefill (p99 TTFT, ${Math.max(...PROMPTS)}-token prompt) ${f(p.unloadedPrefill)} ms`);
  console.log("| max_tokens | unloaded p99 TTFT ms | accepted | loaded p50 / p99 TTFT ms | p99 ÷ unloaded p99 |");
  console.log("|---|---|---|---|---|");
  for (const m of MAX_TOKENS) {
    const un = percentile(p.unloaded.get(m) ?? [], 99);
    const xs = accepted.filter((x) => x.maxTokens === m).flatMap((x) => (x.ttftMs === undefined ? [] : [x.ttftMs]));
    const p99 = percentile(xs, 99);
    console.log(`| ${m} | ${f(un)} | ${xs.length} | ${f(percentile(xs, 50))} / ${f(p99)} | ${(p99 / un).toFixed(1)}× |`);
  }
  if (maxWaitMs !== undefined) {
    const bound = maxWaitMs + p.unloadedPrefill;
    const p99 = percentile(ttft, 99);
    console.log(`p99 TTFT ${f(p99)} ms ${p99 <= bound ? "≤" : ">"} max-wait + one unloaded prefill = ${f(bound)} ms: ${p99 <= bound ? "HOLDS" : "EXCEEDED"}`);
  }
}

const options = parseArgs(process.argv.slice(2));
console.log(
  `# overload: ${path.basename(options.model)}, ${options.backends.join(">")}, CPU ${os.cpus()[0]?.model ?? "?"} (${os.cpus().length} logical), load average ${os.loadavg()[0]?.toFixed(1)}, Node ${process.version}`,
);
for (const maxWaitMs of [undefined, options.maxWaitMs]) {
  const phase = await runMode(options, maxWaitMs);
  report(options, phase, maxWaitMs);
}
