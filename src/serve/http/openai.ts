/** OpenAI response objects: completions, chat completions, their stream chunks, logprobs and usage. */
import type { ModelOutput } from "../protocol.js";
import { tokenString, type ModelInfo } from "./model-info.js";

type TokenItem = Extract<ModelOutput, { kind: "token" }>;

export interface Usage {
  readonly prompt_tokens: number;
  readonly completion_tokens: number;
  readonly total_tokens: number;
}

export function usage(prompt: number, completion: number): Usage {
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

/** OpenAI's finish reasons for the engine's ("context": the KV cache filled up, which OpenAI calls length). */
export function finishReason(engine: string): "stop" | "length" {
  return engine === "length" || engine === "context" ? "length" : "stop";
}

const encoder = new TextEncoder();

interface ChatLogprob {
  readonly token: string;
  readonly logprob: number;
  readonly bytes: number[];
  readonly top_logprobs: { token: string; logprob: number; bytes: number[] }[];
}

/** Chat `logprobs.content` entries of one token item (none for a text-only flush item). */
export function chatLogprobs(info: ModelInfo, item: TokenItem): ChatLogprob[] {
  if (item.token === undefined) {
    return [];
  }
  const entry = (id: number, logprob: number): { token: string; logprob: number; bytes: number[] } => {
    const token = tokenString(info, id);
    return { token, logprob, bytes: Array.from(encoder.encode(token)) };
  };
  return [{ ...entry(item.token, item.logprob), top_logprobs: (item.topLogprobs ?? []).map((t) => entry(t.token, t.logprob)) }];
}

/** Legacy completions logprobs (parallel lists), filled one token at a time. */
export class CompletionLogprobs {
  readonly tokens: string[] = [];
  readonly token_logprobs: number[] = [];
  readonly top_logprobs: Record<string, number>[] = [];
  readonly text_offset: number[] = [];

  add(info: ModelInfo, item: TokenItem, offset: number): void {
    if (item.token === undefined) {
      return;
    }
    this.tokens.push(tokenString(info, item.token));
    this.token_logprobs.push(item.logprob);
    this.top_logprobs.push(Object.fromEntries((item.topLogprobs ?? []).map((t) => [tokenString(info, t.token), t.logprob])));
    this.text_offset.push(offset);
  }

  toJSON(): Record<string, unknown> {
    return { tokens: this.tokens, token_logprobs: this.token_logprobs, top_logprobs: this.top_logprobs, text_offset: this.text_offset };
  }
}
