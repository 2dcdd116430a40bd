/**
 * Fast paths for the large metadata arrays of a GGUF header (a tokenizer's 128k-token vocabulary, its ~280k
 * merges, per-token types and scores): the items read in one pass over the window with plain DataView reads.
 *
 * String arrays are checked whole at parse time — every length against the limit and the window, every
 * piece as UTF-8 (the same acceptance as a fatal TextDecoder) — and their JS strings are made with one
 * TextDecoder call for the whole array. Arrays of LAZY_STRING_ITEMS or more make their strings on the first
 * read of `items` instead (a merge list is read only when a tokenizer first encodes text), from a copy of
 * their checked bytes; nothing about them is left unchecked until then.
 *
 * They accept only input the per-item parser (reader.ts) accepts and give the same values. Past the window
 * they throw WindowExceeded (the caller reads more and parses again) or `truncated` past the file, as
 * BoundedBytes does; on anything else — a length over the limit, bytes that are not UTF-8 — they answer
 * undefined and the per-item parser reads the array again and names the error exactly as before.
 */
import type { BoundedBytes } from "../../core/bytes.js";
import { FormatError } from "../../core/errors.js";
import type { GgufArrayValue, GgufNumberTypeName } from "./types.js";

/** String arrays with at least this many items make their strings on first use. */
export const LAZY_STRING_ITEMS = 1 << 16;

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Items and the window offset after the last one. */
export interface ArrayItems {
  readonly value: GgufArrayValue;
  readonly end: number;
}

/**
 * Copies `bytes[from, from + len)` to `out` at `at` and answers its UTF-16 code units when it is well-formed
 * UTF-8 (Unicode table 3-7, what a fatal TextDecoder accepts: no overlong forms, surrogates or code points
 * past U+10FFFF), else −1.
 */
function copyUtf8(bytes: Uint8Array, from: number, len: number, out: Uint8Array, at: number): number {
  const stop = from + len;
  let units = 0;
  let i = from;
  let w = at;
  while (i < stop) {
    const x = bytes[i] ?? 0;
    out[w++] = x;
    if (x < 0x80) {
      i++;
      units++;
      continue;
    }
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (x >= 0xc2 && x <= 0xdf) {
      need = 1;
    } else if (x >= 0xe0 && x <= 0xef) {
      need = 2;
      lo = x === 0xe0 ? 0xa0 : 0x80;
      hi = x === 0xed ? 0x9f : 0xbf;
    } else if (x >= 0xf0 && x <= 0xf4) {
      need = 3;
      lo = x === 0xf0 ? 0x90 : 0x80;
      hi = x === 0xf4 ? 0x8f : 0xbf;
    } else {
      return -1;
    }
    if (i + need >= stop) {
      return -1;
    }
    const y = bytes[i + 1] ?? 0;
    if (y < lo || y > hi) {
      return -1;
    }
    out[w++] = y;
    for (let k = 2; k <= need; k++) {
      const z = bytes[i + k] ?? 0;
      if ((z & 0xc0) !== 0x80) {
        return -1;
      }
      out[w++] = z;
    }
    units += need === 3 ? 2 : 1;
    i += need + 1;
  }
  return units;
}

/** The strings of `joined` (valid UTF-8, checked at parse), `units[i]` UTF-16 code units each. */
function decodeStrings(joined: Uint8Array, units: Uint32Array, key: string): string[] {
  let text: string;
  try {
    text = utf8.decode(joined);
  } catch {
    throw new FormatError("bad-utf8", `[gguf] array "${key}" holds a string that is not valid UTF-8`); // checked at parse: not reached
  }
  const n = units.length;
  const items = new Array<string>(n);
  for (let i = 0, c = 0; i < n; i++) {
    const u = units[i] ?? 0;
    items[i] = text.slice(c, c + u);
    c += u;
  }
  return items;
}

/**
 * `n` strings (u64 length + UTF-8 bytes each, at most `maxBytes` per string) from `pos`, or undefined where
 * the per-item parser must decide (a length over the limit, a piece that is not UTF-8).
 */
export function stringItems(b: BoundedBytes, pos: number, n: number, key: string, maxBytes: number): ArrayItems | undefined {
  const bytes = b.bytes;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const window = bytes.length;
  // Sizes nothing from a count the window cannot hold: the caller grows the window (or names the truncation).
  b.need(pos, n * 8, `array "${key}"`);
  // Pass 1: every length against the limit and the window.
  const lengths = new Uint32Array(n);
  const what = `string "${key}"`;
  let at = pos;
  let total = 0;
  for (let i = 0; i < n; i++) {
    if (at + 8 > window) {
      b.need(at, 8, `${what} length`); // the per-item parser's WindowExceeded or truncation
    }
    const lo = view.getUint32(at, true);
    if (view.getUint32(at + 4, true) !== 0 || lo > maxBytes) {
      return undefined; // over the limit: the per-item parser names it
    }
    if (at + 8 + lo > window) {
      b.need(at + 8, lo, what);
    }
    lengths[i] = lo;
    total += lo;
    at += 8 + lo;
  }
  const end = at;
  // Pass 2: each piece checked as UTF-8 and copied, back to back, into one buffer (≤ the window's bytes).
  const joined = new Uint8Array(total);
  const units = new Uint32Array(n);
  at = pos;
  for (let i = 0, w = 0; i < n; i++) {
    const len = lengths[i] ?? 0;
    const u = copyUtf8(bytes, at + 8, len, joined, w);
    if (u < 0) {
      return undefined; // not UTF-8: the per-item parser names the string's offset
    }
    units[i] = u;
    w += len;
    at += 8 + len;
  }
  if (n < LAZY_STRING_ITEMS) {
    return { value: { type: "array", itemType: "string", items: decodeStrings(joined, units, key) }, end };
  }
  let items: string[] | undefined;
  let bytesLeft: Uint8Array | undefined = joined;
  const value = {
    type: "array",
    itemType: "string",
    get items(): string[] {
      if (items === undefined) {
        items = decodeStrings(bytesLeft ?? new Uint8Array(0), units, key);
        bytesLeft = undefined;
      }
      return items;
    },
  } as const;
  return { value, end };
}

const NUMBER_READS: Partial<Record<GgufNumberTypeName, { size: number; read: (v: DataView, at: number) => number }>> = {
  u8: { size: 1, read: (v, at) => v.getUint8(at) },
  i8: { size: 1, read: (v, at) => v.getInt8(at) },
  u16: { size: 2, read: (v, at) => v.getUint16(at, true) },
  i16: { size: 2, read: (v, at) => v.getInt16(at, true) },
  u32: { size: 4, read: (v, at) => v.getUint32(at, true) },
  i32: { size: 4, read: (v, at) => v.getInt32(at, true) },
  f32: { size: 4, read: (v, at) => v.getFloat32(at, true) },
  f64: { size: 8, read: (v, at) => v.getFloat64(at, true) },
};

/**
 * `n` numbers of a ≤ 32-bit or float type from `pos`, or undefined for another type. Past the window it throws
 * as BoundedBytes does (WindowExceeded, or `truncated` past the file).
 */
export function numberItems(b: BoundedBytes, pos: number, n: number, type: string, key: string): ArrayItems | undefined {
  const spec = NUMBER_READS[type as GgufNumberTypeName];
  if (spec === undefined) {
    return undefined;
  }
  b.need(pos, n * spec.size, `array "${key}"`);
  const view = new DataView(b.bytes.buffer, b.bytes.byteOffset, b.bytes.byteLength);
  const items = new Array<number>(n);
  const { size, read } = spec;
  for (let i = 0, at = pos; i < n; i++, at += size) {
    items[i] = read(view, at);
  }
  return { value: { type: "array", itemType: type as GgufNumberTypeName, items }, end: pos + n * size };
}
