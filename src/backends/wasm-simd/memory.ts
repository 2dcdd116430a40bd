/**
 * Buffer memory inside a WebAssembly linear memory: a first-fit allocator with a sorted, coalescing free
 * list, 64-byte aligned blocks, and growth on demand up to a named limit. Buffers are host buffers whose
 * `view()` is re-derived from the memory's current ArrayBuffer on every call, because `memory.grow`
 * detaches the old one.
 */
import { UsageError } from "../../core/errors.js";
import type { BufferHandle, BufferMemory } from "../backend.js";
import type { HostBuffer } from "../host-memory.js";
import type { WasmMemory } from "./wasm-api.js";

/** Bytes per WebAssembly page. */
export const WASM_PAGE_BYTES = 65536;

/** The most a wasm32 memory can hold: 65536 pages (4 GiB). */
export const WASM32_MAX_BYTES = 65536 * WASM_PAGE_BYTES;

/** Alignment (and size granularity) of every block. */
export const WASM_ALIGN = 64;

/** Memory is grown in steps of at least this many bytes (fewer grow calls while weights load). */
const GROW_STEP_BYTES = 16 * WASM_PAGE_BYTES;

const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a;

/** A buffer of a {@link WasmBufferMemory}: `bytes` bytes at byte `offset` of the linear memory. */
export class WasmBuffer implements HostBuffer {
  #live = true;

  constructor(
    readonly id: number,
    readonly bytes: number,
    /** Byte offset in the linear memory (a multiple of 64). */
    readonly offset: number,
    /** Block size reserved for it (≥ bytes, a multiple of 64). */
    readonly reserved: number,
    readonly owner: WasmBufferMemory,
  ) {}

  get live(): boolean {
    return this.#live;
  }

  view(): Uint8Array {
    if (!this.#live) {
      throw new UsageError("disposed", `[wasm-simd] buffer ${this.id} was freed`);
    }
    return new Uint8Array(this.owner.memory.buffer, this.offset, this.bytes);
  }

  /** Marks the buffer freed; its views throw from now on. */
  release(): void {
    this.#live = false;
  }
}

/** Options of a {@link WasmBufferMemory}. */
export interface WasmMemoryOptions {
  /** Upper bound of the linear memory in bytes (rounded down to whole pages); default and maximum 4 GiB. */
  readonly maxBytes?: number;
}

/**
 * The allocator. Bytes [0, base) are reserved for the module's static data; blocks are carved from
 * [base, top) and the free list, and `top` moves up (growing the memory) when nothing on the list fits.
 */
export class WasmBufferMemory implements BufferMemory {
  readonly kind = "host" as const;
  readonly memory: WasmMemory;
  /** Largest size the memory may reach, in bytes. */
  readonly limitBytes: number;
  readonly #live = new Map<number, WasmBuffer>();
  /** Free blocks [offset, size], sorted by offset, never adjacent to each other or to `top`. */
  readonly #free: [number, number][] = [];
  #top: number;
  #nextId = 1;
  #liveBytes = 0;

  constructor(memory: WasmMemory, base: number, options: WasmMemoryOptions = {}) {
    this.memory = memory;
    const requested = options.maxBytes ?? WASM32_MAX_BYTES;
    this.limitBytes = Math.floor(Math.min(requested, WASM32_MAX_BYTES) / WASM_PAGE_BYTES) * WASM_PAGE_BYTES;
    this.#top = alignUp(base, WASM_ALIGN);
  }

  /** Current size of the linear memory in bytes. */
  get capacity(): number {
    return this.memory.buffer.byteLength;
  }

  /** End of the highest block in use (the high-water mark of the heap). */
  get top(): number {
    return this.#top;
  }

  alloc(bytes: number): WasmBuffer {
    const buffer = this.#allocate(bytes);
    new Uint8Array(this.memory.buffer, buffer.offset, buffer.reserved).fill(0);
    return buffer;
  }

  /** Copies `bytes` into a new buffer (a wasm memory cannot alias an outside ArrayBuffer). */
  adopt(bytes: Uint8Array): WasmBuffer {
    const buffer = this.#allocate(bytes.byteLength);
    new Uint8Array(this.memory.buffer, buffer.offset, buffer.bytes).set(bytes);
    return buffer;
  }

  free(buffer: BufferHandle): boolean {
    const own = this.#live.get(buffer.id);
    if (own === undefined || own !== buffer) {
      return false;
    }
    this.#live.delete(own.id);
    this.#liveBytes -= own.bytes;
    own.release();
    this.releaseBlock(own.offset, own.reserved);
    return true;
  }

  write(buffer: BufferHandle, src: Uint8Array, byteOffset = 0): void {
    const own = this.#expectOwn(buffer);
    if (byteOffset < 0 || byteOffset + src.byteLength > own.bytes) {
      throw new UsageError("unsupported", `[wasm-simd] write of ${src.byteLength} bytes at ${byteOffset} overruns buffer ${own.id}`);
    }
    own.view().set(src, byteOffset);
  }

  read(buffer: BufferHandle, byteOffset = 0, length?: number): Uint8Array {
    const own = this.#expectOwn(buffer);
    return own.view().slice(byteOffset, length === undefined ? undefined : byteOffset + length);
  }

  readAsync(buffer: BufferHandle, byteOffset = 0, length?: number): Promise<Uint8Array> {
    try {
      return Promise.resolve(this.read(buffer, byteOffset, length));
    } catch (error) {
      return Promise.reject(error as Error);
    }
  }

  holds(buffer: BufferHandle): boolean {
    return this.own(buffer) !== undefined;
  }

  liveAllocations(): number {
    return this.#live.size;
  }

  liveBytes(): number {
    return this.#liveBytes;
  }

  /** The buffer as one of this memory's live buffers, or undefined. */
  own(buffer: BufferHandle): WasmBuffer | undefined {
    const own = this.#live.get(buffer.id);
    return own === buffer ? own : undefined;
  }

  /**
   * Reserves an untracked block (kernel scratch): returns its offset. Not counted by liveAllocations;
   * give it back with releaseBlock(offset, size).
   */
  reserveBlock(bytes: number): number {
    return this.#carve(alignUp(Math.max(bytes, 1), WASM_ALIGN), bytes);
  }

  /** Returns a block to the free list, merging it with free neighbours (and with the top). */
  releaseBlock(offset: number, size: number): void {
    const list = this.#free;
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((list[mid]?.[0] ?? 0) < offset) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    let start = offset;
    let end = offset + size;
    let at = lo;
    const prev = list[at - 1];
    if (prev !== undefined && prev[0] + prev[1] === start) {
      start = prev[0];
      at--;
      list.splice(at, 1);
    }
    const next = list[at];
    if (next !== undefined && next[0] === end) {
      end = next[0] + next[1];
      list.splice(at, 1);
    }
    if (end === this.#top) {
      this.#top = start;
    } else {
      list.splice(at, 0, [start, end - start]);
    }
  }

  #allocate(bytes: number): WasmBuffer {
    if (!Number.isSafeInteger(bytes) || bytes < 0) {
      throw new UsageError("unsupported", `[wasm-simd] cannot allocate ${bytes} bytes`);
    }
    const reserved = alignUp(Math.max(bytes, 1), WASM_ALIGN);
    const offset = this.#carve(reserved, bytes);
    const buffer = new WasmBuffer(this.#nextId++, bytes, offset, reserved, this);
    this.#live.set(buffer.id, buffer);
    this.#liveBytes += bytes;
    return buffer;
  }

  /** First fit from the free list, else from the top (growing the memory). */
  #carve(reserved: number, requested: number): number {
    const list = this.#free;
    for (let i = 0; i < list.length; i++) {
      const block = list[i];
      if (block === undefined || block[1] < reserved) {
        continue;
      }
      const offset = block[0];
      if (block[1] === reserved) {
        list.splice(i, 1);
      } else {
        block[0] += reserved;
        block[1] -= reserved;
      }
      return offset;
    }
    const offset = this.#top;
    const end = offset + reserved;
    if (end > this.limitBytes) {
      throw new UsageError(
        "unsupported",
        `[wasm-simd] out of memory: cannot allocate ${requested} bytes; ${this.#liveBytes} bytes are live and the ` +
          `linear memory is limited to ${this.limitBytes} bytes`,
      );
    }
    this.#ensureCapacity(end);
    this.#top = end;
    return offset;
  }

  #ensureCapacity(end: number): void {
    const capacity = this.capacity;
    if (end <= capacity) {
      return;
    }
    const wanted = Math.min(Math.max(end, capacity + GROW_STEP_BYTES), this.limitBytes);
    const pages = Math.ceil((wanted - capacity) / WASM_PAGE_BYTES);
    try {
      this.memory.grow(pages);
    } catch (cause) {
      throw new UsageError(
        "unsupported",
        `[wasm-simd] out of memory: the host refused to grow the linear memory to ${capacity + pages * WASM_PAGE_BYTES} ` +
          `bytes (${cause instanceof Error ? cause.message : String(cause)})`,
      );
    }
  }

  #expectOwn(buffer: BufferHandle): WasmBuffer {
    const own = this.own(buffer);
    if (own === undefined) {
      throw new UsageError("backend-mismatch", `[wasm-simd] buffer ${buffer.id} is not a live buffer of this memory`);
    }
    return own;
  }
}
