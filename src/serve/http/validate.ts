/**
 * Validation of OpenAI-style request bodies. Every field is checked for type and range; the first problem
 * becomes a 400 in OpenAI's error shape naming the field (`param`). Unknown fields are ignored, as OpenAI's
 * clients send some (`user`, `metadata`); known features barbell does not implement are refused by name.
 */
import { MAX_CHAT_MESSAGES, MAX_MESSAGE_LENGTH, type ConversationMessage, type ConversationRole, type ToolCall } from "../../model/chat/index.js";
import { badRequest } from "./errors.js";
import { checkResponseFormat, checkToolChoice, checkTools, MAX_TOOLS, NAME_PATTERN, type ResponseFormat, type ToolsParams } from "./structured.js";

/** Most choices per request (`n`): each choice is a full generation. */
export const MAX_N = 8;
/** Most stop sequences (OpenAI's limit). */
export const MAX_STOP = 4;
/** Longest stop sequence, in UTF-16 code units. */
export const MAX_STOP_LENGTH = 256;
/** Most alternatives per token for chat `top_logprobs` (the sampler reports at most 20). */
export const MAX_TOP_LOGPROBS = 20;
/** Most alternatives per token for completions `logprobs` (OpenAI's limit). */
export const MAX_COMPLETION_LOGPROBS = 5;
/** Longest completion prompt, in UTF-16 code units (far beyond any context window; bounds tokenizer work). */
export const MAX_PROMPT_LENGTH = 4 * 1024 * 1024;

/** Sampling and output options common to both endpoints. */
export interface GenerationParams {
  readonly model: string;
  /** Undefined: as many as fit in the context. */
  readonly maxTokens: number | undefined;
  readonly sampling: {
    readonly temperature?: number;
    readonly topP?: number;
    readonly topK?: number;
    readonly minP?: number;
    readonly repetitionPenalty?: number;
    readonly seed?: number;
  };
  readonly stop: readonly string[];
  readonly n: number;
  readonly stream: boolean;
  readonly includeUsage: boolean;
  /** Whether to return logprobs, and how many alternatives per token. */
  readonly logprobs: boolean;
  readonly topLogprobs: number;
}

export interface ChatParams extends GenerationParams {
  readonly kind: "chat";
  readonly messages: readonly ConversationMessage[];
  /** `response_format` (text unless asked). */
  readonly responseFormat: ResponseFormat;
  /** `tools` and `tool_choice`; undefined without tools. */
  readonly tools: ToolsParams | undefined;
}

export interface CompletionParams extends GenerationParams {
  readonly kind: "completion";
  /** Text, or token ids. */
  readonly prompt: string | readonly number[];
  readonly echo: boolean;
}

type Body = Record<string, unknown>;

function isObject(v: unknown): v is Body {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A value as an error message shows it: short, and never the whole of a large one. */
function describe(v: unknown): string {
  if (v === undefined) {
    return "nothing (the field is missing)";
  }
  if (v === null) {
    return "null";
  }
  if (Array.isArray(v)) {
    return v.length === 0 ? "an empty array" : `an array of ${v.length}`;
  }
  if (typeof v === "string") {
    return v === "" ? "an empty string" : `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  }
  if (typeof v === "number") {
    return String(v);
  }
  return typeof v === "object" ? "an object" : `${typeof v} ${String(v)}`;
}

function optNumber(body: Body, key: string, min: number, max: number, options: { minExclusive?: boolean } = {}): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) {
    return undefined;
  }
  const low = options.minExclusive === true ? `> ${min}` : `>= ${min}`;
  if (typeof v !== "number" || !Number.isFinite(v) || v > max || (options.minExclusive === true ? v <= min : v < min)) {
    throw badRequest(key, `'${key}' must be a number ${low} and <= ${max}, got ${describe(v)}`);
  }
  return v;
}

function optInt(body: Body, key: string, min: number, max: number): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) {
    return undefined;
  }
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) {
    throw badRequest(key, `'${key}' must be an integer in ${min}..${max}, got ${describe(v)}`);
  }
  return v;
}

function optBool(body: Body, key: string): boolean | undefined {
  const v = body[key];
  if (v === undefined || v === null) {
    return undefined;
  }
  if (typeof v !== "boolean") {
    throw badRequest(key, `'${key}' must be a boolean, got ${describe(v)}`);
  }
  return v;
}

function refuseUnless(body: Body, key: string, allowed: (v: unknown) => boolean, why: string): void {
  const v = body[key];
  if (v !== undefined && v !== null && !allowed(v)) {
    throw badRequest(key, `'${key}' ${why}`, "unsupported_parameter");
  }
}

function stops(body: Body): string[] {
  const v = body["stop"];
  if (v === undefined || v === null) {
    return [];
  }
  const list = typeof v === "string" ? [v] : v;
  if (!Array.isArray(list) || list.length > MAX_STOP || !list.every((s) => typeof s === "string" && s.length > 0 && s.length <= MAX_STOP_LENGTH)) {
    throw badRequest("stop", `'stop' must be a non-empty string or up to ${MAX_STOP} of them, each at most ${MAX_STOP_LENGTH} characters`);
  }
  return list as string[];
}

/** The model name of a body (checked first: it picks the context length the rest is checked against). */
export function requestedModel(body: unknown): string {
  if (!isObject(body)) {
    throw badRequest(null, "the request body must be a JSON object");
  }
  const model = body["model"];
  if (typeof model !== "string" || model.length === 0 || model.length > 256) {
    throw badRequest("model", `'model' must be the id of a served model, a string of 1..256 characters (GET /v1/models lists them), got ${describe(model)}`);
  }
  return model;
}

function common(body: Body, contextLength: number, logprobs: { on: boolean; top: number }): GenerationParams {
  const model = requestedModel(body);
  const maxTokens = optInt(body, "max_completion_tokens", 1, contextLength) ?? optInt(body, "max_tokens", 1, contextLength);
  const n = optInt(body, "n", 1, MAX_N) ?? 1;
  refuseUnless(body, "best_of", (v) => v === n, "is not supported (use n)");
  for (const key of ["frequency_penalty", "presence_penalty"]) {
    optNumber(body, key, -2, 2);
    refuseUnless(body, key, (v) => v === 0, "is not supported by barbell (only 0); use repetition_penalty");
  }
  refuseUnless(body, "logit_bias", (v) => isObject(v) && Object.keys(v).length === 0, "is not supported by barbell");
  const stream = optBool(body, "stream") ?? false;
  const streamOptions = body["stream_options"];
  let includeUsage = false;
  if (streamOptions !== undefined && streamOptions !== null) {
    if (!stream) {
      throw badRequest("stream_options", "'stream_options' is only allowed when 'stream' is true");
    }
    if (!isObject(streamOptions)) {
      throw badRequest("stream_options", `'stream_options' must be an object, got ${describe(streamOptions)}`);
    }
    includeUsage = optBool(streamOptions, "include_usage") ?? false;
  }
  const sampling: Record<string, number> = {};
  const put = (key: string, v: number | undefined): void => {
    if (v !== undefined) {
      sampling[key] = v;
    }
  };
  put("temperature", optNumber(body, "temperature", 0, 2));
  put("topP", optNumber(body, "top_p", 0, 1, { minExclusive: true }));
  put("topK", optInt(body, "top_k", 0, 1 << 20));
  put("minP", optNumber(body, "min_p", 0, 1));
  put("repetitionPenalty", optNumber(body, "repetition_penalty", 0, 10, { minExclusive: true }));
  put("seed", optInt(body, "seed", 0, 2 ** 32 - 1));
  return {
    model,
    maxTokens,
    sampling,
    stop: stops(body),
    n,
    stream,
    includeUsage,
    logprobs: logprobs.on,
    topLogprobs: logprobs.top,
  };
}

function messageContent(v: unknown, i: number): string {
  if (typeof v === "string") {
    return v;
  }
  // The array form: only text parts.
  if (Array.isArray(v) && v.every((p) => isObject(p) && p["type"] === "text" && typeof p["text"] === "string")) {
    return (v as { text: string }[]).map((p) => p.text).join("");
  }
  throw badRequest(`messages[${i}].content`, `messages[${i}].content must be a string or an array of text parts, got ${describe(v)}`);
}

/** Longest tool call id in a request's history. */
export const MAX_TOOL_CALL_ID_LENGTH = 256;

const ROLES: readonly string[] = ["system", "user", "assistant", "tool"];

/** An assistant message's `tool_calls`, checked. */
function toolCalls(v: unknown, i: number): ToolCall[] | undefined {
  if (v === undefined || v === null) {
    return undefined;
  }
  const param = `messages[${i}].tool_calls`;
  if (!Array.isArray(v) || v.length > MAX_TOOLS) {
    throw badRequest(param, `${param} must be an array of at most ${MAX_TOOLS} calls`);
  }
  return v.map((c: unknown, j): ToolCall => {
    const fn = isObject(c) ? c["function"] : undefined;
    const id = isObject(c) ? c["id"] : undefined;
    if (!isObject(c) || (c["type"] !== undefined && c["type"] !== "function") || typeof id !== "string" || id.length === 0 || id.length > MAX_TOOL_CALL_ID_LENGTH || !isObject(fn)) {
      throw badRequest(`${param}[${j}]`, `${param}[${j}] must be {"id": "...", "type": "function", "function": {"name": "...", "arguments": "<JSON text>"}}`);
    }
    const name = fn["name"];
    const args = fn["arguments"];
    if (typeof name !== "string" || !NAME_PATTERN.test(name)) {
      throw badRequest(`${param}[${j}].function.name`, `${param}[${j}].function.name must be 1..64 characters of a-z, A-Z, 0-9, '_' and '-'`);
    }
    if (typeof args !== "string" || args.length > MAX_MESSAGE_LENGTH) {
      throw badRequest(`${param}[${j}].function.arguments`, `${param}[${j}].function.arguments must be the arguments as JSON text`);
    }
    return { id, type: "function", function: { name, arguments: args } };
  });
}

function message(m: unknown, i: number): ConversationMessage {
  if (!isObject(m)) {
    throw badRequest(`messages[${i}]`, `messages[${i}] must be an object, got ${describe(m)}`);
  }
  const role = m["role"] === "developer" ? "system" : m["role"];
  if (typeof role !== "string" || !ROLES.includes(role)) {
    throw badRequest(`messages[${i}].role`, `messages[${i}].role must be one of system, developer, user, assistant, tool; got ${describe(m["role"])}`);
  }
  const calls = role === "assistant" ? toolCalls(m["tool_calls"], i) : undefined;
  // An assistant message that only calls tools has no content (null or absent), as OpenAI sends it.
  const content = calls !== undefined && (m["content"] === null || m["content"] === undefined) ? "" : messageContent(m["content"], i);
  if (content.length > MAX_MESSAGE_LENGTH) {
    throw badRequest(`messages[${i}].content`, `messages[${i}].content is longer than ${MAX_MESSAGE_LENGTH} characters`);
  }
  if (role === "tool") {
    const id = m["tool_call_id"];
    if (typeof id !== "string" || id.length === 0 || id.length > MAX_TOOL_CALL_ID_LENGTH) {
      throw badRequest(`messages[${i}].tool_call_id`, `messages[${i}].tool_call_id must be the id of the call it answers (1..${MAX_TOOL_CALL_ID_LENGTH} characters)`);
    }
    const name = m["name"];
    return { role, content, tool_call_id: id, ...(typeof name === "string" && NAME_PATTERN.test(name) ? { name } : {}) };
  }
  return { role: role as ConversationRole, content, ...(calls === undefined ? {} : { tool_calls: calls }) };
}

/** Checks a `POST /v1/chat/completions` body against a model of `contextLength` positions. */
export function checkChatRequest(body: unknown, contextLength: number): ChatParams {
  requestedModel(body);
  const b = body as Body;
  const raw = b["messages"];
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > MAX_CHAT_MESSAGES) {
    throw badRequest("messages", `'messages' must be an array of 1..${MAX_CHAT_MESSAGES} messages such as [{"role":"user","content":"Hi"}], got ${describe(raw)}`);
  }
  const messages = raw.map(message);
  for (const key of ["functions", "function_call", "audio", "modalities", "prediction"]) {
    refuseUnless(b, key, () => false, key.startsWith("function") ? "is not supported by barbell (use tools and tool_choice)" : "is not supported by barbell");
  }
  const responseFormat = checkResponseFormat(b);
  const tools = checkTools(b);
  const choice = checkToolChoice(b, tools);
  optBool(b, "parallel_tool_calls"); // accepted; a reply holds at most one call (docs/serving.md)
  const on = optBool(b, "logprobs") ?? false;
  const top = optInt(b, "top_logprobs", 0, MAX_TOP_LOGPROBS);
  if (top !== undefined && !on) {
    throw badRequest("top_logprobs", "'top_logprobs' needs 'logprobs': true");
  }
  return { kind: "chat", messages, responseFormat, tools: tools === undefined ? undefined : { tools, choice }, ...common(b, contextLength, { on, top: top ?? 0 }) };
}

/** Checks a `POST /v1/completions` body against a model of `contextLength` positions and `vocabSize` tokens. */
export function checkCompletionRequest(body: unknown, contextLength: number, vocabSize: number): CompletionParams {
  requestedModel(body);
  const b = body as Body;
  let prompt = b["prompt"];
  // One prompt per request: a list holding one string or one list of ids is unwrapped.
  if (Array.isArray(prompt) && prompt.length === 1 && (typeof prompt[0] === "string" || Array.isArray(prompt[0]))) {
    prompt = prompt[0];
  }
  const isIds = Array.isArray(prompt) && prompt.length > 0 && prompt.every((id) => Number.isSafeInteger(id) && (id as number) >= 0 && (id as number) < vocabSize);
  if (!(typeof prompt === "string" && prompt.length > 0 && prompt.length <= MAX_PROMPT_LENGTH) && !isIds) {
    throw badRequest(
      "prompt",
      `'prompt' must be a non-empty string (at most ${MAX_PROMPT_LENGTH} characters) or a non-empty array of token ids below ${vocabSize}; one prompt per request`,
    );
  }
  refuseUnless(b, "suffix", () => false, "is not supported by barbell");
  const top = optInt(b, "logprobs", 0, MAX_COMPLETION_LOGPROBS);
  const echo = optBool(b, "echo") ?? false;
  return {
    kind: "completion",
    prompt: prompt as string | number[],
    echo,
    ...common(b, contextLength, { on: top !== undefined, top: top ?? 0 }),
  };
}
