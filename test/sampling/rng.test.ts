import { describe, expect, it } from "vitest";
import { ValueError } from "../../src/core/errors.js";
import { createRng, Rng } from "../../src/model/sampling/rng.js";

function take(seed: number, n: number): number[] {
  const rng = createRng(seed);
  return Array.from({ length: n }, () => rng.next());
}

describe("createRng", () => {
  it("gives the same stream for the same seed", () => {
    expect(take(1234, 1000)).toEqual(take(1234, 1000));
  });

  it("keeps its stream stable across versions (golden values for seed 42)", () => {
    const rng = createRng(42);
    const words = Array.from({ length: 4 }, () => rng.nextUint32());
    // mulberry32, cross-checked against a separate implementation in Python's unbounded integers masked to 32
    // bits. (Until issue 16 the sampler had its own xoshiro128**, whose seed-42 words were arbitrary pins too.)
    expect(words).toEqual([2581720956, 1925393290, 3661312704, 2876485805]);
  });

  it("is training's generator: a seed below 2^32 is the state, and a saved state continues the sequence", () => {
    const a = createRng(7);
    const b = new Rng(7);
    for (let i = 0; i < 100; i++) {
      expect(a.next()).toBe(b.next());
    }
    const resumed = new Rng(a.state);
    expect(Array.from({ length: 8 }, () => resumed.below(1000))).toEqual(Array.from({ length: 8 }, () => a.below(1000)));
    expect(new Rng(2 ** 32 + 5).state).toBe(5);
  });

  it("gives different streams for seeds that differ only in the low or only in the high 32 bits", () => {
    const seeds = [0, 1, 2, 2 ** 32, 2 ** 32 + 1, Number.MAX_SAFE_INTEGER];
    const firsts = new Set(seeds.map((s) => take(s, 4).join(",")));
    expect(firsts.size).toBe(seeds.length);
  });

  it("returns numbers in [0, 1) and unsigned 32-bit words in [0, 2^32)", () => {
    const rng = createRng(7);
    for (let i = 0; i < 10_000; i++) {
      const x = rng.next();
      expect(x >= 0 && x < 1).toBe(true);
      const w = rng.nextUint32();
      expect(Number.isInteger(w) && w >= 0 && w < 2 ** 32).toBe(true);
    }
  });

  it("fills 16 equal buckets evenly over 160,000 draws (chi-square well under its 99.99% bound)", () => {
    const buckets = new Array<number>(16).fill(0);
    const rng = createRng(2024);
    const n = 160_000;
    for (let i = 0; i < n; i++) {
      const b = Math.floor(rng.next() * 16);
      buckets[b] = (buckets[b] ?? 0) + 1;
    }
    const expected = n / 16;
    const chi2 = buckets.reduce((acc, c) => acc + (c - expected) ** 2 / expected, 0);
    expect(chi2).toBeLessThan(44); // df = 15: p = 0.0001 at about 44.3
  });

  it("uses low bits as well as high bits (the lowest bit of the words is balanced)", () => {
    const rng = createRng(99);
    let ones = 0;
    for (let i = 0; i < 20_000; i++) {
      ones += rng.nextUint32() & 1;
    }
    expect(Math.abs(ones - 10_000)).toBeLessThan(600);
  });

  it.each([-1, 1.5, Number.NaN, 2 ** 53, Number.POSITIVE_INFINITY])(
    "rejects seed %s with an out-of-range ValueError",
    (seed) => {
      expect(() => createRng(seed)).toThrow(ValueError);
      expect(() => createRng(seed)).toThrow(/seed/);
    },
  );
});
