/**
 * The key/value cache of one sequence: per layer, K and V of every position seen so far, [ctx, kvHead, headDim]
 * in the cache's dtype, allocated once for the capacity and filled from the front.
 *
 * The dtype (llama.cpp's `-ctk/-ctv`): "f32" (default), "f16" (each value rounded to binary16, nearest even) or
 * "q8_0" (blocks of 32 along headDim, an f16 scale per block, rounded as llama.cpp's quantize_row_q8_0 reference;
 * headDim must be a multiple of 32). Rows are rounded when stored and read decoded by attention, so f16 halves and
 * q8_0 cuts to 34/128 the bytes a decode step streams per position (docs/kv-cache.md). f16 and q8_0 caches need a
 * host-memory backend (the CPU backends): a device backend is refused with a UsageError.
 *
 * Rows can be copied between caches of one model (`copyPrefix`, `KvCache.prefixOf`): a chat session and the
 * server's prompt cache (src/engine/prompt-cache.ts) reuse the rows of a shared token prefix instead of
 * computing them again. A row depends on every token before it, so only a prefix is ever reused.
 */
import type { Backend } from "../../backends/backend.js";
import { storageBytes } from "../../backends/storage.js";
import { ShapeError, UsageError, ValueError } from "../../core/errors.js";
import { KV_CACHE_DTYPES, type KvCacheDType } from "../../quant/dtypes.js";
import { QUANT_TRAITS } from "../../quant/table.js";
import { slice } from "../../tensor/ops/shape.js";
import { allocTensor, allocTensors, fill, type Tensor } from "../../tensor/tensor.js";
import type { BitnetConfig } from "./config.js";

export { KV_CACHE_DTYPES, type KvCacheDType };

/** Elements per q8_0 block (the codec's): a q8_0 cache needs headDim to be a multiple of it. */
export const KV_Q8_0_BLOCK = QUANT_TRAITS.q8_0.blockSize;

export type CacheTensor = Tensor<KvCacheDType, ["ctx", "kvHead", "headDim"]>;

/** `value` as a KV cache dtype; a ValueError "out-of-range" naming the accepted ones otherwise. */
export function parseKvCacheDType(value: string): KvCacheDType {
  const found = KV_CACHE_DTYPES.find((d) => d === value);
  if (found === undefined) {
    throw new ValueError("out-of-range", `[kv-cache] unknown KV cache type ${JSON.stringify(value.slice(0, 32))}: use ${KV_CACHE_DTYPES.join(", ")}`);
  }
  return found;
}

/** Bytes one [kvHead, headDim] row of K (or V) takes in a cache of this dtype (the tensors' own storage size). */
function rowBytes(config: Pick<BitnetConfig, "kvHeads" | "headDim">, dtype: KvCacheDType): number {
  return storageBytes(dtype, [config.kvHeads, config.headDim]);
}

/** Thrown (code "bounds") when a step would run past the cache capacity. */
export class ContextFullError extends ShapeError {
  constructor(
    readonly needed: number,
    readonly capacity: number,
  ) {
    super("bounds", `[kv-cache] ${needed} positions do not fit the context of ${capacity}`);
    this.name = "ContextFullError";
  }
}

/** Bytes of K and V that one position takes in a cache of this model and dtype (default f32), over every layer. */
export function kvBytesPerPosition(config: Pick<BitnetConfig, "layers" | "kvHeads" | "headDim">, dtype: KvCacheDType = "f32"): number {
  return config.layers * 2 * rowBytes(config, dtype);
}

export class KvCache implements Disposable {
  readonly keys: readonly CacheTensor[];
  readonly values: readonly CacheTensor[];
  /** Bytes one position takes (K and V of every layer). */
  readonly bytesPerPosition: number;
  #length = 0;

  /**
   * An empty cache for `capacity` positions of `dtype` (default f32); `rows` (internal) adopts tensors already
   * filled instead.
   */
  constructor(
    config: BitnetConfig,
    readonly capacity: number,
    readonly backend: Backend,
    readonly dtype: KvCacheDType = "f32",
    rows?: { keys: CacheTensor[]; values: CacheTensor[]; length: number },
  ) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) {
      throw new ShapeError("size", `[kv-cache] capacity ${capacity} is not a positive integer`);
    }
    parseKvCacheDType(dtype);
    if (dtype !== "f32" && backend.memoryKind !== "host") {
      throw new UsageError("unsupported", `[kv-cache] a ${dtype} KV cache needs a CPU backend; ${backend.name} keeps f32 caches only`);
    }
    if (dtype === "q8_0" && config.headDim % KV_Q8_0_BLOCK !== 0) {
      throw new ShapeError("size", `[kv-cache] a q8_0 KV cache needs headDim to be a multiple of ${KV_Q8_0_BLOCK}, got ${config.headDim}`);
    }
    this.bytesPerPosition = kvBytesPerPosition(config, dtype);
    if (rows !== undefined) {
      this.keys = rows.keys;
      this.values = rows.values;
      this.#length = rows.length;
      return;
    }
    // One allocation, layer by layer (K then V), where the backend groups buffers: the native backend backs it
    // with huge pages as rows are written (native/cpu/layers.cc prefault_rows).
    const rowsOf: CacheTensor[] = allocTensors(backend, dtype, ["ctx", "kvHead", "headDim"], [capacity, config.kvHeads, config.headDim], 2 * config.layers);
    this.keys = rowsOf.filter((_, i) => i % 2 === 0);
    this.values = rowsOf.filter((_, i) => i % 2 === 1);
  }

  /** Bytes this cache holds (its capacity, filled or not). */
  get bytes(): number {
    return this.capacity * this.bytesPerPosition;
  }

  /**
   * A new cache of exactly `rows` positions holding a copy of the first `rows` positions of `source`
   * (for keeping a prefix without the capacity around it).
   */
  static prefixOf(config: BitnetConfig, source: KvCache, rows: number): KvCache {
    source.#checkRows(config, rows);
    const keys: CacheTensor[] = [];
    const values: CacheTensor[] = [];
    try {
      for (let l = 0; l < source.keys.length; l++) {
        keys.push(source.#prefix(source.keys[l] as CacheTensor, rows));
        values.push(source.#prefix(source.values[l] as CacheTensor, rows));
      }
    } catch (e) {
      [...keys, ...values].forEach((t) => t.dispose());
      throw e;
    }
    return new KvCache(config, rows, source.backend, source.dtype, { keys, values, length: rows });
  }

  /** The first `rows` positions of one layer's K or V as a tensor of their own. */
  #prefix(t: CacheTensor, rows: number): CacheTensor {
    if (this.dtype === "f32") {
      return slice(t as Tensor<"f32", ["ctx", "kvHead", "headDim"]>, "ctx", 0, rows);
    }
    // Block rows (host memory): a byte copy of the prefix.
    const out = allocTensor(this.backend, this.dtype, t.dims, [rows, t.shape[1], t.shape[2]]);
    const bytes = rows * (this.bytesPerPosition / (2 * this.keys.length));
    return fill(out, () => this.backend.write(out.ref().buffer, this.backend.read(t.ref().buffer, 0, bytes), 0));
  }

  /**
   * Replaces this cache's content with the first `rows` positions of `source` (a cache of the same model
   * on the same backend); the length becomes `rows`. The copied rows are the same bits as the source's.
   */
  copyPrefix(config: BitnetConfig, source: KvCache, rows: number): void {
    source.#checkRows(config, rows);
    if (source.backend !== this.backend || source.dtype !== this.dtype || source.bytesPerPosition !== this.bytesPerPosition || rows > this.capacity) {
      throw new ShapeError("size", `[kv-cache] cannot copy ${rows} positions into a cache of ${this.capacity} for another model or backend`);
    }
    this.#length = 0;
    for (let l = 0; l < this.keys.length; l++) {
      for (const [from, to] of [
        [source.keys[l], this.keys[l]],
        [source.values[l], this.values[l]],
      ] as const) {
        if (from === undefined || to === undefined) {
          throw new ShapeError("bounds", `[kv-cache] no layer ${l}`);
        }
        if (rows === from.shape[0]) {
          this.backend.kernels.writeRows(from.ref(), to.ref(), 0);
        } else {
          using part = source.#prefix(from, rows);
          this.backend.kernels.writeRows(part.ref(), to.ref(), 0);
        }
      }
    }
    this.#length = rows;
  }

  #checkRows(config: BitnetConfig, rows: number): void {
    if (!Number.isSafeInteger(rows) || rows < 1 || rows > this.#length) {
      throw new ShapeError("bounds", `[kv-cache] cannot take ${rows} positions of a cache holding ${this.#length}`);
    }
    if (kvBytesPerPosition(config, this.dtype) !== this.bytesPerPosition || config.layers !== this.keys.length) {
      throw new ShapeError("size", "[kv-cache] the cache belongs to another model");
    }
  }

  /** Positions filled so far; the next token goes to this position. */
  get length(): number {
    return this.#length;
  }

  /** Throws ContextFullError unless `count` more positions fit. */
  reserve(count: number): void {
    if (this.#length + count > this.capacity) {
      throw new ContextFullError(this.#length + count, this.capacity);
    }
  }

  /**
   * Writes one layer's new K and V rows [seq, kvHead, headDim] (f32) at the current length, rounded to the
   * cache's dtype (f16, q8_0: through the format's reference codec, src/quant/formats).
   */
  write(layer: number, k: Tensor<"f32", readonly [string, string, string]>, v: Tensor<"f32", readonly [string, string, string]>): void {
    const keys = this.keys[layer];
    const values = this.values[layer];
    if (keys === undefined || values === undefined) {
      throw new ShapeError("bounds", `[kv-cache] no layer ${layer}`);
    }
    if (this.dtype === "f32") {
      this.backend.kernels.writeRows(k.ref(), keys.ref(), this.#length);
      this.backend.kernels.writeRows(v.ref(), values.ref(), this.#length);
      return;
    }
    for (const [src, dst] of [
      [k, keys],
      [v, values],
    ] as const) {
      const [seq, heads, dim] = src.shape;
      if (heads !== dst.shape[1] || dim !== dst.shape[2] || this.#length + seq > this.capacity) {
        throw new ShapeError("size", `[kv-cache] cannot write ${src.describe()} at ${this.#length} of ${dst.describe()}`);
      }
      const ref = src.ref();
      const f32 = this.backend.read(ref.buffer, 0, seq * heads * dim * 4);
      const values32 = new Float32Array(f32.buffer, f32.byteOffset, seq * heads * dim);
      const encoded = QUANT_TRAITS[this.dtype].encode(values32, seq * heads, dim);
      this.backend.write(dst.ref().buffer, encoded, this.#length * (encoded.length / seq));
    }
  }

  /** Marks `count` more positions as filled (after every layer has written them). */
  advance(count: number): void {
    this.reserve(count);
    this.#length += count;
  }

  /** Forgets positions from `length` on (e.g. to reuse a shared prompt prefix). */
  truncate(length: number): void {
    if (!Number.isSafeInteger(length) || length < 0 || length > this.#length) {
      throw new ShapeError("bounds", `[kv-cache] cannot truncate ${this.#length} positions to ${length}`);
    }
    this.#length = length;
  }

  dispose(): void {
    [...this.keys, ...this.values].forEach((t) => t.dispose());
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
