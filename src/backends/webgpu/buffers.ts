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
  /** A reused buffer's zero fill, not recorded yet: recorded at the first use of `gpu`, dropped when a write covers it. */
  #pendingClear: ((gpu: GpuBufferLike) => void) | undefined;

  constructor(
    readonly id: number,
    readonly bytes: number,
    gpu: GpuBufferLike,
  ) {
    this.#gpu = gpu;
  }

  /** The GPU buffer (its pending zero fill recorded first); UsageError "disposed" after free. */
  get gpu(): GpuBufferLike {
    if (this.#gpu === undefined) {
      throw new UsageError("disposed", `[webgpu] buffer ${this.id} was freed`);
    }
    const clear = this.#pendingClear;
    if (clear !== undefined) {
      this.#pendingClear = undefined;
      clear(this.#gpu);
    }
    return this.#gpu;
  }

  /** Defers the zero fill of a reused buffer to its first use. */
  deferClear(clear: (gpu: GpuBufferLike) => void): void {
    this.#pendingClear = clear;
  }

  /** Drops a pending zero fill: the caller overwrites every byte of the tensor before anything reads it. */
  skipClear(): void {
    this.#pendingClear = undefined;
  }

  get freed(): boolean {
    return this.#gpu === undefined;
  }

  /** Gives up the GPU buffer (the memory pools or destroys it); undefined when already freed. */
  detach(): GpuBufferLike | undefined {
    const gpu = this.#gpu;
    this.#gpu = undefined;
    return gpu;
  }
}

/** What the memory needs from the command recorder, to stay in order with recorded kernels. */
export interface RecorderHooks {
  /** Submits the commands recorded so far (before a queue write or a readback). */
  flush(): void;
  /** Destroys a GPU buffer once the commands recorded so far no longer need it. */
  retire(buffer: GpuBufferLike): void;
  /** Records a zero fill of a buffer, ordered after the commands recorded so far. */
  clear(buffer: GpuBufferLike): void;
}

/**
 * Bytes of freed buffers kept for reuse. The forward pass frees and reallocates the same activation sizes
 * every step; reusing them saves a createBuffer per tensor (a cleared pooled buffer costs one recorded fill).
 */
export const POOL_MAX_BYTES = 64 * 1024 * 1024;

/** The device's buffers, with allocation accounting like the host memories. */
export class DeviceMemory {
  readonly #live = new Map<number, DeviceBuffer>();
  /** Freed GPU buffers by size, reused (cleared) by later allocations of that size. */
  readonly #pool = new Map<number, GpuBufferLike[]>();
  #pooledBytes = 0;
  #nextId = 1;
  #liveBytes = 0;
  /** Readbacks (mapped staging buffers) so far. */
  readbacks = 0;

  constructor(
    readonly gpu: WebGpuDevice,
    private readonly recorder: RecorderHooks,
  ) {}

  private flushPending(): void {
    this.recorder.flush();
  }

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
    const size = align4(bytes);
    const pooled = this.#pool.get(size)?.pop();
    let gpuBuffer: GpuBufferLike;
    if (pooled !== undefined) {
      this.#pooledBytes -= size;
      gpuBuffer = pooled;
    } else {
      gpuBuffer = this.gpu.device.createBuffer({
        size,
        usage: BUFFER_USAGE.STORAGE | BUFFER_USAGE.COPY_SRC | BUFFER_USAGE.COPY_DST,
        ...(label === undefined ? {} : { label }),
      });
    }
    const buffer = new DeviceBuffer(this.#nextId++, bytes, gpuBuffer);
    if (pooled !== undefined) {
      buffer.deferClear((gpu) => this.recorder.clear(gpu));
    }
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
    if (byteOffset === 0 && src.byteLength === own.bytes) {
      own.skipClear(); // every byte of the tensor is written: no zero fill needed
    }
    const target = own.gpu; // records a pending zero fill (a partial write) before the flush
    this.flushPending();
    let data = src;
    if (src.byteLength % 4 !== 0) {
      data = new Uint8Array(align4(src.byteLength));
      data.set(src);
    }
    this.gpu.device.queue.writeBuffer(target, byteOffset, data, 0, data.byteLength);
  }

  /** Copies bytes out of the buffer once every kernel recorded before this call has run. */
  async read(buffer: BufferHandle, byteOffset = 0, length?: number): Promise<Uint8Array> {
    return (await this.readWith(buffer, byteOffset, length)).bytes;
  }

  /**
   * Like {@link read}, and also reads `extra` (a small buffer such as the kernels' status words) in the same
   * submission and mapping: one round trip for both.
   */
  async readWith(buffer: BufferHandle, byteOffset = 0, length?: number, extra?: GpuBufferLike): Promise<{ bytes: Uint8Array; extra: Uint32Array }> {
    const own = this.#own(buffer, "read");
    const size = length ?? own.bytes - byteOffset;
    if (!Number.isSafeInteger(byteOffset) || !Number.isSafeInteger(size) || byteOffset < 0 || size < 0 || byteOffset + size > own.bytes) {
      throw new UsageError("unsupported", `[webgpu] read of ${size} bytes at ${byteOffset} is outside buffer ${own.id} (${own.bytes} bytes)`);
    }
    const extraBytes = extra?.size ?? 0;
    if (size === 0 && extra === undefined) {
      return { bytes: new Uint8Array(0), extra: new Uint32Array(0) };
    }
    const start = byteOffset - (byteOffset % 4);
    const end = size === 0 ? start : Math.min(align4(byteOffset + size), own.gpu.size);
    this.flushPending();
    const device = this.gpu.device;
    const staging = device.createBuffer({ size: end - start + extraBytes, usage: BUFFER_USAGE.MAP_READ | BUFFER_USAGE.COPY_DST, label: "readback" });
    try {
      const encoder = device.createCommandEncoder({ label: "readback" });
      if (end > start) {
        encoder.copyBufferToBuffer(own.gpu, start, staging, 0, end - start);
      }
      if (extra !== undefined) {
        encoder.copyBufferToBuffer(extra, 0, staging, end - start, extraBytes);
      }
      device.queue.submit([encoder.finish()]);
      this.readbacks++;
      await staging.mapAsync(MAP_READ);
      const mapped = new Uint8Array(staging.getMappedRange());
      const words = new Uint32Array(mapped.slice(end - start).buffer);
      return { bytes: mapped.slice(byteOffset - start, byteOffset - start + size), extra: words };
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
    const gpu = own.detach();
    if (gpu === undefined) {
      return false;
    }
    // Kernels recorded before this free may still use the buffer: pooled, it is only cleared (in order) when
    // reused; destroyed, it waits for the next submission.
    if (this.#pooledBytes + gpu.size <= POOL_MAX_BYTES) {
      const list = this.#pool.get(gpu.size) ?? [];
      list.push(gpu);
      this.#pool.set(gpu.size, list);
      this.#pooledBytes += gpu.size;
    } else {
      this.recorder.retire(gpu);
    }
    return true;
  }

  liveAllocations(): number {
    return this.#live.size;
  }

  liveBytes(): number {
    return this.#liveBytes;
  }

  /** Whether `buffer` is a live buffer of this memory. */
  holds(buffer: BufferHandle): boolean {
    return this.#live.get(buffer.id) === buffer;
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
