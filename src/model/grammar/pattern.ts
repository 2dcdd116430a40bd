/**
 * A JSON Schema `pattern` (ECMA-262 regular expression) → GBNF for the *JSON-encoded* string body.
 *
 * The subset: literals and escapes (`\d \w \s \D \W \S`, `\.` and the like, `\n \t \r`, `\uHHHH`), classes
 * `[…]`/`[^…]`, `.`, groups `( … )` and `(?: … )`, `|`, greedy `* + ? {m} {m,} {m,n}`, and `^` / `$` at the very
 * start / end. A pattern not anchored at both ends may have any characters around the match, as JSON Schema
 * says. Refused (GrammarError "unsupported-schema"): lookaround, backreferences, lazy quantifiers, anchors
 * elsewhere, named groups, `\b`, Unicode property escapes. Characters that JSON must escape (`"`, `\` and
 * controls) are generated as their escapes when written literally; inside classes and `.` they are left out.
 */
import { GrammarError } from "./errors.js";
import { MAX_NESTING, MAX_REPETITION } from "./limits.js";
import { complementRanges, normalizeRanges, type Range } from "./utf8.js";

const DIGIT: Range[] = [[0x30, 0x39]];
const WORD: Range[] = [[0x30, 0x39], [0x41, 0x5a], [0x5f, 0x5f], [0x61, 0x7a]];
const SPACE: Range[] = [[0x09, 0x0d], [0x20, 0x20], [0xa0, 0xa0], [0x1680, 0x1680], [0x2000, 0x200a], [0x2028, 0x2029], [0x202f, 0x202f], [0x205f, 0x205f], [0x3000, 0x3000], [0xfeff, 0xfeff]];
/** Characters a JSON string holds unescaped. */
const UNESCAPED: Range[] = complementRanges([[0, 0x1f], [0x22, 0x22], [0x5c, 0x5c], [0x7f, 0x7f]]);

function intersect(a: readonly Range[], b: readonly Range[]): Range[] {
  const out: Range[] = [];
  for (const [lo1, hi1] of normalizeRanges(a)) {
    for (const [lo2, hi2] of b) {
      const lo = Math.max(lo1, lo2);
      const hi = Math.min(hi1, hi2);
      if (lo <= hi) {
        out.push([lo, hi]);
      }
    }
  }
  return out;
}

function hex(cp: number): string {
  return cp <= 0xff ? `\\x${cp.toString(16).padStart(2, "0")}` : cp <= 0xffff ? `\\u${cp.toString(16).padStart(4, "0")}` : `\\U${cp.toString(16).padStart(8, "0")}`;
}

/** A GBNF class for ranges restricted to unescaped JSON characters ("" when empty). */
function classOf(ranges: readonly Range[]): string {
  const r = intersect(ranges, UNESCAPED);
  if (r.length === 0) {
    return "";
  }
  return "[" + r.map(([lo, hi]) => (lo === hi ? hex(lo) : `${hex(lo)}-${hex(hi)}`)).join("") + "]";
}

/** One literal character as it appears inside a JSON string. */
function literal(cp: number): string {
  const json = JSON.stringify(String.fromCodePoint(cp)).slice(1, -1);
  return '"' + Array.from(json, (c) => (c === '"' || c === "\\" ? "\\" + c : (c.codePointAt(0) ?? 0) < 0x20 ? hex(c.codePointAt(0) ?? 0) : c)).join("") + '"';
}

class PatternParser {
  #pos = 0;
  readonly #src: string;
  readonly #path: string;

  constructor(src: string, path: string) {
    this.#src = src;
    this.#path = path;
  }

  #fail(what: string): never {
    throw new GrammarError("unsupported-schema", `[grammar] schema at ${this.#path || "/"}: pattern ${JSON.stringify(this.#src.slice(0, 80))}: ${what} (at ${this.#pos})`);
  }

  #peek(): string | undefined {
    return this.#src[this.#pos];
  }

  #escapeClass(c: string): Range[] | undefined {
    switch (c) {
      case "d": return DIGIT;
      case "D": return complementRanges(DIGIT);
      case "w": return WORD;
      case "W": return complementRanges(WORD);
      case "s": return SPACE;
      case "S": return complementRanges(SPACE);
      default: return undefined;
    }
  }

  /** An escaped single character after the backslash. */
  #escapeChar(c: string): number {
    const simple: Record<string, number> = { n: 10, r: 13, t: 9, f: 12, v: 11, "0": 0 };
    if (c in simple) {
      return simple[c] ?? 0;
    }
    if (c === "u" || c === "x") {
      const n = c === "u" ? 4 : 2;
      const h = this.#src.slice(this.#pos, this.#pos + n);
      if (!new RegExp(`^[0-9a-fA-F]{${n}}$`).test(h)) {
        this.#fail(`bad \\${c} escape`);
      }
      this.#pos += n;
      return parseInt(h, 16);
    }
    if (/[A-Za-z0-9]/.test(c)) {
      this.#fail(`escape \\${c} is not supported`);
    }
    return c.codePointAt(0) ?? 0;
  }

  #class(): string {
    this.#pos++; // [
    let negated = false;
    if (this.#peek() === "^") {
      negated = true;
      this.#pos++;
    }
    const ranges: Range[] = [];
    let first = true;
    while (this.#peek() !== "]" || first) {
      first = false;
      const c = this.#peek();
      if (c === undefined) {
        this.#fail("unterminated class");
      }
      this.#pos += c.length;
      let lo: number;
      if (c === "\\") {
        const e = this.#peek() ?? "";
        this.#pos++;
        const cls = this.#escapeClass(e);
        if (cls !== undefined) {
          ranges.push(...cls);
          continue;
        }
        lo = this.#escapeChar(e);
      } else {
        const cp = this.#src.codePointAt(this.#pos - 1) ?? 0;
        if (cp > 0xffff) {
          this.#pos++;
        }
        lo = cp;
      }
      let hi = lo;
      if (this.#peek() === "-" && this.#src[this.#pos + 1] !== "]" && this.#src[this.#pos + 1] !== undefined) {
        this.#pos++;
        const d = this.#peek() ?? "";
        this.#pos++;
        hi = d === "\\" ? this.#escapeChar((this.#pos++, this.#src[this.#pos - 1] ?? "")) : (d.codePointAt(0) ?? 0);
        if (hi < lo) {
          this.#fail("class range out of order");
        }
      }
      ranges.push([lo, hi]);
    }
    this.#pos++;
    const r = classOf(negated ? complementRanges(ranges) : ranges);
    return r === "" ? this.#fail("class matches no character a JSON string holds unescaped") : r;
  }

  #atom(depth: number): string | undefined {
    const c = this.#peek();
    if (c === undefined || c === "|" || c === ")") {
      return undefined;
    }
    if (c === "(") {
      if (depth >= MAX_NESTING) {
        throw new GrammarError("limit", `[grammar] schema at ${this.#path || "/"}: pattern groups nest deeper than MAX_NESTING (${MAX_NESTING})`);
      }
      this.#pos++;
      if (this.#peek() === "?") {
        if (this.#src[this.#pos + 1] !== ":") {
          this.#fail("lookaround and named groups are not supported");
        }
        this.#pos += 2;
      }
      const inner = this.#alternation(depth + 1);
      if (this.#peek() !== ")") {
        this.#fail("expected ')'");
      }
      this.#pos++;
      return `(${inner})`;
    }
    if (c === "[") {
      return this.#class();
    }
    if (c === ".") {
      this.#pos++;
      return classOf(complementRanges([[10, 10], [13, 13], [0x2028, 0x2029]]));
    }
    if (c === "^" || c === "$") {
      this.#fail("anchors are supported only at the very start and end");
    }
    if (c === "*" || c === "+" || c === "?" || c === "{") {
      this.#fail(`nothing to repeat before '${c}'`);
    }
    if (c === "\\") {
      this.#pos++;
      const e = this.#peek() ?? "";
      this.#pos++;
      const cls = this.#escapeClass(e);
      return cls !== undefined ? classOf(cls) || this.#fail("class matches no character a JSON string holds unescaped") : literal(this.#escapeChar(e));
    }
    const cp = this.#src.codePointAt(this.#pos) ?? 0;
    this.#pos += cp > 0xffff ? 2 : 1;
    return literal(cp);
  }

  #quantifier(atom: string): string {
    const c = this.#peek();
    let q = "";
    if (c === "*" || c === "+" || c === "?") {
      this.#pos++;
      q = c;
    } else if (c === "{") {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(this.#src.slice(this.#pos));
      if (m === null) {
        return atom; // a literal "{" in ECMA-262's annex B; refuse it to stay simple
      }
      const lo = Number(m[1]);
      const hi = m[2] === undefined ? lo : m[3] === "" ? Number.POSITIVE_INFINITY : Number(m[3]);
      if (lo > MAX_REPETITION || (hi !== Number.POSITIVE_INFINITY && hi > MAX_REPETITION)) {
        throw new GrammarError("limit", `[grammar] schema at ${this.#path || "/"}: pattern repetition over MAX_REPETITION (${MAX_REPETITION})`);
      }
      if (hi < lo) {
        this.#fail("repetition {m,n} with n < m");
      }
      this.#pos += m[0].length;
      q = hi === Number.POSITIVE_INFINITY ? `{${lo},}` : lo === hi ? `{${lo}}` : `{${lo},${hi}}`;
    } else {
      return atom;
    }
    if (this.#peek() === "?") {
      this.#fail("lazy quantifiers are not supported");
    }
    const c2 = this.#peek();
    if (c2 === "*" || c2 === "+" || c2 === "{") {
      this.#fail("possessive or stacked quantifiers are not supported");
    }
    return `${atom}${q}`;
  }

  #sequence(depth: number): string {
    const items: string[] = [];
    for (;;) {
      if (this.#pos === this.#src.length - 1 && this.#peek() === "$" && depth === 0) {
        return items.join(" ");
      }
      const a = this.#atom(depth);
      if (a === undefined) {
        return items.join(" ");
      }
      items.push(this.#quantifier(a));
    }
  }

  #alternation(depth: number): string {
    const alts = [this.#sequence(depth)];
    while (this.#peek() === "|") {
      this.#pos++;
      alts.push(this.#sequence(depth));
    }
    return alts.map((a) => (a === "" ? '""' : a)).join(" | ");
  }

  parse(): string {
    const anchoredStart = this.#src.startsWith("^");
    if (anchoredStart) {
      this.#pos = 1;
    }
    const body = this.#alternation(0);
    let anchoredEnd = false;
    if (this.#peek() === "$" && this.#pos === this.#src.length - 1) {
      anchoredEnd = true;
      this.#pos++;
    }
    if (this.#pos !== this.#src.length) {
      this.#fail(`unexpected '${this.#peek() ?? ""}'`);
    }
    const any = "char*";
    return `${anchoredStart ? "" : any + " "}(${body})${anchoredEnd ? "" : " " + any}`;
  }
}

/**
 * GBNF for the body of a JSON string (between the quotes) whose decoded value matches the pattern. Uses the
 * `char` rule of the schema compiler for unanchored ends.
 *
 * @throws GrammarError "unsupported-schema" or "limit".
 */
export function patternToGbnf(pattern: string, path: string): string {
  return new PatternParser(pattern, path).parse();
}
