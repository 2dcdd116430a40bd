/**
 * What barbell adds to @bare-ts/lib 0.4 (the runtime of the generated codecs) for values the generated code
 * cannot carry, and the one mapping of the library's exceptions to FormatError codes. Used by the BAREWire
 * frames (wire.ts), the actor frames (src/actors/remote/frames.ts) and actor protocol codecs
 * (src/actors/schema.ts), so every BARE byte barbell reads or writes goes through the same library.
 *
 * Why these exist (docs/barewire.md §8): the library's `data`, `str` and typed-array writers encode lengths of
 * 16384 or more wrongly (they repeat the low 7 bits), and its `data` reader copies. Here lengths are written
 * with `writeUintSafe` (correct for every safe integer) and `data` is read as a view, after its declared length
 * is checked against a limit and against the bytes present.
 */
import * as bare from "@bare-ts/lib";
import type { FormatErrorCode } from "../../core/errors.js";

const UTF8 = new TextEncoder();

/** Writes a BARE `data` value (canonical `uint` length, then the bytes) of any length. */
export function writeBytes(bc: bare.ByteCursor, bytes: Uint8Array): void {
  bare.writeUintSafe(bc, bytes.length);
  bare.writeU8FixedArray(bc, bytes);
}

/**
 * Reads a BARE `data` value as a view of the cursor's bytes (no copy). A declared length over `limit` throws a
 * BareError before anything is sized from it; a length past the end throws "missing bytes".
 */
export function readBytesView(bc: bare.ByteCursor, limit: number): Uint8Array {
  const offset = bc.offset;
  const length = bare.readUintSafe(bc);
  if (length > limit) {
    throw new bare.BareError(offset, `a length of ${length} bytes is over its limit of ${limit}`);
  }
  return bare.readUnsafeU8FixedArray(bc, length);
}

/** Writes a BARE `str` of at most `limit` UTF-8 bytes; returns false (writing nothing) when it is longer. */
export function writeText(bc: bare.ByteCursor, text: string, limit: number): boolean {
  const encoded = UTF8.encode(text);
  if (encoded.length > limit) {
    return false;
  }
  writeBytes(bc, encoded);
  return true;
}

/** Reads a BARE `str` of at most `limit` UTF-8 bytes (invalid UTF-8 throws "invalid UTF-8 string"). */
export function readText(bc: bare.ByteCursor, limit: number): string {
  const offset = bc.offset;
  const length = bare.readUintSafe(bc);
  if (length > limit) {
    throw new bare.BareError(offset, `a string of ${length} bytes is over its limit of ${limit}`);
  }
  return bare.readFixedString(bc, length);
}

/**
 * A plain Uint8Array over the same memory. The library's readers `slice()`, which on a Node Buffer is a view of
 * its whole pool, so every decoder rewraps its input first.
 */
export function plainBytes(input: Uint8Array): Uint8Array {
  return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
}

/**
 * The FormatError code of an exception thrown while reading hostile bytes with the library, or undefined for
 * any other exception (a bug, to be rethrown). Besides its BareErrors, the library's development build (the
 * "development" export condition, as under vitest) asserts that lengths fit 32 bits, and typed-array
 * constructors throw RangeError for lengths they cannot hold: both are input-driven, so both are `limit`.
 */
export function bareErrorCode(e: unknown): FormatErrorCode | undefined {
  if (e instanceof bare.BareError) {
    switch (e.issue) {
      case "missing bytes":
        return "truncated";
      case "invalid tag":
        return "bad-tag";
      case "must be canonical":
        return "non-canonical";
      case "invalid UTF-8 string":
        return "bad-utf8";
      case "a bool must be equal to 0 or 1":
        return "bad-value";
      default:
        return "limit";
    }
  }
  if (e instanceof RangeError || (e instanceof Error && e.name === "AssertionError")) {
    return "limit";
  }
  return undefined;
}
