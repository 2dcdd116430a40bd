/**
 * Large prompts (issue 13 item 5): refused by byte length before any tokenizing when they cannot fit, and
 * tokenized in a worker thread (not on the event loop) when long; the worker's ids equal the inline ones.
 */
import fs from "node:fs/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { makeBitnetFixture } from "../../../src/model/bitnet/fixture.js";
import { INLINE_PROMPT_BYTES, MAX_QUEUED_PROMPTS, promptByteLimit, PromptTokenizer } from "../../../src/serve/http/prompts.js";
import { chatTokens, readModelInfo, type ModelInfo } from "../../../src/serve/http/model-info.js";
import { ApiError } from "../../../src/serve/http/errors.js";
import { post, startServer, writeModel, type Running } from "./helpers.js";

let model: Awaited<ReturnType<typeof writeModel>>;
let info: ModelInfo;
let running: Running | undefined;
beforeAll(async () => {
  model = await writeModel();
  // A long context, so prompts past INLINE_PROMPT_BYTES fit the tiny vocabulary's token counts.
  await fs.writeFile(model.file, makeBitnetFixture({ layers: 1, hidden: 128, ffn: 256, vocab: 300, contextLength: 4096, seed: 3 }));
  info = await readModelInfo(model.file);
});
afterEach(async () => {
  await running?.server.shutdown(100);
  running = undefined;
  vi.restoreAllMocks();
});
afterAll(async () => {
  await model.remove();
});

/** Text of about `bytes` bytes that tokenizes to fewer tokens than bytes (words the tiny vocabulary has). */
function words(bytes: number): string {
  return "ab ".repeat(Math.ceil(bytes / 3)).slice(0, bytes);
}

describe("prompt byte bound", () => {
  it("should bound a prompt's bytes by context × longest token × 2", () => {
    expect(info.maxTokenBytes).toBeGreaterThan(0);
    let longest = 0;
    for (let id = 0; id < info.vocabSize; id++) {
      longest = Math.max(longest, Buffer.byteLength(info.tokenizer?.tokenText(id) ?? ""));
    }
    expect(info.maxTokenBytes).toBe(longest);
    expect(promptByteLimit(info)).toBe(info.contextLength * longest * 2);
  });

  it("should refuse a prompt that cannot fit by its bytes, without tokenizing it", async () => {
    running = await startServer(model.file);
    const served = running.server.served[0]?.info.tokenizer;
    const encode = vi.spyOn(served as NonNullable<typeof served>, "encode");
    const text = "x".repeat(promptByteLimit(info) + 1); // no spaces: the costliest text to tokenize
    for (const body of [
      { model: "tiny", prompt: text, max_tokens: 1 },
      { model: "tiny", messages: [{ role: "user", content: text }], max_tokens: 1 },
    ]) {
      const r = await post(`${running.url}/v1/${"prompt" in body ? "completions" : "chat/completions"}`, body);
      expect(r.status).toBe(400);
      expect(r.json).toMatchObject({ error: { code: "context_length_exceeded", param: "prompt" in body ? "prompt" : "messages" } });
      expect((r.json as { error: { message: string } }).error.message).toContain(`the prompt is ${text.length} bytes`);
    }
    expect(encode).not.toHaveBeenCalled();
  });
});

describe("tokenizing off the event loop", () => {
  it("should tokenize a long prompt in the worker (same ids as inline) and a short one inline", async () => {
    running = await startServer(model.file, { parallel: 2, backends: ["native-cpu", "js"] });
    const tokenizer = running.server.served[0]?.info.tokenizer;
    const encode = vi.spyOn(tokenizer as NonNullable<typeof tokenizer>, "encode");
    const long = words(INLINE_PROMPT_BYTES * 3);
    const expected = info.tokenizer?.encode(long).length ?? -1;
    expect(expected).toBeLessThan(info.contextLength);
    const r = await post(`${running.url}/v1/completions`, { model: "tiny", prompt: long, max_tokens: 1, temperature: 0 });
    expect(r.status).toBe(200);
    expect((r.json as { usage: { prompt_tokens: number } }).usage.prompt_tokens).toBe(expected);
    expect(encode.mock.calls.some(([text]) => text === long)).toBe(false); // not on the server's thread

    const short = words(INLINE_PROMPT_BYTES - 1);
    const s = await post(`${running.url}/v1/completions`, { model: "tiny", prompt: short, max_tokens: 1, temperature: 0 });
    expect(s.status).toBe(200);
    expect(encode.mock.calls.some(([text]) => text === short)).toBe(true);
  });

  it("should answer many long prompts at once with the inline ids, chat included", async () => {
    running = await startServer(model.file, { parallel: 4, queue: 16, backends: ["native-cpu", "js"] });
    const prompts = Array.from({ length: 10 }, (_, i) => `${i} ${words(INLINE_PROMPT_BYTES * 2 + i * 7)}`);
    const answers = await Promise.all(prompts.map((prompt) => post(`${running?.url}/v1/completions`, { model: "tiny", prompt, max_tokens: 1 })));
    answers.forEach((a, i) => {
      expect(a.status).toBe(200);
      expect((a.json as { usage: { prompt_tokens: number } }).usage.prompt_tokens).toBe(info.tokenizer?.encode(prompts[i] ?? "").length);
    });
    // A long chat message goes the same way, to the same ids as the inline chat formatting.
    const messages = [{ role: "user" as const, content: prompts[0] ?? "" }];
    const chat = await post(`${running.url}/v1/chat/completions`, { model: "tiny", messages, max_tokens: 1 });
    expect(chat.status).toBe(200);
    expect((chat.json as { usage: { prompt_tokens: number } }).usage.prompt_tokens).toBe((chatTokens(info, messages) as number[]).length);
  });

  it("should refuse prompts past MAX_QUEUED_PROMPTS with 429 and serve the rest", async () => {
    const tokenizer = new PromptTokenizer(model.file, info);
    try {
      const text = words(INLINE_PROMPT_BYTES * 2);
      const settled = await Promise.allSettled(Array.from({ length: MAX_QUEUED_PROMPTS + 5 }, () => tokenizer.encode({ kind: "text", text })));
      const refused = settled.filter((s) => s.status === "rejected");
      expect(refused).toHaveLength(5);
      for (const r of refused) {
        expect((r as PromiseRejectedResult).reason).toBeInstanceOf(ApiError);
        expect(((r as PromiseRejectedResult).reason as ApiError).status).toBe(429);
      }
      const ids = info.tokenizer?.encode(text);
      for (const s of settled.filter((x) => x.status === "fulfilled")) {
        expect((s as PromiseFulfilledResult<number[]>).value).toEqual(Array.from(ids ?? []));
      }
      expect(tokenizer.queued).toBe(0);
    } finally {
      await tokenizer.close();
    }
  });

  it("should answer 503 for prompts waiting when the worker stops, and for long prompts after close", async () => {
    const tokenizer = new PromptTokenizer(model.file, info);
    const text = words(INLINE_PROMPT_BYTES * 2);
    await tokenizer.encode({ kind: "text", text }); // the worker runs
    const waiting = Array.from({ length: 5 }, () => tokenizer.encode({ kind: "text", text: `${text} more` }));
    await tokenizer.close();
    for (const w of await Promise.allSettled(waiting)) {
      // Each was answered or refused with 503, none left hanging.
      if (w.status === "rejected") {
        expect(w.reason).toMatchObject({ status: 503 });
      }
    }
    await expect(tokenizer.encode({ kind: "text", text })).rejects.toMatchObject({ status: 503, code: "shutting_down" });
    expect(await tokenizer.encode({ kind: "text", text: "ab" })).toEqual(Array.from(info.tokenizer?.encode("ab") ?? [])); // short: inline
  });
});
