import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { binaryBroadcast, scale, unary, type BinaryOp, type UnaryOp } from "../../src/backends/js/kernels/elementwise.js";
import { ShapeError } from "../../src/core/errors.js";

const RUNS = { seed: 141421, numRuns: 150 };

const UNARY_OPS: readonly UnaryOp[] = ["relu", "relu2", "silu", "gelu", "sigmoid", "tanh", "neg", "exp", "abs"];
const BINARY_OPS: readonly BinaryOp[] = ["add", "sub", "mul", "div", "max", "min"];

function applyUnary(op: UnaryOp, values: readonly number[]): number[] {
  const x = Float32Array.from(values);
  const out = new Float32Array(x.length);
  unary(op, x, x.length, out);
  return Array.from(out);
}

/** An operand laid out in memory in `order` (a permutation of dims), with stride 0 on broadcast dims. */
interface Operand {
  readonly data: Float32Array;
  readonly strides: number[];
}

const operandFor = (shape: readonly number[]) =>
  fc
    .record({
      broadcast: fc.array(fc.boolean(), { minLength: shape.length, maxLength: shape.length }),
      order: fc.shuffledSubarray(
        shape.map((_, d) => d),
        { minLength: shape.length, maxLength: shape.length },
      ),
    })
    .chain(({ broadcast, order }) => {
      const strides = new Array<number>(shape.length).fill(0);
      let size = 1;
      for (let p = order.length - 1; p >= 0; p--) {
        const d = order[p] ?? 0;
        if (broadcast[d] !== true) {
          strides[d] = size;
          size *= shape[d] ?? 1;
        }
      }
      return fc
        .float32Array({ minLength: size, maxLength: size, noDefaultInfinity: true, min: -1e6, max: 1e6 })
        .map((data): Operand => ({ data, strides }));
    });

const broadcastCase = fc
  .array(fc.integer({ min: 1, max: 4 }), { minLength: 0, maxLength: 4 })
  .chain((shape) =>
    fc.record({
      shape: fc.constant(shape),
      a: operandFor(shape),
      b: operandFor(shape),
      op: fc.constantFrom(...BINARY_OPS),
    }),
  );

const NAIVE_BINARY: Record<BinaryOp, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  max: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? Number.NaN : a > b || (a === b && Object.is(b, -0)) ? a : b),
  min: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? Number.NaN : a < b || (a === b && Object.is(a, -0)) ? a : b),
};

describe("unary", () => {
  it("should compute the listed activations at known points", () => {
    expect(applyUnary("relu", [-2, -0, 0, 3.5])).toEqual([0, 0, 0, 3.5]);
    expect(applyUnary("relu2", [-2, 0.5, 3])).toEqual([0, 0.25, 9]);
    expect(applyUnary("silu", [0, 1])).toEqual([0, Math.fround(1 / (1 + Math.exp(-1)))]);
    expect(applyUnary("sigmoid", [0])).toEqual([0.5]);
    expect(applyUnary("neg", [2, -0.5])).toEqual([-2, 0.5]);
    expect(applyUnary("abs", [-2, 0.5])).toEqual([2, 0.5]);
    expect(applyUnary("exp", [0, 1])).toEqual([1, Math.fround(Math.E)]);
    expect(applyUnary("gelu", [0])).toEqual([0]);
    expect(applyUnary("gelu", [1])[0]).toBeCloseTo(0.841192, 6);
    expect(applyUnary("gelu", [-10, 10])).toEqual([-0, 10]);
  });

  it("should round the float64 value of each op to f32 once", () => {
    const reference: Record<UnaryOp, (x: number) => number> = {
      relu: (x) => (x > 0 ? x : 0),
      relu2: (x) => (x > 0 ? x * x : 0),
      silu: (x) => x * (1 / (1 + Math.exp(-x))),
      gelu: (x) => x * 0.5 * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * x * (1 + 0.044715 * x * x))),
      sigmoid: (x) => 1 / (1 + Math.exp(-x)),
      tanh: (x) => Math.tanh(x),
      neg: (x) => -x,
      exp: (x) => Math.exp(x),
      abs: (x) => Math.abs(x),
    };
    fc.assert(
      fc.property(
        fc.constantFrom(...UNARY_OPS),
        fc.array(fc.float({ min: -30, max: 30, noNaN: true }), { minLength: 1, maxLength: 20 }),
        (op, values) => {
          const out = applyUnary(op, values);
          values.forEach((x, i) => {
            const expected = reference[op](x);
            // One f32 rounding plus the float64 reordering of the reference: within 2 f32 ulps.
            expect(Math.abs((out[i] ?? 0) - expected)).toBeLessThanOrEqual(2 ** -23 * Math.abs(expected) + 1e-44);
          });
        },
      ),
      RUNS,
    );
  });

  it("should satisfy gelu(x) − gelu(−x) = x for the tanh form", () => {
    fc.assert(
      fc.property(fc.float({ min: -20, max: 20, noNaN: true }), (x) => {
        const [pos, neg] = applyUnary("gelu", [x, -x]);
        expect(Math.abs((pos ?? 0) - (neg ?? 0) - Math.fround(x))).toBeLessThanOrEqual(2 ** -22 * Math.abs(x) + 1e-44);
      }),
      RUNS,
    );
  });

  it("should propagate NaN through every op", () => {
    for (const op of UNARY_OPS) {
      expect(Number.isNaN(applyUnary(op, [Number.NaN])[0])).toBe(true);
    }
  });

  it("should allow out to be the same array as x", () => {
    const x = Float32Array.of(-1, 0.5, 2);
    unary("relu2", x, 3, x);
    expect(Array.from(x)).toEqual([0, 0.25, 4]);
  });
});

describe("binaryBroadcast", () => {
  it("should match a naive multi-index computation for any strides, transposed and broadcast operands", () => {
    fc.assert(
      fc.property(broadcastCase, ({ shape, a, b, op }) => {
        const total = shape.reduce((p, s) => p * s, 1);
        const out = new Float32Array(total);
        binaryBroadcast(op, a.data, a.strides, b.data, b.strides, shape, out);
        for (let flat = 0; flat < total; flat++) {
          let rest = flat;
          let ai = 0;
          let bi = 0;
          for (let d = shape.length - 1; d >= 0; d--) {
            const size = shape[d] ?? 1;
            const index = rest % size;
            rest = Math.floor(rest / size);
            ai += index * (a.strides[d] ?? 0);
            bi += index * (b.strides[d] ?? 0);
          }
          expect(out[flat]).toBe(Math.fround(NAIVE_BINARY[op](a.data[ai] ?? 0, b.data[bi] ?? 0)));
        }
      }),
      RUNS,
    );
  });

  it("should add a bias row to every row of a matrix through a zero stride", () => {
    const x = Float32Array.of(1, 2, 3, 4, 5, 6);
    const bias = Float32Array.of(10, 20, 30);
    const out = new Float32Array(6);
    binaryBroadcast("add", x, [3, 1], bias, [0, 1], [2, 3], out);
    expect(Array.from(out)).toEqual([11, 22, 33, 14, 25, 36]);
  });

  it("should propagate NaN through max and min and order −0 below +0", () => {
    const out = new Float32Array(2);
    binaryBroadcast("max", Float32Array.of(Number.NaN, -0), [1], Float32Array.of(1, 0), [1], [2], out);
    expect(Number.isNaN(out[0])).toBe(true);
    expect(Object.is(out[1], 0)).toBe(true);
    binaryBroadcast("min", Float32Array.of(1, -0), [1], Float32Array.of(Number.NaN, 0), [1], [2], out);
    expect(Number.isNaN(out[0])).toBe(true);
    expect(Object.is(out[1], -0)).toBe(true);
  });

  it("should write nothing for an empty shape and throw ShapeError for strides that leave an operand", () => {
    const out = new Float32Array(1).fill(7);
    binaryBroadcast("add", new Float32Array(0), [1, 1], new Float32Array(0), [1, 1], [0, 3], out);
    expect(out[0]).toBe(7);
    const a = new Float32Array(4);
    expect(() => binaryBroadcast("add", a, [2, 1], a, [0, 1], [3, 2], new Float32Array(6))).toThrow(ShapeError);
    expect(() => binaryBroadcast("add", a, [2], a, [1, 1], [2, 2], new Float32Array(4))).toThrow(ShapeError);
    expect(() => binaryBroadcast("add", a, [-1], a, [1], [2], new Float32Array(2))).toThrow(ShapeError);
  });
});

describe("scale", () => {
  it("should multiply by the factor rounded to f32, one f32 rounding per product", () => {
    fc.assert(
      fc.property(
        fc.float32Array({ minLength: 0, maxLength: 20, noNaN: true }),
        fc.double({ min: -1e3, max: 1e3, noNaN: true }),
        (x, factor) => {
          const out = new Float32Array(x.length);
          scale(x, factor, x.length, out);
          expect(out).toEqual(x.map((v) => v * Math.fround(factor)));
        },
      ),
      RUNS,
    );
  });
});
