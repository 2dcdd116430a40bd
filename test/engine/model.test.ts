import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UsageError } from "../../src/index.js";
import { loadModel } from "../../src/engine/model.js";
import { ContextFullError } from "../../src/model/bitnet/kv-cache.js";
import { makeBitnetFixture, type BitnetFixtureOptions } from "../../src/model/bitnet/fixture.js";
import { referenceLogits } from "../reference/forward64.js";

let dir = "";
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "barbell-engine-"));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

async function fixtureFile(name: string, opts: BitnetFixtureOptions): Promise<{ file: string; bytes: Uint8Array }> {
  const bytes = makeBitnetFixture(opts);
  const file = path.join(dir, name);
  await fs.writeFile(file, bytes);
  return { file, bytes };
}

function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) {
    if ((values[i] ?? -Infinity) > (values[best] ?? -Infinity)) {
      best = i;
    }
  }
  return best;
}

/** Greedy decoding with the independent float64 reference, one full prefill per step. */
async function referenceGreedy(bytes: Uint8Array, prompt: number[], steps: number): Promise<number[]> {
  const seq = [...prompt];
  const out: number[] = [];
  for (let s = 0; s < steps; s++) {
    const logits = await referenceLogits(bytes, seq, { quantizeActivations: true });
    const next = argmax(logits[logits.length - 1] ?? []);
    out.push(next);
    seq.push(next);
  }
  return out;
}

describe("loadModel and generation", () => {
  const fixtures: [string, BitnetFixtureOptions, number[]][] = [
    ["b158-i2s.gguf", { arch: "bitnet-b1.58", weightType: "i2_s", seed: 11 }, [10, 20, 30]],
    ["bitnet-tq2.gguf", { arch: "bitnet", weightType: "tq2_0", hidden: 256, seed: 12 }, [40, 50]],
  ];
  it.each(fixtures)("should decode %s greedily exactly as the float64 reference does", async (name, opts, prompt) => {
    const { file, bytes } = await fixtureFile(name, opts);
    using model = await loadModel(file, { contextLength: 64 });
    const result = await model.generate(prompt, { temperature: 0, maxTokens: 8, stopTokens: [] }).complete();
    const expected = await referenceGreedy(bytes, prompt, result.tokens.length);
    expect(result.tokens).toEqual(expected);
    expect(result.promptTokens).toBe(prompt.length);
  });

  it("should stream text, stop at a stop string and be reproducible with a seed", async () => {
    const { file } = await fixtureFile("stream.gguf", { seed: 13 });
    using model = await loadModel(file, { contextLength: 128 });
    const a = await model.generate("hello", { temperature: 0.8, seed: 5, maxTokens: 20 }).complete();
    const pieces: string[] = [];
    for await (const t of model.generate("hello", { temperature: 0.8, seed: 5, maxTokens: 20 })) {
      pieces.push(t.text);
    }
    expect(pieces.join("")).toBe(a.text);
    const stopAt = a.text.slice(3, 5);
    if (stopAt.length === 2) {
      const s = await model.generate("hello", { temperature: 0.8, seed: 5, maxTokens: 20, stop: [stopAt] }).complete();
      expect(s.finishReason).toBe("stop");
      expect(s.text).toBe(a.text.slice(0, a.text.indexOf(stopAt)));
    }
  });

  it("should return the logits of every position and match the last of them", async () => {
    const { file, bytes } = await fixtureFile("logits.gguf", { seed: 14 });
    using model = await loadModel(file);
    const all = await model.logits([3, 4, 5], { all: true });
    const last = await model.logits([3, 4, 5]);
    const ref = await referenceLogits(bytes, [3, 4, 5], { quantizeActivations: true });
    expect(all).toHaveLength(3);
    expect(Array.from(last[0] ?? [])).toEqual(Array.from(all[2] ?? []));
    expect(argmax(all[1] ?? [])).toBe(argmax(ref[1] ?? []));
  });

  it("should refuse a prompt that cannot fit, or truncate it when asked", async () => {
    const { file } = await fixtureFile("ctx.gguf", { seed: 15 });
    using model = await loadModel(file, { contextLength: 16 });
    const prompt = Array.from({ length: 14 }, (_, i) => i + 1);
    await expect(model.generate(prompt, { maxTokens: 4 }).complete()).rejects.toThrow(ContextFullError);
    const r = await model.generate(prompt, { maxTokens: 4, temperature: 0, contextOverflow: "truncate" }).complete();
    expect(r.promptTokens).toBe(12);
    const open = await model.generate(prompt, { temperature: 0, stopTokens: [] }).complete();
    expect(open.finishReason).toBe("context");
    // 14 prompt positions + 2 fed back fill the 16; the token sampled from the last position ends it.
    expect(open.tokens).toHaveLength(3);
  });

  it("should stop when the signal aborts", async () => {
    const { file } = await fixtureFile("abort.gguf", { seed: 16 });
    using model = await loadModel(file);
    const controller = new AbortController();
    let n = 0;
    const gen = model.generate([1, 2], { temperature: 0, maxTokens: 50, signal: controller.signal, stopTokens: [] });
    for await (const _ of gen) {
      if (++n === 3) {
        controller.abort();
      }
    }
    const result = await gen.complete();
    expect(result.finishReason).toBe("abort");
    expect(result.tokens).toHaveLength(3);
  });

  it("should chat with the BitNet format and refuse use after dispose", async () => {
    const { file } = await fixtureFile("chat.gguf", { seed: 17 });
    const model = await loadModel(file);
    const reply = await model.chat([{ role: "user", content: "hi" }], { temperature: 0, maxTokens: 5 }).complete();
    expect(reply.promptTokens).toBeGreaterThan(3);
    model.dispose();
    expect(() => model.generate("x")).toThrow(UsageError);
  });
});
