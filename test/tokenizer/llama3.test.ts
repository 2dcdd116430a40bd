import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { tokenizerFromGguf, tokenizerFromJson } from "../../src/model/tokenizer/index.js";
import { HANDPICKED, WITH_SPECIALS, generatedCorpus, unicodeText, wellFormed } from "./corpus.js";
import { byteLevelGguf, llama3Files } from "./vocabs.js";

// Loaded once per file: the vocabulary is 9 MB of JSON.
const files = llama3Files();
const oracle = new HfTokenizer(files.json, files.config);
// As in the official BitNet 2B-4T GGUF: no tokenizer.ggml.pre.
const fromGguf = tokenizerFromGguf(byteLevelGguf(files, undefined));
const fromGgufPre = tokenizerFromGguf(byteLevelGguf(files, "llama-bpe"));
const fromJson = tokenizerFromJson(files.json, files.config);
const corpus = [...HANDPICKED, ...WITH_SPECIALS, ...generatedCorpus(400, 3)];

const BOS = 128000;
const EOT = 128009;

function hfIds(text: string): number[] {
  return oracle.encode(text, { add_special_tokens: false }).ids;
}

describe("Llama-3 byte-level BPE against @huggingface/tokenizers", () => {
  it("should produce the library's ids for every corpus text, from GGUF arrays without tokenizer.ggml.pre", () => {
    const mismatches = corpus.filter(
      (t) => Array.from(fromGguf.encode(t, { addBos: false })).join() !== hfIds(t).join(),
    );
    expect(mismatches).toEqual([]);
  });

  it("should produce the same ids from tokenizer.json, and from GGUF arrays with pre = llama-bpe", () => {
    for (const t of corpus) {
      const want = hfIds(t).join();
      expect(Array.from(fromJson.encode(t, { addBos: false })).join(), JSON.stringify(t)).toBe(want);
      expect(Array.from(fromGgufPre.encode(t, { addBos: false })).join(), JSON.stringify(t)).toBe(want);
    }
  });

  it("should agree with the library on random unicode text", () => {
    fc.assert(
      fc.property(unicodeText, (t) => {
        expect(Array.from(fromGguf.encode(t, { addBos: false }))).toEqual(hfIds(t));
      }),
      { numRuns: 300, seed: 11 },
    );
  });

  it("should decode ids to the library's text", () => {
    for (const t of corpus.filter((x) => x !== "")) {
      const ids = hfIds(t);
      const want = oracle.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
      expect(fromGguf.decode(ids)).toBe(want);
      const skipped = oracle.decode(ids, { skip_special_tokens: true, clean_up_tokenization_spaces: false });
      expect(fromGguf.decode(ids, { skipSpecial: true })).toBe(skipped);
    }
  });
});

describe("Llama-3 tokenizer behaviour", () => {
  it("should detect the Llama-3 split and special ids from the vocabulary when pre is missing", () => {
    expect(fromGguf.kind).toBe("byte-bpe");
    expect(fromGguf.preTokenizer).toBe("llama3");
    expect(fromGguf.vocabSize).toBe(128256);
    expect([fromGguf.bos, fromGguf.eos, fromGguf.eot]).toEqual([BOS, 128001, EOT]);
    expect([fromJson.bos, fromJson.eos, fromJson.eot]).toEqual([BOS, 128001, EOT]);
    expect(fromGguf.addBosDefault).toBe(true);
  });

  it("should round-trip any string, with lone surrogates coming back as U+FFFD", () => {
    fc.assert(
      fc.property(fc.oneof(unicodeText, fc.string({ unit: "binary" }), fc.string()), (t) => {
        expect(fromGguf.decode(fromGguf.encode(t, { addBos: false, parseSpecial: false }))).toBe(wellFormed(t));
      }),
      { numRuns: 300, seed: 5 },
    );
    expect(fromGguf.decode(fromGguf.encode("a\ud800b\udc00", { addBos: false }))).toBe("a\ufffdb\ufffd");
    expect(fromGguf.decode(fromGguf.encode("\ufeffleading BOM", { addBos: false }))).toBe("\ufeffleading BOM");
  });

  it("should add BOS once, even when the text already starts with it", () => {
    expect(Array.from(fromGguf.encode("Hello"))).toEqual([BOS, 9906]);
    expect(Array.from(fromGguf.encode("<|begin_of_text|>Hello"))).toEqual([BOS, 9906]);
    expect(Array.from(fromGguf.encode("Hello", { addBos: false }))).toEqual([9906]);
    expect(Array.from(fromGguf.encode("", { addBos: true }))).toEqual([BOS]);
  });

  it("should split special tokens only when special parsing is on", () => {
    const text = "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>";
    const parsed = Array.from(fromGguf.encode(text, { addBos: false }));
    expect(parsed).toEqual(hfIds(text));
    expect(parsed).toContain(EOT);
    const plain = Array.from(fromGguf.encode(text, { addBos: false, parseSpecial: false }));
    expect(plain.some((id) => fromGguf.isSpecial(id))).toBe(false);
    expect(fromGguf.decode(plain)).toBe(text);
  });

  it("should report special tokens and stored token text", () => {
    expect(fromGguf.isSpecial(EOT)).toBe(true);
    expect(fromGguf.isSpecial(9906)).toBe(false);
    expect(fromGguf.isSpecial(-1)).toBe(false);
    expect(fromGguf.tokenText(EOT)).toBe("<|eot_id|>");
    expect(fromGguf.tokenText(1917)).toBe("Ġworld");
    expect(() => fromGguf.tokenText(128256)).toThrow(RangeError);
    expect(() => fromGguf.decode([128256])).toThrow(RangeError);
  });

  it("should stream an emoji split across byte tokens only once it is complete", () => {
    const ids = Array.from(fromGguf.encode("😀", { addBos: false }));
    expect(ids.length).toBeGreaterThan(1);
    const stream = fromGguf.createStreamDecoder();
    const outs = ids.map((id) => stream.push(id));
    expect(outs.slice(0, -1).every((s) => s === "")).toBe(true);
    expect(outs.at(-1)).toBe("😀");
    expect(stream.flush()).toBe("");
  });

  it("should stream every corpus text to its decoded form without broken characters", () => {
    for (const t of corpus) {
      const ids = fromGguf.encode(t, { addBos: false });
      const stream = fromGguf.createStreamDecoder({ skipSpecial: true });
      let out = "";
      for (const id of ids) {
        const piece = stream.push(id);
        expect(wellFormed(piece)).toBe(piece);
        expect(piece.includes("\ufffd") && !t.includes("\ufffd")).toBe(false);
        out += piece;
      }
      out += stream.flush();
      expect(out).toBe(fromGguf.decode(ids, { skipSpecial: true }));
    }
  });

  it("should flush a dangling partial character as U+FFFD", () => {
    const ids = Array.from(fromGguf.encode("😀", { addBos: false }));
    const stream = fromGguf.createStreamDecoder();
    expect(stream.push(ids[0] ?? 0)).toBe("");
    expect(stream.flush()).toBe("\ufffd");
    expect(stream.push(9906)).toBe("Hello");
  });
});
