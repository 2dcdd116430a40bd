/**
 * A grammar in a model request (ModelRequest.grammar, GBNF text) through the model actor and its worker, with the
 * shipped KJV model: the output is a sentence of the grammar; a budget too small ends "length" with the text so
 * far; bad grammars and a grammar next to stop strings are typed bad-request errors, not failures.
 */
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createActorSystem, type ActorRef, type ActorSystem } from "../../src/actors/index.js";
import { compileGbnf } from "../../src/model/grammar/index.js";
import { modelActor, type ModelMsg, type ModelOutput } from "../../src/serve/index.js";
import { collect, lastOf } from "./helpers.js";

const MODEL = path.resolve(import.meta.dirname, "../../models/barbell-kjv.gguf");
let system: ActorSystem | undefined;

afterEach(async () => {
  await system?.stop();
  system = undefined;
});

function spawn(): ActorRef<ModelMsg> {
  system = createActorSystem();
  return system.spawn(modelActor({ ladder: [{ name: "kjv", path: MODEL }], backends: ["native-cpu", "js"], isolation: "in-process", parallel: 2 }));
}

const text = (items: readonly ModelOutput[]): string => items.map((i) => (i.kind === "token" ? i.text : "")).join("");
const prompt = { prompt: "And the LORD said unto Moses,", temperature: 0 };

describe("ModelRequest.grammar", () => {
  it("should generate a sentence of the grammar and end 'stop' when it is complete", async () => {
    const ref = spawn();
    const gbnf = 'root ::= "Selah" | ("[" [0-9] ("," [0-9]){2,3} "]")';
    const items = await collect(ref, { ...prompt, grammar: gbnf, maxTokens: 40 });
    expect(compileGbnf(gbnf).accepts(text(items))).toBe(true);
    expect(lastOf(items)).toMatchObject({ kind: "done", finishReason: "stop" });
    // Two at once in one batch, each with its own matcher.
    const both = await Promise.all([collect(ref, { ...prompt, grammar: gbnf, maxTokens: 40, temperature: 1, seed: 1 }), collect(ref, { ...prompt, grammar: gbnf, maxTokens: 40, temperature: 1, seed: 2 })]);
    for (const b of both) {
      expect(compileGbnf(gbnf).accepts(text(b))).toBe(true);
    }
  }, 60_000);

  it("should end 'length' with the text so far when the budget cannot hold the grammar", async () => {
    const ref = spawn();
    const items = await collect(ref, { ...prompt, grammar: 'root ::= "In the beginning God created the heaven and the earth."', maxTokens: 3 });
    expect(lastOf(items)).toMatchObject({ kind: "done", finishReason: "length" });
    expect(compileGbnf('root ::= "In the beginning God created the heaven and the earth."').accepts(text(items))).toBe(false);
  }, 60_000);

  it("should refuse a grammar that does not compile, or one next to stop strings, with bad-request", async () => {
    const ref = spawn();
    const broken = await collect(ref, { ...prompt, grammar: "root ::= (", maxTokens: 4 });
    expect(lastOf(broken)).toMatchObject({ kind: "error", code: "bad-request" });
    expect((lastOf(broken) as { message: string }).message).toMatch(/syntax|parse|expected/i);
    const withStop = await collect(ref, { ...prompt, grammar: 'root ::= "a"', stop: ["a"], maxTokens: 4 });
    expect(lastOf(withStop)).toMatchObject({ kind: "error", code: "bad-request" });
    const notText = await collect(ref, { ...prompt, grammar: 7 as unknown as string, maxTokens: 4 });
    expect(lastOf(notText)).toMatchObject({ kind: "error", code: "bad-request" });
    const after = await collect(ref, { ...prompt, grammar: 'root ::= "Amen"', maxTokens: 8 });
    expect(text(after)).toBe("Amen");
  }, 60_000);
});
