/**
 * The BPE merge loop shared by byte-level BPE and SentencePiece BPE: repeatedly merge the adjacent pair with the
 * best (lowest) rank, ties to the leftmost pair, until no adjacent pair has a rank.
 */

/** Rank of merging `left` and `right` (lower merges first), or undefined when the pair does not merge. */
export type PairRank = (left: string, right: string) => number | undefined;

interface Candidate {
  readonly rank: number;
  readonly left: number;
  readonly right: number;
  readonly genLeft: number;
  readonly genRight: number;
}

function better(a: Candidate, b: Candidate): boolean {
  return a.rank < b.rank || (a.rank === b.rank && a.left < b.left);
}

/**
 * Candidate merges in a binary min-heap ordered by (rank, left position). Entries are never removed when a
 * neighbour changes; instead each carries the generation of both symbols and is dropped on pop if either moved
 * on. That keeps every step O(log n) without a decrease-key operation.
 */
class CandidateHeap {
  readonly #items: Candidate[] = [];

  push(c: Candidate): void {
    const items = this.#items;
    let i = items.length;
    items.push(c);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = items[parent];
      if (p === undefined || !better(c, p)) {
        break;
      }
      items[i] = p;
      i = parent;
    }
    items[i] = c;
  }

  /** Removes and returns the best entry, or undefined when empty. */
  pop(): Candidate | undefined {
    const items = this.#items;
    const top = items[0];
    const last = items.pop();
    if (top === undefined || last === undefined || items.length === 0) {
      return top;
    }
    const n = items.length;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      let child = l;
      const cl = items[l];
      const cr = items[l + 1];
      if (cl === undefined) {
        break;
      }
      let best = cl;
      if (cr !== undefined && l + 1 < n && better(cr, cl)) {
        best = cr;
        child = l + 1;
      }
      if (!better(best, last)) {
        break;
      }
      items[i] = best;
      i = child;
    }
    items[i] = last;
    return top;
  }
}

/**
 * Merges `symbols` (initial pieces of one word, in order) and returns the final pieces. Symbols live in a linked
 * list over the input positions; a merge absorbs the right symbol into the left one, so the left position keeps
 * the leftmost-first tie order.
 */
export function mergePieces(symbols: readonly string[], rankOf: PairRank): string[] {
  const n = symbols.length;
  if (n < 2) {
    return symbols.slice();
  }
  const text = symbols.slice();
  const next = new Int32Array(n);
  const prev = new Int32Array(n);
  const gen = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    next[i] = i + 1 < n ? i + 1 : -1;
    prev[i] = i - 1;
  }
  const heap = new CandidateHeap();
  const consider = (left: number): void => {
    const right = next[left] ?? -1;
    if (right < 0) {
      return;
    }
    const rank = rankOf(text[left] ?? "", text[right] ?? "");
    if (rank !== undefined) {
      heap.push({ rank, left, right, genLeft: gen[left] ?? 0, genRight: gen[right] ?? 0 });
    }
  };
  for (let i = 0; i + 1 < n; i++) {
    consider(i);
  }
  for (let c = heap.pop(); c !== undefined; c = heap.pop()) {
    const { left, right } = c;
    if (gen[left] !== c.genLeft || gen[right] !== c.genRight || next[left] !== right) {
      continue;
    }
    text[left] = (text[left] ?? "") + (text[right] ?? "");
    const after = next[right] ?? -1;
    next[left] = after;
    if (after >= 0) {
      prev[after] = left;
    }
    gen[left] = (gen[left] ?? 0) + 1;
    gen[right] = (gen[right] ?? 0) + 1;
    next[right] = -1;
    const before = prev[left] ?? -1;
    if (before >= 0) {
      consider(before);
    }
    consider(left);
  }
  const out: string[] = [];
  for (let i = 0; i >= 0; i = next[i] ?? -1) {
    out.push(text[i] ?? "");
  }
  return out;
}
