/**
 * What a model file says about the model before any weight is read — its config, tokenizer and chat template —
 * and the one place that chooses how a conversation becomes a prompt. `loadModel` (model.ts, load-gguf.ts) and
 * the server's header-only view of a model (src/serve/http/model-info.ts) read the header here, and
 * `BitnetModel.chat` and the server's chat routes build chat prompts here, so the two always agree.
 * Imports nothing from Node (pages bundle load-gguf.ts).
 */
import type { GgufFile } from "../formats/gguf/reader.js";
import { configFromGguf, type BitnetConfig } from "../model/bitnet/config.js";
import {
  defaultToolMessages,
  DEFAULT_TOOL_FORMAT,
  formatBitnetChat,
  hasToolContent,
  renderJinjaChat,
  renderToolChat,
  templateUsesTools,
  toolCallFormat,
  type ChatMessage,
  type ConversationMessage,
  type ToolCallFormat,
  type ToolDefinition,
} from "../model/chat/index.js";
import { tokenizerFromGguf } from "../model/tokenizer/gguf.js";
import type { Tokenizer } from "../model/tokenizer/types.js";

/** A model's config, tokenizer (absent: token ids only) and chat template (absent: none in the file). */
export interface ModelHeader {
  readonly config: BitnetConfig;
  readonly tokenizer: Tokenizer | undefined;
  readonly chatTemplate: string | undefined;
}

/** The model config of a parsed GGUF (its metadata; no tokenizer built, no tensor data read). */
export function ggufConfig(file: GgufFile): BitnetConfig {
  return configFromGguf(file.metadata, file.tensor("token_embd.weight")?.dims[1]);
}

/** The header of a parsed GGUF (its metadata; no tensor data is read). */
export function ggufHeader(file: GgufFile): ModelHeader {
  const config = ggufConfig(file);
  const tokenizer = file.metadata.has("tokenizer.ggml.model") ? tokenizerFromGguf(file.metadata, config.arch) : undefined;
  return { config, tokenizer, chatTemplate: file.metadata.getString("tokenizer.chat_template") };
}

/** What the chat-prompt choice reads of a header. */
export type ChatHeader = { readonly config: { readonly arch: string } } & Pick<ModelHeader, "tokenizer" | "chatTemplate">;

/** How a chat prompt is built: "auto" chooses (see {@link chatPromptIds}). */
export type ChatFormat = "auto" | "bitnet" | "template";

export interface ChatPromptOptions {
  /** Default "auto". */
  readonly format?: ChatFormat;
  /** A Jinja chat template to use instead of the model's. */
  readonly template?: string;
  /** Tools offered to the model (OpenAI's list); the messages may hold calls and results too. */
  readonly tools?: readonly ToolDefinition[];
}

/** A chat prompt's token ids and the stop tokens its format adds; or why this model cannot build it. */
export type ChatPrompt =
  | { readonly ids: number[]; readonly stops: number[] }
  | { readonly refused: "no-tokenizer" | "no-template" | "no-bitnet-tokens" };

/** Whether "auto" picks Microsoft's 2B-4T format: BitNet b1.58 vocabularies with BOS and end-of-turn tokens. */
function usesBitnetFormat(header: ChatHeader, format: ChatFormat): boolean {
  const t = header.tokenizer;
  return format === "bitnet" || (format === "auto" && header.config.arch !== "bitnet" && t?.bos !== undefined && t.eot !== undefined);
}

/**
 * The prompt of a conversation: Microsoft's 2B-4T format (header and content tokenized separately, stop at
 * end-of-turn) for BitNet b1.58 vocabularies with BOS and end-of-turn tokens, else the Jinja template (the
 * model's, or `options.template`). A conversation with tools (offered, called or answered) goes through the
 * template when it renders `tools`, else through the default tool format (src/model/chat/tools.ts) and then the
 * model's format. The messages are taken as checked (callers validate them at their edge).
 */
export function chatPromptIds(header: ChatHeader, messages: readonly ConversationMessage[], options: ChatPromptOptions = {}): ChatPrompt {
  const tokenizer = header.tokenizer;
  if (tokenizer === undefined) {
    return { refused: "no-tokenizer" };
  }
  const tools = options.tools;
  const withTools = hasToolContent(messages, tools);
  const plain = (): ChatMessage[] => (withTools ? defaultToolMessages(messages, tools) : messages.map((m) => ({ role: m.role as ChatMessage["role"], content: m.content })));
  if (usesBitnetFormat(header, options.format ?? "auto")) {
    const { bos, eot } = tokenizer;
    if (bos === undefined || eot === undefined) {
      return { refused: "no-bitnet-tokens" };
    }
    return { ids: formatBitnetChat(plain(), (text) => Array.from(tokenizer.encode(text, { addBos: false, parseSpecial: false })), { bos, eot }), stops: [eot] };
  }
  const template = options.template ?? header.chatTemplate;
  if (template === undefined) {
    return { refused: "no-template" };
  }
  const jinja = {
    bosToken: tokenizer.bos === undefined ? "" : tokenizer.tokenText(tokenizer.bos),
    eosToken: tokenizer.eos === undefined ? "" : tokenizer.tokenText(tokenizer.eos),
    addGenerationPrompt: true,
  };
  const text = withTools && templateUsesTools(template) ? renderToolChat(template, messages, tools, jinja) : renderJinjaChat(template, plain(), jinja);
  return { ids: Array.from(tokenizer.encode(text, { addBos: false, parseSpecial: true })), stops: [] };
}

/** How the model writes tool calls: its template's format when the template renders `tools`, else the default. */
export function toolFormatOf(header: ChatHeader): ToolCallFormat {
  return usesBitnetFormat(header, "auto") ? DEFAULT_TOOL_FORMAT : toolCallFormat(header.chatTemplate);
}
