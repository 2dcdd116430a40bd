import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FormatError } from "../../src/core/errors.js";
import { GgufMetadata, gv, readGgufBytes, type GgufValue } from "../../src/formats/gguf/index.js";
import { makeBitnetFixture } from "../../src/model/bitnet/fixture.js";
import { MAX_TOKEN_LENGTH, tokenizerFromGguf, tokenizerFromJson, tokenizerTablesFromGguf } from "../../src/model/tokenizer/index.js";

const base = [...readGgufBytes(makeBitnetFixture()).metadata.entries()].filter(([k]) => k.startsWith("tokenizer."));
const tokens = readGgufBytes(makeBitnetFixture()).metadata.getStringArray("tokenizer.ggml.tokens") ?? [];

/** The fixture's tokenizer metadata with some keys replaced (undefined removes the key). */
function variant(changes: Record<string, GgufValue | undefined>): GgufMetadata {
  const kept = base.filter(([k]) => !(k in changes));
  const added = Object.entries(changes).flatMap(([k, v]): [string, GgufValue][] => (v === undefined ? [] : [[k, v]]));
  return new GgufMetadata([...kept, ...added]);
}

function ggufError(changes: Record<string, GgufValue | undefined>): FormatError {
  try {
    tokenizerFromGguf(variant(changes));
  } catch (e) {
    if (e instanceof FormatError) {
      return e;
    }
    throw e;
  }
  throw new Error("expected a FormatError");
}

/** A minimal valid byte-level tokenizer.json. */
function json(): Record<string, unknown> {
  return {
    model: { type: "BPE", vocab: Object.fromEntries(tokens.slice(0, 256).map((t, i) => [t, i])), merges: ["Ġ t"] },
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, use_regex: true },
    decoder: { type: "ByteLevel" },
    added_tokens: [{ id: 256, content: "<|x|>", special: true }],
  };
}

function jsonError(value: unknown, config?: unknown): FormatError {
  try {
    tokenizerFromJson(value, config);
  } catch (e) {
    if (e instanceof FormatError) {
      return e;
    }
    throw e;
  }
  throw new Error("expected a FormatError");
}

describe("tokenizerFromGguf errors", () => {
  it("should name an unsupported or missing tokenizer model", () => {
    expect(ggufError({ "tokenizer.ggml.model": gv.string("bert") }).message).toContain(
      "tokenizer model 'bert' is not supported",
    );
    expect(ggufError({ "tokenizer.ggml.model": undefined }).message).toContain("no tokenizer.ggml.model");
  });

  it("should reject missing arrays and per-token arrays of the wrong length", () => {
    expect(ggufError({ "tokenizer.ggml.tokens": undefined }).message).toContain("tokenizer.ggml.tokens");
    expect(ggufError({ "tokenizer.ggml.merges": undefined }).message).toContain("merges");
    expect(ggufError({ "tokenizer.ggml.token_type": gv.array("i32", [1, 1]) }).message).toContain("has 2 entries");
    const llama = gv.string("llama");
    const noScores = ggufError({ "tokenizer.ggml.model": llama, "tokenizer.ggml.scores": undefined });
    expect(noScores.message).toContain("scores");
    const shortScores = ggufError({ "tokenizer.ggml.scores": gv.array("f32", [0]), "tokenizer.ggml.model": llama });
    expect(shortScores.code).toBe("bad-value");
  });

  it("should reject ids outside the vocabulary and bad token types", () => {
    expect(ggufError({ "tokenizer.ggml.bos_token_id": gv.u32(300) }).message).toContain("outside the vocabulary");
    expect(ggufError({ "tokenizer.ggml.eos_token_id": gv.f32(1.5) }).code).toBe("bad-value");
    const badTypes = tokens.map((_, i) => (i === 5 ? 9 : 1));
    expect(ggufError({ "tokenizer.ggml.token_type": gv.array("i32", badTypes) }).message).toContain("token_type[5]");
    expect(ggufError({ "tokenizer.ggml.bos_token_id": gv.string("1") }).code).toBe("bad-value");
  });

  it("should accept -1 as an absent special id", () => {
    expect(tokenizerFromGguf(variant({ "tokenizer.ggml.eot_token_id": gv.i32(-1) })).eot).toBe(298);
  });

  it("should reject malformed merges at the first encode (and every later one), loading without reading them", () => {
    for (const [merges, message] of [
      [["Ġt"], 'merge 0 "Ġt" is not "left right"'],
      [["a b", "a b c"], 'merge 1 "a b c" is not "left right"'],
    ] as const) {
      const meta = variant({ "tokenizer.ggml.merges": gv.array("string", merges) });
      const tok = tokenizerFromGguf(meta);
      expect(tok.decode(tok.encode("\u0001", { addBos: false }))).toBe("\u0001"); // one byte token: no merge list needed
      for (let i = 0; i < 2; i++) {
        expect(() => tok.encode("zq xj")).toThrow(expect.objectContaining({ code: "bad-value", message: expect.stringContaining(message) }));
      }
      // The tables (for conversion) are checked whole, at once.
      expect(() => tokenizerTablesFromGguf(meta)).toThrow(expect.objectContaining({ code: "bad-value", message: expect.stringContaining(message) }));
    }
    expect(ggufError({ "tokenizer.ggml.merges": gv.array("i32", [1]) }).message).toContain("should be an array of string");
  });

  it("should reject oversized tokens and byte-level vocabularies without all bytes", () => {
    const long = tokens.map((t, i) => (i === 280 ? "x".repeat(MAX_TOKEN_LENGTH + 1) : t));
    expect(ggufError({ "tokenizer.ggml.tokens": gv.array("string", long) }).code).toBe("limit");
    const missing = tokens.map((t, i) => (i === 0 ? "not-a-byte" : t));
    expect(ggufError({ "tokenizer.ggml.tokens": gv.array("string", missing) }).message).toContain("byte 0x00");
    expect(ggufError({ "tokenizer.ggml.tokens": gv.array("string", []) }).message).toContain("empty");
  });

  it("should require byte tokens or an unknown token for SentencePiece", () => {
    const spm = {
      "tokenizer.ggml.model": gv.string("llama"),
      "tokenizer.ggml.scores": gv.array("f32", tokens.map(() => 0)),
    };
    expect(ggufError(spm).message).toContain("neither all 256 byte tokens nor an unknown token");
    const withUnk = tokenizerFromGguf(variant({ ...spm, "tokenizer.ggml.unknown_token_id": gv.u32(299) }));
    const ids = Array.from(withUnk.encode("ab", { addBos: false }));
    expect(ids).toEqual([299, tokens.indexOf("a"), tokens.indexOf("b")]);
  });
});

describe("tokenizerFromJson errors", () => {
  it("should load the minimal valid document", () => {
    const tok = tokenizerFromJson(json(), { bos_token: { content: "<|x|>" } });
    expect(tok.vocabSize).toBe(257);
    expect(tok.bos).toBe(256);
    expect(tok.decode(tok.encode("hi there<|x|>"))).toBe("hi there<|x|>");
  });

  it("should reject non-objects, unsupported models and malformed vocabularies", () => {
    expect(jsonError(null).message).toContain("must be an object");
    expect(jsonError([]).code).toBe("bad-value");
    expect(jsonError({ ...json(), model: { type: "WordPiece", vocab: {} } }).message).toContain(
      "tokenizer model 'WordPiece' is not supported",
    );
    expect(jsonError({ ...json(), model: { type: "BPE", vocab: [], merges: [] } }).message).toContain("model.vocab");
    expect(jsonError({ ...json(), model: { type: "BPE", vocab: { a: -1 }, merges: [] } }).message).toContain("id -1");
    expect(jsonError({ ...json(), model: { type: "BPE", vocab: { a: 0, b: 0 }, merges: [] } }).code).toBe("duplicate");
    expect(jsonError({ ...json(), model: { type: "BPE", vocab: { a: 1e9 }, merges: [] } }).code).toBe("bad-value");
  });

  it("should reject malformed merges, added tokens, special tokens and components", () => {
    const j = json();
    expect(jsonError({ ...j, model: { ...(j.model as object), merges: "a b" } }).message).toContain("merges");
    expect(jsonError({ ...j, model: { ...(j.model as object), merges: [[1, 2]] } }).message).toContain("merges[0]");
    expect(jsonError({ ...j, added_tokens: [{ id: 0, content: "zz" }] }).code).toBe("duplicate");
    expect(jsonError({ ...j, added_tokens: [{ id: 300 }] }).message).toContain("content");
    expect(jsonError(j, { eos_token: "<|missing|>" }).message).toContain("not in the vocabulary");
    expect(jsonError({ ...j, normalizer: { type: "NFKC" } }).message).toContain("normalizer 'NFKC'");
    const split = { type: "Split", pattern: { Regex: "\\w+" } };
    expect(jsonError({ ...j, pre_tokenizer: split }).message).toContain("Split");
    expect(jsonError({ ...j, pre_tokenizer: { type: "Sequence" } }).message).toContain("Sequence");
    expect(jsonError({ ...j, pre_tokenizer: null, decoder: null }).message).toContain("only byte-level BPE");
  });

  it("should reject deeply nested component sequences", () => {
    let pre: unknown = { type: "ByteLevel" };
    for (let i = 0; i < 20; i++) {
      pre = { type: "Sequence", pretokenizers: [pre] };
    }
    expect(jsonError({ ...json(), pre_tokenizer: pre }).message).toContain("nested too deeply");
  });

  it("should answer arbitrary JSON values with a tokenizer or a FormatError, never another error", () => {
    const kinds = ["ByteLevel", "Split", "Sequence", "Metaspace", "Prepend", "x"];
    const component = fc.record({ type: fc.constantFrom(...kinds) });
    const bpe = fc.record({
      type: fc.constantFrom("BPE", "Unigram"),
      vocab: fc.dictionary(fc.string(), fc.anything()),
      merges: fc.array(fc.anything()),
    });
    const added = fc.array(fc.record({ id: fc.integer({ min: -2, max: 300 }), content: fc.string() }));
    const doc = fc.oneof(
      fc.anything(),
      fc.record(
        {
          model: fc.oneof(fc.anything(), bpe),
          pre_tokenizer: fc.oneof(fc.anything(), component),
          normalizer: fc.oneof(fc.constant(null), component),
          decoder: fc.oneof(fc.anything(), component),
          added_tokens: fc.oneof(fc.anything(), added),
        },
        { requiredKeys: [] },
      ),
    );
    fc.assert(
      fc.property(doc, fc.anything(), (value, config) => {
        try {
          tokenizerFromJson(value, config);
        } catch (e) {
          expect(e).toBeInstanceOf(FormatError);
        }
      }),
      { numRuns: 400, seed: 31 },
    );
  });
});
