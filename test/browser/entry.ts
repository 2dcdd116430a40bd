/**
 * The page side of the wasm-simd browser test, bundled by esbuild for the browser (browser.ts): creates the
 * wasm-simd backend as a page would, runs conformance checks against the JS reference backend in the page,
 * and reports the results with what the backend says about its threads.
 *
 * The project compiles without the DOM lib, so browser globals are read through `globalThis`.
 */
import type { Backend, StorageDType, TensorRef } from "../../src/backends/backend.js";
import { createJsBackend } from "../../src/backends/js/index.js";
import { storageBytes } from "../../src/backends/storage.js";
import { createWasmSimdBackend, probeWasmSimd, type WasmSimdBackend } from "../../src/backends/wasm-simd/index.js";
import { packTernary } from "../../src/quant/layouts.js";

/** One check: its name, whether it passed, and what differed when it did not. */
export interface CheckResult {
  readonly name: string;
  readonly ok: boolean;
  readonly detail?: string;
}

/** What the page reports to the test. */
export interface BrowserReport {
  /** Whether the checks ran in a worker (no `document`) rather than on a page's thread. */
  readonly inWorker: boolean;
  readonly crossOriginIsolated: boolean | undefined;
  readonly hardwareConcurrency: number | undefined;
  readonly probe: { readonly available: boolean; readonly reason?: string };
  readonly threads: number;
  readonly features: readonly string[];
  readonly detail: string;
  readonly threadNote: string | undefined;
  readonly sharedMemory: boolean;
  /** `new Worker(…)` calls made while the backend was created. */
  readonly workersCreated: number;
  /** Chunks of split kernel calls that worker threads (not the page's thread) computed. */
  readonly workerChunks: number;
  readonly checks: readonly CheckResult[];
}

/** Options the test passes: the requested thread count (undefined: the backend's default). */
export interface PageOptions {
  readonly threads?: number;
}

/** Seeded PRNG (mulberry32), so a failing case reproduces. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const bytesOf = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const f32Of = (b: Uint8Array): Float32Array => new Float32Array(b.slice().buffer);

/** The first index at which two byte arrays differ, or −1. */
function firstDifference(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) {
    return Math.min(a.length, b.length);
  }
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) {
      return i;
    }
  }
  return -1;
}

interface Pair {
  readonly wasm: TensorRef;
  readonly js: TensorRef;
}

/** Counts `new Worker(…)` calls from here on (the default thread host spawns through the global). */
function countWorkers(): { count(): number; restore(): void } {
  const g = globalThis as { Worker?: new (...args: never[]) => object };
  const Original = g.Worker;
  let created = 0;
  if (Original === undefined) {
    return { count: () => 0, restore: () => undefined };
  }
  g.Worker = class extends Original {
    constructor(...args: never[]) {
      super(...args);
      created++;
    }
  };
  return {
    count: () => created,
    restore: () => {
      g.Worker = Original;
    },
  };
}

async function run(options: PageOptions): Promise<BrowserReport> {
  const g = globalThis as { crossOriginIsolated?: boolean; navigator?: { hardwareConcurrency?: number } };
  const probe = await probeWasmSimd();
  const base = {
    inWorker: typeof (globalThis as { document?: unknown }).document === "undefined",
    crossOriginIsolated: g.crossOriginIsolated,
    hardwareConcurrency: g.navigator?.hardwareConcurrency,
    probe: probe.available ? { available: true } : { available: false, reason: probe.reason },
  };
  const counter = countWorkers();
  let wb: WasmSimdBackend;
  try {
    // minParallelWork 0: every call the kernels can split is split, so small shapes exercise the threads too.
    wb = await createWasmSimdBackend({ minParallelWork: 0, ...(options.threads === undefined ? {} : { threads: options.threads }) });
  } finally {
    counter.restore();
  }
  const js: Backend = createJsBackend();
  const checks: CheckResult[] = [];
  const held: Pair[] = [];

  const pair = (dtype: StorageDType, shape: number[], data: Uint8Array, scale?: number): Pair => {
    const bytes = storageBytes(dtype, shape);
    const src = new Uint8Array(bytes);
    src.set(data.subarray(0, bytes));
    const extra = scale === undefined ? {} : { scale };
    const p = {
      wasm: { buffer: wb.memory.adopt(src), dtype, shape, ...extra },
      js: { buffer: js.adopt?.(src.slice()) ?? js.alloc(bytes), dtype, shape, ...extra },
    };
    held.push(p);
    return p;
  };
  const empty = (dtype: StorageDType, shape: number[]): Pair => pair(dtype, shape, new Uint8Array(0));
  const release = (): void => {
    for (const p of held.splice(0)) {
      wb.memory.free(p.wasm.buffer);
      js.free(p.js.buffer);
    }
  };
  const exact = (name: string, p: Pair): void => {
    const a = wb.memory.read(p.wasm.buffer);
    const b = js.read(p.js.buffer);
    const at = firstDifference(a, b);
    checks.push(at < 0 ? { name, ok: true } : { name, ok: false, detail: `byte ${at} of ${b.length} differs` });
  };
  const attempt = (name: string, body: () => void): void => {
    try {
      body();
    } catch (error) {
      checks.push({ name, ok: false, detail: `threw: ${error instanceof Error ? error.message : String(error)}` });
    } finally {
      release();
    }
  };
  const randomI8 = (rand: () => number, n: number): Int8Array => Int8Array.from({ length: n }, () => Math.floor(rand() * 256) - 128);
  const randomF32 = (rand: () => number, n: number, spread: number): Float32Array =>
    Float32Array.from({ length: n }, () => (rand() * 2 - 1) * spread);
  const kernels = wb.kernels;

  try {
    // Ternary × int8: odd K (not a multiple of 4, 64 or 128), K over one block, and one shape big enough
    // that every thread gets several chunks.
    const ternaryShapes: [number, number, number][] = [
      [1, 1, 1],
      [1, 3, 5],
      [1, 65, 3],
      [2, 130, 9],
      [5, 333, 17],
      [3, 64 * 40 + 7, 4],
      [1, 2560, 48],
      [8, 1027, 100],
    ];
    for (const [m, k, n] of ternaryShapes) {
      attempt(`matmulTernaryI8 ${m}×${k}·${n}`, () => {
        const rand = rng(m * 7919 + k * 31 + n);
        const x = pair("i8", [m, k], bytesOf(randomI8(rand, m * k)));
        const s = pair("f32", [m], bytesOf(Float32Array.from({ length: m }, () => 1 + rand() * 100)));
        const trits = Int8Array.from({ length: n * k }, () => Math.floor(rand() * 3) - 1);
        const w = pair("ternary", [n, k], packTernary(trits, n, k), 0.37 + rand());
        const out = empty("f32", [m, n]);
        if (kernels.matmulTernaryI8 === undefined) {
          throw new Error("wasm-simd has no matmulTernaryI8");
        }
        kernels.matmulTernaryI8(x.wasm, s.wasm, w.wasm, out.wasm);
        js.kernels.matmulTernaryI8(x.js, s.js, w.js, out.js);
        exact(`matmulTernaryI8 ${m}×${k}·${n}`, out);
      });
    }

    // Activation quantization, with values that land on exact halves (ties to even).
    for (const [m, k] of [
      [1, 1],
      [1, 17],
      [3, 64],
      [2, 2560],
      [5, 333],
    ] as const) {
      attempt(`quantizeActivations ${m}×${k}`, () => {
        const xs = randomF32(rng(m * 100 + k), m * k, 10);
        if (k >= 8) {
          xs[0] = 10;
          for (let j = 1; j < 8; j++) {
            xs[j] = (10 * (j * 16 + 0.5)) / 127;
          }
        }
        const x = pair("f32", [m, k], bytesOf(xs));
        const q = empty("i8", [m, k]);
        const s = empty("f32", [m]);
        if (kernels.quantizeActivations === undefined) {
          throw new Error("wasm-simd has no quantizeActivations");
        }
        kernels.quantizeActivations(x.wasm, q.wasm, s.wasm);
        js.kernels.quantizeActivations(x.js, q.js, s.js);
        exact(`quantizeActivations ${m}×${k} (codes)`, q);
        exact(`quantizeActivations ${m}×${k} (scales)`, s);
      });
    }

    // Dense f32 matmul sums in f32 lanes: within 1e-5 · Σ|x·w| of the reference's float64 sums.
    for (const [m, k, n] of [
      [1, 7, 3],
      [2, 130, 9],
      [4, 1001, 40],
    ] as const) {
      const name = `matmulDense f32 ${m}×${k}·${n}`;
      attempt(name, () => {
        const rand = rng(m + k * 3 + n * 5);
        const xs = randomF32(rand, m * k, 4);
        const ws = randomF32(rand, n * k, 4);
        const x = pair("f32", [m, k], bytesOf(xs));
        const w = pair("f32", [n, k], bytesOf(ws));
        const out = empty("f32", [m, n]);
        if (kernels.matmulDense === undefined) {
          throw new Error("wasm-simd has no matmulDense");
        }
        kernels.matmulDense(x.wasm, w.wasm, out.wasm);
        js.kernels.matmulDense(x.js, w.js, out.js);
        const ax = pair("f32", [m, k], bytesOf(xs.map(Math.abs)));
        const aw = pair("f32", [n, k], bytesOf(ws.map(Math.abs)));
        const mag = empty("f32", [m, n]);
        js.kernels.matmulDense(ax.js, aw.js, mag.js);
        const actual = f32Of(wb.memory.read(out.wasm.buffer));
        const expected = f32Of(js.read(out.js.buffer));
        const magnitude = f32Of(js.read(mag.js.buffer));
        let worst = "";
        for (let i = 0; i < expected.length && worst === ""; i++) {
          const bound = 1e-5 * (magnitude[i] ?? 0) + 1e-30;
          const a = actual[i] ?? Number.NaN;
          const e = expected[i] ?? Number.NaN;
          if (!(Math.abs(a - e) <= bound)) {
            worst = `index ${i}: ${a} vs ${e} (bound ${bound})`;
          }
        }
        checks.push(worst === "" ? { name, ok: true } : { name, ok: false, detail: worst });
      });
    }
    // Worker participation: the page's thread claims chunks too, and on a busy machine it may take every
    // chunk of a small call before a worker wakes. A larger call, repeated until a worker has run a chunk
    // (bounded), shows the workers compute; every repetition must still equal the reference.
    for (let round = 0; round < 20 && wb.info.threads > 1 && wb.workerChunks() === 0; round++) {
      const [m, k, n] = [16, 4096, 256];
      attempt(`matmulTernaryI8 ${m}×${k}·${n} (round ${round})`, () => {
        const rand = rng(round + 1);
        const x = pair("i8", [m, k], bytesOf(randomI8(rand, m * k)));
        const s = pair("f32", [m], bytesOf(Float32Array.from({ length: m }, () => 1 + rand() * 100)));
        const trits = Int8Array.from({ length: n * k }, () => Math.floor(rand() * 3) - 1);
        const w = pair("ternary", [n, k], packTernary(trits, n, k), 0.5);
        const out = empty("f32", [m, n]);
        kernels.matmulTernaryI8?.(x.wasm, s.wasm, w.wasm, out.wasm);
        js.kernels.matmulTernaryI8(x.js, s.js, w.js, out.js);
        exact(`matmulTernaryI8 ${m}×${k}·${n} (round ${round})`, out);
      });
    }
    return {
      ...base,
      threads: wb.info.threads,
      features: wb.info.features,
      detail: wb.info.detail ?? "",
      threadNote: wb.threadNote,
      sharedMemory: Object.prototype.toString.call(wb.memory.memory.buffer) === "[object SharedArrayBuffer]",
      workersCreated: counter.count(),
      workerChunks: wb.workerChunks(),
      checks,
    };
  } finally {
    release();
    wb.dispose();
  }
}

/** The page's entry point, called by the test through `page.evaluate`. */
async function runWasmSimdChecks(options: PageOptions): Promise<BrowserReport> {
  return run(options);
}

(globalThis as { runWasmSimdChecks?: typeof runWasmSimdChecks }).runWasmSimdChecks = runWasmSimdChecks;
