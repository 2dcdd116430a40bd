import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { softmax } from "../../src/backends/js/kernels/softmax.js";
import { ShapeError } from "../../src/core/errors.js";

const RUNS = { seed: 271828, numRuns: 150 };

// Multiples of 1/16 in [−64, 64]: adding an integer constant below 2^10 keeps every value exact in f32.
const sixteenths = (length: number) =>
  fc
    .array(fc.integer({ min: -1024, max: 1024 }), { minLength: length, maxLength: length })
    .map((a) => Float32Array.from(a, (v) => v / 16));

const softmaxCase = fc
  .record({ rows: fc.integer({ min: 1, max: 4 }), cols: fc.integer({ min: 1, max: 40 }) })
  .chain((d) => sixteenths(d.rows * d.cols).map((x) => ({ ...d, x })));

describe("softmax", () => {
  it("should produce rows of non-negative values that sum to 1", () => {
    fc.assert(
      fc.property(softmaxCase, ({ rows, cols, x }) => {
        const out = new Float32Array(rows * cols);
        softmax(x, rows, cols, out);
        for (let r = 0; r < rows; r++) {
          const row = out.subarray(r * cols, (r + 1) * cols);
          expect(row.every((p) => p >= 0 && p <= 1)).toBe(true);
          expect(Math.abs(row.reduce((s, p) => s + p, 0) - 1)).toBeLessThanOrEqual(cols * 2 ** -24);
        }
      }),
      RUNS,
    );
  });

  it("should be unchanged, bit for bit, when a constant is added to a row", () => {
    fc.assert(
      fc.property(softmaxCase, fc.integer({ min: -1000, max: 1000 }), ({ rows, cols, x }, shift) => {
        const out = new Float32Array(rows * cols);
        const shiftedOut = new Float32Array(rows * cols);
        softmax(x, rows, cols, out);
        softmax(
          x.map((v) => v + shift),
          rows,
          cols,
          shiftedOut,
        );
        expect(shiftedOut).toEqual(out);
      }),
      RUNS,
    );
  });

  it("should match exp(x − max) / Σ exp(x − max) computed in float64", () => {
    fc.assert(
      fc.property(softmaxCase, ({ rows, cols, x }) => {
        const out = new Float32Array(rows * cols);
        softmax(x, rows, cols, out);
        for (let r = 0; r < rows; r++) {
          const row = Array.from(x.subarray(r * cols, (r + 1) * cols));
          const exps = row.map((v) => Math.exp(v - Math.max(...row)));
          const total = exps.reduce((s, e) => s + e, 0);
          exps.forEach((e, c) => {
            expect(out[r * cols + c]).toBe(Math.fround(e / total));
          });
        }
      }),
      RUNS,
    );
  });

  it("should give masked (−Infinity) entries probability 0 and renormalise over the others", () => {
    fc.assert(
      fc.property(
        softmaxCase.chain((c) =>
          fc.array(fc.boolean(), { minLength: c.cols, maxLength: c.cols }).map((mask) => ({ ...c, mask })),
        ),
        ({ rows, cols, x, mask }) => {
          fc.pre(mask.some((masked) => !masked));
          const masked = x.map((v, i) => (mask[i % cols] === true ? -Infinity : v));
          const out = new Float32Array(rows * cols);
          softmax(masked, rows, cols, out);
          const kept = mask.filter((m) => !m).length;
          const compact = masked.filter((v) => v !== -Infinity);
          const compactOut = new Float32Array(rows * kept);
          softmax(compact, rows, kept, compactOut);
          expect(out.filter((_, i) => mask[i % cols] !== true)).toEqual(compactOut);
          expect(out.filter((_, i) => mask[i % cols] === true).every((p) => p === 0)).toBe(true);
        },
      ),
      RUNS,
    );
  });

  it("should output zeros for a fully masked row and leave other rows alone", () => {
    const x = Float32Array.of(-Infinity, -Infinity, -Infinity, 1, 2, 3);
    const out = new Float32Array(6).fill(5);
    softmax(x, 2, 3, out);
    expect(Array.from(out.subarray(0, 3))).toEqual([0, 0, 0]);
    expect(out[5]).toBeGreaterThan(out[4] ?? 1);
  });

  it("should turn a row containing NaN or +Infinity into NaN", () => {
    const out = new Float32Array(9);
    softmax(Float32Array.of(1, Number.NaN, 2, 0, Infinity, 1, Number.NaN, -Infinity, Number.NaN), 3, 3, out);
    expect(Array.from(out).every(Number.isNaN)).toBe(true);
  });

  it("should allow out to be the same array as x", () => {
    fc.assert(
      fc.property(softmaxCase, ({ rows, cols, x }) => {
        const separate = new Float32Array(rows * cols);
        softmax(x, rows, cols, separate);
        const inPlace = x.slice();
        softmax(inPlace, rows, cols, inPlace);
        expect(inPlace).toEqual(separate);
      }),
      RUNS,
    );
  });

  it("should throw ShapeError when out is too short", () => {
    expect(() => softmax(new Float32Array(6), 2, 3, new Float32Array(5))).toThrow(ShapeError);
  });
});
