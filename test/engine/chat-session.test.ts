/**
 * ChatSession (src/engine/chat-session.ts): a multi-turn chat that keeps the KV cache between turns. Each turn's
 * tokens are compared with a cold run (`model.chat` of the same messages on a second copy of the model), exact
 * token ids, greedy and seeded, on the JS reference and the native backend; what each turn prefilled; trimming
 * the oldest turns when the context fills (never an error); aborting a reply; other uses of the model between
 * turns.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BackendName } from "../../src/backends/backend.js";
import { PROVIDERS } from "../../src/backends/providers.js";
import { probeOnce } from "../../src/backends/registry.js";
import type { ChatTrim } from "../../src/engine/chat-session.js";
import type { GenerateOptions } from "../../src/engine/generate.js";
import { loadModel, type BitnetModel } from "../../src/engine/model.js";
import { PREFILL_STEP_TOKENS } from "../../src/model/bitnet/forward.js";
import { ContextFullError } from "../../src/model/bitnet/kv-cache.js";
import { makeBitnetFixture } from "../../src/model/bitnet/fixture.js";

let dir = "";
let file = "";
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "barbell-chat-session-"));
  file = path.join(dir, "m.gguf");
  await fs.writeFile(file, makeBitnetFixture({ arch: "bitnet-b1.58", seed: 41, layers: 2, contextLength: 1024 }));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const native = PROVIDERS.find((p) => p.name === "native-cpu");
const nativeProbe = native === undefined ? undefined : await probeOnce(native);
const BACKENDS: BackendName[] = nativeProbe?.available === true ? ["js", "native-cpu"] : ["js"];

/** User messages long enough that the conversation spans several prefill steps. */
const MESSAGES = [
  "In the beginning was the word, and the word was with the speaker of these lines, and it went on for a while.",
  "Tell me more about the second verse, and the third, and everything that came after them in that old book.",
  "Short one.",
  "And now a fourth message, which again is long enough to need a prefill step of its own in this small model.",
];

const SAMPLING: Record<string, GenerateOptions> = {
  greedy: { temperature: 0, maxTokens: 24 },
  seeded: { temperature: 0.9, topK: 40, seed: 7, maxTokens: 24 },
};

async function open(backend: BackendName, contextLength = 1024): Promise<BitnetModel> {
  return loadModel(file, { backends: [backend], autotune: false, threads: 2, contextLength });
}

describe.each(BACKENDS)("ChatSession on %s", (backend) => {
  let model: BitnetModel;
  let cold: BitnetModel;
  beforeAll(async () => {
    model = await open(backend);
    cold = await open(backend);
  });
  afterAll(() => {
    model.dispose();
    cold.dispose();
  });

  it.each(Object.keys(SAMPLING))("should give each turn a cold run's exact tokens while prefilling only the tail (%s, kvReuse exact)", async (name) => {
    const options = SAMPLING[name] ?? {};
    const session = model.chatSession({ systemPrompt: "You are a patient scribe." });
    let previous = 0;
    for (const [i, text] of MESSAGES.entries()) {
      const before = session.messages;
      const warm = await session.prompt(text, options).complete();
      const want = await cold.chat([...before, { role: "user", content: text }], options).complete();
      expect(warm.tokens, `turn ${i}`).toEqual(want.tokens);
      expect(warm.promptTokens).toBe(want.promptTokens);
      expect(warm.cachedTokens % PREFILL_STEP_TOKENS).toBe(0);
      // Everything of the previous prompt but its last partial step came from the cache.
      expect(warm.cachedTokens).toBe(Math.floor(previous / PREFILL_STEP_TOKENS) * PREFILL_STEP_TOKENS);
      expect(session.messages).toEqual([...before, { role: "user", content: text }, { role: "assistant", content: warm.text }]);
      previous = warm.promptTokens;
    }
    expect(previous).toBeGreaterThan(2 * PREFILL_STEP_TOKENS); // the conversation did span several steps
  });

  it("should prefill only a turn's new tokens with kvReuse all", async () => {
    const session = model.chatSession({ kvReuse: "all" });
    let previous = 0;
    let held = 0;
    for (const [i, text] of MESSAGES.entries()) {
      const before = session.messages;
      const warm = await session.prompt(text, SAMPLING["greedy"]).complete();
      if (i > 0) {
        // The whole previous prompt and its reply as far as the reply's text tokenizes to the generated tokens
        // (a random model's replies often do not: their text tokenizes differently) were reused.
        expect(warm.cachedTokens).toBeGreaterThanOrEqual(previous);
        expect(warm.cachedTokens).toBeLessThanOrEqual(held);
      }
      previous = warm.promptTokens;
      held = warm.promptTokens + Math.max(0, warm.tokens.length - 1);
      if (backend === "js") {
        // The JS reference computes a row the same way in a decode step and in a prefill step: still exact.
        const want = await cold.chat([...before, { role: "user", content: text }], SAMPLING["greedy"]).complete();
        expect(warm.tokens, `turn ${i}`).toEqual(want.tokens);
      }
    }
  });
});

describe("ChatSession when the context fills", () => {
  let model: BitnetModel;
  let cold: BitnetModel;
  beforeAll(async () => {
    model = await open("js", 256);
    cold = await open("js", 256);
  });
  afterAll(() => {
    model.dispose();
    cold.dispose();
  });

  it("should drop the oldest turns, keep the system prompt, say so, and still match a cold run", async () => {
    const trims: ChatTrim[] = [];
    const session = model.chatSession({ systemPrompt: "Be brief.", onTrim: (t) => trims.push(t) });
    const options = { temperature: 0, maxTokens: 24 };
    for (let turn = 0; turn < 12; turn++) {
      const text = `${MESSAGES[turn % MESSAGES.length] ?? ""} (${turn})`;
      const trimsBefore = trims.length;
      const warm = await session.prompt(text, options).complete();
      expect(warm.promptTokens + 24).toBeLessThanOrEqual(256);
      // A cold run of what the session sent: the messages it now holds, without the reply.
      const sent = session.messages.slice(0, -1);
      expect(sent[0]).toEqual({ role: "system", content: "Be brief." });
      expect(sent.at(-1)).toEqual({ role: "user", content: text });
      const want = await cold.chat(sent, options).complete();
      expect(warm.tokens, `turn ${turn}`).toEqual(want.tokens);
      if (trims.length > trimsBefore) {
        const trim = trims.at(-1) as ChatTrim;
        expect(trim.droppedTurns).toBeGreaterThan(0);
        // Down to half the context (CHAT_TRIM_TARGET), or to the system prompt and this message alone.
        expect(trim.tokensAfter + 24 <= 128 || session.messages.length === 3).toBe(true);
        expect(trim.tokensBefore + 24).toBeGreaterThan(256);
      }
    }
    expect(trims.length).toBeGreaterThan(0);
    expect(trims.length).toBeLessThan(12); // not a trim (and a full re-prefill) every turn
  });

  it("should refuse only a message that cannot fit with its system prompt, leaving the conversation as it was", async () => {
    const session = model.chatSession({ systemPrompt: "Be brief." });
    await session.prompt("hello", { temperature: 0, maxTokens: 4 }).complete();
    const before = session.messages;
    const long = "word ".repeat(300);
    await expect(session.prompt(long, { temperature: 0, maxTokens: 4 }).complete()).rejects.toBeInstanceOf(ContextFullError);
    expect(session.messages).toEqual(before);
    const next = await session.prompt("again", { temperature: 0, maxTokens: 4 }).complete();
    expect(next.tokens.length).toBeGreaterThan(0);
  });
});

describe("ChatSession turns and the model's other work", () => {
  let model: BitnetModel;
  let cold: BitnetModel;
  beforeAll(async () => {
    model = await open("js");
    cold = await open("js");
  });
  afterAll(() => {
    model.dispose();
    cold.dispose();
  });

  it("should keep an aborted reply, and answer the next turn in full with a fresh signal", async () => {
    const session = model.chatSession();
    const controller = new AbortController();
    let seen = 0;
    const gen = session.prompt(MESSAGES[0] ?? "", { temperature: 0, maxTokens: 40, stopTokens: [], signal: controller.signal });
    for await (const piece of gen) {
      if (piece.token !== null && ++seen === 3) {
        controller.abort();
      }
    }
    const aborted = await gen.complete();
    expect(aborted.finishReason).toBe("abort");
    expect(aborted.tokens).toHaveLength(3);
    expect(session.messages.at(-1)).toEqual({ role: "assistant", content: aborted.text });
    const next = await session.prompt(MESSAGES[1] ?? "", { temperature: 0, maxTokens: 8, stopTokens: [] }).complete();
    expect(next.finishReason).toBe("length");
    expect(next.tokens).toHaveLength(8);
  });

  it("should re-prefill after another use of the model's cache, with the same tokens", async () => {
    const session = model.chatSession();
    const options = { temperature: 0, maxTokens: 12 };
    await session.prompt(MESSAGES[0] ?? "", options).complete();
    await session.prompt(MESSAGES[1] ?? "", options).complete();
    expect(session.cachedTokens).toBeGreaterThan(0);
    await model.generate("something else entirely", { maxTokens: 3 }).complete(); // clears the session's rows
    const before = session.messages;
    const warm = await session.prompt(MESSAGES[3] ?? "", options).complete();
    expect(warm.cachedTokens).toBe(0);
    const want = await cold.chat([...before, { role: "user", content: MESSAGES[3] ?? "" }], options).complete();
    expect(warm.tokens).toEqual(want.tokens);
  });

  it("should forget the turns on reset but keep the system prompt, and take a new one", async () => {
    const session = model.chatSession({ systemPrompt: "one" });
    await session.prompt("hi", { temperature: 0, maxTokens: 2 }).complete();
    expect(session.messages).toHaveLength(3);
    session.reset();
    expect(session.messages).toEqual([{ role: "system", content: "one" }]);
    session.setSystemPrompt("two");
    await session.prompt("hi", { temperature: 0, maxTokens: 2 }).complete();
    expect(session.messages[0]).toEqual({ role: "system", content: "two" });
    session.setSystemPrompt(undefined);
    expect(session.messages[0]?.role).toBe("user");
  });
});
