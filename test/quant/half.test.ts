import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  bf16ToF32,
  f32BitsToBf16Bits,
  f32Bits,
  f32FromBits,
  f32ToBf16,
  f32ToHalf,
  halfToF32,
  roundToHalf,
} from "../../src/quant/half.js";

const RUNS = Number(process.env["BARBELL_FUZZ_RUNS"] ?? 300);

describe("binary16", () => {
  it("should encode and decode the known bit patterns", () => {
    expect(f32ToHalf(1)).toBe(0x3c00);
    expect(f32ToHalf(-2)).toBe(0xc000);
    expect(f32ToHalf(65504)).toBe(0x7bff);
    expect(f32ToHalf(2 ** -24)).toBe(0x0001);
    expect(f32ToHalf(2 ** -14)).toBe(0x0400);
    expect(f32ToHalf(1023 * 2 ** -24)).toBe(0x03ff);
    expect(f32ToHalf(-0)).toBe(0x8000);
    expect(f32ToHalf(0)).toBe(0x0000);
    expect(f32ToHalf(Infinity)).toBe(0x7c00);
    expect(f32ToHalf(-Infinity)).toBe(0xfc00);
    expect(halfToF32(0x3c00)).toBe(1);
    expect(halfToF32(0x7bff)).toBe(65504);
    expect(halfToF32(0x0001)).toBe(2 ** -24);
    expect(Object.is(halfToF32(0x8000), -0)).toBe(true);
    expect(halfToF32(0x7c00)).toBe(Infinity);
    expect(halfToF32(0xfc00)).toBe(-Infinity);
    expect(halfToF32(0x3555)).toBe(0.333251953125);
  });

  it("should keep NaN a NaN in both directions", () => {
    expect(Number.isNaN(halfToF32(0x7e00))).toBe(true);
    expect(Number.isNaN(halfToF32(0x7c01))).toBe(true);
    expect(Number.isNaN(halfToF32(0xfe00))).toBe(true);
    const h = f32ToHalf(Number.NaN);
    expect(h & 0x7c00).toBe(0x7c00);
    expect(h & 0x3ff).not.toBe(0);
    // A float32 NaN whose payload sits only in the low mantissa bits must not become inf.
    const low = f32ToHalf(f32FromBits(0x7f800001));
    expect(Number.isNaN(halfToF32(low))).toBe(true);
  });

  it("should round ties to even in the normal range", () => {
    expect(f32ToHalf(1 + 2 ** -11)).toBe(0x3c00); // tie between 0x3c00 (even) and 0x3c01
    expect(f32ToHalf(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie between 0x3c01 and 0x3c02 (even)
    expect(f32ToHalf(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01); // just above the tie
    expect(f32ToHalf(65519)).toBe(0x7bff);
    expect(f32ToHalf(65520)).toBe(0x7c00); // tie between 65504 (odd) and 65536 → inf
    expect(f32ToHalf(1e10)).toBe(0x7c00);
  });

  it("should round ties to even in the subnormal range", () => {
    expect(f32ToHalf(2 ** -25)).toBe(0x0000);
    expect(f32ToHalf(-(2 ** -25))).toBe(0x8000);
    expect(f32ToHalf(2 ** -25 + 2 ** -40)).toBe(0x0001);
    expect(f32ToHalf(3 * 2 ** -25)).toBe(0x0002);
    expect(f32ToHalf(1023.5 * 2 ** -24)).toBe(0x0400); // rounds up into the smallest normal
    expect(f32ToHalf(1e-30)).toBe(0x0000);
  });

  it("should round-trip every non-NaN half bit pattern", () => {
    for (let h = 0; h < 65536; h++) {
      if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) {
        continue;
      }
      if (f32ToHalf(halfToF32(h)) !== h) {
        expect(f32ToHalf(halfToF32(h))).toBe(h);
      }
    }
  });

  it("should pick the nearest half for any float32, ties to even", () => {
    fc.assert(
      fc.property(fc.float({ min: Math.fround(-65504), max: Math.fround(65504), noNaN: true }), (x) => {
        const h = f32ToHalf(x);
        const v = halfToF32(h);
        const mag = h & 0x7fff;
        const sign = h & 0x8000;
        const err = Math.abs(v - x);
        for (const n of [mag - 1, mag + 1]) {
          if (n < 0 || n > 0x7bff) {
            continue;
          }
          const other = Math.abs(halfToF32(sign | n) - x);
          expect(err).toBeLessThanOrEqual(other);
          if (err === other && v !== x) {
            expect(mag & 1).toBe(0);
          }
        }
      }),
      { numRuns: RUNS * 10 },
    );
  });

  it("should make roundToHalf idempotent", () => {
    fc.assert(
      fc.property(fc.float({ noNaN: true }), (x) => {
        const once = roundToHalf(x);
        expect(roundToHalf(once)).toBe(once);
      }),
      { numRuns: RUNS },
    );
  });
});

describe("bfloat16", () => {
  it("should encode and decode the known bit patterns", () => {
    expect(f32ToBf16(1)).toBe(0x3f80);
    expect(f32ToBf16(-2)).toBe(0xc000);
    expect(f32ToBf16(-0)).toBe(0x8000);
    expect(f32ToBf16(Infinity)).toBe(0x7f80);
    expect(bf16ToF32(0x4049)).toBe(3.140625);
    expect(bf16ToF32(0x0001)).toBe(f32FromBits(0x00010000));
    expect(Object.is(bf16ToF32(0x8000), -0)).toBe(true);
  });

  it("should round to nearest with ties to even", () => {
    expect(f32BitsToBf16Bits(0x3f808000)).toBe(0x3f80); // tie, 0x3f80 even
    expect(f32BitsToBf16Bits(0x3f818000)).toBe(0x3f82); // tie, 0x3f82 even
    expect(f32BitsToBf16Bits(0x3f808001)).toBe(0x3f81);
    expect(f32BitsToBf16Bits(0x3f807fff)).toBe(0x3f80);
    expect(f32BitsToBf16Bits(0x7f7fffff)).toBe(0x7f80); // float max rounds to inf, as PyTorch
  });

  it("should keep NaN a NaN, even when its payload is only in the low bits", () => {
    for (const bits of [0x7fc00000, 0x7f800001, 0xff800001, 0x7fffffff]) {
      const b = f32BitsToBf16Bits(bits);
      expect(Number.isNaN(bf16ToF32(b))).toBe(true);
    }
    expect(Number.isNaN(bf16ToF32(f32ToBf16(Number.NaN)))).toBe(true);
  });

  it("should round-trip every bfloat16 value exactly", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff }), (b) => {
        const bits = f32Bits(bf16ToF32(b));
        if ((b & 0x7f80) === 0x7f80 && (b & 0x7f) !== 0) {
          return;
        }
        expect(bits >>> 16).toBe(b);
        expect(f32ToBf16(bf16ToF32(b))).toBe(b);
      }),
      { numRuns: RUNS },
    );
  });
});
