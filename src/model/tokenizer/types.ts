/**
 * The `Tokenizer` interface shared by every vocabulary kind, its options, and the limits that bound what a
 * vocabulary from a file may declare.
 */

import type { ByteBpeTables } from "./byte-bpe.js";
import type { SpmTables } from "./spm.js";

/**
 * The tables a tokenizer is built from, whichever file they came from (GGUF metadata or tokenizer.json): one
 * form, so each source can be written as the other (`barbell convert`, `barbell export --hf`).
 */
export type TokenizerTables =
  | { readonly kind: "byte-bpe"; readonly tables: ByteBpeTables }
  | { readonly kind: "spm"; readonly tables: SpmTables };

/** Options of `Tokenizer.encode`. */
export interface EncodeOptions {
  /**
   * Prepend the BOS token. Defaults to the vocabulary's own setting (`tokenizer.ggml.add_bos_token`,
   * `add_bos_token` in tokenizer_config.json). Never adds a second BOS when the text already starts with one.
   */
  readonly addBos?: boolean;
  /**
   * Recognise control tokens (`<|eot_id|>`, `<s>`…) written in the text and emit their ids (default true, as
   * prompts built from chat templates need). When false they are tokenized as plain text. User-defined tokens
   * (GGUF token type 4, non-special added tokens) are always recognised, as in llama.cpp and Hugging Face.
   */
  readonly parseSpecial?: boolean;
}

/** Options of `Tokenizer.decode` and `Tokenizer.createStreamDecoder`. */
export interface DecodeOptions {
  /** Drop special (control) tokens instead of writing their text. Default false. */
  readonly skipSpecial?: boolean;
}

/**
 * Incremental detokenizer for generated tokens. Text is returned as soon as it is complete; it never returns a
 * partial UTF-8 character: bytes of an incomplete sequence wait for the next token.
 */
export interface StreamDecoder {
  /** Adds one token and returns the text completed by it (often ""); RangeError for an id outside the vocab. */
  push(id: number): string;
  /** Returns what is still held back (bad or unfinished UTF-8 comes out as U+FFFD) and resets the decoder. */
  flush(): string;
}

/** Which algorithm a tokenizer runs. */
export type TokenizerModelKind =
  /** Byte-level BPE (GPT-2, Llama-3; GGUF `tokenizer.ggml.model = "gpt2"`). */
  | "byte-bpe"
  /** SentencePiece-style BPE with byte fallback (Llama-2; GGUF `tokenizer.ggml.model = "llama"`). */
  | "spm";

/** A text ↔ token-id codec. Ids are indices into the model's embedding table. */
export interface Tokenizer {
  /** The algorithm in use. */
  readonly kind: TokenizerModelKind;
  /** Name of the pre-tokenizer split in use (`llama3`, `gpt2`, or `none` for SentencePiece). */
  readonly preTokenizer: string;
  /** Number of ids (the embedding table must have at least this many rows). */
  readonly vocabSize: number;
  /** Beginning-of-sequence id, if the vocabulary declares one. */
  readonly bos: number | undefined;
  /** End-of-sequence id, if declared. */
  readonly eos: number | undefined;
  /** End-of-turn id (`<|eot_id|>` and the like), if declared or recognisable by its text. */
  readonly eot: number | undefined;
  /** Whether `encode` adds BOS when `addBos` is not given. */
  readonly addBosDefault: boolean;
  /**
   * Text → ids. Strings are encoded as UTF-8, so a lone surrogate becomes U+FFFD (as with TextEncoder); every
   * other string round-trips through `decode` on byte-level vocabularies, and on SentencePiece ones unless it
   * contains U+2581, which SentencePiece reserves for the space.
   */
  encode(text: string, options?: EncodeOptions): Int32Array;
  /**
   * Ids → text. Byte sequences that are not valid UTF-8 decode to U+FFFD. SentencePiece vocabularies drop the
   * single space that encoding prepended (the dummy prefix) at the start of the output. RangeError for an id
   * outside the vocabulary (a model whose embedding has padding rows can sample such ids).
   */
  decode(ids: ArrayLike<number>, options?: DecodeOptions): string;
  /** True for control tokens (BOS, EOS, chat markers, reserved tokens); `decode` can skip these. */
  isSpecial(id: number): boolean;
  /** The vocabulary entry as stored (`Ġthe`, `▁the`, `<0x0A>`, `<|eot_id|>`); RangeError outside the vocab. */
  tokenText(id: number): string;
  /**
   * A fresh incremental decoder. Unlike `decode`, it keeps a SentencePiece token's leading space, because
   * streamed tokens continue a prompt.
   */
  createStreamDecoder(options?: DecodeOptions): StreamDecoder;
}

/** GGUF token types (gguf.md); JSON added tokens map to control (special) or user-defined (not special). */
export const TokenType = {
  normal: 1,
  unknown: 2,
  control: 3,
  userDefined: 4,
  unused: 5,
  byte: 6,
} as const;

/** Largest vocabulary accepted from a file (real ones reach ~260k) — bounds the tables built per token. */
export const MAX_VOCAB_SIZE = 1 << 21;

/** Largest merge list accepted (Llama-3 has 280,147) — bounds the merge-rank map. */
export const MAX_MERGES = 1 << 22;

/** Longest token string in UTF-16 units (real vocabularies stay under 300) — bounds special-token matching. */
export const MAX_TOKEN_LENGTH = 1024;

/** Pre-token words whose merge results are cached; the cache is cleared when full, bounding memory. */
export const WORD_CACHE_SIZE = 1 << 15;
