/**
 * `tokenizerFromJson`: builds a tokenizer from a Hugging Face tokenizer.json object (+ tokenizer_config.json).
 *
 * The JSON is converted into the same tables the GGUF path uses and runs on barbell's own BPE code rather than on
 * `@huggingface/tokenizers`: that library cannot encode with special-token parsing off, has no per-token byte
 * view for a streaming decoder that holds back split UTF-8, and one engine for both sources means a GGUF and the
 * tokenizer.json it was converted from tokenize identically. The library remains the test oracle for both.
 * Supported shapes: byte-level BPE (GPT-2 / Llama-3 pre-tokenizers) and SentencePiece-style BPE with byte
 * fallback (Llama-2's legacy normalizer or a Metaspace pre-tokenizer). Anything else is a FormatError.
 */
import { FormatError } from "../../core/errors.js";
import type { VocabTables } from "./base.js";
import { ByteBpeTokenizer } from "./byte-bpe.js";
import { EOT_TEXTS, checkMerges, checkTokens, findByText } from "./gguf.js";
import {
  GPT2_ONIGURUMA_PATTERN,
  GPT2_PATTERN,
  LLAMA3_ONIGURUMA_PATTERN,
  LLAMA3_PATTERN,
  type ByteLevelPreTokenizer,
} from "./pretokenize.js";
import { SpmTokenizer, type SpacePrefix } from "./spm.js";
import { MAX_MERGES, MAX_VOCAB_SIZE, TokenType, type Tokenizer, type TokenizerTables } from "./types.js";

type Json = Record<string, unknown>;

/** Split patterns barbell recognises, in Oniguruma (as HF writes them) and JavaScript form. */
const SPLIT_PATTERNS = new Map<string, ByteLevelPreTokenizer>([
  [LLAMA3_ONIGURUMA_PATTERN, "llama3"],
  [LLAMA3_PATTERN, "llama3"],
  [GPT2_ONIGURUMA_PATTERN, "gpt2"],
  [GPT2_PATTERN, "gpt2"],
]);

function bad(message: string): FormatError {
  return new FormatError("bad-value", `[tokenizer.json] ${message}`);
}

function isRecord(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function record(v: unknown, what: string): Json {
  if (!isRecord(v)) {
    throw bad(`${what} must be an object`);
  }
  return v;
}

/** A component and, for `Sequence`s, every component inside it (depth-limited against hostile nesting). */
function flatten(v: unknown, what: string, depth = 0): Json[] {
  if (v === null || v === undefined) {
    return [];
  }
  const c = record(v, what);
  if (depth > 8) {
    throw bad(`${what} is nested too deeply`);
  }
  const inner = c.pretokenizers ?? c.normalizers ?? c.decoders ?? c.processors;
  if (c.type !== "Sequence") {
    return [c];
  }
  if (!Array.isArray(inner)) {
    throw bad(`${what} Sequence has no list of components`);
  }
  return inner.flatMap((x) => flatten(x, what, depth + 1));
}

/** A special-token field of tokenizer_config.json: a string or `{content: string}`. */
function tokenField(config: Json, key: string): string | undefined {
  const v = config[key];
  if (typeof v === "string") {
    return v;
  }
  if (isRecord(v) && typeof v.content === "string") {
    return v.content;
  }
  return undefined;
}

interface Vocab {
  readonly tokens: string[];
  readonly types: Uint8Array;
}

function buildVocab(model: Json, addedTokens: unknown): Vocab {
  const vocab = record(model.vocab, "model.vocab");
  const entries = Object.entries(vocab);
  const added = addedTokens === undefined || addedTokens === null ? [] : addedTokens;
  if (!Array.isArray(added)) {
    throw bad("added_tokens must be a list");
  }
  if (entries.length + added.length > MAX_VOCAB_SIZE) {
    throw new FormatError("limit", `[tokenizer.json] more than ${MAX_VOCAB_SIZE} tokens`);
  }
  const byId = new Map<number, string>();
  const kinds = new Map<number, number>();
  const place = (id: unknown, text: string, what: string): number => {
    if (typeof id !== "number" || !Number.isInteger(id) || id < 0 || id >= MAX_VOCAB_SIZE) {
      throw bad(`${what} has id ${String(id)}, not an integer in [0, ${MAX_VOCAB_SIZE})`);
    }
    const had = byId.get(id);
    if (had !== undefined && had !== text) {
      const both = `${JSON.stringify(had)} and ${JSON.stringify(text)}`;
      throw new FormatError("duplicate", `[tokenizer.json] id ${id} is both ${both}`);
    }
    byId.set(id, text);
    return id;
  };
  for (const [text, id] of entries) {
    place(id, text, `vocab entry ${JSON.stringify(text.slice(0, 40))}`);
  }
  added.forEach((t: unknown, i) => {
    const a = record(t, `added_tokens[${i}]`);
    if (typeof a.content !== "string" || a.content.length === 0) {
      throw bad(`added_tokens[${i}].content must be a non-empty string`);
    }
    const id = place(a.id, a.content, `added_tokens[${i}]`);
    kinds.set(id, a.special === true ? TokenType.control : TokenType.userDefined);
  });
  let size = 0;
  for (const id of byId.keys()) {
    size = Math.max(size, id + 1);
  }
  // Ids the JSON skips become empty unused tokens, so that ids stay embedding rows.
  const tokens = Array.from({ length: size }, (_, id) => byId.get(id) ?? "");
  const types = new Uint8Array(size).fill(TokenType.normal);
  for (let id = 0; id < size; id++) {
    types[id] = kinds.get(id) ?? (byId.has(id) ? TokenType.normal : TokenType.unused);
  }
  checkTokens(tokens);
  return { tokens, types };
}

function readMerges(model: Json): string[] {
  const raw = model.merges ?? [];
  if (!Array.isArray(raw)) {
    throw bad("model.merges must be a list");
  }
  if (raw.length > MAX_MERGES) {
    throw new FormatError("limit", `[tokenizer.json] ${raw.length} merges exceed ${MAX_MERGES}`);
  }
  const merges = raw.map((m: unknown, i) => {
    if (typeof m === "string") {
      return m;
    }
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === "string" && typeof m[1] === "string") {
      return `${m[0]} ${m[1]}`;
    }
    throw bad(`model.merges[${i}] is neither "left right" nor a pair of strings`);
  });
  checkMerges(merges);
  return merges;
}

function byteLevelPre(pre: Json[], normalizers: Json[]): ByteLevelPreTokenizer {
  if (normalizers.length > 0) {
    throw bad(`normalizer '${String(normalizers[0]?.type)}' is not supported with a byte-level model`);
  }
  let result: ByteLevelPreTokenizer | undefined;
  for (const p of pre) {
    if (p.type === "Split") {
      const pattern = isRecord(p.pattern) ? p.pattern.Regex : undefined;
      const known = SPLIT_PATTERNS.get(typeof pattern === "string" ? pattern : "");
      if (known === undefined || p.behavior !== "Isolated" || p.invert === true) {
        const shown = JSON.stringify(String(pattern)).slice(0, 80);
        throw bad(`Split pre-tokenizer ${shown} is not supported (only Llama-3's and GPT-2's)`);
      }
      result = known;
    } else if (p.type === "ByteLevel") {
      if (p.add_prefix_space === true) {
        throw bad("ByteLevel add_prefix_space is not supported");
      }
      if (p.use_regex !== false) {
        result ??= "gpt2";
      }
    } else {
      throw bad(`pre-tokenizer '${String(p.type)}' is not supported with a byte-level model`);
    }
  }
  if (result === undefined) {
    throw bad("byte-level model without a split pattern is not supported");
  }
  return result;
}

/** Dummy-prefix placement for the SentencePiece shapes HF writes; throws for anything else. */
function spmPrefix(pre: Json[], normalizers: Json[]): SpacePrefix {
  const prepend = normalizers.find((n) => n.type === "Prepend");
  const replace = normalizers.find((n) => n.type === "Replace");
  const legacy =
    replace !== undefined &&
    isRecord(replace.pattern) &&
    replace.pattern.String === " " &&
    replace.content === "\u2581" &&
    normalizers.every((n) => n === prepend || n === replace) &&
    (prepend === undefined || prepend.prepend === "\u2581");
  if (legacy && pre.length === 0) {
    return prepend === undefined ? "never" : "always";
  }
  const meta = pre[0];
  if (normalizers.length === 0 && pre.length === 1 && meta?.type === "Metaspace" && meta.replacement === "\u2581") {
    const scheme = meta.prepend_scheme ?? (meta.add_prefix_space === false ? "never" : "always");
    if ((scheme === "always" || scheme === "first" || scheme === "never") && meta.split !== true) {
      return scheme;
    }
  }
  throw bad("only Llama-2-style SentencePiece normalizers (Prepend/Replace '▁', unsplit Metaspace) are supported");
}

/** BOS is added by default when the config says so, or when the post-processor template starts with it. */
function defaultAddBos(json: Json, config: Json, bosText: string | undefined): boolean {
  if (typeof config.add_bos_token === "boolean") {
    return config.add_bos_token;
  }
  for (const p of flatten(json.post_processor, "post_processor")) {
    if (p.type === "TemplateProcessing" && Array.isArray(p.single)) {
      const first: unknown = p.single[0];
      const special = isRecord(first) && isRecord(first.SpecialToken) ? first.SpecialToken.id : undefined;
      return special !== undefined && special === bosText;
    }
  }
  return false;
}

/**
 * Builds a tokenizer from parsed tokenizer.json (and optionally tokenizer_config.json) objects. Hostile or
 * unsupported input throws FormatError (`bad-value`, `duplicate` or `limit`), never anything else.
 */
export function tokenizerFromJson(tokenizerJson: unknown, config?: unknown): Tokenizer {
  return guarded(() => {
    const t = build(tokenizerJson, config);
    return t.kind === "byte-bpe" ? new ByteBpeTokenizer(t.tables) : new SpmTokenizer(t.tables);
  });
}

/**
 * The tables `tokenizerFromJson` builds its tokenizer from (for writing them elsewhere, e.g. as GGUF metadata),
 * with the same checks and errors.
 */
export function tokenizerTablesFromJson(tokenizerJson: unknown, config?: unknown): TokenizerTables {
  return guarded(() => build(tokenizerJson, config));
}

function guarded<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof FormatError) {
      throw e;
    }
    // Deep structures or engine limits (RangeError) in hostile input are still format problems.
    throw bad(`cannot be read: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function build(tokenizerJson: unknown, config: unknown): TokenizerTables {
  const json = record(tokenizerJson, "tokenizer.json");
  const cfg = config === undefined || config === null ? {} : record(config, "tokenizer_config.json");
  const model = record(json.model, "model");
  const type = model.type ?? "BPE";
  if (type !== "BPE") {
    throw bad(`tokenizer model '${String(type)}' is not supported (supported: BPE)`);
  }
  if (model.dropout !== undefined && model.dropout !== null) {
    throw bad("BPE dropout is not supported");
  }
  const { tokens, types } = buildVocab(model, json.added_tokens);
  const merges = readMerges(model);
  const pre = flatten(json.pre_tokenizer, "pre_tokenizer");
  const normalizers = flatten(json.normalizer, "normalizer");
  const decoders = flatten(json.decoder, "decoder");
  const idOf = (text: string | undefined): number | undefined => {
    if (text === undefined) {
      return undefined;
    }
    const id = tokens.indexOf(text);
    if (id < 0) {
      throw bad(`special token ${JSON.stringify(text.slice(0, 40))} is not in the vocabulary`);
    }
    return id;
  };
  const bosText = tokenField(cfg, "bos_token");
  const base: Omit<VocabTables, "addBos"> = {
    tokens,
    types,
    bos: idOf(bosText),
    eos: idOf(tokenField(cfg, "eos_token")),
    eot: findByText(tokens, EOT_TEXTS),
  };
  const addBos = defaultAddBos(json, cfg, bosText);
  const byteLevel = [...pre, ...decoders].some((c) => c.type === "ByteLevel");
  if (byteLevel) {
    const tables = { ...base, addBos, merges, preTokenizer: byteLevelPre(pre, normalizers), ignoreMerges: model.ignore_merges === true };
    return { kind: "byte-bpe", tables };
  }
  if (model.byte_fallback === true || pre.some((p) => p.type === "Metaspace") || normalizers.length > 0) {
    if (model.byte_fallback === true) {
      tokens.forEach((t, id) => {
        if (types[id] === TokenType.normal && /^<0x[0-9A-F]{2}>$/.test(t)) {
          types[id] = TokenType.byte;
        }
      });
    }
    const unkText = typeof model.unk_token === "string" ? model.unk_token : undefined;
    const tables = { ...base, addBos, ranking: { kind: "merges", merges } as const, spacePrefix: spmPrefix(pre, normalizers), unk: idOf(unkText) };
    return { kind: "spm", tables };
  }
  throw bad("only byte-level BPE and SentencePiece-style BPE tokenizers are supported");
}
