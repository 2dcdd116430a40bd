/**
 * Byte-level BPE training (issue 8, point 4): learns the merges of a GPT-2/Llama-3-style tokenizer from text and
 * writes the result both as a Hugging Face tokenizer.json and as the `tokenizer.ggml.*` GGUF metadata that
 * `tokenizerFromGguf` reads, so a trained model file carries its own tokenizer (docs/training.md).
 *
 * `@huggingface/tokenizers` (the JS package) can only encode and decode, not train, so the trainer is barbell's
 * own. The algorithm is the usual one (Sennrich et al. 2016, byte-level as in GPT-2):
 *
 * 1. Pre-tokenize each text with the same split regex barbell's encoder uses (`PRE_TOKENIZER_PATTERNS`) and count
 *    the distinct words; a word is its UTF-8 bytes, the 256 byte tokens being ids 0–255 (id = byte value).
 * 2. Repeatedly merge the most frequent adjacent pair over all words (weighted by word count). Ties go to the
 *    pair with the smaller left id, then the smaller right id, so training is deterministic. A merge whose text
 *    is already a token reuses that id (several merge paths can spell the same bytes).
 * 3. Stop at the requested vocabulary size, when no pair occurs `minFrequency` times, or at the time limit.
 *    Special tokens follow the learned ones; reserved control tokens pad the vocabulary to exactly `vocabSize`.
 *
 * Bounded: at most `maxWords` distinct words are kept (later new words are skipped and counted), words over
 * `maxWordBytes` bytes are skipped, and merging stops after `maxMs` milliseconds.
 */
import type { GgufValue } from "../formats/gguf/index.js";
import { ggufTokenizerMetadata } from "../model/bitnet/convert-tokenizer.js";
import {
  BYTE_TO_CHAR,
  EOT_TEXTS,
  PRE_TOKENIZER_PATTERNS,
  tokenizerJsonFiles,
  type TokenizerTables,
  TokenType,
  splitWords,
  type ByteLevelPreTokenizer,
} from "../model/tokenizer/index.js";

/** Largest vocabulary the trainer builds (pair keys are `left · 2^17 + right`). */
export const MAX_TRAIN_VOCAB = 1 << 17;

/** Default bound on distinct pre-token words kept for training. */
export const DEFAULT_MAX_WORDS = 1 << 19;

/** Default bound on a word's UTF-8 length; longer words (long runs of one class) are left out of training. */
export const DEFAULT_MAX_WORD_BYTES = 64;

/** Default time limit of the merge loop. */
export const DEFAULT_TRAIN_MS = 5 * 60 * 1000;

/** Special tokens added when none are given: BOS, EOS and end-of-turn, as in Llama 3 and the BitNet fixture. */
export const DEFAULT_SPECIAL_TOKENS: readonly string[] = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"];

/** Options of `trainByteBpe`. */
export interface ByteBpeTrainOptions {
  /** Total vocabulary: 256 bytes + learned merges + special tokens (+ reserved padding). */
  readonly vocabSize: number;
  /** Split regex (default `llama3`). */
  readonly preTokenizer?: ByteLevelPreTokenizer;
  /** Special tokens, appended after the learned tokens: [0] is BOS, [1] EOS. Default `DEFAULT_SPECIAL_TOKENS`. */
  readonly specialTokens?: readonly string[];
  /** A pair must occur at least this often (weighted) to be merged. Default 2. */
  readonly minFrequency?: number;
  /** Distinct-word bound (memory). Default `DEFAULT_MAX_WORDS`. */
  readonly maxWords?: number;
  /** Word-length bound in bytes. Default `DEFAULT_MAX_WORD_BYTES`. */
  readonly maxWordBytes?: number;
  /** Time limit of the merge loop in ms. Default `DEFAULT_TRAIN_MS`. */
  readonly maxMs?: number;
  /** Clock in ms (default `performance.now`); injectable for tests of the time limit. */
  readonly clock?: () => number;
}

/** Why the merge loop ended. */
export type TrainStop = "vocab" | "pairs" | "time";

/** Counts from a training run. */
export interface ByteBpeTrainStats {
  /** Pre-token words seen (with repeats), counting skipped ones. */
  readonly words: number;
  /** Distinct words trained on. */
  readonly distinctWords: number;
  /** Word occurrences left out because `maxWords` distinct words were already kept. */
  readonly skippedWords: number;
  /** Word occurrences left out for being longer than `maxWordBytes`. */
  readonly skippedLongWords: number;
  /** Learned tokens (vocabulary entries past the 256 bytes, before specials). */
  readonly learnedTokens: number;
  /** Reserved control tokens added to reach `vocabSize`. */
  readonly reservedTokens: number;
  readonly stoppedBy: TrainStop;
  readonly ms: number;
}

/** A trained byte-level BPE vocabulary. */
export interface TrainedByteBpe {
  /** Token texts by id: byte-level characters (`Ġthe`) for normal tokens, raw text for control tokens. */
  readonly tokens: readonly string[];
  /** GGUF token types by id (normal or control). */
  readonly types: readonly number[];
  /** Merges in rank order, `"left right"`. */
  readonly merges: readonly string[];
  readonly preTokenizer: ByteLevelPreTokenizer;
  readonly bos: number;
  readonly eos: number;
  readonly eot: number | undefined;
  readonly stats: ByteBpeTrainStats;
}

const PAIR_BASE = MAX_TRAIN_VOCAB;
const utf8 = new TextEncoder();

function positiveInt(v: number, what: string): number {
  if (!Number.isSafeInteger(v) || v < 1) {
    throw new RangeError(`[train tokenizer] ${what} must be a positive integer, got ${v}`);
  }
  return v;
}

/** Max-heap of (count, pair) with the deterministic tie-break; entries go stale and are skipped when popped. */
class PairHeap {
  readonly #counts: number[] = [];
  readonly #keys: number[] = [];

  get size(): number {
    return this.#keys.length;
  }

  #above(i: number, j: number): boolean {
    const ci = this.#counts[i] ?? 0;
    const cj = this.#counts[j] ?? 0;
    return ci !== cj ? ci > cj : (this.#keys[i] ?? 0) < (this.#keys[j] ?? 0);
  }

  #swap(i: number, j: number): void {
    const c = this.#counts[i] ?? 0;
    const k = this.#keys[i] ?? 0;
    this.#counts[i] = this.#counts[j] ?? 0;
    this.#keys[i] = this.#keys[j] ?? 0;
    this.#counts[j] = c;
    this.#keys[j] = k;
  }

  push(count: number, key: number): void {
    let i = this.#keys.length;
    this.#counts.push(count);
    this.#keys.push(key);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.#above(i, p)) {
        break;
      }
      this.#swap(i, p);
      i = p;
    }
  }

  /** Removes the top entry and returns [count, key]; undefined when empty. */
  pop(): [number, number] | undefined {
    const n = this.#keys.length;
    if (n === 0) {
      return undefined;
    }
    const top: [number, number] = [this.#counts[0] ?? 0, this.#keys[0] ?? 0];
    this.#swap(0, n - 1);
    this.#counts.pop();
    this.#keys.pop();
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let best = i;
      if (l < n - 1 && this.#above(l, best)) {
        best = l;
      }
      if (r < n - 1 && this.#above(r, best)) {
        best = r;
      }
      if (best === i) {
        break;
      }
      this.#swap(i, best);
      i = best;
    }
    return top;
  }
}

/** Counts pre-token words of the texts, within the word bounds. */
function countWords(
  texts: Iterable<string>,
  pattern: RegExp,
  maxWords: number,
  maxWordBytes: number,
): { counts: Map<string, number>; words: number; skipped: number; skippedLong: number } {
  const counts = new Map<string, number>();
  let words = 0;
  let skipped = 0;
  let skippedLong = 0;
  for (const text of texts) {
    for (const w of splitWords(text, pattern)) {
      words++;
      const had = counts.get(w);
      if (had !== undefined) {
        counts.set(w, had + 1);
      } else if (w.length > maxWordBytes || utf8.encode(w).length > maxWordBytes) {
        skippedLong++;
      } else if (counts.size >= maxWords) {
        skipped++;
      } else {
        counts.set(w, 1);
      }
    }
  }
  return { counts, words, skipped, skippedLong };
}

/**
 * Trains a byte-level BPE vocabulary of exactly `options.vocabSize` tokens on `texts` (any iterable of documents
 * or lines; each is pre-tokenized on its own). Throws RangeError for a vocabulary smaller than 256 + the special
 * tokens or larger than `MAX_TRAIN_VOCAB`, and for bad bounds.
 */
export function trainByteBpe(texts: Iterable<string>, options: ByteBpeTrainOptions): TrainedByteBpe {
  const clock = options.clock ?? (() => performance.now());
  const start = clock();
  const specials = options.specialTokens ?? DEFAULT_SPECIAL_TOKENS;
  const vocabSize = positiveInt(options.vocabSize, "vocabSize");
  if (specials.length < 2) {
    throw new RangeError("[train tokenizer] specialTokens needs at least BOS and EOS");
  }
  if (new Set(specials).size !== specials.length || specials.some((s) => s.length === 0 || s.includes(" "))) {
    throw new RangeError("[train tokenizer] specialTokens must be distinct, non-empty and without spaces");
  }
  if (vocabSize < 256 + specials.length || vocabSize > MAX_TRAIN_VOCAB) {
    throw new RangeError(
      `[train tokenizer] vocabSize ${vocabSize} is outside [${256 + specials.length}, ${MAX_TRAIN_VOCAB}]`,
    );
  }
  const minFrequency = positiveInt(options.minFrequency ?? 2, "minFrequency");
  const maxMs = options.maxMs ?? DEFAULT_TRAIN_MS;
  if (!(maxMs >= 0)) {
    throw new RangeError(`[train tokenizer] maxMs must be >= 0, got ${maxMs}`);
  }
  const preTokenizer = options.preTokenizer ?? "llama3";
  const pattern = new RegExp(PRE_TOKENIZER_PATTERNS[preTokenizer], "gu");
  const counted = countWords(
    texts,
    pattern,
    positiveInt(options.maxWords ?? DEFAULT_MAX_WORDS, "maxWords"),
    positiveInt(options.maxWordBytes ?? DEFAULT_MAX_WORD_BYTES, "maxWordBytes"),
  );

  // Words in first-seen order (deterministic), as symbol-id arrays, with their counts.
  const symbols: Int32Array[] = [];
  const freq: number[] = [];
  for (const [w, c] of counted.counts) {
    symbols.push(Int32Array.from(utf8.encode(w)));
    freq.push(c);
  }
  counted.counts.clear();

  const tokens: string[] = [...BYTE_TO_CHAR];
  const idOf = new Map<string, number>(tokens.map((t, id) => [t, id]));
  const merges: string[] = [];
  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>();
  const addPairs = (w: number, sign: 1 | -1, touched: Set<number> | undefined): void => {
    const s = symbols[w] ?? new Int32Array(0);
    const f = (freq[w] ?? 0) * sign;
    for (let i = 0; i + 1 < s.length; i++) {
      const key = (s[i] ?? 0) * PAIR_BASE + (s[i + 1] ?? 0);
      pairCount.set(key, (pairCount.get(key) ?? 0) + f);
      touched?.add(key);
      if (sign > 0) {
        let ws = pairWords.get(key);
        if (ws === undefined) {
          ws = new Set();
          pairWords.set(key, ws);
        }
        ws.add(w);
      }
    }
  };
  symbols.forEach((_, w) => addPairs(w, 1, undefined));
  const heap = new PairHeap();
  for (const [key, c] of pairCount) {
    heap.push(c, key);
  }

  const learnedTarget = vocabSize - specials.length;
  let stoppedBy: TrainStop = "vocab";
  while (tokens.length < learnedTarget) {
    if (clock() - start > maxMs) {
      stoppedBy = "time";
      break;
    }
    let best: [number, number] | undefined;
    while ((best = heap.pop()) !== undefined && pairCount.get(best[1]) !== best[0]) {
      // stale entry: the pair's count changed after it was pushed
    }
    if (best === undefined || best[0] < minFrequency) {
      stoppedBy = "pairs";
      break;
    }
    const key = best[1];
    const a = Math.floor(key / PAIR_BASE);
    const b = key % PAIR_BASE;
    const left = tokens[a] ?? "";
    const right = tokens[b] ?? "";
    const text = left + right;
    let c = idOf.get(text);
    if (c === undefined) {
      c = tokens.length;
      tokens.push(text);
      idOf.set(text, c);
    }
    merges.push(`${left} ${right}`);

    const touched = new Set<number>();
    const ws = pairWords.get(key) ?? new Set<number>();
    pairWords.delete(key);
    for (const w of ws) {
      const s = symbols[w] ?? new Int32Array(0);
      let found = false;
      for (let i = 0; i + 1 < s.length; i++) {
        if (s[i] === a && s[i + 1] === b) {
          found = true;
          break;
        }
      }
      if (!found) {
        continue;
      }
      addPairs(w, -1, touched);
      const next: number[] = [];
      for (let i = 0; i < s.length; i++) {
        if (i + 1 < s.length && s[i] === a && s[i + 1] === b) {
          next.push(c);
          i++;
        } else {
          next.push(s[i] ?? 0);
        }
      }
      symbols[w] = Int32Array.from(next);
      addPairs(w, 1, touched);
    }
    for (const k of touched) {
      const n = pairCount.get(k) ?? 0;
      if (n > 0) {
        heap.push(n, k);
      } else {
        pairCount.delete(k);
        pairWords.delete(k);
      }
    }
  }

  const learnedTokens = tokens.length - 256;
  const types: number[] = tokens.map(() => TokenType.normal);
  const bos = tokens.length;
  for (const s of specials) {
    tokens.push(s);
    types.push(TokenType.control);
  }
  let reservedTokens = 0;
  for (let i = 0; tokens.length < vocabSize; i++) {
    const t = `<|reserved_special_token_${i}|>`;
    if (!specials.includes(t)) {
      tokens.push(t);
      types.push(TokenType.control);
      reservedTokens++;
    }
  }
  const eotText = EOT_TEXTS.find((t) => specials.includes(t));
  return {
    tokens,
    types,
    merges,
    preTokenizer,
    bos,
    eos: bos + 1,
    eot: eotText === undefined ? undefined : bos + specials.indexOf(eotText),
    stats: {
      words: counted.words,
      distinctWords: symbols.length,
      skippedWords: counted.skipped,
      skippedLongWords: counted.skippedLong,
      learnedTokens,
      reservedTokens,
      stoppedBy,
      ms: clock() - start,
    },
  };
}

/** The trained vocabulary as the tables every tokenizer writer takes (BOS added by default). */
export function trainedTables(t: TrainedByteBpe): TokenizerTables {
  return {
    kind: "byte-bpe",
    tables: {
      tokens: t.tokens,
      types: Uint8Array.from(t.types),
      bos: t.bos,
      eos: t.eos,
      eot: t.eot,
      addBos: true,
      merges: t.merges,
      preTokenizer: t.preTokenizer,
      ignoreMerges: t.preTokenizer === "llama3",
    },
  };
}

/**
 * The trained vocabulary as a Hugging Face tokenizer.json object (BPE model, Split + ByteLevel pre-tokenizer,
 * ByteLevel decoder, a template that prepends BOS), written by the one tokenizer.json writer.
 */
export function toTokenizerJson(t: TrainedByteBpe): Record<string, unknown> {
  return tokenizerJsonFiles(trainedTables(t)).tokenizer;
}

/** A tokenizer_config.json object for the trained vocabulary (BOS/EOS texts, BOS added by default). */
export function toTokenizerConfig(t: TrainedByteBpe): Record<string, unknown> {
  return tokenizerJsonFiles(trainedTables(t)).config;
}

/**
 * The trained vocabulary as GGUF `tokenizer.ggml.*` metadata entries (the keys `tokenizerFromGguf` reads), to
 * put into a model file's metadata; written by the one GGUF tokenizer writer (`barbell convert`'s).
 */
export function toGgufTokenizerMetadata(t: TrainedByteBpe): [string, GgufValue][] {
  return ggufTokenizerMetadata(trainedTables(t), { vocabRows: t.tokens.length });
}
