/**
 * Loads the WASM SIMD kernel module: decodes the embedded bytes, compiles them once per process, probes
 * the host for SIMD128, and instantiates the module over a linear memory the JS side owns.
 *
 * The module bytes are embedded (module.generated.ts, base64), so loading needs no file system or fetch and
 * works the same in Node and in browsers. Everything here uses only the standard WebAssembly JS API.
 */
import { UsageError } from "../../core/errors.js";
import type { Probe } from "../backend.js";
import { OP_TABLE_HASH } from "../ops.js";
import { WASM_MODULE_BASE64, WASM_THREADS_MODULE_BASE64 } from "./module.generated.js";
import { requireWasmApi, wasmApi, wasmEnv, type WasmExports, type WasmImports, type WasmMemory, type WasmModule } from "./wasm-api.js";

/** The functions the module exports. Pointers are byte offsets in the linear memory. */
export interface KernelExports {
  heapBase(): number;
  ternaryScratchBytes(k: number): number;
  matmulTernaryI8(
    x: number,
    xScales: number,
    w: number,
    gamma: number,
    m: number,
    k: number,
    n: number,
    out: number,
    scratch: number,
    j0: number,
    j1: number,
  ): void;
  matmulBinaryI8(
    x: number,
    xScales: number,
    w: number,
    beta: number,
    m: number,
    k: number,
    n: number,
    out: number,
    j0: number,
    j1: number,
  ): void;
  matmulBinaryBinary(x: number, w: number, m: number, k: number, n: number, out: number, j0: number, j1: number): void;
  matmulF32(x: number, w: number, m: number, k: number, n: number, out: number, j0: number, j1: number): void;
  matmulF16(x: number, w: number, m: number, k: number, n: number, out: number, j0: number, j1: number): void;
  matmulBF16(x: number, w: number, m: number, k: number, n: number, out: number, j0: number, j1: number): void;
  embedding(ids: number, seq: number, table: number, format: number, embed: number, out: number): void;
  headScratchBytes(): number;
  /** Returns −1, or the index within its row of the first block whose scale is not finite. */
  embeddingBlocks(ids: number, seq: number, table: number, format: number, embed: number, scratch: number, out: number): number;
  quantizeHeadActivations(x: number, m: number, k: number, block: number, q: number, inv: number, bsum: number): void;
  matmulHeadI8(
    q: number,
    inv: number,
    bsum: number,
    w: number,
    format: number,
    m: number,
    k: number,
    n: number,
    out: number,
    scratch: number,
    j0: number,
    j1: number,
  ): void;
  firstNonFinite(x: number, count: number): number;
  quantizeActivations(x: number, m: number, k: number, q: number, scales: number): void;
  rmsNorm(x: number, weight: number, hasWeight: number, rows: number, cols: number, eps: number, out: number): void;
  rope(
    x: number,
    seq: number,
    heads: number,
    headDim: number,
    positions: number,
    theta: number,
    adjacent: number,
    out: number,
  ): void;
  softmax(x: number, rows: number, cols: number, out: number): void;
  attention(
    q: number,
    k: number,
    v: number,
    seqQ: number,
    nHead: number,
    nKv: number,
    headDim: number,
    pos0: number,
    scale: number,
    out: number,
    scratch: number,
    first: number,
    step: number,
  ): void;
  /**
   * Returns 0, UNKNOWN_OP (−1) for a code outside the op table or UNSUPPORTED_OP (−2) for a table op the
   * module has no case for (nothing written either way).
   */
  unary(op: number, x: number, size: number, out: number): number;
  /** Returns 0, UNKNOWN_OP or UNSUPPORTED_OP, as `unary`. */
  binary(op: number, a: number, b: number, out: number, ...shapeAndStrides: number[]): number;
  scale(x: number, factor: number, size: number, out: number): void;
  /** The op table fingerprint the module was generated from (as a signed i32). */
  opTableHash(): number;
}

/** What the module's `unary` and `binary` return for an op code outside the op table. */
export const WASM_UNKNOWN_OP = -1;
/** What they return for an op of the table the module has no case for (native/wasm/assembly/float.ts). */
export const WASM_UNSUPPORTED_OP = -2;

/** The exports, in a fixed order: a threaded job names its kernel by index in this list. */
export const EXPORT_NAMES = [
  "heapBase",
  "ternaryScratchBytes",
  "matmulTernaryI8",
  "matmulBinaryI8",
  "matmulBinaryBinary",
  "matmulF32",
  "matmulF16",
  "matmulBF16",
  "embedding",
  "headScratchBytes",
  "embeddingBlocks",
  "quantizeHeadActivations",
  "matmulHeadI8",
  "firstNonFinite",
  "quantizeActivations",
  "rmsNorm",
  "rope",
  "softmax",
  "attention",
  "unary",
  "binary",
  "scale",
  "opTableHash",
] as const satisfies readonly (keyof KernelExports)[];

/**
 * The smallest module using SIMD128: (module (func (result v128) (v128.const i32x4 0 0 0 0))).
 * Hosts without SIMD128 reject it.
 */
const SIMD_PROBE = Uint8Array.of(
  ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00], // magic, version 1
  ...[0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b], // type section: () -> v128
  ...[0x03, 0x02, 0x01, 0x00], // function section: one function of type 0
  ...[0x0a, 0x16, 0x01, 0x14, 0x00, 0xfd, 0x0c, ...new Array<number>(16).fill(0), 0x0b], // v128.const 0; end
);

/** The embedded module's bytes: the build over an ordinary memory, or (`threaded`) over a shared one. */
export function wasmModuleBytes(threaded = false): Uint8Array {
  const text = atob(threaded ? WASM_THREADS_MODULE_BASE64 : WASM_MODULE_BASE64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    bytes[i] = text.charCodeAt(i);
  }
  return bytes;
}

let probed: Promise<Probe> | undefined;
const compiled: (Promise<WasmModule> | undefined)[] = [undefined, undefined];

/** Score of an available wasm-simd backend (the JS reference scores lower). */
export const WASM_SIMD_SCORE = 20;

/** Whether this host can run the module: SIMD128 and the module itself validate. Cached per process. */
export function probeWasmSimd(): Promise<Probe> {
  probed ??= (async (): Promise<Probe> => {
    const api = wasmApi();
    if (api === undefined) {
      return { available: false, reason: "this host has no WebAssembly" };
    }
    try {
      if (!api.validate(SIMD_PROBE)) {
        return { available: false, reason: "this host's WebAssembly lacks SIMD128" };
      }
      if (!api.validate(wasmModuleBytes())) {
        return { available: false, reason: "this host rejects barbell's wasm-simd module" };
      }
      return { available: true, score: WASM_SIMD_SCORE, features: ["simd128"] };
    } catch (error) {
      return { available: false, reason: `WebAssembly probe failed: ${error instanceof Error ? error.message : String(error)}` };
    }
  })();
  return probed;
}

/** The compiled module (the shared-memory build when `threaded`), compiled once per process. */
export function compileKernels(threaded = false): Promise<WasmModule> {
  const slot = threaded ? 1 : 0;
  const promise = compiled[slot] ?? requireWasmApi().compile(wasmModuleBytes(threaded));
  compiled[slot] = promise;
  return promise;
}

/**
 * Host functions the module imports: float64 Math from the host (the same functions the JS reference
 * kernels call, so transcendental results match them exactly). The worker source passes the same ones.
 */
function imports(memory: WasmMemory): WasmImports {
  return { env: wasmEnv(memory) };
}

function isKernelExports(exports: WasmExports): exports is WasmExports & KernelExports {
  return EXPORT_NAMES.every((name) => typeof exports[name] === "function");
}

/** Instantiates the kernels over `memory` (a shared memory needs `threaded`). */
export async function instantiateKernels(memory: WasmMemory, threaded = false): Promise<KernelExports> {
  const module = await compileKernels(threaded);
  const instance = await requireWasmApi().instantiate(module, imports(memory));
  const exports = instance.exports;
  if (!isKernelExports(exports)) {
    throw new UsageError("unsupported", "[wasm-simd] the kernel module lacks expected exports");
  }
  const built = exports.opTableHash() >>> 0;
  if (built !== OP_TABLE_HASH) {
    throw new UsageError(
      "unsupported",
      `[wasm-simd] the kernel module was built from another op table (${built.toString(16)}, expected ${OP_TABLE_HASH.toString(16)}): run npm run build:wasm`,
    );
  }
  return exports;
}
