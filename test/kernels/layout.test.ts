import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { concat, copyStrided } from "../../src/backends/js/kernels/layout.js";
import { ShapeError } from "../../src/core/errors.js";

const RUNS = { seed: 173205, numRuns: 150 };

function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length).fill(1);
  for (let d = shape.length - 2; d >= 0; d--) {
    strides[d] = (strides[d + 1] ?? 1) * (shape[d + 1] ?? 1);
  }
  return strides;
}

const permutedCase = fc
  .array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 4 })
  .chain((shape) =>
    fc.record({
      shape: fc.constant(shape),
      perm: fc.shuffledSubarray(
        shape.map((_, d) => d),
        { minLength: shape.length, maxLength: shape.length },
      ),
      data: fc.float32Array({
        minLength: shape.reduce((p, s) => p * s, 1),
        maxLength: shape.reduce((p, s) => p * s, 1),
      }),
    }),
  );

/** Contiguous copy of `src` (contiguous `shape`) with its dims reordered as perm (new dim p = old dim perm[p]). */
function transpose(src: Float32Array, shape: readonly number[], perm: readonly number[]): [Float32Array, number[]] {
  const strides = contiguousStrides(shape);
  const newShape = perm.map((d) => shape[d] ?? 1);
  const dst = new Float32Array(src.length);
  copyStrided(
    src,
    0,
    perm.map((d) => strides[d] ?? 0),
    newShape,
    dst,
  );
  return [dst, newShape];
}

describe("copyStrided", () => {
  it("should return the original after a transpose by a permutation and by its inverse", () => {
    fc.assert(
      fc.property(permutedCase, ({ shape, perm, data }) => {
        const [moved, movedShape] = transpose(data, shape, perm);
        const inverse = new Array<number>(perm.length).fill(0);
        perm.forEach((d, p) => {
          inverse[d] = p;
        });
        const [back, backShape] = transpose(moved, movedShape, inverse);
        expect(backShape).toEqual(shape);
        expect(back).toEqual(data);
      }),
      RUNS,
    );
  });

  it("should transpose a matrix so that out[j, i] = in[i, j]", () => {
    const [t] = transpose(Float32Array.of(1, 2, 3, 4, 5, 6), [2, 3], [1, 0]);
    expect(Array.from(t)).toEqual([1, 4, 2, 5, 3, 6]);
  });

  it("should slice a block out of a matrix with an offset and a smaller shape", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 6 }),
        fc.nat(),
        fc.nat(),
        fc.nat(),
        fc.nat(),
        (rows, cols, r0Seed, c0Seed, hSeed, wSeed) => {
          const src = Int32Array.from({ length: rows * cols }, (_, i) => i);
          const r0 = r0Seed % rows;
          const c0 = c0Seed % cols;
          const h = 1 + (hSeed % (rows - r0));
          const w = 1 + (wSeed % (cols - c0));
          const dst = new Int32Array(h * w);
          copyStrided(src, r0 * cols + c0, [cols, 1], [h, w], dst);
          for (let r = 0; r < h; r++) {
            for (let c = 0; c < w; c++) {
              expect(dst[r * w + c]).toBe((r0 + r) * cols + c0 + c);
            }
          }
        },
      ),
      RUNS,
    );
  });

  it("should reverse with a negative stride and repeat with a zero stride", () => {
    const src = Uint8Array.of(1, 2, 3);
    const reversed = new Uint8Array(3);
    copyStrided(src, 2, [-1], [3], reversed);
    expect(Array.from(reversed)).toEqual([3, 2, 1]);
    const repeated = new Uint8Array(6);
    copyStrided(src, 0, [0, 1], [2, 3], repeated);
    expect(Array.from(repeated)).toEqual([1, 2, 3, 1, 2, 3]);
  });

  it("should copy the single element of a rank-0 view", () => {
    const dst = new Float64Array(1);
    copyStrided(Float64Array.of(4, 5), 1, [], [], dst);
    expect(dst[0]).toBe(5);
  });

  it("should throw ShapeError when the view reads outside src or dst is too short", () => {
    const src = new Float32Array(6);
    expect(() => copyStrided(src, 1, [3, 1], [2, 3], new Float32Array(6))).toThrow(ShapeError);
    expect(() => copyStrided(src, 0, [-1], [2], new Float32Array(2))).toThrow(ShapeError);
    expect(() => copyStrided(src, 0, [3, 1], [2, 3], new Float32Array(5))).toThrow(ShapeError);
    expect(() => copyStrided(src, 0, [3], [2, 3], new Float32Array(6))).toThrow(ShapeError);
  });
});

describe("concat", () => {
  it("should place each part at its offset along the axis, as a naive index computation does", () => {
    const concatCase = fc
      .record({
        shape: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 3 }),
        sizes: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 3 }),
      })
      .chain(({ shape, sizes }) =>
        fc.integer({ min: 0, max: shape.length - 1 }).map((axis) => ({
          axis,
          shapes: sizes.map((s) => shape.map((d, i) => (i === axis ? s : d))),
        })),
      );
    fc.assert(
      fc.property(concatCase, ({ axis, shapes }) => {
        let next = 0;
        const parts = shapes.map((s) => Float32Array.from({ length: s.reduce((p, d) => p * d, 1) }, () => next++));
        const outShape = (shapes[0] ?? []).map((d, i) =>
          i === axis ? shapes.reduce((sum, s) => sum + (s[axis] ?? 0), 0) : d,
        );
        const out = new Float32Array(outShape.reduce((p, d) => p * d, 1));
        concat(parts, shapes, axis, out);
        const outStrides = contiguousStrides(outShape);
        let offset = 0;
        shapes.forEach((shape, p) => {
          const strides = contiguousStrides(shape);
          const part = parts[p] ?? new Float32Array(0);
          part.forEach((value, flat) => {
            let at = 0;
            shape.forEach((_, d) => {
              const index = Math.floor(flat / (strides[d] ?? 1)) % (shape[d] ?? 1);
              at += (index + (d === axis ? offset : 0)) * (outStrides[d] ?? 0);
            });
            expect(out[at]).toBe(value);
          });
          offset += shape[axis] ?? 0;
        });
      }),
      RUNS,
    );
  });

  it("should stack int8 rows along axis 0 and columns along axis 1", () => {
    const a = Int8Array.of(1, 2, 3, 4);
    const b = Int8Array.of(5, 6);
    const rows = new Int8Array(6);
    concat([a, b], [[2, 2], [1, 2]], 0, rows);
    expect(Array.from(rows)).toEqual([1, 2, 3, 4, 5, 6]);
    const cols = new Int8Array(6);
    concat([a, b], [[2, 2], [2, 1]], 1, cols);
    expect(Array.from(cols)).toEqual([1, 2, 5, 3, 4, 6]);
  });

  it("should throw ShapeError when the parts disagree off the axis or the axis is out of range", () => {
    const a = new Float32Array(4);
    expect(() => concat([a, a], [[2, 2], [1, 4]], 0, new Float32Array(8))).toThrow(ShapeError);
    expect(() => concat([a], [[2, 2]], 2, new Float32Array(4))).toThrow(ShapeError);
    expect(() => concat([a], [[2, 2], [2, 2]], 0, new Float32Array(4))).toThrow(ShapeError);
    expect(() => concat([a, a], [[2, 2], [2, 2]], 0, new Float32Array(7))).toThrow(ShapeError);
  });
});
