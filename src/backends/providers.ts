/**
 * THE list of built-in backend providers, fastest first. Adding a backend adds one line here. The JS
 * reference is not listed: it is always the last member of every chain (backends/registry.ts).
 */
import type { BackendProvider } from "./backend.js";
import { cudaProvider } from "./cuda/index.js";
import { nativeCpuProvider } from "./native-cpu/index.js";
import { wasmSimdProvider } from "./wasm-simd/index.js";
import { webGpuProvider } from "./webgpu/backend.js";

export const PROVIDERS: readonly BackendProvider[] = [nativeCpuProvider, wasmSimdProvider, webGpuProvider, cudaProvider];
