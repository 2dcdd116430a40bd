/**
 * Chat templates in Jinja (the `tokenizer.chat_template` of a GGUF, or a Hugging Face tokenizer config), rendered
 * with `@huggingface/jinja`. A template is data from a file, so any failure to parse or render it (including the
 * template's own `raise_exception(...)`) becomes a FormatError that carries the template engine's message.
 */
import { Template } from "@huggingface/jinja";
import { FormatError } from "../../core/errors.js";
import type { ChatMessage } from "./messages.js";
import { validateMessages } from "./messages.js";

/** The longest chat template accepted, in UTF-16 code units. */
export const MAX_TEMPLATE_LENGTH = 1024 * 1024;

/** The variables a chat template sees besides `messages`. */
export interface JinjaChatOptions {
  /** Text of the BOS token, as the template's `bos_token`. */
  bosToken: string;
  /** Text of the EOS token, as the template's `eos_token`. */
  eosToken: string;
  /** The template's `add_generation_prompt`: whether to end with the opening of an assistant turn. */
  addGenerationPrompt: boolean;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Parses a chat template once so that it can be rendered many times.
 *
 * @throws FormatError code "limit" for a template over {@link MAX_TEMPLATE_LENGTH}; code "bad-value" for one that
 *   does not parse.
 */
export function compileJinjaChat(
  template: string,
): (messages: readonly ChatMessage[], options: JinjaChatOptions) => string {
  const compiled = parseTemplate(template);
  return (messages, options) => renderCompiled(compiled, { messages: validateMessages(messages) }, options);
}

function parseTemplate(template: string): Template {
  if (typeof template !== "string") {
    throw new FormatError("bad-value", "[chat] chat template must be a string");
  }
  if (template.length > MAX_TEMPLATE_LENGTH) {
    throw new FormatError(
      "limit",
      `[chat] chat template is ${template.length} characters; the limit is ${MAX_TEMPLATE_LENGTH}`,
    );
  }
  try {
    return new Template(template);
  } catch (error) {
    throw new FormatError("bad-value", `[chat] chat template does not parse: ${describe(error)}`);
  }
}

function renderCompiled(compiled: Template, context: Record<string, unknown>, options: JinjaChatOptions): string {
  let rendered: unknown;
  try {
    rendered = compiled.render({
      ...context,
      bos_token: options.bosToken,
      eos_token: options.eosToken,
      add_generation_prompt: options.addGenerationPrompt,
    });
  } catch (error) {
    throw new FormatError("bad-value", `[chat] chat template failed to render: ${describe(error)}`);
  }
  if (typeof rendered !== "string") {
    throw new FormatError("bad-value", `[chat] chat template rendered a ${typeof rendered}, not a string`);
  }
  return rendered;
}

/**
 * Renders a chat template with a context the caller has already checked (tools.ts: messages with tool calls and
 * tool results, and `tools`), plus `bos_token`, `eos_token` and `add_generation_prompt`.
 *
 * @throws FormatError as {@link renderJinjaChat}.
 */
export function renderJinjaContext(template: string, context: Record<string, unknown>, options: JinjaChatOptions): string {
  return renderCompiled(parseTemplate(template), context, options);
}

/**
 * Renders a conversation with a Jinja chat template. The template sees `messages` (each `{ role, content }`),
 * `bos_token`, `eos_token` and `add_generation_prompt`, plus the engine's globals (`raise_exception`, `range`, ...).
 * The result is text; tokenize it with special tokens recognised (the template writes them as text).
 *
 * @throws FormatError code "bad-value" when the template does not parse or fails to render, or for bad messages;
 *   code "limit" for too long a template, too many messages or too long a message.
 */
export function renderJinjaChat(template: string, messages: readonly ChatMessage[], options: JinjaChatOptions): string {
  return compileJinjaChat(template)(messages, options);
}
