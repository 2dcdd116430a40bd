/**
 * Bounded little-endian reads over a byte window. Every read is a pure function of an absolute offset and
 * returns `{ value, length }` (the @huggingface/gguf idea): no hidden cursor, so a parser can retry cheaply.
 *
 * A window may be a prefix of a larger source (`totalSize`). A read that passes the window but not the
 * source throws `WindowExceeded` (the caller reads more and retries); a read past the source throws
 * FormatError `truncated`.
 */
import { FormatError } from "./errors.js";

/** A value read from bytes and how many bytes it used. */
export interface Read<T> {
  readonly value: T;
  readonly length: number;
}

/** Thrown when a read needs bytes the source has but the window does not; `end` is the exclusive offset needed. */
export class WindowExceeded extends Error {
  constructor(readonly end: number) {
    super(`[bytes] read needs the window to reach byte ${end}`);
    this.name = "WindowExceeded";
  }
}

/** Read-only view of the first `bytes.length` bytes of a source of `totalSize` bytes. */
export class BoundedBytes {
  readonly #view: DataView;

  /**
   * @param bytes the window, starting at source offset 0
   * @param totalSize size of the whole source (≥ bytes.length); defaults to the window size
   * @param label prefix for error messages, e.g. `gguf`
   */
  constructor(
    readonly bytes: Uint8Array,
    readonly totalSize: number = bytes.length,
    readonly label = "bytes",
  ) {
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Bytes from `offset` to the end of the source. */
  remaining(offset: number): number {
    return Math.max(0, this.totalSize - offset);
  }

  /** Checks that `length` bytes from `offset` are readable; returns the end offset. */
  need(offset: number, length: number, what: string): number {
    const end = offset + length;
    if (!Number.isSafeInteger(end) || end > this.totalSize) {
      throw new FormatError(
        "truncated",
        `[${this.label}] ${what} at byte ${offset} needs ${length} bytes; file ends at ${this.totalSize}`,
      );
    }
    if (end > this.bytes.length) {
      throw new WindowExceeded(end);
    }
    return end;
  }

  u8(offset: number, what = "u8"): Read<number> {
    this.need(offset, 1, what);
    return { value: this.#view.getUint8(offset), length: 1 };
  }

  i8(offset: number, what = "i8"): Read<number> {
    this.need(offset, 1, what);
    return { value: this.#view.getInt8(offset), length: 1 };
  }

  u16(offset: number, what = "u16"): Read<number> {
    this.need(offset, 2, what);
    return { value: this.#view.getUint16(offset, true), length: 2 };
  }

  i16(offset: number, what = "i16"): Read<number> {
    this.need(offset, 2, what);
    return { value: this.#view.getInt16(offset, true), length: 2 };
  }

  u32(offset: number, what = "u32"): Read<number> {
    this.need(offset, 4, what);
    return { value: this.#view.getUint32(offset, true), length: 4 };
  }

  i32(offset: number, what = "i32"): Read<number> {
    this.need(offset, 4, what);
    return { value: this.#view.getInt32(offset, true), length: 4 };
  }

  f32(offset: number, what = "f32"): Read<number> {
    this.need(offset, 4, what);
    return { value: this.#view.getFloat32(offset, true), length: 4 };
  }

  f64(offset: number, what = "f64"): Read<number> {
    this.need(offset, 8, what);
    return { value: this.#view.getFloat64(offset, true), length: 8 };
  }

  u64(offset: number, what = "u64"): Read<bigint> {
    this.need(offset, 8, what);
    return { value: this.#view.getBigUint64(offset, true), length: 8 };
  }

  i64(offset: number, what = "i64"): Read<bigint> {
    this.need(offset, 8, what);
    return { value: this.#view.getBigInt64(offset, true), length: 8 };
  }

  /** A u64 that must be a safe integer (sizes, offsets); larger values throw FormatError `overflow`. */
  u64Safe(offset: number, what = "u64"): Read<number> {
    const r = this.u64(offset, what);
    if (r.value > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new FormatError("overflow", `[${this.label}] ${what} at byte ${offset} is ${r.value}, above 2^53`);
    }
    return { value: Number(r.value), length: 8 };
  }

  /** A subarray view (no copy) of `length` bytes at `offset`. */
  slice(offset: number, length: number, what = "bytes"): Uint8Array {
    this.need(offset, length, what);
    return this.bytes.subarray(offset, offset + length);
  }
}

/** Growable little-endian byte sink for writers; every write returns `this` so calls chain. */
export class ByteWriter {
  #buf: Uint8Array;
  #view: DataView;
  #length = 0;

  constructor(initialCapacity = 1024) {
    this.#buf = new Uint8Array(Math.max(16, initialCapacity));
    this.#view = new DataView(this.#buf.buffer);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.#length;
  }

  // Callers must take the offset before touching #buf/#view: reserving may replace both.
  #reserve(n: number): number {
    const at = this.#length;
    if (at + n > this.#buf.length) {
      let cap = this.#buf.length * 2;
      while (cap < at + n) {
        cap *= 2;
      }
      const next = new Uint8Array(cap);
      next.set(this.#buf.subarray(0, at));
      this.#buf = next;
      this.#view = new DataView(next.buffer);
    }
    this.#length = at + n;
    return at;
  }

  u8(v: number): this {
    const at = this.#reserve(1);
    this.#view.setUint8(at, v);
    return this;
  }
  i8(v: number): this {
    const at = this.#reserve(1);
    this.#view.setInt8(at, v);
    return this;
  }
  u16(v: number): this {
    const at = this.#reserve(2);
    this.#view.setUint16(at, v, true);
    return this;
  }
  i16(v: number): this {
    const at = this.#reserve(2);
    this.#view.setInt16(at, v, true);
    return this;
  }
  u32(v: number): this {
    const at = this.#reserve(4);
    this.#view.setUint32(at, v, true);
    return this;
  }
  i32(v: number): this {
    const at = this.#reserve(4);
    this.#view.setInt32(at, v, true);
    return this;
  }
  f32(v: number): this {
    const at = this.#reserve(4);
    this.#view.setFloat32(at, v, true);
    return this;
  }
  f64(v: number): this {
    const at = this.#reserve(8);
    this.#view.setFloat64(at, v, true);
    return this;
  }
  u64(v: bigint): this {
    const at = this.#reserve(8);
    this.#view.setBigUint64(at, v, true);
    return this;
  }
  i64(v: bigint): this {
    const at = this.#reserve(8);
    this.#view.setBigInt64(at, v, true);
    return this;
  }
  bytes(b: Uint8Array): this {
    const at = this.#reserve(b.length);
    this.#buf.set(b, at);
    return this;
  }
  /** Writes zero bytes up to the next multiple of `alignment`. */
  pad(alignment: number): this {
    const rem = this.#length % alignment;
    if (rem !== 0) {
      this.#reserve(alignment - rem); // new capacity is zero-filled, and bytes are never rewritten
    }
    return this;
  }

  /** The written bytes (a view of the internal buffer; do not write after taking it). */
  finish(): Uint8Array {
    return this.#buf.subarray(0, this.#length);
  }
}
