/**
 * The key/value cache of one sequence: per layer, K and V of every position seen so far, f32
 * [ctx, kvHead, headDim], allocated once for the capacity and filled from the front.
 */
import type { Backend } from "../../backends/backend.js";
import { ShapeError } from "../../core/errors.js";
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

export class KvCache implements Disposable {
  readonly keys: readonly CacheTensor[];
  readonly values: readonly CacheTensor[];
  #length = 0;

  constructor(
    config: BitnetConfig,
    readonly capacity: number,
    readonly backend: Backend,
  ) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) {
      throw new ShapeError("size", `[kv-cache] capacity ${capacity} is not a positive integer`);
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
