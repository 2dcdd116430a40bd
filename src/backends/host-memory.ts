/**
 * Host memory: how the CPU backends (JS reference, WASM SIMD, native) hold tensors, as `MemoryKind` "host"
 * of the contract. A host buffer is a byte range a CPU kernel can view as a typed array. Backends without a
 * memory of their own (JS, native) read any host buffer in place, so the dispatcher runs a kernel one of them
 * lacks on another's buffers without a copy; a backend with its own memory (WASM's linear memory, a GPU)
 * reads only the buffers that memory holds (dispatch.ts decides from `BufferMemory.holds`).
 */
import { UsageError } from "../core/errors.js";
import type { BufferHandle, BufferMemory, TensorRef } from "./backend.js";

/** A buffer whose bytes live in JS-visible memory. */
export interface HostBuffer extends BufferHandle {
  /**
   * The bytes, as a fresh view (memory that can grow, like a WASM memory, may move). Throws
   * UsageError "disposed" after the buffer was freed.
   */
  view(): Uint8Array;
}

export function isHostBuffer(buffer: BufferHandle): buffer is HostBuffer {
  return typeof (buffer as Partial<HostBuffer>).view === "function";
}

/** The bytes of a host buffer; a UsageError for buffers that are not host-visible. */
export function hostBytes(buffer: BufferHandle): Uint8Array {
  if (!isHostBuffer(buffer)) {
    throw new UsageError("unsupported", `[host] buffer ${buffer.id} is not in host memory`);
  }
  return buffer.view();
}

/** Typed views of a tensor's storage, for kernel glue. Offsets are always 8-byte aligned. */
export const views = {
  u8: (t: TensorRef): Uint8Array => hostBytes(t.buffer),
  i8: (t: TensorRef): Int8Array => {
    const b = hostBytes(t.buffer);
    return new Int8Array(b.buffer, b.byteOffset, b.byteLength);
  },
  f32: (t: TensorRef): Float32Array => {
    const b = hostBytes(t.buffer);
    return new Float32Array(b.buffer, b.byteOffset, b.byteLength >> 2);
  },
  i32: (t: TensorRef): Int32Array => {
    const b = hostBytes(t.buffer);
    return new Int32Array(b.buffer, b.byteOffset, b.byteLength >> 2);
  },
  u32: (t: TensorRef): Uint32Array => {
    const b = hostBytes(t.buffer);
    return new Uint32Array(b.buffer, b.byteOffset, b.byteLength >> 2);
  },
};

/** Makes the bytes of a lazily adopted buffer (see {@link ArrayBufferMemory.adoptLazy}); may throw. */
export type Materialize = () => Uint8Array;

class ArrayBufferBuffer implements HostBuffer {
  #memory: ArrayBuffer | undefined;
  /** Set while a lazily adopted buffer has not made its bytes yet; `#size` is their length. */
  #pending: Materialize | undefined;
  #failed: unknown;
  readonly #size: number;
  /** A buffer of a group or an arena range: its byte range in `#memory`, which it shares (never recycled). */
  #part: { offset: number; length: number } | undefined;

  constructor(
    readonly id: number,
    memory: ArrayBuffer | undefined,
    pending?: { size: number; materialize: Materialize },
    part?: { offset: number; length: number },
  ) {
    this.#memory = memory;
    this.#pending = pending?.materialize;
    this.#part = part;
    this.#size = part?.length ?? pending?.size ?? memory?.byteLength ?? 0;
  }

  get bytes(): number {
    return this.#memory === undefined && this.#pending === undefined ? 0 : this.#size;
  }

  view(): Uint8Array {
    if (this.#pending !== undefined) {
      this.#materialize(this.#pending);
    }
    if (this.#memory === undefined) {
      throw new UsageError("disposed", `[host] buffer ${this.id} was freed`);
    }
    return this.#part === undefined ? new Uint8Array(this.#memory) : new Uint8Array(this.#memory, this.#part.offset, this.#part.length);
  }

  /** Runs the materializer once; its error is kept and thrown again by every later view. */
  #materialize(materialize: Materialize): void {
    if (this.#failed !== undefined) {
      throw this.#failed;
    }
    let bytes: Uint8Array;
    try {
      bytes = materialize();
      if (bytes.byteLength !== this.#size) {
        throw new UsageError("unsupported", `[host] buffer ${this.id} was made with ${bytes.byteLength} bytes, expected ${this.#size}`);
      }
    } catch (e) {
      this.#failed = e;
      throw e;
    }
    this.#pending = undefined;
    ({ memory: this.#memory, part: this.#part } = ownedBytes(bytes));
  }

  /** Forgets the memory and returns it for reuse (undefined when already freed, never made, or shared by a group). */
  release(): ArrayBuffer | undefined {
    const memory = this.#memory;
    this.#memory = undefined;
    this.#pending = undefined;
    return this.#part === undefined ? memory : undefined;
  }
}

/** Where adopted bytes live: an arena range in place (a part of its ArrayBuffer), else wholeBuffer's. */
function ownedBytes(bytes: Uint8Array): { memory: ArrayBuffer; part?: { offset: number; length: number } } {
  if (ARENA_BUFFERS.has(bytes.buffer)) {
    return { memory: bytes.buffer as ArrayBuffer, part: { offset: bytes.byteOffset, length: bytes.byteLength } };
  }
  return { memory: wholeBuffer(bytes) };
}

/** The ArrayBuffer a view spans whole, else a copy of the view's bytes. */
function wholeBuffer(bytes: Uint8Array): ArrayBuffer {
  const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
  return whole && bytes.buffer instanceof ArrayBuffer ? bytes.buffer : bytes.slice().buffer;
}

/** Bytes of each ArrayBuffer a ByteArena carves (a larger request gets one of its own). */
export const ARENA_CHUNK_BYTES = 64 << 20;
/** The ArrayBuffers ByteArenas carve: a lazily made buffer holding a range of one keeps the range, never a copy. */
const ARENA_BUFFERS = new WeakSet<ArrayBufferLike>();

/**
 * Fresh zeroed byte ranges carved one after another, 64-byte aligned, from shared ArrayBuffers of
 * ARENA_CHUNK_BYTES: for weights converted on first use (a model's ternary projections, 590 KiB – 4.4 MiB each), so
 * that the native backend fills their pages in 2 MiB transparent huge pages across neighbouring projections
 * (native/cpu/load.cc prefault_destination; why: docs/architecture.md, "First touch and huge pages"). A range is
 * never handed out twice; an ArrayBuffer lives while a view of it does. Untouched chunk bytes stay virtual.
 */
export class ByteArena {
  #chunk: ArrayBuffer | undefined;
  #used = 0;

  take(bytes: number): Uint8Array {
    if (!Number.isSafeInteger(bytes) || bytes < 0) {
      throw new UsageError("unsupported", `[arena] cannot allocate ${bytes} bytes`);
    }
    if (bytes > ARENA_CHUNK_BYTES / 2) {
      const own = new ArrayBuffer(bytes);
      ARENA_BUFFERS.add(own);
      return new Uint8Array(own);
    }
    if (this.#chunk === undefined || this.#used + bytes > this.#chunk.byteLength) {
      this.#chunk = new ArrayBuffer(ARENA_CHUNK_BYTES);
      ARENA_BUFFERS.add(this.#chunk);
      this.#used = 0;
    }
    const view = new Uint8Array(this.#chunk, this.#used, bytes);
    this.#used = groupAligned(this.#used + bytes);
    return view;
  }
}

/**
 * Largest buffer kept for reuse after free: prefill activations (e.g. 512 × 6912 f32 = 14 MiB) are
 * reused step after step instead of waiting for the GC, which raised 512-token prefill speed by about a
 * third and lowered peak RSS in the bench. Weights are larger and never freed while a model is loaded.
 */
const POOL_MAX_BUFFER_BYTES = 32 << 20;
/** Most bytes held in the reuse pool of one memory (the bound on what reuse can add to RSS). */
const POOL_MAX_BYTES = 128 << 20;
/** Where each buffer of a group starts: a multiple of this many bytes (a cache line, as SIMD rows like). */
export const GROUP_ALIGN_BYTES = 64;
/** `n` rounded up to a multiple of GROUP_ALIGN_BYTES (where the next buffer of a group or arena starts). */
const groupAligned = (n: number): number => Math.ceil(n / GROUP_ALIGN_BYTES) * GROUP_ALIGN_BYTES;

/**
 * Host buffers as plain ArrayBuffers, with allocation accounting. Used by the JS and native
 * backends; the WASM backend has its own allocator inside its linear memory.
 */
export class ArrayBufferMemory implements BufferMemory {
  readonly kind = "host" as const;
  readonly #live = new Map<number, ArrayBufferBuffer>();
  /** Freed small ArrayBuffers by size, reused by the next alloc of that size (activations repeat every step). */
  readonly #pool = new Map<number, ArrayBuffer[]>();
  #pooledBytes = 0;
  #nextId = 1;
  #liveBytes = 0;

  constructor(readonly name: string) {}

  alloc(bytes: number): HostBuffer {
    if (!Number.isSafeInteger(bytes) || bytes < 0) {
      throw new UsageError("unsupported", `[${this.name}] cannot allocate ${bytes} bytes`);
    }
    const reused = this.#pool.get(bytes)?.pop();
    if (reused !== undefined) {
      this.#pooledBytes -= bytes;
      new Uint8Array(reused).fill(0);
      return this.#track(new ArrayBufferBuffer(this.#nextId++, reused));
    }
    return this.#track(new ArrayBufferBuffer(this.#nextId++, new ArrayBuffer(bytes)));
  }

  /**
   * Zeroed buffers of `sizes` bytes, each starting at a multiple of GROUP_ALIGN_BYTES in one fresh ArrayBuffer
   * (a KV cache's layers: the native backend advises whole 2 MiB windows of one ArrayBuffer into transparent huge
   * pages, native/cpu/layers.cc prefault_rows, so short layers share huge pages). Each is freed on its own; the
   * ArrayBuffer goes with the last view of it. Never recycled through the pool.
   */
  allocGroup(sizes: readonly number[]): HostBuffer[] {
    let total = 0;
    const parts = sizes.map((length) => {
      if (!Number.isSafeInteger(length) || length < 0) {
        throw new UsageError("unsupported", `[${this.name}] cannot allocate ${length} bytes`);
      }
      const offset = total;
      total = groupAligned(offset + length);
      if (!Number.isSafeInteger(total)) {
        throw new UsageError("unsupported", `[${this.name}] cannot allocate a group of ${sizes.length} buffers this large`);
      }
      return { offset, length };
    });
    const memory = new ArrayBuffer(total);
    return parts.map((part) => this.#track(new ArrayBufferBuffer(this.#nextId++, memory, undefined, part)));
  }

  /** Takes over a view that spans its whole (non-shared) ArrayBuffer or an arena range (ByteArena); copies anything else. */
  adopt(bytes: Uint8Array): HostBuffer {
    const { memory, part } = ownedBytes(bytes);
    return this.#track(new ArrayBufferBuffer(this.#nextId++, memory, undefined, part));
  }

  /**
   * A buffer of `size` bytes that `materialize` makes the first time anything views it (a weight converted on
   * first use instead of at load). Its bytes are adopted like `adopt`'s; an error it throws is thrown by that view
   * and every later one. Counted as `size` live bytes from now on.
   */
  adoptLazy(size: number, materialize: Materialize): HostBuffer {
    if (!Number.isSafeInteger(size) || size < 0) {
      throw new UsageError("unsupported", `[${this.name}] cannot adopt ${size} bytes`);
    }
    return this.#track(new ArrayBufferBuffer(this.#nextId++, undefined, { size, materialize }));
  }

  free(buffer: BufferHandle): boolean {
    const own = this.#live.get(buffer.id);
    if (own === undefined || own !== buffer) {
      return false;
    }
    this.#live.delete(buffer.id);
    this.#liveBytes -= own.bytes;
    const memory = own.release();
    if (memory !== undefined) {
      this.#recycle(memory);
    }
    return true;
  }

  /** Keeps a freed buffer for reuse when it is small and the pool has room; the old handle stays dead. */
  #recycle(memory: ArrayBuffer): void {
    const size = memory.byteLength;
    if (size === 0 || size > POOL_MAX_BUFFER_BYTES || this.#pooledBytes + size > POOL_MAX_BYTES) {
      return;
    }
    const list = this.#pool.get(size) ?? [];
    list.push(memory);
    this.#pool.set(size, list);
    this.#pooledBytes += size;
  }

  write(buffer: BufferHandle, src: Uint8Array, byteOffset = 0): void {
    hostBytes(buffer).set(src, byteOffset);
  }

  read(buffer: BufferHandle, byteOffset = 0, length?: number): Uint8Array {
    const bytes = hostBytes(buffer);
    return bytes.slice(byteOffset, length === undefined ? undefined : byteOffset + length);
  }

  readAsync(buffer: BufferHandle, byteOffset = 0, length?: number): Promise<Uint8Array> {
    try {
      return Promise.resolve(this.read(buffer, byteOffset, length));
    } catch (error) {
      return Promise.reject(error as Error);
    }
  }

  holds(buffer: BufferHandle): boolean {
    return this.#live.get(buffer.id) === buffer;
  }

  liveAllocations(): number {
    return this.#live.size;
  }

  liveBytes(): number {
    return this.#liveBytes;
  }

  #track(buffer: ArrayBufferBuffer): HostBuffer {
    this.#live.set(buffer.id, buffer);
    this.#liveBytes += buffer.bytes;
    return buffer;
  }
}
