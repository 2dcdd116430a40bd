/**
 * Device buffers: allocated zeroed on the GPU, written once (weights at load) or by kernels, read back
 * asynchronously through a mappable staging buffer. Every buffer is a storage buffer that can also be
 * copied to and from, sized up to a multiple of 4 bytes (WebGPU's copy and binding granularity); the
 * padding is never part of the tensor.
 */
import { UsageError } from "../../core/errors.js";
import type { BufferHandle } from "../backend.js";
import type { WebGpuDevice } from "./device.js";
import { WebGpuError } from "./errors.js";
import { BUFFER_USAGE, MAP_READ, type GpuBufferLike } from "./gpu-types.js";

/** Rounds a byte count up to WebGPU's 4-byte granularity (at least 4: a binding may not be empty). */
export function align4(bytes: number): number {
  return Math.max(4, Math.ceil(bytes / 4) * 4);
}

/** A tensor's storage on the device. `bytes` is the logical size; the GPU buffer may be up to 3 bytes longer. */
export class DeviceBuffer implements BufferHandle {
  #gpu: GpuBufferLike | undefined;

  constructor(
    readonly id: number,
    readonly bytes: number,
    gpu: GpuBufferLike,
  ) {
    this.#gpu = gpu;
  }

  /** The GPU buffer; UsageError "disposed" after free. */
  get gpu(): GpuBufferLike {
    if (this.#gpu === undefined) {
      throw new UsageError("disposed", `[webgpu] buffer ${this.id} was freed`);
    }
    return this.#gpu;
  }

  get freed(): boolean {
    return this.#gpu === undefined;
  }

  /** Destroys the GPU buffer (work already submitted keeps it alive until it completes). */
  release(): boolean {
    if (this.#gpu === undefined) {
      return false;
    }
    this.#gpu.destroy();
    this.#gpu = undefined;
    return true;
  }
}

/** The device's buffers, with allocation accounting like the host memories. */
export class DeviceMemory {
  readonly #live = new Map<number, DeviceBuffer>();
  #nextId = 1;
  #liveBytes = 0;

  /**
   * @param flushPending submits commands recorded but not yet submitted; called before any queue write or
   * readback so that those happen after the kernels recorded before them.
   */
  constructor(
    readonly gpu: WebGpuDevice,
    private readonly flushPending: () => void,
  ) {}

  /** Largest buffer this device binds as storage (the kernels bind every operand). */
  get maxBufferBytes(): number {
    return Math.min(this.gpu.limits.maxStorageBufferBindingSize, this.gpu.limits.maxBufferSize);
  }

  /** Allocates `bytes` of zeroed device memory. */
  alloc(bytes: number, label?: string): DeviceBuffer {
    if (!Number.isSafeInteger(bytes) || bytes < 0) {
      throw new UsageError("unsupported", `[webgpu] cannot allocate ${bytes} bytes`);
    }
    if (align4(bytes) > this.maxBufferBytes) {
      throw new WebGpuError("limit", `[webgpu] a ${bytes}-byte buffer exceeds this device's storage binding limit of ${this.maxBufferBytes} bytes`);
    }
    this.gpu.assertAlive();
    const gpuBuffer = this.gpu.device.createBuffer({
      size: align4(bytes),
      usage: BUFFER_USAGE.STORAGE | BUFFER_USAGE.COPY_SRC | BUFFER_USAGE.COPY_DST,
      ...(label === undefined ? {} : { label }),
    });
    const buffer = new DeviceBuffer(this.#nextId++, bytes, gpuBuffer);
    this.#live.set(buffer.id, buffer);
    this.#liveBytes += bytes;
    return buffer;
  }

  /** Allocates a buffer holding a copy of `bytes` (weights: uploaded once at load). */
  upload(bytes: Uint8Array, label?: string): DeviceBuffer {
    const buffer = this.alloc(bytes.byteLength, label);
    this.write(buffer, bytes);
    return buffer;
  }

  /**
   * Copies `src` into the buffer at `byteOffset` (a multiple of 4). A write whose length is not a
   * multiple of 4 must end at the buffer's end (WebGPU writes whole words; the padding is not data).
   */
  write(buffer: BufferHandle, src: Uint8Array, byteOffset = 0): void {
    const own = this.#own(buffer, "write");
    if (!Number.isSafeInteger(byteOffset) || byteOffset < 0 || byteOffset + src.byteLength > own.bytes) {
      throw new UsageError("unsupported", `[webgpu] write of ${src.byteLength} bytes at ${byteOffset} is outside buffer ${own.id} (${own.bytes} bytes)`);
    }
    if (byteOffset % 4 !== 0 || (src.byteLength % 4 !== 0 && byteOffset + src.byteLength !== own.bytes)) {
      throw new UsageError("unsupported", `[webgpu] writes must start on a 4-byte boundary and cover whole words or end the buffer (offset ${byteOffset}, ${src.byteLength} bytes)`);
    }
    if (src.byteLength === 0) {
      return;
    }
    this.flushPending();
    let data = src;
    if (src.byteLength % 4 !== 0) {
      data = new Uint8Array(align4(src.byteLength));
      data.set(src);
    }
    this.gpu.device.queue.writeBuffer(own.gpu, byteOffset, data, 0, data.byteLength);
  }

  /** Copies bytes out of the buffer once every kernel recorded before this call has run. */
  async read(buffer: BufferHandle, byteOffset = 0, length?: number): Promise<Uint8Array> {
    const own = this.#own(buffer, "read");
    const size = length ?? own.bytes - byteOffset;
    if (!Number.isSafeInteger(byteOffset) || !Number.isSafeInteger(size) || byteOffset < 0 || size < 0 || byteOffset + size > own.bytes) {
      throw new UsageError("unsupported", `[webgpu] read of ${size} bytes at ${byteOffset} is outside buffer ${own.id} (${own.bytes} bytes)`);
    }
    if (size === 0) {
      return new Uint8Array(0);
    }
    const start = byteOffset - (byteOffset % 4);
    const end = Math.min(align4(byteOffset + size), own.gpu.size);
    this.flushPending();
    const device = this.gpu.device;
    const staging = device.createBuffer({ size: end - start, usage: BUFFER_USAGE.MAP_READ | BUFFER_USAGE.COPY_DST, label: "readback" });
    try {
      const encoder = device.createCommandEncoder({ label: "readback" });
      encoder.copyBufferToBuffer(own.gpu, start, staging, 0, end - start);
      device.queue.submit([encoder.finish()]);
      await staging.mapAsync(MAP_READ);
      const mapped = new Uint8Array(staging.getMappedRange());
      return mapped.slice(byteOffset - start, byteOffset - start + size);
    } catch (error) {
      this.gpu.assertAlive();
      throw new WebGpuError("gpu-error", `[webgpu] readback failed: ${error instanceof Error ? (error.message.split("\n")[0] ?? "") : "unknown"}`);
    } finally {
      staging.destroy();
    }
  }

  /** Frees a buffer; false when it is not a live buffer of this memory. */
  free(buffer: BufferHandle): boolean {
    const own = this.#live.get(buffer.id);
    if (own === undefined || own !== buffer) {
      return false;
    }
    this.#live.delete(own.id);
    this.#liveBytes -= own.bytes;
    return own.release();
  }

  liveAllocations(): number {
    return this.#live.size;
  }

  liveBytes(): number {
    return this.#liveBytes;
  }

  /** The live DeviceBuffer behind a handle of this memory; UsageError otherwise. */
  resolve(buffer: BufferHandle, op: string): DeviceBuffer {
    return this.#own(buffer, op);
  }

  #own(buffer: BufferHandle, op: string): DeviceBuffer {
    const own = this.#live.get(buffer.id);
    if (own === undefined || own !== buffer) {
      throw new UsageError(buffer instanceof DeviceBuffer ? "disposed" : "backend-mismatch", `[webgpu] ${op}: buffer ${buffer.id} is not a live buffer of this device`);
    }
    return own;
  }
}
