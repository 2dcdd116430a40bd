/**
 * Fast paths for the large metadata arrays of a GGUF header (a tokenizer's 128k-token vocabulary, its ~280k
 * merges, per-token types and scores): the items read in one pass over the window, nothing made per item.
 *
 * String arrays are checked whole at parse time — every length against the limit and the window, every
 * piece as UTF-8 (the same acceptance as a fatal TextDecoder) — by one validator call over runs of pieces
 * (see `checkRuns`). Arrays of LAZY_STRING_ITEMS or more keep their checked bytes (a view of a window the
 * reader owns, else a copy) and an offsets table (a `GgufStringList`: one string by index, a search by bytes)
 * and make the JS array of all their strings on the first read of `items` (a tokenizer's first encode); nothing about them is left
 * unchecked until then. Number arrays of LAZY_NUMBER_ITEMS or more are a copy of their bytes read as a typed
 * array (`typedNumbers`), their `items` made on first read.
 *
 * They accept only input the per-item parser (reader.ts) accepts and give the same values. Past the window
 * they throw WindowExceeded (the caller reads more and parses again) or `truncated` past the file, as
 * BoundedBytes does; on anything else — a length over the limit, bytes that are not UTF-8 — they answer
 * undefined and the per-item parser reads the array again and names the error exactly as before.
 */
import type { BoundedBytes } from "../../core/bytes.js";
import { FormatError } from "../../core/errors.js";
import { HOST_LITTLE_ENDIAN } from "../../quant/formats/common.js";
import type { GgufArrayValue, GgufNumberTypeName } from "./types.js";

/** String arrays with at least this many items make their strings on first use. */
export const LAZY_STRING_ITEMS = 1 << 10;

/** Number arrays with at least this many items are kept as typed arrays, their `items` made on first use. */
export const LAZY_NUMBER_ITEMS = 1 << 10;

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const encoder = new TextEncoder();

/** Items and the window offset after the last one. */
export interface ArrayItems {
  readonly value: GgufArrayValue;
  readonly end: number;
}

/** The checked bytes of a large string array, read one string at a time or whole. */
export class GgufStringList {
  readonly #bytes: Uint8Array;
  /** Piece i is bytes [starts[i], starts[i] + lengths[i]) of #bytes. */
  readonly #starts: Uint32Array;
  readonly #lengths: Uint32Array;
  readonly #key: string;
  #items: string[] | undefined;

  /** `bytes`: the array's wire bytes (lengths and pieces), already checked; `starts`/`lengths` relative to them. */
  constructor(bytes: Uint8Array, starts: Uint32Array, lengths: Uint32Array, maxByteLength: number, key: string) {
    this.maxByteLength = maxByteLength;
    this.#bytes = bytes;
    this.#starts = starts;
    this.#lengths = lengths;
    this.#key = key;
  }

  get length(): number {
    return this.#lengths.length;
  }

  /** The longest string's UTF-8 bytes. */
  readonly maxByteLength: number;

  /** UTF-8 bytes of string `i` (0 outside the list). */
  byteLength(i: number): number {
    return this.#lengths[i] ?? 0;
  }

  /** String `i`, decoded alone (undefined outside the list). */
  at(i: number): string | undefined {
    if (!Number.isInteger(i) || i < 0 || i >= this.length) {
      return undefined;
    }
    if (this.#items !== undefined) {
      return this.#items[i];
    }
    const from = this.#starts[i] ?? 0;
    return decode(this.#bytes.subarray(from, from + (this.#lengths[i] ?? 0)), this.#key);
  }

  /**
   * The first index of `text`, compared as UTF-8 bytes (no string made), or −1. Candidates are found by the
   * native byte search for the text's first byte, then checked: the length before them, the bytes, and that
   * they start a piece (a binary search of the starts).
   */
  indexOf(text: string): number {
    const want = encoder.encode(text);
    const len = want.length;
    const bytes = this.#bytes;
    const first = want[0];
    if (first === undefined) {
      return this.#lengths.indexOf(0);
    }
    for (let p = bytes.indexOf(first, 8); p >= 0; p = bytes.indexOf(first, p + 1)) {
      if (bytes[p - 8] !== (len & 0xff) || p + len > bytes.length) {
        continue;
      }
      let k = 1;
      while (k < len && bytes[p + k] === want[k]) {
        k++;
      }
      if (k === len) {
        const i = this.#pieceAt(p);
        if (i >= 0 && this.#lengths[i] === len) {
          return i;
        }
      }
    }
    return -1;
  }

  /** The piece starting at byte `p`, or −1. */
  #pieceAt(p: number): number {
    const starts = this.#starts;
    let lo = 0;
    let hi = starts.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const s = starts[mid] ?? 0;
      if (s === p) {
        return mid;
      }
      if (s < p) {
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return -1;
  }

  /** Every string, made on the first call: the pieces joined, one TextDecoder call, then sliced. */
  get items(): string[] {
    if (this.#items === undefined) {
      const n = this.length;
      let total = 0;
      for (let i = 0; i < n; i++) {
        total += this.#lengths[i] ?? 0;
      }
      const joined = new Uint8Array(total);
      const units = new Uint32Array(n);
      joinPieces(this.#bytes, this.#starts, this.#lengths, joined, units);
      this.#items = decodeStrings(joined, units, this.#key);
    }
    return this.#items;
  }
}

/**
 * The pieces copied back to back into `joined` and each one's UTF-16 units into `units`: one unit per lead or
 * ASCII byte, two for a 4-byte sequence's lead (the pieces are UTF-8, checked at parse). Call-free, so that V8
 * optimizes the loop on its one long run.
 */
function joinPieces(bytes: Uint8Array, starts: Uint32Array, lengths: Uint32Array, joined: Uint8Array, units: Uint32Array): void {
  const n = lengths.length;
  for (let i = 0, w = 0; i < n; i++) {
    let k = starts[i] ?? 0;
    const stop = k + (lengths[i] ?? 0);
    let u = 0;
    for (; k < stop; k++) {
      const x = bytes[k] ?? 0;
      joined[w++] = x;
      u += (x & 0xc0) === 0x80 ? 0 : x >= 0xf0 ? 2 : 1;
    }
    units[i] = u;
  }
}

function decode(piece: Uint8Array, key: string): string {
  try {
    return utf8.decode(piece);
  } catch {
    throw new FormatError("bad-utf8", `[gguf] array "${key}" holds a string that is not valid UTF-8`); // checked at parse: not reached
  }
}

/** The strings of `joined` (valid UTF-8, checked at parse), `units[i]` UTF-16 code units each. */
function decodeStrings(joined: Uint8Array, units: Uint32Array, key: string): string[] {
  const text = decode(joined, key);
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
 * Node's UTF-8 validator (`buffer.isUtf8`, simdutf: the same acceptance as a fatal TextDecoder, without making a
 * string; ~100× faster on a vocabulary), found through `process.getBuiltinModule` (Node ≥ 20.16) so that this file
 * still imports nothing from Node; undefined elsewhere (pages), where a TextDecoder call checks instead.
 */
const nodeIsUtf8 = ((): ((bytes: Uint8Array) => boolean) | undefined => {
  try {
    const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
    const mod = proc?.getBuiltinModule?.("node:buffer") as { isUtf8?: (bytes: Uint8Array) => boolean } | undefined;
    return typeof mod?.isUtf8 === "function" ? mod.isUtf8 : undefined;
  } catch {
    return undefined;
  }
})();

/** Whether bytes [from, to) are well-formed UTF-8 (a fatal TextDecoder's acceptance). */
function isUtf8(bytes: Uint8Array, from: number, to: number): boolean {
  if (to <= from) {
    return true;
  }
  if (nodeIsUtf8 !== undefined) {
    return nodeIsUtf8(bytes.subarray(from, to));
  }
  try {
    utf8.decode(bytes.subarray(from, to));
    return true;
  } catch {
    return false;
  }
}

const LAZY = Symbol("gguf lazy array");

/** What a large array value keeps beside its lazily made `items`. */
type LazyTable = { readonly strings: GgufStringList } | { readonly numbers: ArrayLike<number> };

/** The string list of a large string array value (its strings not made yet), else undefined. */
export function stringList(value: GgufArrayValue): GgufStringList | undefined {
  const t = (value as { [LAZY]?: LazyTable })[LAZY];
  return t !== undefined && "strings" in t ? t.strings : undefined;
}

/** The typed array of a large number array value, else undefined. */
export function typedNumbers(value: GgufArrayValue): ArrayLike<number> | undefined {
  const t = (value as { [LAZY]?: LazyTable })[LAZY];
  return t !== undefined && "numbers" in t ? t.numbers : undefined;
}

/** `scanPieces` answers: a length past the window, a piece past it, a length over the limit. */
const NEED_LENGTH = -1;
const NEED_PIECE = -2;
const OVER_LIMIT = -3;
/** What the last `scanPieces` found: the longest piece; where it stopped (offset, length) on NEED_*. */
const scan = new Float64Array(3);

/**
 * Pass 1 of `stringItems`, a loop with no calls (so that V8 optimizes it whole, also on its first, long run): each
 * piece's start (relative to `pos`) and length, and the end, or a NEED_* / OVER_LIMIT code.
 */
function scanPieces(view: DataView, pos: number, n: number, window: number, maxBytes: number, starts: Uint32Array, lengths: Uint32Array): number {
  let at = pos;
  let longest = 0;
  for (let i = 0; i < n; i++) {
    if (at + 8 > window) {
      scan[1] = at;
      return NEED_LENGTH;
    }
    const lo = view.getUint32(at, true);
    if (view.getUint32(at + 4, true) !== 0 || lo > maxBytes) {
      return OVER_LIMIT;
    }
    if (at + 8 + lo > window) {
      scan[1] = at;
      scan[2] = lo;
      return NEED_PIECE;
    }
    starts[i] = at + 8 - pos;
    lengths[i] = lo;
    longest = lo > longest ? lo : longest;
    at += 8 + lo;
  }
  scan[0] = longest;
  return at;
}

/**
 * Whether every piece of [pos, end) is UTF-8, checked by runs: the 8 length bytes of a piece under 128 bytes are
 * all ASCII, and an ASCII byte cannot sit inside a multi-byte sequence, so a run of such pieces with their lengths
 * between them is valid UTF-8 exactly when every piece is. One call checks a run (`isUtf8`); a piece of 128 bytes
 * or more (whose length bytes are not ASCII) ends the run and is checked alone.
 */
function checkRuns(bytes: Uint8Array, pos: number, end: number, starts: Uint32Array, lengths: Uint32Array, longest: number): boolean {
  if (longest < 0x80) {
    return isUtf8(bytes, pos, end);
  }
  let runFrom = pos;
  for (let i = 0; i < lengths.length; i++) {
    const lo = lengths[i] ?? 0;
    if (lo >= 0x80) {
      const from = pos + (starts[i] ?? 0);
      if (!isUtf8(bytes, runFrom, from - 8) || !isUtf8(bytes, from, from + lo)) {
        return false;
      }
      runFrom = from + lo;
    }
  }
  return isUtf8(bytes, runFrom, end);
}

/**
 * `n` strings (u64 length + UTF-8 bytes each, at most `maxBytes` per string) from `pos`, or undefined where
 * the per-item parser must decide (a length over the limit, a piece that is not UTF-8). `owned`: the window is
 * the reader's own (no one else writes it), so a large array keeps a view of it instead of a copy.
 */
export function stringItems(b: BoundedBytes, pos: number, n: number, key: string, maxBytes: number, owned = false): ArrayItems | undefined {
  const bytes = b.bytes;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const window = bytes.length;
  // Sizes nothing from a count the window cannot hold: the caller grows the window (or names the truncation).
  b.need(pos, n * 8, `array "${key}"`);
  const starts = new Uint32Array(n);
  const lengths = new Uint32Array(n);
  const end = scanPieces(view, pos, n, window, maxBytes, starts, lengths);
  if (end === NEED_LENGTH) {
    b.need(scan[1] ?? 0, 8, `string "${key}" length`); // the per-item parser's WindowExceeded or truncation
  } else if (end === NEED_PIECE) {
    b.need((scan[1] ?? 0) + 8, scan[2] ?? 0, `string "${key}"`);
  }
  const longest = scan[0] ?? 0;
  if (end < 0 || !checkRuns(bytes, pos, end, starts, lengths, longest)) {
    return undefined; // a length over the limit or a piece that is not UTF-8: the per-item parser names it
  }
  if (n < LAZY_STRING_ITEMS) {
    const items = new GgufStringList(bytes.subarray(pos, end), starts, lengths, longest, key).items;
    return { value: { type: "array", itemType: "string", items }, end };
  }
  // A view of a window the reader owns; else a copy (the window is the caller's bytes, which could change).
  const list = new GgufStringList(owned ? bytes.subarray(pos, end) : bytes.slice(pos, end), starts, lengths, longest, key);
  const value = {
    type: "array",
    itemType: "string",
    get items(): string[] {
      return list.items;
    },
  } as const;
  return { value: withTable(value, { strings: list }), end };
}

/** `value` with its table attached (not enumerable: the value compares and prints as before). */
function withTable<T extends GgufArrayValue>(value: T, table: LazyTable): T {
  return Object.defineProperty(value, LAZY, { value: table, enumerable: false });
}

type TypedCtor = new (buffer: ArrayBuffer) => ArrayLike<number>;

const NUMBER_READS: Partial<Record<GgufNumberTypeName, { size: number; read: (v: DataView, at: number) => number; typed: TypedCtor }>> = {
  u8: { size: 1, read: (v, at) => v.getUint8(at), typed: Uint8Array },
  i8: { size: 1, read: (v, at) => v.getInt8(at), typed: Int8Array },
  u16: { size: 2, read: (v, at) => v.getUint16(at, true), typed: Uint16Array },
  i16: { size: 2, read: (v, at) => v.getInt16(at, true), typed: Int16Array },
  u32: { size: 4, read: (v, at) => v.getUint32(at, true), typed: Uint32Array },
  i32: { size: 4, read: (v, at) => v.getInt32(at, true), typed: Int32Array },
  f32: { size: 4, read: (v, at) => v.getFloat32(at, true), typed: Float32Array },
  f64: { size: 8, read: (v, at) => v.getFloat64(at, true), typed: Float64Array },
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
  const { size, read, typed } = spec;
  b.need(pos, n * size, `array "${key}"`);
  const itemType = type as GgufNumberTypeName;
  const end = pos + n * size;
  if (n >= LAZY_NUMBER_ITEMS && HOST_LITTLE_ENDIAN) {
    const numbers = new typed(b.bytes.slice(pos, end).buffer);
    let items: number[] | undefined;
    const value = {
      type: "array",
      itemType,
      get items(): number[] {
        items ??= Array.from(numbers);
        return items;
      },
    } as const;
    return { value: withTable(value, { numbers }), end };
  }
  const view = new DataView(b.bytes.buffer, b.bytes.byteOffset, b.bytes.byteLength);
  const items = new Array<number>(n);
  for (let i = 0, at = pos; i < n; i++, at += size) {
    items[i] = read(view, at);
  }
  return { value: { type: "array", itemType, items }, end };
}
