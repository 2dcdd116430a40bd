/**
 * Token masks against brute force: for grammar states reached on real vocabularies (the KJV model's byte-level
 * BPE, Llama-3's 128,256 tokens, Mistral's SentencePiece), the mask must equal "the matcher accepts this token"
 * checked token by token; token bytes must equal what the tokenizer decodes; rollback, the budget and the
 * sampler integration must behave as documented.
 */
import path from "node:path";
import { describe, expect, it } from "vitest";
import { openGguf } from "../../src/formats/gguf/index.js";
import {
  applyTokenMask,
  compileGbnf,
  compileJsonSchema,
  GrammarError,
  grammarVocab,
  jsonSchemaToGbnf,
  sampleConstrained,
  tokenBytes,
  type GrammarMatcher,
} from "../../src/model/grammar/index.js";
import { createSampler } from "../../src/model/sampling/index.js";
import { tokenizerFromGguf, tokenizerFromJson, type Tokenizer } from "../../src/model/tokenizer/index.js";
import { llama3Files, mistralFiles } from "../tokenizer/vocabs.js";

const MODEL = path.resolve(import.meta.dirname, "../../models/barbell-kjv.gguf");

let kjv: Tokenizer | undefined;
async function kjvTokenizer(): Promise<Tokenizer> {
  if (kjv === undefined) {
    await using file = await openGguf(MODEL);
    kjv = tokenizerFromGguf(file.metadata);
  }
  return kjv;
}

const llama3 = (() => {
  let t: Tokenizer | undefined;
  return () => (t ??= tokenizerFromJson(llama3Files().json, llama3Files().config));
})();
const mistral = (() => {
  let t: Tokenizer | undefined;
  return () => (t ??= tokenizerFromJson(mistralFiles().json, mistralFiles().config));
})();

function bit(mask: Uint32Array, t: number): boolean {
  return (((mask[t >> 5] ?? 0) >>> (t & 31)) & 1) === 1;
}

/** Compares the mask with canAccept for every token (or every `stride`-th plus every allowed one). */
function checkAgainstBruteForce(m: GrammarMatcher, vocabSize: number, stride = 1): number {
  const mask = m.mask();
  let allowed = 0;
  for (let t = 0; t < vocabSize; t++) {
    const inMask = bit(mask, t);
    if (inMask || t % stride === 0) {
      expect(inMask, `token ${t}`).toBe(m.canAccept(t));
    }
    allowed += inMask ? 1 : 0;
  }
  return allowed;
}

const SCHEMA = {
  type: "object",
  properties: { name: { type: "string", maxLength: 12 }, n: { type: "integer", minimum: -5, maximum: 300 }, tags: { type: "array", items: { enum: ["ä", "b c", "日本"] } }, ok: { type: "boolean" } },
  required: ["name", "n"],
  additionalProperties: false,
};
const TEXT = '{"name": "Jo\\"hn é", "n": 299, "tags": ["ä", "日本"], "ok": true}';

describe("token masks", () => {
  it("should give exactly the tokens the matcher accepts, at every step of a JSON text (KJV vocabulary)", async () => {
    const tok = await kjvTokenizer();
    const m = compileJsonSchema(SCHEMA).matcher(tok);
    // Drive the matcher by single-byte steps where the text's tokens would split characters: bytes as tokens.
    const ids = Array.from(tok.encode(TEXT, { addBos: false }));
    let total = 0;
    for (const id of ids) {
      total += checkAgainstBruteForce(m, tok.vocabSize);
      m.accept(id);
    }
    expect(m.isComplete()).toBe(true);
    expect(bit(m.mask(), tok.eos as number)).toBe(true);
    expect(total).toBeGreaterThan(ids.length);
  });

  it("should match brute force on Llama-3's 128,256-token vocabulary and on SentencePiece (Mistral)", () => {
    // SentencePiece encodes the text with its dummy-prefix space, so the grammar allows one leading space.
    const grammar = compileGbnf(jsonSchemaToGbnf(SCHEMA).replace("root ::= ", 'root ::= " "? '));
    for (const tok of [llama3(), mistral()]) {
      const m = grammar.matcher(tok);
      const ids = Array.from(tok.encode(TEXT, { addBos: false }));
      for (let i = 0; i < ids.length; i++) {
        if (i % 4 === 0) {
          checkAgainstBruteForce(m, tok.vocabSize, 97);
        }
        m.accept(ids[i] as number);
      }
      expect(m.isComplete()).toBe(true);
    }
  }, 120_000);

  it("should accept a character split across tokens (byte tokens of a multi-byte character)", async () => {
    const tok = await kjvTokenizer();
    const m = compileGbnf('root ::= "é" [\\u4E00-\\u9FFF]').matcher(tok);
    const bytes = new TextEncoder().encode("é日");
    const byteToken = (b: number): number => {
      for (let t = 0; t < tok.vocabSize; t++) {
        const tb = tokenBytes(tok, t);
        if (tb?.length === 1 && tb[0] === b) {
          return t;
        }
      }
      throw new Error("no byte token");
    };
    for (const b of bytes) {
      const t = byteToken(b);
      expect(m.canAccept(t)).toBe(true);
      m.accept(t);
    }
    expect(m.isComplete()).toBe(true);
    const m2 = compileGbnf('root ::= "é"').matcher(tok);
    m2.accept(byteToken(0xc3));
    expect(m2.canAccept(byteToken(0x41))).toBe(false);
  });

  it("should roll back, reject with typed errors, and allow only stop tokens after completion", async () => {
    const tok = await kjvTokenizer();
    const m = compileGbnf('root ::= "ab" | "abc"').matcher(tok);
    const ids = Array.from(tok.encode("ab", { addBos: false }));
    for (const id of ids) {
      m.accept(id);
    }
    expect(m.isComplete()).toBe(true);
    const before = m.mask().slice();
    const c = Array.from(tok.encode("c", { addBos: false }))[0] as number;
    m.accept(c);
    expect(m.isFinished()).toBe(true);
    expect(() => m.accept(c)).toThrow(GrammarError);
    m.rollback(1);
    expect(m.mask()).toEqual(before);
    m.accept(tok.eos as number);
    expect(m.mask().every((w) => w === 0)).toBe(true);
    expect(() => m.accept(c)).toThrowError(expect.objectContaining({ code: "rejected" }) as Error);
    expect(() => m.rollback(99)).toThrowError(expect.objectContaining({ code: "bad-token" }) as Error);
    expect(() => m.accept(-1)).toThrowError(expect.objectContaining({ code: "bad-token" }) as Error);
    expect(() => m.mask(new Uint32Array(1))).toThrowError(expect.objectContaining({ code: "bad-token" }) as Error);
    m.reset();
    expect(m.tokenCount).toBe(0);
    expect(m.isComplete()).toBe(false);
  });

  it("should keep the shortest completion within the budget", async () => {
    const tok = await kjvTokenizer();
    const m = compileJsonSchema({ type: "array", items: { type: "object", properties: { a: { type: "string" } }, required: ["a"] } }).matcher(tok);
    const need = m.minCompletionBytes();
    expect(need).toBe(2); // "[]"
    // With 2 tokens left only what can still close in one more byte-token survives: "[" and nothing longer.
    const mask = m.mask(undefined, { remainingTokens: 2 });
    for (let t = 0; t < tok.vocabSize; t++) {
      if (bit(mask, t)) {
        expect(tokenBytes(tok, t)).toEqual(Uint8Array.of(0x5b));
      }
    }
  });

  it("should mask logits in place, padding rows included, and sample only allowed tokens", async () => {
    const tok = await kjvTokenizer();
    const m = compileGbnf('root ::= "true" | "false"').matcher(tok);
    const logits = new Float32Array(tok.vocabSize + 7).fill(1);
    const mask = m.mask();
    const allowed = applyTokenMask(logits, mask);
    expect(allowed).toBe(mask.reduce((n, w) => n + popcount(w), 0));
    expect(logits.slice(tok.vocabSize).every((v) => v === Number.NEGATIVE_INFINITY)).toBe(true);
    const sampler = createSampler({ temperature: 1, seed: 7 });
    const out: number[] = [];
    while (!m.isFinished()) {
      const row = new Float32Array(tok.vocabSize).map((_, i) => Math.sin(i));
      const pick = sampleConstrained(sampler, row, out, m);
      if (pick.token === tok.eos) {
        break;
      }
      out.push(pick.token);
    }
    expect(["true", "false"]).toContain(tok.decode(out));
  });
});

function popcount(w: number): number {
  let n = 0;
  for (let x = w >>> 0; x !== 0; x &= x - 1) {
    n++;
  }
  return n;
}

describe("token bytes from the Tokenizer interface", () => {
  it("should equal the decoded text of every token whose bytes are valid UTF-8 (Llama-3, Mistral, KJV)", async () => {
    const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
    for (const tok of [llama3(), mistral(), await kjvTokenizer()]) {
      let checked = 0;
      for (let id = 0; id < tok.vocabSize; id++) {
        const b = tokenBytes(tok, id);
        if (b === undefined) {
          expect(tok.isSpecial(id)).toBe(true);
          continue;
        }
        let text: string;
        try {
          text = strict.decode(b);
        } catch {
          continue; // a partial character: decode() would write U+FFFD
        }
        const decoded = tok.createStreamDecoder();
        expect(decoded.push(id) + decoded.flush(), `token ${id}`).toBe(text);
        checked++;
      }
      expect(checked).toBeGreaterThan(tok.vocabSize * 0.9);
      const v = grammarVocab(tok);
      expect(v.stops).toContain(tok.eos);
    }
  }, 120_000);
});
