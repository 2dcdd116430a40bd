/**
 * The slice of the standard WebAssembly JS API this backend uses, typed locally: the project compiles
 * without the DOM lib and @types/node does not declare `WebAssembly`, so the global is read through
 * `globalThis` (it is the same object in Node and in browsers).
 */
import { UsageError } from "../../core/errors.js";

/** A linear memory (`WebAssembly.Memory`). */
export interface WasmMemory {
  /**
   * The current bytes; detached and replaced by every successful grow. A shared memory's buffer is a
   * SharedArrayBuffer that a grow does not detach (a new, longer one is returned from then on).
   */
  readonly buffer: ArrayBuffer;
  /** Grows by `pages` 64 KiB pages; returns the old size in pages; throws RangeError when it cannot. */
  grow(pages: number): number;
}

/** A compiled module (`WebAssembly.Module`), opaque here. */
export interface WasmModule {
  readonly __wasmModule?: never;
}

/** An instance's exports: functions (and the memory, which this module imports instead). */
export type WasmExports = Readonly<Record<string, unknown>>;

interface WasmInstance {
  readonly exports: WasmExports;
}

/** Import object: module name → field name → value. */
export type WasmImports = Readonly<Record<string, Readonly<Record<string, unknown>>>>;

/** The `Math` functions the kernel module imports (as `env."Math.<name>"`), on the main thread and in its workers. */
export const WASM_MATH_IMPORTS = ["exp", "tanh", "sin", "cos", "pow"] as const;

/** The module's `env` imports over `memory`: the memory and the `Math` functions (worker-source.ts builds the same). */
export function wasmEnv(memory: unknown): Record<string, unknown> {
  return { memory, ...Object.fromEntries(WASM_MATH_IMPORTS.map((name) => [`Math.${name}`, Math[name]])) };
}

/** `WebAssembly` itself. */
export interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  compile(bytes: Uint8Array): Promise<WasmModule>;
  instantiate(module: WasmModule, imports: WasmImports): Promise<WasmInstance>;
  readonly Memory: new (descriptor: { initial: number; maximum?: number; shared?: boolean }) => WasmMemory;
}

/** The host's WebAssembly API, or undefined where there is none. */
export function wasmApi(): WasmApi | undefined {
  const api = (globalThis as { WebAssembly?: Partial<WasmApi> }).WebAssembly;
  if (
    typeof api !== "object" ||
    typeof api.validate !== "function" ||
    typeof api.compile !== "function" ||
    typeof api.instantiate !== "function" ||
    typeof api.Memory !== "function"
  ) {
    return undefined;
  }
  return api as WasmApi;
}

/** The host's WebAssembly API; a UsageError where there is none. */
export function requireWasmApi(): WasmApi {
  const api = wasmApi();
  if (api === undefined) {
    throw new UsageError("unsupported", "[wasm-simd] this host has no WebAssembly");
  }
  return api;
}
