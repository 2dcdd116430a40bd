import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ValueError } from "../../src/core/errors.js";
import { createSampler, topLogprobs } from "../../src/model/sampling/sampler.js";
import type { SamplingOptions } from "../../src/model/sampling/options.js";

const logitsOf = (probs: readonly number[]): Float32Array => Float32Array.from(probs, (p) => Math.log(p));

/** Counts of each token over n draws. */
function histogram(options: SamplingOptions, logits: Float32Array, n: number, history: number[] = []): number[] {
  const sampler = createSampler(options);
  const counts = new Array<number>(logits.length).fill(0);
  for (let i = 0; i < n; i++) {
    const { token } = sampler.sample(logits, history);
    counts[token] = (counts[token] ?? 0) + 1;
  }
  return counts;
}

/** Pearson's chi-square of observed counts against expected probabilities (cells with p = 0 must be empty). */
function chiSquare(counts: readonly number[], probs: readonly number[]): number {
  const n = counts.reduce((a, b) => a + b, 0);
  let chi2 = 0;
  for (const [i, p] of probs.entries()) {
    const c = counts[i] ?? 0;
    if (p === 0) {
      expect(c, `token ${i} has probability 0`).toBe(0);
      continue;
    }
    chi2 += (c - n * p) ** 2 / (n * p);
  }
  return chi2;
}

function softmax(xs: readonly number[]): number[] {
  const max = Math.max(...xs);
  const e = xs.map((x) => Math.exp(x - max));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

const observed = (counts: readonly number[]): number[] => counts.flatMap((c, i) => (c > 0 ? [i] : []));

const logitArrays = fc
  .array(fc.float({ min: -20, max: 20, noNaN: true, noDefaultInfinity: true }), { minLength: 1, maxLength: 40 })
  .map((xs) => Float32Array.from(xs));

function argmaxLowest(xs: Float32Array): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) {
    if ((xs[i] ?? 0) > (xs[best] ?? 0)) {
      best = i;
    }
  }
  return best;
}

describe("createSampler: greedy and top-k = 1", () => {
  it("picks the argmax at temperature 0, ties to the lowest id", () => {
    fc.assert(
      fc.property(logitArrays, (logits) => {
        expect(createSampler({ temperature: 0 }).sample(logits, []).token).toBe(argmaxLowest(logits));
      }),
    );
    expect(createSampler({ temperature: 0 }).sample(Float32Array.of(1, 3, 0, 3), []).token).toBe(1);
  });

  it("skips the log-probability only when asked (logprobs: false): same token, NaN logprob, alternatives still computed", () => {
    fc.assert(
      fc.property(logitArrays, fc.boolean(), (logits, greedy) => {
        const base = { temperature: greedy ? 0 : 1, seed: 9 };
        const full = createSampler(base).sample(logits, []);
        const lean = createSampler({ ...base, logprobs: false }).sample(logits, []);
        expect(lean.token).toBe(full.token);
        expect(Number.isNaN(lean.logprob)).toBe(true);
        expect(Number.isFinite(full.logprob)).toBe(true);
        const withTop = createSampler({ ...base, logprobs: false, topLogprobs: 2 }).sample(logits, []);
        expect(withTop).toEqual(createSampler({ ...base, topLogprobs: 2 }).sample(logits, []));
      }),
    );
    expect(() => createSampler({ logprobs: "no" as unknown as boolean })).toThrow(/logprobs must be true or false/);
  });

  it("picks the argmax with top-k 1 at any temperature and seed", () => {
    fc.assert(
      fc.property(logitArrays, fc.nat(1000), fc.double({ min: 0.05, max: 5, noNaN: true }), (logits, seed, t) => {
        const sampler = createSampler({ topK: 1, temperature: t, seed });
        expect(sampler.sample(logits, []).token).toBe(argmaxLowest(logits));
      }),
    );
  });
});

describe("createSampler: seeded draws", () => {
  const logits = Float32Array.from({ length: 50 }, (_, i) => Math.sin(i) * 2);

  it("keeps nothing of one call's candidates in the next (its scratch arrays are reused)", () => {
    const sampler = createSampler({ seed: 3, temperature: 1 });
    const only = (token: number): Float32Array => logits.map((v, i) => (i === token ? v : Number.NEGATIVE_INFINITY));
    for (let step = 0; step < 20; step++) {
      sampler.sample(logits, []); // every token a candidate
      expect(sampler.sample(only(step * 2), []).token).toBe(step * 2);
    }
  });

  it("repeats the same tokens for the same seed and differs for another seed", () => {
    const run = (seed: number): number[] => {
      const sampler = createSampler({ seed, temperature: 1.3 });
      return Array.from({ length: 300 }, () => sampler.sample(logits, []).token);
    };
    expect(run(5)).toEqual(run(5));
    expect(run(5)).not.toEqual(run(6));
  });

  it("reports the seed it used when none was given", () => {
    const sampler = createSampler({});
    expect(Number.isSafeInteger(sampler.options.seed)).toBe(true);
    const again = createSampler({ seed: sampler.options.seed });
    const a = Array.from({ length: 20 }, () => sampler.sample(logits, []).token);
    expect(Array.from({ length: 20 }, () => again.sample(logits, []).token)).toEqual(a);
  });

  it("draws tokens in proportion to softmax(logits) at temperature 1", () => {
    const probs = [0.5, 0.3, 0.15, 0.05];
    const counts = histogram({ seed: 11 }, logitsOf(probs), 20_000);
    expect(chiSquare(counts, probs)).toBeLessThan(21); // df = 3: p = 0.0001 at about 21.1
  });

  it("draws in proportion to softmax(logits / T) at temperature 2 and 0.5", () => {
    const logits = [1, 0.5, -0.5, -2];
    for (const [t, seed] of [[2, 3], [0.5, 4]] as const) {
      const counts = histogram({ temperature: t, seed }, Float32Array.from(logits), 20_000);
      expect(chiSquare(counts, softmax(logits.map((x) => x / t)))).toBeLessThan(21);
    }
  });

  it("never draws a token whose logit is -Infinity", () => {
    const logits = Float32Array.of(-Infinity, 0, -Infinity, 0, -Infinity);
    const counts = histogram({ seed: 1, temperature: 5 }, logits, 5_000);
    expect(observed(counts)).toEqual([1, 3]);
  });
});

describe("createSampler: filters", () => {
  const probs = [0.4, 0.3, 0.2, 0.1];

  it("keeps only the k most likely tokens, then samples them in proportion", () => {
    const counts = histogram({ topK: 2, seed: 8 }, logitsOf(probs), 10_000);
    expect(chiSquare(counts, [4 / 7, 3 / 7, 0, 0])).toBeLessThan(15.2); // df = 1
  });

  it.each([
    [0.35, [0]],
    [0.65, [0, 1]],
    [0.75, [0, 1, 2]],
    [0.95, [0, 1, 2, 3]],
  ])("top-p %s keeps the smallest most-likely set whose mass reaches p", (topP, kept) => {
    expect(observed(histogram({ topP, seed: 2 }, logitsOf(probs), 4_000))).toEqual(kept);
  });

  it.each([
    [0.02, 200],
    [0.3, 3000],
    [0.5, 5000],
  ])("top-p %s over 10,000 equal logits keeps exactly the %s lowest ids (ties rank by id)", (topP, size) => {
    const counts = histogram({ topP, seed: 6 }, new Float32Array(10_000), 3_000);
    const seen = observed(counts);
    expect(Math.max(...seen)).toBeLessThan(size);
    expect(Math.max(...seen)).toBeGreaterThan(size * 0.9);
  });

  it("computes top-p on the survivors of top-k (renormalized)", () => {
    // After top-k 2 the masses are 4/7 and 3/7; p = 0.55 is reached by the first alone.
    expect(observed(histogram({ topK: 2, topP: 0.55, seed: 2 }, logitsOf(probs), 2_000))).toEqual([0]);
    expect(observed(histogram({ topK: 2, topP: 0.6, seed: 2 }, logitsOf(probs), 2_000))).toEqual([0, 1]);
  });

  it.each([
    [0.2, [0, 1, 2, 3]],
    [0.3, [0, 1, 2]],
    [0.6, [0, 1]],
    [1, [0]],
  ])("min-p %s drops tokens below min-p × the top probability", (minP, kept) => {
    expect(observed(histogram({ minP, seed: 3 }, logitsOf(probs), 4_000))).toEqual(kept);
  });

  it("applies temperature after the filters, so it does not change which tokens survive", () => {
    const counts = histogram({ topP: 0.65, temperature: 50, seed: 4 }, logitsOf(probs), 4_000);
    expect(observed(counts)).toEqual([0, 1]);
    expect(chiSquare(counts, [0.5, 0.5, 0, 0])).toBeLessThan(15.2); // near-uniform at a high temperature
  });

  it("only ever samples one of the top-k tokens of a large vocabulary", () => {
    const vocab = 128_256;
    const logits = Float32Array.from({ length: vocab }, (_, i) => Math.sin(i * 12.9898) * 8);
    const ranked = Array.from(logits.keys()).sort((a, b) => (logits[b] ?? 0) - (logits[a] ?? 0));
    const allowed = new Set(ranked.slice(0, 40));
    const sampler = createSampler({ topK: 40, topP: 0.95, minP: 0.05, temperature: 0.8, seed: 1 });
    for (let i = 0; i < 20; i++) {
      expect(allowed.has(sampler.sample(logits, []).token)).toBe(true);
    }
  });
});

describe("createSampler: repetition penalty", () => {
  it("lowers a repeated token's rank: positive logits are divided by the penalty", () => {
    const logits = Float32Array.of(2, 1.9, 0.5);
    expect(createSampler({ temperature: 0 }).sample(logits, [0]).token).toBe(0);
    expect(createSampler({ temperature: 0, repetitionPenalty: 1.1 }).sample(logits, [0]).token).toBe(1);
  });

  it("multiplies negative logits by the penalty", () => {
    const logits = Float32Array.of(-1, -1.5, -3);
    expect(createSampler({ temperature: 0, repetitionPenalty: 1.4 }).sample(logits, [0, 2]).token).toBe(0);
    expect(createSampler({ temperature: 0, repetitionPenalty: 1.6 }).sample(logits, [0, 2]).token).toBe(1);
    expect(createSampler({ temperature: 0, repetitionPenalty: 1.6 }).sample(logits, [1]).token).toBe(0);
  });

  it("penalizes each distinct token once, however often it repeats", () => {
    const logits = Float32Array.of(2, 1.5);
    const history = [0, 0, 0, 0, 0];
    expect(createSampler({ temperature: 0, repetitionPenalty: 1.2 }).sample(logits, history).token).toBe(0);
  });

  it("looks only at the last repetitionWindow tokens of the history", () => {
    const logits = Float32Array.of(2, 1.9, 0);
    const history = [0, 2, 2];
    const greedy = (repetitionWindow: number): number =>
      createSampler({ temperature: 0, repetitionPenalty: 2, repetitionWindow }).sample(logits, history).token;
    expect(greedy(2)).toBe(0);
    expect(greedy(3)).toBe(1);
    const all = { temperature: 0, repetitionPenalty: 2, repetitionWindow: Number.POSITIVE_INFINITY };
    expect(createSampler(all).sample(logits, history).token).toBe(1);
  });

  it("lowers the penalized token's sampling frequency", () => {
    const logits = Float32Array.of(1, 1);
    const counts = histogram({ repetitionPenalty: 2, seed: 9 }, logits, 10_000, [0]);
    expect(chiSquare(counts, softmax([0.5, 1]))).toBeLessThan(15.2);
  });

  it("rejects a history token outside the vocabulary when a penalty is set", () => {
    const sampler = createSampler({ repetitionPenalty: 1.1 });
    expect(() => sampler.sample(Float32Array.of(0, 1), [0, 2])).toThrow(/history\[1\]/);
    expect(() => sampler.sample(Float32Array.of(0, 1), [-1])).toThrow(ValueError);
  });
});

describe("createSampler: log-probabilities", () => {
  it("reports the chosen token's log-probability under the raw logits", () => {
    const probs = [0.5, 0.25, 0.25];
    const result = createSampler({ temperature: 0, repetitionPenalty: 3 }).sample(logitsOf(probs), [0]);
    expect(result.token).toBe(1);
    expect(result.logprob).toBeCloseTo(Math.log(0.25), 6);
    expect(result.topLogprobs).toBeUndefined();
  });

  it("reports the top alternatives best first, ties to the lower id, -Infinity tokens left out", () => {
    const logits = Float32Array.of(0, 2, -Infinity, 2, 1);
    const result = createSampler({ topLogprobs: 5, seed: 1 }).sample(logits, []);
    const lse = Math.log(2 * Math.exp(2) + Math.exp(1) + 1);
    expect(result.topLogprobs?.map((t) => t.token)).toEqual([1, 3, 4, 0]);
    expect(result.topLogprobs?.[0]?.logprob).toBeCloseTo(2 - lse, 6);
    expect(result.logprob).toBeCloseTo((logits[result.token] ?? 0) - lse, 6);
  });

  it("stays finite for huge logits (softmax in float64, shifted by the maximum)", () => {
    const result = createSampler({ seed: 0, topLogprobs: 2 }).sample(Float32Array.of(3e38, 3e38, -3e38), []);
    expect(Number.isFinite(result.logprob)).toBe(true);
    expect(result.topLogprobs?.[0]?.logprob).toBeCloseTo(-Math.LN2, 6);
  });

  it("gives topLogprobs(k) on its own, summing to at most 1", () => {
    fc.assert(
      fc.property(logitArrays, fc.integer({ min: 0, max: 20 }), (logits, k) => {
        const top = topLogprobs(logits, k);
        expect(top.length).toBe(Math.min(k, logits.length));
        expect(top.reduce((s, t) => s + Math.exp(t.logprob), 0)).toBeLessThanOrEqual(1 + 1e-9);
        for (let i = 1; i < top.length; i++) {
          expect((top[i - 1]?.logprob ?? 0) >= (top[i]?.logprob ?? 0)).toBe(true);
        }
      }),
    );
  });
});
