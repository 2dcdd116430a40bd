/**
 * The WebGPU kernel library: a device, its buffers, its pipelines and the kernels, with asynchronous
 * readback. ./backend.ts makes it a backend of the contract (the `webgpu` provider); docs/webgpu.md.
 *
 *   const gpu = await WebGpuContext.create();          // WebGpuError with the reason when there is no adapter
 *   const w = gpu.upload("ternary", [n, k], packed, γ);  // weights: once, at load
 *   gpu.kernels.quantizeActivations(x, xq, xs);         // recorded, not yet run
 *   gpu.kernels.matmulTernaryI8(xq, xs, w, y);
 *   const out = await gpu.readF32(y);                   // one submission, one readback
 */
import type { StorageDType, TensorRef } from "../backend.js";
import { storageBytes } from "../storage.js";
import { DeviceMemory } from "./buffers.js";
import { acquireWebGpu, type AcquireOptions, type AdapterSummary, type WebGpuDevice } from "./device.js";
import { WebGpuKernels } from "./kernels.js";
import { PipelineCache, Recorder } from "./pipelines.js";

export { acquireWebGpu, probeWebGpu, SOFTWARE_VULKAN_ICDS, type AcquireOptions, type AdapterSummary, WebGpuDevice } from "./device.js";
export { DeviceBuffer, DeviceMemory } from "./buffers.js";
export { WebGpuError, type WebGpuErrorCode } from "./errors.js";
export { MAX_DOT_K, MAX_ROPE_POSITIONS, RopeTable, WebGpuKernels } from "./kernels.js";
export { PipelineCache, Recorder } from "./pipelines.js";

export class WebGpuContext {
  readonly memory: DeviceMemory;
  readonly pipelines: PipelineCache;
  readonly recorder: Recorder;
  readonly kernels: WebGpuKernels;

  private constructor(readonly gpu: WebGpuDevice) {
    this.recorder = new Recorder(gpu);
    this.pipelines = new PipelineCache(gpu, (result) => this.recorder.track(result));
    this.memory = new DeviceMemory(gpu, this.recorder);
    this.kernels = new WebGpuKernels(this.memory, this.pipelines, this.recorder);
  }

  /** Acquires a device (see acquireWebGpu) and sets up the kernel library on it. */
  static async create(options: AcquireOptions = {}): Promise<WebGpuContext> {
    return new WebGpuContext(await acquireWebGpu(options));
  }

  get adapter(): AdapterSummary {
    return this.gpu.adapter;
  }

  /** Allocates a zeroed device tensor. */
  alloc(dtype: StorageDType, shape: readonly number[], scale?: number): TensorRef {
    const buffer = this.memory.alloc(storageBytes(dtype, shape));
    return scale === undefined ? { buffer, dtype, shape } : { buffer, dtype, shape, scale };
  }

  /** Uploads host bytes as a device tensor (weights: once, at load). */
  upload(dtype: StorageDType, shape: readonly number[], data: ArrayBufferView, scale?: number): TensorRef {
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const buffer = this.memory.upload(bytes);
    return scale === undefined ? { buffer, dtype, shape } : { buffer, dtype, shape, scale };
  }

  /** Submits the recorded kernels and reads a tensor's bytes; rejects with the first device error. */
  async read(t: TensorRef): Promise<Uint8Array> {
    const bytes = await this.memory.read(t.buffer, 0, storageBytes(t.dtype, t.shape));
    await this.recorder.settle();
    return bytes;
  }

  async readF32(t: TensorRef): Promise<Float32Array> {
    const bytes = await this.read(t);
    return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >> 2);
  }

  /**
   * Throws the first data problem the kernels recorded since the last check (a non-finite activation,
   * a token id outside the vocabulary, a position outside the RoPE table) and clears the record.
   */
  async checkStatus(): Promise<void> {
    await this.recorder.checkStatus(async (buffer) => {
      const staging = this.memory.alloc(buffer.size);
      try {
        this.recorder.copy(buffer, 0, staging.gpu, 0, buffer.size);
        const bytes = await this.memory.read(staging);
        return new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >> 2);
      } finally {
        this.memory.free(staging);
      }
    });
  }

  /** Frees a tensor's device memory. */
  free(t: TensorRef): boolean {
    return this.memory.free(t.buffer);
  }

  /** Releases the device; every buffer and pipeline of this context becomes unusable. */
  dispose(): void {
    this.gpu.dispose();
  }
}
