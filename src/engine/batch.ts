/**
 * Continuous batching: many generations share decode steps. Each sequence has its own KV cache and
 * sampling state (SequenceState); one step runs the next token of every active sequence through the
 * model together (forwardBatch), so the weights are read once per step instead of once per sequence.
 * Sequences join and leave between steps: a new request is prefilled (at most PREFILL_STEP_TOKENS prompt
 * tokens per scheduling round over all joining sequences, so a long prompt does not stall the others for
 * long, and short prompts that arrive together start decoding together) and then joins the decode batch;
 * a finished, aborted or failed one leaves and frees its cache at once.
 *
 * The driver is one async loop per batcher; it yields to the event loop between steps, so consumers
 * read their tokens and new requests arrive while the others decode.
 */
import { UsageError, ValueError } from "../core/errors.js";
import { PushQueue } from "../core/queue.js";
import { extend, forward, forwardBatch, MAX_BATCH_SEQUENCES, PREFILL_STEP_TOKENS } from "../model/bitnet/forward.js";
import { KvCache, type KvCacheDType } from "../model/bitnet/kv-cache.js";
import type { Tensor } from "../tensor/tensor.js";
import { exactRows, type PromptCache } from "./prompt-cache.js";
import { SequenceState, toGeneration, yieldToEventLoop, type GeneratedToken, type GenerateOptions, type Generation, type GenerationResult } from "./generate.js";
import type { LoadedModel } from "./loaded.js";

export interface BatcherOptions {
  /** Most sequences decoded together (default 8, at most MAX_BATCH_SEQUENCES); more requests wait their turn. */
  readonly maxSequences?: number;
  /** Context of each sequence's KV cache (default: the model's, at most 4096). */
  readonly contextLength?: number;
  /** Element type of each sequence's KV cache (default f32; BitnetModel.batcher passes the model's). */
  readonly kvCacheType?: KvCacheDType;
  /**
   * Called right before each forward step (a prefill chunk or a decode step); a throw fails that step's
   * sequences like a kernel failure. For callers whose batchers share one backend facade and must point it
   * at this batcher's kernels (the serving host runs one batcher per backend chain).
   */
  readonly beforeStep?: () => void;
  /**
   * Reuse the KV rows of earlier prompts' prefixes (src/engine/prompt-cache.ts): a new sequence starts from
   * the longest exact prefix kept under `namespace`, and a finished one offers its own. The cache is shared
   * (its budget covers every batcher that uses it) and stays the caller's to dispose.
   */
  readonly promptCache?: { readonly cache: PromptCache; readonly namespace: string };
}

/** What the batcher reports about its load (for status endpoints and metrics). */
export interface BatcherStats {
  /** Sequences being prefilled or decoded. */
  readonly active: number;
  /** Requests waiting for a free slot. */
  readonly waiting: number;
  /** Decode steps run so far, and the sequences they carried in total (mean batch = rows / steps). */
  readonly steps: number;
  readonly rows: number;
}

interface Slot {
  readonly state: SequenceState;
  /** The generation's outputs, read by its consumer as they come. */
  readonly out: PushQueue<GeneratedToken, GenerationResult>;
  cache: KvCache | undefined;
  /** Prompt tokens already run through the model (or whose rows came from the prompt cache). */
  prefilled: number;
  /** Prompt tokens whose rows came from the prompt cache. */
  cached: number;
  /** The token the next decode step feeds (the last one sampled). */
  last: number;
  readonly t0: number;
  prefillMs: number;
  t1: number;
}

/**
 * Runs generations of one model with shared decode steps. Create it from a loaded model (BitnetModel's
 * `batcher()`); `generate(ids, options)` starts a generation that behaves like `BitnetModel.generate`
 * (same options, same results) while other generations run in the same steps.
 */
export class Batcher implements Disposable {
  readonly maxSequences: number;
  readonly contextLength: number;
  readonly kvCacheType: KvCacheDType;
  readonly #model: LoadedModel;
  readonly #beforeStep: (() => void) | undefined;
  readonly #promptCache: BatcherOptions["promptCache"];
  readonly #waiting: Slot[] = [];
  readonly #active: Slot[] = [];
  #running = false;
  #disposed = false;
  #steps = 0;
  #rows = 0;
  /** The decode steps' logits, read into one array grown to the largest batch (see runGeneration in generate.ts). */
  #logits = new Float32Array(0);

  constructor(model: LoadedModel, options: BatcherOptions = {}) {
    const max = options.maxSequences ?? 8;
    if (!Number.isSafeInteger(max) || max < 1 || max > MAX_BATCH_SEQUENCES) {
      throw new ValueError("out-of-range", `[batcher] maxSequences ${max} is not an integer in 1..${MAX_BATCH_SEQUENCES}`);
    }
    const ctx = options.contextLength ?? Math.min(model.config.contextLength, 4096);
    if (!Number.isSafeInteger(ctx) || ctx < 2) {
      throw new ValueError("out-of-range", `[batcher] contextLength ${ctx} is not an integer ≥ 2`);
    }
    this.#model = model;
    this.#beforeStep = options.beforeStep;
    this.#promptCache = options.promptCache;
    this.maxSequences = max;
    this.contextLength = ctx;
    this.kvCacheType = options.kvCacheType ?? "f32";
  }

  stats(): BatcherStats {
    return { active: this.#active.length, waiting: this.#waiting.length, steps: this.#steps, rows: this.#rows };
  }

  /** Starts a generation over token ids; `extraStops` are stop tokens on top of the options' ones. */
  generate(ids: readonly number[], options: GenerateOptions = {}, extraStops: readonly number[] = []): Generation {
    if (this.#disposed) {
      throw new UsageError("unsupported", "[batcher] used after dispose()");
    }
    // Validates the options and fits the prompt now, so a bad request fails before it waits.
    const state = new SequenceState(this.#model.tokenizer, this.contextLength, ids, options, extraStops);
    const slot: Slot = { state, out: new PushQueue<GeneratedToken, GenerationResult>(), cache: undefined, prefilled: 0, cached: 0, last: 0, t0: performance.now(), prefillMs: 0, t1: 0 };
    this.#waiting.push(slot);
    this.#kick();
    return toGeneration(() => slot.out.drain());
  }

  #kick(): void {
    if (!this.#running) {
      this.#running = true;
      void this.#drive().finally(() => {
        this.#running = false;
        if (this.#waiting.length > 0 || this.#active.length > 0) {
          this.#kick();
        }
      });
    }
  }

  /** Ends a slot: flushes held-back text, reports the result (or the error) and frees its cache. */
  #retire(slot: Slot, error?: unknown): void {
    const i = this.#active.indexOf(slot);
    if (i >= 0) {
      this.#active.splice(i, 1);
    }
    const cache = slot.cache;
    slot.cache = undefined;
    if (cache !== undefined && (error !== undefined || !this.#offer(slot, cache))) {
      cache.dispose();
    }
    if (error !== undefined) {
      slot.out.fail(error);
      return;
    }
    const tail = slot.state.finish();
    if (tail !== undefined) {
      slot.out.push(tail);
    }
    let result: GenerationResult;
    try {
      result = slot.state.result(slot.prefillMs, slot.t1 === 0 ? 0 : performance.now() - slot.t1, slot.cached);
    } catch (e) {
      slot.out.fail(e); // a grammar left incomplete (GrammarIncompleteError)
      return;
    }
    slot.out.end(result);
  }

  /** Offers a retiring slot's exact prompt rows to the prompt cache; true when the cache kept `cache` itself. */
  #offer(slot: Slot, cache: KvCache): boolean {
    const rows = exactRows(Math.min(slot.prefilled, slot.state.prompt.length, cache.length));
    if (this.#promptCache === undefined || rows === 0 || this.#disposed) {
      return false;
    }
    try {
      this.#beforeStep?.();
      return this.#promptCache.cache.offer(this.#promptCache.namespace, slot.state.prompt.slice(0, rows), cache);
    } catch {
      return false; // a copy that failed (memory): the prefix is just not kept
    }
  }

  /** Starts a joining slot from the longest exact prompt prefix the prompt cache holds, if any. */
  #restore(slot: Slot, cache: KvCache): void {
    const pc = this.#promptCache;
    if (pc === undefined) {
      return;
    }
    try {
      this.#beforeStep?.();
      slot.cached = pc.cache.restore(pc.namespace, slot.state.prompt, cache);
    } catch {
      cache.truncate(0); // a copy that failed: the prompt is prefilled from the start, as without a cache
      slot.cached = 0;
    }
    slot.prefilled = slot.cached;
  }

  /** Samples a slot's next token from one row of logits; retires it when it is done. */
  #take(slot: Slot, row: Float32Array): void {
    const cache = slot.cache;
    if (cache === undefined) {
      return; // retired while its logits were read back (dispose()): nothing more to report
    }
    let piece: GeneratedToken | undefined;
    try {
      piece = slot.state.next(row, cache.length);
    } catch (e) {
      this.#retire(slot, e); // this sequence's own failure (a grammar with no room): the others go on
      return;
    }
    if (piece !== undefined) {
      slot.out.push(piece);
      slot.last = piece.token ?? 0;
    }
    if (slot.state.done) {
      this.#retire(slot);
    }
  }

  async #drive(): Promise<void> {
    const { config, backend } = this.#model;
    // Let generations submitted in the same tick as the first one join its first round.
    await Promise.resolve();
    while (!this.#disposed && (this.#waiting.length > 0 || this.#active.length > 0)) {
      // Aborted sequences leave first.
      for (const slot of [...this.#active, ...this.#waiting]) {
        if (slot.state.aborted()) {
          const w = this.#waiting.indexOf(slot);
          if (w >= 0) {
            this.#waiting.splice(w, 1);
          }
          this.#retire(slot);
        }
      }
      while (this.#active.length < this.maxSequences && this.#waiting.length > 0) {
        const slot = this.#waiting.shift() as Slot;
        try {
          slot.cache = new KvCache(config, Math.min(this.contextLength, slot.state.prompt.length + slot.state.budget), backend, this.kvCacheType);
          this.#active.push(slot);
          this.#restore(slot, slot.cache);
        } catch (e) {
          this.#retire(slot, e);
        }
      }
      // Prefill chunks for the sequences still prefilling, in arrival order, up to PREFILL_STEP_TOKENS prompt
      // tokens per round (always at least one chunk): a long prompt still stalls the running sequences by one
      // chunk per round at most, and short prompts that arrive together all start decoding in the next step
      // instead of one per round (which left the batch short at the start and ragged at the end).
      let budget = PREFILL_STEP_TOKENS;
      for (const slot of this.#active.filter((s) => s.prefilled < s.state.prompt.length)) {
        const chunk = Math.min(PREFILL_STEP_TOKENS, slot.state.prompt.length - slot.prefilled);
        if (chunk > budget && budget < PREFILL_STEP_TOKENS) {
          break;
        }
        budget -= chunk;
        await this.#stepPrefill(slot);
      }
      // One decode step for every sequence past its prompt.
      const decoding = this.#active.filter((s) => s.prefilled >= s.state.prompt.length && !s.state.done && s.t1 > 0);
      if (decoding.length > 0) {
        await this.#stepDecode(decoding);
      }
      await yieldToEventLoop();
    }
  }

  /** One prefill chunk of a slot; the last one samples its first token (the logits read is awaited). */
  async #stepPrefill(slot: Slot): Promise<void> {
    const { config, weights } = this.#model;
    const prompt = slot.state.prompt;
    const chunk = prompt.slice(slot.prefilled, slot.prefilled + PREFILL_STEP_TOKENS);
    let logits: Tensor<"f32", ["seq", "vocab"]> | undefined;
    try {
      this.#beforeStep?.();
      const last = slot.prefilled + chunk.length >= prompt.length;
      if (last) {
        logits = forward(config, weights, slot.cache as KvCache, chunk);
      } else {
        extend(config, weights, slot.cache as KvCache, chunk); // no logits: nothing samples before the prompt's end
      }
      slot.prefilled += chunk.length;
      if (last && logits !== undefined) {
        slot.prefillMs = performance.now() - slot.t0;
        slot.t1 = performance.now();
        this.#take(slot, await logits.toFloat32Async());
      }
    } catch (e) {
      this.#retire(slot, e);
    } finally {
      logits?.dispose();
    }
  }

  /** One decode step of every slot past its prompt; one awaited read of the step's logits. */
  async #stepDecode(slots: Slot[]): Promise<void> {
    const { config, weights } = this.#model;
    let logits: Tensor<"f32", ["seq", "vocab"]> | undefined;
    try {
      this.#beforeStep?.();
      logits = forwardBatch(
        config,
        weights,
        slots.map((s) => s.cache as KvCache),
        slots.map((s) => s.last),
      );
      this.#steps++;
      this.#rows += slots.length;
      const vocab = config.vocabSize;
      if (this.#logits.length < slots.length * vocab) {
        this.#logits = new Float32Array(slots.length * vocab);
      }
      const all = await logits.toFloat32Async(this.#logits.subarray(0, slots.length * vocab));
      slots.forEach((slot, b) => this.#take(slot, all.subarray(b * vocab, (b + 1) * vocab)));
    } catch (e) {
      // A failed step fails every sequence in it (their caches may hold a half-written position).
      slots.forEach((slot) => this.#retire(slot, e));
    } finally {
      logits?.dispose();
    }
  }

  /** Ends every generation with a UsageError and frees their caches. */
  dispose(): void {
    if (this.#disposed) {
      return;
    }
    this.#disposed = true;
    const error = new UsageError("unsupported", "[batcher] disposed while the generation ran");
    for (const slot of [...this.#waiting.splice(0), ...this.#active]) {
      this.#retire(slot, error);
    }
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
