/**
 * What the HTTP layer needs to know about a model without loading its weights: its header (the engine's
 * `readModelHeader`, the reader `loadModel` uses: config, tokenizer, chat template) and the context the worker
 * will use. Chat prompts are built by the engine's one builder (`chatPromptIds`, the choice `BitnetModel.chat`
 * makes), so the server and the library agree on the format.
 */
import { chatPromptIds, DEFAULT_CONTEXT, readModelHeader, toolFormatOf as headerToolFormat, type ChatHeader, type ModelHeader } from "../../engine/model.js";
import type { ConversationMessage, ToolCallFormat, ToolDefinition } from "../../model/chat/index.js";
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

/** A header's info for a worker of KV capacity `contextLength` (default min(model context, DEFAULT_CONTEXT)). */
export function modelInfo(header: ModelHeader, contextLength?: number): ModelInfo {
  const { config, tokenizer, chatTemplate } = header;
  return {
    arch: config.arch,
    vocabSize: config.vocabSize,
    contextLength: contextLength ?? Math.min(config.contextLength, DEFAULT_CONTEXT),
    tokenizer,
    chatTemplate,
    maxTokenBytes: longestToken(tokenizer),
  };
}

/** Reads a GGUF header or a Hugging Face folder's config and tokenizer (no weights). */
export async function readModelInfo(path: string, contextLength?: number): Promise<ModelInfo> {
  return modelInfo(await readModelHeader(path), contextLength);
}

/** How the model writes tool calls: its template's format when the template renders `tools`, else the default. */
export function toolFormatOf(info: ModelInfo): ToolCallFormat {
  return headerToolFormat(chatHeader(info));
}

function chatHeader(info: ModelInfo): ChatHeader {
  return { config: { arch: info.arch }, tokenizer: info.tokenizer, chatTemplate: info.chatTemplate };
}

const REFUSED = {
  "no-tokenizer": "this model has no tokenizer; use /v1/completions with token ids",
  "no-template": "this model has no chat template; use /v1/completions",
  "no-bitnet-tokens": "this model has no chat template; use /v1/completions",
} as const;

/**
 * The prompt token ids of a conversation (the engine's `chatPromptIds`: Microsoft's 2B-4T format or the model's
 * Jinja template, with tools as docs/serving.md says). Returns a message instead when the model cannot chat.
 */
export function chatTokens(info: ModelInfo, messages: readonly ConversationMessage[], tools?: readonly ToolDefinition[]): number[] | string {
  const prompt = chatPromptIds(chatHeader(info), messages, tools === undefined ? {} : { tools });
  return "refused" in prompt ? REFUSED[prompt.refused] : prompt.ids;
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
