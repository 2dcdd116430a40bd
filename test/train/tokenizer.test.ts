import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { gv, readGgufBytes, writeGguf, type GgufMetadata, type GgufValue } from "../../src/formats/gguf/index.js";
import { TokenType, tokenizerFromGguf, tokenizerFromJson } from "../../src/model/tokenizer/index.js";
import {
  DEFAULT_SPECIAL_TOKENS,
  toGgufTokenizerMetadata,
  toTokenizerConfig,
  toTokenizerJson,
  trainByteBpe,
} from "../../src/train/tokenizer.js";
import { HANDPICKED, WITH_SPECIALS, generatedCorpus, wellFormed } from "../tokenizer/corpus.js";

/** A small inline corpus in the style of the training text (not the downloaded one). */
const CORPUS: readonly string[] = [
  "In the beginning God created the heaven and the earth.",
  "And the earth was without form, and void; and darkness was upon the face of the deep.",
  "And the Spirit of God moved upon the face of the waters.",
  "And God said, Let there be light: and there was light.",
  "And God saw the light, that it was good: and God divided the light from the darkness.",
  "And God called the light Day, and the darkness he called Night.",
  "And the evening and the morning were the first day.",
  "And God said, Let there be a firmament in the midst of the waters, and let it divide the waters from the waters.",
  "And God made the firmament, and divided the waters which were under the firmament from the waters which were above the firmament: and it was so.",
  "And God called the firmament Heaven. And the evening and the morning were the second day.",
  "Chapter 12, verse 3: the 144 thousand; numbers like 1611 and 2024 appear too.",
  "Unicode: café naïve — “quoted” ‘text’, 你好世界, Ελληνικά, emoji 😀 and tabs\tand\nnewlines.",
];

const VOCAB = 320;

function train(texts: readonly string[] = CORPUS, vocabSize = VOCAB): ReturnType<typeof trainByteBpe> {
  return trainByteBpe(texts, { vocabSize });
}

function ggufMeta(t: ReturnType<typeof trainByteBpe>): GgufMetadata {
  // Through the writer and reader, as a model file would carry it.
  const arch: [string, GgufValue] = ["general.architecture", gv.string("bitnet-b1.58")];
  const bytes = writeGguf({ metadata: [arch, ...toGgufTokenizerMetadata(t)] });
  return readGgufBytes(bytes).metadata;
}

describe("trainByteBpe", () => {
  it("should be deterministic", () => {
    const a = train();
    const b = train();
    expect(b.tokens).toEqual(a.tokens);
    expect(b.merges).toEqual(a.merges);
    expect(b.types).toEqual(a.types);
  });

  it("should build exactly the requested vocabulary: 256 bytes, learned tokens, then specials", () => {
    for (const size of [262, 300, VOCAB, 500]) {
      const t = train(CORPUS, size);
      expect(t.tokens).toHaveLength(size);
      expect(t.types).toHaveLength(size);
      expect(new Set(t.tokens).size).toBe(size);
      expect(t.tokens[t.bos]).toBe("<|begin_of_text|>");
      expect(t.tokens[t.eos]).toBe("<|end_of_text|>");
      expect(t.eot).toBeDefined();
      expect(t.tokens[t.eot ?? -1]).toBe("<|eot_id|>");
      expect(t.types.filter((x) => x === TokenType.control)).toHaveLength(size - 256 - t.stats.learnedTokens);
    }
    expect(train(CORPUS, 262).stats.learnedTokens).toBe(3);
  });

  it("should learn the most frequent pair first, breaking ties by id", () => {
    // "ab" occurs 3 times, "cd" twice; then "ab" + "c" and "d" are tied candidates.
    const t = trainByteBpe(["ab ab ab", "cd cd"], { vocabSize: 256 + 3 + 2, minFrequency: 1 });
    expect(t.merges[0]).toBe("a b");
    expect(t.merges[1]).toBe("Ġ ab");
    // "Ġ ab" and "c d" both occur twice: the tie goes to the smaller left id (Ġ is byte 0x20, c is 0x63).
    const tie = trainByteBpe(["xy", "ba"], { vocabSize: 256 + 3 + 1, minFrequency: 1 });
    expect(tie.merges).toEqual(["b a"]);
  });

  it("should stop at minFrequency and pad with reserved control tokens", () => {
    const t = trainByteBpe(["abc"], { vocabSize: 300 });
    expect(t.stats.stoppedBy).toBe("pairs");
    expect(t.stats.learnedTokens).toBe(0);
    expect(t.tokens).toHaveLength(300);
    expect(t.tokens[299]).toBe(`<|reserved_special_token_${300 - 256 - 3 - 1}|>`);
    expect(t.types[299]).toBe(TokenType.control);
  });

  it("should stop at the time limit", () => {
    let now = 0;
    const t = trainByteBpe(CORPUS, { vocabSize: VOCAB, maxMs: 10, clock: () => (now += 1) });
    expect(t.stats.stoppedBy).toBe("time");
    expect(t.stats.learnedTokens).toBeLessThan(12);
    expect(t.tokens).toHaveLength(VOCAB);
  });

  it("should honour the word bounds", () => {
    const t = trainByteBpe(["one two three two", "x".repeat(100)], { vocabSize: 300, maxWords: 2, maxWordBytes: 64 });
    expect(t.stats.distinctWords).toBe(2);
    expect(t.stats.skippedWords).toBe(1); // " three"
    expect(t.stats.skippedLongWords).toBe(1);
  });

  it("should reject impossible sizes and bad options", () => {
    expect(() => trainByteBpe(CORPUS, { vocabSize: 256 })).toThrow(RangeError);
    expect(() => trainByteBpe(CORPUS, { vocabSize: 1 << 20 })).toThrow(RangeError);
    expect(() => trainByteBpe(CORPUS, { vocabSize: 300, specialTokens: ["<s>"] })).toThrow(RangeError);
    expect(() => trainByteBpe(CORPUS, { vocabSize: 300, specialTokens: ["<s>", "<s>"] })).toThrow(RangeError);
    expect(() => trainByteBpe(CORPUS, { vocabSize: 300, minFrequency: 0 })).toThrow(RangeError);
  });
});

describe("a trained tokenizer", () => {
  const trained = train();
  const json = toTokenizerJson(trained);
  const config = toTokenizerConfig(trained);
  const fromJson = tokenizerFromJson(json, config);
  const fromGguf = tokenizerFromGguf(ggufMeta(trained));
  const oracle = new HfTokenizer(json, config);
  const texts = [...CORPUS, ...HANDPICKED, ...WITH_SPECIALS, ...generatedCorpus(150, 7)];

  it("should load with the declared special tokens from both formats", () => {
    for (const tok of [fromJson, fromGguf]) {
      expect(tok.kind).toBe("byte-bpe");
      expect(tok.preTokenizer).toBe("llama3");
      expect(tok.vocabSize).toBe(VOCAB);
      expect([tok.bos, tok.eos, tok.eot]).toEqual([trained.bos, trained.eos, trained.eot]);
      expect(tok.addBosDefault).toBe(true);
      // Llama-3 split: whole-word tokens first on both sides (GGUF "llama-bpe" implies it in tokenizerFromGguf).
      expect((json.model as { ignore_merges?: unknown }).ignore_merges).toBe(true);
      expect(DEFAULT_SPECIAL_TOKENS.map((s) => tok.isSpecial(trained.tokens.indexOf(s)))).toEqual([true, true, true]);
    }
  });

  it("should encode like @huggingface/tokenizers, from tokenizer.json and from GGUF metadata", () => {
    let merged = 0;
    for (const t of texts) {
      const want = oracle.encode(t, { add_special_tokens: false }).ids;
      expect(Array.from(fromJson.encode(t, { addBos: false })), JSON.stringify(t)).toEqual(want);
      expect(Array.from(fromGguf.encode(t, { addBos: false })), JSON.stringify(t)).toEqual(want);
      merged += want.filter((id: number) => id >= 256 && id < trained.bos).length;
    }
    expect(merged).toBeGreaterThan(100); // the comparison exercises learned merges, not only bytes
    expect(Array.from(fromJson.encode("In the beginning"))).toEqual(oracle.encode("In the beginning").ids);
  });

  it("should round-trip arbitrary Unicode", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", maxLength: 60 }), (s) => {
        expect(fromJson.decode(fromJson.encode(s, { addBos: false, parseSpecial: false }))).toBe(s);
        expect(fromGguf.decode(fromGguf.encode(s, { addBos: false, parseSpecial: false }))).toBe(s);
      }),
      { numRuns: 300, seed: 11 },
    );
    for (const t of texts) {
      const w = wellFormed(t);
      expect(fromGguf.decode(fromGguf.encode(w, { addBos: false, parseSpecial: false }))).toBe(w);
    }
  });

  it("should need fewer tokens than bytes on corpus-like text", () => {
    const text = "And God said unto the waters, Let the earth bring forth, and it was so; and the evening was good.";
    const bytes = new TextEncoder().encode(text).length;
    const ids = fromJson.encode(text, { addBos: false });
    expect(ids.length).toBeLessThan(bytes * 0.6);
    expect(trained.stats.stoppedBy).toBe("vocab");
    const smaller = tokenizerFromJson(toTokenizerJson(train(CORPUS, 280)));
    expect(smaller.encode(text, { addBos: false }).length).toBeGreaterThan(ids.length);
  });
});
