/**
 * `tokenizerJsonFiles`: the Hugging Face tokenizer.json and tokenizer_config.json objects for tokenizer tables
 * (from a GGUF file or a tokenizer.json), the inverse of `tokenizerTablesFromJson`: reading the written objects
 * back gives the same tokenizer (test/tokenizer/hf-json-write.test.ts checks ids on mixed-script text, and
 * `@huggingface/tokenizers` as the outside oracle).
 *
 * The shapes are the ones Hugging Face's own files use: Llama-3 (a `Split` with its regex, then a regex-free
 * `ByteLevel`, `ignore_merges`), GPT-2 (a `ByteLevel` with its built-in regex) and Llama-2 SentencePiece BPE
 * (the legacy `Prepend`/`Replace` normalizer, `byte_fallback`, a `Fuse`/`ByteFallback` decoder).
 */
import { FormatError } from "../../core/errors.js";
import type { VocabTables } from "./base.js";
import { LLAMA3_ONIGURUMA_PATTERN } from "./pretokenize.js";
import type { SpmTables } from "./spm.js";
import { TokenType, type TokenizerTables } from "./types.js";

/** What `tokenizerJsonFiles` returns: the two objects to write with JSON.stringify. */
export interface TokenizerJsonFiles {
  readonly tokenizer: Record<string, unknown>;
  readonly config: Record<string, unknown>;
}

function bad(message: string): FormatError {
  return new FormatError("bad-value", `[tokenizer.json] ${message}`);
}

/**
 * Vocabulary and added tokens: control tokens become special added tokens, user-defined ones non-special added
 * tokens, every other token a `model.vocab` entry (special ones too when `specialInVocab`). Unused tokens with no text are left out (the reader turns a
 * skipped id back into an unused token). FormatError `bad-value` when two ids share a text (a JSON vocabulary
 * cannot hold both).
 */
function vocabulary(t: VocabTables, specialInVocab: boolean): { vocab: Record<string, number>; added: Record<string, unknown>[] } {
  const vocab: Record<string, number> = Object.create(null) as Record<string, number>;
  const added: Record<string, unknown>[] = [];
  const seen = new Map<string, number>();
  t.tokens.forEach((text, id) => {
    const type = t.types[id] ?? TokenType.normal;
    if (text === "" && type === TokenType.unused) {
      return;
    }
    const had = seen.get(text);
    if (had !== undefined) {
      throw bad(`ids ${had} and ${id} are both ${JSON.stringify(text.slice(0, 40))}; a tokenizer.json cannot hold both`);
    }
    seen.set(text, id);
    if (type === TokenType.control || type === TokenType.unknown || type === TokenType.userDefined) {
      const special = type !== TokenType.userDefined;
      added.push({ id, content: text, single_word: false, lstrip: false, rstrip: false, normalized: !special, special });
      if (special && !specialInVocab) {
        return; // Llama-3's layout: special added tokens are not in model.vocab (Llama-2's has them in both)
      }
    }
    vocab[text] = id;
  });
  return { vocab, added };
}

/**
 * A merge list for SentencePiece tables ranked by scores (a GGUF `llama` tokenizer): every split of a vocabulary
 * token into two vocabulary tokens, ordered by the merged token's score, highest first (the order the score
 * ranking applies them in; ties keep id order). Byte, control and unused tokens take part in no merge.
 */
export function mergesFromScores(t: SpmTables, scores: readonly number[]): string[] {
  const mergeable = (id: number | undefined): boolean => {
    const type = id === undefined ? undefined : t.types[id];
    return type === TokenType.normal || type === TokenType.userDefined;
  };
  const ids = new Map<string, number>();
  t.tokens.forEach((text, id) => {
    if (mergeable(id)) {
      ids.set(text, id);
    }
  });
  const found: { left: string; right: string; score: number; id: number }[] = [];
  t.tokens.forEach((text, id) => {
    if (!mergeable(id)) {
      return;
    }
    const chars = Array.from(text);
    let at = 0;
    for (let i = 1; i < chars.length; i++) {
      at += (chars[i - 1] ?? "").length;
      const left = text.slice(0, at);
      const right = text.slice(at);
      if (ids.has(left) && ids.has(right)) {
        found.push({ left, right, score: scores[id] ?? 0, id });
      }
    }
  });
  found.sort((a, b) => b.score - a.score || a.id - b.id);
  return found.map((m) => `${m.left} ${m.right}`);
}

function tokenConfig(t: VocabTables, extra: Record<string, unknown>, chatTemplate: string | undefined): Record<string, unknown> {
  const text = (id: number | undefined): string | null => (id === undefined ? null : (t.tokens[id] ?? null));
  return {
    add_bos_token: t.addBos,
    add_eos_token: false,
    bos_token: text(t.bos),
    eos_token: text(t.eos),
    ...extra,
    clean_up_tokenization_spaces: false,
    tokenizer_class: "PreTrainedTokenizerFast",
    ...(chatTemplate === undefined ? {} : { chat_template: chatTemplate }),
  };
}

/** A `TemplateProcessing` post-processor that puts BOS first (how Llama-3 and Llama-2 files say add_bos). */
function bosProcessor(t: VocabTables): Record<string, unknown> | null {
  const bos = t.bos === undefined ? undefined : t.tokens[t.bos];
  if (!t.addBos || bos === undefined || t.bos === undefined) {
    return null;
  }
  const seq = (id: "A" | "B"): Record<string, unknown> => ({ Sequence: { id, type_id: 0 } });
  const special = { SpecialToken: { id: bos, type_id: 0 } };
  return {
    type: "TemplateProcessing",
    single: [special, seq("A")],
    pair: [special, seq("A"), special, seq("B")],
    special_tokens: { [bos]: { id: bos, ids: [t.bos], tokens: [bos] } },
  };
}

/**
 * tokenizer.json and tokenizer_config.json for `tables`, with `chatTemplate` in the config when given.
 * FormatError `bad-value` for tables a tokenizer.json cannot express (two ids with one text).
 */
export function tokenizerJsonFiles(tables: TokenizerTables, chatTemplate?: string): TokenizerJsonFiles {
  const t = tables.tables;
  const { vocab, added } = vocabulary(t, tables.kind === "spm");
  const common = { version: "1.0", truncation: null, padding: null, added_tokens: added };
  if (tables.kind === "byte-bpe") {
    const b = tables.tables;
    const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true };
    // GPT-2's files use ByteLevel's built-in regex (GPT2_ONIGURUMA_PATTERN); Llama-3's split first, then map bytes.
    const preTokenizer =
      b.preTokenizer === "llama3"
        ? {
            type: "Sequence",
            pretokenizers: [
              { type: "Split", pattern: { Regex: LLAMA3_ONIGURUMA_PATTERN }, behavior: "Isolated", invert: false },
              { ...byteLevel, use_regex: false },
            ],
          }
        : { ...byteLevel, use_regex: true };
    return {
      tokenizer: {
        ...common,
        normalizer: null,
        pre_tokenizer: preTokenizer,
        post_processor: bosProcessor(t) ?? { ...byteLevel, use_regex: true },
        decoder: { ...byteLevel, use_regex: true },
        model: {
          type: "BPE",
          dropout: null,
          unk_token: null,
          continuing_subword_prefix: null,
          end_of_word_suffix: null,
          fuse_unk: false,
          byte_fallback: false,
          ignore_merges: b.ignoreMerges,
          vocab,
          merges: b.merges,
        },
      },
      config: tokenConfig(t, {}, chatTemplate),
    };
  }
  const s = tables.tables;
  if (s.spacePrefix === "first") {
    throw bad("a SentencePiece prefix on the first word only has no legacy normalizer form");
  }
  const merges = s.ranking.kind === "merges" ? [...s.ranking.merges] : mergesFromScores(s, s.ranking.scores);
  const replace = { type: "Replace", pattern: { String: " " }, content: "\u2581" };
  const normalizers = s.spacePrefix === "always" ? [{ type: "Prepend", prepend: "\u2581" }, replace] : [replace];
  const unk = s.unk === undefined ? null : (s.tokens[s.unk] ?? null);
  return {
    tokenizer: {
      ...common,
      normalizer: { type: "Sequence", normalizers },
      pre_tokenizer: null,
      post_processor: bosProcessor(t),
      decoder: {
        type: "Sequence",
        decoders: [
          { type: "Replace", pattern: { String: "\u2581" }, content: " " },
          { type: "ByteFallback" },
          { type: "Fuse" },
          ...(s.spacePrefix === "always" ? [{ type: "Strip", content: " ", start: 1, stop: 0 }] : []),
        ],
      },
      model: {
        type: "BPE",
        dropout: null,
        unk_token: unk,
        continuing_subword_prefix: null,
        end_of_word_suffix: null,
        fuse_unk: true,
        byte_fallback: true,
        ignore_merges: false,
        vocab,
        merges,
      },
    },
    config: tokenConfig(t, { unk_token: unk, legacy: true }, chatTemplate),
  };
}
