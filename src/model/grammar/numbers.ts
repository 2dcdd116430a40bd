/**
 * GBNF for decimal integers and numbers within bounds (no leading zeros, no "-0" for integers): the schema
 * compiler's `minimum` / `maximum`. Bounds are integers here; the schema compiler refuses the rest.
 */
import { MAX_INTEGER_DIGITS } from "./limits.js";

/** Integers with the same number of digits, lo ≤ hi, as a GBNF expression. */
function sameLength(lo: string, hi: string): string {
  if (lo === hi) {
    return `"${lo}"`;
  }
  if (lo.length === 1) {
    return `[${lo}-${hi}]`;
  }
  if (lo[0] === hi[0]) {
    return `"${lo[0]}" ${sameLength(lo.slice(1), hi.slice(1))}`;
  }
  const n = lo.length - 1;
  const parts: string[] = [];
  let first = Number(lo[0]);
  let last = Number(hi[0]);
  if (!/^0*$/.test(lo.slice(1))) {
    parts.push(`"${lo[0]}" (${sameLength(lo.slice(1), "9".repeat(n))})`);
    first++;
  }
  if (!/^9*$/.test(hi.slice(1))) {
    parts.push(`"${hi[0]}" (${sameLength("0".repeat(n), hi.slice(1))})`);
    last--;
  }
  if (first <= last) {
    parts.push(`[${first}-${last}] [0-9]{${n}}`);
  }
  return parts.length === 1 ? (parts[0] as string) : `(${parts.join(" | ")})`;
}

/** Non-negative integers in [lo, hi] (hi may be Infinity: then up to MAX_INTEGER_DIGITS digits). lo, hi ≤ 2^53. */
export function naturalRange(lo: number, hi: number): string {
  const loLen = String(lo).length;
  const parts: string[] = [];
  const top = hi === Number.POSITIVE_INFINITY ? 10 ** loLen - 1 : hi;
  for (let d = loLen; d <= String(top).length; d++) {
    const a = Math.max(lo, d === 1 ? 0 : 10 ** (d - 1));
    const b = Math.min(top, d >= 16 ? top : 10 ** d - 1);
    if (a <= b) {
      parts.push(sameLength(String(a), String(b)));
    }
  }
  if (hi === Number.POSITIVE_INFINITY && loLen < MAX_INTEGER_DIGITS) {
    parts.push(`[1-9] [0-9]{${loLen},${MAX_INTEGER_DIGITS - 1}}`);
  }
  return parts.length === 1 ? (parts[0] as string) : `(${parts.join(" | ")})`;
}

/** Integers in [lo, hi] (either may be infinite), as GBNF. lo ≤ hi. */
export function integerRange(lo: number, hi: number): string {
  const parts: string[] = [];
  if (hi >= 0) {
    parts.push(naturalRange(Math.max(lo, 0), hi));
  }
  if (lo < 0) {
    parts.push(`"-" ${naturalRange(Math.max(1, -hi), -lo)}`);
  }
  return parts.length === 1 ? (parts[0] as string) : `(${parts.join(" | ")})`;
}

const FRACTION = `("." [0-9]{1,${MAX_INTEGER_DIGITS}})`;

/** Magnitudes in [a, b] (integers, b may be Infinity) written with an optional fraction. */
function magnitude(a: number, b: number): string {
  if (b === Number.POSITIVE_INFINITY) {
    return `${naturalRange(a, b)} ${FRACTION}?`;
  }
  const exact = `"${b}" ("." "0"{1,${MAX_INTEGER_DIGITS}})?`;
  return a <= b - 1 ? `(${naturalRange(a, b - 1)} ${FRACTION}? | ${exact})` : exact;
}

/** Decimal numbers (no exponent) in [lo, hi], lo and hi integers or infinite, lo ≤ hi. */
export function numberRange(lo: number, hi: number): string {
  const parts: string[] = [];
  if (hi >= 0) {
    parts.push(magnitude(Math.max(lo, 0), hi));
  }
  if (lo < 0) {
    parts.push(`"-" ${magnitude(Math.max(-hi, 0), -lo)}`);
  }
  return parts.length === 1 ? (parts[0] as string) : `(${parts.join(" | ")})`;
}
