/**
 * Continuous batching (src/engine/batch.ts): concurrent generations share decode steps and give the
 * same tokens as running each alone; sequences join and leave between steps; limits, aborts, errors
 * and memory.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UsageError, ValueError } from "../../src/core/errors.js";
import { createJsBackend } from "../../src/backends/js/index.js";
import { loadModel, type BitnetModel } from "../../src/engine/model.js";
import { makeBitnetFixture } from "../../src/model/bitnet/fixture.js";
import { MAX_BATCH_SEQUENCES } from "../../src/model/bitnet/forward.js";

let dir = "";
let model: BitnetModel;
const backend = createJsBackend();
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "barbell-batch-"));
  const file = path.join(dir, "m.gguf");
  await fs.writeFile(file, makeBitnetFixture({ arch: "bitnet-b1.58", seed: 31, layers: 2 }));
  model = await loadModel(file, { backend, contextLength: 64 });
});
afterAll(async () => {
  model.dispose();
  await fs.rm(dir, { recursive: true, force: true });
});

const PROMPTS = [[1, 2, 3], [9], [5, 6, 7, 8, 9, 10, 11], [4, 4]];
const BUDGETS = [6, 9, 4, 7];

async function alone(prompt: number[], maxTokens: number): Promise<number[]> {
  const r = await model.generate(prompt, { temperature: 0, maxTokens, stopTokens: [] }).complete();
  return [...r.tokens];
}

describe("Batcher", () => {
  it("should give every concurrent generation the tokens it gets alone, in shared steps", async () => {
    const want = [];
    for (const [i, p] of PROMPTS.entries()) {
      want.push(await alone(p, BUDGETS[i] ?? 1));
    }
    const live = backend.liveAllocations();
    using batcher = model.batcher({ maxSequences: 4 });
    const runs = PROMPTS.map((p, i) => batcher.generate(p, { temperature: 0, maxTokens: BUDGETS[i] ?? 1, stopTokens: [] }).complete());
    const got = await Promise.all(runs);
    expect(got.map((r) => [...r.tokens])).toEqual(want);
    expect(got.map((r) => r.finishReason)).toEqual(["length", "length", "length", "length"]);
    const stats = batcher.stats();
    // Decode steps carried several sequences at once (the prompts and budgets differ, so not always 4).
    expect(stats.rows / stats.steps).toBeGreaterThan(2);
    expect(stats.active + stats.waiting).toBe(0);
    expect(backend.liveAllocations()).toBe(live); // every sequence's KV cache was freed
  });

  it("should prefill short prompts that arrive together in one round, so they decode in full steps", async () => {
    using batcher = model.batcher({ maxSequences: 4 });
    const runs = PROMPTS.map((p) => batcher.generate(p, { temperature: 0, maxTokens: 5, stopTokens: [] }).complete());
    await Promise.all(runs);
    // 4 prompts of ≤ 7 tokens fit one round's prefill budget: every decode step carries all 4 sequences.
    expect(batcher.stats()).toMatchObject({ steps: 4, rows: 16 });
  });

  it("should stream tokens while others join later, and respect maxSequences", async () => {
    using batcher = model.batcher({ maxSequences: 2 });
    const first = batcher.generate([1, 2, 3], { temperature: 0, maxTokens: 8, stopTokens: [] });
    const seen: number[] = [];
    let joined: Promise<unknown> | undefined;
    let peak = 0;
    for await (const piece of first) {
      seen.push(piece.token ?? -1);
      peak = Math.max(peak, batcher.stats().active);
      if (seen.length === 2) {
        // Three more arrive mid-stream: one joins, two wait for free slots.
        joined = Promise.all([[9], [4, 4], [7, 7, 7]].map((p) => batcher.generate(p, { temperature: 0, maxTokens: 5, stopTokens: [] }).complete()));
        peak = Math.max(peak, batcher.stats().active);
        expect(batcher.stats().waiting).toBeGreaterThan(0);
      }
    }
    expect(seen).toEqual(await alone([1, 2, 3], 8));
    const rest = (await joined) as { tokens: number[] }[];
    expect(rest.map((r) => [...r.tokens])).toEqual([await alone([9], 5), await alone([4, 4], 5), await alone([7, 7, 7], 5)]);
    expect(peak).toBeLessThanOrEqual(2);
  });

  it("should end an aborted generation with finishReason abort and let the others finish", async () => {
    using batcher = model.batcher();
    const controller = new AbortController();
    const a = batcher.generate([1, 2], { temperature: 0, maxTokens: 30, stopTokens: [], signal: controller.signal });
    const b = batcher.generate([3, 4], { temperature: 0, maxTokens: 6, stopTokens: [] }).complete();
    let n = 0;
    for await (const _ of a) {
      if (++n === 3) {
        controller.abort();
      }
    }
    expect((await b).tokens).toEqual(await alone([3, 4], 6));
    expect(n).toBeLessThan(30);
  });

  it("should refuse bad options before queueing, and end in-flight generations on dispose", async () => {
    const batcher = model.batcher();
    expect(() => batcher.generate([], {})).toThrow(/no tokens/);
    expect(() => batcher.generate([1], { maxTokens: 0 })).toThrow(ValueError);
    expect(() => model.batcher({ maxSequences: 0 })).toThrow(ValueError);
    // The one batch limit: a batcher takes as many sequences as one batched forward step does, and no more.
    model.batcher({ maxSequences: MAX_BATCH_SEQUENCES }).dispose();
    expect(() => model.batcher({ maxSequences: MAX_BATCH_SEQUENCES + 1 })).toThrow(new RegExp(`1\\.\\.${MAX_BATCH_SEQUENCES}`));
    const running = batcher.generate([1, 2], { temperature: 0, maxTokens: 40, stopTokens: [] }).complete();
    batcher.dispose();
    await expect(running).rejects.toBeInstanceOf(UsageError);
    expect(() => batcher.generate([1], {})).toThrow(UsageError);
  });

  it("should call beforeStep before every forward step, and fail that step's sequences when it throws", async () => {
    let calls = 0;
    let failAt = 0;
    const hook = (): void => {
      calls++;
      if (calls === failAt) {
        throw new Error("hook refused");
      }
    };
    using batcher = model.batcher({ maxSequences: 2, beforeStep: hook });
    const ok = await Promise.all([[1, 2], [3]].map((p) => batcher.generate(p, { temperature: 0, maxTokens: 4, stopTokens: [] }).complete()));
    expect(ok.map((r) => [...r.tokens])).toEqual([await alone([1, 2], 4), await alone([3], 4)]);
    // One call per prefill chunk (two prompts, one chunk each) and one per decode step.
    expect(calls).toBe(2 + batcher.stats().steps);
    // The next decode step carrying both sequences throws: both fail with the hook's error.
    calls = 0;
    failAt = 4; // [5]: prefill and a decode step alone; [6]: prefill; then the step shared by both
    const runs = [[5], [6]].map((p) => batcher.generate(p, { temperature: 0, maxTokens: 6, stopTokens: [] }).complete().catch((e: unknown) => e));
    const ends = await Promise.all(runs);
    expect(ends).toEqual([new Error("hook refused"), new Error("hook refused")]);
    expect(batcher.stats().active).toBe(0);
  });
});
