/**
 * JSON Schema → GBNF, then compiled like any grammar. What is supported (anything else is refused with
 * GrammarError "unsupported-schema" naming the keyword and where it is, never ignored; pure annotations such as
 * `title` and `description` are skipped):
 *
 * - `type` (one or a list), `enum`, `const`, `anyOf`, `oneOf` (as anyOf: branches that overlap are not made
 *   exclusive), `allOf` with one schema, local `$ref` (`#`, `#/$defs/…`, `#/definitions/…`, recursion allowed);
 * - objects: `properties` (emitted in the schema's order), `required`, `additionalProperties` (false; a schema
 *   for objects without `properties`; absent or true: only the declared properties are generated, which every
 *   validator accepts);
 * - arrays: `items`, `prefixItems`, `minItems`, `maxItems`;
 * - strings: `minLength`, `maxLength` (code points; escapes count as one), `pattern` (a regular-expression subset:
 *   pattern.ts), `format` date, time, date-time, uuid;
 * - numbers and integers: `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum` with integer bounds
 *   (exclusive ones on integers only). Integers have at most MAX_INTEGER_DIGITS digits.
 *
 * The text is compact JSON with an optional single space after `:` and `,` and inside brackets.
 */
import { GrammarError } from "./errors.js";
import { compileGbnf, type Grammar } from "./grammar.js";
import { MAX_INTEGER_DIGITS, MAX_SCHEMA_DEPTH, MAX_SCHEMA_NODES } from "./limits.js";
import { integerRange, numberRange } from "./numbers.js";
import { patternToGbnf } from "./pattern.js";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Schema = { readonly [key: string]: Json };

const ANNOTATIONS = new Set(["$schema", "$id", "$comment", "title", "description", "default", "examples", "deprecated", "readOnly", "writeOnly", "$defs", "definitions"]);
const SUPPORTED = new Set([
  "type", "enum", "const", "anyOf", "oneOf", "allOf", "$ref",
  "properties", "required", "additionalProperties",
  "items", "prefixItems", "minItems", "maxItems",
  "minLength", "maxLength", "pattern", "format",
  "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
]);
const TYPES = ["object", "array", "string", "number", "integer", "boolean", "null"] as const;

/** Escapes a string as a GBNF literal. */
export function gbnfLiteral(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0) ?? 0;
    if (ch === '"' || ch === "\\") {
      out += "\\" + ch;
    } else if (cp < 0x20 || cp === 0x7f) {
      out += "\\x" + cp.toString(16).padStart(2, "0");
    } else {
      out += ch;
    }
  }
  return out + '"';
}

const PRIMITIVES: Record<string, string> = {
  sp: `" "?`,
  char: `[^"\\\\\\x00-\\x1f\\x7f] | "\\\\" (["\\\\/bfnrt] | "u" ([0-9a-cA-CefEF] [0-9a-fA-F]{3} | [dD] [0-7] [0-9a-fA-F]{2}))`,
  string: `"\\"" char* "\\""`,
  integer: `"-"? ("0" | [1-9] [0-9]{0,${MAX_INTEGER_DIGITS - 1}})`,
  number: `integer ("." [0-9]{1,${MAX_INTEGER_DIGITS}})? ([eE] [-+]? [0-9]{1,3})?`,
  boolean: `"true" | "false"`,
  null: `"null"`,
  value: `object | array | string | number | boolean | null`,
  object: `"{" sp (string sp ":" sp value (sp "," sp string sp ":" sp value)*)? sp "}"`,
  array: `"[" sp (value (sp "," sp value)*)? sp "]"`,
  "date-part": `[0-9]{4} "-" (("0" [13578] | "1" [02]) "-" ("0" [1-9] | [12] [0-9] | "3" [01]) | ("0" [469] | "11") "-" ("0" [1-9] | [12] [0-9] | "30") | "02-" ("0" [1-9] | "1" [0-9] | "2" [0-8]))`,
  "time-part": `([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9] ":" [0-5] [0-9] ("." [0-9]{1,6})? ("Z" | [+-] ([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9])`,
};
const DEPENDS: Record<string, string[]> = {
  string: ["char"],
  number: ["integer"],
  value: ["object", "array", "string", "number", "boolean", "null"],
  object: ["sp", "string", "value"],
  array: ["sp", "value"],
};
const FORMATS: Record<string, string> = {
  date: `"\\"" date-part "\\""`,
  time: `"\\"" time-part "\\""`,
  "date-time": `"\\"" date-part "T" time-part "\\""`,
  uuid: `"\\"" [0-9a-f]{8} "-" [0-9a-f]{4} "-" [0-9a-f]{4} "-" [0-9a-f]{4} "-" [0-9a-f]{12} "\\""`,
};

function isObject(v: unknown): v is Schema {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

class SchemaCompiler {
  readonly #rules = new Map<string, string>();
  readonly #byBody = new Map<string, string>();
  readonly #refs = new Map<string, string>();
  readonly #root: Schema;
  #nodes = 0;

  constructor(root: Schema) {
    this.#root = root;
  }

  #fail(code: "unsupported-schema" | "bad-schema", path: string, message: string): never {
    throw new GrammarError(code, `[grammar] schema at ${path || "/"}: ${message}`);
  }

  #count(path: string, n = 1): void {
    this.#nodes += n;
    if (this.#nodes > MAX_SCHEMA_NODES) {
      throw new GrammarError("limit", `[grammar] schema at ${path || "/"}: more than MAX_SCHEMA_NODES (${MAX_SCHEMA_NODES}) schema nodes`);
    }
  }

  #primitive(name: string): string {
    if (!this.#rules.has(name)) {
      this.#rules.set(name, PRIMITIVES[name] ?? "");
      for (const d of DEPENDS[name] ?? []) {
        this.#primitive(d);
      }
    }
    return name;
  }

  /** A rule with this body (shared when an identical one exists). */
  #rule(hint: string, body: string): string {
    const known = this.#byBody.get(body);
    if (known !== undefined) {
      return known;
    }
    const base = hint.replace(/[^A-Za-z0-9-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 40) || "r";
    let name = base;
    for (let i = 1; this.#rules.has(name) || name in PRIMITIVES; i++) {
      name = `${base}-${i}`;
    }
    this.#rules.set(name, body);
    this.#byBody.set(body, name);
    return name;
  }

  #nonNegInt(s: Schema, key: string, path: string): number | undefined {
    const v = s[key];
    if (v === undefined) {
      return undefined;
    }
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
      this.#fail("bad-schema", path, `${key} must be a non-negative integer`);
    }
    return v;
  }

  /** A GBNF expression for the schema (usually a rule name). */
  visit(schema: Json, path: string, depth: number): string {
    if (depth > MAX_SCHEMA_DEPTH) {
      throw new GrammarError("limit", `[grammar] schema at ${path}: nested deeper than MAX_SCHEMA_DEPTH (${MAX_SCHEMA_DEPTH})`);
    }
    this.#count(path);
    if (schema === true) {
      return this.#primitive("value");
    }
    if (!isObject(schema)) {
      this.#fail(schema === false ? "unsupported-schema" : "bad-schema", path, schema === false ? "the schema false matches nothing" : "a schema must be an object or a boolean");
    }
    for (const key of Object.keys(schema)) {
      if (!SUPPORTED.has(key) && !ANNOTATIONS.has(key)) {
        this.#fail("unsupported-schema", path, `keyword '${key}' is not supported`);
      }
    }
    const s = schema;
    if (s.$ref !== undefined) {
      if (Object.keys(s).some((k) => SUPPORTED.has(k) && k !== "$ref")) {
        this.#fail("unsupported-schema", path, "$ref next to other keywords is not supported");
      }
      return this.#ref(s.$ref, path, depth);
    }
    if (s.const !== undefined) {
      return gbnfLiteral(JSON.stringify(s.const));
    }
    if (s.enum !== undefined) {
      if (!Array.isArray(s.enum) || s.enum.length === 0) {
        this.#fail("bad-schema", path, "enum must be a non-empty array");
      }
      this.#count(path, s.enum.length);
      return this.#rule(`${path}-enum`, s.enum.map((v) => gbnfLiteral(JSON.stringify(v))).join(" | "));
    }
    const branches = s.anyOf ?? s.oneOf;
    if (branches !== undefined) {
      if (s.anyOf !== undefined && s.oneOf !== undefined) {
        this.#fail("unsupported-schema", path, "anyOf and oneOf together are not supported");
      }
      if (!Array.isArray(branches) || branches.length === 0) {
        this.#fail("bad-schema", path, "anyOf/oneOf must be a non-empty array");
      }
      const own = Object.keys(s).filter((k) => SUPPORTED.has(k) && k !== "anyOf" && k !== "oneOf");
      if (own.length > 0) {
        this.#fail("unsupported-schema", path, `anyOf/oneOf next to '${own[0]}' is not supported`);
      }
      const alts = branches.map((b, i) => this.visit(b, `${path}/${s.anyOf !== undefined ? "anyOf" : "oneOf"}/${i}`, depth + 1));
      return this.#rule(`${path}-alt`, alts.join(" | "));
    }
    if (s.allOf !== undefined) {
      if (!Array.isArray(s.allOf) || s.allOf.length !== 1 || Object.keys(s).some((k) => SUPPORTED.has(k) && k !== "allOf")) {
        this.#fail("unsupported-schema", path, "allOf is supported only with a single schema and nothing beside it");
      }
      return this.visit(s.allOf[0] ?? true, `${path}/allOf/0`, depth + 1);
    }
    const types = this.#types(s, path);
    const alts = types.map((t) => this.#typed(t, s, path, depth));
    return alts.length === 1 ? (alts[0] as string) : this.#rule(`${path}-types`, alts.join(" | "));
  }

  #types(s: Schema, path: string): string[] {
    const t = s.type;
    if (t === undefined) {
      const has = (keys: string[]): boolean => keys.some((k) => s[k] !== undefined);
      if (has(["properties", "required", "additionalProperties"])) {
        return ["object"];
      }
      if (has(["items", "prefixItems", "minItems", "maxItems"])) {
        return ["array"];
      }
      if (has(["minLength", "maxLength", "pattern", "format"])) {
        return ["string"];
      }
      if (has(["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"])) {
        return ["number"];
      }
      return ["any"];
    }
    const list = Array.isArray(t) ? t : [t];
    if (list.length === 0) {
      this.#fail("bad-schema", path, "type must not be an empty list");
    }
    for (const x of list) {
      if (typeof x !== "string" || !(TYPES as readonly string[]).includes(x)) {
        this.#fail("bad-schema", path, `unknown type ${JSON.stringify(x)}`);
      }
    }
    // An integer is a number: "number" alone covers both.
    return list.includes("number") ? (list as string[]).filter((x) => x !== "integer") : (list as string[]);
  }

  #typed(t: string, s: Schema, path: string, depth: number): string {
    switch (t) {
      case "any":
        return this.#primitive("value");
      case "boolean":
      case "null":
        return this.#primitive(t);
      case "string":
        return this.#string(s, path);
      case "integer":
      case "number":
        return this.#number(t, s, path);
      case "array":
        return this.#array(s, path, depth);
      default:
        return this.#object(s, path, depth);
    }
  }

  #string(s: Schema, path: string): string {
    const min = this.#nonNegInt(s, "minLength", path) ?? 0;
    const max = this.#nonNegInt(s, "maxLength", path);
    if (max !== undefined && max < min) {
      this.#fail("bad-schema", path, "maxLength is below minLength");
    }
    if (s.format !== undefined) {
      const body = typeof s.format === "string" ? FORMATS[s.format] : undefined;
      if (body === undefined) {
        this.#fail("unsupported-schema", path, `format ${JSON.stringify(s.format)} is not supported (date, time, date-time, uuid are)`);
      }
      if (s.pattern !== undefined || s.minLength !== undefined || s.maxLength !== undefined) {
        this.#fail("unsupported-schema", path, "format together with pattern or lengths is not supported");
      }
      this.#primitive("date-part");
      this.#primitive("time-part");
      return this.#rule(`${s.format}`, body);
    }
    if (s.pattern !== undefined) {
      if (typeof s.pattern !== "string") {
        this.#fail("bad-schema", path, "pattern must be a string");
      }
      if (s.minLength !== undefined || s.maxLength !== undefined) {
        this.#fail("unsupported-schema", path, "pattern together with minLength/maxLength is not supported");
      }
      this.#primitive("char");
      return this.#rule(`${path}-pattern`, `"\\"" ${patternToGbnf(s.pattern, path)} "\\""`);
    }
    if (min === 0 && max === undefined) {
      return this.#primitive("string");
    }
    this.#primitive("char");
    const rep = max === undefined ? `{${min},}` : `{${min},${max}}`;
    return this.#rule(`${path}-string`, `"\\"" char${rep} "\\""`);
  }

  #bound(s: Schema, key: string, path: string): number | undefined {
    const v = s[key];
    if (v === undefined) {
      return undefined;
    }
    if (typeof v !== "number" || !Number.isFinite(v)) {
      this.#fail("bad-schema", path, `${key} must be a finite number`);
    }
    return v;
  }

  #number(t: string, s: Schema, path: string): string {
    let lo = this.#bound(s, "minimum", path);
    let hi = this.#bound(s, "maximum", path);
    const exLo = this.#bound(s, "exclusiveMinimum", path);
    const exHi = this.#bound(s, "exclusiveMaximum", path);
    if (lo === undefined && hi === undefined && exLo === undefined && exHi === undefined) {
      return this.#primitive(t);
    }
    const limit = Number.MAX_SAFE_INTEGER;
    const inf = Number.POSITIVE_INFINITY;
    if (t === "integer") {
      lo = Math.max(lo === undefined ? -inf : Math.ceil(lo), exLo === undefined ? -inf : Math.floor(exLo) + 1);
      hi = Math.min(hi === undefined ? inf : Math.floor(hi), exHi === undefined ? inf : Math.ceil(exHi) - 1);
    } else {
      if (exLo !== undefined || exHi !== undefined) {
        this.#fail("unsupported-schema", path, "exclusiveMinimum/exclusiveMaximum on numbers are not supported (on integers they are)");
      }
      if ((lo !== undefined && !Number.isInteger(lo)) || (hi !== undefined && !Number.isInteger(hi))) {
        this.#fail("unsupported-schema", path, "number bounds must be integers");
      }
    }
    if ((Number.isFinite(lo) && Math.abs(lo ?? 0) > limit) || (Number.isFinite(hi) && Math.abs(hi ?? 0) > limit)) {
      this.#fail("unsupported-schema", path, "bounds beyond Number.MAX_SAFE_INTEGER are not supported");
    }
    const a = lo ?? Number.NEGATIVE_INFINITY;
    const b = hi ?? Number.POSITIVE_INFINITY;
    if (a > b) {
      this.#fail("bad-schema", path, "the bounds leave no value");
    }
    return this.#rule(`${path}-${t}`, t === "integer" ? integerRange(a, b) : numberRange(a, b));
  }

  #array(s: Schema, path: string, depth: number): string {
    const min = this.#nonNegInt(s, "minItems", path) ?? 0;
    const max = this.#nonNegInt(s, "maxItems", path);
    if (max !== undefined && max < min) {
      this.#fail("bad-schema", path, "maxItems is below minItems");
    }
    this.#primitive("sp");
    const prefix = s.prefixItems === undefined ? [] : s.prefixItems;
    if (!Array.isArray(prefix)) {
      this.#fail("bad-schema", path, "prefixItems must be an array");
    }
    const fixed = prefix.map((p, i) => this.visit(p, `${path}/prefixItems/${i}`, depth + 1));
    const items = s.items === undefined ? true : s.items;
    if (Array.isArray(items)) {
      this.#fail("unsupported-schema", path, "items as an array (draft 4 tuples) is not supported; use prefixItems");
    }
    const item = items === false ? undefined : this.visit(items, `${path}/items`, depth + 1);
    // Element k (0-based) is fixed[k] when k < fixed.length, else item.
    const at = (k: number): string | undefined => fixed[k] ?? item;
    const lo = min;
    const hi = max ?? (item === undefined ? fixed.length : Number.POSITIVE_INFINITY);
    if (lo > fixed.length && item === undefined) {
      this.#fail("bad-schema", path, "minItems asks for more items than prefixItems allows");
    }
    const sep = `sp "," sp`;
    const openEnded = hi === Number.POSITIVE_INFINITY;
    const last = openEnded ? Math.max(lo, fixed.length, 1) : hi;
    const first = at(0);
    if (last === 0 || first === undefined) {
      return this.#rule(`${path}-array`, `"[" sp "]"`);
    }
    const rest = this.#restAfterFirst(path, lo, last, openEnded, item, at, sep);
    const body = `"[" sp ${first}${rest === "" ? "" : " " + rest} sp "]"`;
    return this.#rule(`${path}-array`, lo === 0 ? `"[" sp "]" | ${body}` : body);
  }

  /** The elements after the first: element k for k in [1, last), then the open-ended tail. */
  #restAfterFirst(path: string, lo: number, last: number, openEnded: boolean, item: string | undefined, at: (k: number) => string | undefined, sep: string): string {
    let tail = openEnded && item !== undefined ? this.#rule(`${path}-more`, `(${sep} ${item})*`) : "";
    for (let k = last - 1; k >= 1; k--) {
      const body = `${sep} ${at(k) as string}${tail === "" ? "" : " " + tail}`;
      tail = this.#rule(`${path}-items`, k >= lo ? `(${body})?` : body);
    }
    return tail;
  }

  #object(s: Schema, path: string, depth: number): string {
    this.#primitive("sp");
    const props = s.properties ?? {};
    if (!isObject(props)) {
      this.#fail("bad-schema", path, "properties must be an object");
    }
    const required = s.required ?? [];
    if (!Array.isArray(required) || required.some((r) => typeof r !== "string")) {
      this.#fail("bad-schema", path, "required must be an array of strings");
    }
    const names = Object.keys(props);
    this.#count(path, names.length);
    for (const r of required as string[]) {
      if (!names.includes(r)) {
        this.#fail("unsupported-schema", path, `required property ${JSON.stringify(r)} is not declared in properties`);
      }
    }
    const extra = s.additionalProperties;
    if (names.length === 0) {
      if (extra === false) {
        return this.#rule(`${path}-empty`, `"{" sp "}"`);
      }
      const value = extra === undefined || extra === true ? this.#primitive("value") : this.visit(extra, `${path}/additionalProperties`, depth + 1);
      this.#primitive("string");
      const kv = `string sp ":" sp ${value}`;
      return this.#rule(`${path}-map`, `"{" sp (${kv} (sp "," sp ${kv})*)? sp "}"`);
    }
    if (extra !== undefined && typeof extra !== "boolean") {
      this.#fail("unsupported-schema", path, "additionalProperties as a schema next to properties is not supported");
    }
    const kvs = names.map((n) => `${gbnfLiteral(JSON.stringify(n))} sp ":" sp ${this.visit(props[n] ?? true, `${path}/properties/${n}`, depth + 1)}`);
    const req = names.map((n) => (required as string[]).includes(n));
    // rest(i, first): properties i.. when `first` says none was written yet (so no comma before the next).
    const memo = new Map<string, string>();
    const rest = (i: number, first: boolean): string => {
      const key = `${i}:${first}`;
      const known = memo.get(key);
      if (known !== undefined) {
        return known;
      }
      let out: string;
      if (i === names.length) {
        out = "";
      } else {
        const lead = first ? "" : `sp "," sp `;
        const next = rest(i + 1, false);
        const take = `${lead}${kvs[i] as string}${next === "" ? "" : " " + next}`;
        if (req[i] === true) {
          out = this.#rule(`${path}-kv`, take);
        } else {
          const skip = rest(i + 1, first);
          out = this.#rule(`${path}-kv`, skip === "" ? `(${take})?` : `${take} | ${skip}`);
        }
      }
      memo.set(key, out);
      return out;
    };
    const body = rest(0, true);
    return this.#rule(`${path}-object`, `"{" sp ${body === "" ? "" : body + " "}sp "}"`);
  }

  #ref(ref: Json, path: string, depth: number): string {
    if (typeof ref !== "string") {
      this.#fail("bad-schema", path, "$ref must be a string");
    }
    const known = this.#refs.get(ref);
    if (known !== undefined) {
      return known;
    }
    let target: Json | undefined = this.#root;
    if (ref !== "#") {
      const m = /^#\/(\$defs|definitions)\/([^/]+)$/.exec(ref);
      const defs = m === null ? undefined : this.#root[m[1] ?? ""];
      target = m !== null && isObject(defs) ? (defs[decodeURIComponent((m[2] ?? "").replace(/~1/g, "/").replace(/~0/g, "~"))] as Json | undefined) : undefined;
      if (target === undefined) {
        this.#fail("unsupported-schema", path, `$ref ${JSON.stringify(ref)} is not a local #/$defs/… or #/definitions/… reference that exists`);
      }
    }
    // Name the rule before visiting, so a recursive reference finds it.
    const name = this.#rule(`ref-${ref}`, `__pending_${this.#refs.size}__`);
    this.#refs.set(ref, name);
    const body = this.visit(target, ref.slice(1) || "/", depth + 1);
    this.#rules.set(name, body);
    return name;
  }

  text(rootExpr: string): string {
    const lines = [`root ::= ${rootExpr}`];
    for (const [name, body] of this.#rules) {
      lines.push(`${name} ::= ${body}`);
    }
    return lines.join("\n") + "\n";
  }
}

/**
 * The GBNF text for a JSON Schema.
 *
 * @throws GrammarError "unsupported-schema", "bad-schema" or "limit".
 */
export function jsonSchemaToGbnf(schema: unknown): string {
  if (schema !== true && !isObject(schema)) {
    throw new GrammarError("bad-schema", "[grammar] a JSON Schema must be an object or true");
  }
  const root = schema === true ? {} : schema;
  const c = new SchemaCompiler(root);
  return c.text(c.visit(root, "", 0));
}

/**
 * Compiles a JSON Schema into a grammar whose sentences are JSON texts the schema accepts.
 *
 * @throws GrammarError "unsupported-schema", "bad-schema" or "limit".
 */
export function compileJsonSchema(schema: unknown): Grammar {
  return compileGbnf(jsonSchemaToGbnf(schema));
}
