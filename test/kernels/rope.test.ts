import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { rope, type RopeMode } from "../../src/backends/js/kernels/rope.js";
import { ShapeError } from "../../src/core/errors.js";

const RUNS = { seed: 161803, numRuns: 120 };

const ropeCase = fc
  .record({
    seq: fc.integer({ min: 1, max: 4 }),
    heads: fc.integer({ min: 1, max: 3 }),
    headDim: fc.integer({ min: 1, max: 16 }).map((h) => 2 * h),
    mode: fc.constantFrom<RopeMode>("neox", "adjacent"),
    theta: fc.constantFrom(10_000, 500_000),
  })
  .chain((d) =>
    fc
      .record({
        x: fc.float32Array({
          minLength: d.seq * d.heads * d.headDim,
          maxLength: d.seq * d.heads * d.headDim,
          noNaN: true,
          min: -100,
          max: 100,
        }),
        positions: fc
          .array(fc.integer({ min: 0, max: 4096 }), { minLength: d.seq, maxLength: d.seq })
          .map((p) => Int32Array.from(p)),
      })
      .map((r) => ({ ...d, ...r })),
  );

/** Offsets of rotation pair j within a head. */
function pair(mode: RopeMode, j: number, headDim: number): [number, number] {
  return mode === "neox" ? [j, j + headDim / 2] : [2 * j, 2 * j + 1];
}

function apply(
  x: Float32Array,
  c: { seq: number; heads: number; headDim: number; theta: number; mode: RopeMode },
  positions: Int32Array,
): Float32Array {
  const out = new Float32Array(x.length);
  rope(x, c.seq, c.heads, c.headDim, positions, c.theta, c.mode, out);
  return out;
}

describe("rope", () => {
  it("should leave every vector unchanged at position 0 (up to the sign of zeros)", () => {
    const withoutNegativeZero = (v: Float32Array) => Array.from(v, (e) => e + 0);
    fc.assert(
      fc.property(ropeCase, (c) => {
        expect(withoutNegativeZero(apply(c.x, c, new Int32Array(c.seq)))).toEqual(withoutNegativeZero(c.x));
      }),
      RUNS,
    );
  });

  it("should preserve the norm of every rotated pair", () => {
    fc.assert(
      fc.property(ropeCase, (c) => {
        const out = apply(c.x, c, c.positions);
        for (let row = 0; row < c.seq * c.heads; row++) {
          for (let j = 0; j < c.headDim / 2; j++) {
            const [a, b] = pair(c.mode, j, c.headDim).map((o) => row * c.headDim + o) as [number, number];
            const before = Math.hypot(c.x[a] ?? 0, c.x[b] ?? 0);
            const after = Math.hypot(out[a] ?? 0, out[b] ?? 0);
            expect(Math.abs(after - before)).toBeLessThanOrEqual(2 ** -22 * before + 1e-44);
          }
        }
      }),
      RUNS,
    );
  });

  it("should rotate pair j by position · theta^(−2j/headDim) radians", () => {
    const x = Float32Array.of(1, 0, 0, 1);
    const out = new Float32Array(4);
    rope(x, 1, 1, 4, Int32Array.of(3), 100, "adjacent", out);
    // Pair 0 turns by 3 rad; pair 1 by 3 · 100^(−1/2) = 0.3 rad.
    expect(Array.from(out)).toEqual([Math.cos(3), Math.sin(3), -Math.sin(0.3), Math.cos(0.3)].map(Math.fround));
  });

  it("should equal the adjacent mode after permuting dims j ↔ 2j and j + headDim/2 ↔ 2j + 1", () => {
    fc.assert(
      fc.property(ropeCase, (c) => {
        const half = c.headDim / 2;
        const toAdjacent = (v: Float32Array) => {
          const permuted = new Float32Array(v.length);
          for (let row = 0; row < c.seq * c.heads; row++) {
            for (let j = 0; j < half; j++) {
              permuted[row * c.headDim + 2 * j] = v[row * c.headDim + j] ?? 0;
              permuted[row * c.headDim + 2 * j + 1] = v[row * c.headDim + j + half] ?? 0;
            }
          }
          return permuted;
        };
        const neox = apply(c.x, { ...c, mode: "neox" }, c.positions);
        const adjacent = apply(toAdjacent(c.x), { ...c, mode: "adjacent" }, c.positions);
        expect(adjacent).toEqual(toAdjacent(neox));
      }),
      RUNS,
    );
  });

  it("should compose: rotating by p then by q equals rotating by p + q", () => {
    const composeCase = ropeCase.chain((c) =>
      fc
        .array(fc.integer({ min: 0, max: 4096 }), { minLength: c.seq, maxLength: c.seq })
        .map((q) => ({ ...c, second: Int32Array.from(q) })),
    );
    fc.assert(
      fc.property(composeCase, (c) => {
        const twice = apply(apply(c.x, c, c.positions), c, c.second);
        const once = apply(c.x, c, c.positions.map((p, s) => p + (c.second[s] ?? 0)));
        for (let i = 0; i < c.x.length; i++) {
          const row = Math.floor(i / c.headDim);
          const rowNorm = Math.hypot(...c.x.subarray(row * c.headDim, (row + 1) * c.headDim));
          expect(Math.abs((twice[i] ?? 0) - (once[i] ?? 0))).toBeLessThanOrEqual(1e-6 * rowNorm + 1e-30);
        }
      }),
      RUNS,
    );
  });

  it("should allow out to be the same array as x", () => {
    fc.assert(
      fc.property(ropeCase, (c) => {
        const inPlace = c.x.slice();
        rope(inPlace, c.seq, c.heads, c.headDim, c.positions, c.theta, c.mode, inPlace);
        expect(inPlace).toEqual(apply(c.x, c, c.positions));
      }),
      RUNS,
    );
  });

  it("should throw ShapeError for an odd head dimension or too few positions", () => {
    const x = new Float32Array(6);
    expect(() => rope(x, 1, 2, 3, Int32Array.of(0), 1e4, "neox", x)).toThrow(ShapeError);
    expect(() => rope(x, 2, 1, 2, Int32Array.of(0), 1e4, "neox", x)).toThrow(ShapeError);
  });
});
