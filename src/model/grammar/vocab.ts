/**
 * A tokenizer's vocabulary as bytes, sorted for the mask walker (XGrammar and llama.cpp both walk tokens in
 * byte order so tokens that share a prefix share its matching work).
 *
 * Token bytes come from the Tokenizer interface: `tokenText` with the vocabulary kind's byte rule, the same
 * rules the tokenizers' own decoders apply (byte-level: GPT-2's byte characters, `fromByteChars`; SentencePiece:
 * `<0xNN>` byte tokens and U+2581 for the space). Control tokens (`isSpecial`) have no text and are never
 * allowed by a grammar, except the stop tokens (EOS, end of turn) when the grammar is complete.
 * test/grammar/vocab.test.ts checks these bytes against `decode` for every token of real vocabularies.
 */
import { GrammarError } from "./errors.js";
import { MAX_TOKEN_BYTES } from "./limits.js";
import { fromByteChars } from "../tokenizer/pretokenize.js";
import type { Tokenizer } from "../tokenizer/types.js";

const SPM_BYTE = /^<0x([0-9A-Fa-f]{2})>$/;
const utf8 = new TextEncoder();

/** The vocabulary in byte order. */
export interface GrammarVocab {
  readonly size: number;
  /** Words of a mask bitset: ceil(size / 32). */
  readonly words: number;
  /** Token bytes, concatenated in sorted order. */
  readonly data: Uint8Array;
  /** Start of each sorted token in `data`; `offsets[count]` is the end. */
  readonly offsets: Int32Array;
  /** Token id of each sorted entry. */
  readonly ids: Int32Array;
  /** Common prefix length of each sorted entry with the one before it (0 for the first). */
  readonly lcp: Int32Array;
  /** Bytes of each token id (undefined for control tokens). */
  readonly bytes: readonly (Uint8Array | undefined)[];
  /** Tokens allowed only when the grammar is complete. */
  readonly stops: readonly number[];
}

/**
 * The bytes a token stands for, or undefined for a control token. Uses only the Tokenizer interface.
 *
 * @throws RangeError for an id outside the vocabulary (from `tokenText`).
 */
export function tokenBytes(tokenizer: Tokenizer, id: number): Uint8Array | undefined {
  const text = tokenizer.tokenText(id);
  if (tokenizer.isSpecial(id)) {
    return undefined;
  }
  if (tokenizer.kind === "byte-bpe") {
    return fromByteChars(text);
  }
  const m = SPM_BYTE.exec(text);
  if (m !== null) {
    return Uint8Array.of(parseInt(m[1] ?? "0", 16));
  }
  return utf8.encode(text.replaceAll("\u2581", " "));
}

const cache = new WeakMap<Tokenizer, GrammarVocab>();

/**
 * The sorted byte vocabulary of a tokenizer, built once per tokenizer object and shared by every grammar
 * compiled against it (~0.3 s for Llama-3's 128,256 tokens on the project VM: see docs/grammar.md).
 */
export function grammarVocab(tokenizer: Tokenizer): GrammarVocab {
  const known = cache.get(tokenizer);
  if (known !== undefined) {
    return known;
  }
  const size = tokenizer.vocabSize;
  const bytes: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(size);
  const order: number[] = [];
  let total = 0;
  for (let id = 0; id < size; id++) {
    const b = tokenBytes(tokenizer, id);
    if (b !== undefined && b.length > MAX_TOKEN_BYTES) {
      throw new GrammarError("limit", `[grammar] token ${id} is ${b.length} bytes, over MAX_TOKEN_BYTES (${MAX_TOKEN_BYTES})`);
    }
    bytes[id] = b;
    if (b !== undefined && b.length > 0) {
      order.push(id);
      total += b.length;
    }
  }
  // Byte order through latin-1 strings: the engine's string comparison is much faster than a byte comparator.
  const keys = new Array<string>(size);
  for (const id of order) {
    keys[id] = String.fromCharCode(...(bytes[id] as Uint8Array));
  }
  order.sort((x, y) => {
    const a = keys[x] as string;
    const b = keys[y] as string;
    return a < b ? -1 : a > b ? 1 : x - y;
  });
  const data = new Uint8Array(total);
  const offsets = new Int32Array(order.length + 1);
  const lcp = new Int32Array(order.length);
  let at = 0;
  let prev: Uint8Array | undefined;
  order.forEach((id, k) => {
    const b = bytes[id] as Uint8Array;
    data.set(b, at);
    offsets[k] = at;
    at += b.length;
    if (prev !== undefined) {
      let l = 0;
      const n = Math.min(prev.length, b.length);
      while (l < n && prev[l] === b[l]) {
        l++;
      }
      lcp[k] = l;
    }
    prev = b;
  });
  offsets[order.length] = at;
  const stops = [...new Set([tokenizer.eos, tokenizer.eot].filter((t): t is number => t !== undefined))];
  const vocab: GrammarVocab = { size, words: Math.ceil(size / 32), data, offsets, ids: Int32Array.from(order), lcp, bytes, stops };
  cache.set(tokenizer, vocab);
  return vocab;
}
