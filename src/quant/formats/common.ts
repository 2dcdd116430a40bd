/**
 * Shared checks and byte helpers for the block format codecs in this folder.
 */
import { FormatError, ShapeError } from "../../core/errors.js";
import { HALF_TO_F32, f32ToHalf } from "../half.js";
import type { QuantTraits } from "../types.js";

/** True on little-endian hosts, where typed-array views read GGUF's little-endian data directly. */
export const HOST_LITTLE_ENDIAN: boolean = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** True when `n` is a positive safe integer (rejects 0, negatives, NaN, fractions, ±inf). */
export function isPositiveSize(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0;
}

/**
 * Bytes of a rows×cols tensor stored as blocks of `blockSize` elements along `cols`, each
 * `blockBytes` bytes; undefined for shapes the format cannot hold or byte counts above 2^53 − 1.
 */
export function blockedByteSize(rows: number, cols: number, blockSize: number, blockBytes: number): number | undefined {
  if (!isPositiveSize(rows) || !isPositiveSize(cols) || cols % blockSize !== 0) {
    return undefined;
  }
  const rowBytes = (cols / blockSize) * blockBytes;
  const total = rows * rowBytes;
  // A product above 2^53 − 1 rounds to a value that is itself not a safe integer.
  return Number.isSafeInteger(rowBytes) && Number.isSafeInteger(total) ? total : undefined;
}

/** The byte size of a rows×cols tensor in the format, or bad-block when the format cannot hold that shape. */
function storableSize(name: string, byteSize: (rows: number, cols: number) => number | undefined, rows: number, cols: number): number {
  const size = byteSize(rows, cols);
  if (size === undefined) {
    throw new FormatError("bad-block", `[quant:${name}] cannot hold a ${String(rows)}x${String(cols)} tensor`);
  }
  return size;
}

/**
 * Checks a decode call: the shape must be storable and `bytes` at least `byteSize` long
 * (trailing bytes are ignored). Returns the byte size.
 */
export function checkDecode(
  name: string,
  byteSize: (rows: number, cols: number) => number | undefined,
  bytes: Uint8Array,
  rows: number,
  cols: number,
): number {
  const size = storableSize(name, byteSize, rows, cols);
  if (bytes.length < size) {
    throw new FormatError(
      "truncated",
      `[quant:${name}] ${String(rows)}x${String(cols)} needs ${size} bytes, got ${bytes.length}`,
    );
  }
  return size;
}

/** Checks an encode call: storable shape and rows×cols values. Returns the byte size. */
export function checkEncode(
  name: string,
  byteSize: (rows: number, cols: number) => number | undefined,
  values: Float32Array,
  rows: number,
  cols: number,
): number {
  const size = storableSize(name, byteSize, rows, cols);
  if (values.length !== rows * cols) {
    throw new ShapeError(
      "size",
      `[quant:${name}] ${String(rows)}x${String(cols)} needs ${rows * cols} values, got ${values.length}`,
    );
  }
  return size;
}

/** Throws bad-block for a block scale that is inf or NaN (as a half bit pattern). */
export function checkHalfScale(name: string, h: number, block: number): void {
  if ((h & 0x7c00) === 0x7c00) {
    throw new FormatError("bad-block", `[quant:${name}] block ${block} has a non-finite scale`);
  }
}

/** Reads a little-endian binary16 at `at` and returns its value. */
export function readHalf(bytes: Uint8Array, at: number): number {
  return HALF_TO_F32[(bytes[at] ?? 0) | ((bytes[at + 1] ?? 0) << 8)] ?? 0;
}

/** Reads the little-endian binary16 bit pattern at `at`. */
export function readHalfBits(bytes: Uint8Array, at: number): number {
  return (bytes[at] ?? 0) | ((bytes[at + 1] ?? 0) << 8);
}

/**
 * Writes a block scale as a little-endian binary16 at `at` and returns the value actually stored.
 * Scales past the half range are clamped to ±65504 (ggml would write inf), so an encoder never
 * writes a block its own decoder rejects.
 */
export function writeHalfScale(bytes: Uint8Array, at: number, x: number): number {
  let h = f32ToHalf(x);
  if ((h & 0x7c00) === 0x7c00) {
    h = (h & 0x8000) | 0x7bff;
  }
  bytes[at] = h & 0xff;
  bytes[at + 1] = h >>> 8;
  return HALF_TO_F32[h] ?? 0;
}

/** C `roundf`/`lroundf`: nearest integer, ties away from zero (what ggml's TQ and Q8_0 quantizers use). */
export function roundHalfAway(x: number): number {
  return x < 0 ? -Math.round(-x) : Math.round(x);
}

/** Largest |x| over `values[from, to)` in float32 (NaN is skipped, as C's `MAX` with `>` would). */
export function absMax(values: Float32Array, from: number, to: number): number {
  let m = 0;
  for (let i = from; i < to; i++) {
    const a = Math.abs(values[i] ?? 0);
    if (a > m) {
      m = a;
    }
  }
  return m;
}

/**
 * Trit code (value + 1 ∈ {0, 1, 2}) of a scaled value `v` (x/d), rounded like C `lroundf` and
 * clamped to the ternary range; NaN gives code 1 (zero).
 */
export function tritCode(v: number): number {
  const q = roundHalfAway(v);
  return q > 0 ? 2 : q < 0 ? 0 : 1;
}

/** What differs between the block formats that carry one fp16 scale per block (Q8_0, Q1_0, TQ1_0, TQ2_0). */
export interface Fp16BlockSpec {
  readonly name: "q8_0" | "q1_0" | "tq1_0" | "tq2_0";
  readonly ggmlType: number;
  /** Elements per block. */
  readonly blockSize: number;
  /** Bytes per block, scale included. */
  readonly blockBytes: number;
  /** Byte offset of the fp16 scale inside a block. */
  readonly scaleAt: number;
  readonly ternary: boolean;
  /**
   * Writes the block's `blockSize` values into out[y …] from the block at `bytes[at …]`, given its
   * (finite) scale `d`. Throws FormatError for codes the layout never writes; `block` is for messages.
   */
  decodeBlock(bytes: Uint8Array, at: number, d: number, out: Float32Array, y: number, block: number): void;
  /** Writes values[x … x + blockSize) as one block at `out[at …]`, its scale included. */
  encodeBlock(values: Float32Array, x: number, out: Uint8Array, at: number): void;
}

/**
 * A `QuantTraits` for a format of fixed-size blocks along `cols`, each with one fp16 scale: the
 * shape checks, the block loops and the non-finite-scale check are here, the layout in the spec.
 */
export function fp16BlockFormat(spec: Fp16BlockSpec): QuantTraits {
  const { name, blockSize, blockBytes, scaleAt } = spec;
  const byteSize = (rows: number, cols: number): number | undefined => blockedByteSize(rows, cols, blockSize, blockBytes);
  return {
    name,
    ggmlType: spec.ggmlType,
    blockSize,
    blockBytes,
    bitsPerWeight: (8 * blockBytes) / blockSize,
    ternary: spec.ternary,
    byteSize,
    decode(bytes, rows, cols) {
      checkDecode(name, byteSize, bytes, rows, cols);
      const out = new Float32Array(rows * cols);
      const blocks = out.length / blockSize;
      for (let b = 0; b < blocks; b++) {
        const at = b * blockBytes;
        checkHalfScale(name, readHalfBits(bytes, at + scaleAt), b);
        spec.decodeBlock(bytes, at, readHalf(bytes, at + scaleAt), out, b * blockSize, b);
      }
      return out;
    },
    encode(values, rows, cols) {
      const out = new Uint8Array(checkEncode(name, byteSize, values, rows, cols));
      const blocks = values.length / blockSize;
      for (let b = 0; b < blocks; b++) {
        spec.encodeBlock(values, b * blockSize, out, b * blockBytes);
      }
      return out;
    },
  };
}
