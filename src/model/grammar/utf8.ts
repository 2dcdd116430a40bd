/**
 * Code-point ranges → UTF-8 byte-range sequences, so a grammar over characters becomes a grammar over bytes and
 * partial UTF-8 across tokens needs no special state. The split is the standard one (as in Rust's utf8-ranges):
 * each sequence is a list of byte ranges, the sequences are disjoint, and together they match exactly the UTF-8
 * encodings of the code points in the range (surrogates excluded).
 */

/** An inclusive range [lo, hi]. */
export type Range = readonly [number, number];

/** Largest code point. */
export const MAX_CODE_POINT = 0x10ffff;
const SURROGATE_LO = 0xd800;
const SURROGATE_HI = 0xdfff;
const MAX_BY_LENGTH = [0x7f, 0x7ff, 0xffff, MAX_CODE_POINT];

/** Sorts and merges ranges; drops the surrogate block (it has no UTF-8 encoding). */
export function normalizeRanges(ranges: readonly Range[]): Range[] {
  const cut: Range[] = [];
  for (const [lo, hi] of ranges) {
    if (hi < SURROGATE_LO || lo > SURROGATE_HI) {
      cut.push([lo, hi]);
    } else {
      if (lo < SURROGATE_LO) {
        cut.push([lo, SURROGATE_LO - 1]);
      }
      if (hi > SURROGATE_HI) {
        cut.push([SURROGATE_HI + 1, hi]);
      }
    }
  }
  cut.sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [lo, hi] of cut) {
    const last = out[out.length - 1];
    if (last !== undefined && lo <= last[1] + 1) {
      last[1] = Math.max(last[1], hi);
    } else {
      out.push([lo, hi]);
    }
  }
  return out;
}

/** The complement of normalized ranges within [0, MAX_CODE_POINT], surrogates excluded. */
export function complementRanges(ranges: readonly Range[]): Range[] {
  const out: Range[] = [];
  let next = 0;
  for (const [lo, hi] of normalizeRanges(ranges)) {
    if (lo > next) {
      out.push([next, lo - 1]);
    }
    next = hi + 1;
  }
  if (next <= MAX_CODE_POINT) {
    out.push([next, MAX_CODE_POINT]);
  }
  return normalizeRanges(out);
}

function encode(cp: number): number[] {
  if (cp < 0x80) {
    return [cp];
  }
  if (cp < 0x800) {
    return [0xc0 | (cp >> 6), 0x80 | (cp & 0x3f)];
  }
  if (cp < 0x10000) {
    return [0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f)];
  }
  return [0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f)];
}

/** UTF-8 bytes of a code point (no surrogate checks: callers pass scalar values). */
export function utf8Bytes(cp: number): number[] {
  return encode(cp);
}

/**
 * Byte-range sequences matching exactly the UTF-8 encodings of the code points in the given ranges.
 * Each sequence is a list of [lo, hi] byte ranges, one per byte.
 */
export function utf8Sequences(ranges: readonly Range[]): Range[][] {
  const out: Range[][] = [];
  const todo: Range[] = [...normalizeRanges(ranges)].reverse();
  while (todo.length > 0) {
    const [lo, hi] = todo.pop() as Range;
    // Split at encoding-length boundaries.
    let split = false;
    for (const max of MAX_BY_LENGTH) {
      if (lo <= max && hi > max) {
        todo.push([max + 1, hi], [lo, max]);
        split = true;
        break;
      }
    }
    if (split) {
      continue;
    }
    if (hi < 0x80) {
      out.push([[lo, hi]]);
      continue;
    }
    // Split until every continuation byte spans its full range or lo and hi share a prefix.
    let done = false;
    for (let i = 1; i < 4 && !done; i++) {
      const m = (1 << (6 * i)) - 1;
      if ((lo & ~m) !== (hi & ~m)) {
        if ((lo & m) !== 0) {
          todo.push([(lo | m) + 1, hi], [lo, lo | m]);
          done = true;
        } else if ((hi & m) !== m) {
          todo.push([hi & ~m, hi], [lo, (hi & ~m) - 1]);
          done = true;
        }
      }
    }
    if (done) {
      continue;
    }
    const a = encode(lo);
    const b = encode(hi);
    out.push(a.map((x, i) => [x, b[i] ?? x] as Range));
  }
  return out;
}
