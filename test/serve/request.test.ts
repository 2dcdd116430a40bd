/**
 * The one checked request (src/serve/request.ts): checked once at its edge, trusted after; anything that is not a
 * checked request made in this process is checked; the default budget is min(DEFAULT_MAX_TOKENS, room) in the host.
 */
import { describe, expect, it } from "vitest";
import { createActorSystem, ManualClock } from "../../src/actors/index.js";
import { DEFAULT_MAX_TOKENS } from "../../src/engine/generate.js";
import { checkRequest, modelActor, DEFAULT_MAX_TOKENS as SERVE_DEFAULT, type ModelRequest } from "../../src/serve/index.js";
import { DEFAULT_MAX_TOKENS as HTTP_DEFAULT } from "../../src/serve/http/index.js";
import { checkWireRequest, edgeRequest, isChecked, withConfidence } from "../../src/serve/request.js";
import { collect, jsGreedy, lastOf, serveFixtures, tokensOf } from "./helpers.js";

const env = serveFixtures();

describe("checkRequest", () => {
  it("should make a frozen checked request once and return a checked one as it is", () => {
    const checked = checkRequest({ tokens: [1, 2], maxTokens: 4, temperature: 0.5 });
    if (typeof checked === "string") {
      throw new Error(checked);
    }
    expect(isChecked(checked)).toBe(true);
    expect(Object.isFrozen(checked)).toBe(true);
    expect(checked).toMatchObject({ tokens: [1, 2], maxTokens: 4, temperature: 0.5, stop: [], topLogprobs: 0, logprobs: true, confidence: false, allLogits: false });
    expect(checkRequest(checked)).toBe(checked);
    // A copy is not trusted: it is checked again (and comes back as a new checked request).
    const copy = { ...checked } as ModelRequest;
    expect(isChecked(copy)).toBe(false);
    const again = checkRequest(copy);
    expect(again).not.toBe(checked);
    expect(again).toMatchObject({ tokens: [1, 2], maxTokens: 4 });
    expect(checkRequest({ ...checked, temperature: -1 } as ModelRequest)).toMatch(/temperature/);
  });

  it("should say what is wrong with a request instead of checking it", () => {
    const cases: [ModelRequest, RegExp][] = [
      [{ tokens: [] }, /no tokens/],
      [{ tokens: [1], maxTokens: 0 }, /maxTokens must be at least 1/],
      [{ tokens: [1], maxTokens: 1.5 }, /maxTokens must be an integer/],
      [{ tokens: [1], temperature: -1 }, /temperature/],
      [{ tokens: [1], topP: 0 }, /topP/],
      [{ tokens: [1], topLogprobs: 21 }, /topLogprobs must be at most 20/],
      [{ prompt: "a", tokens: [1] }, /exactly one of prompt, tokens or input/],
      [{}, /exactly one of prompt, tokens or input/],
      [{ tokens: [1], grammar: 'root ::= "a"', stop: ["a"] }, /stop strings cannot be used with a grammar/],
      [{ input: { name: "x", dtype: "f32", dims: [{ name: "seq", size: 1 }], scales: [], flags: 0, payload: new Uint8Array(4) } }, /i32 tensor \[seq\]/],
    ];
    for (const [request, why] of cases) {
      expect(checkRequest(request), JSON.stringify(request)).toMatch(why);
    }
    expect(checkRequest(null as unknown as ModelRequest)).toMatch(/must be an object/);
  });

  it("should check a request decoded from a frame, reading maxTokens 0 as not given", () => {
    const checked = checkRequest({ tokens: [3], maxTokens: 2 });
    if (typeof checked === "string") {
      throw new Error(checked);
    }
    const frame = { ...checked, maxTokens: 0 }; // as a NATS worker decodes it: a plain object, not trusted
    const again = checkWireRequest(frame);
    expect(again).toMatchObject({ tokens: [3], maxTokens: 0, id: checked.id });
    expect(again).not.toBe(frame);
    expect(checkWireRequest({ ...frame, temperature: Number.NaN })).toMatch(/temperature/);
    expect(checkWireRequest({ ...frame, tokens: undefined })).toMatch(/exactly one of prompt, tokens or input/);
  });

  it("should trust an edge's request as given and keep it trusted when the cascade asks for confidence", () => {
    const edge = edgeRequest({ tokens: [5], maxTokens: 2, temperature: 0, topK: undefined, topP: undefined, minP: undefined, repetitionPenalty: undefined, seed: 7, stop: ["x"], topLogprobs: 0, logprobs: false, grammar: undefined });
    expect(isChecked(edge)).toBe(true);
    expect(edge).toMatchObject({ tokens: [5], prompt: undefined, input: undefined, confidence: false, seed: 7 });
    const judged = withConfidence(edge);
    expect(isChecked(judged)).toBe(true);
    expect(judged).toMatchObject({ ...edge, confidence: true });
    expect(edge.confidence).toBe(false);
    expect(withConfidence(judged)).toBe(judged);
  });

  it("should have one default budget everywhere", () => {
    expect(DEFAULT_MAX_TOKENS).toBe(256);
    expect(SERVE_DEFAULT).toBe(DEFAULT_MAX_TOKENS);
    expect(HTTP_DEFAULT).toBe(DEFAULT_MAX_TOKENS);
  });
});

describe("the default budget in the model host", () => {
  it("should be min(DEFAULT_MAX_TOKENS, room left) when a request names none", async () => {
    env.system = createActorSystem({ clock: new ManualClock() });
    const ref = env.system.spawn(modelActor({ ladder: [env.ladder.small], backends: ["js"], isolation: "in-process" }));
    // The small fixture's context is 64: 63 prompt tokens leave room for 1, 64 for none.
    const full = await collect(ref, { tokens: Array.from({ length: 64 }, (_, i) => 1 + (i % 200)) });
    expect(lastOf(full)).toMatchObject({ kind: "error", code: "bad-request" });
    expect((lastOf(full) as { message: string }).message).toMatch(/leaves no room in the context \(64\)/);
    const one = await collect(ref, { tokens: Array.from({ length: 63 }, (_, i) => 1 + (i % 200)), temperature: 0 });
    expect(lastOf(one)).toMatchObject({ kind: "done", promptTokens: 63 });
    expect(tokensOf(one).length).toBeLessThanOrEqual(1);
    const short = await collect(ref, { tokens: [1, 2, 3], temperature: 0 });
    const done = lastOf(short);
    expect(done).toMatchObject({ kind: "done", promptTokens: 3 });
    expect(tokensOf(short)).toEqual(await jsGreedy(env.ladder.small.path, [1, 2, 3], 61));
    if (done.kind === "done" && done.finishReason === "length") {
      expect(done.completionTokens).toBe(61);
    }
  }, 60_000);

  it("should take a checked request as it is through the actor, and check a copy of it", async () => {
    env.system = createActorSystem({ clock: new ManualClock() });
    const ref = env.system.spawn(modelActor({ ladder: [env.ladder.small], backends: ["js"], isolation: "in-process" }));
    // maxTokens 0 is what a checked request carries for "the default"; a request given by code may not say 0.
    const edge = edgeRequest({ tokens: [1, 2, 3], maxTokens: 0, temperature: 0, topK: undefined, topP: undefined, minP: undefined, repetitionPenalty: undefined, seed: undefined, stop: [], topLogprobs: 0, logprobs: false, grammar: undefined });
    expect(lastOf(await collect(ref, edge))).toMatchObject({ kind: "done", promptTokens: 3 });
    const copy = await collect(ref, { ...edge } as ModelRequest);
    expect(copy).toHaveLength(1);
    expect(lastOf(copy)).toMatchObject({ kind: "error", code: "bad-request" });
    expect((lastOf(copy) as { message: string }).message).toMatch(/maxTokens must be at least 1/);
  }, 60_000);
});
