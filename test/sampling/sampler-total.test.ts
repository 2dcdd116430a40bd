/**
 * The sampler is total over every option value it accepts: for any logits a model can produce it returns a token id
 * in [0, vocab) whose raw logit is not -Infinity, or throws a typed ValueError (NaN/+Infinity logits, all -Infinity).
 * Option values range over the whole accepted ranges, subnormals and extremes included (issue 13, item 3).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ValueError } from "../../src/core/errors.js";
import { createSampler } from "../../src/model/sampling/sampler.js";
import type { SamplingOptions } from "../../src/model/sampling/options.js";

const RUNS = 2000;
const SEED = 0x5a3b_1e00;
const TINY = [Number.MIN_VALUE, 1e-320, 2.2250738585072014e-308, 1e-300, 1e-45, 1e-10];
const HUGE = [1e10, 3.4028234663852886e38, 1e300, Number.MAX_VALUE];

/** Every option over its whole accepted range (resolveSamplingOptions), edge values weighted in. */
const options: fc.Arbitrary<SamplingOptions> = fc.record({
  temperature: fc.oneof(fc.constantFrom(0, 1, 2, ...TINY, ...HUGE), fc.double({ min: 0, max: Number.MAX_VALUE, noNaN: true })),
  topK: fc.oneof(fc.constantFrom(0, 1, 2, 3, 1 << 20, Number.MAX_SAFE_INTEGER), fc.nat()),
  topP: fc.oneof(fc.constantFrom(1, 0.5, 1 - 2 ** -53, ...TINY), fc.double({ min: Number.MIN_VALUE, max: 1, noNaN: true })),
  minP: fc.oneof(fc.constantFrom(0, 1, 0.5, 1 - 2 ** -53, ...TINY), fc.double({ min: 0, max: 1, noNaN: true })),
  repetitionPenalty: fc.oneof(
    fc.constantFrom(1, 10, 0.5, ...TINY, ...HUGE),
    fc.double({ min: Number.MIN_VALUE, max: Number.MAX_VALUE, noNaN: true, noDefaultInfinity: true }),
  ),
  repetitionWindow: fc.oneof(fc.constantFrom(0, 1, 64, Number.POSITIVE_INFINITY, Number.MAX_SAFE_INTEGER), fc.nat(100)),
  seed: fc.oneof(fc.constantFrom(0, 2 ** 32 - 1, Number.MAX_SAFE_INTEGER), fc.nat()),
  topLogprobs: fc.integer({ min: 0, max: 20 }),
  logprobs: fc.boolean(),
});

const F32_MAX = 3.4028234663852886e38;
/** Float32 logits, edges weighted in: ±max, subnormals, ±0, -Infinity; NaN and +Infinity only when `hostile`. */
const logit = (hostile: boolean): fc.Arbitrary<number> =>
  fc.oneof(
    { weight: 4, arbitrary: fc.float({ noNaN: true, noDefaultInfinity: true }) },
    { weight: 2, arbitrary: fc.float({ min: -20, max: 20, noNaN: true }) },
    {
      weight: 2,
      arbitrary: fc.constantFrom(0, -0, F32_MAX, -F32_MAX, 1e-45, -1e-45, Number.NEGATIVE_INFINITY, 1, -1),
    },
    { weight: hostile ? 1 : 0, arbitrary: fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY) },
  );

const input = (hostile: boolean): fc.Arbitrary<{ logits: Float32Array; history: number[] }> =>
  fc.array(logit(hostile), { minLength: 1, maxLength: 48 }).chain((xs) =>
    fc.record({
      logits: fc.constant(Float32Array.from(xs)),
      history: fc.array(fc.nat(xs.length - 1), { maxLength: 96 }),
    }),
  );

/** What the contract allows: a valid id with a finite raw logit, or a "non-finite" ValueError for bad logits. */
function checkOne(o: SamplingOptions, logits: Float32Array, history: number[], draws: number): void {
  const sampler = createSampler(o);
  const bad = logits.some((v) => Number.isNaN(v) || v === Number.POSITIVE_INFINITY);
  const none = logits.every((v) => v === Number.NEGATIVE_INFINITY);
  for (let d = 0; d < draws; d++) {
    if (bad || none) {
      let caught: unknown;
      try {
        sampler.sample(logits, history);
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(ValueError);
      expect((caught as ValueError).code).toBe("non-finite");
      return;
    }
    const r = sampler.sample(logits, history);
    expect(Number.isInteger(r.token) && r.token >= 0 && r.token < logits.length, `token ${r.token}`).toBe(true);
    expect(logits[r.token], "a -Infinity logit is never sampled").toBeGreaterThan(Number.NEGATIVE_INFINITY);
    if (o.logprobs === true || (o.topLogprobs ?? 0) > 0) {
      expect(Number.isFinite(r.logprob) && r.logprob <= 0, `logprob ${r.logprob}`).toBe(true);
    }
    for (const alt of r.topLogprobs ?? []) {
      expect(alt.token >= 0 && alt.token < logits.length && Number.isFinite(alt.logprob)).toBe(true);
    }
  }
}

describe("createSampler: total over the accepted option ranges", () => {
  it("returns a token id in [0, vocab) with a finite raw logit for any finite-or--Infinity logits", () => {
    fc.assert(
      fc.property(options, input(false), (o, { logits, history }) => {
        checkOne(o, logits, history, 3);
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });

  it("throws only a non-finite ValueError when a logit is NaN or +Infinity, or all are -Infinity", () => {
    fc.assert(
      fc.property(options, input(true), (o, { logits, history }) => {
        checkOne(o, logits, history, 1);
      }),
      { seed: SEED + 1, numRuns: RUNS },
    );
  });

  // The request that answered 500: repetition_penalty 1e-320 (subnormal) at the default temperature.
  it.each([1e-320, Number.MIN_VALUE, 1e-300])("samples a valid id with repetitionPenalty %s over penalized positive logits", (p) => {
    const logits = Float32Array.of(1, 2, 3, -1);
    for (const temperature of [undefined, 0, 1e-300, 2]) {
      const sampler = createSampler({ repetitionPenalty: p, seed: 7, ...(temperature === undefined ? {} : { temperature }) });
      for (let i = 0; i < 20; i++) {
        const { token, logprob } = sampler.sample(logits, [0, 1, 2]);
        // The penalized tokens rise to 1e300 and beyond (clamped at Number.MAX_VALUE); token 3 stays far below them.
        expect([0, 1, 2]).toContain(token);
        expect(Number.isFinite(logprob)).toBe(true);
      }
    }
  });

  it("keeps a heavily penalized negative logit a candidate instead of -Infinity (no empty candidate set)", () => {
    for (const temperature of [0, 1]) {
      const sampler = createSampler({ repetitionPenalty: Number.MAX_VALUE, temperature, seed: 3 });
      // Both logits are penalized past -Number.MAX_VALUE; both clamp to it, and the tie goes to a valid id.
      const { token } = sampler.sample(Float32Array.of(-2, -3), [0, 1]);
      expect([0, 1]).toContain(token);
    }
    // The penalty still ranks: an unpenalized token beats the clamped ones at temperature 0.
    const greedy = createSampler({ repetitionPenalty: Number.MAX_VALUE, temperature: 0 });
    expect(greedy.sample(Float32Array.of(-2, -3, -1e30), [0, 1]).token).toBe(2);
  });
});
