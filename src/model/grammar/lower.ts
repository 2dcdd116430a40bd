/**
 * AST → a flat grammar over bytes (the form the matcher runs).
 *
 * Every character class becomes UTF-8 byte-range sequences (utf8.ts), so the matcher only ever sees bytes and a
 * character split across two tokens is just two steps. Groups and repetitions become auxiliary rules, as in
 * llama.cpp: `x*` is `R ::= x R | ε` (right recursion, which the matcher runs as a tail call, so a long repetition
 * does not grow the stack), `x{m,n}` is m copies of x then n−m nested optionals.
 *
 * Layout (`elements`): each alternative is a run of elements ended by END. An element ≥ 0 is a byte-set id (a
 * 256-bit set in `byteSets`); an element ≤ −2 is a reference to rule −(e + 2). `ruleAlts[r]` lists the start
 * index of each alternative of rule r. A position is an index into `elements`.
 *
 * Refused (GrammarError): undefined references ("undefined-rule"), left recursion ("left-recursion", as
 * llama.cpp refuses it: a rule that reaches itself before consuming a byte), and grammars past MAX_RULES or
 * MAX_ELEMENTS ("limit", checked before each expansion is built).
 */
import type { Expr, GrammarAst } from "./ast.js";
import { GrammarError } from "./errors.js";
import { MAX_ELEMENTS, MAX_RULES } from "./limits.js";
import { complementRanges, normalizeRanges, utf8Bytes, utf8Sequences, type Range } from "./utf8.js";

/** End of an alternative. */
export const END = -1;

/** A grammar lowered to bytes. */
export interface FlatGrammar {
  readonly elements: Int32Array;
  /** 8 words (256 bits) per byte set. */
  readonly byteSets: Uint32Array;
  readonly ruleAlts: readonly Int32Array[];
  readonly ruleNames: readonly string[];
  readonly root: number;
  /** Fewest bytes that finish the current alternative from each position (Infinity if it never finishes). */
  readonly minRest: Float64Array;
}

type Sym = { readonly set: number } | { readonly rule: number };

class Lowering {
  readonly elements: number[] = [];
  readonly sets: number[] = [];
  readonly #setIds = new Map<string, number>();
  readonly alts: number[][][] = []; // rule → alternatives → elements (without END)
  readonly names: string[] = [];
  readonly #ids = new Map<string, number>();
  readonly #charRules = new Map<string, number>();
  #size = 0;
  readonly #ast: GrammarAst;

  constructor(ast: GrammarAst) {
    this.#ast = ast;
    for (const name of ast.rules.keys()) {
      this.#ids.set(name, this.#newRule(name));
    }
  }

  #grow(n: number): void {
    this.#size += n;
    if (this.#size > MAX_ELEMENTS) {
      throw new GrammarError("limit", `[grammar] the lowered grammar exceeds MAX_ELEMENTS (${MAX_ELEMENTS})`);
    }
  }

  #newRule(name: string): number {
    if (this.names.length >= MAX_RULES) {
      throw new GrammarError("limit", `[grammar] the lowered grammar exceeds MAX_RULES (${MAX_RULES}) rules`);
    }
    const id = this.names.length;
    this.names.push(name);
    this.alts.push([]);
    return id;
  }

  #aux(base: string, alts: number[][]): number {
    const id = this.#newRule(`${base}-${this.names.length}`);
    this.#grow(alts.reduce((n, a) => n + a.length + 1, 0));
    this.alts[id] = alts;
    return id;
  }

  #byteSet(lo: number, hi: number): number {
    const key = `${lo}-${hi}`;
    let id = this.#setIds.get(key);
    if (id === undefined) {
      id = this.sets.length / 8;
      const words = new Array<number>(8).fill(0);
      for (let b = lo; b <= hi; b++) {
        words[b >> 5] = ((words[b >> 5] ?? 0) | (1 << (b & 31))) >>> 0;
      }
      this.sets.push(...words);
      this.#setIds.set(key, id);
    }
    return id;
  }

  #encode(s: Sym): number {
    return "set" in s ? s.set : -(s.rule + 2);
  }

  /** A character class as one symbol: a byte set when every member is one byte, else an auxiliary rule. */
  #chars(ranges: readonly Range[], negated: boolean, base: string): Sym {
    const norm = negated ? complementRanges(ranges) : normalizeRanges(ranges);
    const key = JSON.stringify(norm);
    const known = this.#charRules.get(key);
    if (known !== undefined) {
      return { rule: known };
    }
    const seqs = utf8Sequences(norm);
    if (seqs.length === 1 && seqs[0]?.length === 1) {
      const [lo, hi] = seqs[0][0] as Range;
      return { set: this.#byteSet(lo, hi) };
    }
    // Single-byte sequences of several ranges are merged into one alternative per range; that is fine.
    const alts = seqs.map((seq) => seq.map(([lo, hi]) => this.#byteSet(lo, hi)));
    const id = this.#aux(`${base}-char`, alts);
    this.#charRules.set(key, id);
    return { rule: id };
  }

  /** Lowers an expression into a list of symbols appended to `out` (a sequence inside one alternative). */
  #seq(e: Expr, base: string, out: number[]): void {
    switch (e.kind) {
      case "seq":
        for (const item of e.items) {
          this.#seq(item, base, out);
        }
        return;
      case "literal":
        for (const cp of e.codePoints) {
          for (const b of utf8Bytes(cp)) {
            this.#grow(1);
            out.push(this.#byteSet(b, b));
          }
        }
        return;
      default:
        this.#grow(1);
        out.push(this.#encode(this.#symbol(e, base)));
    }
  }

  #alternatives(e: Expr, base: string): number[][] {
    const options = e.kind === "alt" ? e.options : [e];
    return options.map((o) => {
      const out: number[] = [];
      this.#seq(o, base, out);
      return out;
    });
  }

  /** One symbol for an expression (a rule for anything longer than one element). */
  #symbol(e: Expr, base: string): Sym {
    switch (e.kind) {
      case "ref": {
        const id = this.#ids.get(e.name);
        if (id === undefined) {
          throw new GrammarError("undefined-rule", `[grammar] rule '${e.name}' (line ${e.line}) is not defined`);
        }
        return { rule: id };
      }
      case "chars":
        return this.#chars(e.ranges, e.negated, base);
      case "literal":
        if (e.codePoints.length === 1 && (e.codePoints[0] ?? 0) < 0x80) {
          const b = e.codePoints[0] ?? 0;
          return { set: this.#byteSet(b, b) };
        }
        return { rule: this.#aux(base, this.#alternatives(e, base)) };
      case "seq":
      case "alt":
        return { rule: this.#aux(base, this.#alternatives(e, base)) };
      case "repeat":
        return { rule: this.#repeat(e.item, e.min, e.max, base) };
    }
  }

  #repeat(item: Expr, min: number, max: number, base: string): number {
    const x = this.#encode(this.#symbol(item, base));
    const star = max === Number.POSITIVE_INFINITY;
    const optional = star ? 0 : max - min;
    this.#grow(2 * (min + optional + 2));
    let tail: number[] = [];
    if (star) {
      const id = this.#newRule(`${base}-star-${this.names.length}`);
      this.alts[id] = [[x, -(id + 2)], []];
      tail = [-(id + 2)];
    } else {
      // Nested optionals: opt1 ::= x | ε; optK ::= x optK-1 | ε.
      let inner: number | undefined;
      for (let k = 0; k < optional; k++) {
        const alts = inner === undefined ? [[x], []] : [[x, -(inner + 2)], []];
        inner = this.#aux(`${base}-opt`, alts);
      }
      tail = inner === undefined ? [] : [-(inner + 2)];
    }
    return this.#aux(`${base}-rep`, [[...new Array<number>(min).fill(x), ...tail]]);
  }

  run(): FlatGrammar {
    for (const [name, body] of this.#ast.rules) {
      const id = this.#ids.get(name) ?? 0;
      this.alts[id] = this.#alternatives(body, name);
    }
    const elements: number[] = [];
    const ruleAlts = this.alts.map((alts) =>
      Int32Array.from(
        alts.map((a) => {
          const start = elements.length;
          elements.push(...a, END);
          return start;
        }),
      ),
    );
    const flat = {
      elements: Int32Array.from(elements),
      byteSets: Uint32Array.from(this.sets),
      ruleAlts,
      ruleNames: this.names,
      root: this.#ids.get(this.#ast.root) ?? 0,
    };
    checkLeftRecursion(flat);
    return { ...flat, minRest: minRest(flat) };
  }
}

/** Which rules can match the empty string (fixed point). */
function nullable(g: Pick<FlatGrammar, "elements" | "ruleAlts">): Uint8Array {
  const out = new Uint8Array(g.ruleAlts.length);
  for (let changed = true; changed; ) {
    changed = false;
    g.ruleAlts.forEach((starts, r) => {
      if (out[r] === 1) {
        return;
      }
      for (const s of starts) {
        let p = s;
        while ((g.elements[p] ?? END) !== END) {
          const e = g.elements[p] ?? END;
          if (e >= 0 || out[-(e + 2)] !== 1) {
            break;
          }
          p++;
        }
        if (g.elements[p] === END) {
          out[r] = 1;
          changed = true;
          return;
        }
      }
    });
  }
  return out;
}

/**
 * Refuses left recursion, as llama.cpp does: a rule that can reach itself in leftmost position (through nullable
 * prefixes) by a path that leaves something to match afterwards would grow the stack without consuming a byte.
 * A cycle made only of tail references (the reference is the last element, as in `R ::= x R | ε` with a nullable
 * x) does not grow the stack and is expanded once (closures mark visited stacks), so it is allowed.
 */
function checkLeftRecursion(g: Pick<FlatGrammar, "elements" | "ruleAlts" | "ruleNames">): void {
  const empty = nullable(g);
  const n = g.ruleAlts.length;
  const edges: { to: number; tail: boolean }[][] = g.ruleAlts.map((starts) => {
    const out: { to: number; tail: boolean }[] = [];
    for (const s of starts) {
      for (let p = s; (g.elements[p] ?? END) !== END; p++) {
        const e = g.elements[p] ?? END;
        if (e >= 0) {
          break;
        }
        out.push({ to: -(e + 2), tail: (g.elements[p + 1] ?? END) === END });
        if (empty[-(e + 2)] !== 1) {
          break;
        }
      }
    }
    return out;
  });
  // Kosaraju, iteratively: finish order on the graph, then components on the reversed graph.
  const seen = new Uint8Array(n);
  const order: number[] = [];
  for (let r0 = 0; r0 < n; r0++) {
    if (seen[r0] === 1) {
      continue;
    }
    seen[r0] = 1;
    const stack: [number, number][] = [[r0, 0]];
    while (stack.length > 0) {
      const top = stack[stack.length - 1] as [number, number];
      const edge = edges[top[0]]?.[top[1]++];
      if (edge === undefined) {
        order.push(top[0]);
        stack.pop();
      } else if (seen[edge.to] === 0) {
        seen[edge.to] = 1;
        stack.push([edge.to, 0]);
      }
    }
  }
  const reverse: number[][] = Array.from({ length: n }, () => []);
  edges.forEach((out, from) => out.forEach((e) => reverse[e.to]?.push(from)));
  const comp = new Int32Array(n).fill(-1);
  for (let i = order.length - 1; i >= 0; i--) {
    const r0 = order[i] ?? 0;
    if (comp[r0] !== -1) {
      continue;
    }
    comp[r0] = r0;
    const stack = [r0];
    while (stack.length > 0) {
      const r = stack.pop() as number;
      for (const from of reverse[r] ?? []) {
        if (comp[from] === -1) {
          comp[from] = r0;
          stack.push(from);
        }
      }
    }
  }
  edges.forEach((out, from) => {
    for (const e of out) {
      if (!e.tail && comp[e.to] === comp[from]) {
        throw new GrammarError("left-recursion", `[grammar] rule '${g.ruleNames[from] ?? from}' is left-recursive (it can reach itself before matching a character)`);
      }
    }
  });
}

/** Fewest bytes from each position to the end of its alternative (rule minimum lengths by fixed point). */
function minRest(g: Pick<FlatGrammar, "elements" | "ruleAlts">): Float64Array {
  const ruleMin = new Float64Array(g.ruleAlts.length).fill(Number.POSITIVE_INFINITY);
  const cost = (e: number): number => (e >= 0 ? 1 : (ruleMin[-(e + 2)] ?? Number.POSITIVE_INFINITY));
  for (let changed = true; changed; ) {
    changed = false;
    g.ruleAlts.forEach((starts, r) => {
      for (const s of starts) {
        let n = 0;
        for (let p = s; (g.elements[p] ?? END) !== END; p++) {
          n += cost(g.elements[p] ?? END);
        }
        if (n < (ruleMin[r] ?? 0)) {
          ruleMin[r] = n;
          changed = true;
        }
      }
    });
  }
  const out = new Float64Array(g.elements.length);
  for (let p = g.elements.length - 1; p >= 0; p--) {
    const e = g.elements[p] ?? END;
    out[p] = e === END ? 0 : cost(e) + (out[p + 1] ?? 0);
  }
  return out;
}

/**
 * Lowers a parsed grammar to bytes.
 *
 * @throws GrammarError "undefined-rule", "left-recursion" or "limit".
 */
export function lowerGrammar(ast: GrammarAst): FlatGrammar {
  return new Lowering(ast).run();
}
