/**
 * Scale-out benchmark (issue 19 point 7, docs/scale-out.md): what the NATS hop costs. On loopback: a
 * nats-server, 1, 2 and 3 `barbell worker` processes of the KJV model (models/barbell-kjv.gguf) behind one
 * gateway (`barbell serve --nats`, its own process), against a direct `barbell serve -m` of the same model with the
 * same settings. Every process is started from the sources (tsx) like the CLI, with the same backends and
 * threads; the client streams /v1/completions (greedy, `ignore_eos`, the same prompt) over raw HTTP and notes
 * when each token arrives.
 *
 * Reported per setup: aggregate completion tokens/s (all streams' tokens over the wall time from the first
 * request to the last end), p50/p99 time to first token, p50/p99 of each stream's mean time per token and of the
 * gaps between token arrivals. The overhead line: one stream through the gateway and one worker and one stream of
 * direct serve, run in turn (both up at once, so both see the same machine load), `reps` pairs; the per-pair
 * differences in time per token and to the first token, p50 and p99, are the gateway + NATS hop. On a machine
 * with fewer cores than processes the workers share cores, so the 2- and 3-worker rows show the hop's cost under
 * contention, not scaling.
 *
 *   npx tsx bench/scale-out.ts [--quick] [--tokens 48] [--threads 1] [--backend native-cpu]
 *   npm run bench                  # includes it (skipped with a note without nats-server)
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(here, "..");
const MODEL = path.join(ROOT, "models/barbell-kjv.gguf");
/** Longest wait for a process to print its ready line. */
const START_TIMEOUT_MS = 120_000;
const PROMPT = "And God said, Let there be light";

export interface ScaleOutOptions {
  readonly quick?: boolean;
  /** Tokens per stream. Default 64 (32 with quick). */
  readonly tokens?: number;
  /** Threads per model process. Default 1. */
  readonly threads?: number;
  /** Backend list for every model process (default: what `barbell serve` picks). */
  readonly backend?: string;
  /** Decode slots per worker (and of the direct server). Default 2. */
  readonly parallel?: number;
}

export interface ScaleOutRow {
  readonly setup: string;
  readonly streams: number;
  /** Runs pooled (the one-stream rows run several times, one after another). */
  readonly runs: number;
  readonly tokens: number;
  readonly aggregate: number;
  readonly ttft: { p50: number; p99: number };
  /** Gaps between token arrivals (tokens that arrive in one read count 0). */
  readonly itl: { p50: number; p99: number };
  /** Each stream's mean time per token after the first ((last - first) / (n - 1)), p50 and p99 over streams. */
  readonly perToken: { p50: number; p99: number };
}

function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) {
    return Number.NaN;
  }
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? Number.NaN;
}

interface Proc {
  readonly child: ChildProcess;
  output(): string;
}

let runner: string | undefined;

/** Starts `barbell <args>` from the sources; resolves when `ready` matches its output. */
async function startCli(args: readonly string[], ready: RegExp): Promise<Proc & { match: RegExpExecArray }> {
  if (runner === undefined) {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "barbell-bench-"));
    runner = path.join(dir, "barbell.mts");
    await fs.writeFile(runner, `import { main } from ${JSON.stringify(pathToFileURL(path.join(ROOT, "src/cli/main.ts")).href)};\nprocess.exitCode = await main(process.argv);\n`);
  }
  const child = spawn(process.execPath, ["--import", "tsx", runner, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  return waitFor(child, ready);
}

function waitFor(child: ChildProcess, ready: RegExp): Promise<Proc & { match: RegExpExecArray }> {
  let out = "";
  const read = (d: Buffer): void => void (out += d.toString());
  child.stdout?.on("data", read);
  child.stderr?.on("data", read);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      clearInterval(check);
      reject(new Error(`not ready in ${START_TIMEOUT_MS} ms: ${out.slice(-2000)}`));
    }, START_TIMEOUT_MS);
    const check = setInterval(() => {
      const m = ready.exec(out);
      if (m !== null) {
        clearInterval(check);
        clearTimeout(timer);
        resolve({ child, match: m, output: () => out });
      }
    }, 50);
    child.once("exit", (code) => {
      clearInterval(check);
      clearTimeout(timer);
      reject(new Error(`exited ${code}: ${out.slice(-2000)}`));
    });
  });
}

async function stop(p: Proc | undefined): Promise<void> {
  if (p === undefined || p.child.exitCode !== null || p.child.signalCode !== null) {
    return;
  }
  const gone = new Promise((resolve) => p.child.once("exit", resolve));
  p.child.kill("SIGTERM");
  const timer = setTimeout(() => p.child.kill("SIGKILL"), 15_000);
  await gone;
  clearTimeout(timer);
}

/** One streamed completion: arrival times (ms) of its tokens, from the request's start. */
async function stream(base: string, tokens: number): Promise<{ start: number; arrivals: number[] }> {
  const start = performance.now();
  const response = await fetch(`${base}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "kjv", prompt: PROMPT, max_tokens: tokens, temperature: 0, ignore_eos: true, stream: true }),
  });
  if (!response.ok || response.body === null) {
    throw new Error(`HTTP ${response.status}: ${await response.text()}`);
  }
  const arrivals: number[] = [];
  let buffered = "";
  const decoder = new TextDecoder();
  for await (const chunk of response.body) {
    const now = performance.now();
    buffered += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buffered.indexOf("\n\n")) >= 0) {
      const event = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      const data = event.startsWith("data: ") ? event.slice(6) : "";
      if (data === "" || data === "[DONE]") {
        continue;
      }
      const parsed = JSON.parse(data) as { choices?: { text?: string }[]; error?: { message: string } };
      if (parsed.error !== undefined) {
        throw new Error(parsed.error.message);
      }
      if ((parsed.choices?.[0]?.text ?? "") !== "") {
        arrivals.push(now - start);
      }
    }
  }
  return { start, arrivals };
}

interface Run {
  readonly arrivals: number[];
}

function row(setup: string, streams: number, runs: number, all: readonly Run[], wall: number): ScaleOutRow {
  const total = all.reduce((n, r) => n + r.arrivals.length, 0);
  const ttft = all.map((r) => r.arrivals[0] ?? Number.NaN);
  const itl = all.flatMap((r) => r.arrivals.slice(1).map((t, i) => t - (r.arrivals[i] ?? t)));
  const p = (xs: number[]): { p50: number; p99: number } => ({ p50: percentile(xs, 50), p99: percentile(xs, 99) });
  return { setup, streams, runs, tokens: total, aggregate: total / (wall / 1000), ttft: p(ttft), itl: p(itl), perToken: p(all.map(perToken)) };
}

/** A stream's mean time per token after the first. */
function perToken(r: Run): number {
  return r.arrivals.length > 1 ? ((r.arrivals.at(-1) ?? 0) - (r.arrivals[0] ?? 0)) / (r.arrivals.length - 1) : Number.NaN;
}

async function measure(setup: string, base: string, streams: number, tokens: number): Promise<ScaleOutRow> {
  await stream(base, 4); // warm up: the prompt path, the worker's first decode
  const t0 = performance.now();
  const all = await Promise.all(Array.from({ length: streams }, () => stream(base, tokens)));
  return row(setup, streams, 1, all, performance.now() - t0);
}

/**
 * One stream at a time, alternating between direct serve and the gateway (ABBA…), `reps` each: the two setups
 * see the same machine load, and each pair gives one difference in time per token and to the first token.
 */
async function paired(directUrl: string, gatewayUrl: string, tokens: number, reps: number): Promise<{ rows: ScaleOutRow[]; perToken: number[]; ttft: number[] }> {
  await stream(directUrl, 4);
  await stream(gatewayUrl, 4);
  const d: Run[] = [];
  const g: Run[] = [];
  let [dWall, gWall] = [0, 0];
  for (let i = 0; i < reps; i++) {
    for (const which of i % 2 === 0 ? ["d", "g"] : ["g", "d"]) {
      const t0 = performance.now();
      const r = await stream(which === "d" ? directUrl : gatewayUrl, tokens);
      (which === "d" ? d : g).push(r);
      if (which === "d") {
        dWall += performance.now() - t0;
      } else {
        gWall += performance.now() - t0;
      }
    }
  }
  return {
    rows: [row("direct `barbell serve`", 1, reps, d, dWall), row("gateway + 1 worker", 1, reps, g, gWall)],
    perToken: g.map((r, i) => perToken(r) - perToken(d[i] ?? r)),
    ttft: g.map((r, i) => (r.arrivals[0] ?? 0) - (d[i]?.arrivals[0] ?? 0)),
  };
}

async function startNatsServer(bin: string): Promise<Proc & { url: string; dir: string }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "barbell-bench-nats-"));
  const conf = path.join(dir, "nats.conf");
  await fs.writeFile(conf, `listen: "127.0.0.1:-1"\n`);
  const p = await waitFor(spawn(bin, ["-c", conf], { stdio: ["ignore", "pipe", "pipe"] }), /Listening for client connections on (127\.0\.0\.1:\d+)/);
  return { ...p, url: `nats://${p.match[1] ?? ""}`, dir };
}

export async function scaleOutBench(options: ScaleOutOptions = {}): Promise<{ lines: string[]; rows: ScaleOutRow[] }> {
  const bin = spawnSync("sh", ["-c", "command -v nats-server"], { encoding: "utf8" }).stdout.trim();
  const lines = ["## Scale-out on NATS (gateway + workers, loopback)", ""];
  if (bin === "") {
    lines.push("Skipped: no nats-server binary (apt-get install nats-server).");
    return { lines, rows: [] };
  }
  const tokens = options.tokens ?? (options.quick === true ? 32 : 64);
  /** One-stream runs pooled for the overhead comparison. */
  const reps = options.quick === true ? 4 : 12;
  const threads = options.threads ?? 1;
  const parallel = options.parallel ?? 2;
  const model = ["-m", MODEL, "--name", "kjv", "-t", String(threads), "--parallel", String(parallel), ...(options.backend === undefined ? [] : ["--backend", options.backend])];
  const rows: ScaleOutRow[] = [];
  const procs: Proc[] = [];
  let nats: (Proc & { url: string; dir: string }) | undefined;
  let pairs: { perToken: number[]; ttft: number[] } | undefined;
  try {
    // Direct serve and the gateway with one worker side by side: one stream each in turn, then `parallel` streams.
    const direct = await startCli(["serve", ...model, "--port", "0", "--quiet"], /listening on (\S+)/);
    procs.push(direct);
    const directUrl = direct.match[1] ?? "";
    nats = await startNatsServer(bin);
    const gateway = await startCli(["serve", "--nats", nats.url, "--nats-prefix", "bench", "--port", "0", "--quiet"], /listening on (\S+)/);
    procs.push(gateway);
    const gatewayUrl = gateway.match[1] ?? "";
    for (let n = 1; n <= 3; n++) {
      const w = await startCli(["worker", ...model, "--nats", nats.url, "--nats-prefix", "bench", "--id", `w${n}`], /barbell worker: '[^']+' ready/);
      procs.push(w);
      // Until the gateway routes to all n workers.
      for (let i = 0; i < 600; i++) {
        const h = (await (await fetch(`${gatewayUrl}/health/ready`)).json().catch(() => ({}))) as { models?: { kjv?: { workers?: unknown[] } } };
        if ((h.models?.kjv?.workers?.length ?? 0) >= n) {
          break;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      if (n === 1) {
        const p = await paired(directUrl, gatewayUrl, tokens, reps);
        pairs = p;
        rows.push(...p.rows);
        rows.push(await measure("direct `barbell serve`", directUrl, parallel, tokens));
        await stop(direct);
      }
      rows.push(await measure(`gateway + ${n} worker${n > 1 ? "s" : ""}`, gatewayUrl, parallel * n, tokens));
    }
  } finally {
    for (const p of procs.reverse()) {
      await stop(p);
    }
    await stop(nats);
    if (nats !== undefined) {
      await fs.rm(nats.dir, { recursive: true, force: true });
    }
  }
  const f = (x: number): string => x.toFixed(1);
  lines.push(
    `KJV model (models/barbell-kjv.gguf), ${tokens} tokens per stream, greedy; each model process ${threads} thread(s), parallel ${parallel}${options.backend === undefined ? "" : `, backend ${options.backend}`}; ` +
      `every process on this machine (${os.availableParallelism()} logical CPUs), so more workers share its cores.`,
    "",
    "| setup | streams × runs | tokens/s (aggregate) | TTFT p50 / p99 ms | ms per token p50 / p99 | token gap p50 / p99 ms |",
    "|---|---|---|---|---|---|",
  );
  for (const r of rows) {
    lines.push(
      `| ${r.setup} | ${r.streams} × ${r.runs} | ${r.aggregate.toFixed(1)} | ${f(r.ttft.p50)} / ${f(r.ttft.p99)} | ${f(r.perToken.p50)} / ${f(r.perToken.p99)} | ${f(r.itl.p50)} / ${f(r.itl.p99)} |`,
    );
  }
  if (pairs !== undefined) {
    const p = (xs: number[], q: number): string => f(percentile(xs, q));
    lines.push(
      "",
      `Gateway + NATS hop, one stream, ${reps} pairs run in turn (gateway minus direct, per pair): ${p(pairs.perToken, 50)} ms per token at p50 and ${p(pairs.perToken, 99)} ms at p99; ` +
        `time to first token ${p(pairs.ttft, 50)} ms at p50 and ${p(pairs.ttft, 99)} ms at p99. ` +
        `"ms per token" is a stream's (last - first token) / (tokens - 1); token gaps count 0 for tokens read together.`,
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
  const backend = flag("backend");
  const { lines } = await scaleOutBench({
    quick: args.includes("--quick"),
    ...(tokens === undefined ? {} : { tokens: Number(tokens) }),
    ...(threads === undefined ? {} : { threads: Number(threads) }),
    ...(backend === undefined ? {} : { backend }),
  });
  process.stdout.write(`${lines.join("\n")}\n`);
}
