/**
 * Threads for the wasm-simd kernels: worker threads that instantiate the same compiled module on the same
 * shared linear memory, and a pool that cuts one kernel call into chunks of output rows which the main
 * thread and the workers claim, synchronized by Atomics on a control block in that memory (control.ts).
 *
 * Hosts: spawning workers is behind {@link ThreadHost}; Node's `worker_threads` and browsers' Web Workers are
 * built in. Browsers only allow shared memory on cross-origin isolated pages (COOP + COEP headers); elsewhere
 * the backend runs single-threaded and says why.
 *
 * Waiting: workers spin briefly, then block in `Atomics.wait`. The main thread runs its own part first, then
 * waits for the rest: where it may block (Node's main thread, any worker) it spins briefly and then blocks in
 * `Atomics.wait`; on a browser's main thread, where `Atomics.wait` throws, it spins on `Atomics.load` (it
 * only waits for chunks other threads already hold, each a fraction of one kernel call).
 */
import type * as NodeFs from "node:fs/promises";
import type * as NodeOs from "node:os";
import type * as NodeWorkers from "node:worker_threads";
import { UsageError } from "../../core/errors.js";
import { CONTROL, partRange } from "./control.js";
import type { WasmMemory, WasmModule } from "./wasm-api.js";
import { WORKER_SOURCE } from "./worker-source.js";

/** A worker thread as a {@link ThreadHost} starts it. */
export interface HostWorker {
  postMessage(message: unknown): void;
  /** Calls `listener` with the data of every message the worker posts. */
  onMessage(listener: (data: unknown) => void): void;
  /** Calls `listener` when the worker fails to start or throws outside its job loop. */
  onError(listener: (error: Error) => void): void;
  /** Calls `listener` once the worker has exited, where the host can tell. */
  onExit?(listener: () => void): void;
  /** Stops the worker from keeping the host alive (Node's `unref`); a no-op where that cannot happen. */
  unref(): void;
  terminate(): void;
}

/** Where kernel workers come from: Node's `worker_threads`, browsers' Web Workers, or a custom factory. */
export interface ThreadHost {
  /** For diagnostics ("worker_threads", "Web Workers"). */
  readonly name: string;
  /** Starts a worker running `source`, a classic (non-module) script. */
  spawn(source: string): HostWorker;
}

/** Largest thread count the backend accepts. */
export const MAX_THREADS = 64;

/** Spin iterations (Atomics.load polls) before a thread blocks in Atomics.wait. */
const WORKER_SPIN = 1 << 15;
const MAIN_SPIN = 1 << 12;

/** How long workers may take to start before the backend gives up on threads. */
const START_TIMEOUT_MS = 30_000;

const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/**
 * Imports a Node built-in, only ever called after checking that the host is Node. The specifier is a
 * variable so that browser bundlers (esbuild, webpack, Vite) leave the import alone instead of failing to
 * resolve `node:*` for a browser build; the comments silence webpack's and Vite's notes about it.
 */
function importNodeBuiltin<T>(specifier: `node:${string}`): Promise<T> {
  return import(/* webpackIgnore: true */ /* @vite-ignore */ specifier) as Promise<T>;
}

interface NodeWorkerLike {
  postMessage(message: unknown): void;
  on(event: "message", listener: (data: unknown) => void): void;
  on(event: "error", listener: (error: Error) => void): void;
  on(event: "exit", listener: () => void): void;
  unref(): void;
  terminate(): Promise<number>;
}

/** Node's worker_threads as a thread host; undefined outside Node. */
export async function nodeThreadHost(): Promise<ThreadHost | undefined> {
  const versions = (globalThis as { process?: { versions?: { node?: string } } }).process?.versions;
  if (versions?.node === undefined) {
    return undefined;
  }
  const { Worker } = await importNodeBuiltin<typeof NodeWorkers>("node:worker_threads");
  return {
    name: "worker_threads",
    spawn: (source) => {
      const worker: NodeWorkerLike = new Worker(source, { eval: true });
      return {
        postMessage: (message) => worker.postMessage(message),
        onMessage: (listener) => worker.on("message", listener),
        onError: (listener) => worker.on("error", listener),
        onExit: (listener) => worker.on("exit", listener),
        unref: () => worker.unref(),
        terminate: () => {
          void worker.terminate();
        },
      };
    },
  };
}

interface WebWorkerLike {
  postMessage(message: unknown): void;
  onmessage: ((event: { data: unknown }) => void) | null;
  onerror: ((event: { message?: string }) => void) | null;
  terminate(): void;
}

interface BrowserGlobals {
  Worker?: new (url: string) => WebWorkerLike;
  Blob?: new (parts: string[], options: { type: string }) => object;
  URL?: { createObjectURL?(blob: object): string; revokeObjectURL?(url: string): void };
}

/** Web Workers (from a Blob URL) as a thread host; undefined where the global `Worker` is missing. */
export function webThreadHost(): ThreadHost | undefined {
  const g = globalThis as BrowserGlobals;
  const WorkerCtor = g.Worker;
  const BlobCtor = g.Blob;
  const createUrl = g.URL?.createObjectURL;
  if (WorkerCtor === undefined || BlobCtor === undefined || createUrl === undefined) {
    return undefined;
  }
  return {
    name: "Web Workers",
    spawn: (source) => {
      const url = createUrl(new BlobCtor([source], { type: "text/javascript" }));
      const worker = new WorkerCtor(url);
      g.URL?.revokeObjectURL?.(url);
      const messages: ((data: unknown) => void)[] = [];
      const errors: ((error: Error) => void)[] = [];
      worker.onmessage = (event) => messages.forEach((l) => l(event.data));
      // A worker that throws gets an ErrorEvent with a message; one that cannot load at all (e.g. a
      // Content-Security-Policy without `worker-src blob:`) gets a bare error event.
      worker.onerror = (event) => {
        const text =
          typeof event.message === "string" && event.message !== ""
            ? event.message
            : "a Web Worker from a blob: URL failed to load (a Content-Security-Policy must allow worker-src blob:)";
        errors.forEach((l) => l(new Error(text)));
      };
      return {
        postMessage: (message) => worker.postMessage(message),
        onMessage: (listener) => messages.push(listener),
        onError: (listener) => errors.push(listener),
        unref: () => undefined,
        terminate: () => worker.terminate(),
      };
    },
  };
}

/** The host's own thread host: worker_threads in Node, Web Workers in browsers; undefined if neither. */
export async function defaultThreadHost(): Promise<ThreadHost | undefined> {
  return (await nodeThreadHost()) ?? webThreadHost();
}

/** Physical cores from Linux's /proc/cpuinfo (distinct physical id / core id pairs); undefined elsewhere. */
async function linuxPhysicalCores(): Promise<number | undefined> {
  try {
    const { readFile } = await importNodeBuiltin<typeof NodeFs>("node:fs/promises");
    const text = await readFile("/proc/cpuinfo", "utf8");
    const cores = new Set<string>();
    let physical = "0";
    for (const line of text.split("\n")) {
      const [key, value] = line.split(":").map((s) => s.trim());
      if (key === "physical id") {
        physical = value ?? "0";
      } else if (key === "core id") {
        cores.add(`${physical}:${value ?? ""}`);
      }
    }
    return cores.size > 0 ? cores.size : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The default thread count: in Node, `os.availableParallelism()` capped at the physical cores where Linux
 * tells them; in browsers, `navigator.hardwareConcurrency`; otherwise 1. At most {@link MAX_THREADS}.
 */
export async function defaultThreadCount(): Promise<number> {
  const versions = (globalThis as { process?: { versions?: { node?: string } } }).process?.versions;
  let count = 1;
  if (versions?.node !== undefined) {
    const os = await importNodeBuiltin<typeof NodeOs>("node:os");
    count = os.availableParallelism();
    const physical = os.platform() === "linux" ? await linuxPhysicalCores() : undefined;
    if (physical !== undefined) {
      count = Math.min(count, physical);
    }
  } else {
    const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
    count = nav?.hardwareConcurrency ?? 1;
  }
  return Math.max(1, Math.min(MAX_THREADS, Math.floor(count)));
}

/**
 * Why this host cannot share a wasm memory between threads, or undefined where it can: no
 * SharedArrayBuffer / Atomics, or a browser page that is not cross-origin isolated.
 */
export function sharedMemoryUnavailable(): string | undefined {
  const g = globalThis as { SharedArrayBuffer?: unknown; Atomics?: unknown; crossOriginIsolated?: unknown };
  if (g.crossOriginIsolated === false) {
    return "the page is not cross-origin isolated (serve it with COOP: same-origin and COEP: require-corp)";
  }
  if (typeof g.SharedArrayBuffer !== "function") {
    return "this host has no SharedArrayBuffer";
  }
  if (typeof g.Atomics !== "object") {
    return "this host has no Atomics";
  }
  return undefined;
}

/** Whether this thread may block in Atomics.wait (false on a browser's main thread). */
function mayBlock(ints: Int32Array): boolean {
  try {
    Atomics.wait(ints, CONTROL.error, Atomics.load(ints, CONTROL.error) + 1, 0);
    return true;
  } catch {
    return false;
  }
}

/** One job: an export called once per chunk with its arguments and that chunk's range pair appended. */
export interface ThreadJob {
  /** Index of the export in the worker's name list. */
  readonly op: number;
  /** Arguments before the range pair (numbers; they travel as float64). */
  readonly args: readonly number[];
  /** Pieces the range is cut into, 2..{@link MAX_CHUNKS}; threads claim them one at a time. */
  readonly chunks: number;
  /** SPLIT_CONTIGUOUS or SPLIT_STRIDED. */
  readonly mode: number;
  /** Contiguous mode: the range 0..total, split in whole `align` units. */
  readonly total: number;
  readonly align: number;
  /** Index of the argument pointing at per-thread scratch (thread t gets it + t · scratchStride), or −1. */
  readonly scratchArg: number;
  readonly scratchStride: number;
}

/** Most chunks one job may have. */
export const MAX_CHUNKS = 1 << 20;

/** Worker threads bound to one shared memory and control block. */
export class KernelThreads {
  readonly #ints: Int32Array;
  readonly #args: Float64Array;
  readonly #workers: readonly HostWorker[];
  readonly #fns: readonly ((...args: number[]) => void)[];
  readonly #canBlock: boolean;
  #live = true;

  private constructor(
    memory: WasmMemory,
    control: number,
    workers: readonly HostWorker[],
    fns: readonly ((...args: number[]) => void)[],
  ) {
    this.#ints = new Int32Array(memory.buffer, control, CONTROL.ints);
    this.#args = new Float64Array(memory.buffer, control + CONTROL.argsOffset, CONTROL.maxArgs);
    this.#workers = workers;
    this.#fns = fns;
    this.#canBlock = mayBlock(this.#ints);
  }

  /** Threads in all, the main thread included. */
  get threads(): number {
    return this.#workers.length + 1;
  }

  /**
   * Starts `threads − 1` workers on `memory` (shared) running `module`, with the control block at byte
   * `control` (CONTROL.bytes long, zeroed). `names` are the exports jobs may call, `fns` the main thread's
   * own functions for them. Rejects (after terminating any started worker) if a worker fails to start.
   */
  static async start(
    host: ThreadHost,
    module: WasmModule,
    memory: WasmMemory,
    control: number,
    threads: number,
    names: readonly string[],
    fns: readonly ((...args: number[]) => void)[],
  ): Promise<KernelThreads> {
    const workers: HostWorker[] = [];
    try {
      const ready: Promise<void>[] = [];
      for (let index = 1; index < threads; index++) {
        const worker = host.spawn(WORKER_SOURCE);
        workers.push(worker);
        ready.push(
          new Promise<void>((resolve, reject) => {
            worker.onMessage((data) => {
              const message = data as { ready?: boolean; error?: string };
              if (message.ready === true) {
                resolve();
              } else {
                reject(new Error(message.error ?? "unexpected message"));
              }
            });
            worker.onError(reject);
          }),
        );
        worker.postMessage({ module, memory, control, index, names: [...names], spin: WORKER_SPIN });
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`workers did not start within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
      });
      try {
        await Promise.race([Promise.all(ready), timeout]);
      } finally {
        clearTimeout(timer);
      }
    } catch (error) {
      for (const worker of workers) {
        worker.terminate();
      }
      throw new UsageError("unsupported", `[wasm-simd] kernel workers failed to start: ${errorText(error)}`);
    }
    // Only now: a referenced worker keeps Node alive until its ready message has arrived.
    for (const worker of workers) {
      worker.unref();
    }
    return new KernelThreads(memory, control, workers, fns);
  }

  /** Chunks of jobs that the workers (not the calling thread) have run since they started. */
  get workerChunks(): number {
    return Atomics.load(this.#ints, CONTROL.workerChunks);
  }

  /** Runs one job on this thread and the workers; returns when every chunk is done. */
  run(job: ThreadJob): void {
    if (!this.#live) {
      throw new UsageError("disposed", "[wasm-simd] the kernel threads were disposed");
    }
    const ints = this.#ints;
    const argc = job.args.length;
    const fn = this.#fns[job.op];
    if (argc > CONTROL.maxArgs || fn === undefined || job.chunks < 1 || job.chunks > MAX_CHUNKS) {
      throw new UsageError("unsupported", `[wasm-simd] malformed threaded job (op ${job.op}, ${argc} args, ${job.chunks} chunks)`);
    }
    this.#args.set(job.args);
    ints[CONTROL.op] = job.op;
    ints[CONTROL.argc] = argc;
    ints[CONTROL.chunks] = job.chunks;
    ints[CONTROL.total] = job.total;
    ints[CONTROL.align] = job.align;
    ints[CONTROL.mode] = job.mode;
    ints[CONTROL.scratchArg] = job.scratchArg;
    ints[CONTROL.scratchStride] = job.scratchStride;
    ints[CONTROL.error] = 0;
    Atomics.store(ints, CONTROL.done, 0);
    Atomics.store(ints, CONTROL.claim, job.chunks);
    Atomics.add(ints, CONTROL.gen, 1);
    Atomics.notify(ints, CONTROL.gen, Math.min(this.#workers.length, job.chunks - 1));

    let failure: unknown;
    for (;;) {
      const left = Atomics.load(ints, CONTROL.claim);
      if (left <= 0) {
        break;
      }
      if (Atomics.compareExchange(ints, CONTROL.claim, left, left - 1) !== left) {
        continue;
      }
      const [a, b] = partRange(job.mode, job.total, job.align, left - 1, job.chunks);
      try {
        fn(...job.args, a, b);
      } catch (error) {
        failure ??= error;
      }
      Atomics.add(ints, CONTROL.done, 1);
    }
    this.#join(job.chunks);
    if (failure !== undefined) {
      throw failure;
    }
    const failed = Atomics.load(ints, CONTROL.error);
    if (failed !== 0) {
      throw new UsageError("unsupported", `[wasm-simd] kernel worker ${failed - 1} failed its part of a job`);
    }
  }

  /** Waits until all `chunks` chunks are done. */
  #join(chunks: number): void {
    const ints = this.#ints;
    for (let s = MAIN_SPIN; s > 0; s--) {
      if (Atomics.load(ints, CONTROL.done) === chunks) {
        return;
      }
    }
    for (;;) {
      const done = Atomics.load(ints, CONTROL.done);
      if (done === chunks) {
        return;
      }
      if (this.#canBlock) {
        Atomics.wait(ints, CONTROL.done, done);
      }
    }
  }

  /** Stops the workers (they leave their loop) and terminates them. Idempotent. */
  dispose(): void {
    if (!this.#live) {
      return;
    }
    this.#live = false;
    const ints = this.#ints;
    Atomics.store(ints, CONTROL.stop, 1);
    Atomics.add(ints, CONTROL.gen, 1);
    Atomics.notify(ints, CONTROL.gen);
    for (const worker of this.#workers) {
      worker.terminate();
    }
  }
}
