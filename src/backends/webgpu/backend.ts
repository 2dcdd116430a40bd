/**
 * WebGPU as a backend of the contract (backend.ts): a `PartialBackend` whose memory is the device's
 * (`kind: "device"`), with every kernel of the op table and the fused single-step block.
 *
 * - **Memory.** Tensors are device buffers. `write` queues an upload (an unaligned range goes through a
 *   scratch buffer and the byte-copy shader); `read` throws (device memory is read back asynchronously
 *   only); `readAsync` submits the recorded kernels, copies the range and the kernels' status words into one
 *   staging buffer and maps it: one round trip per read.
 * - **Data errors** that the reference throws at the kernel call (a non-finite activation to quantize, a
 *   token id outside the vocabulary, a RoPE position outside the table) are recorded on the device and
 *   thrown by the next `readAsync` on this device: the engine reads the logits once per step, so a bad step
 *   fails at that read, with the same ValueError / ShapeError.
 * - **RoPE** takes `theta` per call; the backend keeps one factored cos/sin table per (theta, headDim),
 *   built on the host in float64 at first use and covering positions 0 … MAX_ROPE_POSITIONS − 1.
 * - **Fused steps**: `bitnetBlock` (./block.ts) runs the block's kernels with the residual adds and the
 *   gated activation folded into the projections' write, bit-identical to the composed kernels, recorded
 *   into the step's one command encoder. `bitnetBlockBatch` is absent (its rows' positions live on the
 *   device): forward() composes the kernels for batched steps.
 * - One device per process: every backend this module creates shares one WebGpuContext (one pipeline
 *   cache, so shaders compile once); the device is released when the last of them is disposed.
 */
import { UsageError } from "../../core/errors.js";
import type { BackendInfo, BackendProvider, BufferHandle, BufferMemory, KernelName, Kernels, PartialBackend, Probe, TensorRef } from "../backend.js";
import { requireSubOp, subOpsWithCase, type Capabilities } from "../capabilities.js";
import { webGpuBitnetBlock } from "./block.js";
import { align4 } from "./buffers.js";
import type { AdapterSummary } from "./device.js";
import { WebGpuError } from "./errors.js";
import { WebGpuContext } from "./index.js";
import { DENSE_FORMATS, MAX_DOT_K, MAX_ROPE_POSITIONS, type RopeTable } from "./kernels.js";
import { BINARY_WGSL, MAX_BINARY_RANK, UNARY_WGSL } from "./shaders/elementwise.wgsl.js";
import { MAX_ATTENTION_HEAD_DIM } from "./shaders/float.wgsl.js";
import { MAX_GATHER_RANK } from "./shaders/layout.wgsl.js";

/** The unary and binary ops the element-wise shaders have a `case` for (their switches are the list). */
const UNARY_CASES = subOpsWithCase("unary", UNARY_WGSL);
const BINARY_CASES = subOpsWithCase("binary", BINARY_WGSL);

/** What each kernel accepts (checked by the dispatcher before it routes a call here). */
export const WEBGPU_CAPABILITIES: Capabilities = {
  matmulF32: true,
  matmulDense: { dtypes: { w: DENSE_FORMATS } },
  matmulQ8I8: { dtypes: { w: ["q8_0"] } },
  embedding: { dtypes: { table: DENSE_FORMATS } },
  writeRows: true,
  matmulTernaryI8: { maxK: MAX_DOT_K },
  matmulBinaryI8: { maxK: MAX_DOT_K },
  matmulBinaryBinary: true,
  quantizeActivations: true,
  rmsNorm: true,
  rope: true,
  softmax: true,
  attention: { dtypes: { k: ["f32"], v: ["f32"] } }, // f32 KV caches only (kv-cache.ts refuses others on a device)
  unary: { ops: UNARY_CASES },
  binary: { maxRank: MAX_BINARY_RANK, ops: BINARY_CASES },
  scale: true,
  copyStrided: { maxRank: MAX_GATHER_RANK },
  concat: true,
  bitnetBlock: { dtypes: { kCache: ["f32"], vCache: ["f32"] } },
};

/** A short name of the adapter, for `barbell backends` and the bench: "vendor architecture (description)". */
export function adapterName(a: AdapterSummary): string {
  const main = [a.vendor, a.architecture, a.device].filter((s) => s !== "").join(" ");
  const name = main === "" ? a.description || "unknown adapter" : main;
  return a.description !== "" && !name.includes(a.description) ? `${name} (${a.description})` : name;
}

/** The device's memory as the contract's BufferMemory. */
class WebGpuBufferMemory implements BufferMemory {
  readonly kind = "device" as const;

  constructor(private readonly ctx: WebGpuContext) {}

  alloc(bytes: number): BufferHandle {
    return this.ctx.memory.alloc(bytes);
  }

  adopt(bytes: Uint8Array): BufferHandle {
    return this.ctx.memory.upload(bytes);
  }

  free(buffer: BufferHandle): boolean {
    return this.ctx.memory.free(buffer);
  }

  write(buffer: BufferHandle, src: Uint8Array, byteOffset = 0): void {
    const memory = this.ctx.memory;
    const own = memory.resolve(buffer, "write");
    const whole = byteOffset % 4 === 0 && (src.byteLength % 4 === 0 || byteOffset + src.byteLength === own.bytes);
    if (whole || !Number.isSafeInteger(byteOffset) || byteOffset < 0 || byteOffset + src.byteLength > own.bytes) {
      memory.write(buffer, src, byteOffset); // checks the range
      return;
    }
    // Bytes that do not cover whole words: upload to scratch, then merge them in on the device (in order
    // with the kernels recorded before and after this write).
    this.ctx.recorder.flush();
    const scratch = this.ctx.recorder.scratch("unaligned-write", align4(src.byteLength));
    const padded = new Uint8Array(align4(src.byteLength));
    padded.set(src);
    this.ctx.gpu.device.queue.writeBuffer(scratch, 0, padded);
    this.ctx.kernels.copyBytes(scratch, 0, own.gpu, byteOffset, src.byteLength);
  }

  read(): Uint8Array {
    throw new UsageError("unsupported", "[webgpu] device memory is read back asynchronously (readAsync)");
  }

  async readAsync(buffer: BufferHandle, byteOffset = 0, length?: number): Promise<Uint8Array> {
    const { bytes, extra } = await this.ctx.memory.readWith(buffer, byteOffset, length, this.ctx.recorder.status);
    await this.ctx.recorder.settle();
    this.ctx.recorder.takeStatus(extra);
    return bytes;
  }

  holds(buffer: BufferHandle): boolean {
    return this.ctx.memory.holds(buffer);
  }

  liveAllocations(): number {
    return this.ctx.memory.liveAllocations();
  }

  liveBytes(): number {
    return this.ctx.memory.liveBytes();
  }
}

/** The shared device of this process (see the module comment) and how many backends hold it. */
let shared: { context: Promise<WebGpuContext>; holders: number } | undefined;

function acquireShared(): Promise<WebGpuContext> {
  if (shared === undefined) {
    const context = WebGpuContext.create();
    shared = { context, holders: 0 };
    // A failed acquisition is not kept: a later probe or creation tries again.
    context.catch(() => {
      if (shared?.context === context) {
        shared = undefined;
      }
    });
  }
  return shared.context;
}

export interface WebGpuBackend extends PartialBackend {
  readonly memory: BufferMemory;
  readonly adapter: AdapterSummary;
  /** Work sent to the device so far: dispatches recorded, kernel submissions and readbacks (each a host round trip). */
  stats(): { readonly dispatches: number; readonly submissions: number; readonly readbacks: number };
}

/** A backend over the process's WebGPU device (acquired on first use). Throws WebGpuError when there is none. */
export async function createWebGpuBackend(): Promise<WebGpuBackend> {
  const context = acquireShared();
  const ctx = await context;
  const holder = shared;
  if (holder === undefined || holder.context !== context) {
    throw new WebGpuError("device-failed", "[webgpu] the device was released while a backend was being created");
  }
  holder.holders++;
  const k = ctx.kernels;
  const ropeTables = new Map<string, RopeTable>();
  const ropeTable = (theta: number, headDim: number): RopeTable => {
    const key = `${theta}/${headDim}`;
    let table = ropeTables.get(key);
    if (table === undefined) {
      table = k.createRopeTable(theta, headDim, MAX_ROPE_POSITIONS);
      ropeTables.set(key, table);
    }
    return table;
  };
  const kernels: Kernels = {
    matmulF32: (x, w, out) => k.matmulF32(x, w, out),
    matmulDense: (x, w, out) => k.matmulDense(x, w, out),
    matmulQ8I8: (x, w, out) => k.matmulQ8I8(x, w, out),
    embedding: (ids, table, out) => k.embedding(ids, table, out),
    writeRows: (src, dst, row) => k.writeRows(src, dst, row),
    matmulTernaryI8: (x, s, w, out) => k.matmulTernaryI8(x, s, w, out),
    matmulBinaryI8: (x, s, w, out) => k.matmulBinaryI8(x, s, w, out),
    matmulBinaryBinary: (x, w, out) => k.matmulBinaryBinary(x, w, out),
    quantizeActivations: (x, q, scales) => k.quantizeActivations(x, q, scales),
    rmsNorm: (x, weight, eps, out) => k.rmsNorm(x, weight, eps, out),
    rope: (x, positions, theta, mode, out) => k.rope(x, positions, ropeTable(theta, x.shape[2] ?? 0), mode, out),
    softmax: (x, out) => k.softmax(x, out),
    attention: (q, kk, v, pos0, scale, out) => k.attention(q, kk, v, pos0, scale, out),
    // An op without a case would hit the shaders' NaN default: refused here when called directly.
    unary: (op, x, out) => {
      requireSubOp("webgpu", "unary", op, UNARY_CASES);
      k.unary(op, x, out);
    },
    binary: (op, a, as, b, bs, out) => {
      requireSubOp("webgpu", "binary", op, BINARY_CASES);
      k.binary(op, a, as, b, bs, out);
    },
    scale: (x, factor, out) => k.scale(x, factor, out),
    copyStrided: (src, offset, strides, out) => k.copyStrided(src, offset, strides, out),
    concat: (parts, axis, out) => k.concat(parts, axis, out),
  };
  const adapter = ctx.adapter;
  const info: BackendInfo = {
    features: [`adapter: ${adapterName(adapter)}`, ...(adapter.software ? ["software"] : []), "dot4I8Packed"],
    threads: 1,
    detail: `webgpu ${adapterName(adapter)} via ${adapter.runtime}`,
  };
  let disposed = false;
  return {
    name: "webgpu",
    kernels,
    fused: { bitnetBlock: webGpuBitnetBlock(ctx, ropeTable, UNARY_CASES) },
    capabilities: WEBGPU_CAPABILITIES,
    supports: (kernel: KernelName, refs: readonly TensorRef[]) =>
      kernel === "attention" && (refs[0]?.shape[2] ?? 0) > MAX_ATTENTION_HEAD_DIM ? `attention takes headDim ≤ ${MAX_ATTENTION_HEAD_DIM}` : true,
    memory: new WebGpuBufferMemory(ctx),
    adapter,
    stats: () => ({ dispatches: ctx.recorder.recorded, submissions: ctx.recorder.submissions, readbacks: ctx.memory.readbacks }),
    info,
    dispose: () => {
      if (disposed) {
        return;
      }
      disposed = true;
      ropeTables.forEach((t) => t.dispose());
      ropeTables.clear();
      holder.holders--;
      if (holder.holders === 0 && shared === holder) {
        shared = undefined;
        ctx.dispose();
      }
    },
  };
}

/** Probes for a WebGPU device (acquiring the shared one); the adapter's name is among the features. */
export async function probeWebGpuBackend(): Promise<Probe> {
  try {
    const ctx = await acquireShared();
    const a = ctx.adapter;
    // A software adapter (SwiftShader, lavapipe) is correct but slower than the CPU backends.
    return { available: true, score: a.software ? 0.1 : 1, features: [`adapter: ${adapterName(a)}`, ...(a.software ? ["software"] : [])] };
  } catch (error) {
    if (error instanceof WebGpuError) {
      return { available: false, reason: error.message };
    }
    throw error;
  }
}

/**
 * The WebGPU provider. Negative priority: it runs only when named (`--backend webgpu`,
 * `loadModel({ backends: ["webgpu", "js"] })`) until it has been measured on a real GPU.
 */
export const webGpuProvider: BackendProvider = {
  name: "webgpu",
  basePriority: -1,
  probe: probeWebGpuBackend,
  create: () => createWebGpuBackend(),
};
