/**
 * What the demo page does, without the DOM: probe the backends a browser offers (WebGPU through
 * `navigator.gpu`, WebAssembly SIMD), load a GGUF from bytes onto the chosen one (`loadGgufModel`: the
 * engine's own loader and `BitnetModel`), and stream a generation with its token rate.
 *
 * Only browser-safe modules are imported here (no Node built-ins; the bundle would not build otherwise).
 */
import type { PartialBackend } from "../backends/backend.js";
import { createDispatcher } from "../backends/dispatch.js";
import { createJsBackend } from "../backends/js/index.js";
import { createWasmSimdBackend, probeWasmSimd } from "../backends/wasm-simd/index.js";
import { createWebGpuBackend, probeWebGpuBackend } from "../backends/webgpu/backend.js";
import { ValueError } from "../core/errors.js";
import type { BitnetModel } from "../engine/bitnet-model.js";
import { loadGgufModel } from "../engine/load-gguf.js";
import type { FinishReason } from "../engine/generate.js";
import type { ByteSource } from "../formats/gguf/source.js";

/** The backends the page offers, in the order shown. */
export const DEMO_BACKENDS = ["webgpu", "wasm-simd"] as const;
export type DemoBackendName = (typeof DEMO_BACKENDS)[number];

/** Most tokens one run may ask for (the page's max-tokens field). */
export const MAX_DEMO_TOKENS = 4096;
/** Highest temperature the page accepts. */
export const MAX_DEMO_TEMPERATURE = 2;

/** A backend as the page shows it: usable or not, and what it is (adapter) or why not. */
export interface BackendOffer {
  readonly name: DemoBackendName;
  readonly available: boolean;
  readonly detail: string;
}

/** Probes WebGPU (only where `navigator.gpu` exists) and WASM SIMD; never throws. */
export async function probeDemoBackends(navigatorGpu: boolean): Promise<BackendOffer[]> {
  const reason = (e: unknown): string => (e instanceof Error ? e.message : String(e));
  const webgpu = async (): Promise<BackendOffer> => {
    if (!navigatorGpu) {
      return { name: "webgpu", available: false, detail: "this browser has no navigator.gpu (WebGPU is off or not supported)" };
    }
    try {
      const probe = await probeWebGpuBackend();
      if (!probe.available) {
        return { name: "webgpu", available: false, detail: probe.reason };
      }
      const adapter = probe.features.find((f) => f.startsWith("adapter: "))?.slice("adapter: ".length) ?? "an adapter";
      return { name: "webgpu", available: true, detail: `${adapter}${probe.features.includes("software") ? " (software: slow)" : ""}` };
    } catch (e) {
      return { name: "webgpu", available: false, detail: reason(e) };
    }
  };
  const wasm = async (): Promise<BackendOffer> => {
    try {
      const probe = await probeWasmSimd();
      return probe.available ? { name: "wasm-simd", available: true, detail: "wasm32 + SIMD128" } : { name: "wasm-simd", available: false, detail: probe.reason };
    } catch (e) {
      return { name: "wasm-simd", available: false, detail: reason(e) };
    }
  };
  return [await webgpu(), await wasm()];
}

/** A model loaded on one backend: dispose it before loading another. */
export interface DemoSession extends Disposable {
  readonly model: BitnetModel;
  readonly backend: DemoBackendName;
  /** What runs: the backend's own description (adapter, threads). */
  readonly detail: string;
  /** Kernels that ran on the JS reference because the backend lacks them (none expected). */
  readonly fallbacks: ReadonlySet<string>;
}

/**
 * Creates the backend and loads the GGUF from `source` onto it (weights uploaded once). WebGPU runs strict
 * (every kernel on the device, as `--backend webgpu`); WASM SIMD may fall back to the JS reference per kernel,
 * which `fallbacks` records.
 */
export async function openDemo(
  source: ByteSource,
  name: string,
  backend: DemoBackendName,
  onProgress?: (done: number, total: number) => void,
): Promise<DemoSession> {
  const member: PartialBackend = backend === "webgpu" ? await createWebGpuBackend() : await createWasmSimdBackend();
  const fallbacks = new Set<string>();
  const dispatcher = createDispatcher([member], createJsBackend(), { strict: backend === "webgpu", onFallback: (event) => fallbacks.add(event.kernel) });
  let model: BitnetModel;
  try {
    model = await loadGgufModel(source, { backend: dispatcher, name, ...(onProgress === undefined ? {} : { onProgress }) });
  } catch (e) {
    member.dispose();
    throw e;
  }
  let disposed = false;
  return {
    model,
    backend,
    detail: member.info.detail ?? member.name,
    fallbacks,
    [Symbol.dispose]() {
      if (!disposed) {
        disposed = true;
        model.dispose();
        member.dispose();
      }
    },
  };
}

/** The page's generation settings, checked. */
export interface DemoSettings {
  readonly maxTokens: number;
  readonly temperature: number;
}

/** Reads the max-tokens and temperature fields; a ValueError naming the field for anything out of range. */
export function demoSettings(maxTokens: string, temperature: string): DemoSettings {
  const n = Number(maxTokens.trim());
  if (maxTokens.trim() === "" || !Number.isSafeInteger(n) || n < 1 || n > MAX_DEMO_TOKENS) {
    throw new ValueError("out-of-range", `[ui] max tokens must be a whole number from 1 to ${MAX_DEMO_TOKENS}`);
  }
  const t = Number(temperature.trim());
  if (temperature.trim() === "" || !Number.isFinite(t) || t < 0 || t > MAX_DEMO_TEMPERATURE) {
    throw new ValueError("out-of-range", `[ui] temperature must be a number from 0 (greedy) to ${MAX_DEMO_TEMPERATURE}`);
  }
  return { maxTokens: n, temperature: t };
}

/** Progress of a run, after each token. */
export interface DemoProgress {
  readonly tokens: number;
  /** Tokens per second over the decode steps after the first token; undefined before the second token. */
  readonly tokensPerSecond: number | undefined;
  /** From the start to the first token (prefill and the first step), ms. */
  readonly firstTokenMs: number | undefined;
}

export interface DemoRun extends DemoProgress {
  readonly text: string;
  readonly finishReason: FinishReason;
}

/**
 * Generates from `prompt` (tokenized with BOS, as `BitnetModel.generate`) and calls `onText` with each piece of
 * text as it comes. Greedy at temperature 0, so the text equals a Node run's `generate(prompt, { maxTokens,
 * temperature: 0 })` on the same model.
 */
export async function runDemo(
  model: BitnetModel,
  prompt: string,
  settings: DemoSettings,
  onText: (text: string, progress: DemoProgress) => void,
  signal?: AbortSignal,
): Promise<DemoRun> {
  const generation = model.generate(prompt, { maxTokens: settings.maxTokens, temperature: settings.temperature, ...(signal === undefined ? {} : { signal }) });
  const start = performance.now();
  let first: number | undefined;
  let tokens = 0;
  const progress = (): DemoProgress => {
    const elapsed = first === undefined ? 0 : performance.now() - first;
    return {
      tokens,
      tokensPerSecond: tokens >= 2 && elapsed > 0 ? ((tokens - 1) * 1000) / elapsed : undefined,
      firstTokenMs: first === undefined ? undefined : first - start,
    };
  };
  for await (const piece of generation) {
    if (piece.token !== null) {
      first ??= performance.now();
      tokens++;
    }
    onText(piece.text, progress());
  }
  const result = await generation.complete();
  return { ...progress(), text: result.text, finishReason: result.finishReason };
}
