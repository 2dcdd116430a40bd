/**
 * Compile-time tests of structured output's types (src/engine/structured.ts): `parsed` is inferred from a JSON
 * Schema written `as const` (json-schema-to-ts's FromSchema), or is the type argument given, or a JSON object for
 * `json: true`; a plain or grammar generation has no `parsed`. Every `@ts-expect-error` line must fail to
 * type-check (tsc reports an unused directive otherwise). Type-checked by `npm run typecheck`; never run.
 */
import type { BitnetModel, ChatSession, JsonObject, StructuredResult } from "../../src/index.js";

declare const model: BitnetModel;
declare const session: ChatSession;

type Equal<A, B> = (<X>() => X extends A ? 1 : 2) extends <X>() => X extends B ? 1 : 2 ? true : false;
function expectType<T extends true>(): T | undefined {
  return undefined;
}

const PERSON = {
  type: "object",
  properties: {
    name: { type: "string" },
    age: { type: "integer" },
    tribe: { enum: ["Judah", "Levi"] },
    sons: { type: "array", items: { type: "string" } },
  },
  required: ["name", "age", "tribe"],
  additionalProperties: false,
} as const;

interface Verse {
  book: string;
  chapter: number;
}

export async function inferred(): Promise<void> {
  const r = await model.generate("x", { jsonSchema: PERSON, maxTokens: 64 }).complete();
  expectType<Equal<typeof r.parsed.name, string>>();
  expectType<Equal<typeof r.parsed.age, number>>();
  expectType<Equal<typeof r.parsed.tribe, "Judah" | "Levi">>();
  expectType<Equal<typeof r.parsed.sons, string[] | undefined>>();
  // @ts-expect-error additionalProperties: false, so no other property
  void r.parsed.other;
  // @ts-expect-error age is a number
  const s: string = r.parsed.age;
  void s;
  // A schema written inline is inferred as if `as const` (a const type parameter).
  const inline = await model.generate("x", { jsonSchema: { type: "object", properties: { ok: { type: "boolean" } }, required: ["ok"] } }).complete();
  expectType<Equal<typeof inline.parsed.ok, boolean>>();
  // The result is still a GenerationResult.
  const text: string = r.text;
  void text;
}

export async function given(): Promise<void> {
  const schema: object = JSON.parse("{}") as object;
  const r = await model.generate<Verse>("x", { jsonSchema: schema }).complete();
  expectType<Equal<typeof r.parsed, Verse>>();
  const c = await model.chat<Verse>([{ role: "user", content: "hi" }], { jsonSchema: schema }).complete();
  expectType<Equal<typeof c.parsed, Verse>>();
  // A schema not written as const: parsed is unknown, not a wrong type.
  const loose = await model.generate("x", { jsonSchema: schema }).complete();
  expectType<Equal<typeof loose.parsed, unknown>>();
}

export async function jsonObject(): Promise<void> {
  const r = await model.generate("x", { json: true }).complete();
  expectType<Equal<typeof r.parsed, JsonObject>>();
  const g: StructuredResult<JsonObject> = r;
  void g;
  const s = await session.prompt("hi", { jsonSchema: PERSON }).complete();
  expectType<Equal<typeof s.parsed.tribe, "Judah" | "Levi">>();
}

export async function unstructured(): Promise<void> {
  const plain = await model.generate("x", { maxTokens: 4 }).complete();
  // @ts-expect-error no parsed without jsonSchema or json
  void plain.parsed;
  const grammar = await model.generate("x", { grammar: 'root ::= "a"' }).complete();
  // @ts-expect-error a grammar's text is not parsed
  void grammar.parsed;
}
