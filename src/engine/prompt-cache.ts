/**
 * Reusing the KV rows of a prompt prefix, exactly.
 *
 * A request whose prompt starts with the tokens of an earlier one (a multi-turn chat client resends the whole
 * conversation) need not compute that prefix again: its KV rows are copied from the earlier sequence and only
 * the rest of the prompt is prefilled, as llama-server's prompt cache and vLLM's automatic prefix caching do.
 *
 * **Exact by construction.** A row's bits depend on how the forward pass grouped the positions: the native
 * backend's attention sums a prefill step of 16 or more query rows in another order than a decode step of one
 * (both correct, not the same bits). A cold prompt is prefilled in steps of PREFILL_STEP_TOKENS from position
 * 0, so only rows computed by such a full, aligned step are reused: the reused length is a multiple of
 * PREFILL_STEP_TOKENS, the rows of a prompt's last partial step and of generated tokens are never reused, and
 * the rest of the prompt is prefilled from an aligned position in the same steps as a cold run. The output is
 * then the same bits as a cold run on any deterministic backend, with no assumption about its kernels.
 *
 * `PromptCache` keeps such prefixes of finished sequences within a byte budget (least recently used first out),
 * keyed by a namespace (one per backend chain: rows of one backend are not exact for another).
 */
import { ValueError } from "../core/errors.js";
import type { BitnetConfig } from "../model/bitnet/config.js";
import { PREFILL_STEP_TOKENS } from "../model/bitnet/forward.js";
import { KvCache } from "../model/bitnet/kv-cache.js";

/** Default budget of a server's prompt cache, in MiB (700M shape: ~1,800 positions; 2B-4T: ~3,400). */
export const DEFAULT_PROMPT_CACHE_MIB = 512;
/** Largest budget accepted, in MiB (64 GiB). */
export const MAX_PROMPT_CACHE_MIB = 64 * 1024;
/** Most prefixes kept at once (each lookup compares the prompt with every kept prefix of its namespace). */
export const MAX_PROMPT_CACHE_ENTRIES = 64;

/** Length of the common prefix of two token sequences. */
export function commonPrefix(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) {
    i++;
  }
  return i;
}

/**
 * Positions of a `promptLength`-token prompt whose KV rows may be taken from a cache that holds exact rows
 * for its first `common` tokens: a multiple of PREFILL_STEP_TOKENS (see the file comment), leaving at least
 * one prompt token to run (its logits give the first generated token).
 */
export function exactReuse(common: number, promptLength: number): number {
  const usable = Math.min(common, promptLength - 1);
  return usable <= 0 ? 0 : Math.floor(usable / PREFILL_STEP_TOKENS) * PREFILL_STEP_TOKENS;
}

/** Positions of a sequence whose rows a cold run computes the same way: its prompt's full aligned steps. */
export function exactRows(promptTokensRun: number): number {
  return Math.floor(promptTokensRun / PREFILL_STEP_TOKENS) * PREFILL_STEP_TOKENS;
}

/** What a prompt cache did so far (for status endpoints and metrics). */
export interface PromptCacheStats {
  readonly budgetBytes: number;
  readonly bytes: number;
  readonly entries: number;
  /** Lookups that reused rows, and those that found none. */
  readonly hits: number;
  readonly misses: number;
  /** Prompt tokens whose rows were copied instead of computed. */
  readonly tokensReused: number;
  /** Prefixes dropped to stay within the budget. */
  readonly evictions: number;
}

interface Entry {
  readonly namespace: string;
  readonly tokens: readonly number[];
  readonly cache: KvCache;
  used: number;
}

/** KV rows of earlier prompts' exact prefixes, within a byte budget, least recently used evicted first. */
export class PromptCache implements Disposable {
  readonly budgetBytes: number;
  readonly #config: BitnetConfig;
  #entries: Entry[] = [];
  #clock = 0;
  #hits = 0;
  #misses = 0;
  #reused = 0;
  #evictions = 0;

  /** @param budgetMiB 0 disables it (every lookup misses, nothing is kept). */
  constructor(config: BitnetConfig, budgetMiB: number) {
    if (!Number.isSafeInteger(budgetMiB) || budgetMiB < 0 || budgetMiB > MAX_PROMPT_CACHE_MIB) {
      throw new ValueError("out-of-range", `[prompt-cache] budget ${budgetMiB} MiB is not an integer in 0..${MAX_PROMPT_CACHE_MIB}`);
    }
    this.#config = config;
    this.budgetBytes = budgetMiB * 1024 * 1024;
  }

  get bytes(): number {
    return this.#entries.reduce((sum, e) => sum + e.cache.bytes, 0);
  }

  stats(): PromptCacheStats {
    return {
      budgetBytes: this.budgetBytes,
      bytes: this.bytes,
      entries: this.#entries.length,
      hits: this.#hits,
      misses: this.#misses,
      tokensReused: this.#reused,
      evictions: this.#evictions,
    };
  }

  /**
   * Fills `target` (an empty cache of the same model) with the longest exact prefix of `prompt` kept under
   * `namespace` and returns its length (0: nothing reused, `target` untouched).
   */
  restore(namespace: string, prompt: readonly number[], target: KvCache): number {
    let best: Entry | undefined;
    let rows = 0;
    for (const entry of this.#entries) {
      if (entry.namespace === namespace && entry.tokens[0] === prompt[0]) {
        const n = Math.min(exactReuse(commonPrefix(entry.tokens, prompt), prompt.length), target.capacity);
        if (n > rows) {
          best = entry;
          rows = n;
        }
      }
    }
    if (best === undefined || rows === 0) {
      this.#misses++;
      return 0;
    }
    target.copyPrefix(this.#config, best.cache, rows);
    best.used = ++this.#clock;
    this.#hits++;
    this.#reused += rows;
    return rows;
  }

  /**
   * Offers the rows of a finished sequence: `tokens` are the tokens of its first `tokens.length` positions,
   * all computed by full aligned prefill steps (see {@link exactRows}). Returns true when the cache took
   * `cache` itself (the caller must then not dispose it); otherwise it kept a compact copy or nothing.
   */
  offer(namespace: string, tokens: readonly number[], cache: KvCache): boolean {
    const rows = tokens.length;
    if (this.budgetBytes === 0 || rows === 0 || rows > cache.length) {
      return false;
    }
    // Already kept (as this prefix or a longer one): only its use is refreshed.
    for (const entry of this.#entries) {
      if (entry.namespace === namespace && entry.tokens.length >= rows && commonPrefix(entry.tokens, tokens) === rows) {
        entry.used = ++this.#clock;
        return false;
      }
    }
    // A compact copy of the rows, unless the cache holds exactly them: a later restore of the whole prefix is then
    // one copy (a part of a larger tensor takes two), and the copy is made here, after the request, instead of
    // before the next one's first token.
    const adopt = cache.capacity === rows;
    const bytes = (adopt ? cache.capacity : rows) * cache.bytesPerPosition;
    if (bytes > this.budgetBytes) {
      return false;
    }
    // Shorter prefixes of these tokens are superseded; then the least recently used go until it fits.
    this.#drop((e) => e.namespace === namespace && commonPrefix(e.tokens, tokens) === e.tokens.length);
    while (this.#entries.length > 0 && (this.bytes + bytes > this.budgetBytes || this.#entries.length >= MAX_PROMPT_CACHE_ENTRIES)) {
      const oldest = this.#entries.reduce((a, b) => (b.used < a.used ? b : a));
      this.#drop((e) => e === oldest);
      this.#evictions++;
    }
    const kept = adopt ? cache : KvCache.prefixOf(this.#config, cache, rows);
    this.#entries.push({ namespace, tokens: [...tokens], cache: kept, used: ++this.#clock });
    return adopt;
  }

  #drop(which: (e: Entry) => boolean): void {
    const keep: Entry[] = [];
    for (const e of this.#entries) {
      if (which(e)) {
        e.cache.dispose();
      } else {
        keep.push(e);
      }
    }
    this.#entries = keep;
  }

  /** Frees every kept prefix (the counters stay). */
  clear(): void {
    this.#drop(() => true);
  }

  dispose(): void {
    this.clear();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
