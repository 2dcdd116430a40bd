import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  ValueError,
  binarize,
  matmulBinary,
  quantizeActivations,
  tensor,
  ternarize,
  toBinary,
  toTernary,
  unwrap,
} from "../../src/index.js";
import { roundHalfEven } from "../../src/quant/values.js";

describe("checked binary and ternary constructors", () => {
  it("should accept ternary values and keep them", () => {
    using w = unwrap(toTernary([1, 0, -1, -0, 1, 1], ["ffn", "embed"], [2, 3], { scale: 0.5 }));
    expect(w.dtype).toBe("ternary");
    expect(w.scale).toBe(0.5);
    expect(Array.from(w.toInt32())).toEqual([1, 0, -1, 0, 1, 1]);
    expect(Array.from(w.toFloat32())).toEqual([0.5, 0, -0.5, 0, 0.5, 0.5]);
  });

  it("should say which index holds which bad value", () => {
    const r = toTernary([1, 0, 2, -1], ["embed"], [4]);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error).toBeInstanceOf(ValueError);
      expect(r.error.code).toBe("not-ternary");
      expect(r.error.index).toBe(2);
      expect(r.error.value).toBe(2);
      expect(r.error.message).toBe("[toTernary] index 2 holds 2, not -1, 0 or +1");
    }
    const b = toBinary([1, -1, 0], ["embed"], [3]);
    expect(b.ok || b.error.message).toBe("[toBinary] index 2 holds 0, not ±1");
    const nan = toBinary([1, Number.NaN], ["embed"], [2]);
    expect(nan.ok || nan.error.index).toBe(1);
  });

  it("should round-trip any ternary array through the packed layout", () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(-1, 0, 1), { minLength: 1, maxLength: 70 }), (trits) => {
        using w = unwrap(toTernary(trits, ["embed"], [trits.length]));
        expect(Array.from(w.toInt32())).toEqual(trits.map((v) => v + 0));
      }),
      { seed: 7, numRuns: 100 },
    );
  });

  it("should ternarize by absmean with one scale for the tensor", () => {
    using x = tensor([0.9, -0.1, 0.05, -2, 0.3, 0], ["ffn", "embed"], [2, 3]);
    using w = unwrap(ternarize(x));
    const gamma = (0.9 + 0.1 + 0.05 + 2 + 0.3) / 6;
    expect(w.scale).toBeCloseTo(gamma, 6);
    expect(Array.from(w.toInt32())).toEqual([1, 0, 0, -1, 1, 0]);
  });

  it("should refuse to ternarize or binarize non-finite values", () => {
    using x = tensor([1, Number.POSITIVE_INFINITY], ["embed"], [2]);
    const t = ternarize(x);
    const b = binarize(x);
    expect(t.ok || t.error.code).toBe("non-finite");
    expect(b.ok || b.error.index).toBe(1);
  });

  it("should binarize by sign around the mean and compute XNOR-popcount dot products", () => {
    using x = tensor([3, -1, 2, -4, 0, 5, -5, 1], ["seq", "embed"], [2, 4]);
    using xb = unwrap(binarize(x));
    using w = unwrap(toBinary([1, 1, 1, 1, -1, 1, -1, 1], ["ffn", "embed"], [2, 4]));
    using acc = matmulBinary(xb, w);
    const signs = Array.from(xb.toInt32());
    expect(signs.every((s) => s === 1 || s === -1)).toBe(true);
    const ws = [1, 1, 1, 1, -1, 1, -1, 1];
    const expected: number[] = [];
    for (let i = 0; i < 2; i++) {
      for (let j = 0; j < 2; j++) {
        let d = 0;
        for (let c = 0; c < 4; c++) {
          d += (signs[i * 4 + c] ?? 0) * (ws[j * 4 + c] ?? 0);
        }
        expected.push(d);
      }
    }
    expect(Array.from(acc.toInt32())).toEqual(expected);
  });
});

describe("int8 activation quantization", () => {
  it("should round halves to even, as PyTorch and ggml do", () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4999, 2.5001].map(roundHalfEven)).toEqual([0, 2, 2, -0, -2, -2, 2, 3]);
    using x = tensor([127, 2.5, 3.5, -2.5, 0.5, -127], ["seq", "embed"], [1, 6]);
    using q = quantizeActivations(x);
    expect(Array.from(q.values.toInt32())).toEqual([127, 2, 4, -2, 0, -127]);
    expect(Array.from(q.scales.toFloat32())).toEqual([1]);
    expect(q.scales.dims).toEqual(["seq"]);
  });

  it("should use one scale per token and map each row's absmax to ±127", () => {
    fc.assert(
      fc.property(
        fc.array(fc.float({ min: -100, max: 100, noNaN: true, noDefaultInfinity: true }), { minLength: 6, maxLength: 6 }),
        (values) => {
          using x = tensor(values, ["seq", "embed"], [2, 3]);
          using q = quantizeActivations(x);
          const ints = q.values.toInt32();
          const scales = q.scales.toFloat32();
          for (let r = 0; r < 2; r++) {
            const row = values.slice(r * 3, r * 3 + 3);
            const absmax = Math.max(...row.map(Math.abs));
            if (absmax > 1e-3) {
              expect(Math.max(...Array.from(ints.slice(r * 3, r * 3 + 3), Math.abs))).toBe(127);
            }
            for (let c = 0; c < 3; c++) {
              expect(Math.abs((ints[r * 3 + c] ?? 0) / (scales[r] ?? 1) - (row[c] ?? 0))).toBeLessThanOrEqual(
                absmax / 127 / 2 + 1e-6,
              );
            }
          }
        },
      ),
      { seed: 3, numRuns: 200 },
    );
  });
});

describe("ternary tensors from packed codes", () => {
  it("should name the first byte holding code 3, wherever it is", async () => {
    const { ternaryFromCodes } = await import("../../src/index.js");
    for (const at of [0, 2, 5, 9, 27]) {
      const codes = new Uint8Array(28).fill(0b01010101);
      codes[at] = 0b00001100; // code 3 in bits 2-3
      const r = ternaryFromCodes(codes, ["ffn", "embed"], [4, 28]);
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.error.index).toBe(at);
      }
    }
    using ok = unwrap(ternaryFromCodes(new Uint8Array(28).fill(0b10010001), ["ffn", "embed"], [4, 28]));
    expect(Array.from(ok.toInt32().slice(0, 4))).toEqual([0, -1, 0, 1]);
  });
});
