/**
 * Constrained generation with the shipped default model (models/barbell-kjv.gguf, a small KJV model whose free
 * text is nowhere near JSON), greedy, for every schema of the suite: the output must parse and validate (ajv).
 * The mask does all the work; `remainingTokens` makes the grammar finish within the budget.
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadModel, type BitnetModel } from "../../src/engine/model.js";
import { compileJsonSchema, sampleConstrained, type ConstrainedScratch } from "../../src/model/grammar/index.js";
import { createSampler } from "../../src/model/sampling/index.js";
import type { Tokenizer } from "../../src/model/tokenizer/types.js";
import { SUITE } from "./schemas.js";
import { createAjv } from "./validate.js";

const MODEL = path.resolve(import.meta.dirname, "../../models/barbell-kjv.gguf");
/** Tokens beyond the shortest completion that a generation may use. */
const SLACK = 24;

let model: BitnetModel;
let tokenizer: Tokenizer;

beforeAll(async () => {
  model = await loadModel(MODEL, { backends: ["native-cpu", "js"], autotune: false });
  tokenizer = model.tokenizer as Tokenizer;
}, 120_000);

afterAll(() => {
  model[Symbol.dispose]();
});

/** Greedy constrained generation after a KJV prompt; returns the text and whether a stop token ended it. */
async function generate(schema: unknown): Promise<{ text: string; tokens: number; budget: number; stopped: boolean }> {
  const grammar = compileJsonSchema(schema);
  const matcher = grammar.matcher(tokenizer);
  const budget = matcher.minCompletionBytes() + SLACK;
  const prompt = Array.from(tokenizer.encode("And God said unto Moses,"));
  const out: number[] = [];
  const sampler = createSampler({ temperature: 0, logprobs: false });
  const scratch: ConstrainedScratch = {};
  let stopped = false;
  for (let i = 0; i < budget && !matcher.isFinished(); i++) {
    const [logits] = await model.logits([...prompt, ...out]);
    const pick = sampleConstrained(sampler, logits as Float32Array, [], matcher, { remainingTokens: budget - i, scratch });
    if (pick.token === tokenizer.eos || pick.token === tokenizer.eot) {
      stopped = true;
      break;
    }
    out.push(pick.token);
  }
  expect(matcher.isComplete()).toBe(true);
  return { text: tokenizer.decode(out), tokens: out.length, budget, stopped };
}

describe("constrained generation with the KJV model", () => {
  it("should have at least 50 schemas in the suite", () => {
    expect(SUITE.length).toBeGreaterThanOrEqual(50);
  });

  it("should write free text that is not JSON without a grammar (so the mask does the work)", async () => {
    const prompt = Array.from(tokenizer.encode("And God said unto Moses,"));
    const [logits] = await model.logits(prompt);
    const sampler = createSampler({ temperature: 0 });
    const first = tokenizer.decode([sampler.sample(logits as Float32Array, []).token]);
    expect(first.trimStart()[0]).not.toMatch(/[[{"0-9tfn-]/);
  });

  const ajv = createAjv();
  for (const { name, schema } of SUITE) {
    it(`should generate valid JSON for: ${name}`, async () => {
      const validate = ajv.compile(schema);
      const { text, tokens, budget } = await generate(schema);
      expect(tokens).toBeLessThanOrEqual(budget);
      let value: unknown;
      expect(() => (value = JSON.parse(text)), text).not.toThrow();
      expect(validate(value), `${text}\n${JSON.stringify(validate.errors)}`).toBe(true);
    }, 60_000);
  }
});
