/**
 * `tokenizerFromGguf`: builds a tokenizer from llama.cpp's `tokenizer.ggml.*` metadata (docs/BITNET.md §3.3).
 *
 * barbell implements these algorithms itself instead of handing them to `@huggingface/tokenizers`: a GGUF carries
 * arrays, not a tokenizer.json, every GGUF must load without one, and llama.cpp's conventions (a missing
 * `tokenizer.ggml.pre`, score-ranked SentencePiece merges, control vs user-defined token types, decoding byte by
 * byte for streaming) are simplest to honour directly. The tests compare the ids with that library.
 */
import { FormatError } from "../../core/errors.js";
import type { GgufMetadata } from "../../formats/gguf/index.js";
import { allTokens, type TokenStrings, type VocabTables, type WithTokenStrings } from "./base.js";
import { ByteBpeTokenizer, type LazyByteBpeTables } from "./byte-bpe.js";
import type { ByteLevelPreTokenizer } from "./pretokenize.js";
import { SpmTokenizer, type SpmSource } from "./spm.js";
import { MAX_MERGES, MAX_TOKEN_LENGTH, MAX_VOCAB_SIZE, TokenType, type Tokenizer, type TokenizerTables } from "./types.js";

/** GGUF `tokenizer.ggml.model` values barbell supports. */
export const SUPPORTED_GGUF_TOKENIZER_MODELS = ["gpt2", "llama"] as const;

/** `tokenizer.ggml.pre` values that name the Llama-3 split (llama.cpp `LLAMA_VOCAB_PRE_TYPE_LLAMA3`). */
const LLAMA3_PRE = new Set(["llama-bpe", "llama3", "llama-v3"]);

/** `tokenizer.ggml.pre` values that name GPT-2's split. */
const GPT2_PRE = new Set(["gpt-2", "gpt2"]);

/** Architectures whose GGUF files carry the Llama-3 vocabulary but (officially) no `tokenizer.ggml.pre`. */
const LLAMA3_ARCHES = new Set(["bitnet-25", "bitnet-b1.58"]);

/** Texts recognised as end-of-turn when `tokenizer.ggml.eot_token_id` is absent (as llama.cpp does). */
export const EOT_TEXTS: readonly string[] = ["<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>"];

function bad(message: string): FormatError {
  return new FormatError("bad-value", `[tokenizer] ${message}`);
}

/**
 * Checks vocabulary size and token lengths; shared with the tokenizer.json loader. Of a lazy list only tokens of
 * more than MAX_TOKEN_LENGTH UTF-8 bytes are decoded (a string has no more UTF-16 units than UTF-8 bytes), and
 * none when its longest is within that.
 */
export function checkTokens(tokens: TokenStrings): void {
  if (tokens.length === 0) {
    throw bad("the vocabulary is empty");
  }
  if (tokens.length > MAX_VOCAB_SIZE) {
    throw new FormatError("limit", `[tokenizer] vocabulary of ${tokens.length} tokens exceeds ${MAX_VOCAB_SIZE}`);
  }
  if ("maxByteLength" in tokens && tokens.maxByteLength <= MAX_TOKEN_LENGTH) {
    return;
  }
  for (let id = 0; id < tokens.length; id++) {
    const long = "byteLength" in tokens ? tokens.byteLength(id) > MAX_TOKEN_LENGTH : (tokens[id]?.length ?? 0) > MAX_TOKEN_LENGTH;
    const t = long ? (tokens.at(id) ?? "") : "";
    if (t.length > MAX_TOKEN_LENGTH) {
      throw new FormatError(
        "limit",
        `[tokenizer] token ${id} is ${t.length} characters long (max ${MAX_TOKEN_LENGTH})`,
      );
    }
  }
}

/** Checks merge count and the `"left right"` form; shared with the tokenizer.json loader. */
export function checkMerges(merges: readonly string[]): void {
  if (merges.length > MAX_MERGES) {
    throw new FormatError("limit", `[tokenizer] ${merges.length} merges exceed ${MAX_MERGES}`);
  }
  merges.forEach((m, i) => {
    const sp = m.indexOf(" ");
    if (sp <= 0 || sp === m.length - 1 || m.indexOf(" ", sp + 1) >= 0 || m.length > 2 * MAX_TOKEN_LENGTH + 1) {
      throw bad(`merge ${i} ${JSON.stringify(m.slice(0, 40))} is not "left right"`);
    }
  });
}

/** First id whose text is one of `texts` (in the order given). */
export function findByText(tokens: TokenStrings, texts: readonly string[]): number | undefined {
  for (const t of texts) {
    const id = tokens.indexOf(t);
    if (id >= 0) {
      return id;
    }
  }
  return undefined;
}

/** True for the Llama-3 vocabulary, recognised by arch, size or its BOS text when `tokenizer.ggml.pre` is absent. */
export function looksLikeLlama3(tokens: TokenStrings, arch: string | undefined): boolean {
  return (
    (arch !== undefined && LLAMA3_ARCHES.has(arch)) || tokens.length === 128256 || tokens.indexOf("<|begin_of_text|>") >= 0
  );
}

function tokenId(meta: GgufMetadata, key: string, vocab: number): number | undefined {
  const v = meta.getNumber(key);
  // Some converters write -1 for "none".
  if (v === undefined || v === -1) {
    return undefined;
  }
  if (!Number.isInteger(v) || v < 0 || v >= vocab) {
    throw bad(`${key} = ${v} is outside the vocabulary [0, ${vocab})`);
  }
  return v;
}

function perToken(meta: GgufMetadata, key: string, vocab: number): ArrayLike<number> | undefined {
  const arr = meta.getNumbers(key);
  if (arr !== undefined && arr.length !== vocab) {
    throw bad(`${key} has ${arr.length} entries but tokenizer.ggml.tokens has ${vocab}`);
  }
  return arr;
}

/**
 * Builds the tokenizer a GGUF file describes. `arch` defaults to `general.architecture`.
 *
 * - `gpt2` → byte-level BPE. Pre-tokenizer: `llama-bpe`/`llama3`/`llama-v3` → the Llama-3 regex with
 *   `ignore_merges`; `gpt-2`/`gpt2` → GPT-2's regex. When `tokenizer.ggml.pre` is missing, `default`, or a value
 *   barbell does not know, the Llama-3 regex is used for Llama-3 vocabularies (arch `bitnet-25`/`bitnet-b1.58`,
 *   128,256 tokens, or a `<|begin_of_text|>` token — the official BitNet 2B-4T GGUF has no `pre`) and GPT-2's
 *   otherwise; `Tokenizer.preTokenizer` says which was chosen.
 * - `llama` → SentencePiece BPE ranked by `tokenizer.ggml.scores`, with `<0xNN>` byte fallback.
 *
 * Throws FormatError for a missing or unsupported model, missing tokens/scores/merges, per-token arrays whose
 * length differs from the token list, special ids outside the vocabulary, and sizes over `MAX_VOCAB_SIZE` or
 * `MAX_TOKEN_LENGTH`. A byte-level BPE's merges (~280k strings for Llama-3) are read and checked on its first
 * encode: malformed merges or more than `MAX_MERGES` throw the same FormatError there (and at every encode).
 */
export function tokenizerFromGguf(meta: GgufMetadata, arch?: string): Tokenizer {
  const t = ggufTables(meta, arch);
  return t.kind === "byte-bpe" ? new ByteBpeTokenizer(t.tables) : new SpmTokenizer(t.tables);
}

/** The tables `tokenizerFromGguf` builds its tokenizer from (for writing them elsewhere, e.g. as tokenizer.json). */
export function tokenizerTablesFromGguf(meta: GgufMetadata, arch?: string): TokenizerTables {
  const t = ggufTables(meta, arch);
  const tokens = allTokens(t.tables.tokens);
  if (t.kind === "byte-bpe") {
    return { kind: "byte-bpe", tables: { ...t.tables, tokens, merges: t.tables.merges() } };
  }
  const r = t.tables.ranking;
  return { kind: "spm", tables: { ...t.tables, tokens, ranking: r.kind === "scores" ? { kind: "scores", scores: Array.from(r.scores) } : r } };
}

/**
 * The merge list of a byte-level BPE GGUF, checked (count, "left right" form). The reader has checked its
 * bytes (lengths, UTF-8); its strings are made on the first read, so a tokenizer calls this on its first encode.
 */
function ggufMerges(meta: GgufMetadata): readonly string[] {
  const merges = meta.getStringArray("tokenizer.ggml.merges") ?? [];
  checkMerges(merges);
  return merges;
}

/** The tables of a GGUF tokenizer, a byte-level BPE's merges read and checked when first asked for. */
function ggufTables(
  meta: GgufMetadata,
  arch: string | undefined,
): { kind: "byte-bpe"; tables: WithTokenStrings<LazyByteBpeTables> } | { kind: "spm"; tables: SpmSource } {
  const model = meta.getString("tokenizer.ggml.model");
  if (model === undefined) {
    throw bad("the GGUF has no tokenizer.ggml.model");
  }
  if (!(SUPPORTED_GGUF_TOKENIZER_MODELS as readonly string[]).includes(model)) {
    const list = SUPPORTED_GGUF_TOKENIZER_MODELS.join(", ");
    throw bad(`tokenizer model '${model}' is not supported (supported: ${list})`);
  }
  // A lazy list for a large vocabulary: its strings are made on the first encode, not here.
  const tokens = meta.getStringList("tokenizer.ggml.tokens");
  if (tokens === undefined) {
    throw bad("the GGUF has no tokenizer.ggml.tokens");
  }
  checkTokens(tokens);
  const n = tokens.length;
  const typeArr = perToken(meta, "tokenizer.ggml.token_type", n);
  const types = new Uint8Array(n).fill(TokenType.normal);
  for (let id = 0; typeArr !== undefined && id < n; id++) {
    const t = typeArr[id] ?? 0;
    if (!Number.isInteger(t) || t < 0 || t > TokenType.byte) {
      throw bad(`tokenizer.ggml.token_type[${id}] = ${t} is not a token type (0–6)`);
    }
    types[id] = t;
  }
  const archName = arch ?? meta.getString("general.architecture");
  const bos = tokenId(meta, "tokenizer.ggml.bos_token_id", n);
  const tables: WithTokenStrings<VocabTables> = {
    tokens,
    types,
    bos,
    eos: tokenId(meta, "tokenizer.ggml.eos_token_id", n),
    eot: tokenId(meta, "tokenizer.ggml.eot_token_id", n) ?? findByText(tokens, EOT_TEXTS),
    addBos: false,
  };
  const addBos = meta.getBool("tokenizer.ggml.add_bos_token");
  if (model === "llama") {
    const scores = perToken(meta, "tokenizer.ggml.scores", n);
    if (scores === undefined) {
      throw bad("a 'llama' (SentencePiece) tokenizer needs tokenizer.ggml.scores");
    }
    const spacePrefix = (meta.getBool("tokenizer.ggml.add_space_prefix") ?? true) ? "always" : "never";
    const unk = tokenId(meta, "tokenizer.ggml.unknown_token_id", n) ?? findByText(tokens, ["<unk>"]);
    return { kind: "spm", tables: { ...tables, addBos: addBos ?? true, ranking: { kind: "scores", scores }, spacePrefix, unk } };
  }
  const mergesValue = meta.getArray("tokenizer.ggml.merges");
  if (mergesValue === undefined) {
    throw bad("a 'gpt2' (byte-level BPE) tokenizer needs tokenizer.ggml.merges");
  }
  if (mergesValue.itemType !== "string") {
    meta.getStringArray("tokenizer.ggml.merges"); // throws the type error (the items are not read)
  }
  const merges = (): readonly string[] => ggufMerges(meta);
  const pre = meta.getString("tokenizer.ggml.pre");
  const llama3 = looksLikeLlama3(tokens, archName);
  let preTokenizer: ByteLevelPreTokenizer;
  if (pre !== undefined && LLAMA3_PRE.has(pre)) {
    preTokenizer = "llama3";
  } else if (pre !== undefined && GPT2_PRE.has(pre)) {
    preTokenizer = "gpt2";
  } else {
    preTokenizer = llama3 ? "llama3" : "gpt2";
  }
  return {
    kind: "byte-bpe",
    tables: { ...tables, addBos: addBos ?? llama3, merges, preTokenizer, ignoreMerges: preTokenizer === "llama3" },
  };
}
