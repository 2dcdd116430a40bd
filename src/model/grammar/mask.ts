/**
 * Token masks: which tokens of a vocabulary a grammar state allows, computed as XGrammar does.
 *
 * 1. Per grammar position (the byte sets on top of a state's stacks, with the CLASSIFY_DEPTH − 1 frames under
 *    each), every token is classified once, lazily, from those stacks over SENTINEL: *accepted* when some path consumes all its bytes without leaving the
 *    position's rule chain, *rejected* when every path fails before leaving it, *context-dependent* when a path
 *    had to pop into the unknown context below (the SENTINEL) to go on. Accepted and rejected tokens are the
 *    same whatever stack lies below, so they are stored as a bitset; only the context-dependent ones (usually a
 *    small share: in a JSON string, the tokens containing a quote) are kept as a list.
 * 2. The mask of a matcher state is the position's accepted bitset plus the context-dependent tokens that the
 *    real stacks accept, checked by walking them.
 * 3. Masks are cached per state (stack sets are interned, so a state is one integer); JSON generation revisits
 *    states constantly (every string body, every item of an array), so most masks are a cache hit.
 *
 * The walk visits tokens in byte order and keeps the state after each prefix, so a prefix is matched once for
 * all tokens that share it, and a dead prefix costs nothing for the tokens after it.
 */
import { GrammarError } from "./errors.js";
import { MAX_MASK_CACHE, MAX_POSITION_CLASSES } from "./limits.js";
import { DONE, EMPTY_SET, SENTINEL, type StackStore } from "./stacks.js";
import type { GrammarVocab } from "./vocab.js";

/**
 * Stack frames a token classification looks at (1 = the position alone, as XGrammar's per-position cache). Small
 * rules (an optional space, one JSON string character) end after a byte or two, so with one frame most tokens
 * would depend on the context; three frames make them context-independent and are still shared between every
 * place the same three frames occur (every string body of a schema shares one classification).
 */
export const CLASSIFY_DEPTH = 3;

/** What every token does at one grammar position. */
interface PositionClass {
  readonly accepted: Uint32Array;
  /** Sorted-vocabulary entries whose fate depends on the stack below. */
  readonly dependent: Int32Array;
}

/** Counters for the bench and the docs. */
export interface MaskStats {
  maskCalls: number;
  cacheHits: number;
  positionClasses: number;
  dependentChecked: number;
}

export class TokenGrammar {
  readonly store: StackStore;
  readonly vocab: GrammarVocab;
  readonly stats: MaskStats = { maskCalls: 0, cacheHits: 0, positionClasses: 0, dependentChecked: 0 };
  readonly #classes = new Map<number, PositionClass>();
  readonly #masks = new Map<number, Uint32Array>();
  readonly #worst = new Map<number, number>();
  readonly #levels: Int32Array;
  readonly #esc: Uint8Array;
  readonly #maxLen: number;

  constructor(store: StackStore, vocab: GrammarVocab) {
    this.store = store;
    this.vocab = vocab;
    let max = 0;
    for (let k = 0; k < vocab.ids.length; k++) {
      max = Math.max(max, (vocab.offsets[k + 1] ?? 0) - (vocab.offsets[k] ?? 0));
    }
    this.#maxLen = max;
    this.#levels = new Int32Array(max + 1);
    this.#esc = new Uint8Array(max + 1);
  }

  /** Longest token in bytes. */
  get maxTokenBytes(): number {
    return this.#maxLen;
  }

  /**
   * Walks sorted entries (all when `entries` is undefined) from `start`, setting the bits of accepted tokens in
   * `accepted` and pushing context-dependent entries to `dependent`.
   */
  #walk(start: number, entries: Int32Array | undefined, accepted: Uint32Array, dependent: number[] | undefined): void {
    const { data, offsets, ids, lcp } = this.vocab;
    const store = this.store;
    const levels = this.#levels;
    const esc = this.#esc;
    levels[0] = start;
    esc[0] = 0;
    let valid = 0;
    let prev = -1;
    const count = entries === undefined ? ids.length : entries.length;
    for (let j = 0; j < count; j++) {
      const k = entries === undefined ? j : (entries[j] ?? 0);
      const off = offsets[k] ?? 0;
      const len = (offsets[k + 1] ?? 0) - off;
      let l = 0;
      if (prev === k - 1) {
        l = lcp[k] ?? 0;
      } else if (prev >= 0) {
        const poff = offsets[prev] ?? 0;
        const n = Math.min(len, (offsets[prev + 1] ?? 0) - poff);
        while (l < n && data[poff + l] === data[off + l]) {
          l++;
        }
      }
      prev = k;
      let i = l < valid ? l : valid;
      while (i < len && store.live(levels[i] ?? EMPTY_SET)) {
        const s = store.step(levels[i] ?? EMPTY_SET, data[off + i] ?? 0);
        levels[i + 1] = s;
        esc[i + 1] = (esc[i] ?? 0) | (store.hasSentinel(s) ? 1 : 0);
        i++;
      }
      valid = i;
      if (i === len && levels[len] !== EMPTY_SET) {
        const id = ids[k] ?? 0;
        accepted[id >> 5] = ((accepted[id >> 5] ?? 0) | (1 << (id & 31))) >>> 0;
      } else if (esc[i] === 1 && dependent !== undefined) {
        dependent.push(k);
      }
    }
  }

  /** A stack's top CLASSIFY_DEPTH frames over SENTINEL (the stack itself when it is no deeper). */
  #truncate(node: number): number {
    const chain: number[] = [];
    let n = node;
    while (n > SENTINEL && chain.length < CLASSIFY_DEPTH) {
      chain.push(this.store.pos(n));
      n = this.store.parent(n);
    }
    if (n <= SENTINEL) {
      return node;
    }
    let key = SENTINEL;
    for (let i = chain.length - 1; i >= 0; i--) {
      key = this.store.node(chain[i] ?? 0, key);
    }
    return key;
  }

  /**
   * The classification of a state: its stacks truncated to CLASSIFY_DEPTH frames, as one set, walked once over
   * the whole vocabulary. Frames below matter only to tokens that finish that many rules.
   */
  #classOf(state: number): PositionClass {
    const members = this.store.members(state);
    const truncated: number[] = [];
    for (let i = 0; i < members.length; i++) {
      const n = members[i] ?? DONE;
      if (n > SENTINEL) {
        truncated.push(this.#truncate(n));
      }
    }
    const key = this.store.intern(truncated);
    let pc = this.#classes.get(key);
    if (pc === undefined) {
      const accepted = new Uint32Array(this.vocab.words);
      const dependent: number[] = [];
      this.#walk(key, undefined, accepted, dependent);
      pc = { accepted, dependent: Int32Array.from(dependent) };
      if (this.#classes.size >= MAX_POSITION_CLASSES) {
        this.#classes.clear();
      }
      this.#classes.set(key, pc);
      this.stats.positionClasses++;
    }
    return pc;
  }

  /** The mask of a state (cached; the returned array must not be written). */
  maskOf(state: number): Uint32Array {
    this.stats.maskCalls++;
    const known = this.#masks.get(state);
    if (known !== undefined) {
      this.stats.cacheHits++;
      this.#masks.delete(state);
      this.#masks.set(state, known);
      return known;
    }
    const pc = this.#classOf(state);
    const bits = Uint32Array.from(pc.accepted);
    if (this.store.hasDone(state)) {
      for (const t of this.vocab.stops) {
        bits[t >> 5] = ((bits[t >> 5] ?? 0) | (1 << (t & 31))) >>> 0;
      }
    }
    if (pc.dependent.length > 0) {
      this.stats.dependentChecked += pc.dependent.length;
      this.#walk(state, pc.dependent, bits, undefined);
    }
    if (this.#masks.size >= MAX_MASK_CACHE) {
      const oldest = this.#masks.keys().next().value;
      if (oldest !== undefined) {
        this.#masks.delete(oldest);
      }
    }
    this.#masks.set(state, bits);
    return bits;
  }

  /**
   * The largest shortest-completion (in bytes) after any one token the state allows: when it fits the budget
   * no token needs checking. Computed once per state by stepping every allowed token.
   */
  worstCompletion(state: number): number {
    let worst = this.#worst.get(state);
    if (worst === undefined) {
      worst = 0;
      const bits = this.maskOf(state);
      const { bytes, stops } = this.vocab;
      for (let w = 0; w < bits.length; w++) {
        let word = bits[w] ?? 0;
        while (word !== 0) {
          const bit = 31 - Math.clz32(word);
          word &= ~(1 << bit);
          const t = w * 32 + bit;
          if (!stops.includes(t)) {
            worst = Math.max(worst, this.store.minCompletion(this.store.stepBytes(state, bytes[t] as Uint8Array)));
          }
        }
      }
      if (this.#worst.size >= MAX_MASK_CACHE) {
        this.#worst.clear();
      }
      this.#worst.set(state, worst);
    }
    return worst;
  }

  /** Checks a mask buffer's size. */
  checkBuffer(into: Uint32Array): void {
    if (!(into instanceof Uint32Array) || into.length < this.vocab.words) {
      throw new GrammarError("bad-token", `[grammar] a token mask needs a Uint32Array of at least ${this.vocab.words} words`);
    }
  }
}
