/**
 * A multi-turn chat that keeps its KV cache between turns, like node-llama-cpp's `LlamaChatSession`: each turn
 * formats the whole conversation (BitNet's format or the model's template, as `BitnetModel.chat`), finds how much
 * of it the cache already holds and prefills only the rest. When the conversation no longer fits the context,
 * the oldest turns are dropped (the system prompt is kept) and `onTrim` says so; a chat never fails because its
 * history grew.
 *
 * What is reused (`kvReuse`):
 * - "exact" (default): only rows that a cold run (`model.chat` of the same messages) computes the same way: the
 *   full, aligned prefill steps of the previous prompt (src/engine/prompt-cache.ts explains why). A turn then
 *   prefills its new messages, the previous reply and at most PREFILL_STEP_TOKENS − 1 older tokens, and its
 *   output is bit for bit a cold run's on every backend.
 * - "all": every row the session computed, the previous reply's included (llama.cpp's behaviour): a turn
 *   prefills only its new tokens. The rows of generated tokens come from decode steps; on the JS reference they
 *   equal a cold prefill's bits, on the native backend they differ in float rounding (its attention sums a long
 *   prefill step in another order), so later replies can differ from a cold run's there.
 *
 * Dropping turns changes the positions of everything after the system prompt, and RoPE has rotated the cached
 * keys by their old positions; rather than re-rotating them (llama.cpp's context shift, not exact), the session
 * keeps the rows of the common prefix (BOS and the system prompt) and prefills the kept turns once. To make that
 * rare, a trim drops turns until the conversation and the reply's room fill at most CHAT_TRIM_TARGET of the
 * context.
 */
import { ContextFullError, type KvCache } from "../model/bitnet/kv-cache.js";
import type { ChatMessage } from "../model/chat/index.js";
import { validateMessages } from "../model/chat/index.js";
import type { GeneratedToken, GenerateOptions, Generation, GenerationResult } from "./generate.js";
import { runGeneration } from "./generate.js";
import type { LoadedModel } from "./loaded.js";
import { commonPrefix, exactReuse, exactRows } from "./prompt-cache.js";
import { compileOptions, wantsJson, withParsed, type JsonObject, type SchemaOptions, type SchemaValue, type StructuredGeneration } from "./structured.js";

/** Room kept for a reply when the turn does not set `maxTokens` (at most a quarter of the context). */
export const CHAT_REPLY_ROOM = 256;
/** After a trim, the conversation plus the reply's room fill at most this share of the context. */
export const CHAT_TRIM_TARGET = 0.5;

/** What a trim did, for the `onTrim` callback. */
export interface ChatTrim {
  /** Turns (a user message and the reply to it) dropped, oldest first. */
  readonly droppedTurns: number;
  /** Prompt tokens of the conversation before and after. */
  readonly tokensBefore: number;
  readonly tokensAfter: number;
  /** The context, in tokens. */
  readonly contextLength: number;
}

export interface ChatSessionOptions {
  /** The first message of every prompt; kept when older turns are dropped. */
  readonly systemPrompt?: string;
  /** "auto" (default), "bitnet" or "template", as ChatOptions.format of BitnetModel.chat. */
  readonly format?: "auto" | "bitnet" | "template";
  /** A Jinja chat template to use instead of the model's. */
  readonly template?: string;
  /** Which KV rows a turn reuses; see the file comment. Default "exact". */
  readonly kvReuse?: "exact" | "all";
  /** Called when a turn drops the oldest turns to fit the context. */
  readonly onTrim?: (trim: ChatTrim) => void;
}

/**
 * @internal What a session needs of its model (BitnetModel.chatSession passes it): the loaded model, the
 * model's KV cache, the chat formatting, and a way to run while holding the cache.
 */
export interface ChatSessionHost {
  readonly loaded: LoadedModel;
  readonly cache: KvCache;
  readonly contextLength: number;
  chatPrompt(messages: readonly ChatMessage[], options: { format?: "auto" | "bitnet" | "template"; template?: string }): { ids: number[]; stops: number[] };
  /**
   * Runs `start` after every earlier use of the model, holding its cache until the generation ends. `owned`
   * says whether the cache still holds what `owner` left in it (no other generation ran meanwhile).
   */
  hold(owner: object, start: (owned: boolean) => AsyncGenerator<GeneratedToken, GenerationResult>): Generation;
}

export class ChatSession {
  readonly #host: ChatSessionHost;
  readonly #format: Pick<ChatSessionOptions, "format" | "template">;
  readonly #mode: "exact" | "all";
  readonly #onTrim: ((trim: ChatTrim) => void) | undefined;
  #system: string | undefined;
  /** The turns after the system prompt: user, assistant, user, assistant, … */
  #turns: ChatMessage[] = [];
  /** The tokens whose rows the model's cache holds for this session (valid while it owns the cache). */
  #kept: number[] = [];

  /** @internal Use BitnetModel.chatSession. */
  constructor(host: ChatSessionHost, options: ChatSessionOptions = {}) {
    this.#host = host;
    this.#format = {
      ...(options.format === undefined ? {} : { format: options.format }),
      ...(options.template === undefined ? {} : { template: options.template }),
    };
    this.#mode = options.kvReuse ?? "exact";
    this.#onTrim = options.onTrim;
    this.setSystemPrompt(options.systemPrompt);
  }

  /** The conversation as the next turn sends it: the system prompt (if any), then the turns. */
  get messages(): readonly ChatMessage[] {
    return [...(this.#system === undefined ? [] : [{ role: "system" as const, content: this.#system }]), ...this.#turns];
  }

  get systemPrompt(): string | undefined {
    return this.#system;
  }

  /** Prompt tokens the cache holds for this session (what the next turn can start from). */
  get cachedTokens(): number {
    return this.#kept.length;
  }

  /** Sets (or with undefined removes) the system prompt; the turns stay. The next turn re-prefills from it. */
  setSystemPrompt(text: string | undefined): void {
    if (text !== undefined) {
      validateMessages([{ role: "system", content: text }]);
    }
    this.#system = text;
  }

  /** Forgets the turns (the system prompt stays). */
  reset(): void {
    this.#turns = [];
  }

  /**
   * Sends a user message and streams the reply. The message and the reply (as far as it got, also when it was
   * aborted or left early) join the conversation when the generation ends, with the trim that made room for them;
 * a turn that fails leaves the conversation as it was.
   * `contextOverflow` is ignored: older turns are dropped instead. Throws ContextFullError only when the system
   * prompt and this one message leave no room for `maxTokens` (or one token) of reply.
   */
  prompt<T = unknown, const S extends object = object>(text: string, options: SchemaOptions<GenerateOptions, S>): StructuredGeneration<SchemaValue<T, S>>;
  prompt<T = JsonObject>(text: string, options: GenerateOptions & { readonly json: true }): StructuredGeneration<T>;
  prompt(text: string, options?: GenerateOptions): Generation;
  prompt(text: string, options: GenerateOptions = {}): Generation {
    validateMessages([{ role: "user", content: text }]);
    const turn = compileOptions({ ...options, contextOverflow: "error" as const });
    const generation = this.#host.hold(this, (owned) => this.#run(text, turn, owned));
    return wantsJson(options) ? withParsed(generation) : generation;
  }

  async *#run(text: string, options: GenerateOptions, owned: boolean): AsyncGenerator<GeneratedToken, GenerationResult> {
    if (!owned) {
      this.#kept = [];
    }
    const { ids, stops, turns } = this.#fit(text, options.maxTokens);
    const cache = this.#host.cache;
    const common = commonPrefix(this.#kept, ids);
    const reuse = this.#mode === "exact" ? exactReuse(common, ids.length) : Math.min(common, ids.length - 1);
    this.#kept = this.#kept.slice(0, Math.min(reuse, cache.length));
    const generated: number[] = [];
    let reply = "";
    let failed = false;
    try {
      const gen = runGeneration(this.#host.loaded, cache, ids, options, stops, this.#kept.length);
      for (;;) {
        const step = await gen.next();
        if (step.done === true) {
          return step.value;
        }
        reply += step.value.text;
        if (step.value.token !== null) {
          generated.push(step.value.token);
        }
        yield step.value;
      }
    } catch (error) {
      failed = true;
      throw error;
    } finally {
      // What the cache now holds: the prompt's rows as far as they were run, then the fed reply tokens.
      const held = Math.min(cache.length, ids.length + generated.length);
      this.#kept = this.#mode === "exact" ? ids.slice(0, exactRows(Math.min(held, ids.length))) : [...ids, ...generated].slice(0, held);
      if (!failed) {
        this.#turns = [...turns, { role: "user", content: text }, { role: "assistant", content: reply }];
      }
    }
  }

  /** The prompt of this turn, dropping the oldest turns (reported through onTrim) until it fits. */
  #fit(text: string, maxTokens: number | undefined): { ids: number[]; stops: number[]; turns: ChatMessage[] } {
    const capacity = this.#host.contextLength;
    const room = maxTokens ?? Math.max(1, Math.min(CHAT_REPLY_ROOM, Math.floor(capacity / 4)));
    const system = this.#system === undefined ? [] : [{ role: "system" as const, content: this.#system }];
    const build = (turns: ChatMessage[]): { ids: number[]; stops: number[] } =>
      this.#host.chatPrompt([...system, ...turns, { role: "user", content: text }], this.#format);
    let turns = this.#turns;
    let prompt = build(turns);
    if (prompt.ids.length + room <= capacity) {
      return { ...prompt, turns };
    }
    const before = prompt.ids.length;
    let dropped = 0;
    const target = Math.floor(capacity * CHAT_TRIM_TARGET);
    while (turns.length > 0 && prompt.ids.length + room > target) {
      // One turn: the oldest user message and everything up to the next user message (its reply).
      const next = turns.findIndex((m, i) => i > 0 && m.role === "user");
      turns = next < 0 ? [] : turns.slice(next);
      prompt = build(turns);
      dropped++;
    }
    if (prompt.ids.length + room > capacity) {
      throw new ContextFullError(prompt.ids.length + room, capacity);
    }
    this.#onTrim?.({ droppedTurns: dropped, tokensBefore: before, tokensAfter: prompt.ids.length, contextLength: capacity });
    return { ...prompt, turns };
  }
}
