/**
 * The pieces of tool calling without a server: the reader that turns an answer into a call (any split of the
 * text into pieces gives the same call), the tool grammars (a call, or free text that never starts like one),
 * the default prompt format, and a Jinja template that renders `tools` and tool messages.
 */
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { defaultToolMessages, DEFAULT_TOOL_FORMAT, renderToolChat, toolCallFormat, type ConversationMessage, type ToolDefinition } from "../../../src/model/chat/index.js";
import { compileGbnf } from "../../../src/model/grammar/index.js";
import { chatTokens, readModelInfo, toolFormatOf, type ModelInfo } from "../../../src/serve/http/model-info.js";
import { INLINE_PROMPT_BYTES, PromptTokenizer } from "../../../src/serve/http/prompts.js";
import { planOutput, prefixRules } from "../../../src/serve/http/structured.js";
import { ToolCallReader, type ToolEvent } from "../../../src/serve/http/tool-calls.js";

const MODEL = path.resolve(import.meta.dirname, "../../../models/barbell-kjv.gguf");

const TOOL: ToolDefinition = {
  type: "function",
  function: { name: "get_weather", description: "Weather", parameters: { type: "object", properties: { city: { type: "string" }, days: { type: "integer" } }, required: ["city", "days"] } },
};

function read(pieces: readonly string[], mode: "call" | "auto"): { events: ToolEvent[]; reader: ToolCallReader } {
  const reader = new ToolCallReader(DEFAULT_TOOL_FORMAT, mode);
  const events = pieces.flatMap((p) => reader.push(p));
  events.push(...reader.end());
  return { events, reader };
}

describe("ToolCallReader", () => {
  const args = '{"city": "Jeru}salem\\"", "days": [1, {"a": 2}]}';
  const whole = `<tool_call>\n{"name": "get_weather", "arguments": ${args}}\n</tool_call>`;

  it("should read the same call from every split of the text into two pieces and from single characters", () => {
    const splits = [...Array(whole.length + 1).keys()].map((i) => [whole.slice(0, i), whole.slice(i)]);
    for (const pieces of [...splits, [...whole]]) {
      for (const mode of ["call", "auto"] as const) {
        const { events, reader } = read(pieces, mode);
        expect(reader.name).toBe("get_weather");
        expect(reader.arguments).toBe(args);
        expect(reader.complete).toBe(true);
        expect(events.filter((e) => e.kind === "call")).toEqual([{ kind: "call", name: "get_weather" }]);
        expect(events.filter((e) => e.kind === "content")).toEqual([]);
        expect(
          events
            .filter((e) => e.kind === "arguments")
            .map((e) => e.text)
            .join(""),
        ).toBe(args);
      }
    }
  });

  it("should give free text back as content in auto mode, including a strict prefix of the opening", () => {
    for (const text of ["And it came to pass", "<tool", "<tool_call>", "<b>bold</b>", ""]) {
      const { events, reader } = read([...text], "auto");
      expect(reader.name).toBeUndefined();
      expect(events.map((e) => (e.kind === "content" ? e.text : "?")).join("")).toBe(text);
    }
  });

  it("should report a call cut short (the budget ran out) with its partial arguments", () => {
    const { reader } = read([whole.slice(0, 60)], "call");
    expect(reader.name).toBe("get_weather");
    expect(reader.complete).toBe(false);
    expect(reader.arguments).toBe(whole.slice(0, 60).slice(whole.indexOf("{", 20)));
  });
});

describe("tool grammars", () => {
  const tools = { tools: [TOOL], choice: "auto" as const };

  it("should accept a call or free text (auto), and never text that starts like a call", () => {
    const plan = planOutput({ kind: "text" }, tools, DEFAULT_TOOL_FORMAT);
    const g = compileGbnf(plan.grammar ?? "");
    expect(g.accepts('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Ur", "days": 3}}\n</tool_call>')).toBe(true);
    for (const text of ["", "In the beginning", "<tool_call", "<tool_call>x", "<b>"]) {
      expect(g.accepts(text)).toBe(true);
    }
    expect(g.accepts("<tool_call>\nnot json")).toBe(false);
    expect(g.accepts('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Ur"}}\n</tool_call>')).toBe(false); // days is required
    expect(g.accepts('<tool_call>\n{"name": "other", "arguments": {}}\n</tool_call>')).toBe(false);
    expect(plan.tools).toEqual({ mode: "auto", format: DEFAULT_TOOL_FORMAT });
  });

  it("should allow only a call with required, only the named function with a named choice, nothing with none", () => {
    const second: ToolDefinition = { type: "function", function: { name: "count", parameters: { type: "object", properties: {} } } };
    const required = compileGbnf(planOutput({ kind: "text" }, { tools: [TOOL, second], choice: "required" }, DEFAULT_TOOL_FORMAT).grammar ?? "");
    expect(required.accepts("In the beginning")).toBe(false);
    expect(required.accepts('<tool_call>\n{"name": "count", "arguments": {}}\n</tool_call>')).toBe(true);
    const named = compileGbnf(planOutput({ kind: "text" }, { tools: [TOOL, second], choice: { name: "count" } }, DEFAULT_TOOL_FORMAT).grammar ?? "");
    expect(named.accepts('<tool_call>\n{"name": "count", "arguments": {}}\n</tool_call>')).toBe(true);
    expect(named.accepts('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Ur", "days": 3}}\n</tool_call>')).toBe(false);
    expect(planOutput({ kind: "text" }, { tools: [TOOL], choice: "none" }, DEFAULT_TOOL_FORMAT)).toEqual({ grammar: undefined, promptTools: undefined, tools: undefined });
  });

  it("should join a call and a JSON response format under auto, keeping their rules apart", () => {
    const person = { type: "object", properties: { name: { type: "string" } }, required: ["name"] };
    const plan = planOutput({ kind: "json_schema", name: "p", schema: person }, tools, DEFAULT_TOOL_FORMAT);
    const g = compileGbnf(plan.grammar ?? "");
    expect(g.accepts('{"name": "Aaron"}')).toBe(true);
    expect(g.accepts('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Ur", "days": 3}}\n</tool_call>')).toBe(true);
    expect(g.accepts("In the beginning")).toBe(false);
    expect(g.accepts('{"city": "Ur"}')).toBe(false);
    expect(prefixRules('root ::= "a#[" [x\\]] {1,2} item{0,3} # rule names\nitem ::= root', "p-")).toBe('p-root ::= "a#[" [x\\]] {1,2} p-item{0,3} # rule names\np-item ::= p-root');
    const llama3 = toolCallFormat('{{ tools }}"parameters"');
    expect(() => planOutput({ kind: "json_object" }, tools, llama3)).toThrow(/bare JSON object/);
  });

  it("should write Llama 3 calls as a bare object with parameters, and text that does not start with '{'", () => {
    const format = toolCallFormat('{% for t in tools %}{{ t | tojson }}{% endfor %}Respond as {"name": function name, "parameters": dictionary}<|python_tag|>');
    expect(format).toMatchObject({ name: "llama3", open: "", argumentsKey: "parameters" });
    const g = compileGbnf(planOutput({ kind: "text" }, tools, format).grammar ?? "");
    expect(g.accepts('{"name": "get_weather", "parameters": {"city": "Ur", "days": 3}}')).toBe(true);
    expect(g.accepts("Shalom")).toBe(true);
    expect(g.accepts("{not a call")).toBe(false);
  });
});

describe("tool prompts", () => {
  let kjv: ModelInfo;
  beforeAll(async () => {
    kjv = await readModelInfo(MODEL);
  });
  const history: ConversationMessage[] = [
    { role: "system", content: "Be brief." },
    { role: "user", content: "Weather in Ur?" },
    { role: "assistant", content: "", tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city": "Ur", "days": 1}' } }] },
    { role: "tool", content: '{"sun": true}', tool_call_id: "call_1" },
  ];

  it("should write the default format: tools in the system message, calls in the assistant turn, results as user turns", () => {
    const plain = defaultToolMessages(history, [TOOL]);
    expect(plain.map((m) => m.role)).toEqual(["system", "user", "assistant", "user"]);
    expect(plain[0]?.content).toMatch(/^Be brief\.\n\n.*<tools>\n\{"type":"function","function":\{"name":"get_weather"/s);
    expect(plain[2]?.content).toBe('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Ur", "days": 1}}\n</tool_call>');
    expect(plain[3]?.content).toBe('<tool_response>\n{"sun": true}\n</tool_response>');
    expect(defaultToolMessages([{ role: "user", content: "hi" }], [TOOL])[0]?.role).toBe("system");
    // The KJV model has no template: its prompt is the 2B-4T format over the default tool text.
    const ids = chatTokens(kjv, history, [TOOL]);
    expect(typeof ids).not.toBe("string");
    const text = kjv.tokenizer?.decode(ids as number[]) ?? "";
    expect(text).toContain("get_weather");
    expect(text).toContain("<tool_response>");
    expect(toolFormatOf(kjv)).toBe(DEFAULT_TOOL_FORMAT);
  });

  it("should tokenize a long conversation with tools in the prompt worker thread to the same ids as inline", async () => {
    const long: ConversationMessage[] = [...history, { role: "user", content: "And it came to pass. ".repeat(80) }];
    const tokenizer = new PromptTokenizer(MODEL, kjv);
    try {
      expect(Buffer.byteLength(long.map((m) => m.content).join(""))).toBeGreaterThan(INLINE_PROMPT_BYTES);
      expect(await tokenizer.encode({ kind: "chat", messages: long, tools: [TOOL] })).toEqual(chatTokens(kjv, long, [TOOL]));
    } finally {
      await tokenizer.close();
    }
  }, 60_000);

  it("should render tools, tool calls (arguments as objects) and tool results through a template that uses tools", () => {
    const template =
      "{% if tools %}TOOLS:{% for t in tools %}{{ t.function.name }};{% endfor %}\n{% endif %}" +
      "{% for m in messages %}[{{ m.role }}]{% if m.tool_calls %}{% for c in m.tool_calls %}<tool_call>{{ c.function.name }}({{ c.function.arguments.city }}){% endfor %}" +
      "{% elif m.role == 'tool' %}({{ m.tool_call_id }}) {{ m.content }}{% else %}{{ m.content }}{% endif %}\n{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}";
    const options = { bosToken: "", eosToken: "", addGenerationPrompt: true };
    // (the template engine trims the newline after a block tag, as Hugging Face renders templates)
    expect(renderToolChat(template, history, [TOOL], options).replace(/\n/g, "")).toBe(
      'TOOLS:get_weather;[system]Be brief.[user]Weather in Ur?[assistant]<tool_call>get_weather(Ur)[tool](call_1) {"sun": true}[assistant]',
    );
    const info: ModelInfo = { ...kjv, arch: "bitnet", chatTemplate: template }; // "bitnet" takes the template path
    expect(toolFormatOf(info)).toMatchObject({ name: "hermes", open: "<tool_call>\n" });
    const ids = chatTokens(info, history, [TOOL]);
    expect(kjv.tokenizer?.decode(ids as number[])).toContain("TOOLS:get_weather;");
  });
});
