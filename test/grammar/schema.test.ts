/**
 * The JSON Schema compiler: llama.cpp's json-schema integration cases (strings accepted or rejected as there),
 * agreement with ajv on sample documents for every schema of the suite, and refusals: unsupported keywords
 * (never silently ignored), malformed schemas and hostile sizes, each a typed GrammarError.
 */
import { describe, expect, it } from "vitest";
import { compileJsonSchema, GrammarError, MAX_SCHEMA_DEPTH, MAX_SCHEMA_NODES } from "../../src/model/grammar/index.js";
import { SUITE } from "./schemas.js";
import { createAjv } from "./validate.js";

function table(schema: Record<string, unknown>, pass: string[], fail: string[]): void {
  it(`should decide like llama.cpp for ${JSON.stringify(schema)}`, () => {
    const g = compileJsonSchema(schema);
    for (const s of pass) {
      expect(g.accepts(s), s).toBe(true);
    }
    for (const s of fail) {
      expect(g.accepts(s), s).toBe(false);
    }
  });
}

describe("schema compiler: llama.cpp's cases", () => {
  table({ type: "integer", minimum: 0 }, ["0", "10", "12", "10000"], ["-1", "-10", "-10000", "-100000000000000000000000000000000", "100000000000000000000000000000000", "00", "01", "-0"]);
  table({ type: "integer", minimum: 2 }, ["2", "3", "4", "10", "20", "1234567890000000"], ["0", "1", "-1", "-100", "01", "02", "12345678900000000"]);
  table({ type: "integer", minimum: 456 }, ["456", "4560", "457", "460", "500"], ["455", "356", "50", "050", "-1", "-456"]);
  table({ type: "integer", minimum: -123 }, ["-123", "-122", "-11", "-1", "0", "1", "123", "1234", "2345"], ["-1234", "-124"]);
  table({ type: "integer", maximum: 9999 }, ["-99999", "0", "9999"], ["10000", "99991"]);
  table({ type: "integer", maximum: -9999 }, ["-10000", "-9999"], ["-9998", "0", "9999"]);
  table({ type: "integer", minimum: 5, maximum: 30 }, ["5", "10", "30"], ["05", "4", "-1", "31", "123", "0123"]);
  table({ type: "integer", exclusiveMinimum: 0, maximum: 900719925474091 }, ["1", "2", "10", "900719925474090", "900719925474091"], ["0", "01", "900719925474092", "9007199254740910"]);
  table({ type: "integer", minimum: -1, maximum: 1 }, ["-1", "0", "1"], ["-11", "-10", "-2", "2", "10", "11"]);
  table({ type: "integer", minimum: -123, maximum: 42 }, ["-123", "-122", "-13", "-11", "-2", "-1", "0", "1", "5", "10", "39", "40", "42"], ["-0123", "-124", "-1123", "-200", "43", "123", "0123"]);
  table({ type: "integer", exclusiveMinimum: 0, exclusiveMaximum: 10000 }, ["1", "9999"], ["0", "01", "10000", "99999"]);
  table({ type: "string" }, ['"foo"', '"bar"', '""'], ["{}", '"foo": "bar"']);
  table({ type: "string", minLength: 3 }, ['"foo"', '"bar"', '"foobar"'], ['""', '"f"', '"fo"']);
  table({ type: "string", minLength: 1, maxLength: 4 }, ['"foo"', '"bar"', '"f"', '"barf"'], ['""', '"barfo"', '"foobar"']);
  table({ type: "boolean" }, ["true", "false"], ['""', '"true"', "True", "FALSE"]);
  table({ type: "integer" }, ["0", "12345", "1234567890123456".slice(0, 15)], ["", "01", "007", "12345678901234567  "]);
  table({ const: "foo" }, ['"foo"'], ["foo", '"bar"']);
  table({ const: true }, ["true"], ["", "foo", '"true"']);
  table({ enum: ["red", "amber", "green", null, 42, ["foo"]] }, ['"red"', "null", "42", '["foo"]'], ["", "420", "true", "foo"]);
  table({ pattern: "^[a-zA-Z0-9_-]*$" }, ['""', '"He_llo-12"'], ['"!"', '"Hello World"']);
  table({ pattern: "^a\\^\\$\\.\\[\\]\\(\\)\\|\\{\\}\\*\\+\\?b$" }, ['"a^$.[]()|{}*+?b"'], ['"ab"']);
  table({ type: ["array", "null"], items: { type: "string" } }, ["null", "[]", '["123"]', '["foo", "bar"]'], ["", "[123]", '"foo"', '["foo", 42]']);
  table({ items: { type: ["number", "integer"] }, minItems: 3, maxItems: 5 }, ["[1, 2, 3]", "[1, 2, 3, 4]", "[1, 2, 3, 4, 5]"], ["[1, 2]", "[1, 2, 3, 4, 5, 6]", "1"]);
  table({ type: "object", properties: { number: { type: "number" }, street_name: { type: "string" }, street_type: { enum: ["Street", "Avenue", "Boulevard"] } } }, ['{ "number": 1600, "street_name": "Pennsylvania", "street_type":"Avenue"}', '{ "street_name": "Pennsylvania" }', "{}"], ['{ "number": "1600" }', '{ "street_type": "Avenue", "number": 1600 }']);
  table({}, ["{}", '{"foo": "bar"}', "[]", "null", '""', "true"], [""]);
});

describe("schema compiler: the suite against ajv", () => {
  const ajv = createAjv();
  const samples = ["{}", "[]", '""', '"abc"', "0", "-7", "3.5", "true", "null", '{"a": 1}', '[1, 2, 3]', '"2024-02-29"', '"12345"', '{"name": "x", "age": 3}'];
  for (const { name, schema } of SUITE) {
    it(`should accept only what ajv accepts among sample documents: ${name}`, () => {
      const g = compileJsonSchema(schema);
      const validate = ajv.compile(schema);
      for (const s of samples) {
        // The grammar may be narrower than the schema (fixed property order, bounded digits), never wider.
        if (g.accepts(s)) {
          expect(validate(JSON.parse(s)), `${s} accepted by the grammar`).toBe(true);
        }
      }
    });
  }
});

function refuses(schema: unknown, code: string, message?: RegExp): void {
  let caught: unknown;
  try {
    compileJsonSchema(schema);
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(GrammarError);
  expect((caught as GrammarError).code).toBe(code);
  if (message !== undefined) {
    expect((caught as GrammarError).message).toMatch(message);
  }
}

describe("schema compiler: refusals", () => {
  it("should refuse unsupported keywords instead of ignoring them, naming keyword and place", () => {
    refuses({ type: "object", properties: { a: { type: "string", contentEncoding: "base64" } } }, "unsupported-schema", /\/properties\/a: keyword 'contentEncoding'/);
    refuses({ type: "object", patternProperties: { "^x": {} } }, "unsupported-schema", /patternProperties/);
    refuses({ type: "object", minProperties: 1 }, "unsupported-schema", /minProperties/);
    refuses({ type: "number", multipleOf: 2 }, "unsupported-schema", /multipleOf/);
    refuses({ not: { type: "string" } }, "unsupported-schema", /'not'/);
    refuses({ if: {}, then: {} }, "unsupported-schema");
    refuses({ type: "array", uniqueItems: true }, "unsupported-schema");
    refuses({ type: "string", format: "email" }, "unsupported-schema", /format "email"/);
    refuses({ type: "string", pattern: "(?=a)b" }, "unsupported-schema", /lookaround/);
    refuses({ type: "string", pattern: "(a)\\1" }, "unsupported-schema");
    refuses({ type: "string", pattern: "a+?" }, "unsupported-schema", /lazy/);
    refuses({ type: "number", minimum: 0.5 }, "unsupported-schema", /integers/);
    refuses({ $ref: "https://example.com/s.json" }, "unsupported-schema", /\$ref/);
    refuses({ allOf: [{ type: "string" }, { maxLength: 3 }] }, "unsupported-schema", /allOf/);
    refuses(false, "bad-schema");
  });

  it("should refuse malformed schemas", () => {
    refuses({ type: "strin" }, "bad-schema", /unknown type/);
    refuses({ enum: [] }, "bad-schema");
    refuses({ type: "string", minLength: -1 }, "bad-schema");
    refuses({ type: "string", minLength: 4, maxLength: 2 }, "bad-schema");
    refuses({ type: "integer", minimum: 5, maximum: 1 }, "bad-schema");
    refuses({ type: "object", required: "a" }, "bad-schema");
    refuses("not a schema", "bad-schema");
  });

  it("should stop hostile schemas at named limits", () => {
    let deep: Record<string, unknown> = { type: "string" };
    for (let i = 0; i <= MAX_SCHEMA_DEPTH; i++) {
      deep = { type: "array", items: deep };
    }
    refuses(deep, "limit", /MAX_SCHEMA_DEPTH/);
    refuses({ enum: Array.from({ length: MAX_SCHEMA_NODES + 1 }, (_, i) => i) }, "limit", /MAX_SCHEMA_NODES/);
    refuses({ type: "string", pattern: "^" + "(".repeat(100) + "a" + ")".repeat(100) + "$" }, "limit");
    refuses({ type: "string", pattern: "a{99999}" }, "limit");
  });
});
