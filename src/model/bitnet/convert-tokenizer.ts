/**
 * A Hugging Face tokenizer (tokenizer.json + tokenizer_config.json) as llama.cpp's `tokenizer.ggml.*` GGUF metadata:
 * the inverse of `tokenizerFromGguf`, so that the GGUF's tokenizer encodes what the JSON one encodes.
 *
 * - Byte-level BPE (Llama-3, GPT-2) → `tokenizer.ggml.model = "gpt2"` with `pre` (`llama-bpe` or `gpt-2`), tokens,
 *   token types and merges, as llama.cpp's `convert_hf_to_gguf.py` writes them (no scores for BPE).
 * - SentencePiece-style BPE (Llama-2, 1bitLLM) → `"llama"` with per-token scores. tokenizer.json ranks merges, a
 *   GGUF ranks the merged token by score, so a token's score is minus the rank of the first merge that makes it
 *   (merges that make the same token are adjacent in HF's list, so the order of every merge is kept); multi-character
 *   tokens no merge makes rank after all merges.
 *
 * Token ids the JSON leaves out, and rows of an embedding larger than the vocabulary, become `[PAD<id>]` tokens of
 * type unused, as llama.cpp's converter pads them: llama.cpp requires one token per embedding row.
 */
import { gv, type GgufValue } from "../../formats/gguf/index.js";
import type { TokenizerTables } from "../tokenizer/types.js";
import { TokenType } from "../tokenizer/types.js";
import { ConvertError } from "./convert-error.js";

/** Score of a token no merge makes: after every merge's token (scores are negated ranks). */
function unmergedScore(merges: number): number {
  return -(merges + 1);
}

/** SentencePiece scores from a merge list: −(rank of the first merge making the token); 0 for single pieces. */
function scoresFromMerges(tokens: readonly string[], types: Uint8Array, merges: readonly string[]): number[] {
  const firstRank = new Map<string, number>();
  merges.forEach((m, rank) => {
    const text = m.replace(" ", "");
    if (!firstRank.has(text)) {
      firstRank.set(text, rank);
    }
  });
  return tokens.map((t, id) => {
    if (types[id] !== TokenType.normal && types[id] !== TokenType.userDefined) {
      return 0;
    }
    const rank = firstRank.get(t);
    if (rank !== undefined) {
      return -rank;
    }
    return Array.from(t).length > 1 ? unmergedScore(merges.length) : 0;
  });
}

/** `[PAD<id>]` for ids the JSON leaves out (empty unused tokens) and for embedding rows past the vocabulary. */
function padded(tables: TokenizerTables["tables"], rows: number): { tokens: string[]; types: number[] } {
  const tokens = tables.tokens.map((t, id) => (t === "" && tables.types[id] === TokenType.unused ? `[PAD${id}]` : t));
  const types = Array.from(tables.types);
  for (let id = tokens.length; id < rows; id++) {
    tokens.push(`[PAD${id}]`);
    types.push(TokenType.unused);
  }
  return { tokens, types };
}

/** Options of `ggufTokenizerMetadata`. */
export interface GgufTokenizerOptions {
  /** Rows of the embedding: the token list is padded to this many. */
  readonly vocabRows: number;
  /** tokenizer_config.json `add_eos_token`, when it says. */
  readonly addEos?: boolean;
  /** The chat template to store as `tokenizer.chat_template`. */
  readonly chatTemplate?: string;
}

/**
 * The `tokenizer.*` metadata entries for a tokenizer read from tokenizer.json (`tokenizerTablesFromJson`).
 * Throws ConvertError `tokenizer` when the vocabulary has more tokens than the embedding has rows.
 */
export function ggufTokenizerMetadata(t: TokenizerTables, options: GgufTokenizerOptions): [string, GgufValue][] {
  const tables = t.tables;
  if (tables.tokens.length > options.vocabRows) {
    throw new ConvertError(
      "tokenizer",
      `[convert] the tokenizer has ${tables.tokens.length} tokens but the embedding only ${options.vocabRows} rows`,
    );
  }
  const { tokens, types } = padded(tables, options.vocabRows);
  const entries: [string, GgufValue][] = [];
  if (t.kind === "byte-bpe") {
    entries.push(
      ["tokenizer.ggml.model", gv.string("gpt2")],
      ["tokenizer.ggml.pre", gv.string(t.tables.preTokenizer === "llama3" ? "llama-bpe" : "gpt-2")],
      ["tokenizer.ggml.tokens", gv.array("string", tokens)],
      ["tokenizer.ggml.token_type", gv.array("i32", types)],
      ["tokenizer.ggml.merges", gv.array("string", [...t.tables.merges])],
    );
  } else {
    const ranking = t.tables.ranking;
    const scores =
      ranking.kind === "scores"
        ? [...ranking.scores]
        : scoresFromMerges(t.tables.tokens, t.tables.types, ranking.merges);
    while (scores.length < tokens.length) {
      scores.push(0);
    }
    entries.push(
      ["tokenizer.ggml.model", gv.string("llama")],
      ["tokenizer.ggml.tokens", gv.array("string", tokens)],
      ["tokenizer.ggml.scores", gv.array("f32", scores)],
      ["tokenizer.ggml.token_type", gv.array("i32", types)],
    );
  }
  const id = (key: string, v: number | undefined): void => {
    if (v !== undefined) {
      entries.push([`tokenizer.ggml.${key}`, gv.u32(v)]);
    }
  };
  id("bos_token_id", tables.bos);
  id("eos_token_id", tables.eos);
  id("eot_token_id", tables.eot);
  if (t.kind === "spm") {
    id("unknown_token_id", t.tables.unk);
    // llama.cpp has one switch for the "▁" dummy prefix; "first" (prefix only at the start) maps to on.
    entries.push(["tokenizer.ggml.add_space_prefix", gv.bool(t.tables.spacePrefix !== "never")]);
  }
  entries.push(["tokenizer.ggml.add_bos_token", gv.bool(tables.addBos)]);
  if (options.addEos !== undefined) {
    entries.push(["tokenizer.ggml.add_eos_token", gv.bool(options.addEos)]);
  }
  if (options.chatTemplate !== undefined) {
    entries.push(["tokenizer.chat_template", gv.string(options.chatTemplate)]);
  }
  return entries;
}
