/**
 * Structured output through the library API (BitnetModel.generate / chat, ChatSession.prompt, Batcher) with the
 * shipped KJV model, whose free text is prose: outputs parse and validate (ajv), `parsed` is the JSON value,
 * a budget too small for the grammar and an abort are GrammarIncompleteError (never half a document as a
 * result), and conflicting options are UsageError.
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UsageError } from "../../src/core/errors.js";
import { loadModel, type BitnetModel } from "../../src/engine/model.js";
import { compileOptions, GrammarConstraint, resolveGrammar } from "../../src/engine/structured.js";
import { compileGbnf, compileJsonSchema, GrammarError, GrammarIncompleteError } from "../../src/model/grammar/index.js";
import type { Tokenizer } from "../../src/model/tokenizer/types.js";
import { createAjv } from "./validate.js";

const MODEL = path.resolve(import.meta.dirname, "../../models/barbell-kjv.gguf");
const PROMPT = "And God said unto Moses,";

const PERSON = {
  type: "object",
  properties: {
    name: { type: "string", maxLength: 16 },
    age: { type: "integer", minimum: 0, maximum: 150 },
    tribe: { enum: ["Judah", "Levi", "Benjamin"] },
    sons: { type: "array", items: { type: "string", maxLength: 8 }, maxItems: 2 },
  },
  required: ["name", "age", "tribe"],
  additionalProperties: false,
} as const;

let model: BitnetModel;
const ajv = createAjv();

beforeAll(async () => {
  model = await loadModel(MODEL, { backends: ["native-cpu", "js"], autotune: false });
}, 120_000);

afterAll(() => {
  model[Symbol.dispose]();
});

describe("generate with jsonSchema", () => {
  it("should return JSON that validates, parsed and typed, for greedy and sampled decoding", async () => {
    const validate = ajv.compile(PERSON);
    for (const sampling of [{ temperature: 0 }, { temperature: 1, seed: 7 }]) {
      const result = await model.generate(PROMPT, { jsonSchema: PERSON, maxTokens: 120, ...sampling }).complete();
      expect(validate(JSON.parse(result.text)), result.text).toBe(true);
      expect(result.parsed).toEqual(JSON.parse(result.text));
      expect(["Judah", "Levi", "Benjamin"]).toContain(result.parsed.tribe);
      expect(result.tokens.length).toBeLessThanOrEqual(120);
      expect(["stop", "length"]).toContain(result.finishReason);
    }
  }, 120_000);

  it("should finish within a tight budget that has room for the shortest completion", async () => {
    const schema = { type: "object", properties: { verse: { type: "string" } }, required: ["verse"] };
    const min = compileJsonSchema(schema).matcher(model.tokenizer as never).minCompletionBytes();
    const result = await model.generate(PROMPT, { jsonSchema: schema, maxTokens: min + 2, temperature: 0 }).complete();
    expect(ajv.compile(schema)(result.parsed), result.text).toBe(true);
    expect(result.tokens.length).toBeLessThanOrEqual(min + 2);
  }, 60_000);

  it("should stream the same text as complete() and end with the same result", async () => {
    const options = { jsonSchema: PERSON, maxTokens: 80, temperature: 0 } as const;
    const whole = await model.generate(PROMPT, options).complete();
    const generation = model.generate(PROMPT, options);
    let streamed = "";
    const tokens: number[] = [];
    for await (const piece of generation) {
      streamed += piece.text;
      if (piece.token !== null) {
        tokens.push(piece.token);
      }
    }
    expect(streamed).toBe(whole.text);
    expect(tokens).toEqual(whole.tokens);
    const after = await generation.complete();
    expect(after.parsed).toEqual(whole.parsed);
  }, 120_000);

  it("should give any JSON object with json: true", async () => {
    const result = await model.generate(PROMPT, { json: true, maxTokens: 40, temperature: 0.8, seed: 3 }).complete();
    expect(typeof result.parsed).toBe("object");
    expect(Array.isArray(result.parsed)).toBe(false);
    expect(result.parsed).not.toBeNull();
  }, 60_000);
});

describe("generate with a grammar", () => {
  it("should follow GBNF text and stop when the grammar admits nothing more", async () => {
    const gbnf = 'root ::= ("yea" | "nay") ", " [0-9] [0-9]?';
    const result = await model.generate(PROMPT, { grammar: gbnf, maxTokens: 12, temperature: 0 }).complete();
    expect(result.text).toMatch(/^(yea|nay), [0-9][0-9]?$/);
    expect(compileGbnf(gbnf).accepts(result.text)).toBe(true);
    expect("parsed" in result).toBe(false);
  }, 60_000);

  it("should end with finishReason stop on a grammar with a fixed end", async () => {
    const result = await model.generate(PROMPT, { grammar: 'root ::= "Amen."', maxTokens: 10 }).complete();
    expect(result.text).toBe("Amen.");
    expect(result.finishReason).toBe("stop");
  }, 60_000);

  it("should allow this generation's stop tokens only once complete, and never the end tokens it ignores (ignoreEos)", () => {
    const tokenizer = model.tokenizer as Tokenizer;
    const eos = tokenizer.eos as number;
    const a = tokenizer.encode("a", { addBos: false })[0] as number;
    const b = tokenizer.encode("b", { addBos: false })[0] as number;
    const grammar = compileGbnf('root ::= ("a" | "b")+');
    const masked = (stops: number[], accepted: number[]): Float32Array => {
      const constraint = new GrammarConstraint(grammar, tokenizer, stops);
      accepted.forEach((t) => constraint.accept(t));
      const logits = new Float32Array(model.config.vocabSize);
      constraint.apply(logits, 10, "", accepted.length);
      return logits;
    };
    expect(masked([eos], [])[eos]).toBe(Number.NEGATIVE_INFINITY); // not complete yet
    expect(masked([eos], [a])[eos]).toBe(0); // complete: the stop token may end it
    expect(masked([], [a])[eos]).toBe(Number.NEGATIVE_INFINITY); // ignoreEos: EOS is not a stop, and no text either
    expect(masked([], [a])[a]).toBe(0);
    // A stopTokens id that is a text token: only a stop (allowed once complete), never text before.
    const asStop = masked([eos, a], []);
    expect([asStop[a], asStop[b]]).toEqual([Number.NEGATIVE_INFINITY, 0]);
  });

  it("should accept a compiled Grammar and reuse cached grammars for the same text", () => {
    const grammar = compileGbnf('root ::= "x"');
    expect(resolveGrammar({ grammar })).toBe(grammar);
    expect(resolveGrammar({ grammar: 'root ::= "a"+' })).toBe(resolveGrammar({ grammar: 'root ::= "a"+' }));
    expect(resolveGrammar({ jsonSchema: { type: "integer" } })).toBe(resolveGrammar({ jsonSchema: { type: "integer" } }));
    expect(resolveGrammar({})).toBeUndefined();
  });
});

describe("chat and sessions with jsonSchema", () => {
  it("should answer a chat with JSON that validates", async () => {
    const result = await model.chat([{ role: "user", content: "Name a son of Jacob." }], { jsonSchema: PERSON, maxTokens: 120, temperature: 0 }).complete();
    expect(ajv.compile(PERSON)(result.parsed), result.text).toBe(true);
  }, 60_000);

  it("should keep the JSON reply in a session's conversation", async () => {
    const session = model.chatSession();
    const result = await session.prompt("Who begat Enos?", { jsonSchema: { type: "object", properties: { who: { type: "string", maxLength: 12 } }, required: ["who"] }, maxTokens: 40 }).complete();
    expect(typeof result.parsed.who).toBe("string");
    expect(session.messages.at(-1)?.content).toBe(result.text);
  }, 60_000);

  it("should constrain each sequence of a batcher on its own", async () => {
    using batcher = model.batcher({ maxSequences: 3 });
    const ids = model.tokenize(PROMPT);
    const good = batcher.generate(ids, compileOptions({ jsonSchema: PERSON, maxTokens: 100, temperature: 0 }));
    const tight = batcher.generate(ids, { jsonSchema: PERSON, maxTokens: 3 });
    const free = batcher.generate(ids, { maxTokens: 5 });
    const [a, b, c] = await Promise.allSettled([good.complete(), tight.complete(), free.complete()]);
    expect(a.status).toBe("fulfilled");
    expect(ajv.compile(PERSON)(JSON.parse(a.status === "fulfilled" ? a.value.text : "null"))).toBe(true);
    expect(b.status === "rejected" && b.reason instanceof GrammarIncompleteError).toBe(true);
    expect(c.status).toBe("fulfilled");
  }, 120_000);
});

describe("errors", () => {
  it("should throw GrammarIncompleteError when maxTokens cannot fit the grammar, from complete() and from a stream", async () => {
    const error = await model
      .generate(PROMPT, { jsonSchema: PERSON, maxTokens: 4 })
      .complete()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GrammarIncompleteError);
    expect((error as GrammarIncompleteError).code).toBe("grammar-incomplete");
    expect((error as GrammarIncompleteError).reason).toBe("no-room");
    const pieces: string[] = [];
    const streamed = async (): Promise<void> => {
      for await (const piece of model.generate(PROMPT, { jsonSchema: PERSON, maxTokens: 4 })) {
        pieces.push(piece.text);
      }
    };
    await expect(streamed()).rejects.toBeInstanceOf(GrammarIncompleteError);
  }, 60_000);

  it("should throw GrammarIncompleteError (reason abort) at the end of a stream aborted mid-document", async () => {
    const controller = new AbortController();
    let seen = 0;
    const run = async (): Promise<void> => {
      for await (const piece of model.generate(PROMPT, { jsonSchema: PERSON, maxTokens: 100, signal: controller.signal })) {
        if (piece.token !== null && ++seen === 2) {
          controller.abort();
        }
      }
    };
    const error = await run().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GrammarIncompleteError);
    expect((error as GrammarIncompleteError).reason).toBe("abort");
    expect((error as GrammarIncompleteError).tokens).toBe(2);
    expect((error as GrammarIncompleteError).message).not.toContain(MODEL);
  }, 60_000);

  it("should refuse conflicting options with UsageError before running", () => {
    expect(() => model.generate(PROMPT, { jsonSchema: PERSON, grammar: 'root ::= "a"' } as never)).toThrow(UsageError);
    expect(() => model.generate(PROMPT, { jsonSchema: PERSON, json: true } as never)).toThrow(UsageError);
    expect(() => model.generate(PROMPT, { json: true, stop: ["}"] })).toThrow(UsageError);
    expect(() => model.chat([{ role: "user", content: "hi" }], { grammar: 'root ::= "a"', stop: ["a"] })).toThrow(UsageError);
    // An empty stop list is no stop string.
    expect(() => model.generate(PROMPT, { json: true, stop: [] })).not.toThrow();
  });

  it("should refuse a bad grammar or schema with GrammarError when the generation is created", () => {
    expect(() => model.generate(PROMPT, { grammar: "root ::= (" })).toThrow(GrammarError);
    expect(() => model.generate(PROMPT, { jsonSchema: { type: "object", not: {} } })).toThrow(GrammarError);
    const cyclic: Record<string, unknown> = { type: "array" };
    cyclic.items = cyclic;
    expect(() => model.generate(PROMPT, { jsonSchema: cyclic })).toThrow(GrammarError);
  });
});
