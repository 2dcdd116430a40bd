import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { halfToF32, roundToHalf } from "../../src/quant/half.js";
import { QUANT_TRAITS } from "../../src/quant/table.js";
import type { QuantTraits } from "../../src/quant/types.js";

const RUNS = Number(process.env["BARBELL_FUZZ_RUNS"] ?? 100);

function plain(values: Float32Array): number[] {
  return Array.from(values, (v) => v + 0);
}

/** rows × cols with cols a whole number of blocks (1..3 of each). */
function blockShape(t: QuantTraits): fc.Arbitrary<{ rows: number; cols: number }> {
  return fc.record({
    rows: fc.integer({ min: 1, max: 3 }),
    cols: fc.integer({ min: 1, max: 3 }).map((k) => k * t.blockSize),
  });
}

function tritTensor(t: QuantTraits): fc.Arbitrary<{ rows: number; cols: number; trits: number[] }> {
  const shape =
    t.name === "hf_packed"
      ? fc.record({ rows: fc.integer({ min: 1, max: 4 }).map((k) => 4 * k), cols: fc.integer({ min: 1, max: 7 }) })
      : blockShape(t);
  return shape.chain(({ rows, cols }) =>
    fc.record({
      rows: fc.constant(rows),
      cols: fc.constant(cols),
      trits: fc.array(fc.constantFrom(-1, 0, 1), { minLength: rows * cols, maxLength: rows * cols }),
    }),
  );
}

const gammaArb = fc.float({ min: Math.fround(1e-3), max: Math.fround(1e3), noNaN: true });

describe("lossless round trips", () => {
  it.each(["tq1_0", "tq2_0"] as const)("should round-trip γ·trits through %s up to fp16 rounding of γ", (name) => {
    const t = QUANT_TRAITS[name];
    fc.assert(
      fc.property(tritTensor(t), gammaArb, ({ rows, cols, trits }, gamma) => {
        const values = Float32Array.from(trits, (w) => gamma * w);
        const decoded = t.decode(t.encode(values, rows, cols), rows, cols);
        const g = roundToHalf(gamma);
        expect(plain(decoded)).toEqual(trits.map((w) => Math.fround(w * g) + 0));
      }),
      { numRuns: RUNS },
    );
  });

  it("should round-trip γ·trits through i2_s exactly, γ being a float32", () => {
    const t = QUANT_TRAITS.i2_s;
    fc.assert(
      fc.property(tritTensor(t), gammaArb, ({ rows, cols, trits }, gamma) => {
        const values = Float32Array.from(trits, (w) => gamma * w);
        const g = trits.some((w) => w !== 0) ? gamma : 0;
        expect(plain(t.decode(t.encode(values, rows, cols), rows, cols))).toEqual(trits.map((w) => w * g + 0));
      }),
      { numRuns: RUNS },
    );
  });

  it("should round-trip trits through hf_packed exactly", () => {
    const t = QUANT_TRAITS.hf_packed;
    fc.assert(
      fc.property(tritTensor(t), ({ rows, cols, trits }) => {
        const values = Float32Array.from(trits);
        expect(plain(t.decode(t.encode(values, rows, cols), rows, cols))).toEqual(trits);
      }),
      { numRuns: RUNS },
    );
  });

  it("should round-trip ±d sign blocks through q1_0 when d is an fp16 value", () => {
    const t = QUANT_TRAITS.q1_0;
    const arb = blockShape(t).chain(({ rows, cols }) =>
      fc.record({
        rows: fc.constant(rows),
        cols: fc.constant(cols),
        signs: fc.array(fc.boolean(), { minLength: rows * cols, maxLength: rows * cols }),
        d: fc.integer({ min: 0x0400, max: 0x7bff }).map(halfToF32),
      }),
    );
    fc.assert(
      fc.property(arb, ({ rows, cols, signs, d }) => {
        const values = Float32Array.from(signs, (s) => (s ? d : -d));
        expect(t.decode(t.encode(values, rows, cols), rows, cols)).toEqual(values);
      }),
      { numRuns: RUNS },
    );
  });

  it("should round-trip any float32 bit pattern through f32", () => {
    const t = QUANT_TRAITS.f32;
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 1, maxLength: 40 }), (bits) => {
        const values = new Float32Array(Uint32Array.from(bits).buffer);
        const decoded = t.decode(t.encode(values, 1, bits.length), 1, bits.length);
        expect(Array.from(new Uint32Array(decoded.buffer))).toEqual(bits);
      }),
      { numRuns: RUNS },
    );
  });

  it.each(["f16", "bf16"] as const)("should round-trip every representable %s value exactly", (name) => {
    const t = QUANT_TRAITS[name];
    const isNaNBits = (u: number): boolean =>
      name === "f16" ? (u & 0x7c00) === 0x7c00 && (u & 0x3ff) !== 0 : (u & 0x7f80) === 0x7f80 && (u & 0x7f) !== 0;
    const pattern = fc.integer({ min: 0, max: 0xffff }).filter((u) => !isNaNBits(u));
    const arb = fc.array(pattern, { minLength: 1, maxLength: 40 });
    fc.assert(
      fc.property(arb, (patterns) => {
        const bytes = new Uint8Array(new Uint16Array(patterns).buffer);
        const decoded = t.decode(bytes, patterns.length, 1);
        expect(t.encode(decoded, patterns.length, 1)).toEqual(bytes);
      }),
      { numRuns: RUNS },
    );
  });
});

type Tensor = { rows: number; cols: number; values: Float32Array };

function blockValues(t: QuantTraits, magnitude: number): fc.Arbitrary<Tensor> {
  const m = Math.fround(magnitude);
  return blockShape(t).chain(({ rows, cols }) =>
    fc.record({
      rows: fc.constant(rows),
      cols: fc.constant(cols),
      values: fc.float32Array({ min: -m, max: m, noNaN: true, minLength: rows * cols, maxLength: rows * cols }),
    }),
  );
}

function blockAbsMax(values: Float32Array, from: number, n: number): number {
  let m = 0;
  for (let i = from; i < from + n; i++) {
    m = Math.max(m, Math.abs(values[i] ?? 0));
  }
  return m;
}

describe("lossy round trips", () => {
  it("should keep q8_0 errors within about half a step of absmax/127", () => {
    const t = QUANT_TRAITS.q8_0;
    fc.assert(
      fc.property(blockValues(t, 100), ({ rows, cols, values }) => {
        const decoded = t.decode(t.encode(values, rows, cols), rows, cols);
        for (let b = 0; b < values.length; b += 32) {
          const bound = (0.6 * blockAbsMax(values, b, 32)) / 127 + 127 * 2 ** -24;
          for (let i = b; i < b + 32; i++) {
            expect(Math.abs((decoded[i] ?? 0) - (values[i] ?? 0))).toBeLessThanOrEqual(bound);
          }
        }
      }),
      { numRuns: RUNS },
    );
  });

  it("should keep q6_k errors below absmax/50 of each block", () => {
    const t = QUANT_TRAITS.q6_k;
    fc.assert(
      fc.property(blockValues(t, 100), ({ rows, cols, values }) => {
        const decoded = t.decode(t.encode(values, rows, cols), rows, cols);
        for (let b = 0; b < values.length; b += 256) {
          const bound = blockAbsMax(values, b, 256) / 50 + 2e-4;
          for (let i = b; i < b + 256; i++) {
            expect(Math.abs((decoded[i] ?? 0) - (values[i] ?? 0))).toBeLessThanOrEqual(bound);
          }
        }
      }),
      { numRuns: RUNS },
    );
  });

  it("should keep q6_k RMS error under 3% of the signal on uniform data", () => {
    const t = QUANT_TRAITS.q6_k;
    const values = new Float32Array(256 * 8);
    let seed = 12345;
    for (let i = 0; i < values.length; i++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      values[i] = (seed / 2 ** 31) * 2 - 1;
    }
    const decoded = t.decode(t.encode(values, 8, 256), 8, 256);
    let err = 0;
    let sig = 0;
    for (let i = 0; i < values.length; i++) {
      err += ((decoded[i] ?? 0) - (values[i] ?? 0)) ** 2;
      sig += (values[i] ?? 0) ** 2;
    }
    expect(Math.sqrt(err / sig)).toBeLessThan(0.03);
  });

  it("should encode an all-zero q6_k block to zeros", () => {
    const t = QUANT_TRAITS.q6_k;
    expect(plain(t.decode(t.encode(new Float32Array(256), 1, 256), 1, 256))).toEqual(new Array<number>(256).fill(0));
  });
});
