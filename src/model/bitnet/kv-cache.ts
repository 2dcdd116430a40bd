/**
 * The key/value cache of one sequence: per layer, K and V of every position seen so far, f32
 * [ctx, kvHead, headDim], allocated once for the capacity and filled from the front.
 *
 * Rows can be copied between caches of one model (`copyPrefix`, `KvCache.prefixOf`): a chat session and the
 * server's prompt cache (src/engine/prompt-cache.ts) reuse the rows of a shared token prefix instead of
 * computing them again. A row depends on every token before it, so only a prefix is ever reused.
 */
import type { Backend } from "../../backends/backend.js";
import { ShapeError } from "../../core/errors.js";
import { slice } from "../../tensor/ops/shape.js";
import { zeros, type Tensor } from "../../tensor/tensor.js";
import type { BitnetConfig } from "./config.js";

export type CacheTensor = Tensor<"f32", ["ctx", "kvHead", "headDim"]>;

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

/** Bytes of K and V (f32) that one position takes in a cache of this model, over every layer. */
export function kvBytesPerPosition(config: Pick<BitnetConfig, "layers" | "kvHeads" | "headDim">): number {
  return config.layers * 2 * config.kvHeads * config.headDim * 4;
}

export class KvCache implements Disposable {
  readonly keys: readonly CacheTensor[];
  readonly values: readonly CacheTensor[];
  /** Bytes one position takes (K and V of every layer). */
  readonly bytesPerPosition: number;
  #length = 0;

  /** An empty cache for `capacity` positions; `rows` (internal) adopts tensors already filled instead. */
  constructor(
    config: BitnetConfig,
    readonly capacity: number,
    readonly backend: Backend,
    rows?: { keys: CacheTensor[]; values: CacheTensor[]; length: number },
  ) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) {
      throw new ShapeError("size", `[kv-cache] capacity ${capacity} is not a positive integer`);
    }
    this.bytesPerPosition = kvBytesPerPosition(config);
    if (rows !== undefined) {
      this.keys = rows.keys;
      this.values = rows.values;
      this.#length = rows.length;
      return;
    }
    const shape = [capacity, config.kvHeads, config.headDim] as const;
    const keys: CacheTensor[] = [];
    const values: CacheTensor[] = [];
    try {
      for (let l = 0; l < config.layers; l++) {
        keys.push(zeros(["ctx", "kvHead", "headDim"], shape, { backend }));
        values.push(zeros(["ctx", "kvHead", "headDim"], shape, { backend }));
      }
    } catch (e) {
      [...keys, ...values].forEach((t) => t.dispose());
      throw e;
    }
    this.keys = keys;
    this.values = values;
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
        keys.push(slice(source.keys[l] as CacheTensor, "ctx", 0, rows));
        values.push(slice(source.values[l] as CacheTensor, "ctx", 0, rows));
      }
    } catch (e) {
      [...keys, ...values].forEach((t) => t.dispose());
      throw e;
    }
    return new KvCache(config, rows, source.backend, { keys, values, length: rows });
  }

  /**
   * Replaces this cache's content with the first `rows` positions of `source` (a cache of the same model
   * on the same backend); the length becomes `rows`. The copied rows are the same bits as the source's.
   */
  copyPrefix(config: BitnetConfig, source: KvCache, rows: number): void {
    source.#checkRows(config, rows);
    if (source.backend !== this.backend || source.bytesPerPosition !== this.bytesPerPosition || rows > this.capacity) {
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
          using part = slice(from, "ctx", 0, rows);
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
    if (kvBytesPerPosition(config) !== this.bytesPerPosition || config.layers !== this.keys.length) {
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

  /** Writes one layer's new K and V rows [seq, kvHead, headDim] at the current length. */
  write(layer: number, k: Tensor<"f32", readonly [string, string, string]>, v: Tensor<"f32", readonly [string, string, string]>): void {
    const keys = this.keys[layer];
    const values = this.values[layer];
    if (keys === undefined || values === undefined) {
      throw new ShapeError("bounds", `[kv-cache] no layer ${layer}`);
    }
    this.backend.kernels.writeRows(k.ref(), keys.ref(), this.#length);
    this.backend.kernels.writeRows(v.ref(), values.ref(), this.#length);
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
