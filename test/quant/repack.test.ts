/**
 * repackTernary for I2_S (the official 2B-4T format, transcoded word by word): the t2 codes must hold
 * exactly the trits the I2_S decoder reads, for aligned and unaligned input, and a code 3 is refused
 * naming its block and byte.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FormatError } from "../../src/core/errors.js";
import { unpackTernary } from "../../src/quant/layouts.js";
import { repackTernary } from "../../src/quant/repack.js";
import { QUANT_TRAITS } from "../../src/quant/table.js";

/** An I2_S tensor of random trits and scale 0.5: 2-bit codes (trit + 1) and the trailing 32-byte scale block. */
function i2s(rows: number, cols: number, seed: number): Uint8Array {
  const n = rows * cols;
  const bytes = new Uint8Array(n / 4 + 32);
  let s = seed >>> 0;
  for (let i = 0; i < n / 4; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    let b = 0;
    for (let f = 0; f < 4; f++) {
      b |= ((s >>> (8 * f)) % 3) << (2 * f);
    }
    bytes[i] = b;
  }
  new DataView(bytes.buffer).setFloat32(n / 4, 0.5, true);
  return bytes;
}

describe("repackTernary i2_s", () => {
  it("should give the trits the I2_S decoder reads, for aligned and unaligned input", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 4 }), fc.integer(), fc.integer({ min: 0, max: 3 }), (rows, blocks, seed, shift) => {
        const cols = 128 * blocks;
        const src = i2s(rows, cols, seed);
        const padded = new Uint8Array(src.length + shift);
        padded.set(src, shift);
        const view = padded.subarray(shift);
        const { codes, scale } = repackTernary("i2_s", view, rows, cols);
        expect(scale).toBe(0.5);
        const want = QUANT_TRAITS.i2_s.decode(src, rows, cols);
        const trits = unpackTernary(codes, rows, cols);
        for (let i = 0; i < rows * cols; i++) {
          expect((trits[i] ?? 9) * 0.5).toBe(want[i]);
        }
      }),
      { numRuns: 60 },
    );
  });

  it("should refuse a code 3 naming its block and byte", () => {
    const src = i2s(2, 128, 7);
    src[32 + 13] = 0b11000000 | ((src[32 + 13] ?? 0) & 0x3f); // block 1, byte 13: a code 3 in bits 7..6
    let caught: unknown;
    try {
      repackTernary("i2_s", src, 2, 128);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(FormatError);
    expect((caught as FormatError).message).toContain("block 1 byte 13");
  });
});

/** A TQ2_0 tensor of random trits times `gamma` (ggml's encoder: one d per block, 0 for all-zero blocks). */
function tq2(rows: number, cols: number, seed: number, gamma: number, zeroRows = 0): Uint8Array {
  const values = new Float32Array(rows * cols);
  let s = seed >>> 0;
  for (let i = zeroRows * cols; i < values.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    values[i] = (((s >>> 16) % 3) - 1) * gamma;
  }
  return QUANT_TRAITS.tq2_0.encode(values, rows, cols);
}

/** The decoding path's answer: the trits and γ of the decoded floats (what repackTernary must equal). */
function decodedTrits(bytes: Uint8Array, rows: number, cols: number): { trits: number[]; gamma: number } {
  const values = QUANT_TRAITS.tq2_0.decode(bytes, rows, cols);
  const gamma = Math.abs(values.find((v) => v !== 0) ?? 0);
  return { trits: Array.from(values, (v) => (v === 0 ? 0 : Math.sign(v))), gamma };
}

describe("repackTernary tq2_0", () => {
  it("should give the trits and γ the TQ2_0 decoder reads, all-zero blocks included", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 3 }), fc.integer(), fc.integer({ min: 0, max: 2 }), (rows, blocks, seed, zeroRows) => {
        const cols = 256 * blocks;
        const src = tq2(rows, cols, seed, 0.75, Math.min(zeroRows, rows));
        const { codes, scale } = repackTernary("tq2_0", src, rows, cols);
        const want = decodedTrits(src, rows, cols);
        expect(scale).toBe(want.gamma);
        expect(Array.from(unpackTernary(codes, rows, cols))).toEqual(want.trits);
      }),
      { numRuns: 40 },
    );
  });

  it("should read a negative block scale as the decoder does (signs flipped), and refuse differing scales", () => {
    const src = tq2(2, 256, 3, 0.5);
    src[66 + 65] = (src[66 + 65] ?? 0) | 0x80; // row 1's d = −0.5
    const { codes, scale } = repackTernary("tq2_0", src, 2, 256);
    const want = decodedTrits(src, 2, 256);
    expect(scale).toBe(want.gamma);
    expect(Array.from(unpackTernary(codes, 2, 256))).toEqual(want.trits);
    const differing = tq2(2, 256, 3, 0.5);
    differing.set(tq2(1, 256, 3, 0.25).subarray(64, 66), 66 + 64); // row 1's d = 0.25
    expect(() => repackTernary("tq2_0", differing, 2, 256)).toThrow(/not 0 or ±0.5/);
  });

  it("should refuse a code 3 as the decoder does", () => {
    const src = tq2(1, 256, 5, 1);
    src[10] = 0xff;
    expect(() => repackTernary("tq2_0", src, 1, 256)).toThrow(/block 0 byte 10 holds the unused code 3/);
  });
});
