/**
 * Device memory of the CUDA backend: buffers are device allocations (cudaMalloc through the addon), written
 * synchronously from host bytes and read back with readAsync. Weights written in their file layout get a
 * device-layout copy the first time a kernel needs one (ternary rows repacked for dp4a, Q8_0 split into scales
 * and values), kept with the buffer and dropped when it is written again or freed.
 */
import { UsageError, ValueError } from "../../core/errors.js";
import type { BufferHandle, BufferMemory } from "../backend.js";
import type { CudaAddon, DevicePtr } from "./addon.js";
import { fromAddonError } from "./errors.js";

/** Largest single allocation this layer asks for (named limit; the device may allow less). */
export const MAX_CUDA_BUFFER_BYTES = 2 ** 40;

interface Owned {
  readonly handle: BufferHandle;
  readonly ptr: DevicePtr;
  /** Device-layout copies, keyed by what they are ("t2:n:k", "q8:n:k"). */
  derived: Map<string, DevicePtr[]>;
}

export class CudaMemory implements BufferMemory {
  readonly kind = "device" as const;
  private readonly owned = new Map<number, Owned>();
  private nextId = 1;
  private bytes = 0;

  constructor(private readonly addon: CudaAddon) {}

  alloc(bytes: number): BufferHandle {
    if (!Number.isSafeInteger(bytes) || bytes < 0 || bytes > MAX_CUDA_BUFFER_BYTES) {
      throw new UsageError("unsupported", `[cuda] cannot allocate ${bytes} bytes (limit ${MAX_CUDA_BUFFER_BYTES})`);
    }
    let ptr: DevicePtr;
    try {
      ptr = this.addon.alloc(bytes);
    } catch (error) {
      throw fromAddonError(error, "alloc");
    }
    const handle: BufferHandle = { id: this.nextId++, bytes };
    this.owned.set(handle.id, { handle, ptr, derived: new Map() });
    this.bytes += bytes;
    return handle;
  }

  adopt(bytes: Uint8Array): BufferHandle {
    const handle = this.alloc(bytes.byteLength);
    this.write(handle, bytes);
    return handle;
  }

  free(buffer: BufferHandle): boolean {
    const own = this.owned.get(buffer.id);
    if (own === undefined || own.handle !== buffer) {
      return false;
    }
    this.dropDerived(own);
    this.owned.delete(buffer.id);
    this.bytes -= buffer.bytes;
    this.addon.free(own.ptr);
    return true;
  }

  write(buffer: BufferHandle, src: Uint8Array, byteOffset = 0): void {
    const own = this.get(buffer);
    if (!Number.isSafeInteger(byteOffset) || byteOffset < 0 || byteOffset + src.byteLength > buffer.bytes) {
      throw new UsageError("unsupported", `[cuda] write of ${src.byteLength} bytes at ${byteOffset} is outside buffer ${buffer.id} (${buffer.bytes} bytes)`);
    }
    this.dropDerived(own);
    try {
      this.addon.write(own.ptr, byteOffset, src);
    } catch (error) {
      throw fromAddonError(error, "write");
    }
  }

  read(): Uint8Array {
    throw new UsageError("unsupported", "[cuda] device memory is read with readAsync");
  }

  async readAsync(buffer: BufferHandle, byteOffset = 0, length?: number): Promise<Uint8Array> {
    const own = this.get(buffer);
    const n = length ?? buffer.bytes - byteOffset;
    if (!Number.isSafeInteger(byteOffset) || !Number.isSafeInteger(n) || byteOffset < 0 || n < 0 || byteOffset + n > buffer.bytes) {
      throw new UsageError("unsupported", `[cuda] read of ${n} bytes at ${byteOffset} is outside buffer ${buffer.id} (${buffer.bytes} bytes)`);
    }
    await Promise.resolve();
    this.checkStatus();
    try {
      return this.addon.read(own.ptr, byteOffset, n);
    } catch (error) {
      throw fromAddonError(error, "read");
    }
  }

  /** Throws the first data problem the kernels recorded since the last check, and clears it. */
  checkStatus(): void {
    const [nonFinite, badRow] = this.addon.status();
    if (nonFinite >= 0) {
      throw new ValueError("non-finite", `[cuda quantizeActivations] a non-finite input (first at element ${nonFinite} of a call)`, nonFinite);
    }
    if (badRow >= 0) {
      throw new ValueError("out-of-range", `[cuda embedding] the token id at position ${badRow} is outside the vocabulary`, badRow);
    }
  }

  holds(buffer: BufferHandle): boolean {
    return this.owned.get(buffer.id)?.handle === buffer;
  }

  liveAllocations(): number {
    return this.owned.size;
  }

  liveBytes(): number {
    return this.bytes;
  }

  /** The device pointer of a live buffer. */
  ptr(buffer: BufferHandle): DevicePtr {
    return this.get(buffer).ptr;
  }

  /** A device-layout copy of `buffer`, made once by `make` and kept until the buffer is written or freed. */
  derived(buffer: BufferHandle, key: string, make: (ptr: DevicePtr) => DevicePtr[]): DevicePtr[] {
    const own = this.get(buffer);
    let copy = own.derived.get(key);
    if (copy === undefined) {
      copy = make(own.ptr);
      own.derived.set(key, copy);
    }
    return copy;
  }

  private dropDerived(own: Owned): void {
    own.derived.forEach((ptrs) => ptrs.forEach((p) => this.addon.free(p)));
    own.derived.clear();
  }

  private get(buffer: BufferHandle): Owned {
    const own = this.owned.get(buffer.id);
    if (own === undefined || own.handle !== buffer) {
      throw new UsageError("disposed", `[cuda] buffer ${buffer.id} is not a live buffer of this device`);
    }
    return own;
  }
}
