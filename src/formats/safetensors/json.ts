/**
 * A strict JSON parser (RFC 8259) for hostile headers and config files. Unlike `JSON.parse` it rejects
 * duplicate object keys (JSON.parse silently keeps the last one, so two parsers could disagree on which tensor
 * a name means), bounds nesting depth, keeps numbers as their source text (so a u64 offset is never silently
 * rounded to a double) and builds objects as Maps (no `__proto__` surprises).
 */
import { FormatError } from "../../core/errors.js";

/** A JSON number kept as its source text; convert it with `value` or `jsonSafeInteger`. */
export class JsonNumber {
  /** @param text the number exactly as written, e.g. `-1.5e3` */
  constructor(readonly text: string) {}

  /** The number as a double (rounded like `Number(text)`). */
  get value(): number {
    return Number(this.text);
  }
}

/** A JSON object: keys in source order, each unique. */
export type JsonObject = ReadonlyMap<string, JsonValue>;

/** Any JSON value. Arrays are plain arrays, objects are Maps, numbers are `JsonNumber`. */
export type JsonValue = null | boolean | string | JsonNumber | readonly JsonValue[] | JsonObject;

/** Options of `parseJson`. */
export interface JsonParseOptions {
  /** Deepest nesting of arrays and objects; the top-level value is depth 1. */
  readonly maxDepth: number;
  /** Prefix for error messages, e.g. `safetensors`. */
  readonly label: string;
}

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const ESCAPES: Record<string, string> = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };

class Parser {
  pos = 0;

  constructor(
    readonly text: string,
    readonly opts: JsonParseOptions,
  ) {}

  fail(what: string): never {
    throw new FormatError("bad-value", `[${this.opts.label}] invalid JSON at character ${this.pos}: ${what}`);
  }

  skipSpace(): void {
    const t = this.text;
    for (;;) {
      const c = t.charCodeAt(this.pos);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
        this.pos++;
      } else {
        return;
      }
    }
  }

  value(depth: number): JsonValue {
    this.skipSpace();
    const c = this.text[this.pos];
    if (c === "{" || c === "[") {
      if (depth > this.opts.maxDepth) {
        throw new FormatError("limit", `[${this.opts.label}] JSON nests deeper than ${this.opts.maxDepth} levels`);
      }
      return c === "{" ? this.object(depth) : this.array(depth);
    }
    if (c === '"') {
      return this.string();
    }
    for (const [word, v] of [["true", true], ["false", false], ["null", null]] as const) {
      if (this.text.startsWith(word, this.pos)) {
        this.pos += word.length;
        return v;
      }
    }
    NUMBER.lastIndex = this.pos;
    const m = NUMBER.exec(this.text);
    if (m === null) {
      this.fail(c === undefined ? "unexpected end" : `unexpected ${JSON.stringify(c)}`);
    }
    this.pos += m[0].length;
    return new JsonNumber(m[0]);
  }

  object(depth: number): JsonObject {
    const out = new Map<string, JsonValue>();
    this.pos++;
    this.skipSpace();
    if (this.text[this.pos] === "}") {
      this.pos++;
      return out;
    }
    for (;;) {
      this.skipSpace();
      if (this.text[this.pos] !== '"') {
        this.fail("expected a string key");
      }
      const key = this.string();
      if (out.has(key)) {
        throw new FormatError("duplicate", `[${this.opts.label}] duplicate JSON key ${JSON.stringify(key)}`);
      }
      this.skipSpace();
      if (this.text[this.pos] !== ":") {
        this.fail("expected ':'");
      }
      this.pos++;
      out.set(key, this.value(depth + 1));
      this.skipSpace();
      const sep = this.text[this.pos++];
      if (sep === "}") {
        return out;
      }
      if (sep !== ",") {
        this.pos--;
        this.fail("expected ',' or '}'");
      }
    }
  }

  array(depth: number): JsonValue[] {
    const out: JsonValue[] = [];
    this.pos++;
    this.skipSpace();
    if (this.text[this.pos] === "]") {
      this.pos++;
      return out;
    }
    for (;;) {
      out.push(this.value(depth + 1));
      this.skipSpace();
      const sep = this.text[this.pos++];
      if (sep === "]") {
        return out;
      }
      if (sep !== ",") {
        this.pos--;
        this.fail("expected ',' or ']'");
      }
    }
  }

  string(): string {
    const t = this.text;
    let i = this.pos + 1;
    let out = "";
    let from = i;
    for (;;) {
      const c = t.charCodeAt(i);
      if (Number.isNaN(c)) {
        this.pos = i;
        this.fail("unterminated string");
      }
      if (c === 0x22) {
        this.pos = i + 1;
        return out + t.slice(from, i);
      }
      if (c < 0x20) {
        this.pos = i;
        this.fail("control character in string");
      }
      if (c !== 0x5c) {
        i++;
        continue;
      }
      out += t.slice(from, i);
      const e = t[i + 1] ?? "";
      if (e === "u") {
        const hex = t.slice(i + 2, i + 6);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) {
          this.pos = i;
          this.fail("bad \\u escape");
        }
        out += String.fromCharCode(parseInt(hex, 16));
        i += 6;
      } else {
        const plain = ESCAPES[e];
        if (plain === undefined) {
          this.pos = i;
          this.fail("bad escape");
        }
        out += plain;
        i += 2;
      }
      from = i;
    }
  }
}

/**
 * Parses one JSON document (surrounding whitespace allowed). Throws FormatError: `bad-value` for syntax errors,
 * `duplicate` for a repeated key in one object, `limit` for nesting deeper than `maxDepth`.
 */
export function parseJson(text: string, opts: JsonParseOptions): JsonValue {
  const p = new Parser(text, opts);
  const v = p.value(1);
  p.skipSpace();
  if (p.pos !== text.length) {
    p.fail("trailing characters after the value");
  }
  return v;
}

/** True for a JSON object (a Map). */
export function isJsonObject(v: JsonValue | undefined): v is JsonObject {
  return v instanceof Map;
}

/**
 * The value of a JSON number written as a non-negative integer without fraction or exponent, or undefined when
 * `v` is not one or exceeds `Number.MAX_SAFE_INTEGER` (a u64 like 2^60 cannot be held exactly by a double).
 */
export function jsonSafeInteger(v: JsonValue | undefined): number | undefined {
  if (!(v instanceof JsonNumber) || !/^(?:0|[1-9][0-9]{0,15})$/.test(v.text)) {
    return undefined;
  }
  const n = Number(v.text);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** A short description of a JSON value's kind for error messages (`string`, `number 1.5`, `object` …). */
export function describeJson(v: JsonValue | undefined): string {
  if (v === undefined) {
    return "missing";
  }
  if (v instanceof JsonNumber) {
    return `number ${v.text.length > 24 ? `${v.text.slice(0, 24)}…` : v.text}`;
  }
  if (typeof v === "string") {
    return `string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  }
  return v === null ? "null" : Array.isArray(v) ? "array" : isJsonObject(v) ? "object" : String(v);
}
