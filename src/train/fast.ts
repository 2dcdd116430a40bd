/**
 * The fast training runtime (issue 8, point 3; docs/training.md "Speed"): the forward of a training
 * step on the native-cpu backend (multithreaded int8×ternary projections, f32 head, native norms,
 * RoPE and attention, with the JS backend as the chain's fallback) and the backward's matmul products
 * (gx = g·w, gw = gᵀ·x of every projection and of the head) in f32 on the same addon's thread pool.
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
import type { HostMatmul } from "./autograd.js";

/** Where a training step runs: the forward's backend and the backward's matmul kernel. */
export interface TrainRuntime {
  /** Backend of the forward's tensors; absent: the default backend. */
  readonly backend?: Backend;
  /** The backward's f32 products (createTape({ matmul })); absent: float64 host loops (the reference). */
  readonly matmul?: HostMatmul;
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
  const backend = createDispatcher([native], createJsBackend());
  let disposed = false;
  const dispose = (): void => {
    if (!disposed) {
      disposed = true;
      ctx.dispose();
      native.dispose();
    }
  };
  return {
    backend,
    matmul: nativeMatmul(ctx),
    name: `native-cpu (${ctx.isa}, ${ctx.threads} threads)`,
    dispose,
    [Symbol.dispose]: dispose,
  };
}

/** The reference runtime: the default backend (JS unless changed) and float64 backward products. */
export const REFERENCE_RUNTIME: TrainRuntime = { name: "reference (default backend, float64 backward)" };
