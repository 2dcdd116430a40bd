import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { rmsNorm } from "../../src/backends/js/kernels/norm.js";
import { ShapeError } from "../../src/core/errors.js";

const RUNS = { seed: 314159, numRuns: 150 };

const normCase = fc
  .record({ rows: fc.integer({ min: 1, max: 4 }), cols: fc.integer({ min: 1, max: 70 }) })
  .chain((d) =>
    fc
      .record({
        x: fc.float32Array({
          minLength: d.rows * d.cols,
          maxLength: d.rows * d.cols,
          noNaN: true,
          min: -1e4,
          max: 1e4,
        }),
        weight: fc.float32Array({ minLength: d.cols, maxLength: d.cols, noNaN: true, min: -4, max: 4 }),
        eps: fc.constantFrom(1e-5, 1e-6, 0.5),
      })
      .map((r) => ({ ...d, ...r })),
  );

describe("rmsNorm", () => {
  it("should match x · w / sqrt(Σx²/cols + eps) computed in float64 within one f32 ulp", () => {
    fc.assert(
      fc.property(normCase, ({ rows, cols, x, weight, eps }) => {
        const out = new Float32Array(rows * cols);
        rmsNorm(x, weight, rows, cols, eps, out);
        for (let r = 0; r < rows; r++) {
          const row = Array.from(x.subarray(r * cols, (r + 1) * cols));
          const meanSquare = row.reduce((s, v) => s + v * v, 0) / cols;
          const inverseRms = 1 / Math.sqrt(meanSquare + eps);
          row.forEach((v, c) => {
            const expected = v * (weight[c] ?? 0) * inverseRms;
            const actual = out[r * cols + c] ?? 0;
            expect(Math.abs(actual - expected)).toBeLessThanOrEqual(2 ** -23 * Math.abs(expected) + 1e-40);
          });
        }
      }),
      RUNS,
    );
  });

  it("should treat a missing weight as all ones", () => {
    fc.assert(
      fc.property(normCase, ({ rows, cols, x, eps }) => {
        const unweighted = new Float32Array(rows * cols);
        const ones = new Float32Array(rows * cols);
        rmsNorm(x, undefined, rows, cols, eps, unweighted);
        rmsNorm(x, new Float32Array(cols).fill(1), rows, cols, eps, ones);
        expect(unweighted).toEqual(ones);
      }),
      RUNS,
    );
  });

  it("should give rows of unit root-mean-square when eps is negligible", () => {
    const x = Float32Array.from({ length: 3 * 10 }, (_, i) => Math.sin(i + 1) * (1 + i));
    const out = new Float32Array(x.length);
    rmsNorm(x, undefined, 3, 10, 1e-12, out);
    for (let r = 0; r < 3; r++) {
      const row = out.subarray(r * 10, (r + 1) * 10);
      const rms = Math.sqrt(row.reduce((s, v) => s + v * v, 0) / 10);
      expect(rms).toBeCloseTo(1, 6);
    }
  });

  it("should allow out to be the same array as x", () => {
    fc.assert(
      fc.property(normCase, ({ rows, cols, x, weight, eps }) => {
        const separate = new Float32Array(rows * cols);
        rmsNorm(x, weight, rows, cols, eps, separate);
        const inPlace = x.slice();
        rmsNorm(inPlace, weight, rows, cols, eps, inPlace);
        expect(inPlace).toEqual(separate);
      }),
      RUNS,
    );
  });

  it("should output zeros for an all-zero row when eps > 0", () => {
    const out = new Float32Array(4).fill(9);
    rmsNorm(new Float32Array(4), undefined, 1, 4, 1e-5, out);
    expect(Array.from(out)).toEqual([0, 0, 0, 0]);
  });

  it("should throw ShapeError when the weight is shorter than cols", () => {
    expect(() => rmsNorm(new Float32Array(8), new Float32Array(3), 2, 4, 1e-5, new Float32Array(8))).toThrow(
      ShapeError,
    );
  });
});
