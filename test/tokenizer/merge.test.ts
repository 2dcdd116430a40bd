import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { mergePieces, type PairRank } from "../../src/model/tokenizer/index.js";

/** The textbook loop: scan all adjacent pairs, merge the best-ranked leftmost one, repeat. */
function naiveMerge(symbols: readonly string[], rankOf: PairRank): string[] {
  const s = symbols.slice();
  for (;;) {
    let best = -1;
    let bestRank = Infinity;
    for (let i = 0; i + 1 < s.length; i++) {
      const r = rankOf(s[i] ?? "", s[i + 1] ?? "");
      if (r !== undefined && r < bestRank) {
        best = i;
        bestRank = r;
      }
    }
    if (best < 0) {
      return s;
    }
    s.splice(best, 2, (s[best] ?? "") + (s[best + 1] ?? ""));
  }
}

describe("mergePieces", () => {
  it("should merge the lowest rank first and break ties to the left", () => {
    const ranks = new Map([
      ["a a", 0],
      ["b c", 1],
      ["aa b", 2],
    ]);
    const rank: PairRank = (l, r) => ranks.get(`${l} ${r}`);
    expect(mergePieces(["a", "a", "a"], rank)).toEqual(["aa", "a"]);
    expect(mergePieces(["a", "a", "b", "c"], rank)).toEqual(["aa", "bc"]);
    expect(mergePieces(["a", "a", "b"], rank)).toEqual(["aab"]);
    expect(mergePieces([], rank)).toEqual([]);
    expect(mergePieces(["x"], rank)).toEqual(["x"]);
  });

  it("should give the same pieces as the quadratic textbook loop", () => {
    const alphabet = fc.constantFrom("a", "b", "c", "d");
    const part = fc.string({ unit: alphabet, minLength: 1, maxLength: 3 });
    const mergeTable = fc.uniqueArray(fc.tuple(part, part), { maxLength: 30, selector: ([l, r]) => `${l} ${r}` });
    fc.assert(
      fc.property(mergeTable, fc.array(alphabet, { maxLength: 40 }), (table, word) => {
        const ranks = new Map(table.map(([l, r], i) => [`${l} ${r}`, i]));
        const rank: PairRank = (l, r) => ranks.get(`${l} ${r}`);
        expect(mergePieces(word, rank)).toEqual(naiveMerge(word, rank));
      }),
      { numRuns: 500, seed: 29 },
    );
  });

  it("should rank by score-like values including ties and negatives", () => {
    const rank: PairRank = (l, r) => (l + r === "ab" || l + r === "ba" ? -1 : l + r === "aba" ? -5 : undefined);
    expect(mergePieces(["a", "b", "a", "b"], rank)).toEqual(naiveMerge(["a", "b", "a", "b"], rank));
  });
});
