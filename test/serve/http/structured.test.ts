/**
 * Structured output and tools over HTTP with the shipped models/barbell-kjv.gguf, whose free text is KJV prose:
 * every JSON reply and every tool call's arguments are there only because the grammar masks the vocabulary.
 * Through the official `openai` client (parse with zod, tool-calling round trip, streamed tool calls) and raw HTTP.
 */
import path from "node:path";
import OpenAI from "openai";
import { LengthFinishReasonError } from "openai/error";
import { zodResponseFormat } from "openai/helpers/zod";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { createServer, type BarbellServer } from "../../../src/serve/http/index.js";
import { grammarCacheStats } from "../../../src/serve/http/structured.js";
import { createAjv } from "../../grammar/validate.js";
import { post } from "./helpers.js";

const MODEL = path.resolve(import.meta.dirname, "../../../models/barbell-kjv.gguf");

let server: BarbellServer;
let url: string;
let client: OpenAI;

beforeAll(async () => {
  server = await createServer({ models: [{ name: "kjv", path: MODEL, isolation: "in-process", backends: ["native-cpu", "js"], parallel: 2 }], log: () => undefined });
  url = await server.listen(0);
  client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "unused", maxRetries: 0 });
}, 120_000);

afterAll(async () => {
  await server?.shutdown(1000);
});

const ajv = createAjv();
const messages = [{ role: "user" as const, content: "And God said unto Moses, describe the man." }];

const PERSON = {
  type: "object",
  properties: {
    name: { type: "string", maxLength: 24 },
    age: { type: "integer", minimum: 0, maximum: 150 },
    tribe: { enum: ["Judah", "Levi", "Benjamin"] },
    sons: { type: "array", items: { type: "string", maxLength: 12 }, maxItems: 3 },
  },
  required: ["name", "age", "tribe", "sons"],
  additionalProperties: false,
} as const;

const WEATHER = {
  type: "function" as const,
  function: {
    name: "get_weather",
    description: "The weather in a city",
    parameters: {
      type: "object",
      properties: { city: { type: "string", maxLength: 20 }, unit: { enum: ["celsius", "fahrenheit"] }, days: { type: "integer", minimum: 1, maximum: 7 } },
      required: ["city", "unit", "days"],
      additionalProperties: false,
    },
  },
};
const CENSUS = {
  type: "function" as const,
  function: {
    name: "count_tribe",
    parameters: { type: "object", properties: { tribe: { type: "string", maxLength: 16 }, year: { $ref: "#/$defs/year" } }, required: ["tribe"], $defs: { year: { type: "integer", minimum: 0, maximum: 3000 } } },
  },
};

function validates(schema: object, value: unknown): boolean {
  const check = ajv.compile(schema);
  return check(value) === true;
}

describe("response_format", () => {
  it("should answer json_object with a JSON object (non-stream and stream alike)", async () => {
    const r = await client.chat.completions.create({ model: "kjv", messages, max_tokens: 60, temperature: 0, response_format: { type: "json_object" } });
    const content = r.choices[0]?.message.content ?? "";
    const parsed = JSON.parse(content) as unknown;
    expect(typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)).toBe(true);
    expect(r.choices[0]?.finish_reason).toBe("stop");
    const stream = await client.chat.completions.create({ model: "kjv", messages, max_tokens: 60, temperature: 0, response_format: { type: "json_object" }, stream: true });
    let text = "";
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
    }
    expect(text).toBe(content);
  }, 60_000);

  it("should answer json_schema with JSON the schema accepts (ajv), streamed the same", async () => {
    const response_format = { type: "json_schema" as const, json_schema: { name: "person", schema: PERSON, strict: true } };
    const r = await client.chat.completions.create({ model: "kjv", messages, max_tokens: 120, temperature: 0, response_format });
    const content = r.choices[0]?.message.content ?? "";
    expect(validates(PERSON, JSON.parse(content))).toBe(true);
    expect(r.choices[0]?.finish_reason).toBe("stop");
    const stream = await client.chat.completions.create({ model: "kjv", messages, max_tokens: 120, temperature: 0, response_format, stream: true });
    let text = "";
    const finish: string[] = [];
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      if (chunk.choices[0]?.finish_reason) {
        finish.push(chunk.choices[0].finish_reason);
      }
    }
    expect(text).toBe(content);
    expect(finish).toEqual(["stop"]);
    // Sampled (seeded) choices validate too.
    const sampled = await client.chat.completions.create({ model: "kjv", messages, max_tokens: 120, temperature: 1, seed: 7, n: 2, response_format });
    for (const c of sampled.choices) {
      expect(validates(PERSON, JSON.parse(c.message.content ?? ""))).toBe(true);
    }
  }, 60_000);

  it("should return a parsed object from client.chat.completions.parse with a zod schema", async () => {
    const Verse = z.object({ book: z.enum(["Genesis", "Exodus"]), chapter: z.number().int().min(1).max(50), text: z.string().max(40) });
    const r = await client.chat.completions.parse({ model: "kjv", messages, max_tokens: 80, temperature: 0, response_format: zodResponseFormat(Verse, "verse") });
    const parsed = r.choices[0]?.message.parsed;
    expect(parsed).not.toBeNull();
    expect(Verse.parse(parsed)).toEqual(parsed);
  }, 60_000);

  it("should end with finish_reason length (truncated content) when max_tokens runs out first", async () => {
    const schema = { type: "object", properties: { verse: { type: "string", minLength: 40 } }, required: ["verse"] };
    const r = await client.chat.completions.create({ model: "kjv", messages, max_tokens: 3, temperature: 0, response_format: { type: "json_schema", json_schema: { name: "v", schema } } });
    expect(r.choices[0]?.finish_reason).toBe("length");
    expect(() => JSON.parse(r.choices[0]?.message.content ?? "")).toThrow();
    await expect(client.chat.completions.parse({ model: "kjv", messages, max_tokens: 3, response_format: { type: "json_schema", json_schema: { name: "v", schema } } })).rejects.toBeInstanceOf(
      LengthFinishReasonError,
    );
  }, 60_000);

  it("should compile a repeated schema once (request-side cache)", async () => {
    const schema = { type: "object", properties: { amen: { const: "amen" } }, required: ["amen"] };
    const body = { model: "kjv", messages, max_tokens: 20, temperature: 0, response_format: { type: "json_schema", json_schema: { name: "a", schema } } };
    const first = await post(`${url}/v1/chat/completions`, body);
    const hits = grammarCacheStats().hits;
    const second = await post(`${url}/v1/chat/completions`, body);
    expect(grammarCacheStats().hits).toBe(hits + 1);
    const text = (r: { json: unknown }): string => (r.json as { choices: { message: { content: string } }[] }).choices[0]?.message.content ?? "";
    expect(JSON.parse(text(first))).toEqual({ amen: "amen" });
    expect(text(second)).toBe(text(first));
  }, 60_000);
});

describe("a model worker in its own process", () => {
  it("should get the grammar through the worker protocol and answer under it", async () => {
    const own = await createServer({ models: [{ name: "kjv", path: MODEL, isolation: "process", backends: ["native-cpu", "js"] }], log: () => undefined });
    try {
      const base = await own.listen(0);
      const r = await post(`${base}/v1/chat/completions`, { model: "kjv", messages, max_tokens: 120, temperature: 0, response_format: { type: "json_schema", json_schema: { name: "person", schema: PERSON } } });
      const content = (r.json as { choices: { message: { content: string } }[] }).choices[0]?.message.content ?? "";
      expect(validates(PERSON, JSON.parse(content))).toBe(true);
    } finally {
      await own.shutdown(1000);
    }
  }, 120_000);
});

describe("tools", () => {
  it("should call the tool with valid arguments (tool_choice required), then answer the tool's result", async () => {
    const ask = [{ role: "user" as const, content: "What is the weather in Jerusalem?" }];
    const r = await client.chat.completions.create({ model: "kjv", messages: ask, tools: [WEATHER, CENSUS], tool_choice: "required", max_tokens: 80, temperature: 0 });
    const choice = r.choices[0];
    expect(choice?.finish_reason).toBe("tool_calls");
    expect(choice?.message.content).toBeNull();
    const calls = choice?.message.tool_calls ?? [];
    expect(calls).toHaveLength(1);
    const call = calls[0];
    if (call?.type !== "function") {
      throw new Error("expected a function call");
    }
    expect(call.id).toMatch(/^call_[0-9a-f]{24}$/);
    const tool = [WEATHER, CENSUS].find((t) => t.function.name === call.function.name);
    expect(tool).toBeDefined();
    expect(validates(tool?.function.parameters ?? {}, JSON.parse(call.function.arguments))).toBe(true);
    // The tool's result goes back; the final reply is text (tool_choice auto: the KJV model writes prose).
    const final = await client.chat.completions.create({
      model: "kjv",
      messages: [...ask, { role: "assistant", content: null, tool_calls: calls }, { role: "tool", tool_call_id: call.id, content: '{"temperature": 31}' }],
      tools: [WEATHER, CENSUS],
      max_tokens: 12,
      temperature: 0,
    });
    expect(final.choices[0]?.message.tool_calls ?? []).toEqual([]);
    expect(final.choices[0]?.message.content?.length ?? 0).toBeGreaterThan(0);
    expect(["stop", "length"]).toContain(final.choices[0]?.finish_reason);
  }, 60_000);

  it("should call the named function, with $defs refs resolved, and stream the same call in delta.tool_calls chunks", async () => {
    const body = { model: "kjv", messages, tools: [WEATHER, CENSUS], tool_choice: { type: "function" as const, function: { name: "count_tribe" } }, max_tokens: 120, temperature: 0 };
    const whole = await client.chat.completions.create(body);
    const call = whole.choices[0]?.message.tool_calls?.[0];
    if (call?.type !== "function") {
      throw new Error("expected a function call");
    }
    expect(call.function.name).toBe("count_tribe");
    expect(validates(CENSUS.function.parameters, JSON.parse(call.function.arguments))).toBe(true);
    const stream = client.chat.completions.stream(body);
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    stream.on("chunk", (c) => chunks.push(c));
    const streamed = await stream.finalChatCompletion();
    const sc = streamed.choices[0]?.message.tool_calls?.[0];
    if (sc?.type !== "function") {
      throw new Error("expected a streamed function call");
    }
    expect({ name: sc.function.name, arguments: sc.function.arguments }).toEqual({ name: call.function.name, arguments: call.function.arguments });
    expect(streamed.choices[0]?.finish_reason).toBe("tool_calls");
    const deltas = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []);
    expect(deltas[0]).toMatchObject({ index: 0, type: "function", function: { name: "count_tribe", arguments: "" } });
    expect(deltas[0]?.id).toMatch(/^call_/);
    expect(deltas.length).toBeGreaterThan(2); // the arguments came in fragments
    expect(deltas.slice(1).every((d) => d.id === undefined && d.function?.name === undefined)).toBe(true);
  }, 60_000);

  it("should answer text with tool_choice none, and text or a valid call with auto", async () => {
    const none = await client.chat.completions.create({ model: "kjv", messages, tools: [WEATHER], tool_choice: "none", max_tokens: 8, temperature: 0 });
    expect(none.choices[0]?.message.tool_calls ?? []).toEqual([]);
    expect(typeof none.choices[0]?.message.content).toBe("string");
    for (const seed of [1, 2, 3]) {
      const auto = await client.chat.completions.create({ model: "kjv", messages, tools: [WEATHER], max_tokens: 60, temperature: 1, seed });
      const c = auto.choices[0];
      if (c?.finish_reason === "tool_calls") {
        const call = c.message.tool_calls?.[0];
        expect(call?.type === "function" && validates(WEATHER.function.parameters, JSON.parse(call.function.arguments))).toBe(true);
      } else {
        expect(c?.message.content?.startsWith("<tool_call>\n")).toBe(false);
      }
    }
  }, 60_000);
});

describe("tools and a response format together", () => {
  it("should answer auto with either a valid call or JSON the schema accepts, never free text", async () => {
    const response_format = { type: "json_schema" as const, json_schema: { name: "person", schema: PERSON } };
    for (const seed of [1, 2, 3, 4]) {
      const r = await client.chat.completions.create({ model: "kjv", messages, tools: [WEATHER], response_format, max_tokens: 120, temperature: 1, seed });
      const c = r.choices[0];
      if (c?.finish_reason === "tool_calls") {
        const call = c.message.tool_calls?.[0];
        expect(call?.type === "function" && validates(WEATHER.function.parameters, JSON.parse(call.function.arguments))).toBe(true);
      } else {
        expect(c?.finish_reason).toBe("stop");
        expect(validates(PERSON, JSON.parse(c?.message.content ?? ""))).toBe(true);
      }
    }
  }, 60_000);
});

describe("refusals", () => {
  const chat = (extra: Record<string, unknown>): Promise<{ status: number; json: unknown }> => post(`${url}/v1/chat/completions`, { model: "kjv", messages, max_tokens: 8, ...extra });
  const schemaFormat = (schema: unknown, name = "s"): Record<string, unknown> => ({ response_format: { type: "json_schema", json_schema: { name, schema } } });
  let deep: Record<string, unknown> = { type: "string" };
  for (let i = 0; i < 80; i++) {
    deep = { type: "array", items: deep };
  }
  const manyTools = Array.from({ length: 30 }, (_, k) => ({
    type: "function",
    function: { name: `t${k}`, parameters: { type: "object", properties: Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`f${k}_${i}`, { type: "string", maxLength: 40 }])) } },
  }));
  const cases: [string, Record<string, unknown>, string, RegExp][] = [
    ["tools whose call grammar is over the request limit", { tools: manyTools, tool_choice: "required" }, "tools", /MAX_REQUEST_GRAMMAR_CHARS/],
    ["unknown response_format type", { response_format: { type: "xml" } }, "response_format.type", /text, json_object, json_schema/],
    ["response_format not an object", { response_format: "json" }, "response_format", /must be an object/],
    ["json_schema without a name", { response_format: { type: "json_schema", json_schema: { schema: {} } } }, "response_format.json_schema.name", /1\.\.64/],
    ["json_schema name with a space", schemaFormat({ type: "object" }, "a b"), "response_format.json_schema.name", /1\.\.64/],
    ["json_schema name of 65 characters", schemaFormat({ type: "object" }, "a".repeat(65)), "response_format.json_schema.name", /1\.\.64/],
    ["unsupported keyword", schemaFormat({ type: "object", properties: { a: { type: "string", not: { const: "x" } } } }), "response_format.json_schema.schema", /\bnot\b/],
    ["uniqueItems", schemaFormat({ type: "array", uniqueItems: true }), "response_format.json_schema.schema", /uniqueItems/],
    ["a schema nested past the depth limit", schemaFormat(deep), "response_format.json_schema.schema", /MAX_SCHEMA_DEPTH|deep/i],
    ["a malformed schema", schemaFormat({ type: "object", required: "a" }), "response_format.json_schema.schema", /required/],
    ["stop with a schema", { ...schemaFormat({ type: "object" }), stop: ["}"] }, "stop", /stop/],
    ["tools not an array", { tools: { type: "function" } }, "tools", /array/],
    ["a bad function name", { tools: [{ type: "function", function: { name: "get weather" } }] }, "tools[0].function.name", /1\.\.64/],
    ["two tools with one name", { tools: [WEATHER, WEATHER] }, "tools[1].function.name", /earlier/],
    ["parameters of type string", { tools: [{ type: "function", function: { name: "f", parameters: { type: "string" } } }] }, "tools[0].function.parameters", /type "object"/],
    ["parameters with an unsupported keyword", { tools: [{ type: "function", function: { name: "f", parameters: { type: "object", properties: { a: { type: "number", multipleOf: 2 } } } } }] }, "tools[0].function.parameters", /multipleOf/],
    ["tool_choice naming an unknown function", { tools: [WEATHER], tool_choice: { type: "function", function: { name: "nope" } } }, "tool_choice", /not among/],
    ["tool_choice without tools", { tool_choice: "required" }, "tool_choice", /only allowed/],
    ["a bad tool_choice", { tools: [WEATHER], tool_choice: "always" }, "tool_choice", /none/],
    ["auto tools with a bad response schema", { tools: [WEATHER], ...schemaFormat({ type: "object", minProperties: 1 }) }, "response_format.json_schema.schema", /minProperties/],
    ["a tool message without tool_call_id", { messages: [...messages, { role: "tool", content: "1" }] }, "messages[1].tool_call_id", /tool_call_id/],
    ["a tool call without an id", { messages: [{ role: "assistant", content: null, tool_calls: [{ type: "function", function: { name: "f", arguments: "{}" } }] }] }, "messages[0].tool_calls[0]", /id/],
    ["legacy functions", { functions: [{ name: "f" }] }, "functions", /tools/],
  ];
  it.each(cases)("should answer 400 in OpenAI's shape for %s", async (_what, extra, param, message) => {
    const r = await chat(extra);
    expect(r.status).toBe(400);
    const error = (r.json as { error: { message: string; type: string; param: string | null; code: string | null } }).error;
    expect(error.type).toBe("invalid_request_error");
    expect(error.param).toBe(param);
    expect(error.message).toMatch(message);
    expect(error.message).not.toMatch(/\/work|\bat .*\.ts:\d+/); // no paths, no stacks
  });
});
