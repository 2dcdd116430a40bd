/**
 * Tools (function calling) in chat prompts: OpenAI's tool definitions, assistant messages that called tools and
 * the tools' results, rendered into a prompt — through the model's Jinja template when it uses `tools`, else in
 * the default format below — and the format a model writes its calls in (docs/serving.md, "Tools").
 *
 * Default format (Hermes / Qwen 2.5 style, used when the template does not take `tools` or there is no template):
 * a system message lists the tools as JSON lines inside `<tools></tools>` and asks for a call as
 * `<tool_call>\n{"name": …, "arguments": {…}}\n</tool_call>`; an earlier assistant call is written the same way in
 * its turn, and a tool result is a user turn `<tool_response>\n…\n</tool_response>`.
 */
import { FormatError } from "../../core/errors.js";
import { renderJinjaContext, type JinjaChatOptions } from "./jinja.js";
import type { ChatMessage } from "./messages.js";

/** A role of a conversation with tools: the chat roles plus `tool` (a tool's result). */
export type ConversationRole = "system" | "user" | "assistant" | "tool";

/** One call an assistant made (OpenAI's shape; `arguments` is JSON text). */
export interface ToolCall {
  readonly id: string;
  readonly type: "function";
  readonly function: { readonly name: string; readonly arguments: string };
}

/** A message of a conversation that may hold tool calls and tool results. */
export interface ConversationMessage {
  readonly role: ConversationRole;
  readonly content: string;
  /** An assistant's calls. */
  readonly tool_calls?: readonly ToolCall[];
  /** A tool result: the call it answers. */
  readonly tool_call_id?: string;
  /** A tool result: the function's name, when the client gave it. */
  readonly name?: string;
}

/** A tool as OpenAI defines it; `parameters` is a JSON Schema of type object. */
export interface ToolDefinition {
  readonly type: "function";
  readonly function: {
    readonly name: string;
    readonly description?: string;
    readonly parameters: Readonly<Record<string, unknown>>;
    readonly strict?: boolean;
  };
}

/**
 * How a model writes a call: the text around the call object and the key of its arguments. `open` empty means
 * the call is a bare JSON object (then free text may not start with `{`).
 */
export interface ToolCallFormat {
  readonly name: "default" | "hermes" | "llama3";
  readonly open: string;
  readonly close: string;
  readonly argumentsKey: "arguments" | "parameters";
}

/** The default format (also what templates that write `<tool_call>` use). */
export const DEFAULT_TOOL_FORMAT: ToolCallFormat = Object.freeze({ name: "default", open: "<tool_call>\n", close: "\n</tool_call>", argumentsKey: "arguments" });
const HERMES_FORMAT: ToolCallFormat = Object.freeze({ ...DEFAULT_TOOL_FORMAT, name: "hermes" });
/** Llama 3.1/3.2 templates: `{"name": …, "parameters": {…}}` as the whole answer. */
const LLAMA3_FORMAT: ToolCallFormat = Object.freeze({ name: "llama3", open: "", close: "", argumentsKey: "parameters" });

/** Whether a Jinja chat template renders `tools` (Hugging Face's convention: a `tools` variable). */
export function templateUsesTools(template: string | undefined): boolean {
  return template !== undefined && /\btools\b/.test(template);
}

/**
 * The call format for a model: taken from a template that renders `tools` (`<tool_call>` → Hermes; Llama 3's
 * `"parameters"` wording or `<|python_tag|>` → Llama 3 JSON), else {@link DEFAULT_TOOL_FORMAT}.
 */
export function toolCallFormat(template: string | undefined): ToolCallFormat {
  if (template === undefined || !templateUsesTools(template)) {
    return DEFAULT_TOOL_FORMAT;
  }
  if (template.includes("<tool_call>")) {
    return HERMES_FORMAT;
  }
  if (template.includes("<|python_tag|>") || template.includes('"parameters"')) {
    return LLAMA3_FORMAT;
  }
  return DEFAULT_TOOL_FORMAT;
}

/** Whether a conversation needs the tool-aware rendering (tools offered, calls or results in its history). */
export function hasToolContent(messages: readonly ConversationMessage[], tools: readonly ToolDefinition[] | undefined): boolean {
  return (tools !== undefined && tools.length > 0) || messages.some((m) => m.role === "tool" || (m.tool_calls?.length ?? 0) > 0);
}

/** The default format's system text for `tools`. */
export function defaultToolsPrompt(tools: readonly ToolDefinition[]): string {
  const lines = tools.map((t) => JSON.stringify(t));
  return [
    "You may call one of the functions below to help with the user's request. They are listed as JSON inside <tools></tools>:",
    "<tools>",
    ...lines,
    "</tools>",
    "To call a function, answer with only this, the arguments following the function's parameters schema:",
    '<tool_call>\n{"name": <function-name>, "arguments": <arguments-object>}\n</tool_call>',
  ].join("\n");
}

function callText(call: ToolCall, format: ToolCallFormat): string {
  return `${format.open}{"name": ${JSON.stringify(call.function.name)}, "${format.argumentsKey}": ${call.function.arguments}}${format.close}`;
}

/**
 * A conversation with tools as plain chat messages in the default format: the tools' system text before the
 * first system message's content (or as a new first message), calls written into their assistant turns, tool
 * results as user turns. `tools` undefined or empty: no tool text (tool_choice "none").
 */
export function defaultToolMessages(messages: readonly ConversationMessage[], tools: readonly ToolDefinition[] | undefined): ChatMessage[] {
  const out: ChatMessage[] = [];
  for (const m of messages) {
    if (m.role === "tool") {
      out.push({ role: "user", content: `<tool_response>\n${m.content}\n</tool_response>` });
    } else if (m.role === "assistant" && (m.tool_calls?.length ?? 0) > 0) {
      const calls = (m.tool_calls ?? []).map((c) => callText(c, DEFAULT_TOOL_FORMAT));
      out.push({ role: "assistant", content: [m.content, ...calls].filter((s) => s !== "").join("\n") });
    } else {
      out.push({ role: m.role, content: m.content });
    }
  }
  if (tools !== undefined && tools.length > 0) {
    const text = defaultToolsPrompt(tools);
    const first = out[0];
    if (first?.role === "system") {
      out[0] = { role: "system", content: `${first.content}\n\n${text}` };
    } else {
      out.unshift({ role: "system", content: text });
    }
  }
  return out;
}

function parsedArguments(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text; // templates that need an object get the text; the request was the client's to get right
  }
}

/**
 * Renders a conversation with tools through a Jinja template that uses `tools`: messages keep `tool_calls`
 * (arguments parsed to objects, as Hugging Face templates expect), `tool_call_id` and `name`; `tools` is the
 * OpenAI list, or undefined for none.
 *
 * @throws FormatError from the template (does not parse, fails to render, too long).
 */
export function renderToolChat(template: string, messages: readonly ConversationMessage[], tools: readonly ToolDefinition[] | undefined, options: JinjaChatOptions): string {
  if (messages.length === 0) {
    throw new FormatError("bad-value", "[chat] a conversation needs at least one message");
  }
  const shaped = messages.map((m) => ({
    role: m.role,
    content: m.content,
    ...(m.tool_calls === undefined ? {} : { tool_calls: m.tool_calls.map((c) => ({ id: c.id, type: c.type, function: { name: c.function.name, arguments: parsedArguments(c.function.arguments) } })) }),
    ...(m.tool_call_id === undefined ? {} : { tool_call_id: m.tool_call_id }),
    ...(m.name === undefined ? {} : { name: m.name }),
  }));
  return renderJinjaContext(template, { messages: shaped, ...(tools === undefined || tools.length === 0 ? {} : { tools }) }, options);
}
