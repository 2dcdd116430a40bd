/**
 * Structured output and tools on the request side (docs/serving.md, "Structured output and tools"):
 * `response_format` (text, json_object, json_schema) and `tools` / `tool_choice` are checked here and turned into
 * one GBNF grammar per request. The HTTP side compiles it (so every schema problem is a 400 before admission) and
 * sends its text to the model worker, which compiles it again against its tokenizer (a worker may be another
 * process) and keeps compiled grammars warm by text (host.ts). Both sides cache: here a small LRU from the
 * request's schema text to the checked grammar text, there an LRU of compiled grammars.
 */
import { GrammarError, compileGbnf, gbnfLiteral, jsonSchemaToGbnf } from "../../model/grammar/index.js";
import type { ToolCallFormat, ToolDefinition } from "../../model/chat/index.js";
import { badRequest } from "./errors.js";

/** Most tools one request may offer (OpenAI's limit). */
export const MAX_TOOLS = 128;
/** Function and response-format names: OpenAI's pattern (letters, digits, `_`, `-`; 1..64). */
export const NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/** Longest tool or schema description, in UTF-16 units. */
export const MAX_DESCRIPTION_LENGTH = 16 * 1024;
/**
 * Longest GBNF text one request may ask for (schema or tools compiled), in UTF-16 units. A grammar is compiled on
 * the event loop once per schema text (then cached), at roughly 5–10 ms per KiB on the 2-core VM, so this bounds
 * the stall a new large schema can cause (~1 s); real tool sets and schemas stay far below (a 9-property schema
 * is ~3 KiB).
 */
export const MAX_REQUEST_GRAMMAR_CHARS = 128 * 1024;
/** Checked grammars kept by the request side (keyed by the schema's JSON text). */
export const GRAMMAR_CACHE_ENTRIES = 64;
/** Most grammar text the request-side cache holds, in UTF-16 units. */
export const GRAMMAR_CACHE_CHARS = 8 * 1024 * 1024;

/** What `tool_choice` asks for. */
export type ToolChoice = "auto" | "none" | "required" | { readonly name: string };

/** The request's tools and choice, checked. */
export interface ToolsParams {
  readonly tools: readonly ToolDefinition[];
  readonly choice: ToolChoice;
}

/** The request's response format, checked. */
export type ResponseFormat = { readonly kind: "text" } | { readonly kind: "json_object" } | { readonly kind: "json_schema"; readonly name: string; readonly schema: Record<string, unknown> | undefined };

/** How a request's answer is constrained and read. */
export interface OutputPlan {
  /** GBNF text for the model worker; undefined for free text. */
  readonly grammar: string | undefined;
  /** Tools described in the prompt (undefined: none, as for tool_choice "none"). */
  readonly promptTools: readonly ToolDefinition[] | undefined;
  /** How the answer is read: undefined for text; "call" always a tool call; "auto" text or one call. */
  readonly tools: { readonly mode: "call" | "auto"; readonly format: ToolCallFormat } | undefined;
}

type Body = Record<string, unknown>;

function isObject(v: unknown): v is Body {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

const CODES: Record<string, string> = { "unsupported-schema": "unsupported_schema", "bad-schema": "invalid_schema", limit: "schema_too_large" };

/** A GrammarError as a 400 naming the field; anything else is rethrown (a 500: a bug, not the client's). */
function schemaError(param: string, what: string, error: unknown): never {
  if (error instanceof GrammarError) {
    throw badRequest(param, `${what}: ${error.message.replace(/^\[grammar\] /, "")}`, CODES[error.code] ?? "invalid_schema");
  }
  throw error;
}

/** A small LRU from a key to checked grammar text, bounded by entries and characters. */
class GrammarCache {
  readonly #map = new Map<string, string>();
  #chars = 0;

  get(key: string): string | undefined {
    const v = this.#map.get(key);
    if (v !== undefined) {
      this.#map.delete(key);
      this.#map.set(key, v);
    }
    return v;
  }

  set(key: string, value: string): void {
    const size = key.length + value.length;
    if (size > GRAMMAR_CACHE_CHARS) {
      return;
    }
    this.#map.set(key, value);
    this.#chars += size;
    for (const [k, v] of this.#map) {
      if (this.#map.size <= GRAMMAR_CACHE_ENTRIES && this.#chars <= GRAMMAR_CACHE_CHARS) {
        break;
      }
      this.#map.delete(k);
      this.#chars -= k.length + v.length;
    }
  }

  get size(): number {
    return this.#map.size;
  }
}

const cache = new GrammarCache();
let cacheHits = 0;

/** Request-side grammar cache counters (tests). */
export function grammarCacheStats(): { entries: number; hits: number } {
  return { entries: cache.size, hits: cacheHits };
}

/**
 * Checked GBNF text for `key`, built by `build` (JSON Schema → GBNF; with `compile`, then compiled once to check
 * every grammar limit: the grammar a request will use).
 */
function checkedGrammar(key: string, param: string, what: string, build: () => string, compile = true): string {
  const known = cache.get(key);
  if (known !== undefined) {
    cacheHits++;
    return known;
  }
  let text: string;
  try {
    text = build();
    if (compile && text.length > MAX_REQUEST_GRAMMAR_CHARS) {
      throw badRequest(param, `${what}: its grammar is ${text.length} characters, more than MAX_REQUEST_GRAMMAR_CHARS (${MAX_REQUEST_GRAMMAR_CHARS}); use a smaller schema or fewer tools`, "schema_too_large");
    }
    if (compile) {
      compileGbnf(text);
    }
  } catch (error) {
    schemaError(param, what, error);
  }
  cache.set(key, text);
  return text;
}

/** `response_format`, checked (absent or null: text). */
export function checkResponseFormat(body: Body): ResponseFormat {
  const v = body["response_format"];
  if (v === undefined || v === null) {
    return { kind: "text" };
  }
  if (!isObject(v)) {
    throw badRequest("response_format", "'response_format' must be an object such as {\"type\": \"json_object\"}");
  }
  const type = v["type"];
  if (type === "text") {
    return { kind: "text" };
  }
  if (type === "json_object") {
    return { kind: "json_object" };
  }
  if (type !== "json_schema") {
    throw badRequest("response_format.type", `'response_format.type' must be one of text, json_object, json_schema; got ${JSON.stringify(type) ?? "nothing"}`);
  }
  const js = v["json_schema"];
  if (!isObject(js)) {
    throw badRequest("response_format.json_schema", "'response_format.json_schema' must be an object with a 'name' and a 'schema'");
  }
  const name = js["name"];
  if (typeof name !== "string" || !NAME_PATTERN.test(name)) {
    throw badRequest("response_format.json_schema.name", "'response_format.json_schema.name' must be 1..64 characters of a-z, A-Z, 0-9, '_' and '-'");
  }
  const description = js["description"];
  if (description !== undefined && description !== null && (typeof description !== "string" || description.length > MAX_DESCRIPTION_LENGTH)) {
    throw badRequest("response_format.json_schema.description", `'response_format.json_schema.description' must be a string of at most ${MAX_DESCRIPTION_LENGTH} characters`);
  }
  const strict = js["strict"];
  if (strict !== undefined && strict !== null && typeof strict !== "boolean") {
    throw badRequest("response_format.json_schema.strict", "'response_format.json_schema.strict' must be a boolean");
  }
  const schema = js["schema"];
  if (schema !== undefined && schema !== null && !isObject(schema)) {
    throw badRequest("response_format.json_schema.schema", "'response_format.json_schema.schema' must be a JSON Schema object");
  }
  return { kind: "json_schema", name, schema: schema ?? undefined };
}

/** A JSON Schema for any JSON object (json_object, and json_schema without a schema). */
const ANY_OBJECT = { type: "object", additionalProperties: {} };

function functionParameters(fn: Body, i: number): Record<string, unknown> {
  const param = `tools[${i}].function.parameters`;
  const p = fn["parameters"];
  if (p === undefined || p === null) {
    return { type: "object", properties: {} }; // OpenAI: no parameters is an empty parameter list
  }
  if (!isObject(p)) {
    throw badRequest(param, `'${param}' must be a JSON Schema object`);
  }
  if (p["type"] !== "object") {
    throw badRequest(param, `'${param}' must be a JSON Schema of type "object", got type ${JSON.stringify(p["type"]) ?? "nothing"}`, "invalid_schema");
  }
  return p;
}

/** `tools`, checked, each function's parameters compiled (undefined when absent). */
export function checkTools(body: Body): ToolDefinition[] | undefined {
  const v = body["tools"];
  if (v === undefined || v === null) {
    return undefined;
  }
  if (Array.isArray(v) && v.length === 0) {
    return undefined; // some clients always send the field
  }
  if (!Array.isArray(v) || v.length > MAX_TOOLS) {
    throw badRequest("tools", `'tools' must be an array of 1..${MAX_TOOLS} tools such as {"type": "function", "function": {"name": "f", "parameters": {...}}}`);
  }
  const names = new Set<string>();
  return v.map((tool: unknown, i): ToolDefinition => {
    if (!isObject(tool) || tool["type"] !== "function" || !isObject(tool["function"])) {
      throw badRequest(`tools[${i}]`, `tools[${i}] must be {"type": "function", "function": {...}}`);
    }
    const fn = tool["function"];
    const name = fn["name"];
    if (typeof name !== "string" || !NAME_PATTERN.test(name)) {
      throw badRequest(`tools[${i}].function.name`, `tools[${i}].function.name must be 1..64 characters of a-z, A-Z, 0-9, '_' and '-'`);
    }
    if (names.has(name)) {
      throw badRequest(`tools[${i}].function.name`, `tools[${i}].function.name '${name}' is used by an earlier tool`);
    }
    names.add(name);
    const description = fn["description"];
    if (description !== undefined && description !== null && (typeof description !== "string" || description.length > MAX_DESCRIPTION_LENGTH)) {
      throw badRequest(`tools[${i}].function.description`, `tools[${i}].function.description must be a string of at most ${MAX_DESCRIPTION_LENGTH} characters`);
    }
    const strict = fn["strict"];
    if (strict !== undefined && strict !== null && typeof strict !== "boolean") {
      throw badRequest(`tools[${i}].function.strict`, `tools[${i}].function.strict must be a boolean`);
    }
    const parameters = functionParameters(fn, i);
    const key = `p:${JSON.stringify(parameters)}`;
    // The schema's keywords and size, per tool (the grammar of the call, all tools together, is compiled once).
    checkedGrammar(key, `tools[${i}].function.parameters`, `invalid schema for function '${name}'`, () => jsonSchemaToGbnf(parameters), false);
    return {
      type: "function",
      function: {
        name,
        ...(typeof description === "string" ? { description } : {}),
        parameters,
        ...(typeof strict === "boolean" ? { strict } : {}),
      },
    };
  });
}

/** `tool_choice`, checked against the tools (default: "auto" with tools, "none" without). */
export function checkToolChoice(body: Body, tools: readonly ToolDefinition[] | undefined): ToolChoice {
  const v = body["tool_choice"];
  if (v === undefined || v === null) {
    return tools === undefined ? "none" : "auto";
  }
  if (tools === undefined && v !== "none") {
    throw badRequest("tool_choice", "'tool_choice' is only allowed when 'tools' are given");
  }
  if (v === "auto" || v === "none" || v === "required") {
    return v;
  }
  if (isObject(v) && v["type"] === "function" && isObject(v["function"]) && typeof v["function"]["name"] === "string") {
    const name = v["function"]["name"];
    if (!(tools ?? []).some((t) => t.function.name === name)) {
      throw badRequest("tool_choice", `'tool_choice' names function '${name.slice(0, 64)}', which is not among 'tools'`);
    }
    return { name };
  }
  throw badRequest("tool_choice", `'tool_choice' must be "none", "auto", "required" or {"type": "function", "function": {"name": ...}}`);
}

/**
 * Moves each tool's parameters schema under `$defs` of one schema for its call objects: `$ref`s of a tool
 * (`#`, `#/$defs/x`, `#/definitions/x`) point to their new places; the tool's own definitions get new names.
 */
function callSchema(tools: readonly ToolDefinition[], format: ToolCallFormat): Record<string, unknown> {
  const defs: Record<string, unknown> = {};
  const branches = tools.map((tool, i) => {
    const params = tool.function.parameters;
    const local = new Map<string, string>();
    for (const kind of ["$defs", "definitions"]) {
      const d = params[kind];
      if (isObject(d)) {
        for (const [name, schema] of Object.entries(d)) {
          const renamed = `t${i}-${local.size}`;
          local.set(`#/${kind}/${name.replace(/~/g, "~0").replace(/\//g, "~1")}`, renamed);
          defs[renamed] = schema;
        }
      }
    }
    const rewrite = (node: unknown): unknown => {
      if (Array.isArray(node)) {
        return node.map(rewrite);
      }
      if (!isObject(node)) {
        return node;
      }
      const out: Body = {};
      for (const [k, val] of Object.entries(node)) {
        if (k === "$ref" && typeof val === "string") {
          out[k] = val === "#" ? `#/$defs/t${i}` : local.has(val) ? `#/$defs/${local.get(val) ?? ""}` : val;
        } else if (k === "enum" || k === "const" || k === "default" || k === "examples") {
          out[k] = val; // values, not schemas
        } else {
          out[k] = rewrite(val);
        }
      }
      return out;
    };
    for (const [name, schema] of Object.entries(defs)) {
      if (name.startsWith(`t${i}-`)) {
        defs[name] = rewrite(schema);
      }
    }
    const { $defs: _d, definitions: _e, ...rest } = params;
    defs[`t${i}`] = rewrite(rest);
    return {
      type: "object",
      properties: { name: { const: tool.function.name }, [format.argumentsKey]: { $ref: `#/$defs/t${i}` } },
      required: ["name", format.argumentsKey],
      additionalProperties: false,
    };
  });
  return { $defs: defs, ...(branches.length === 1 ? branches[0] : { anyOf: branches }) };
}

/** A rule for any text that does not start with `lead` (so free text can never be read as a call). */
function notStartingWith(lead: string): string {
  const chars = [...lead];
  const cls = (ch: string): string => `[^${[...new TextEncoder().encode(ch)].length === 1 ? `\\x${(ch.codePointAt(0) ?? 0).toString(16).padStart(2, "0")}` : ch}]`;
  let expr = `(${cls(chars[chars.length - 1] ?? "")} zz-any*)?`;
  for (let i = chars.length - 2; i >= 0; i--) {
    const ch = chars[i] ?? "";
    expr = `(${cls(ch)} zz-any* | ${gbnfLiteral(ch)} ${expr})?`;
  }
  return expr;
}

/**
 * GBNF text with every rule name prefixed (names are runs of letters, digits, `_` and `-` outside literals,
 * character classes, repetition bounds and comments), so two grammars can be joined without clashes.
 */
export function prefixRules(gbnf: string, prefix: string): string {
  let out = "";
  let i = 0;
  const skipQuoted = (close: string): void => {
    const start = i++;
    while (i < gbnf.length && gbnf[i] !== close) {
      i += gbnf[i] === "\\" ? 2 : 1;
    }
    i++;
    out += gbnf.slice(start, i);
  };
  while (i < gbnf.length) {
    const ch = gbnf[i] ?? "";
    if (ch === '"') {
      skipQuoted('"');
    } else if (ch === "[") {
      skipQuoted("]");
    } else if (ch === "{") {
      skipQuoted("}");
    } else if (ch === "#") {
      const end = gbnf.indexOf("\n", i);
      out += gbnf.slice(i, end < 0 ? gbnf.length : end);
      i = end < 0 ? gbnf.length : end;
    } else if (/[A-Za-z0-9_-]/.test(ch)) {
      const m = /^[A-Za-z0-9_-]+/.exec(gbnf.slice(i, i + 256)) as RegExpExecArray;
      out += prefix + m[0];
      i += m[0].length;
    } else {
      out += ch;
      i++;
    }
  }
  return out;
}

/**
 * GBNF for the request's tool calls: one call in `format`, or (auto) that or the answer `text` allows: free text
 * that does not start like a call, or the response format's JSON (whose first byte is never the opening's).
 */
function toolGrammar(tools: readonly ToolDefinition[], format: ToolCallFormat, mode: "call" | "auto", json?: Record<string, unknown>): string {
  const lines = [prefixRules(jsonSchemaToGbnf(callSchema(tools, format)), "c-")];
  const call = `${format.open === "" ? "" : `${gbnfLiteral(format.open)} `}c-root${format.close === "" ? "" : ` ${gbnfLiteral(format.close)}`}`;
  if (mode === "call") {
    lines.push(`root ::= ${call}`);
  } else if (json !== undefined) {
    lines.push(prefixRules(jsonSchemaToGbnf(json), "j-"), `root ::= ${call} | j-root`);
  } else {
    lines.push(`root ::= ${call} | zz-text`, `zz-text ::= ${notStartingWith(format.open === "" ? "{" : format.open)}`, "zz-any ::= [^\\x00]");
  }
  return lines.join("\n");
}

/**
 * The grammar and the reading of a chat request's answer. Tools with tool_choice "none" are not described or
 * called; "auto" answers a call or text, the text under the JSON response format when there is one (refused for
 * the bare-object call format, where a JSON answer and a call would look alike); "required" or a named function
 * answer with a call whatever the response format.
 */
export function planOutput(format: ResponseFormat, tools: ToolsParams | undefined, callFormat: ToolCallFormat): OutputPlan {
  const schema = format.kind === "json_schema" && format.schema !== undefined ? format.schema : format.kind === "text" ? undefined : ANY_OBJECT;
  const what = format.kind === "json_schema" ? `invalid schema for response_format '${format.name}'` : "json_object";
  // Checked on its own first, so its problems name response_format.
  const answer = schema === undefined ? undefined : checkedGrammar(`s:${JSON.stringify(schema)}`, "response_format.json_schema.schema", what, () => jsonSchemaToGbnf(schema));
  if (tools !== undefined && tools.choice !== "none") {
    const offered = typeof tools.choice === "object" ? tools.tools.filter((t) => t.function.name === (tools.choice as { name: string }).name) : tools.tools;
    const mode = tools.choice === "auto" ? "auto" : "call";
    const json = mode === "auto" ? schema : undefined;
    if (json !== undefined && callFormat.open === "") {
      throw badRequest("response_format", `'response_format' json_object/json_schema together with tools and tool_choice "auto" is not supported for this model's call format (a bare JSON object); use tool_choice "none" or "required"`, "unsupported_parameter");
    }
    const key = `t:${callFormat.name}:${mode}:${JSON.stringify(offered)}:${json === undefined ? "" : JSON.stringify(json)}`;
    const grammar = checkedGrammar(key, "tools", "invalid tools", () => toolGrammar(offered, callFormat, mode, json));
    return { grammar, promptTools: tools.tools, tools: { mode, format: callFormat } };
  }
  return { grammar: answer, promptTools: undefined, tools: undefined };
}
