/**
 * What every vocabulary-backed tokenizer shares: special-token splitting, BOS handling, byte-exact decoding and
 * the streaming decoder. Subclasses supply how a plain-text segment becomes ids and what bytes an id stands for.
 */
import type {
  DecodeOptions,
  EncodeOptions,
  StreamDecoder,
  Tokenizer,
  TokenizerModelKind,
} from "./types.js";
import { TokenType } from "./types.js";

/** The vocabulary facts both tokenizer kinds need; built by the GGUF and tokenizer.json loaders. */
export interface VocabTables {
  /** Token strings by id. */
  readonly tokens: readonly string[];
  /** GGUF token type by id (`TokenType`). */
  readonly types: Uint8Array;
  readonly bos: number | undefined;
  readonly eos: number | undefined;
  readonly eot: number | undefined;
  readonly addBos: boolean;
}

/**
 * Token strings by id as a loader may hold them: an array, or a list that decodes one string at a time and makes
 * the whole array only when asked for `items` (a GGUF's vocabulary: no 32k–128k strings made at load).
 */
export type TokenStrings = readonly string[] | LazyTokenStrings;

/** A vocabulary read one string at a time (formats/gguf's `GgufStringList`). */
export interface LazyTokenStrings {
  readonly length: number;
  /** String `id` alone (undefined outside the list). */
  at(id: number): string | undefined;
  /** First id of `text`, or −1 (no strings made). */
  indexOf(text: string): number;
  /** UTF-8 bytes of string `id`. */
  byteLength(id: number): number;
  /** The longest string's UTF-8 bytes. */
  readonly maxByteLength: number;
  /** Every string, made on the first read. */
  readonly items: readonly string[];
}

/** Every string of `tokens` as an array (a lazy list's made now). */
export function allTokens(tokens: TokenStrings): readonly string[] {
  return "items" in tokens ? tokens.items : tokens;
}

/** `VocabTables` (or a subtype) with its token strings possibly lazy, as the tokenizers take them. */
export type WithTokenStrings<T extends VocabTables> = Omit<T, "tokens"> & { readonly tokens: TokenStrings };

/** Above this many texts to read one by one, a lazy vocabulary is decoded whole (one call) instead. */
const ONE_BY_ONE_TEXTS = 1024;

/**
 * The ids whose type is one of `wanted`, ascending: by the typed array's native search while hits are few (a real
 * vocabulary's special tokens), by a plain loop past ONE_BY_ONE_TEXTS hits; the lists per type merged.
 */
export function idsOfTypes(types: Uint8Array, wanted: readonly number[]): number[] {
  let ids: number[] = [];
  for (const t of wanted) {
    const found: number[] = [];
    let id = types.indexOf(t);
    for (; id >= 0 && found.length < ONE_BY_ONE_TEXTS; id = types.indexOf(t, id + 1)) {
      found.push(id);
    }
    for (; id >= 0 && id < types.length; id++) {
      if (types[id] === t) {
        found.push(id);
      }
    }
    ids = ids.length === 0 ? found : mergeAscending(ids, found);
  }
  return ids;
}

/** Two ascending lists as one. */
function mergeAscending(a: readonly number[], b: readonly number[]): number[] {
  const out = new Array<number>(a.length + b.length);
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < a.length && j < b.length) {
    const x = a[i] ?? 0;
    const y = b[j] ?? 0;
    if (x < y) {
      out[k++] = x;
      i++;
    } else {
      out[k++] = y;
      j++;
    }
  }
  while (i < a.length) {
    out[k++] = a[i++] ?? 0;
  }
  while (j < b.length) {
    out[k++] = b[j++] ?? 0;
  }
  return out;
}

/** Control-like types: split out of prompts only when special parsing is on, skippable when decoding. */
function isControlType(t: number): boolean {
  return t === TokenType.control || t === TokenType.unknown;
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

/** One alternation of the given texts, longest first so that the leftmost match is also the longest. */
function alternation(texts: string[]): RegExp | undefined {
  if (texts.length === 0) {
    return undefined;
  }
  const sorted = [...new Set(texts)].sort((a, b) => b.length - a.length || (a < b ? -1 : 1));
  return new RegExp(sorted.map(escapeRegex).join("|"), "gu");
}

// ignoreBOM keeps a leading U+FEFF: it is text the model produced, not a byte-order mark.
const utf8Decoder = new TextDecoder("utf-8", { ignoreBOM: true });

/** Base class of the byte-level BPE and SentencePiece tokenizers. */
export abstract class VocabTokenizer implements Tokenizer {
  abstract readonly kind: TokenizerModelKind;
  abstract readonly preTokenizer: string;
  readonly vocabSize: number;
  readonly bos: number | undefined;
  readonly eos: number | undefined;
  readonly eot: number | undefined;
  readonly addBosDefault: boolean;
  readonly #tokens: TokenStrings;
  protected readonly types: Uint8Array;
  #ids: Map<string, number> | undefined;
  /**
   * Special texts (control, unknown, user-defined) → id, and the regexes that split them out of a text (all of
   * them, or the user-defined ones only); made on the first encode (decode needs none of it).
   */
  #special: { ids: Map<string, number>; all: RegExp | undefined; user: RegExp | undefined } | undefined;
  readonly #bytes: (Uint8Array | undefined)[];

  protected constructor(tables: WithTokenStrings<VocabTables>) {
    this.#tokens = tables.tokens;
    this.types = tables.types;
    this.vocabSize = tables.tokens.length;
    this.bos = tables.bos;
    this.eos = tables.eos;
    this.eot = tables.eot;
    this.addBosDefault = tables.addBos && tables.bos !== undefined;
    this.#bytes = new Array<Uint8Array | undefined>(this.vocabSize);
  }

  /** Token strings by id (a GGUF's made on the first call: an encode, a decode or a token's text). */
  protected get tokens(): readonly string[] {
    return allTokens(this.#tokens);
  }

  /** The special texts' ids and regexes, made on first use. */
  #specials(): { ids: Map<string, number>; all: RegExp | undefined; user: RegExp | undefined } {
    if (this.#special === undefined) {
      const ids = new Map<string, number>();
      const all: string[] = [];
      const user: string[] = [];
      // By type first (native scans of the types): only the control / unknown / user-defined tokens are looked at
      // as text (a lazy list decodes only them, or all at once when they are many), in id order so that the lowest
      // id of a text wins.
      const special = idsOfTypes(this.types, [TokenType.control, TokenType.unknown, TokenType.userDefined]);
      const source = special.length > ONE_BY_ONE_TEXTS ? this.tokens : this.#tokens;
      for (const id of special) {
        const text = source.at(id) ?? "";
        if (text.length > 0) {
          if (!ids.has(text)) {
            ids.set(text, id);
          }
          all.push(text);
          if (this.types[id] === TokenType.userDefined) {
            user.push(text);
          }
        }
      }
      this.#special = { ids, all: alternation(all), user: alternation(user) };
    }
    return this.#special;
  }

  /** Token `id`'s string ("" outside the vocabulary); one decoded alone while the whole list is not made. */
  protected tokenAt(id: number): string {
    return this.#tokens.at(id) ?? "";
  }

  /**
   * Token string → id; on duplicate strings the lowest id wins. Built on first use (an encode): hashing a
   * 128k-token vocabulary is a good part of a tokenizer's load time and decoding never needs it.
   */
  protected get ids(): Map<string, number> {
    if (this.#ids === undefined) {
      const ids = new Map<string, number>();
      this.tokens.forEach((text, id) => {
        if (!ids.has(text)) {
          ids.set(text, id);
        }
      });
      this.#ids = ids;
    }
    return this.#ids;
  }

  /** Appends the ids of a text segment that holds no special tokens; `start` is its offset in the input. */
  protected abstract encodeSegment(segment: string, start: number, out: number[]): void;

  /** The bytes a token stands for in decoded output. */
  protected abstract computeBytes(id: number): Uint8Array;

  /** Final touch on fully decoded text (SentencePiece drops its dummy-prefix space here). */
  protected finishDecoded(text: string): string {
    return text;
  }

  encode(text: string, options: EncodeOptions = {}): Int32Array {
    const out: number[] = [];
    const special = this.#specials();
    const split = options.parseSpecial === false ? special.user : special.all;
    let at = 0;
    if (split !== undefined) {
      split.lastIndex = 0;
      for (const m of text.matchAll(split)) {
        if (m.index > at) {
          this.encodeSegment(text.slice(at, m.index), at, out);
        }
        const id = special.ids.get(m[0]);
        if (id !== undefined) {
          out.push(id);
        }
        at = m.index + m[0].length;
      }
    }
    if (at < text.length) {
      this.encodeSegment(text.slice(at), at, out);
    }
    const addBos = options.addBos ?? this.addBosDefault;
    if (addBos && this.bos !== undefined && out[0] !== this.bos) {
      out.unshift(this.bos);
    }
    return Int32Array.from(out);
  }

  #check(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new RangeError(`[tokenizer] token id ${id} is outside the vocabulary [0, ${this.vocabSize})`);
    }
  }

  isSpecial(id: number): boolean {
    return Number.isInteger(id) && id >= 0 && id < this.vocabSize && isControlType(this.types[id] ?? 0);
  }

  tokenText(id: number): string {
    this.#check(id);
    return this.tokenAt(id);
  }

  /** Cached bytes of a token (empty when skipped), checking the id. */
  #tokenBytes(id: number, skipSpecial: boolean): Uint8Array {
    this.#check(id);
    if (skipSpecial && this.isSpecial(id)) {
      return new Uint8Array(0);
    }
    let b = this.#bytes[id];
    if (b === undefined) {
      b = this.computeBytes(id);
      this.#bytes[id] = b;
    }
    return b;
  }

  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    const skip = options.skipSpecial ?? false;
    const parts: Uint8Array[] = [];
    let total = 0;
    for (let i = 0; i < ids.length; i++) {
      const b = this.#tokenBytes(ids[i] ?? -1, skip);
      parts.push(b);
      total += b.length;
    }
    const all = new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      all.set(p, at);
      at += p.length;
    }
    return this.finishDecoded(utf8Decoder.decode(all));
  }

  createStreamDecoder(options: DecodeOptions = {}): StreamDecoder {
    const skip = options.skipSpecial ?? false;
    // TextDecoder's stream mode holds back exactly the bytes of an unfinished UTF-8 sequence.
    let decoder = new TextDecoder("utf-8", { ignoreBOM: true });
    return {
      push: (id: number): string => decoder.decode(this.#tokenBytes(id, skip), { stream: true }),
      flush: (): string => {
        const rest = decoder.decode();
        decoder = new TextDecoder("utf-8", { ignoreBOM: true });
        return rest;
      },
    };
  }
}
