import { describe, expect, it } from "vitest";
import { ValueError } from "../../src/core/errors.js";
import { createSampler } from "../../src/model/sampling/sampler.js";
import type { SamplingOptions } from "../../src/model/sampling/options.js";

describe("createSampler: bad input", () => {
  it("rejects NaN and +Infinity logits with a non-finite ValueError naming the index", () => {
    const sampler = createSampler({ seed: 1 });
    expect(() => sampler.sample(Float32Array.of(0, Number.NaN), [])).toThrow(/logit 1/);
    expect(() => sampler.sample(Float32Array.of(Infinity, 0), [])).toThrow(ValueError);
    expect(() => createSampler({ temperature: 0 }).sample(Float32Array.of(0, Number.NaN), [])).toThrow(ValueError);
  });

  it("rejects logits that are all -Infinity, and empty logits", () => {
    const sampler = createSampler({ seed: 1 });
    expect(() => sampler.sample(Float32Array.of(-Infinity, -Infinity), [])).toThrow(/-Infinity/);
    expect(() => sampler.sample(new Float32Array(0), [])).toThrow(ValueError);
  });

  it.each<[keyof SamplingOptions, number]>([
    ["temperature", -0.1],
    ["temperature", Number.POSITIVE_INFINITY],
    ["temperature", Number.NaN],
    ["topK", -1],
    ["topK", 2.5],
    ["topP", 0],
    ["topP", 1.01],
    ["minP", -0.01],
    ["minP", 1.5],
    ["repetitionPenalty", 0],
    ["repetitionPenalty", -1],
    ["repetitionWindow", -1],
    ["repetitionWindow", 0.5],
    ["seed", -1],
    ["seed", 0.5],
    ["topLogprobs", 21],
    ["topLogprobs", -1],
  ])("rejects %s = %s with an out-of-range ValueError naming the option and value", (name, value) => {
    let caught: unknown;
    try {
      createSampler({ [name]: value });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ValueError);
    const error = caught as ValueError;
    expect(error.code).toBe("out-of-range");
    expect(error.message).toContain(name);
    expect(error.message).toContain(String(value));
  });

  it("treats options set to undefined as omitted", () => {
    const options = { temperature: undefined } as unknown as SamplingOptions;
    expect(createSampler(options).options.temperature).toBe(1);
  });
});
