/**
 * The WASM SIMD backend ("wasm-simd"): AssemblyScript kernels compiled to wasm32 + SIMD128
 * (native/wasm/assembly), running over a linear memory whose buffers are this backend's `BufferMemory`, so
 * weights live where the kernels read them. Single-threaded. Runs in Node and in browsers.
 *
 * Exactness: the integer kernels (ternary/binary × int8, XNOR-popcount) and activation quantization are bit
 * for bit those of the JS reference; so are rmsNorm, rope, softmax, unary, binary, scale and embedding
 * (same float64 or f32 operations in the same order, the host's Math functions). matmulF32 / matmulDense
 * and attention sum in f32 with 4-lane partial sums and match within ≈ 1e-5 relative to Σ|x·w|.
 */
import { UsageError } from "../../core/errors.js";
import type { BackendOptions, BackendProvider, PartialBackend } from "../backend.js";
import { createWasmKernels, wasmSupports } from "./kernels.js";
import { instantiateKernels, probeWasmSimd } from "./loader.js";
import { WASM_PAGE_BYTES, WasmBufferMemory, WASM32_MAX_BYTES, type WasmMemoryOptions } from "./memory.js";
import { requireWasmApi } from "./wasm-api.js";

export { probeWasmSimd } from "./loader.js";
export { WasmBuffer, WasmBufferMemory, WASM32_MAX_BYTES, WASM_ALIGN, WASM_PAGE_BYTES } from "./memory.js";
export type { WasmMemoryOptions } from "./memory.js";

/** Options of {@link createWasmSimdBackend}: the backend options plus the memory limit. */
export interface WasmSimdOptions extends BackendOptions, WasmMemoryOptions {}

/** A wasm-simd backend: a partial backend whose memory is its wasm linear memory. */
export interface WasmSimdBackend extends PartialBackend {
  readonly memory: WasmBufferMemory;
}

/**
 * Creates a backend instance with its own linear memory (grown on demand up to `maxBytes`, 4 GiB by
 * default). `threads` is accepted and ignored: the kernels are single-threaded.
 */
export async function createWasmSimdBackend(options: WasmSimdOptions = {}): Promise<WasmSimdBackend> {
  const probe = await probeWasmSimd();
  if (!probe.available) {
    throw new UsageError("unsupported", `[wasm-simd] unavailable: ${probe.reason}`);
  }
  const maxBytes = Math.min(options.maxBytes ?? WASM32_MAX_BYTES, WASM32_MAX_BYTES);
  const maximum = Math.max(1, Math.floor(maxBytes / WASM_PAGE_BYTES));
  const linear = new (requireWasmApi().Memory)({ initial: 1, maximum });
  const wasm = await instantiateKernels(linear);
  const base = wasm.heapBase();
  const memory = new WasmBufferMemory(linear, Math.max(base, 64), { maxBytes: maximum * WASM_PAGE_BYTES });
  const { kernels, dispose } = createWasmKernels(wasm, memory);
  return {
    name: "wasm-simd",
    kernels,
    memory,
    supports: (kernel, refs) => wasmSupports(memory, kernel, refs),
    info: { features: ["simd128"], threads: 1, detail: "AssemblyScript 0.28 → wasm32 + SIMD128, single-threaded" },
    dispose,
  };
}

/** The wasm-simd provider: available where the host validates SIMD128 and the kernel module. */
export const wasmSimdProvider: BackendProvider = {
  name: "wasm-simd",
  basePriority: 20,
  probe: probeWasmSimd,
  create: (options) => createWasmSimdBackend(options),
};
