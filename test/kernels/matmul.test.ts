import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  MAX_DOT_K,
  matmulBinaryBinary,
  matmulBinaryBinaryAcc,
  matmulBinaryI8,
  matmulBinaryI8Acc,
  matmulF32,
  matmulTernaryI8,
  matmulTernaryI8Acc,
  popcount32,
} from "../../src/backends/js/kernels/matmul.js";
import { ShapeError } from "../../src/core/errors.js";
import { unwrap } from "../../src/core/result.js";
import {
  binaryRowWords,
  packBinary,
  packTernary,
  ternaryRowBytes,
  unpackBinary,
  unpackTernary,
} from "../../src/quant/layouts.js";
import { absmeanTernarize, quantizeActivations } from "../../src/quant/values.js";
import { mulberry32 as uniformSource } from "../../src/model/bitnet/fixture.js";

const RUNS = { seed: 20240611, numRuns: 150 };

// Shapes include m = 1 and n = 1 (matrix-vector) and k off multiples of 4 and 32 (padding in t2 and b1).
const dims = fc.record({
  m: fc.integer({ min: 1, max: 4 }),
  k: fc.integer({ min: 1, max: 100 }),
  n: fc.integer({ min: 1, max: 5 }),
});

const signedUnits = (length: number, values: readonly number[]) =>
  fc.array(fc.constantFrom(...values), { minLength: length, maxLength: length }).map((a) => Int8Array.from(a));

const int8s = (length: number) => fc.int8Array({ minLength: length, maxLength: length });
const uint32s = (length: number) => fc.uint32Array({ minLength: length, maxLength: length });
const xScalesOf = (m: number) =>
  fc.float32Array({ minLength: m, maxLength: m, min: Math.fround(1e-2), max: Math.fround(1e4), noNaN: true });
const wScale = fc.float({ min: Math.fround(1e-3), max: 10, noNaN: true });

const ternaryCase = dims.chain((d) =>
  fc
    .record({ x: int8s(d.m * d.k), trits: signedUnits(d.n * d.k, [-1, 0, 1]), xScales: xScalesOf(d.m), gamma: wScale })
    .map((r) => ({ ...d, ...r })),
);

const binaryI8Case = dims.chain((d) =>
  fc
    .record({ x: int8s(d.m * d.k), signs: signedUnits(d.n * d.k, [-1, 1]), xScales: xScalesOf(d.m), beta: wScale })
    .map((r) => ({ ...d, ...r })),
);

const binaryBinaryCase = dims.chain((d) =>
  fc
    .record({
      xSigns: signedUnits(d.m * d.k, [-1, 1]),
      wSigns: signedUnits(d.n * d.k, [-1, 1]),
      xScales: xScalesOf(d.m),
      beta: wScale,
    })
    .map((r) => ({ ...d, ...r })),
);

/** Σ_c a[aRow + c] · b[bRow + c] with plain JS numbers. */
function denseDot(a: ArrayLike<number>, aRow: number, b: ArrayLike<number>, bRow: number, k: number): number {
  let sum = 0;
  for (let c = 0; c < k; c++) {
    sum += (a[aRow + c] ?? 0) * (b[bRow + c] ?? 0);
  }
  return sum;
}

function denseProduct(x: ArrayLike<number>, w: ArrayLike<number>, m: number, k: number, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      out.push(denseDot(x, i * k, w, j * k, k));
    }
  }
  return out;
}

/** Σ_c |a · b| per output, the magnitude that float error bounds scale with. */
function absProduct(x: ArrayLike<number>, w: ArrayLike<number>, m: number, k: number, n: number): number[] {
  return denseProduct(Array.from(x, Math.abs), Array.from(w, Math.abs), m, k, n);
}

/** x_q / s_x per row, rounded to f32: the float activations the int8 values stand for. */
function dequantizeInt8(x: Int8Array, xScales: Float32Array, k: number): Float32Array {
  return Float32Array.from(x, (q, idx) => q / (xScales[Math.floor(idx / k)] ?? 1));
}

function scaled(values: Int8Array, scale: number): Float32Array {
  return Float32Array.from(values, (v) => v * scale);
}

function normals(count: number, next: () => number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    out[i] = Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
  }
  return out;
}

describe("popcount32", () => {
  it("should count the set bits of any 32-bit word", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (v) => {
        let naive = 0;
        for (let b = 0; b < 32; b++) {
          naive += (v >>> b) & 1;
        }
        expect(popcount32(v)).toBe(naive);
      }),
      RUNS,
    );
    expect([0, 1, 0x80000000, 0xffffffff, -1].map(popcount32)).toEqual([0, 1, 1, 32, 32]);
  });
});

describe("matmulF32", () => {
  it("should round the float64 sum of products to f32 once per output", () => {
    const floatCase = dims.chain((d) =>
      fc
        .record({
          x: fc.float32Array({ minLength: d.m * d.k, maxLength: d.m * d.k, noNaN: true, min: -1e3, max: 1e3 }),
          w: fc.float32Array({ minLength: d.n * d.k, maxLength: d.n * d.k, noNaN: true, min: -1e3, max: 1e3 }),
        })
        .map((r) => ({ ...d, ...r })),
    );
    fc.assert(
      fc.property(floatCase, ({ m, k, n, x, w }) => {
        const out = new Float32Array(m * n);
        matmulF32(x, w, m, k, n, out);
        expect(Array.from(out)).toEqual(denseProduct(x, w, m, k, n).map(Math.fround));
      }),
      RUNS,
    );
  });

  it("should compute a matrix-vector product as the m = 1 case, row by row", () => {
    const next = uniformSource(7);
    const [m, k, n] = [3, 37, 5];
    const x = normals(m * k, next);
    const w = normals(n * k, next);
    const full = new Float32Array(m * n);
    matmulF32(x, w, m, k, n, full);
    for (let i = 0; i < m; i++) {
      const row = new Float32Array(n);
      matmulF32(x.subarray(i * k, (i + 1) * k), w, 1, k, n, row);
      expect(row).toEqual(full.subarray(i * n, (i + 1) * n));
    }
  });

  it("should throw ShapeError when an operand is shorter than its shape", () => {
    expect(() => matmulF32(new Float32Array(5), new Float32Array(6), 2, 3, 2, new Float32Array(4))).toThrow(
      ShapeError,
    );
    expect(() => matmulF32(new Float32Array(6), new Float32Array(6), 2, 3, 2, new Float32Array(3))).toThrow(
      ShapeError,
    );
    expect(() => matmulF32(new Float32Array(6), new Float32Array(6), 2.5, 3, 2, new Float32Array(4))).toThrow(
      ShapeError,
    );
  });
});

describe("matmulTernaryI8Acc", () => {
  it("should equal the dense Σ trit·x exactly on packed trits", () => {
    fc.assert(
      fc.property(ternaryCase, ({ m, k, n, x, trits }) => {
        const acc = new Int32Array(m * n);
        matmulTernaryI8Acc(x, packTernary(trits, n, k), m, k, n, acc);
        expect(Array.from(acc)).toEqual(denseProduct(x, trits, m, k, n));
      }),
      RUNS,
    );
  });

  it("should decode arbitrary t2 bytes like unpackTernary, code 3 and padding codes included", () => {
    const rawCase = dims.chain((d) =>
      fc
        .record({
          x: int8s(d.m * d.k),
          w: fc.uint8Array({ minLength: d.n * ternaryRowBytes(d.k), maxLength: d.n * ternaryRowBytes(d.k) }),
        })
        .map((r) => ({ ...d, ...r })),
    );
    fc.assert(
      fc.property(rawCase, ({ m, k, n, x, w }) => {
        const acc = new Int32Array(m * n);
        matmulTernaryI8Acc(x, w, m, k, n, acc);
        expect(Array.from(acc)).toEqual(denseProduct(x, unpackTernary(w, n, k), m, k, n));
      }),
      RUNS,
    );
  });

  it("should accumulate the largest possible magnitude exactly", () => {
    const k = 100_003;
    const x = new Int8Array(k).fill(-128);
    const w = packTernary(new Int8Array(k).fill(-1), 1, k);
    const acc = new Int32Array(1);
    matmulTernaryI8Acc(x, w, 1, k, 1, acc);
    expect(acc[0]).toBe(128 * k);
  });

  it("should give zero sums when k is 0 and refuse k above MAX_DOT_K", () => {
    const acc = new Int32Array(6).fill(7);
    matmulTernaryI8Acc(new Int8Array(0), new Uint8Array(0), 2, 0, 3, acc);
    expect(Array.from(acc)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(() => matmulTernaryI8Acc(new Int8Array(0), new Uint8Array(0), 0, MAX_DOT_K + 1, 0, acc)).toThrow(
      ShapeError,
    );
  });

  it("should throw ShapeError when the packed weights are shorter than n · ceil(k/4) bytes", () => {
    expect(() => matmulTernaryI8Acc(new Int8Array(5), new Uint8Array(3), 1, 5, 2, new Int32Array(2))).toThrow(
      ShapeError,
    );
  });
});

describe("matmulTernaryI8", () => {
  it("should scale the exact sum as fround(fround(fround(acc) / s_x) · γ)", () => {
    fc.assert(
      fc.property(ternaryCase, ({ m, k, n, x, trits, xScales, gamma }) => {
        const w = packTernary(trits, n, k);
        const acc = new Int32Array(m * n);
        matmulTernaryI8Acc(x, w, m, k, n, acc);
        const out = new Float32Array(m * n);
        matmulTernaryI8(x, xScales, w, gamma, m, k, n, out);
        const expected = Array.from(acc, (a, idx) => {
          const sx = xScales[Math.floor(idx / n)] ?? 1;
          return Math.fround(Math.fround(Math.fround(a) / sx) * Math.fround(gamma));
        });
        expect(Array.from(out)).toEqual(expected);
      }),
      RUNS,
    );
  });

  it("should match matmulF32 on the dequantized operands within 2^-21 of Σ|γ·trit·x_q/s_x|", () => {
    fc.assert(
      fc.property(ternaryCase, ({ m, k, n, x, trits, xScales, gamma }) => {
        const out = new Float32Array(m * n);
        matmulTernaryI8(x, xScales, packTernary(trits, n, k), gamma, m, k, n, out);
        const reference = new Float32Array(m * n);
        matmulF32(dequantizeInt8(x, xScales, k), scaled(trits, gamma), m, k, n, reference);
        const magnitude = absProduct(x, trits, m, k, n);
        for (let idx = 0; idx < m * n; idx++) {
          const unit = Math.fround(gamma) / (xScales[Math.floor(idx / n)] ?? 1);
          const bound = 2 ** -21 * unit * (magnitude[idx] ?? 0);
          expect(Math.abs((out[idx] ?? 0) - (reference[idx] ?? 0))).toBeLessThanOrEqual(bound);
        }
      }),
      RUNS,
    );
  });

  it("should reproduce a float BitLinear on ternarized weights with NMSE below 1e-3", () => {
    const next = uniformSource(12345);
    for (const [m, k, n] of [
      [1, 256, 32],
      [3, 301, 17],
      [2, 1000, 8],
    ] as const) {
      const x = normals(m * k, next);
      const { values: trits, scale: gamma } = unwrap(absmeanTernarize(normals(n * k, next)));
      const { values: xq, scales } = unwrap(quantizeActivations(x, m, k));
      const out = new Float32Array(m * n);
      matmulTernaryI8(xq, scales, packTernary(trits, n, k), gamma, m, k, n, out);
      const reference = new Float32Array(m * n);
      matmulF32(x, scaled(trits, gamma), m, k, n, reference);
      let error = 0;
      let energy = 0;
      for (let idx = 0; idx < m * n; idx++) {
        error += ((out[idx] ?? 0) - (reference[idx] ?? 0)) ** 2;
        energy += (reference[idx] ?? 0) ** 2;
      }
      expect(energy).toBeGreaterThan(0);
      expect(error / energy).toBeLessThan(1e-3);
    }
  });
});

describe("matmulBinaryI8Acc and matmulBinaryI8", () => {
  it("should equal the dense Σ ±x exactly on packed signs", () => {
    fc.assert(
      fc.property(binaryI8Case, ({ m, k, n, x, signs }) => {
        const acc = new Int32Array(m * n);
        matmulBinaryI8Acc(x, packBinary(signs, n, k), m, k, n, acc);
        expect(Array.from(acc)).toEqual(denseProduct(x, signs, m, k, n));
      }),
      RUNS,
    );
  });

  it("should ignore padding bits and decode arbitrary b1 words like unpackBinary", () => {
    const rawCase = dims.chain((d) =>
      fc.record({ x: int8s(d.m * d.k), w: uint32s(d.n * binaryRowWords(d.k)) }).map((r) => ({ ...d, ...r })),
    );
    fc.assert(
      fc.property(rawCase, ({ m, k, n, x, w }) => {
        const acc = new Int32Array(m * n);
        matmulBinaryI8Acc(x, w, m, k, n, acc);
        expect(Array.from(acc)).toEqual(denseProduct(x, unpackBinary(w, n, k), m, k, n));
      }),
      RUNS,
    );
  });

  it("should scale the exact sum as fround(fround(fround(acc) / s_x) · β)", () => {
    fc.assert(
      fc.property(binaryI8Case, ({ m, k, n, x, signs, xScales, beta }) => {
        const w = packBinary(signs, n, k);
        const acc = new Int32Array(m * n);
        matmulBinaryI8Acc(x, w, m, k, n, acc);
        const out = new Float32Array(m * n);
        matmulBinaryI8(x, xScales, w, beta, m, k, n, out);
        const expected = Array.from(acc, (a, idx) => {
          const sx = xScales[Math.floor(idx / n)] ?? 1;
          return Math.fround(Math.fround(Math.fround(a) / sx) * Math.fround(beta));
        });
        expect(Array.from(out)).toEqual(expected);
      }),
      RUNS,
    );
  });

  it("should match matmulF32 on the dequantized operands within 2^-21 of Σ|β·sign·x_q/s_x|", () => {
    fc.assert(
      fc.property(binaryI8Case, ({ m, k, n, x, signs, xScales, beta }) => {
        const out = new Float32Array(m * n);
        matmulBinaryI8(x, xScales, packBinary(signs, n, k), beta, m, k, n, out);
        const reference = new Float32Array(m * n);
        matmulF32(dequantizeInt8(x, xScales, k), scaled(signs, beta), m, k, n, reference);
        const magnitude = absProduct(x, signs, m, k, n);
        for (let idx = 0; idx < m * n; idx++) {
          const unit = Math.fround(beta) / (xScales[Math.floor(idx / n)] ?? 1);
          const bound = 2 ** -21 * unit * (magnitude[idx] ?? 0);
          expect(Math.abs((out[idx] ?? 0) - (reference[idx] ?? 0))).toBeLessThanOrEqual(bound);
        }
      }),
      RUNS,
    );
  });
});

describe("matmulBinaryBinaryAcc and matmulBinaryBinary", () => {
  it("should equal the dense ±1 dot product exactly (k − 2·popcount(x XOR w))", () => {
    fc.assert(
      fc.property(binaryBinaryCase, ({ m, k, n, xSigns, wSigns }) => {
        const acc = new Int32Array(m * n);
        matmulBinaryBinaryAcc(packBinary(xSigns, m, k), packBinary(wSigns, n, k), m, k, n, acc);
        expect(Array.from(acc)).toEqual(denseProduct(xSigns, wSigns, m, k, n));
      }),
      RUNS,
    );
  });

  it("should mask off padding bits even when the words carry garbage there", () => {
    const rawCase = dims.chain((d) =>
      fc
        .record({ x: uint32s(d.m * binaryRowWords(d.k)), w: uint32s(d.n * binaryRowWords(d.k)) })
        .map((r) => ({ ...d, ...r })),
    );
    fc.assert(
      fc.property(rawCase, ({ m, k, n, x, w }) => {
        const acc = new Int32Array(m * n);
        matmulBinaryBinaryAcc(x, w, m, k, n, acc);
        expect(Array.from(acc)).toEqual(denseProduct(unpackBinary(x, m, k), unpackBinary(w, n, k), m, k, n));
      }),
      RUNS,
    );
  });

  it("should scale the exact sum as fround(fround(fround(acc) · β_x) · β_w)", () => {
    fc.assert(
      fc.property(binaryBinaryCase, ({ m, k, n, xSigns, wSigns, xScales, beta }) => {
        const x = packBinary(xSigns, m, k);
        const w = packBinary(wSigns, n, k);
        const acc = new Int32Array(m * n);
        matmulBinaryBinaryAcc(x, w, m, k, n, acc);
        const out = new Float32Array(m * n);
        matmulBinaryBinary(x, xScales, w, beta, m, k, n, out);
        const expected = Array.from(acc, (a, idx) => {
          const betaX = xScales[Math.floor(idx / n)] ?? 1;
          return Math.fround(Math.fround(Math.fround(a) * betaX) * Math.fround(beta));
        });
        expect(Array.from(out)).toEqual(expected);
      }),
      RUNS,
    );
  });

  it("should match matmulF32 on the dequantized ±β operands within 2^-21 · k · β_x · β_w", () => {
    fc.assert(
      fc.property(binaryBinaryCase, ({ m, k, n, xSigns, wSigns, xScales, beta }) => {
        const out = new Float32Array(m * n);
        matmulBinaryBinary(packBinary(xSigns, m, k), xScales, packBinary(wSigns, n, k), beta, m, k, n, out);
        const xd = Float32Array.from(xSigns, (s, idx) => s * (xScales[Math.floor(idx / k)] ?? 1));
        const reference = new Float32Array(m * n);
        matmulF32(xd, scaled(wSigns, beta), m, k, n, reference);
        for (let idx = 0; idx < m * n; idx++) {
          const bound = 2 ** -21 * k * (xScales[Math.floor(idx / n)] ?? 1) * Math.fround(beta);
          expect(Math.abs((out[idx] ?? 0) - (reference[idx] ?? 0))).toBeLessThanOrEqual(bound);
        }
      }),
      RUNS,
    );
  });
});
