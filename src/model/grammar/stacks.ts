/**
 * Persistent stacks over a flat grammar (XGrammar's "persistent stack"; llama.cpp keeps copies instead).
 *
 * A stack is a node: (position, parent node). Nodes are interned, so equal stacks are the same id, sharing their
 * tails; a stack set (a matcher state) is an interned sorted list of node ids. Node 0 (DONE) is the empty stack
 * (the root rule finished); node 1 (SENTINEL) stands for "whatever the context holds" when tokens are classified
 * per grammar position (mask.ts). A set's members other than DONE and SENTINEL always have a byte set on top.
 *
 * Everything derived from a node or set is computed once and kept: the closure of a node (rules on top expanded
 * until byte sets are on top, finished alternatives popped), the successor set after a node's byte set matched,
 * and the transition of a set on each byte. Matching a token is then a few table lookups per byte.
 */
import { GrammarError } from "./errors.js";
import { MAX_CLOSURE_WORK, MAX_DENSE_SETS, MAX_STACK_NODES, MAX_STACK_SETS, MAX_STACKS, MAX_TRANSITIONS } from "./limits.js";
import { END, type FlatGrammar } from "./lower.js";

/** The empty stack: the grammar is complete. */
export const DONE = 0;
/** The unknown context below a position (only in per-position classification). */
export const SENTINEL = 1;
/** The empty set (no stack survives). */
export const EMPTY_SET = 0;

const HAS_TERMINAL = 1;
const HAS_DONE = 2;
const HAS_SENTINEL = 4;
const POS_SPAN = 2 ** 21;

function grow(a: Int32Array<ArrayBuffer>, need: number, fill: number): Int32Array<ArrayBuffer> {
  if (need <= a.length) {
    return a;
  }
  const b = new Int32Array(Math.max(need, a.length * 2)).fill(fill);
  b.set(a);
  return b;
}

export class StackStore {
  readonly grammar: FlatGrammar;
  #pos = new Int32Array(1024);
  #parent = new Int32Array(1024);
  #closure = new Int32Array(1024).fill(-1);
  #succ = new Int32Array(1024).fill(-1);
  #minDone = new Float64Array(1024).fill(-1);
  #nodes = 2;
  readonly #nodeIds = new Map<number, number>();
  readonly #sets: Int32Array[] = [new Int32Array(0)];
  readonly #setIds = new Map<string, number>([["", EMPTY_SET]]);
  #flags = new Uint8Array(1024);
  readonly #trans = new Map<number, number>();
  /** Dense transition rows (256 entries, −1 unknown) of the first MAX_DENSE_SETS sets stepped. */
  readonly #dense: (Int32Array | undefined)[] = [];
  #denseCount = 0;
  readonly #minSet = new Map<number, number>();
  // Scratch for closures and unions, reused.
  #mark = new Int32Array(1024);
  #stamp = 0;

  constructor(grammar: FlatGrammar) {
    this.grammar = grammar;
    this.#pos[DONE] = -1;
    this.#pos[SENTINEL] = -2;
    this.#minDone[DONE] = 0;
    this.#minDone[SENTINEL] = 0;
  }

  /** Number of interned nodes (for tests and the bench). */
  get nodeCount(): number {
    return this.#nodes;
  }

  /** Top position of a node (−1 for DONE, −2 for SENTINEL). */
  pos(node: number): number {
    return this.#pos[node] ?? -1;
  }

  /** The stack below a node's top frame. */
  parent(node: number): number {
    return this.#parent[node] ?? DONE;
  }

  node(pos: number, parent: number): number {
    const key = parent * POS_SPAN + pos;
    let id = this.#nodeIds.get(key);
    if (id === undefined) {
      id = this.#nodes;
      if (id >= MAX_STACK_NODES) {
        throw new GrammarError("limit", `[grammar] more than MAX_STACK_NODES (${MAX_STACK_NODES}) grammar stacks`);
      }
      this.#nodes++;
      if (id >= this.#pos.length) {
        const n = id + 1;
        this.#pos = grow(this.#pos, n, 0);
        this.#parent = grow(this.#parent, n, 0);
        this.#closure = grow(this.#closure, n, -1);
        this.#succ = grow(this.#succ, n, -1);
        this.#mark = grow(this.#mark, n, 0);
        const m = new Float64Array(this.#pos.length).fill(-1);
        m.set(this.#minDone);
        this.#minDone = m;
      }
      this.#pos[id] = pos;
      this.#parent[id] = parent;
      this.#nodeIds.set(key, id);
    }
    return id;
  }

  /** Interns a set given as a list of node ids (any order, duplicates allowed). */
  intern(members: number[]): number {
    members.sort((a, b) => a - b);
    let n = 0;
    for (let i = 0; i < members.length; i++) {
      if (i === 0 || members[i] !== members[i - 1]) {
        members[n++] = members[i] ?? 0;
      }
    }
    members.length = n;
    if (n > MAX_STACKS) {
      throw new GrammarError("limit", `[grammar] a grammar state holds more than MAX_STACKS (${MAX_STACKS}) stacks (the grammar is too ambiguous)`);
    }
    const key = n === 1 ? String(members[0]) : members.join(",");
    let id = this.#setIds.get(key);
    if (id === undefined) {
      id = this.#sets.length;
      if (id >= MAX_STACK_SETS) {
        throw new GrammarError("limit", `[grammar] more than MAX_STACK_SETS (${MAX_STACK_SETS}) grammar states`);
      }
      let flags = 0;
      for (const m of members) {
        flags |= m === DONE ? HAS_DONE : m === SENTINEL ? HAS_SENTINEL : HAS_TERMINAL;
      }
      this.#sets.push(Int32Array.from(members));
      if (id >= this.#flags.length) {
        const f = new Uint8Array(this.#flags.length * 2);
        f.set(this.#flags);
        this.#flags = f;
      }
      this.#flags[id] = flags;
      this.#setIds.set(key, id);
    }
    return id;
  }

  members(set: number): Int32Array {
    return this.#sets[set] ?? (this.#sets[0] as Int32Array);
  }

  /** True when some stack in the set can still match a byte. */
  live(set: number): boolean {
    return ((this.#flags[set] ?? 0) & HAS_TERMINAL) !== 0;
  }

  hasDone(set: number): boolean {
    return ((this.#flags[set] ?? 0) & HAS_DONE) !== 0;
  }

  hasSentinel(set: number): boolean {
    return ((this.#flags[set] ?? 0) & HAS_SENTINEL) !== 0;
  }

  /** The set of stacks with a byte set on top reachable from `node` without consuming a byte. */
  closure(node: number): number {
    const known = this.#closure[node] ?? -1;
    if (known >= 0) {
      return known;
    }
    const { elements, ruleAlts } = this.grammar;
    const stamp = ++this.#stamp;
    const out: number[] = [];
    const work = [node];
    let steps = 0;
    while (work.length > 0) {
      const m = work.pop() as number;
      if (this.#mark[m] === stamp) {
        continue;
      }
      this.#mark[m] = stamp;
      if (++steps > MAX_CLOSURE_WORK) {
        throw new GrammarError("limit", `[grammar] expanding a grammar state took more than MAX_CLOSURE_WORK (${MAX_CLOSURE_WORK}) steps (the grammar is too ambiguous)`);
      }
      if (m === DONE || m === SENTINEL) {
        out.push(m);
        continue;
      }
      const p = this.#pos[m] ?? 0;
      const e = elements[p] ?? END;
      if (e >= 0) {
        out.push(m);
      } else if (e === END) {
        work.push(this.#parent[m] ?? DONE);
      } else {
        const parent = this.#parent[m] ?? DONE;
        const cont = (elements[p + 1] ?? END) === END ? parent : this.node(p + 1, parent);
        const alts = ruleAlts[-(e + 2)] as Int32Array;
        for (let i = alts.length - 1; i >= 0; i--) {
          work.push(this.node(alts[i] ?? 0, cont));
        }
      }
      // The mark array may have grown while nodes were created.
      if (this.#mark.length < this.#nodes) {
        this.#mark = grow(this.#mark, this.#nodes, 0);
      }
    }
    const set = this.intern(out);
    this.#closure[node] = set;
    return set;
  }

  /** The states after the byte set on top of `node` matched. */
  #successor(node: number): number {
    const known = this.#succ[node] ?? -1;
    if (known >= 0) {
      return known;
    }
    const p = (this.#pos[node] ?? 0) + 1;
    const parent = this.#parent[node] ?? DONE;
    const set = this.closure((this.grammar.elements[p] ?? END) === END ? parent : this.node(p, parent));
    this.#succ[node] = set;
    return set;
  }

  /** The set of stacks after `byte`, from `set` (EMPTY_SET when none survives). */
  step(set: number, byte: number): number {
    let row = this.#dense[set];
    if (row !== undefined) {
      const known = row[byte] ?? -1;
      if (known >= 0) {
        return known;
      }
    } else if (this.#denseCount < MAX_DENSE_SETS) {
      row = new Int32Array(256).fill(-1);
      this.#dense[set] = row;
      this.#denseCount++;
    }
    const key = set * 256 + byte;
    const known = row === undefined ? this.#trans.get(key) : undefined;
    if (known !== undefined) {
      return known;
    }
    const { elements, byteSets } = this.grammar;
    const members = this.members(set);
    let single = -1;
    let union: number[] | undefined;
    for (let i = 0; i < members.length; i++) {
      const n = members[i] ?? 0;
      if (n <= SENTINEL) {
        continue;
      }
      const s = elements[this.#pos[n] ?? 0] ?? 0;
      if (((byteSets[s * 8 + (byte >> 5)] ?? 0) >>> (byte & 31)) & 1) {
        const next = this.#successor(n);
        if (single < 0 && union === undefined) {
          single = next;
        } else {
          union ??= Array.from(this.members(single));
          for (const x of this.members(next)) {
            union.push(x);
          }
        }
      }
    }
    const result = union !== undefined ? this.intern(union) : single < 0 ? EMPTY_SET : single;
    if (row !== undefined) {
      row[byte] = result;
      return result;
    }
    if (this.#trans.size >= MAX_TRANSITIONS) {
      this.#trans.clear();
    }
    this.#trans.set(key, result);
    return result;
  }

  /** The set after all of `bytes` (EMPTY_SET as soon as none survives). */
  stepBytes(set: number, bytes: Uint8Array): number {
    let s = set;
    for (let i = 0; i < bytes.length && s !== EMPTY_SET; i++) {
      s = this.step(s, bytes[i] ?? 0);
    }
    return s;
  }

  /** Fewest bytes that complete the grammar from a stack. */
  #minNode(node: number): number {
    const chain: number[] = [];
    let n = node;
    while ((this.#minDone[n] ?? -1) < 0) {
      chain.push(n);
      n = this.#parent[n] ?? DONE;
    }
    let acc = this.#minDone[n] ?? 0;
    for (let i = chain.length - 1; i >= 0; i--) {
      const m = chain[i] ?? 0;
      acc += this.grammar.minRest[this.#pos[m] ?? 0] ?? 0;
      this.#minDone[m] = acc;
    }
    return acc;
  }

  /** Fewest bytes that complete the grammar from any stack of the set (Infinity for the empty set). */
  minCompletion(set: number): number {
    const known = this.#minSet.get(set);
    if (known !== undefined) {
      return known;
    }
    let best = Number.POSITIVE_INFINITY;
    for (const n of this.members(set)) {
      best = Math.min(best, this.#minNode(n));
    }
    this.#minSet.set(set, best);
    return best;
  }

  /** The state before any byte: the root rule's alternatives, expanded. */
  start(): number {
    const out: number[] = [];
    for (const a of this.grammar.ruleAlts[this.grammar.root] ?? []) {
      for (const m of this.members(this.closure(this.node(a, DONE)))) {
        out.push(m);
      }
    }
    return this.intern(out);
  }
}
