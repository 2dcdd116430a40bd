/** The OpenAI endpoints through the official `openai` client and raw HTTP, on an in-process model. */
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadModel } from "../../../src/engine/model.js";
import { post, startServer, writeModel, type Running } from "./helpers.js";

let model: Awaited<ReturnType<typeof writeModel>>;
let running: Running;
let client: OpenAI;
beforeAll(async () => {
  model = await writeModel();
  running = await startServer(model.file);
  client = new OpenAI({ baseURL: `${running.url}/v1`, apiKey: "unused", maxRetries: 0 });
});
afterAll(async () => {
  await running.server.shutdown(1000);
  await model.remove();
});

const messages = [{ role: "user" as const, content: "Hello there" }];

async function engineChat(maxTokens: number): Promise<string> {
  using m = await loadModel(model.file, { backends: ["js"], autotune: false });
  return (await m.chat(messages, { temperature: 0, maxTokens }).complete()).text;
}

describe("POST /v1/chat/completions", () => {
  it("should answer with what the engine generates (greedy), with usage", async () => {
    const r = await client.chat.completions.create({ model: "tiny", messages, max_tokens: 6, temperature: 0 });
    expect(r.object).toBe("chat.completion");
    expect(r.choices[0]?.message.content).toBe(await engineChat(6));
    expect(r.choices[0]?.finish_reason).toBe("length");
    expect(r.usage).toMatchObject({ completion_tokens: 6 });
    expect(r.usage?.total_tokens).toBe((r.usage?.prompt_tokens ?? 0) + 6);
  });

  it("should stream the same text as server-sent events, ending with a usage chunk", async () => {
    const stream = await client.chat.completions.create({ model: "tiny", messages, max_tokens: 6, temperature: 0, stream: true, stream_options: { include_usage: true } });
    let text = "";
    const finish: (string | null)[] = [];
    let usage: unknown;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      finish.push(chunk.choices[0]?.finish_reason ?? null);
      usage = chunk.usage ?? usage;
    }
    expect(text).toBe(await engineChat(6));
    expect(finish.filter((f) => f !== null)).toEqual(["length"]);
    expect(usage).toMatchObject({ completion_tokens: 6 });
  });

  it("should return n seeded choices with logprobs and top_logprobs", async () => {
    const r = await client.chat.completions.create({ model: "tiny", messages, max_tokens: 4, seed: 5, n: 2, logprobs: true, top_logprobs: 3 });
    expect(r.choices.map((c) => c.index)).toEqual([0, 1]);
    const content = r.choices[0]?.logprobs?.content ?? [];
    expect(content).toHaveLength(4);
    for (const entry of content) {
      expect(entry.logprob).toBeLessThanOrEqual(0);
      expect(entry.top_logprobs).toHaveLength(3);
    }
    const again = await client.chat.completions.create({ model: "tiny", messages, max_tokens: 4, seed: 5, n: 2 });
    expect(again.choices.map((c) => c.message.content)).toEqual(r.choices.map((c) => c.message.content));
  });

  it("should stop at a stop string", async () => {
    const full = await engineChat(12);
    const stop = full.slice(3, 5);
    const r = await client.chat.completions.create({ model: "tiny", messages, max_tokens: 12, temperature: 0, stop: [stop] });
    expect(r.choices[0]?.message.content).toBe(full.slice(0, full.indexOf(stop)));
    expect(r.choices[0]?.finish_reason).toBe("stop");
  });
});

describe("POST /v1/completions", () => {
  it("should complete text and token-id prompts, streaming and not, with logprobs", async () => {
    const r = await client.completions.create({ model: "tiny", prompt: "The cat", max_tokens: 5, temperature: 0, logprobs: 2 });
    expect(r.object).toBe("text_completion");
    expect(r.choices[0]?.logprobs?.tokens).toHaveLength(5);
    expect(r.choices[0]?.logprobs?.top_logprobs?.[0] ?? {}).toSatisfy((o: object) => Object.keys(o).length >= 1);
    const stream = await client.completions.create({ model: "tiny", prompt: "The cat", max_tokens: 5, temperature: 0, stream: true });
    let text = "";
    for await (const chunk of stream) {
      text += chunk.choices[0]?.text ?? "";
    }
    expect(text).toBe(r.choices[0]?.text);
    const ids = await client.completions.create({ model: "tiny", prompt: [1, 2, 3], max_tokens: 3, temperature: 0 });
    expect(ids.usage).toMatchObject({ prompt_tokens: 3, completion_tokens: 3 });
    const echoed = await client.completions.create({ model: "tiny", prompt: "The cat", max_tokens: 5, temperature: 0, echo: true });
    expect(echoed.choices[0]?.text).toBe(`The cat${r.choices[0]?.text ?? ""}`);
  });
});

describe("request validation", () => {
  const chat = { model: "tiny", messages };
  const cases: [string, Record<string, unknown>, string | null][] = [
    ["missing messages", { model: "tiny" }, "messages"],
    ["empty messages", { model: "tiny", messages: [] }, "messages"],
    ["a bad role", { model: "tiny", messages: [{ role: "robot", content: "x" }] }, "messages[0].role"],
    ["a content that is a number", { model: "tiny", messages: [{ role: "user", content: 3 }] }, "messages[0].content"],
    ["a model that is not a string", { ...chat, model: 7 }, "model"],
    ["max_tokens 0", { ...chat, max_tokens: 0 }, "max_tokens"],
    ["max_tokens beyond the context", { ...chat, max_tokens: 257 }, "max_tokens"],
    ["max_tokens that leaves no room for the prompt", { ...chat, max_tokens: 256 }, "max_tokens"],
    ["a fractional max_tokens", { ...chat, max_tokens: 2.5 }, "max_tokens"],
    ["temperature 3", { ...chat, temperature: 3 }, "temperature"],
    ["temperature as a string", { ...chat, temperature: "hot" }, "temperature"],
    ["top_p 0", { ...chat, top_p: 0 }, "top_p"],
    ["five stop strings", { ...chat, stop: ["a", "b", "c", "d", "e"] }, "stop"],
    ["an empty stop string", { ...chat, stop: "" }, "stop"],
    ["a negative seed", { ...chat, seed: -1 }, "seed"],
    ["n above the limit", { ...chat, n: 9 }, "n"],
    ["top_logprobs without logprobs", { ...chat, top_logprobs: 2 }, "top_logprobs"],
    ["top_logprobs 21", { ...chat, logprobs: true, top_logprobs: 21 }, "top_logprobs"],
    ["stream as a string", { ...chat, stream: "yes" }, "stream"],
    ["stream_options without stream", { ...chat, stream_options: { include_usage: true } }, "stream_options"],
    ["a tool without a function", { ...chat, tools: [{ type: "function" }] }, "tools[0]"],
    ["a presence penalty", { ...chat, presence_penalty: 1 }, "presence_penalty"],
  ];
  it.each(cases)("should answer 400 in OpenAI's shape for %s", async (_name, body, param) => {
    const r = await post(`${running.url}/v1/chat/completions`, body);
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ error: { type: "invalid_request_error", param } });
    expect(JSON.stringify(r.json)).not.toMatch(/\n\s+at /);
  });

  it.each([
    ["an empty prompt", { model: "tiny", prompt: "" }],
    ["two prompts", { model: "tiny", prompt: ["a", "b"] }],
    ["token ids outside the vocabulary", { model: "tiny", prompt: [1, 300] }],
    ["logprobs 6", { model: "tiny", prompt: "a", logprobs: 6 }],
    ["a body that is an array", [1, 2]],
  ])("should answer 400 for a completion with %s", async (_name, body) => {
    const r = await post(`${running.url}/v1/completions`, body);
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ error: { type: "invalid_request_error" } });
  });

  it("should answer 400 for malformed JSON, 404 for an unknown model or route, 413 for a huge body", async () => {
    expect((await post(`${running.url}/v1/chat/completions`, "{nope")).status).toBe(400);
    const unknown = await post(`${running.url}/v1/chat/completions`, { ...chat, model: "gpt-9" });
    expect(unknown).toMatchObject({ status: 404, json: { error: { code: "model_not_found", param: "model" } } });
    expect((await fetch(`${running.url}/v2/nothing`)).status).toBe(404);
    const huge = await post(`${running.url}/v1/completions`, { model: "tiny", prompt: "x".repeat(2 * 1024 * 1024) });
    expect(huge.status).toBe(413);
    expect(huge.json).toMatchObject({ error: { type: "invalid_request_error" } });
  });
});

describe("models, health and metrics", () => {
  it("should list the model with its metadata", async () => {
    const list = await client.models.list();
    expect(list.data.map((m) => m.id)).toEqual(["tiny"]);
    const one = (await (await fetch(`${running.url}/v1/models/tiny`)).json()) as { metadata: Record<string, unknown> };
    expect(one.metadata).toMatchObject({ arch: "bitnet-b1.58", context_length: 256, random_weights: false });
  });

  it("should be live and ready once the model is loaded", async () => {
    expect(await (await fetch(`${running.url}/health/live`)).json()).toEqual({ status: "ok" });
    const ready = await fetch(`${running.url}/health/ready`);
    expect(ready.status).toBe(200);
    // No API keys and no publicHealth: nobody is authorised to see details (test/serve/http/faults.test.ts has them).
    expect(await ready.json()).toEqual({ status: "ready" });
  });

  it("should count requests and tokens in Prometheus format", async () => {
    await client.completions.create({ model: "tiny", prompt: [5, 6], max_tokens: 2, temperature: 0 });
    const text = await (await fetch(`${running.url}/metrics`)).text();
    expect(text).toMatch(/barbell_http_requests_total\{model="tiny",endpoint="\/v1\/completions",status="200"\} \d+/);
    expect(text).toMatch(/barbell_tokens_total\{model="tiny",kind="completion"\} \d+/);
    expect(text).toMatch(/barbell_time_to_first_token_seconds_count\{model="tiny"\} [1-9]/);
    expect(text).toContain('barbell_worker_restarts{model="tiny"} 0');
    expect(text).toContain('barbell_worker_escalations{model="tiny"} 0');
    expect(text).not.toContain("nodejs_version_info");
    expect(text).toContain('barbell_queue_depth{model="tiny"} 0');
    expect(text).toContain("barbell_backend_fallbacks_total");
  });
});
