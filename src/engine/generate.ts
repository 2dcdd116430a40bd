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
import { GrammarIncompleteError } from "../model/grammar/errors.js";
import type { Tokenizer } from "../model/tokenizer/types.js";
import type { LoadedModel } from "./loaded.js";
import { GrammarConstraint, resolveGrammar, type StructuredOptions } from "./structured.js";

/**
 * Tokens generated when a caller names no budget: the library, the CLI, the model actor and the HTTP API all use
 * it, capped by what the context leaves after the prompt (docs/serving.md). A bound rather than "until the context
 * ends" (llama-server's -1) so that a model that never emits end-of-sequence cannot hold a decode slot for the
 * whole context; clients that want more pass max_tokens.
 */
export const DEFAULT_MAX_TOKENS = 256;

/** The largest `maxTokens` accepted in one call. */
export const MAX_GENERATE_TOKENS = 1 << 20;

/**
 * Options of a generation. Structured output (`grammar`, `jsonSchema`, `json`: at most one, see
 * StructuredOptions): every sampled token is masked to what the grammar allows; stop tokens are allowed only
 * once the text is complete; the generation ends with finishReason "stop" when the model then picks a stop
 * token or the grammar admits nothing more; running out of `maxTokens` or context first throws
 * GrammarIncompleteError (the mask makes the grammar finish within the budget when the budget has room for its
 * shortest completion). `stop` strings are refused next to a grammar (UsageError).
 */
export interface GenerateOptions extends SamplingOptions, StructuredOptions {
  /**
   * Most tokens to generate. Default DEFAULT_MAX_TOKENS (256), stopping early at the end of the context. When given, the
   * prompt plus this many tokens must fit the context (see `contextOverflow`).
   */
  readonly maxTokens?: number;
  /** Stop when the generated text contains one of these; the stop string itself is not returned. */
  readonly stop?: readonly string[];
  /** Extra stop token ids, on top of the model's end-of-sequence and end-of-turn tokens. */
  readonly stopTokens?: readonly number[];
  /**
   * The model's end-of-sequence and end-of-turn tokens do not end the generation (they are sampled and
   * returned like any other token; llama.cpp's `--ignore-eos` bans them instead). For benchmarks that
   * must run `maxTokens` steps; `stopTokens` still stop.
   */
  readonly ignoreEos?: boolean;
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
  /** Prompt tokens whose KV rows were reused (a chat session's earlier turns, a prompt cache hit), not run. */
  readonly cachedTokens: number;
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

/** Lets other work (consumers, new requests, I/O; a page's rendering) run between decode steps. Browsers have no setImmediate. */
export const yieldToEventLoop = (): Promise<void> =>
  new Promise((resolve) => (typeof setImmediate === "function" ? setImmediate(resolve) : setTimeout(resolve, 0)));

/**
 * One sequence's generation state apart from the model step: prompt fitting, sampling, stop tokens and
 * strings, the stream decoder and the counters. `runGeneration` (one sequence) and the batcher (many
 * sequences sharing steps, src/engine/batch.ts) drive it the same way: `prompt`, then `next(logits)`
 * per step until it says the sequence is done, then `finish()`.
 */
export class SequenceState {
  readonly prompt: readonly number[];
  /** Most tokens this generation may produce (maxTokens, default DEFAULT_MAX_TOKENS). */
  readonly budget: number;
  readonly history: number[];
  readonly tokens: number[] = [];
  text = "";
  finishReason: FinishReason = "length";
  done = false;
  readonly #capacity: number;
  readonly #sampler;
  readonly #matcher;
  readonly #decoder;
  readonly #stops: Set<number>;
  readonly #signal: AbortSignal | undefined;
  readonly #grammar: GrammarConstraint | undefined;

  constructor(tokenizer: Tokenizer | undefined, capacity: number, promptIds: readonly number[], options: GenerateOptions, extraStops: readonly number[]) {
    const maxTokens = checkMaxTokens(options.maxTokens ?? DEFAULT_MAX_TOKENS);
    if (promptIds.length === 0) {
      throw new ShapeError("size", "[generate] the prompt has no tokens");
    }
    // An explicit budget must fit next to the prompt; the default one just runs until the context ends.
    const room = options.maxTokens === undefined ? 1 : maxTokens;
    this.prompt = fitPrompt(promptIds, room, capacity, options.contextOverflow ?? "error", tokenizer?.bos);
    this.history = [...this.prompt];
    this.budget = maxTokens;
    this.#capacity = capacity;
    this.#sampler = createSampler(options);
    this.#matcher = createStopMatcher(options.stop ?? []);
    this.#decoder = tokenizer?.createStreamDecoder();
    this.#stops = new Set([...extraStops, ...(options.stopTokens ?? [])]);
    for (const id of options.ignoreEos === true ? [] : [tokenizer?.eos, tokenizer?.eot]) {
      if (id !== undefined) {
        this.#stops.add(id);
      }
    }
    this.#signal = options.signal;
    const grammar = resolveGrammar(options);
    if (grammar !== undefined) {
      if (tokenizer === undefined) {
        throw new UsageError("unsupported", "[generate] a grammar needs the model's tokenizer");
      }
      this.#grammar = new GrammarConstraint(grammar, tokenizer, this.#stops);
    }
  }

  /** True when the caller's signal has aborted; marks the sequence done. */
  aborted(): boolean {
    if (!this.done && this.#signal?.aborted === true) {
      this.finishReason = "abort";
      this.done = true;
    }
    return this.done && this.finishReason === "abort";
  }

  /**
   * Samples from the logits of the last position. Returns the generated token (undefined when the
   * sequence stopped on a stop token) and sets `done` when no further step should run; `cacheLength`
   * is the sequence's KV length after the step that produced these logits.
   */
  next(logits: Float32Array, cacheLength: number): GeneratedToken | undefined {
    // Tokens left: this one, then one per free cache row (the last sampled token is never fed).
    const remaining = Math.min(this.budget - this.tokens.length, this.#capacity - cacheLength + 1);
    this.#grammar?.apply(logits, remaining, this.text, this.tokens.length);
    const pick = this.#sampler.sample(logits, this.history);
    if (this.#stops.has(pick.token)) {
      this.finishReason = "stop";
      this.done = true;
      return undefined;
    }
    this.#grammar?.accept(pick.token);
    this.tokens.push(pick.token);
    this.history.push(pick.token);
    const piece = this.#matcher.push(this.#decoder?.push(pick.token) ?? "");
    this.text += piece.emit;
    if (piece.stopped || this.#grammar?.isFinished() === true) {
      this.finishReason = "stop";
      this.done = true;
    } else if (this.tokens.length >= this.budget) {
      this.done = true;
    } else if (cacheLength >= this.#capacity) {
      this.finishReason = "context";
      this.done = true;
    }
    return { token: pick.token, text: piece.emit, logprob: pick.logprob, ...(pick.topLogprobs ? { topLogprobs: pick.topLogprobs } : {}) };
  }

  /** Releases held-back text (an unfinished character, a stop-string prefix), if any, as a null token. */
  finish(): GeneratedToken | undefined {
    this.done = true;
    if (this.#matcher.stopped) {
      return undefined;
    }
    const tail = this.#matcher.push(this.#decoder?.flush() ?? "").emit + this.#matcher.flush();
    if (this.#matcher.stopped) {
      this.finishReason = "stop";
    }
    if (tail.length === 0) {
      return undefined;
    }
    this.text += tail;
    return { token: null, text: tail, logprob: 0 };
  }

  /**
   * The result of a finished sequence.
   *
   * @throws GrammarIncompleteError when a grammar's text was not complete when the generation ended.
   */
  result(prefillMs: number, decodeMs: number, cachedTokens = 0): GenerationResult {
    if (this.#grammar !== undefined && !this.#grammar.isComplete()) {
      throw new GrammarIncompleteError(this.finishReason === "stop" ? "length" : this.finishReason, this.text, this.tokens.length);
    }
    return { text: this.text, tokens: this.tokens, finishReason: this.finishReason, promptTokens: this.prompt.length, cachedTokens, prefillMs, decodeMs };
  }
}

/**
 * Starts a generation over `prompt` ids on a model whose cache the caller holds exclusively. `reuse`: the
 * cache's first `reuse` positions already hold the rows of the prompt's first `reuse` tokens (a chat session's
 * earlier turns), so only the rest is prefilled.
 */
export async function* runGeneration(
  model: LoadedModel,
  cache: KvCache,
  promptIds: readonly number[],
  options: GenerateOptions,
  extraStops: readonly number[],
  reuse = 0,
): AsyncGenerator<GeneratedToken, GenerationResult> {
  const seq = new SequenceState(model.tokenizer, cache.capacity, promptIds, options, extraStops);
  // A prompt that was cut to fit the context no longer starts with the tokens those rows belong to.
  const keep = seq.prompt.length === promptIds.length ? Math.min(reuse, cache.length, seq.prompt.length - 1) : 0;
  cache.truncate(Math.max(0, keep));
  const t0 = performance.now();
  let logits = prefill(model.config, model.weights, cache, seq.prompt.slice(cache.length));
  const prefillMs = performance.now() - t0;
  const t1 = performance.now();
  // The logits of every step land in one array (the sampler reads them before the next step): a fresh
  // vocabulary-sized copy per token cost ~100 page faults each on a VM (≈ 5 % of a 2B token at 2 threads).
  let values: Float32Array | undefined;
  try {
    while (!seq.aborted()) {
      // The one read per token: awaited, so a device backend reads its logits back asynchronously.
      values = await logits.toFloat32Async(values);
      const piece = seq.next(values, cache.length);
      logits.dispose();
      if (piece !== undefined) {
        yield piece;
      }
      if (seq.done) {
        break;
      }
      await yieldToEventLoop();
      logits = forward(model.config, model.weights, cache, [piece?.token ?? 0]);
    }
  } finally {
    if (!logits.isDisposed) {
      logits.dispose();
    }
  }
  const tail = seq.finish();
  if (tail !== undefined) {
    yield tail;
  }
  return seq.result(prefillMs, performance.now() - t1, Math.max(0, keep));
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
