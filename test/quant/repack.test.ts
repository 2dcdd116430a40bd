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
