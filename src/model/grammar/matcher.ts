/**
 * A grammar matcher for one generation: which tokens may come next (`mask`), advancing by a token (`accept`),
 * `isComplete`, and `rollback` (states are interned stack sets, so the history is a list of integers and a
 * rollback copies nothing).
 */
import { GrammarError } from "./errors.js";
import type { TokenGrammar } from "./mask.js";
import { EMPTY_SET } from "./stacks.js";

/** Options of `GrammarMatcher.mask`. */
export interface MaskOptions {
  /**
   * Tokens left in the generation's budget, counting the one about to be chosen. When the grammar could no
   * longer be completed in that many tokens, the mask keeps only tokens after which the shortest completion
   * (in bytes, one byte per token at worst) still fits, so a generation that had room for the shortest
   * completion at its start always ends with a complete value.
   */
  readonly remainingTokens?: number;
}

export class GrammarMatcher {
  readonly #g: TokenGrammar;
  readonly #start: number;
  #state: number;
  #finished = false;
  readonly #history: { state: number; finished: boolean }[] = [];

  /** @internal Use `TokenGrammar.matcher()` or `compileGrammar(...).matcher()`. */
  constructor(grammar: TokenGrammar, start: number) {
    this.#g = grammar;
    this.#start = start;
    this.#state = start;
  }

  /** Words a mask bitset needs: ceil(vocabSize / 32). */
  get maskWords(): number {
    return this.#g.vocab.words;
  }

  /** Tokens accepted so far (what `rollback` can undo). */
  get tokenCount(): number {
    return this.#history.length;
  }

  /** True when the text so far is a complete sentence of the grammar (a stop token may come now). */
  isComplete(): boolean {
    return this.#finished || this.#g.store.hasDone(this.#state);
  }

  /** True when nothing more can be accepted: a stop token was accepted, or the grammar admits no more bytes. */
  isFinished(): boolean {
    return this.#finished || !this.#g.store.live(this.#state);
  }

  /** Fewest bytes that would complete the grammar from here (0 when complete). */
  minCompletionBytes(): number {
    return this.#finished ? 0 : this.#g.store.minCompletion(this.#state);
  }

  #check(token: number): void {
    if (!Number.isInteger(token) || token < 0 || token >= this.#g.vocab.size) {
      throw new GrammarError("bad-token", `[grammar] token ${String(token)} is outside the vocabulary [0, ${this.#g.vocab.size})`);
    }
  }

  /** The state after a token, or EMPTY_SET when the grammar does not allow it; "stop" for an allowed stop token. */
  #after(token: number): number | "stop" {
    if (this.#finished) {
      return EMPTY_SET;
    }
    if (this.#g.vocab.stops.includes(token)) {
      return this.#g.store.hasDone(this.#state) ? "stop" : EMPTY_SET;
    }
    const bytes = this.#g.vocab.bytes[token];
    if (bytes === undefined || bytes.length === 0) {
      return EMPTY_SET;
    }
    return this.#g.store.stepBytes(this.#state, bytes);
  }

  /** Whether `accept(token)` would succeed. */
  canAccept(token: number): boolean {
    this.#check(token);
    return this.#after(token) !== EMPTY_SET;
  }

  /**
   * Advances by one token.
   *
   * @throws GrammarError "rejected" when the grammar does not allow it here (the state is unchanged);
   *   "bad-token" for an id outside the vocabulary.
   */
  accept(token: number): void {
    this.#check(token);
    const next = this.#after(token);
    if (next === EMPTY_SET) {
      throw new GrammarError("rejected", `[grammar] token ${token} is not allowed by the grammar here`);
    }
    this.#history.push({ state: this.#state, finished: this.#finished });
    if (next === "stop") {
      this.#finished = true;
    } else {
      this.#state = next;
    }
  }

  /**
   * Writes the allowed tokens as a bitset (bit t of word t >> 5 set when token t may come next) into `into`,
   * or a new array, and returns it. Ids beyond the tokenizer's vocabulary (padding rows of an embedding) are
   * never allowed.
   */
  mask(into?: Uint32Array, options: MaskOptions = {}): Uint32Array {
    const words = this.#g.vocab.words;
    const out = into ?? new Uint32Array(words);
    this.#g.checkBuffer(out);
    if (this.#finished) {
      out.fill(0, 0, words);
      return out;
    }
    out.set(this.#g.maskOf(this.#state));
    out.fill(0, words);
    const remaining = options.remainingTokens;
    if (remaining !== undefined && this.#g.worstCompletion(this.#state) > remaining - 1) {
      this.#fitBudget(out, remaining - 1);
    }
    return out;
  }

  /** Clears the tokens after which the grammar could not finish within `room` more bytes. */
  #fitBudget(bits: Uint32Array, room: number): void {
    const store = this.#g.store;
    const { bytes, stops } = this.#g.vocab;
    for (let w = 0; w < this.#g.vocab.words; w++) {
      let word = bits[w] ?? 0;
      while (word !== 0) {
        const bit = 31 - Math.clz32(word);
        word &= ~(1 << bit);
        const t = w * 32 + bit;
        if (stops.includes(t)) {
          continue;
        }
        const after = store.stepBytes(this.#state, bytes[t] as Uint8Array);
        if (store.minCompletion(after) > room) {
          bits[w] = ((bits[w] ?? 0) & ~(1 << bit)) >>> 0;
        }
      }
    }
  }

  /**
   * Undoes the last `count` accepted tokens.
   *
   * @throws GrammarError "bad-token" when count is not an integer in [0, tokenCount].
   */
  rollback(count: number): void {
    if (!Number.isSafeInteger(count) || count < 0 || count > this.#history.length) {
      throw new GrammarError("bad-token", `[grammar] cannot roll back ${String(count)} tokens; ${this.#history.length} were accepted`);
    }
    for (let i = 0; i < count; i++) {
      const h = this.#history.pop();
      if (h !== undefined) {
        this.#state = h.state;
        this.#finished = h.finished;
      }
    }
  }

  /** Back to the start, as a new matcher. */
  reset(): void {
    this.#state = this.#start;
    this.#finished = false;
    this.#history.length = 0;
  }
}
