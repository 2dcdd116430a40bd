/**
 * GBNF (llama.cpp's grammar format, as node-llama-cpp writes it too) → AST.
 *
 * Syntax: `name ::= alternatives`; rule names of letters, digits and `-`; literals `"…"`; classes `[…]` / `[^…]`
 * with ranges; `.` (any character); groups `( … )`; `|`; postfix `*`, `+`, `?`, `{m}`, `{m,}`, `{m,n}`; comments
 * from `#` to the end of the line; escapes `\n \r \t \\ \" \[ \] \- \xHH \uHHHH \UHHHHHHHH`. As in llama.cpp a
 * rule ends at a newline unless the newline is inside parentheses or right after `::=` or `|`.
 *
 * Errors are GrammarError: "syntax" with line and column, "limit" for the bounds in limits.ts (length, nesting,
 * repetition). References are checked when the grammar is lowered (lower.ts).
 */
import type { Expr, GrammarAst } from "./ast.js";
import { GrammarError } from "./errors.js";
import { MAX_GRAMMAR_LENGTH, MAX_NESTING, MAX_REPETITION, MAX_RULES } from "./limits.js";
import { MAX_CODE_POINT, type Range } from "./utf8.js";

const SIMPLE_ESCAPES: Record<string, number> = { n: 10, r: 13, t: 9, "\\": 92, '"': 34, "[": 91, "]": 93, "-": 45, "/": 47 };

function isWordChar(c: string | undefined): boolean {
  return c !== undefined && /[A-Za-z0-9-]/.test(c);
}

class Parser {
  #pos = 0;
  readonly #text: string;

  constructor(text: string) {
    this.#text = text;
  }

  #where(at = this.#pos): string {
    const before = this.#text.slice(0, at);
    const line = before.split("\n").length;
    const col = at - before.lastIndexOf("\n");
    return `line ${line}, column ${col}`;
  }

  #fail(message: string, at = this.#pos): never {
    throw new GrammarError("syntax", `[grammar] ${message} at ${this.#where(at)}`);
  }

  #line(): number {
    return this.#text.slice(0, this.#pos).split("\n").length;
  }

  #peek(offset = 0): string | undefined {
    return this.#text[this.#pos + offset];
  }

  /** Skips spaces, tabs and comments, and newlines when `newlines` is true. */
  #space(newlines: boolean): void {
    for (;;) {
      const c = this.#peek();
      if (c === " " || c === "\t" || ((c === "\n" || c === "\r") && newlines)) {
        this.#pos++;
      } else if (c === "#") {
        while (this.#pos < this.#text.length && this.#peek() !== "\n") {
          this.#pos++;
        }
      } else {
        return;
      }
    }
  }

  #name(): string {
    const start = this.#pos;
    while (isWordChar(this.#peek())) {
      this.#pos++;
    }
    if (start === this.#pos) {
      this.#fail(`expected a rule name, found ${JSON.stringify(this.#peek() ?? "end of input")}`);
    }
    return this.#text.slice(start, this.#pos);
  }

  #hex(digits: number): number {
    const s = this.#text.slice(this.#pos, this.#pos + digits);
    if (s.length !== digits || !/^[0-9a-fA-F]+$/.test(s)) {
      this.#fail(`expected ${digits} hex digits`);
    }
    this.#pos += digits;
    return parseInt(s, 16);
  }

  /** One character of a literal or class, escapes decoded, as a code point. */
  #char(): number {
    const c = this.#text.codePointAt(this.#pos);
    if (c === undefined) {
      this.#fail("unexpected end of input");
    }
    if (c !== 0x5c) {
      this.#pos += c > 0xffff ? 2 : 1;
      return c;
    }
    this.#pos++;
    const e = this.#peek();
    this.#pos++;
    let cp: number;
    if (e === "x") {
      cp = this.#hex(2);
    } else if (e === "u") {
      cp = this.#hex(4);
    } else if (e === "U") {
      cp = this.#hex(8);
    } else if (e !== undefined && e in SIMPLE_ESCAPES) {
      cp = SIMPLE_ESCAPES[e] ?? 0;
    } else {
      this.#fail(`unknown escape \\${e ?? ""}`, this.#pos - 2);
    }
    if (cp > MAX_CODE_POINT || (cp >= 0xd800 && cp <= 0xdfff)) {
      this.#fail(`escape \\${e} names U+${cp.toString(16).toUpperCase()}, which is not a Unicode scalar value`);
    }
    return cp;
  }

  #number(): number {
    const start = this.#pos;
    while (/[0-9]/.test(this.#peek() ?? "")) {
      this.#pos++;
    }
    if (start === this.#pos) {
      this.#fail("expected a number");
    }
    const s = this.#text.slice(start, this.#pos);
    const n = s.length > 6 ? Number.POSITIVE_INFINITY : Number(s);
    if (n > MAX_REPETITION) {
      throw new GrammarError("limit", `[grammar] repetition bound ${s.slice(0, 12)} exceeds MAX_REPETITION (${MAX_REPETITION}) at ${this.#where(start)}`);
    }
    return n;
  }

  #literal(): Expr {
    this.#pos++; // opening quote
    const cps: number[] = [];
    while (this.#peek() !== '"') {
      if (this.#pos >= this.#text.length || this.#peek() === "\n") {
        this.#fail("unterminated string literal");
      }
      cps.push(this.#char());
    }
    this.#pos++;
    return { kind: "literal", codePoints: cps };
  }

  #class(): Expr {
    this.#pos++; // [
    let negated = false;
    if (this.#peek() === "^") {
      negated = true;
      this.#pos++;
    }
    const ranges: Range[] = [];
    while (this.#peek() !== "]") {
      if (this.#pos >= this.#text.length) {
        this.#fail("unterminated character class");
      }
      const lo = this.#char();
      let hi = lo;
      if (this.#peek() === "-" && this.#peek(1) !== "]" && this.#peek(1) !== undefined) {
        this.#pos++;
        hi = this.#char();
        if (hi < lo) {
          this.#fail("character range is out of order");
        }
      }
      ranges.push([lo, hi]);
    }
    this.#pos++;
    return { kind: "chars", ranges, negated };
  }

  #postfix(item: Expr): Expr {
    for (;;) {
      const c = this.#peek();
      if (c === "*") {
        item = { kind: "repeat", item, min: 0, max: Number.POSITIVE_INFINITY };
      } else if (c === "+") {
        item = { kind: "repeat", item, min: 1, max: Number.POSITIVE_INFINITY };
      } else if (c === "?") {
        item = { kind: "repeat", item, min: 0, max: 1 };
      } else if (c === "{") {
        this.#pos++;
        this.#space(false);
        const min = this.#number();
        this.#space(false);
        let max = min;
        if (this.#peek() === ",") {
          this.#pos++;
          this.#space(false);
          max = this.#peek() === "}" ? Number.POSITIVE_INFINITY : this.#number();
          this.#space(false);
        }
        if (this.#peek() !== "}") {
          this.#fail("expected '}' to close a repetition");
        }
        if (max < min) {
          this.#fail(`repetition {${min},${max}} has max < min`);
        }
        this.#pos++;
        item = { kind: "repeat", item, min, max };
        continue;
      } else {
        return item;
      }
      this.#pos++;
    }
  }

  #sequence(depth: number): Expr {
    const items: Expr[] = [];
    for (;;) {
      this.#space(depth > 0);
      const c = this.#peek();
      let item: Expr;
      if (c === '"') {
        item = this.#literal();
      } else if (c === "[") {
        item = this.#class();
      } else if (c === ".") {
        this.#pos++;
        item = { kind: "chars", ranges: [], negated: true };
      } else if (c === "(") {
        if (depth + 1 > MAX_NESTING) {
          throw new GrammarError("limit", `[grammar] parentheses nest deeper than MAX_NESTING (${MAX_NESTING}) at ${this.#where()}`);
        }
        this.#pos++;
        item = this.#alternatives(depth + 1);
        this.#space(true);
        if (this.#peek() !== ")") {
          this.#fail("expected ')'");
        }
        this.#pos++;
      } else if (isWordChar(c)) {
        const start = this.#pos;
        const line = this.#line();
        const name = this.#name();
        // A name followed by ::= starts the next rule: this sequence ended at the previous newline.
        const save = this.#pos;
        this.#space(false);
        if (this.#text.startsWith("::=", this.#pos)) {
          this.#pos = start;
          break;
        }
        this.#pos = save;
        item = { kind: "ref", name, line };
      } else {
        break;
      }
      items.push(this.#postfix(item));
    }
    return items.length === 1 ? (items[0] as Expr) : { kind: "seq", items };
  }

  #alternatives(depth: number): Expr {
    const options = [this.#sequence(depth)];
    for (;;) {
      this.#space(depth > 0);
      if (this.#peek() !== "|") {
        break;
      }
      this.#pos++;
      this.#space(true);
      options.push(this.#sequence(depth));
    }
    return options.length === 1 ? (options[0] as Expr) : { kind: "alt", options };
  }

  parse(root: string): GrammarAst {
    const rules = new Map<string, Expr>();
    for (;;) {
      this.#space(true);
      if (this.#pos >= this.#text.length) {
        break;
      }
      const at = this.#pos;
      const name = this.#name();
      this.#space(false);
      if (!this.#text.startsWith("::=", this.#pos)) {
        this.#fail("expected '::='");
      }
      this.#pos += 3;
      this.#space(true);
      const body = this.#alternatives(0);
      this.#space(false);
      const c = this.#peek();
      if (c !== undefined && c !== "\n" && c !== "\r") {
        this.#fail(`unexpected ${JSON.stringify(c)}`);
      }
      if (rules.has(name)) {
        throw new GrammarError("duplicate-rule", `[grammar] rule '${name}' is defined twice (again at ${this.#where(at)})`);
      }
      if (rules.size >= MAX_RULES) {
        throw new GrammarError("limit", `[grammar] more than MAX_RULES (${MAX_RULES}) rules`);
      }
      rules.set(name, body);
    }
    if (!rules.has(root)) {
      throw new GrammarError("no-root", `[grammar] the grammar has no rule '${root}'`);
    }
    return { rules, root };
  }
}

/**
 * Parses GBNF text.
 *
 * @throws GrammarError "syntax", "duplicate-rule", "no-root" or "limit".
 */
export function parseGbnf(text: string, root = "root"): GrammarAst {
  if (typeof text !== "string") {
    throw new GrammarError("syntax", "[grammar] the grammar must be a string");
  }
  if (text.length > MAX_GRAMMAR_LENGTH) {
    throw new GrammarError("limit", `[grammar] the grammar is ${text.length} characters, over MAX_GRAMMAR_LENGTH (${MAX_GRAMMAR_LENGTH})`);
  }
  return new Parser(text).parse(root);
}
