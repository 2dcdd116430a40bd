import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { tokenizerFromGguf, tokenizerFromJson } from "../../src/model/tokenizer/index.js";
import { HANDPICKED, WITH_SPECIALS, generatedCorpus, unicodeText, wellFormed } from "./corpus.js";
import { llama2Files, llama2Gguf, mistralFiles } from "./vocabs.js";

const llama2 = llama2Files();
const oracle = new HfTokenizer(llama2.json, llama2.config);
const fromGguf = tokenizerFromGguf(llama2Gguf());
const fromJson = tokenizerFromJson(llama2.json, llama2.config);
const mistral = mistralFiles();
const mistralOracle = new HfTokenizer(mistral.json, mistral.config);
const mistralJson = tokenizerFromJson(mistral.json, mistral.config);
const corpus = [...HANDPICKED, ...WITH_SPECIALS, ...generatedCorpus(400, 7)];

function hfIds(tok: HfTokenizer, text: string): number[] {
  return tok.encode(text, { add_special_tokens: false }).ids;
}

describe("SentencePiece BPE against @huggingface/tokenizers", () => {
  it("should produce the library's Llama-2 ids for every corpus text, from GGUF tokens and scores", () => {
    const mismatches = corpus.filter(
      (t) => Array.from(fromGguf.encode(t, { addBos: false })).join() !== hfIds(oracle, t).join(),
    );
    expect(mismatches).toEqual([]);
  });

  it("should produce the library's ids from Llama-2 and Mistral tokenizer.json files", () => {
    for (const t of corpus) {
      expect(Array.from(fromJson.encode(t, { addBos: false })), JSON.stringify(t)).toEqual(hfIds(oracle, t));
      expect(Array.from(mistralJson.encode(t, { addBos: false })), JSON.stringify(t)).toEqual(hfIds(mistralOracle, t));
    }
  });

  it("should agree with the library on random unicode text", () => {
    fc.assert(
      fc.property(unicodeText, (t) => {
        expect(Array.from(fromGguf.encode(t, { addBos: false }))).toEqual(hfIds(oracle, t));
        expect(Array.from(mistralJson.encode(t, { addBos: false }))).toEqual(hfIds(mistralOracle, t));
      }),
      { numRuns: 200, seed: 13 },
    );
  });

  it("should add BOS like the library's template when the text does not start with one", () => {
    for (const t of HANDPICKED) {
      expect(Array.from(fromGguf.encode(t))).toEqual(oracle.encode(t).ids);
    }
  });

  it("should decode ids to the library's text, with and without special tokens", () => {
    for (const t of corpus) {
      const ids = oracle.encode(t).ids;
      for (const skip of [false, true]) {
        const want = oracle.decode(ids, { skip_special_tokens: skip, clean_up_tokenization_spaces: false });
        expect(fromGguf.decode(ids, { skipSpecial: skip }), JSON.stringify(t)).toBe(want);
      }
    }
  });
});

describe("SentencePiece tokenizer behaviour", () => {
  it("should read the special ids and defaults from the GGUF", () => {
    expect(fromGguf.kind).toBe("spm");
    expect(fromGguf.preTokenizer).toBe("none");
    expect([fromGguf.vocabSize, fromGguf.bos, fromGguf.eos, fromGguf.eot]).toEqual([32000, 1, 2, undefined]);
    expect(fromGguf.addBosDefault).toBe(true);
    expect(fromGguf.isSpecial(1)).toBe(true);
    expect(fromGguf.isSpecial(0)).toBe(true);
    expect(fromGguf.tokenText(15043)).toBe("▁Hello");
  });

  it("should prepend the dummy prefix and fall back to byte tokens for characters outside the vocabulary", () => {
    expect(Array.from(fromGguf.encode("Hello world", { addBos: false }))).toEqual([15043, 3186]);
    const emoji = Array.from(fromGguf.encode("😀", { addBos: false }));
    expect(emoji.map((id) => fromGguf.tokenText(id))).toEqual(["▁", "<0xF0>", "<0x9F>", "<0x98>", "<0x80>"]);
  });

  it("should round-trip strings without U+2581, which SentencePiece itself turns into a space", () => {
    const text = fc.oneof(unicodeText, fc.string({ unit: "binary" }), fc.string()).filter((t) => !t.includes("\u2581"));
    fc.assert(
      fc.property(text, (t) => {
        const ids = fromGguf.encode(t, { parseSpecial: false });
        expect(fromGguf.decode(ids, { skipSpecial: true })).toBe(wellFormed(t));
      }),
      { numRuns: 300, seed: 17 },
    );
    expect(fromGguf.decode(fromGguf.encode("a\u2581b", { addBos: false }))).toBe("a b");
  });

  it("should not double BOS and should honour special parsing", () => {
    expect(Array.from(fromGguf.encode("<s>Hi"))).toEqual([1, 6324]);
    const plain = Array.from(fromGguf.encode("<s>Hi", { parseSpecial: false }));
    expect(plain[0]).toBe(1);
    expect(plain.slice(1)).not.toContain(1);
    expect(fromGguf.decode(plain, { skipSpecial: true })).toBe("<s>Hi");
  });

  it("should stream byte-fallback tokens as whole characters and keep a token's leading space", () => {
    const ids = Array.from(fromGguf.encode("Hi 😀!", { addBos: false }));
    const stream = fromGguf.createStreamDecoder();
    const outs = ids.map((id) => stream.push(id));
    expect(outs.join("") + stream.flush()).toBe(" Hi 😀!");
    expect(outs.filter((s) => s !== "")).toEqual([" Hi", " ", "😀", "!"]);
  });
});
