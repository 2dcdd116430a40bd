/**
 * The fast training runtime (issue 8, point 3; docs/training.md "Speed"): the forward of a training
 * step on the native-cpu backend (multithreaded int8×ternary projections, f32 head, native norms,
 * RoPE and attention, with the JS backend as the chain's fallback) and the backward on the addon's
 * training kernels (native/cpu/train_kernels.cc, its own thread pool): the products of every projection,
 * of the head and of attention as f32 gemm with the operands as stored, RMSNorm's backward, the
 * cross-entropy and AdamW. Where the addon predates TrainContext, the products run through its x·wᵀ
 * matmul (transposes made on the host) and the other rules in JS.
 *
 *   using rt = createNativeTrainRuntime();            // throws where the addon cannot load
 *   train(state, tokens, options, onStep, undefined, rt);
 *
 * Determinism: the native f32 matmul splits output columns over a fixed number of threads and each dot
 * product is summed by one thread in a fixed order, so results do not depend on thread timing; a run
 * resumes bit for bit with the same thread count and ISA path (keep `threads` fixed across resumes).
 */
import type { Backend } from "../backends/backend.js";
import { createDispatcher } from "../backends/dispatch.js";
import { createJsBackend } from "../backends/js/index.js";
import { nativeAddon, probeNativeCpu, requestedIsa, type NativeContext } from "../backends/native-cpu/addon.js";
import { createNativeCpuBackend } from "../backends/native-cpu/index.js";
import { UsageError } from "../core/errors.js";
import { ACCUMULATE, TRANS_A, TRANS_B, type HostMatmul, type TrainKernels } from "./kernels.js";

/** Where a training step runs: the forward's backend and the backward's matmul kernel. */
export interface TrainRuntime {
  /** Backend of the forward's tensors; absent: the default backend. */
  readonly backend?: Backend;
  /** The backward's f32 products (createTape({ matmul })); absent: float64 host loops (the reference). */
  readonly matmul?: HostMatmul;
  /** The backward's kernels (createTape({ kernels })) and AdamW's; absent: `matmul` alone, or the reference. */
  readonly kernels?: TrainKernels;
  /** Shown in reports and benches, e.g. "native-cpu (avx512vnni, 2 threads)". */
  readonly name: string;
}

/** A runtime that owns native resources (thread pools): dispose it when training is done. */
export interface NativeTrainRuntime extends TrainRuntime, Disposable {
  readonly backend: Backend;
  readonly matmul: HostMatmul;
  dispose(): void;
}

/** Options of {@link createNativeTrainRuntime}. */
export interface NativeTrainRuntimeOptions {
  /** Worker threads (0: one per physical core, the addon's default). Keep it fixed across resumes. */
  readonly threads?: number;
  /** ISA path override (as BARBELL_NATIVE_ISA). */
  readonly isa?: string;
}

/** Why the native runtime cannot run here, or undefined when it can. */
export function nativeTrainUnavailable(): string | undefined {
  const probe = probeNativeCpu();
  return probe.available ? (nativeAddon() === undefined ? "addon not loaded" : undefined) : probe.reason;
}

/** f32 out[m, n] = x[m, k] · w[n, k]ᵀ on a native context's pool (its `dense` kernel). */
export function nativeMatmul(ctx: NativeContext): HostMatmul {
  return (x, w, m, k, n, out) => {
    ctx.dense(x, w, m, k, n, out);
  };
}

/**
 * The native training runtime: a native-cpu backend (JS fallback for kernels it lacks) for the forward
 * and a native f32 matmul for the backward. Throws UsageError "unsupported" where the addon cannot run.
 */
export function createNativeTrainRuntime(options: NativeTrainRuntimeOptions = {}): NativeTrainRuntime {
  const reason = nativeTrainUnavailable();
  const addon = nativeAddon();
  if (reason !== undefined || addon === undefined) {
    throw new UsageError("unsupported", `[train] the native runtime cannot run here: ${reason ?? "addon not loaded"}`);
  }
  const threads = options.threads ?? 0;
  const native = createNativeCpuBackend({ threads, ...(options.isa === undefined ? {} : { isa: options.isa }) });
  let ctx: NativeContext;
  try {
    ctx = new addon.Context(threads, options.isa ?? requestedIsa());
  } catch (e) {
    native.dispose();
    throw e;
  }
  const Train = nativeTrainContextClass();
  let train: NativeTrainContext | undefined;
  try {
    train = Train === undefined ? undefined : new Train(threads, options.isa ?? requestedIsa());
  } catch (e) {
    ctx.dispose();
    native.dispose();
    throw e;
  }
  const backend = createDispatcher([native], createJsBackend());
  let disposed = false;
  const dispose = (): void => {
    if (!disposed) {
      disposed = true;
      train?.dispose();
      ctx.dispose();
      native.dispose();
    }
  };
  return {
    backend,
    matmul: nativeMatmul(ctx),
    ...(train === undefined ? {} : { kernels: nativeTrainKernels(train) }),
    name: `native-cpu (${ctx.isa}, ${ctx.threads} threads${train === undefined ? "" : `; train kernels ${train.isa}`})`,
    dispose,
    [Symbol.dispose]: dispose,
  };
}

/** The addon's TrainContext (native/cpu/train_kernels.cc), as far as this file uses it. */
export interface NativeTrainContext {
  readonly isa: string;
  readonly threads: number;
  gemm(a: Float32Array, b: Float32Array, c: Float32Array, m: number, n: number, k: number, flags: number): void;
  rmsNormBackward(x: Float32Array, w: Float32Array, g: Float32Array, rows: number, cols: number, eps: number, gx: Float32Array, gw: Float32Array): void;
  crossEntropy(logits: Float32Array, targets: Int32Array, rows: number, v: number, probs: Float32Array): number;
  crossEntropyBackward(probs: Float32Array, targets: Int32Array, rows: number, v: number, scale: number, out: Float32Array): void;
  adamw(w: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, n: number, params: Float64Array): void;
  /** Absent from addons built before it. */
  ternarize?(w: Float32Array, n: number, trits: Int8Array): number;
  dispose(): void;
}

type TrainContextClass = new (threads: number, isa: string) => NativeTrainContext;

/** The addon's TrainContext class, or undefined where the addon is missing or predates it. */
export function nativeTrainContextClass(): TrainContextClass | undefined {
  const addon = nativeAddon();
  const cls: unknown = addon === undefined ? undefined : Reflect.get(addon, "TrainContext");
  return typeof cls === "function" ? (cls as TrainContextClass) : undefined;
}

/** The training kernels of a TrainContext (gemm flags as ./kernels.ts: TRANS_A, TRANS_B, ACCUMULATE). */
export function nativeTrainKernels(ctx: NativeTrainContext): TrainKernels {
  if (TRANS_A !== 1 || TRANS_B !== 2 || ACCUMULATE !== 4) {
    throw new UsageError("unsupported", "[train] gemm flags differ from native/cpu/train_kernels.cc");
  }
  return {
    gemm: (a, b, c, m, n, k, flags) => ctx.gemm(a, b, c, m, n, k, flags),
    rmsNormBackward: (x, w, g, rows, cols, eps, gx, gw) => ctx.rmsNormBackward(x, w, g, rows, cols, eps, gx, gw),
    crossEntropy: (logits, targets, rows, v, probs) => ctx.crossEntropy(logits, targets, rows, v, probs),
    crossEntropyBackward: (probs, targets, rows, v, scale, out) => ctx.crossEntropyBackward(probs, targets, rows, v, scale, out),
    adamw: (w, g, m, v, n, params) => ctx.adamw(w, g, m, v, n, params),
    ...(typeof ctx.ternarize === "function" ? { ternarize: (w: Float32Array, n: number, trits: Int8Array) => ctx.ternarize?.(w, n, trits) ?? Number.NaN } : {}),
  };
}

/** The reference runtime: the default backend (JS unless changed) and float64 backward products. */
export const REFERENCE_RUNTIME: TrainRuntime = { name: "reference (default backend, float64 backward)" };
