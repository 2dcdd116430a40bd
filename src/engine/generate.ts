/**
 * The decode loop: prefill the prompt, then sample one token at a time until a stop token, a stop
 * string, the token budget, the context end or an AbortSignal. Text is streamed through the
 * tokenizer's stream decoder (never a broken UTF-8 character) and the stop-string matcher.
 */
import { ShapeError, UsageError, ValueError } from "../core/errors.js";
import { forward, prefill } from "../model/bitnet/forward.js";
import type { KvCache } from "../model/bitnet/kv-cache.js";
import { ContextFullError } from "../model/bitnet/kv-cache.js";
import { createSampler, createStopMatcher, type SamplingOptions, type TokenLogprob } from "../model/sampling/index.js";
import type { Tokenizer } from "../model/tokenizer/types.js";
import type { LoadedModel } from "./loaded.js";

/** The largest `maxTokens` accepted in one call. */
export const MAX_GENERATE_TOKENS = 1 << 20;

export interface GenerateOptions extends SamplingOptions {
  /**
   * Most tokens to generate. Default 256, stopping early at the end of the context. When given, the
   * prompt plus this many tokens must fit the context (see `contextOverflow`).
   */
  readonly maxTokens?: number;
  /** Stop when the generated text contains one of these; the stop string itself is not returned. */
  readonly stop?: readonly string[];
  /** Extra stop token ids, on top of the model's end-of-sequence and end-of-turn tokens. */
  readonly stopTokens?: readonly number[];
  /** Cancels the generation; the result then has finishReason "abort". */
  readonly signal?: AbortSignal;
  /**
   * When prompt + maxTokens exceed the context: "error" (default) throws ContextFullError before running;
   * "truncate" drops the oldest prompt tokens (after BOS) to make room.
   */
  readonly contextOverflow?: "error" | "truncate";
}

export interface GeneratedToken {
  /**
   * The generated token, or null for the last chunk of a stream when it only releases text held back
   * at the end (the bytes of an unfinished character, a prefix of a stop string that never completed).
   */
  readonly token: number | null;
  /** Text this token completed (may be "" while a multi-byte character or a possible stop string is pending). */
  readonly text: string;
  /** Natural-log probability of the token under the raw logits (0 for a null token). */
  readonly logprob: number;
  readonly topLogprobs?: readonly TokenLogprob[];
}

export type FinishReason = "stop" | "length" | "abort" | "context";

export interface GenerationResult {
  readonly text: string;
  readonly tokens: readonly number[];
  readonly finishReason: FinishReason;
  readonly promptTokens: number;
  readonly prefillMs: number;
  readonly decodeMs: number;
}

/** A running generation: iterate it for tokens as they come, or await `complete()` for the whole result. */
export interface Generation extends AsyncIterable<GeneratedToken> {
  complete(): Promise<GenerationResult>;
}

function checkMaxTokens(n: number): number {
  if (!Number.isSafeInteger(n) || n < 1 || n > MAX_GENERATE_TOKENS) {
    throw new ValueError("out-of-range", `[generate] maxTokens ${n} is not an integer in 1..${MAX_GENERATE_TOKENS}`);
  }
  return n;
}

/** Fits the prompt into the cache capacity as the caller chose. */
function fitPrompt(prompt: readonly number[], room: number, capacity: number, mode: "error" | "truncate", bos: number | undefined): number[] {
  if (prompt.length + room <= capacity) {
    return [...prompt];
  }
  if (mode === "error") {
    throw new ContextFullError(prompt.length + room, capacity);
  }
  const keepBos = bos !== undefined && prompt[0] === bos ? 1 : 0;
  const budget = capacity - room - keepBos;
  if (budget < 1) {
    throw new ContextFullError(keepBos + 1 + room, capacity);
  }
  return [...prompt.slice(0, keepBos), ...prompt.slice(prompt.length - budget)];
}

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Starts a generation over `prompt` ids on a model whose cache the caller holds exclusively. */
export async function* runGeneration(
  model: LoadedModel,
  cache: KvCache,
  promptIds: readonly number[],
  options: GenerateOptions,
  extraStops: readonly number[],
): AsyncGenerator<GeneratedToken, GenerationResult> {
  const maxTokens = checkMaxTokens(options.maxTokens ?? 256);
  if (promptIds.length === 0) {
    throw new ShapeError("size", "[generate] the prompt has no tokens");
  }
  const tokenizer: Tokenizer | undefined = model.tokenizer;
  // An explicit budget must fit next to the prompt; the default one just runs until the context ends.
  const room = options.maxTokens === undefined ? 1 : maxTokens;
  const prompt = fitPrompt(promptIds, room, cache.capacity, options.contextOverflow ?? "error", tokenizer?.bos);
  const sampler = createSampler(options);
  const matcher = createStopMatcher(options.stop ?? []);
  const decoder = tokenizer?.createStreamDecoder();
  const stops = new Set([...extraStops, ...(options.stopTokens ?? [])]);
  for (const id of [tokenizer?.eos, tokenizer?.eot]) {
    if (id !== undefined) {
      stops.add(id);
    }
  }
  const history = [...prompt];
  const tokens: number[] = [];
  let text = "";
  let finishReason: FinishReason = "length";
  cache.truncate(0);
  const t0 = performance.now();
  let logits = prefill(model.config, model.weights, cache, prompt);
  const prefillMs = performance.now() - t0;
  const t1 = performance.now();
  try {
    for (;;) {
      if (options.signal?.aborted === true) {
        finishReason = "abort";
        break;
      }
      const pick = sampler.sample(logits.toFloat32(), history);
      logits.dispose();
      if (stops.has(pick.token)) {
        finishReason = "stop";
        break;
      }
      tokens.push(pick.token);
      history.push(pick.token);
      const piece = matcher.push(decoder?.push(pick.token) ?? "");
      text += piece.emit;
      yield { token: pick.token, text: piece.emit, logprob: pick.logprob, ...(pick.topLogprobs ? { topLogprobs: pick.topLogprobs } : {}) };
      if (piece.stopped) {
        finishReason = "stop";
        break;
      }
      if (tokens.length >= maxTokens) {
        break;
      }
      if (cache.length >= cache.capacity) {
        finishReason = "context";
        break;
      }
      await yieldToEventLoop();
      logits = forward(model.config, model.weights, cache, [pick.token]);
    }
  } finally {
    if (!logits.isDisposed) {
      logits.dispose();
    }
  }
  if (!matcher.stopped) {
    const tail = matcher.push(decoder?.flush() ?? "").emit + matcher.flush();
    if (matcher.stopped) {
      finishReason = "stop";
    }
    if (tail.length > 0) {
      text += tail;
      yield { token: null, text: tail, logprob: 0 };
    }
  }
  return { text, tokens, finishReason, promptTokens: prompt.length, prefillMs, decodeMs: performance.now() - t1 };
}

/** Wraps the generator so it can be iterated once or completed; a second consumer is a UsageError. */
export function toGeneration(start: () => AsyncGenerator<GeneratedToken, GenerationResult>): Generation {
  let started = false;
  let result: GenerationResult | undefined;
  const take = (): AsyncGenerator<GeneratedToken, GenerationResult> => {
    if (started) {
      throw new UsageError("unsupported", "[generate] a generation can be consumed once");
    }
    started = true;
    return start();
  };
  return {
    async *[Symbol.asyncIterator]() {
      result = yield* take();
    },
    async complete() {
      if (result !== undefined) {
        return result;
      }
      const gen = take();
      for (;;) {
        const step = await gen.next();
        if (step.done === true) {
          result = step.value;
          return result;
        }
      }
    },
  };
}
