/**
 * The WASM SIMD backend ("wasm-simd"): AssemblyScript kernels compiled to wasm32 + SIMD128
 * (native/wasm/assembly), running over a linear memory whose buffers are this backend's `BufferMemory`, so
 * weights live where the kernels read them. Runs in Node and in browsers.
 *
 * Threads: where the host can share a wasm memory between threads (SharedArrayBuffer; in browsers, a cross-
 * origin isolated page) the memory is shared, worker threads instantiate the same module on it, and the big
 * kernels (ternary/binary/dense matmuls, the integer head, attention) are split by output rows across the calling thread and
 * the workers (threads.ts). Each output element is computed by the same code whichever thread computes it,
 * so results do not depend on the thread count. Elsewhere the backend runs single-threaded and says why.
 *
 * Exactness: the integer kernels (ternary/binary × int8, XNOR-popcount, the integer Q8_0 / k-quant head
 * matmulQ8I8) and activation quantization are bit for bit those of the JS reference; so are rmsNorm, rope,
 * softmax, unary, binary, scale and embedding (float and Q8_0 / k-quant tables)
 * (same float64 or f32 operations in the same order, the host's Math functions). matmulF32 / matmulDense
 * and attention sum in f32 with 4-lane partial sums and match within ≈ 1e-5 relative to Σ|x·w|.
 */
import { UsageError } from "../../core/errors.js";
import type { BackendOptions, BackendProvider, PartialBackend } from "../backend.js";
import { CONTROL } from "./control.js";
import { createWasmKernels, MIN_PARALLEL_WORK, wasmCapabilities, type KernelThreading } from "./kernels.js";
import { compileKernels, EXPORT_NAMES, instantiateKernels, probeWasmSimd, type KernelExports } from "./loader.js";
import { WASM_PAGE_BYTES, WasmBufferMemory, WASM32_MAX_BYTES, type WasmMemoryOptions } from "./memory.js";
import {
  defaultThreadCount,
  defaultThreadHost,
  KernelThreads,
  MAX_THREADS,
  sharedMemoryUnavailable,
  type ThreadHost,
} from "./threads.js";
import { requireWasmApi, type WasmMemory } from "./wasm-api.js";

export { probeWasmSimd } from "./loader.js";
export { WasmBuffer, WasmBufferMemory, WASM32_MAX_BYTES, WASM_ALIGN, WASM_PAGE_BYTES } from "./memory.js";
export type { WasmMemoryOptions } from "./memory.js";
export { MIN_PARALLEL_WORK, wasmCapabilities } from "./kernels.js";
export { defaultThreadCount, nodeThreadHost, webThreadHost, MAX_THREADS } from "./threads.js";
export type { HostWorker, ThreadHost } from "./threads.js";

/** Options of {@link createWasmSimdBackend}: the backend options plus the memory limit and threading knobs. */
export interface WasmSimdOptions extends BackendOptions, WasmMemoryOptions {
  /** Where worker threads come from; default: worker_threads in Node, Web Workers in browsers. */
  readonly threadHost?: ThreadHost;
  /** Smallest call (multiply-adds) split across threads; default {@link MIN_PARALLEL_WORK}. */
  readonly minParallelWork?: number;
}

/** A wasm-simd backend: a partial backend whose memory is its wasm linear memory. */
export interface WasmSimdBackend extends PartialBackend {
  readonly memory: WasmBufferMemory;
  /** Why fewer threads than requested run (no shared memory, no workers, …); undefined when all do. */
  readonly threadNote?: string;
  /** Chunks of split kernel calls that worker threads have run so far (0 when single-threaded); diagnostics. */
  workerChunks(): number;
}

const DETAIL = "AssemblyScript 0.28 → wasm32 + SIMD128";

interface Setup {
  readonly linear: WasmMemory;
  readonly wasm: KernelExports;
  readonly memory: WasmBufferMemory;
}

async function setUp(maximum: number, shared: boolean): Promise<Setup> {
  const linear = new (requireWasmApi().Memory)({ initial: 1, maximum, ...(shared ? { shared: true } : {}) });
  const wasm = await instantiateKernels(linear, shared);
  const memory = new WasmBufferMemory(linear, Math.max(wasm.heapBase(), 64), { maxBytes: maximum * WASM_PAGE_BYTES });
  return { linear, wasm, memory };
}

/** A shared-memory setup with `threads − 1` workers started, or the reason there is none. */
async function setUpThreads(
  maximum: number,
  threads: number,
  options: WasmSimdOptions,
): Promise<{ setup: Setup; pool: KernelThreads; host: string } | string> {
  const unavailable = sharedMemoryUnavailable();
  if (unavailable !== undefined) {
    return unavailable;
  }
  const host = options.threadHost ?? (await defaultThreadHost());
  if (host === undefined) {
    return "this host has neither worker_threads nor Web Workers";
  }
  let setup: Setup;
  try {
    setup = await setUp(maximum, true);
  } catch (error) {
    return `no shared wasm memory (${error instanceof Error ? error.message : String(error)})`;
  }
  try {
    const control = setup.memory.reserveBlock(CONTROL.bytes);
    const fns = EXPORT_NAMES.map((name): ((...args: number[]) => void) => setup.wasm[name]);
    const module = await compileKernels(true);
    const pool = await KernelThreads.start(host, module, setup.linear, control, threads, EXPORT_NAMES, fns);
    return { setup, pool, host: host.name };
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

/**
 * Creates a backend instance with its own linear memory (grown on demand up to `maxBytes`, 4 GiB by
 * default). With `threads` > 1 (default: {@link defaultThreadCount}) and a host that can share memory
 * between threads, the memory is shared and `threads − 1` workers split the big kernels with the calling
 * thread; otherwise the backend runs single-threaded and `threadNote` says why.
 */
export async function createWasmSimdBackend(options: WasmSimdOptions = {}): Promise<WasmSimdBackend> {
  const probe = await probeWasmSimd();
  if (!probe.available) {
    throw new UsageError("unsupported", `[wasm-simd] unavailable: ${probe.reason}`);
  }
  const maxBytes = Math.min(options.maxBytes ?? WASM32_MAX_BYTES, WASM32_MAX_BYTES);
  const maximum = Math.max(1, Math.floor(maxBytes / WASM_PAGE_BYTES));
  const requested = Math.max(1, Math.min(MAX_THREADS, Math.floor(options.threads ?? (await defaultThreadCount()))));
  let threaded: { setup: Setup; pool: KernelThreads; host: string } | undefined;
  let threadNote: string | undefined;
  if (requested > 1) {
    const outcome = await setUpThreads(maximum, requested, options);
    if (typeof outcome === "string") {
      threadNote = `single-threaded: ${outcome}`;
    } else {
      threaded = outcome;
    }
  }
  const { wasm, memory } = threaded?.setup ?? (await setUp(maximum, false));
  const pool = threaded?.pool;
  const threading: KernelThreading | undefined =
    pool === undefined ? undefined : { threads: pool, minWork: options.minParallelWork ?? MIN_PARALLEL_WORK };
  const glue = createWasmKernels(wasm, memory, threading);
  const threads = pool?.threads ?? 1;
  const detail =
    pool === undefined
      ? `${DETAIL}, ${threadNote ?? "single-threaded"}`
      : `${DETAIL}, ${threads} threads (shared memory, ${threaded?.host ?? "workers"})`;
  return {
    name: "wasm-simd",
    kernels: glue.kernels,
    memory,
    capabilities: wasmCapabilities(wasm),
    info: { features: pool === undefined ? ["simd128"] : ["simd128", "threads"], threads, detail },
    ...(threadNote === undefined ? {} : { threadNote }),
    workerChunks: () => pool?.workerChunks ?? 0,
    dispose: () => {
      pool?.dispose();
      glue.dispose();
    },
  };
}
/** The wasm-simd provider: available where the host validates SIMD128 and the kernel module. */
export const wasmSimdProvider: BackendProvider = {
  name: "wasm-simd",
  basePriority: 20,
  probe: probeWasmSimd,
  create: (options) => createWasmSimdBackend(options),
};
