/**
 * Loading barbell_cuda.node (built by scripts/build-cuda.mjs when nvcc and the CUDA runtime are found) and its
 * typed surface: the C ABI of native/cuda/barbell_cuda.h, device pointers as BigInts.
 */
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { OP_TABLE_HASH } from "../ops.js";

/** The ABI version the glue speaks (BBC_ABI_VERSION). */
export const CUDA_ABI_VERSION = 1;

export type DevicePtr = bigint;

export interface CudaAddon {
  readonly abiVersion: number;
  readonly opTableHash: number;
  probe(): { devices: number; detail: string };
  init(ordinal: number): void;
  alloc(bytes: number): DevicePtr;
  free(p: DevicePtr): void;
  write(p: DevicePtr, offset: number, src: Uint8Array): void;
  read(p: DevicePtr, offset: number, length: number): Uint8Array;
  copy(dst: DevicePtr, dstOffset: number, src: DevicePtr, srcOffset: number, bytes: number): void;
  sync(): void;
  /** [first non-finite activation index, first bad token row], −1 for none; clears them. */
  status(): [number, number];
  repackTernary(raw: DevicePtr, n: number, k: number): DevicePtr;
  repackQ8(raw: DevicePtr, n: number, k: number): [DevicePtr, DevicePtr];
  quantize(x: DevicePtr, m: number, k: number, q: DevicePtr, scales: DevicePtr): void;
  ternary(x: DevicePtr, xs: DevicePtr, w: DevicePtr, gamma: number, m: number, k: number, n: number, out: DevicePtr): void;
  rmsNorm(x: DevicePtr, w: DevicePtr | null, rows: number, cols: number, eps: number, out: DevicePtr): void;
  rope(x: DevicePtr, seq: number, heads: number, hd: number, pos: DevicePtr, theta: number, neox: number, out: DevicePtr): void;
  attention(q: DevicePtr, k: DevicePtr, v: DevicePtr, seq: number, heads: number, kvHeads: number, hd: number, pos0: number, scale: number, out: DevicePtr): void;
  softmax(x: DevicePtr, rows: number, cols: number, out: DevicePtr): void;
  unary(op: number, x: DevicePtr, n: number, out: DevicePtr): void;
  binary(op: number, a: DevicePtr, aStrides: Float64Array, b: DevicePtr, bStrides: Float64Array, dims: Float64Array, out: DevicePtr): void;
  embedding(ids: DevicePtr, seq: number, dtype: number, table: DevicePtr, vocab: number, embed: number, out: DevicePtr): void;
  dense(x: DevicePtr, dtype: number, w: DevicePtr, m: number, k: number, n: number, out: DevicePtr): void;
  q8Head(x: DevicePtr, scales: DevicePtr, values: DevicePtr, m: number, k: number, n: number, out: DevicePtr): void;
  sample(logits: DevicePtr, rows: number, vocab: number, topK: number, temperature: number, seed: number, ids: DevicePtr): void;
}

/** build-cuda/barbell_cuda.node under the package root (three levels above this file in src/ and dist/). */
export function cudaAddonPath(): string {
  const fromEnv = process.env.BARBELL_CUDA_PATH;
  if (fromEnv !== undefined && fromEnv !== "") {
    return resolve(fromEnv);
  }
  return join(resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", ".."), "build-cuda", "barbell_cuda.node");
}

/** Why there is no addon: the build's record (build-cuda/cuda-build.txt), or that it was never built. */
function notBuiltReason(path: string): string {
  const recordFile = join(dirname(path), "cuda-build.txt");
  if (existsSync(recordFile)) {
    return `barbell_cuda.node was not built: ${readFileSync(recordFile, "utf8").split("\n")[0] ?? ""}`;
  }
  return 'barbell_cuda.node was not built (run "node scripts/build-cuda.mjs")';
}

export type AddonLoad = { readonly ok: true; readonly addon: CudaAddon } | { readonly ok: false; readonly reason: string };

let loaded: AddonLoad | undefined;

/** Loads the addon once; a missing, stale or unloadable addon is a reason, never a throw. */
export function loadCudaAddon(): AddonLoad {
  if (loaded !== undefined) {
    return loaded;
  }
  const path = cudaAddonPath();
  if (!existsSync(path)) {
    loaded = { ok: false, reason: notBuiltReason(path) };
    return loaded;
  }
  try {
    const addon = createRequire(import.meta.url)(path) as CudaAddon;
    if (addon.abiVersion !== CUDA_ABI_VERSION) {
      loaded = { ok: false, reason: `barbell_cuda.node speaks ABI ${addon.abiVersion}, not ${CUDA_ABI_VERSION} (run "node scripts/build-cuda.mjs")` };
    } else if (addon.opTableHash !== OP_TABLE_HASH) {
      loaded = { ok: false, reason: `barbell_cuda.node was built from another op table (run "node scripts/build-cuda.mjs")` };
    } else {
      loaded = { ok: true, addon };
    }
  } catch (error) {
    const message = error instanceof Error ? error.message.split("\n")[0] ?? "" : String(error);
    loaded = { ok: false, reason: `barbell_cuda.node failed to load: ${message.replace(path, "barbell_cuda.node")}` };
  }
  return loaded;
}
