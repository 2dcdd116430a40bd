/**
 * The schema suite of the grammar tests: every schema is compiled, and constrained generation with the shipped
 * KJV model must produce output that parses and validates (generate.test.ts). Hard cases included: deep nesting,
 * enums of long strings, unicode, bounded numbers, empty objects and arrays, recursion through $ref.
 */
export interface SuiteSchema {
  readonly name: string;
  readonly schema: Record<string, unknown>;
}

const LONG = [
  "In the beginning God created the heaven and the earth, and the earth was without form, and void",
  "In the beginning God created the heaven and the earth, and darkness was upon the face of the deep",
  "And the Spirit of God moved upon the face of the waters; and God said, Let there be light",
];

export const SUITE: readonly SuiteSchema[] = [
  { name: "string", schema: { type: "string" } },
  { name: "string minLength 3", schema: { type: "string", minLength: 3 } },
  { name: "string maxLength 4", schema: { type: "string", maxLength: 4 } },
  { name: "string min 2 max 5", schema: { type: "string", minLength: 2, maxLength: 5 } },
  { name: "empty string only", schema: { type: "string", maxLength: 0 } },
  { name: "integer", schema: { type: "integer" } },
  { name: "integer >= 0", schema: { type: "integer", minimum: 0 } },
  { name: "integer 5..30", schema: { type: "integer", minimum: 5, maximum: 30 } },
  { name: "integer -123..42", schema: { type: "integer", minimum: -123, maximum: 42 } },
  { name: "integer <= -9999", schema: { type: "integer", maximum: -9999 } },
  { name: "integer exclusive 0..10000", schema: { type: "integer", exclusiveMinimum: 0, exclusiveMaximum: 10000 } },
  { name: "number", schema: { type: "number" } },
  { name: "number 0..1", schema: { type: "number", minimum: 0, maximum: 1 } },
  { name: "number -10..-5", schema: { type: "number", minimum: -10, maximum: -5 } },
  { name: "boolean", schema: { type: "boolean" } },
  { name: "null", schema: { type: "null" } },
  { name: "type list", schema: { type: ["string", "null"] } },
  { name: "const string", schema: { const: "foo" } },
  { name: "const object", schema: { const: { a: [1, 2], b: null } } },
  { name: "enum mixed", schema: { enum: ["red", "amber", "green", null, 42, ["foo"]] } },
  { name: "enum long strings", schema: { enum: LONG } },
  { name: "enum unicode", schema: { enum: ["Ελληνικά", "日本語", "emoji 🔵🟠", "naïve café"] } },
  { name: "unicode property names", schema: { type: "object", properties: { "名前": { type: "string", maxLength: 8 }, "ünïcödé": { type: "boolean" } }, required: ["名前", "ünïcödé"], additionalProperties: false } },
  { name: "empty object", schema: { type: "object", additionalProperties: false } },
  { name: "any object", schema: { type: "object" } },
  { name: "empty array", schema: { type: "array", maxItems: 0 } },
  { name: "array of strings", schema: { type: "array", items: { type: "string" } } },
  { name: "array min 3 max 5 numbers", schema: { type: "array", items: { type: "number" }, minItems: 3, maxItems: 5 } },
  { name: "array exactly 2 booleans", schema: { type: "array", items: { type: "boolean" }, minItems: 2, maxItems: 2 } },
  { name: "array nullable", schema: { type: ["array", "null"], items: { type: "string" } } },
  { name: "tuple prefixItems", schema: { type: "array", prefixItems: [{ type: "integer" }, { type: "string" }, { type: "boolean" }], items: false, minItems: 3 } },
  { name: "array of enums", schema: { type: "array", items: { enum: ["a", "b", "c"] }, minItems: 1, maxItems: 4 } },
  { name: "object required", schema: { type: "object", properties: { name: { type: "string" }, age: { type: "integer", minimum: 0, maximum: 150 } }, required: ["name", "age"], additionalProperties: false } },
  { name: "object all optional", schema: { type: "object", properties: { a: { type: "string" }, b: { type: "number" }, c: { type: "boolean" } } } },
  { name: "object mixed optional", schema: { type: "object", properties: { a: { type: "string" }, b: { type: "integer" }, c: { enum: ["x", "y"] }, d: { type: "null" } }, required: ["b", "d"] } },
  { name: "object map of integers", schema: { type: "object", additionalProperties: { type: "integer" } } },
  { name: "nested object", schema: { type: "object", properties: { user: { type: "object", properties: { id: { type: "integer" }, email: { type: "string" } }, required: ["id", "email"] } }, required: ["user"] } },
  {
    name: "deep nesting (6 levels)",
    schema: {
      type: "object",
      properties: { a: { type: "object", properties: { b: { type: "object", properties: { c: { type: "object", properties: { d: { type: "object", properties: { e: { type: "object", properties: { f: { type: "integer" } }, required: ["f"] } }, required: ["e"] } }, required: ["d"] } }, required: ["c"] } }, required: ["b"] } },
      required: ["a"],
    },
  },
  { name: "nested arrays", schema: { type: "array", items: { type: "array", items: { type: "integer", minimum: 0, maximum: 9 }, minItems: 1, maxItems: 3 }, minItems: 2, maxItems: 3 } },
  { name: "array of objects", schema: { type: "array", items: { type: "object", properties: { k: { type: "string", maxLength: 6 }, v: { type: "number" } }, required: ["k", "v"], additionalProperties: false }, minItems: 1, maxItems: 3 } },
  { name: "anyOf primitives", schema: { anyOf: [{ type: "integer" }, { type: "boolean" }] } },
  { name: "oneOf disjoint objects", schema: { oneOf: [{ type: "object", properties: { kind: { const: "circle" }, r: { type: "number" } }, required: ["kind", "r"], additionalProperties: false }, { type: "object", properties: { kind: { const: "square" }, side: { type: "number" } }, required: ["kind", "side"], additionalProperties: false }] } },
  { name: "allOf single", schema: { allOf: [{ type: "string", maxLength: 10 }] } },
  { name: "pattern digits", schema: { type: "string", pattern: "^[0-9]{5}$" } },
  { name: "pattern identifier", schema: { type: "string", pattern: "^[a-zA-Z_][a-zA-Z0-9_]{0,15}$" } },
  { name: "pattern alternation", schema: { type: "string", pattern: "^(yes|no|maybe)$" } },
  { name: "pattern phone", schema: { type: "string", pattern: "^\\(\\d{3}\\) \\d{3}-\\d{4}$" } },
  { name: "pattern unanchored", schema: { type: "string", pattern: "abc" } },
  { name: "format date", schema: { type: "string", format: "date" } },
  { name: "format time", schema: { type: "string", format: "time" } },
  { name: "format date-time", schema: { type: "string", format: "date-time" } },
  { name: "format uuid", schema: { type: "string", format: "uuid" } },
  {
    name: "recursive $ref list",
    schema: { $defs: { node: { type: "object", properties: { value: { type: "integer" }, next: { anyOf: [{ $ref: "#/$defs/node" }, { type: "null" }] } }, required: ["value", "next"], additionalProperties: false } }, $ref: "#/$defs/node" },
  },
  {
    name: "definitions tree",
    schema: { definitions: { tree: { type: "object", properties: { label: { type: "string", maxLength: 5 }, children: { type: "array", items: { $ref: "#/definitions/tree" }, maxItems: 2 } }, required: ["label", "children"] } }, $ref: "#/definitions/tree" },
  },
  { name: "any value", schema: {} },
  {
    name: "tool call",
    schema: {
      type: "object",
      properties: { name: { enum: ["get_weather", "search_scripture"] }, arguments: { type: "object", properties: { location: { type: "string", maxLength: 20 }, unit: { enum: ["celsius", "fahrenheit"] } }, required: ["location"], additionalProperties: false } },
      required: ["name", "arguments"],
      additionalProperties: false,
    },
  },
  {
    name: "moderate record",
    schema: {
      type: "object",
      properties: {
        name: { type: "string", maxLength: 24 },
        age: { type: "integer", minimum: 0, maximum: 150 },
        tags: { type: "array", items: { type: "string", maxLength: 10 }, maxItems: 3 },
        address: { type: "object", properties: { city: { type: "string", maxLength: 16 }, zip: { type: "string", pattern: "^[0-9]{5}$" } }, required: ["city"] },
        active: { type: "boolean" },
        role: { enum: ["admin", "user", "guest"] },
      },
      required: ["name", "age", "active", "role"],
      additionalProperties: false,
    },
  },
  { name: "annotations only", schema: { title: "T", description: "a string", type: "string", maxLength: 3, examples: ["abc"], $comment: "c" } },
];
