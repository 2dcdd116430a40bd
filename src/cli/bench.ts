/**
 * `barbell bench`: llama-bench's interface and output for barbell, so a user can time barbell and llama.cpp on
 * the same file and read the same table. Flags as llama-bench spells them: `-m` (repeatable, or a comma list),
 * `-p` / `-n` / `-pg` / `-t` / `-d` lists (comma separated, or llama-bench's ranges `first-last`,
 * `first-last+step`, `first-last*mult`), `-r` repetitions, `-o md|csv|json|jsonl`, `--no-warmup`.
 *
 * What each test times, as llama-bench does: `pp N` one prompt of N tokens from an empty context (logits of the
 * last position only); `tg N` N one-token decode steps after a one-token prompt (greedy, the end-of-sequence token
 * ignored so every run decodes N tokens); `pp N+tg M` both in one run; `-d D` fills D tokens first, untimed (tg
 * tests only: a timed prompt after a depth needs the prefix cache's reuse, which the library does not expose for
 * token ids yet, so `-p` tests with `-d` > 0 are refused rather than timed wrongly).
 * Token ids are a fixed spread over the vocabulary, so runs are comparable across engines and files.
 */
import type { Command } from "commander";
import { InvalidArgumentError, Option } from "commander";
import type { BitnetModel } from "../engine/model.js";
import { inspectFile } from "./inspect.js";
import { backendList, threadCount } from "./args.js";
import { CliError } from "./errors.js";
import { HF_PREFIX, resolveHfOption } from "./pull.js";
import { open, type CliIo } from "./run.js";
import { HEAD_HELP, kvTypeFlag } from "./flags.js";
import type { KvCacheDType } from "../model/bitnet/kv-cache.js";
import { HEAD_POLICIES, type HeadPolicy } from "../model/bitnet/weights.js";

/** Largest token count in a -p, -n, -pg or -d value (the context bounds it further once the model is open). */
export const MAX_BENCH_TOKENS = 1 << 17;
/** Most values one list flag expands to (a range like 1-100000 is refused, not expanded). */
export const MAX_BENCH_LIST = 64;
/** Most repetitions per test. */
export const MAX_BENCH_REPETITIONS = 1000;
/** Most tests one invocation runs (models × threads × depths × tests), checked before any model loads. */
export const MAX_BENCH_RUNS = 4096;

export type BenchOutput = "md" | "csv" | "json" | "jsonl";

export interface BenchTest {
  readonly nPrompt: number;
  readonly nGen: number;
  readonly depth: number;
}

export interface BenchRow {
  readonly model_filename: string;
  readonly model_type: string;
  readonly model_size: number;
  readonly model_n_params: number;
  readonly backends: string;
  readonly n_threads: number;
  readonly n_prompt: number;
  readonly n_gen: number;
  readonly n_depth: number;
  /** The KV cache element types (llama-bench's type_k / type_v; barbell stores K and V alike). */
  readonly type_k: KvCacheDType;
  readonly type_v: KvCacheDType;
  readonly test_time: string;
  readonly avg_ns: number;
  readonly stddev_ns: number;
  readonly avg_ts: number;
  readonly stddev_ts: number;
  readonly samples_ns: readonly number[];
  readonly samples_ts: readonly number[];
}

/** A llama-bench list value: `a,b,c`, `first-last`, `first-last+step` or `first-last*mult`, each in 0..max. */
export function benchList(max: number, min = 0): (value: string) => number[] {
  const int = (s: string, whole: string): number => {
    const n = Number(s);
    if (s.trim() === "" || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected integers in ${min}..${max} (a,b,c or first-last[+step|*mult]), got '${whole}'`);
    }
    return n;
  };
  return (value: string): number[] => {
    const out: number[] = [];
    for (const part of value.split(",")) {
      const range = /^(\d+)-(\d+)(?:([+*])(\d+))?$/.exec(part.trim());
      if (range === null) {
        out.push(int(part, value));
      } else {
        const [first, last] = [int(range[1] ?? "", value), int(range[2] ?? "", value)];
        const op = range[3] ?? "+";
        const step = int(range[4] ?? "1", value);
        if (last < first || (op === "+" && step < 1) || (op === "*" && (step < 2 || first < 1))) {
          throw new InvalidArgumentError(`'${part}' is not a range that ends (first <= last, step >= 1, mult >= 2 from >= 1)`);
        }
        for (let n = first; n <= last && out.length <= MAX_BENCH_LIST; n = op === "+" ? n + step : n * step) {
          out.push(n);
        }
      }
      if (out.length > MAX_BENCH_LIST) {
        break;
      }
    }
    if (out.length > MAX_BENCH_LIST) {
      throw new InvalidArgumentError(`at most ${MAX_BENCH_LIST} values, got more in '${value}'`);
    }
    return out;
  };
}

/** `-pg 512,128`: one pp+tg pair. */
function pgPair(value: string, previous: [number, number][] = []): [number, number][] {
  const [p, n] = benchList(MAX_BENCH_TOKENS)(value);
  if (p === undefined || n === undefined || value.split(",").length !== 2) {
    throw new InvalidArgumentError(`expected <prompt>,<gen>, e.g. 512,128, got '${value}'`);
  }
  return [...previous, [p, n]];
}

const threadList = (value: string): number[] => value.split(",").map((s) => threadCount(s.trim()));

interface BenchFlags {
  model: string[];
  nPrompt: number[];
  nGen: number[];
  pg?: [number, number][];
  threads?: number[];
  nDepth: number[];
  repetitions: number;
  output: BenchOutput;
  warmup: boolean;
  backend?: Parameters<typeof open>[0]["backend"];
  head: HeadPolicy;
  kvType?: KvCacheDType;
  autotune: boolean;
  pull?: boolean;
}

/** The tests for one depth, in llama-bench's order: every pp, then every tg, then every pp+tg. */
export function benchTests(f: Pick<BenchFlags, "nPrompt" | "nGen" | "pg" | "nDepth">): BenchTest[] {
  const tests: BenchTest[] = [];
  for (const depth of f.nDepth) {
    for (const p of f.nPrompt.filter((n) => n > 0)) {
      tests.push({ nPrompt: p, nGen: 0, depth });
    }
    for (const n of f.nGen.filter((n) => n > 0)) {
      tests.push({ nPrompt: 0, nGen: n, depth });
    }
    for (const [p, n] of f.pg ?? []) {
      tests.push({ nPrompt: p, nGen: n, depth });
    }
  }
  return tests;
}

/** Token ids spread over the vocabulary (never 0, which is often a special token). */
function promptIds(count: number, vocab: number, offset = 0): number[] {
  return Array.from({ length: count }, (_, i) => 1 + (((i + offset) * 7919) % (vocab - 1)));
}

/** Times one test once, in nanoseconds; undefined when `signal` ended it (Ctrl-C). */
async function runOnce(model: BitnetModel, t: BenchTest, signal: AbortSignal): Promise<number | undefined> {
  const vocab = model.config.vocabSize;
  if (t.nGen === 0) {
    const start = process.hrtime.bigint();
    await model.logits(promptIds(t.nPrompt, vocab));
    return signal.aborted ? undefined : Number(process.hrtime.bigint() - start);
  }
  // tg N: the prompt (depth, pp or one token) runs first; N more forward steps follow. The prompt's own step
  // is timed only for pp+tg. maxTokens N+1: the token the prompt's step samples costs no further step.
  const prompt = promptIds(Math.max(1, t.depth + t.nPrompt), vocab);
  // The context holds every test (ctx is sized for the longest), so only Ctrl-C ends a run early. No log-probabilities:
  // llama-bench samples nothing, and their normalizer is an exp per vocabulary entry per token (~2.5 % of a 2B token).
  const result = await model
    .generate(prompt, { temperature: 0, maxTokens: t.nGen + 1, ignoreEos: true, contextOverflow: "error", logprobs: false, signal })
    .complete();
  if (result.tokens.length !== t.nGen + 1) {
    return undefined;
  }
  const ms = t.nPrompt > 0 ? result.prefillMs + result.decodeMs : result.decodeMs;
  return Math.round(ms * 1e6);
}

const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const stddev = (xs: readonly number[]): number => {
  if (xs.length < 2) {
    return 0;
  }
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
};

function testName(t: BenchTest): string {
  const base = t.nGen === 0 ? `pp${t.nPrompt}` : t.nPrompt === 0 ? `tg${t.nGen}` : `pp${t.nPrompt}+tg${t.nGen}`;
  return t.depth > 0 ? `${base} @ d${t.depth}` : base;
}

function humanSize(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(2)} GiB` : `${(bytes / 2 ** 20).toFixed(2)} MiB`;
}

function humanParams(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)} B` : `${(n / 1e6).toFixed(2)} M`;
}

/** Renders rows as llama-bench does for each output format. */
export function formatBench(rows: readonly BenchRow[], output: BenchOutput): string {
  if (output === "json") {
    return `${JSON.stringify(rows, null, 2)}\n`;
  }
  if (output === "jsonl") {
    return rows.map((r) => `${JSON.stringify(r)}\n`).join("");
  }
  if (output === "csv") {
    const keys = Object.keys(rows[0] ?? {}) as (keyof BenchRow)[];
    const cell = (v: unknown): string => `"${(Array.isArray(v) ? v.join(" ") : String(v)).replaceAll('"', '""')}"`;
    return [keys.join(","), ...rows.map((r) => keys.map((k) => cell(r[k])).join(","))].join("\n") + "\n";
  }
  // As llama-bench: the KV types get columns only when they are not the default.
  const kv = rows.some((r) => r.type_k !== "f32" || r.type_v !== "f32");
  const header = ["model", "size", "params", "backend", "threads", ...(kv ? ["type_k", "type_v"] : []), "test", "t/s"];
  const right = [false, true, true, false, true, ...(kv ? [false, false] : []), true, true];
  const table = rows.map((r) => [
    r.model_type,
    humanSize(r.model_size),
    humanParams(r.model_n_params),
    r.backends,
    String(r.n_threads),
    ...(kv ? [r.type_k, r.type_v] : []),
    testName({ nPrompt: r.n_prompt, nGen: r.n_gen, depth: r.n_depth }),
    `${r.avg_ts.toFixed(2)} ± ${r.stddev_ts.toFixed(2)}`,
  ]);
  // Fixed widths as llama-bench's (wider for barbell's backend chains), so rows printed one by one line up.
  const widths = [30, 10, 10, 24, 7, ...(kv ? [6, 6] : []), 15, 20];
  const line = (cells: readonly string[]): string =>
    `| ${cells.map((c, i) => (right[i] === true ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0))).join(" | ")} |`;
  const rule = `|${widths.map((w, i) => (right[i] === true ? `${"-".repeat(w + 1)}:` : "-".repeat(w + 2))).join("|")}|`;
  return [line(header), rule, ...table.map(line)].join("\n") + "\n";
}

/** Runs every test on every model and thread count; rows are printed as each test ends (md, jsonl) or at the end. */
export async function runBench(flags: BenchFlags, io: CliIo): Promise<BenchRow[]> {
  const tests = benchTests(flags);
  if (tests.length === 0) {
    throw new CliError("bad-flag", "[bench] no test to run: every -p, -n and -pg value is 0");
  }
  if (tests.some((t) => t.depth > 0 && t.nGen === 0)) {
    throw new CliError("bad-flag", "[bench] -d > 0 times tg tests only (use -p 0 with -d, or -pg for a prompt and generation)");
  }
  const threads: (number | undefined)[] = flags.threads ?? [undefined];
  const runs = flags.model.length * threads.length * tests.length;
  if (runs > MAX_BENCH_RUNS) {
    throw new CliError("bad-flag", `[bench] ${runs} tests requested, at most ${MAX_BENCH_RUNS}`);
  }
  const rows: BenchRow[] = [];
  const emitted = { header: false };
  models: for (const file of flags.model) {
    const report = await inspectFile(file);
    const longest = Math.max(...tests.map((t) => Math.max(1, t.depth + t.nPrompt) + t.nGen + 1));
    const held = report.memory.contextLength;
    if (held !== null && longest > held) {
      throw new CliError("bad-flag", `[bench] the longest test needs ${longest} positions, the model's context is ${held}: lower -p, -n, -pg or -d`);
    }
    const projection = report.tensors.find((t) => /\.attn_q\.weight$/.test(t.name))?.type ?? "";
    const modelType = [report.architecture ?? "?", humanParams(report.parameterCount).replace(" ", ""), projection.toUpperCase()].filter((s) => s !== "").join(" ");
    for (const n of threads) {
      const model = await open(
        { model: file, ctx: longest, head: flags.head, autotune: flags.autotune, ...(flags.kvType === undefined ? {} : { kvType: flags.kvType }), ...(flags.backend === undefined ? {} : { backend: flags.backend }), ...(n === undefined ? {} : { threads: n }) },
        io,
      );
      try {
        for (const t of tests) {
          if (flags.warmup && (await runOnce(model, t, io.signal)) === undefined) {
            break models;
          }
          const samples: number[] = [];
          for (let r = 0; r < flags.repetitions; r++) {
            const ns = await runOnce(model, t, io.signal);
            if (ns === undefined) {
              break models; // Ctrl-C: the rows measured so far are printed
            }
            samples.push(ns);
          }
          const tokens = t.nPrompt + t.nGen;
          const ts = samples.map((ns) => (tokens * 1e9) / ns);
          const row: BenchRow = {
            model_filename: file,
            model_type: modelType,
            model_size: report.memory.weightBytes,
            model_n_params: report.parameterCount,
            backends: model.backend,
            n_threads: n ?? 0,
            n_prompt: t.nPrompt,
            n_gen: t.nGen,
            n_depth: t.depth,
            type_k: flags.kvType ?? "f32",
            type_v: flags.kvType ?? "f32",
            test_time: new Date().toISOString(),
            avg_ns: Math.round(mean(samples)),
            stddev_ns: Math.round(stddev(samples)),
            avg_ts: mean(ts),
            stddev_ts: stddev(ts),
            samples_ns: samples,
            samples_ts: ts,
          };
          rows.push(row);
          if (flags.output === "jsonl") {
            io.out(formatBench([row], "jsonl"));
          } else if (flags.output === "md") {
            const text = formatBench([row], "md").split("\n");
            io.out(`${(emitted.header ? text.slice(2) : text).join("\n")}`);
            emitted.header = true;
          }
        }
      } finally {
        model.dispose();
      }
    }
  }
  if (flags.output === "json" || flags.output === "csv") {
    io.out(formatBench(rows, flags.output));
  }
  return rows;
}

/** `barbell bench`. */
export function addBenchCommand(program: Command, io: CliIo): void {
  program
    .command("bench")
    .description("time prompt processing and generation as llama-bench does (same flags, same table)")
    .addOption(new Option("-m, --model <file>", "a BitNet .gguf file; repeatable or comma separated (required)").argParser((v, prev: string[] | undefined) => [...(prev ?? []), ...v.split(",").filter((s) => s !== "")]).makeOptionMandatory())
    .addOption(new Option("-p, --n-prompt <list>", "prompt tokens per pp test (list)").argParser(benchList(MAX_BENCH_TOKENS)).default([512], "512"))
    .addOption(new Option("-n, --n-gen <list>", "tokens to generate per tg test (list)").argParser(benchList(MAX_BENCH_TOKENS)).default([128], "128"))
    .addOption(new Option("--pg <p,n>", "a prompt of p tokens then n generated, timed together (repeatable; also -pg)").argParser(pgPair))
    .addOption(new Option("-d, --n-depth <list>", "tokens already in the context before a tg test, untimed (list)").argParser(benchList(MAX_BENCH_TOKENS)).default([0], "0"))
    .addOption(new Option("-t, --threads <list>", "kernel threads (list; default: one per physical core)").argParser(threadList))
    .addOption(new Option("-r, --repetitions <n>", `runs per test, 1..${MAX_BENCH_REPETITIONS}`).argParser((v) => benchList(MAX_BENCH_REPETITIONS, 1)(v)[0] ?? 1).default(5))
    .addOption(new Option("-o, --output <format>", "output format").choices(["md", "csv", "json", "jsonl"]).default("md"))
    .option("--no-warmup", "skip the untimed warm-up run of each test")
    .option("--backend <list>", "backends to use, preferred first (default: every one that works here)", backendList)
    .addOption(new Option("--head <type>", HEAD_HELP).choices(HEAD_POLICIES).default("auto"))
    .addOption(kvTypeFlag())
    .option("--no-autotune", "do not time kernel variants per shape")
    .action(async (flags: BenchFlags) => {
      const models: string[] = [];
      for (const m of flags.model) {
        models.push(m.startsWith(HF_PREFIX) ? await resolveHfOption(m, flags.pull === true, io) : m);
      }
      await runBench({ ...flags, model: models }, io);
    });
}
