/**
 * Model load time and memory (issue 15 point 5), a section of `npm run bench` (or `tsx bench/load.ts`
 * alone): for generated 700M and 2B-shape files in I2_S and TQ2_0, each load is a fresh plain-Node process
 * on the built library (bench/load-child.mjs) with the file in the page cache. It reports the load (wall and
 * CPU seconds, s/GB of file), the first token after it, the whole process, and the peak RSS after load, after
 * the first token, after a 512-token prefill and after 128 decoded tokens, against the budget 1.1 × file + KV cache + the runtime's
 * fixed baseline (a process that imports the library and starts the backend, loading nothing of a model).
 * Wall times on a shared machine wait for CPUs; the CPU seconds are the load's own work.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { makeBitnetFixture } from "../src/model/bitnet/fixture.js";
import { SHAPES } from "../scripts/shapes.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const PREFILL = 512;
/** Tokens decoded after the prefill. */
const DECODE = 128;
/** KV positions the child's context holds (load-child.mjs: prompt + decode + 1). */
const POSITIONS = PREFILL + DECODE + 1;

/** What bench/load-child.mjs prints. */
interface ChildRun {
  importMs: number;
  importRss: number;
  baselineRss?: number;
  backendMs?: number;
  loadMs?: number;
  loadCpuMs?: number;
  loadRss?: number;
  firstTokenMs?: number;
  firstTokenRss?: number;
  prefillMs?: number;
  prefillRss?: number;
  decodeMs?: number;
  decodeRss?: number;
  firstEncodeMs?: number;
  firstEncodeCpuMs?: number;
  totalCpuMs: number;
  totalMs: number;
}

type Shape = "700m" | "2b";
type Weights = "i2_s" | "tq2_0";

/**
 * The bench model of a shape and weight type in bench/.models, generated once: I2_S as bench/run.ts writes it
 * (the real-tokenizer variant bench/grammar-decode.ts writes when present: a real file's header), TQ2_0 as
 * bench/peers.ts writes it (arch `bitnet`, which llama.cpp also reads).
 */
export function benchModel(shape: Shape, weights: Weights): string {
  const dir = path.join(here, ".models");
  fs.mkdirSync(dir, { recursive: true });
  if (weights === "i2_s") {
    const realtok = path.join(dir, `bitnet-${shape}-i2s-realtok.gguf`);
    if (fs.existsSync(realtok)) {
      return realtok;
    }
  }
  const file = path.join(dir, `bitnet-${shape}-${weights === "i2_s" ? "i2s" : "tq2_0"}.gguf`);
  if (!fs.existsSync(file)) {
    process.stderr.write(`bench: generating the ${shape} ${weights} model (once; cached in bench/.models)…\n`);
    const opts = weights === "i2_s" ? { ...SHAPES[shape], seed: 1 } : { ...SHAPES[shape], arch: "bitnet" as const, weightType: "tq2_0" as const, seed: 1 };
    fs.writeFileSync(`${file}.tmp`, makeBitnetFixture(opts));
    fs.renameSync(`${file}.tmp`, file);
  }
  return file;
}

/** Reads the file once so the measured loads find it in the page cache. */
function warm(file: string): void {
  const fd = fs.openSync(file, "r");
  try {
    const buf = Buffer.allocUnsafe(1 << 24);
    let pos = 0;
    for (let n = 1; n > 0; pos += n) {
      n = fs.readSync(fd, buf, 0, buf.length, pos);
    }
  } finally {
    fs.closeSync(fd);
  }
}

function child(args: string[]): ChildRun & { processMs: number } {
  const t0 = performance.now();
  const out = execFileSync(process.execPath, [path.join(here, "load-child.mjs"), ...args], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    maxBuffer: 1 << 20,
  });
  const run = JSON.parse(out.trim().split("\n").pop() ?? "{}") as ChildRun;
  return { ...run, processMs: performance.now() - t0 };
}

/** f32 KV-cache bytes of `positions` positions of a shape. */
function kvBytes(shape: Shape, positions: number): number {
  const s = SHAPES[shape];
  const headDim = (s.hidden ?? 0) / (s.heads ?? 1);
  return (s.layers ?? 0) * 2 * positions * (s.kvHeads ?? s.heads ?? 1) * headDim * 4;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : ((s[(s.length - 1) >> 1] ?? 0) + (s[s.length >> 1] ?? 0)) / 2;
};
const mib = (b: number): string => (b / 2 ** 20).toFixed(0);

export interface LoadBenchOptions {
  readonly quick: boolean;
  /** Runs per file (medians reported). */
  readonly reps?: number;
  /** The backend chain; default native-cpu then js. */
  readonly backends?: string;
  /** Extra rows with `--head q8_0` (the F16 head requantized at load). */
  readonly head?: boolean;
}

/** The section's Markdown lines. Builds nothing: bench/run.ts builds dist/ first (or run `npx tsc -p tsconfig.build.json`). */
export function loadBench(options: LoadBenchOptions): string[] {
  const reps = options.reps ?? (options.quick ? 1 : 3);
  const backends = options.backends ?? "native-cpu,js";
  const shapes: Shape[] = options.quick ? ["700m"] : ["700m", "2b"];
  const cases: { shape: Shape; weights: Weights; head: "keep" | "q8_0" }[] = [];
  for (const shape of shapes) {
    for (const weights of ["i2_s", "tq2_0"] as const) {
      cases.push({ shape, weights, head: "keep" });
    }
    if (options.head !== false) {
      cases.push({ shape, weights: "i2_s", head: "q8_0" });
    }
  }
  const files = cases.map((c) => benchModel(c.shape, c.weights));
  const baselines: number[] = [];
  const runs: (ChildRun & { processMs: number })[][] = cases.map(() => []);
  // Interleaved: one run of each case per round, so load on a shared machine spreads over all of them.
  for (let r = 0; r < reps; r++) {
    baselines.push(child(["baseline", "", backends, "0", "0"]).baselineRss ?? Number.NaN);
    for (const [i, c] of cases.entries()) {
      const file = files[i] ?? "";
      warm(file);
      process.stderr.write(`bench: load ${path.basename(file)} head ${c.head} (${r + 1}/${reps})\n`);
      runs[i]?.push(child(["load", file, backends, "0", String(PREFILL), c.head, String(DECODE)]));
    }
  }
  const baseline = median(baselines);
  const lines = [
    "## Model load and memory",
    "",
    `Each load is a fresh \`node\` process on dist/ with the file in the page cache, backends ${backends}. Backend = starting it`,
    "(the addon's probe child included; the fixed baseline); load = `loadModel` on it (header, tokenizer, weights); first token = one decoded token after a one-token prompt; process =",
    `spawn to exit, with a ${PREFILL}-token prefill and ${DECODE} decoded tokens. Peak RSS (VmHWM) after load, the first token,`,
    `the prefill and the decode; budget = 1.1 × file + KV cache (${POSITIONS} positions, f32) + the fixed baseline: ${mib(baseline)} MiB (a process that`,
    "imports the library and starts the backend, loading no model). CPU s: the load's own work (wall waits for CPUs on a shared machine).",
    "",
    "First encode = the first `tokenizer.encode` of a short text, after the decode (what a GGUF tokenizer makes on first use, not at load).",
    "",
    "| file | head | MiB | backend s | load s | load CPU s | s/GB (wall) | s/GB (CPU) | first token s | first encode s | process s | RSS load | RSS 1st token | RSS prefill | RSS decode | budget MiB |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const [i, c] of cases.entries()) {
    const file = files[i] ?? "";
    const size = fs.statSync(file).size;
    const rs = runs[i] ?? [];
    const pick = (f: (r: ChildRun & { processMs: number }) => number | undefined): number => median(rs.map((r) => f(r) ?? Number.NaN));
    const load = pick((r) => r.loadMs) / 1000;
    const budget = 1.1 * size + kvBytes(c.shape, POSITIONS) + baseline;
    const cpu = pick((r) => r.loadCpuMs) / 1000;
    lines.push(
      `| ${path.basename(file)} | ${c.head} | ${mib(size)} | ${(pick((r) => r.backendMs) / 1000).toFixed(2)} | ${load.toFixed(2)} | ${cpu.toFixed(2)} | ` +
        `${(load / (size / 1e9)).toFixed(2)} | ${(cpu / (size / 1e9)).toFixed(2)} | ${(pick((r) => r.firstTokenMs) / 1000).toFixed(2)} | ${(pick((r) => r.firstEncodeMs) / 1000).toFixed(2)} | ${(pick((r) => r.processMs) / 1000).toFixed(2)} | ` +
        `${mib(pick((r) => r.loadRss))} | ${mib(pick((r) => r.firstTokenRss))} | ${mib(pick((r) => r.prefillRss))} | ${mib(pick((r) => r.decodeRss))} | ${mib(budget)} |`,
    );
  }
  lines.push("", `Medians of ${reps} run(s).`);
  return lines;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const args = process.argv.slice(2);
  const i = args.indexOf("--reps");
  const lines = loadBench({ quick: args.includes("--quick"), ...(i >= 0 ? { reps: Number(args[i + 1]) } : {}) });
  process.stdout.write(`${lines.join("\n")}\n`);
}
