/**
 * The model API: a loaded BitNet model that tokenizes, generates, chats and returns logits. One model runs
 * one sequence at a time; concurrent calls queue. Made by `loadModel` (model.ts: files, the backend registry;
 * Node) or `loadGgufModel` (load-gguf.ts: GGUF bytes on a given backend; browsers too). This module imports
 * nothing from Node.
 */
import { UsageError } from "../core/errors.js";
import { validateMessages, type ChatMessage } from "../model/chat/index.js";
import { forward, prefill, type ForwardTrace } from "../model/bitnet/forward.js";
import { KvCache, type KvCacheDType } from "../model/bitnet/kv-cache.js";
import type { Tokenizer } from "../model/tokenizer/types.js";
import { Batcher, type BatcherOptions } from "./batch.js";
import { ChatSession, type ChatSessionOptions } from "./chat-session.js";
import { chatPromptIds, type ChatFormat } from "./header.js";
import { runGeneration, toGeneration, type GeneratedToken, type GenerateOptions, type Generation, type GenerationResult } from "./generate.js";
import type { LoadedModel } from "./loaded.js";
import { compileOptions, wantsJson, withParsed, type JsonObject, type SchemaOptions, type SchemaValue, type StructuredGeneration } from "./structured.js";

/** Default KV-cache capacity when the caller names none (the model's own context if smaller). */
export const DEFAULT_CONTEXT = 4096;

export interface ChatOptions extends GenerateOptions {
  /**
   * "bitnet": Microsoft's 2B-4T format (header and content tokenized separately); "template": the
   * model's Jinja chat template (or `template`); "auto" (default): bitnet for BitNet models whose
   * vocabulary has BOS and end-of-turn tokens, else the model's template.
   */
  readonly format?: ChatFormat;
  /** A Jinja chat template to use instead of the model's. */
  readonly template?: string;
}

export interface LogitsOptions {
  /** Logits of every position instead of only the last. */
  readonly all?: boolean;
}

export class BitnetModel implements Disposable {
  readonly #model: LoadedModel;
  readonly #cache: KvCache;
  #queue: Promise<unknown> = Promise.resolve();
  /** The chat session whose rows the cache holds (any other use of the cache clears it). */
  #cacheOwner: object | undefined;
  #disposed = false;

  /** @internal Use `loadModel`. */
  constructor(model: LoadedModel, contextLength: number, kvCacheType: KvCacheDType = "f32") {
    this.#model = model;
    this.#cache = new KvCache(model.config, contextLength, model.backend, kvCacheType);
  }

  get config(): LoadedModel["config"] {
    return this.#model.config;
  }

  /** The tokenizer, or undefined for a file without one (token-id use only). */
  get tokenizer(): Tokenizer | undefined {
    return this.#model.tokenizer;
  }

  /** The backend (chain) the model runs on, e.g. "native-cpu>js". */
  get backend(): string {
    return this.#model.backend.name;
  }

  /** KV-cache capacity in positions. */
  get contextLength(): number {
    return this.#cache.capacity;
  }

  /** Element type of the KV cache (`kvCacheType` at load): "f32", "f16" or "q8_0". */
  get kvCacheType(): KvCacheDType {
    return this.#cache.dtype;
  }

  #tokenizer(): Tokenizer {
    const t = this.#model.tokenizer;
    if (t === undefined) {
      throw new UsageError("unsupported", `[model] ${this.#model.source} has no tokenizer; pass token ids instead of text`);
    }
    return t;
  }

  #alive(): void {
    if (this.#disposed) {
      throw new UsageError("disposed", "[model] the model was disposed");
    }
  }

  /** Runs `task` after every earlier task on this model (one sequence at a time). */
  #exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(task, task);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  tokenize(text: string, options: { addBos?: boolean; parseSpecial?: boolean } = {}): number[] {
    return Array.from(this.#tokenizer().encode(text, options));
  }

  detokenize(ids: readonly number[], options: { skipSpecial?: boolean } = {}): string {
    return this.#tokenizer().decode(ids, options);
  }

  /** Logits of the last position (or of every position) after running `tokens` from an empty context. */
  logits(tokens: readonly number[], options: LogitsOptions = {}): Promise<Float32Array[]> {
    this.#alive();
    return this.#exclusive(async () => {
      this.#cacheOwner = undefined;
      this.#cache.truncate(0);
      using out =
        options.all === true
          ? forward(this.config, this.#model.weights, this.#cache, tokens, { allLogits: true })
          : prefill(this.config, this.#model.weights, this.#cache, tokens);
      const all = await out.toFloat32Async();
      const vocab = out.shape[1];
      return Array.from({ length: out.shape[0] }, (_, i) => all.slice(i * vocab, (i + 1) * vocab));
    });
  }

  /**
   * Runs `tokens` from an empty context with every position's logits and calls `onTensor` with each traced
   * activation (names as in ForwardOptions.trace). The tensor is disposed after the callback returns.
   */
  trace(tokens: readonly number[], onTensor: ForwardTrace): Promise<void> {
    this.#alive();
    return this.#exclusive(async () => {
      this.#cacheOwner = undefined;
      this.#cache.truncate(0);
      using _out = forward(this.config, this.#model.weights, this.#cache, tokens, { allLogits: true, trace: onTensor });
    });
  }

  /**
   * Generates from a text prompt (tokenized with BOS) or from token ids. With `jsonSchema` (or `json: true`)
   * the output is JSON and `complete()` adds `parsed`, typed from a schema written `as const` or as the type
   * argument given (`generate<MyType>(…)`); with `grammar` it is a sentence of the grammar (GenerateOptions).
   */
  generate<T = unknown, const S extends object = object>(prompt: string | readonly number[], options: SchemaOptions<GenerateOptions, S>): StructuredGeneration<SchemaValue<T, S>>;
  generate<T = JsonObject>(prompt: string | readonly number[], options: GenerateOptions & { readonly json: true }): StructuredGeneration<T>;
  generate(prompt: string | readonly number[], options?: GenerateOptions): Generation;
  generate(prompt: string | readonly number[], options: GenerateOptions = {}): Generation {
    this.#alive();
    const ids = typeof prompt === "string" ? this.tokenize(prompt) : [...prompt];
    return this.#generation(ids, options, []);
  }

  /** Continues a conversation; the reply stops at the format's end-of-turn token. Structured output as `generate`. */
  chat<T = unknown, const S extends object = object>(messages: readonly ChatMessage[], options: SchemaOptions<ChatOptions, S>): StructuredGeneration<SchemaValue<T, S>>;
  chat<T = JsonObject>(messages: readonly ChatMessage[], options: ChatOptions & { readonly json: true }): StructuredGeneration<T>;
  chat(messages: readonly ChatMessage[], options?: ChatOptions): Generation;
  chat(messages: readonly ChatMessage[], options: ChatOptions = {}): Generation {
    const { ids, stops } = this.chatPrompt(messages, options);
    return this.#generation(ids, options, stops);
  }

  /**
   * The token ids `chat()` runs for these messages (BitNet format or the Jinja template, as chat()
   * chooses) and the stop tokens it adds; for callers that drive generation themselves (the batcher).
   */
  chatPrompt(messages: readonly ChatMessage[], options: ChatOptions = {}): { ids: number[]; stops: number[] } {
    this.#alive();
    const checked = validateMessages(messages);
    this.#tokenizer(); // no tokenizer: the model's own error
    const prompt = chatPromptIds(this.#model, checked, options);
    if ("refused" in prompt) {
      throw prompt.refused === "no-template"
        ? new UsageError("unsupported", `[chat] ${this.#model.source} has no chat template; pass options.template`)
        : new UsageError("unsupported", "[chat] the BitNet chat format needs BOS and end-of-turn tokens");
    }
    return prompt;
  }

  #generation(ids: readonly number[], options: GenerateOptions, stops: readonly number[]): Generation {
    // A bad grammar or schema fails here, not when the generation is consumed (compiled grammars are cached).
    const run = compileOptions(options);
    const generation = this.#held(undefined, () => runGeneration(this.#model, this.#cache, ids, run, stops));
    return wantsJson(options) ? withParsed(generation) : generation;
  }

  /**
   * A generation that runs after every earlier task and holds the cache until it ends. `owner` marks the
   * cache's content as a chat session's; `start` learns whether that owner's content is still there.
   */
  #held(owner: object | undefined, start: (owned: boolean) => AsyncGenerator<GeneratedToken, GenerationResult>): Generation {
    const queue = (): Promise<unknown> => this.#queue;
    const setQueue = (p: Promise<unknown>): void => {
      this.#queue = p;
    };
    const claim = (): boolean => {
      const owned = owner !== undefined && this.#cacheOwner === owner;
      this.#cacheOwner = owner;
      return owned;
    };
    return toGeneration(async function* () {
      // Wait for earlier work, then hold the cache until this generation ends.
      let release = (): void => undefined;
      const held = new Promise<void>((resolve) => (release = resolve));
      const before = queue();
      setQueue(before.then(() => held));
      await before.catch(() => undefined);
      try {
        return yield* start(claim());
      } finally {
        release();
      }
    });
  }

  /**
   * A multi-turn chat that keeps this model's KV cache between its turns, so a turn prefills only what is new
   * (src/engine/chat-session.ts). Other uses of the model in between (generate, chat, logits, another session)
   * are allowed; the session's next turn then prefills its conversation again.
   */
  chatSession(options: ChatSessionOptions = {}): ChatSession {
    this.#alive();
    return new ChatSession(
      {
        loaded: this.#model,
        cache: this.#cache,
        contextLength: this.#cache.capacity,
        chatPrompt: (messages, format) => this.chatPrompt(messages, format),
        hold: (owner, start) => {
          this.#alive();
          return this.#held(owner, start);
        },
      },
      options,
    );
  }

  /**
   * A batcher over this model's weights: its generations share decode steps (continuous batching),
   * each with its own KV cache. Dispose it before the model.
   */
  batcher(options: BatcherOptions = {}): Batcher {
    this.#alive();
    return new Batcher(this.#model, { kvCacheType: this.#cache.dtype, ...options });
  }

  /** Frees the weights and the KV cache. */
  dispose(): void {
    if (!this.#disposed) {
      this.#disposed = true;
      this.#cache.dispose();
      this.#model.weights.dispose();
    }
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
