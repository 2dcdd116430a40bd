/**
 * Seeded pseudo-random numbers for sampling: xoshiro128** (Blackman and Vigna) with its 128-bit state filled
 * from the seed by a splitmix-style 32-bit mixer. All arithmetic is 32-bit (`Math.imul`, `>>>`), so the stream is
 * the same on every JS engine and platform: the same seed always gives the same sequence of numbers.
 */
import { ValueError } from "../../core/errors.js";

/** A stream of uniform random numbers. */
export interface Rng {
  /** The next number, uniform in [0, 1), with 53 random bits (the full precision of a double). */
  next(): number;
  /** The next 32 random bits as an unsigned integer in [0, 2^32). */
  nextUint32(): number;
}

const TWO_POW_32 = 0x1_0000_0000;
const TWO_POW_53 = 2 ** 53;

/** One step of a splitmix-style generator over 32-bit words: a Weyl increment, then an avalanche mix. */
function mixer(seedWord: number): () => number {
  let state = seedWord | 0;
  return () => {
    state = (state + 0x9e3779b9) | 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/**
 * A seeded generator. `seed` is any non-negative safe integer (0 ≤ seed < 2^53); both its low and high 32-bit halves
 * reach the state, so seeds that differ only above bit 32 give different streams.
 *
 * @throws ValueError code "out-of-range" when the seed is not a non-negative safe integer.
 */
export function createRng(seed: number): Rng {
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new ValueError("out-of-range", `[rng] seed must be a non-negative safe integer, got ${String(seed)}`);
  }
  const low = seed >>> 0;
  const high = Math.floor(seed / TWO_POW_32) >>> 0;
  // Mixing the high half into the mixer's start keeps seeds 1 and 2^32 + 1 apart.
  const fill = mixer(low ^ Math.imul(high, 0x27d4eb2f) ^ 0x5bd1e995);
  let s0 = fill();
  let s1 = fill();
  let s2 = fill();
  let s3 = fill() ^ high;
  if ((s0 | s1 | s2 | s3) === 0) {
    // xoshiro's all-zero state is a fixed point; any non-zero word escapes it.
    s0 = 1;
  }

  const nextUint32 = (): number => {
    const product = Math.imul(s1, 5);
    const result = Math.imul((product << 7) | (product >>> 25), 9) >>> 0;
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = (s3 << 11) | (s3 >>> 21);
    return result;
  };

  return {
    nextUint32,
    next(): number {
      const hi = nextUint32() >>> 5; // 27 bits
      const lo = nextUint32() >>> 6; // 26 bits
      return (hi * 0x400_0000 + lo) / TWO_POW_53;
    },
  };
}
