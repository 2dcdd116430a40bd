/**
 * What the HTTP layer needs to know about a model without loading its weights: the tokenizer (chat prompts,
 * logprob token texts, prompt validation), the chat template and the context the worker will use.
 */
import { pathKind } from "../../core/files.js";
import { DEFAULT_CONTEXT, readHfTokenizer } from "../../engine/model.js";
import { openGguf } from "../../formats/gguf/index.js";
import { configFromGguf } from "../../model/bitnet/config.js";
import { readHfBitnetFolder } from "../../model/bitnet/hf.js";
import { configFromHf } from "../../model/bitnet/hf-source.js";
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
} from "../../model/chat/index.js";
import { tokenizerFromGguf } from "../../model/tokenizer/gguf.js";
import type { Tokenizer } from "../../model/tokenizer/types.js";

export interface ModelInfo {
  readonly arch: string;
  readonly vocabSize: number;
  /** KV-cache capacity the worker runs with: the most prompt + completion tokens of one request. */
  readonly contextLength: number;
  readonly tokenizer: Tokenizer | undefined;
  readonly chatTemplate: string | undefined;
  /**
   * Most UTF-8 bytes of text one token can stand for (the longest vocabulary entry as stored, which is never
   * shorter than the text it encodes), so a prompt of B bytes needs at least B / maxTokenBytes tokens. 0 without
   * a tokenizer.
   */
  readonly maxTokenBytes: number;
}

/** The longest vocabulary entry in UTF-8 bytes (see {@link ModelInfo.maxTokenBytes}). */
function longestToken(tokenizer: Tokenizer | undefined): number {
  let most = 0;
  for (let id = 0; tokenizer !== undefined && id < tokenizer.vocabSize; id++) {
    most = Math.max(most, Buffer.byteLength(tokenizer.tokenText(id)));
  }
  return most;
}

/** Reads a GGUF header or a Hugging Face folder's config and tokenizer (no weights). */
export async function readModelInfo(path: string, contextLength?: number): Promise<ModelInfo> {
  const capacity = (own: number): number => contextLength ?? Math.min(own, DEFAULT_CONTEXT);
  if ((await pathKind(path, "[model] model")) === "folder") {
    await using folder = await readHfBitnetFolder(path);
    const config = configFromHf(folder);
    const { tokenizer, chatTemplate } = await readHfTokenizer(path);
    return { arch: config.arch, vocabSize: config.vocabSize, contextLength: capacity(config.contextLength), tokenizer, chatTemplate, maxTokenBytes: longestToken(tokenizer) };
  }
  await using file = await openGguf(path);
  const config = configFromGguf(file.metadata, file.tensor("token_embd.weight")?.dims[1]);
  const tokenizer = file.metadata.has("tokenizer.ggml.model") ? tokenizerFromGguf(file.metadata, config.arch) : undefined;
  return {
    arch: config.arch,
    vocabSize: config.vocabSize,
    contextLength: capacity(config.contextLength),
    tokenizer,
    chatTemplate: file.metadata.getString("tokenizer.chat_template"),
    maxTokenBytes: longestToken(tokenizer),
  };
}

/** Whether the model's chats use Microsoft's 2B-4T format (BitNet b1.58 vocabularies with BOS and end-of-turn tokens). */
function bitnetFormat(info: ModelInfo): boolean {
  const tokenizer = info.tokenizer;
  return info.arch !== "bitnet" && tokenizer?.bos !== undefined && tokenizer.eot !== undefined;
}

/** How the model writes tool calls: its template's format when the template renders `tools`, else the default. */
export function toolFormatOf(info: ModelInfo): ToolCallFormat {
  return bitnetFormat(info) ? DEFAULT_TOOL_FORMAT : toolCallFormat(info.chatTemplate);
}

/**
 * The prompt token ids of a conversation, chosen as `BitnetModel.chat` chooses: Microsoft's 2B-4T format for
 * BitNet b1.58 vocabularies with BOS and end-of-turn tokens, else the model's Jinja template. A conversation
 * with tools (offered, called or answered) goes through the template when it renders `tools`, else through the
 * default tool format (src/model/chat/tools.ts) and then the model's format. Returns a message instead when the
 * model cannot chat.
 */
export function chatTokens(info: ModelInfo, messages: readonly ConversationMessage[], tools?: readonly ToolDefinition[]): number[] | string {
  const tokenizer = info.tokenizer;
  if (tokenizer === undefined) {
    return "this model has no tokenizer; use /v1/completions with token ids";
  }
  const withTools = hasToolContent(messages, tools);
  const plain = (): ChatMessage[] => (withTools ? defaultToolMessages(messages, tools) : messages.map((m) => ({ role: m.role as ChatMessage["role"], content: m.content })));
  const { bos, eot } = tokenizer;
  if (bitnetFormat(info) && bos !== undefined && eot !== undefined) {
    return formatBitnetChat(plain(), (text) => Array.from(tokenizer.encode(text, { addBos: false, parseSpecial: false })), { bos, eot });
  }
  if (info.chatTemplate === undefined) {
    return "this model has no chat template; use /v1/completions";
  }
  const options = {
    bosToken: bos === undefined ? "" : tokenizer.tokenText(bos),
    eosToken: tokenizer.eos === undefined ? "" : tokenizer.tokenText(tokenizer.eos),
    addGenerationPrompt: true,
  };
  const text = withTools && templateUsesTools(info.chatTemplate) ? renderToolChat(info.chatTemplate, messages, tools, options) : renderJinjaChat(info.chatTemplate, plain(), options);
  return Array.from(tokenizer.encode(text, { addBos: false, parseSpecial: true }));
}

/** The text of one token for logprobs (its id in brackets when the model has no tokenizer). */
export function tokenString(info: ModelInfo, id: number): string {
  if (info.tokenizer === undefined) {
    return `[${id}]`;
  }
  try {
    return info.tokenizer.decode([id]);
  } catch {
    return `[${id}]`;
  }
}
