import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { describe, expect, it } from "vitest";
import { FormatError } from "../../src/core/errors.js";
import { openGguf } from "../../src/formats/gguf/index.js";
import { tokenizerJsonFiles } from "../../src/model/tokenizer/hf-json-write.js";
import { tokenizerTablesFromJson } from "../../src/model/tokenizer/hf-json.js";
import { tokenizerFromGguf, tokenizerFromJson, tokenizerTablesFromGguf } from "../../src/model/tokenizer/index.js";
import { TokenType, type Tokenizer } from "../../src/model/tokenizer/types.js";
import { HANDPICKED, WITH_SPECIALS, generatedCorpus } from "./corpus.js";
import { byteLevelGguf, llama2Gguf, llama3Files } from "./vocabs.js";

const corpus = [...HANDPICKED, ...WITH_SPECIALS, ...generatedCorpus(120, 11)];

/** Ids of every corpus text from both tokenizers, with and without the default BOS, and the special ids. */
function expectSame(a: Tokenizer, b: Tokenizer): void {
  expect([b.bos, b.eos, b.eot, b.vocabSize, b.addBosDefault]).toEqual([a.bos, a.eos, a.eot, a.vocabSize, a.addBosDefault]);
  for (const text of corpus) {
    expect(Array.from(b.encode(text, { addBos: false })), JSON.stringify(text)).toEqual(Array.from(a.encode(text, { addBos: false })));
  }
  expect(Array.from(b.encode("In the beginning"))).toEqual(Array.from(a.encode("In the beginning")));
}

/** The outside oracle: Hugging Face's own tokenizer reading the written files gives the same ids. */
function expectOracle(files: { tokenizer: object; config: object }, ours: Tokenizer): void {
  const hf = new HfTokenizer(files.tokenizer as never, files.config as never);
  for (const text of corpus.slice(0, 80)) {
    const ids = hf.encode(text, { add_special_tokens: false }).ids;
    expect(ids, JSON.stringify(text)).toEqual(Array.from(ours.encode(text, { addBos: false })));
  }
}

describe("tokenizer.json from GGUF tokenizer tables", () => {
  it("Llama-3 byte-level BPE: the written tokenizer.json tokenizes as the GGUF does, in barbell and in HF tokenizers", () => {
    const meta = byteLevelGguf(llama3Files(), "llama-bpe");
    const fromGguf = tokenizerFromGguf(meta);
    const files = tokenizerJsonFiles(tokenizerTablesFromGguf(meta), "{{ bos_token }}");
    const back = JSON.parse(JSON.stringify(files)) as { tokenizer: unknown; config: Record<string, unknown> };
    expect(back.config.chat_template).toBe("{{ bos_token }}");
    expectSame(fromGguf, tokenizerFromJson(back.tokenizer, back.config));
    expectOracle(files, fromGguf);
  }, 120_000);

  it("GPT-2 pre-tokenizer round-trips through ByteLevel's built-in regex", () => {
    const meta = byteLevelGguf(llama3Files(), "gpt-2");
    const fromGguf = tokenizerFromGguf(meta);
    expect(fromGguf.preTokenizer).toBe("gpt2");
    const files = tokenizerJsonFiles(tokenizerTablesFromGguf(meta));
    const back = tokenizerFromJson(files.tokenizer, files.config);
    expect(back.preTokenizer).toBe("gpt2");
    expectSame(fromGguf, back);
  }, 120_000);

  it("Llama-2 SentencePiece ranked by scores: merges derived from the scores give the same ids", () => {
    const meta = llama2Gguf();
    const fromGguf = tokenizerFromGguf(meta);
    const files = tokenizerJsonFiles(tokenizerTablesFromGguf(meta));
    const tables = tokenizerTablesFromJson(files.tokenizer, files.config);
    expect(tables.kind).toBe("spm");
    expectSame(fromGguf, tokenizerFromJson(files.tokenizer, files.config));
    expectOracle(files, fromGguf);
  }, 120_000);

  it("the packaged KJV model's tokenizer round-trips", async () => {
    await using file = await openGguf("models/barbell-kjv.gguf");
    const fromGguf = tokenizerFromGguf(file.metadata);
    const files = tokenizerJsonFiles(tokenizerTablesFromGguf(file.metadata));
    expectSame(fromGguf, tokenizerFromJson(files.tokenizer, files.config));
    expectOracle(files, fromGguf);
  });

  it("refuses tables a tokenizer.json cannot hold (two ids with one text), with a typed error", () => {
    const tables = tokenizerTablesFromGguf(byteLevelGguf(llama3Files(), "llama-bpe"));
    if (tables.kind !== "byte-bpe") {
      throw new Error("expected byte-level tables");
    }
    const tokens = [...tables.tables.tokens];
    tokens[5] = tokens[4] ?? "";
    const types = Uint8Array.from(tables.tables.types);
    types[5] = TokenType.normal;
    const dup = { kind: "byte-bpe" as const, tables: { ...tables.tables, tokens, types } };
    expect(() => tokenizerJsonFiles(dup)).toThrow(FormatError);
    expect(() => tokenizerJsonFiles(dup)).toThrow(/ids 4 and 5/);
  }, 60_000);
});
