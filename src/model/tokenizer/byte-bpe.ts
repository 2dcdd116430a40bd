/**
 * Byte-level BPE (GPT-2, Llama-3): regex pre-tokenization, UTF-8 bytes written as printable characters, then
 * merges by rank within each word (docs/BITNET.md §4.3).
 */
import { FormatError } from "../../core/errors.js";
import { VocabTokenizer, type VocabTables, type WithTokenStrings } from "./base.js";
import { mergePieces } from "./merge.js";
import {
  BYTE_TO_CHAR,
  PRE_TOKENIZER_PATTERNS,
  fromByteChars,
  splitWords,
  toByteChars,
  type ByteLevelPreTokenizer,
} from "./pretokenize.js";
import { TokenType, WORD_CACHE_SIZE } from "./types.js";

/** Everything a byte-level BPE tokenizer is built from. */
export interface ByteBpeTables extends VocabTables {
  /** Merges as `"left right"` strings; the index is the rank (lower merges first). */
  readonly merges: readonly string[];
  readonly preTokenizer: ByteLevelPreTokenizer;
  /** Emit a word whole when it is itself a token, before merging (Llama-3). */
  readonly ignoreMerges: boolean;
}

/** As ByteBpeTables, with the merges read (and checked) on the first encode that needs them. */
export interface LazyByteBpeTables extends Omit<ByteBpeTables, "merges"> {
  /** The merges; it throws what a bad merge list is (FormatError), at each call until it succeeds. */
  readonly merges: () => readonly string[];
}

const utf8 = new TextEncoder();

/** Byte-level BPE tokenizer; see `tokenizerFromGguf` / `tokenizerFromJson` to build one. */
export class ByteBpeTokenizer extends VocabTokenizer {
  readonly kind = "byte-bpe" as const;
  readonly preTokenizer: string;
  readonly #pattern: RegExp;
  readonly #merges: readonly string[] | (() => readonly string[]);
  /** Merge → rank, built on the first encode (280k merges of a Llama-3 vocabulary cost ~0.3 s at load). */
  #ranks: Map<string, number> | undefined;
  readonly #ignoreMerges: boolean;
  // Natural text repeats words constantly, so caching per word skips most merge loops.
  readonly #cache = new Map<string, number[]>();
  readonly #byteIds: Int32Array;

  /** Throws FormatError `bad-value` when one of the 256 byte characters is not a token. */
  constructor(tables: ByteBpeTables | WithTokenStrings<LazyByteBpeTables>) {
    super(tables);
    this.preTokenizer = tables.preTokenizer;
    this.#pattern = new RegExp(PRE_TOKENIZER_PATTERNS[tables.preTokenizer], "gu");
    this.#ignoreMerges = tables.ignoreMerges;
    this.#merges = tables.merges;
    this.#byteIds = new Int32Array(256);
    // The one-character tokens (lowest id first), without the whole vocabulary's map. The byte characters
    // (U+0021–U+0143) take 1 or 2 UTF-8 bytes: of a lazy list only tokens that short are decoded.
    const single = new Map<string, number>();
    const tokens = tables.tokens;
    for (let id = 0; id < tokens.length; id++) {
      const t = "byteLength" in tokens ? (tokens.byteLength(id) <= 2 ? tokens.at(id) : undefined) : tokens[id];
      if (t !== undefined && t.length === 1 && !single.has(t)) {
        single.set(t, id);
      }
    }
    BYTE_TO_CHAR.forEach((c, b) => {
      const id = single.get(c);
      if (id === undefined) {
        const hex = b.toString(16).padStart(2, "0");
        throw new FormatError("bad-value", `[tokenizer] byte-level vocabulary has no token for byte 0x${hex} ("${c}")`);
      }
      this.#byteIds[b] = id;
    });
  }

  #rankTable(): Map<string, number> {
    if (this.#ranks === undefined) {
      const ranks = new Map<string, number>();
      const merges = this.#merges;
      (typeof merges === "function" ? merges() : merges).forEach((m, rank) => {
        if (!ranks.has(m)) {
          ranks.set(m, rank);
        }
      });
      this.#ranks = ranks;
    }
    return this.#ranks;
  }

  protected encodeSegment(segment: string, _start: number, out: number[]): void {
    for (const word of splitWords(segment, this.#pattern)) {
      let ids = this.#cache.get(word);
      if (ids === undefined) {
        ids = this.#encodeWord(word);
        if (this.#cache.size >= WORD_CACHE_SIZE) {
          this.#cache.clear();
        }
        this.#cache.set(word, ids);
      }
      for (const id of ids) {
        out.push(id);
      }
    }
  }

  #encodeWord(word: string): number[] {
    const chars = toByteChars(word);
    const whole = this.ids.get(chars);
    if (this.#ignoreMerges && whole !== undefined) {
      return [whole];
    }
    const ranks = this.#rankTable();
    const pieces = mergePieces(chars.split(""), (l, r) => ranks.get(l + " " + r));
    const out: number[] = [];
    for (const p of pieces) {
      const id = this.ids.get(p);
      if (id !== undefined) {
        out.push(id);
      } else {
        // A merge whose result is not a token (inconsistent vocabulary): fall back to the piece's bytes.
        for (const b of fromByteChars(p)) {
          out.push(this.#byteIds[b] ?? 0);
        }
      }
    }
    return out;
  }

  protected computeBytes(id: number): Uint8Array {
    const text = this.tokenAt(id);
    const type = this.types[id] ?? TokenType.normal;
    const raw = type === TokenType.control || type === TokenType.userDefined || type === TokenType.unknown;
    return raw ? utf8.encode(text) : fromByteChars(text);
  }
}
