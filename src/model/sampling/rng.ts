/**
 * barbell's one seeded PRNG: mulberry32 (Tommy Ettinger), whose whole state is one uint32. It draws the
 * sampler's random numbers, training's initialization and data order (a checkpoint stores `state` exactly, so
 * a resumed run draws the same numbers), the test and bench fixtures' weights, and seeded fault plans. All
 * arithmetic is 32-bit (`Math.imul`, `>>>`), so the stream is the same on every JS engine and platform.
 *
 * It was kept over the sampler's former xoshiro128** because the shipped models/barbell-kjv.gguf (trained with
 * seeds 1 and 2), the checkpoint format and every golden fixture depend on its sequence; a 2^32 period is far
 * more than one generation or training run draws.
 */
import { ValueError } from "../../core/errors.js";

const TWO_POW_32 = 0x1_0000_0000;

/** A stream of uniform random numbers. */
export class Rng {
  #state: number;

  /** Starts from a uint32 state (a seed below 2^32, or a saved `state`); other numbers are taken modulo 2^32. */
  constructor(state: number) {
    this.#state = state >>> 0;
  }

  /** The state (a uint32): `new Rng(rng.state)` continues the same sequence. */
  get state(): number {
    return this.#state;
  }

  /** The next 32 random bits as an unsigned integer in [0, 2^32). */
  nextUint32(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform in [0, 1), in steps of 2^-32. */
  next(): number {
    return this.nextUint32() / TWO_POW_32;
  }

  /** An integer in [0, n). */
  below(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** A standard normal (Box–Muller). */
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
}

/**
 * A generator for a user's seed: any non-negative safe integer (0 ≤ seed < 2^53). Seeds below 2^32 are the
 * state itself (`createRng(s)` and `new Rng(s)` agree); the high half of a larger seed is mixed in, so seeds
 * that differ only above bit 32 give different streams (32 bits of state cannot keep every pair apart).
 *
 * @throws ValueError code "out-of-range" when the seed is not a non-negative safe integer.
 */
export function createRng(seed: number): Rng {
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new ValueError("out-of-range", `[rng] seed must be a non-negative safe integer, got ${String(seed)}`);
  }
  const high = Math.floor(seed / TWO_POW_32) >>> 0;
  return new Rng((seed >>> 0) ^ Math.imul(high, 0x27d4eb2f));
}
