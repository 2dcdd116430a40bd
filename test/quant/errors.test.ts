import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FormatError, ShapeError } from "../../src/core/errors.js";
import { QUANT_TRAITS } from "../../src/quant/table.js";
import type { QuantName, QuantTraits } from "../../src/quant/types.js";

const RUNS = Number(process.env["BARBELL_FUZZ_RUNS"] ?? 100);
const NAMES = Object.keys(QUANT_TRAITS) as QuantName[];

/** A small valid shape for each format. */
function shape(t: QuantTraits): [number, number] {
  return t.name === "hf_packed" ? [8, 3] : [2, t.blockSize === 1 ? 5 : t.blockSize];
}

function formatErrorCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof FormatError) {
      return e.code;
    }
    throw e;
  }
  return undefined;
}

describe.each(NAMES)("%s decode on bad input", (name) => {
  const t = QUANT_TRAITS[name];
  const [rows, cols] = shape(t);
  const size = t.byteSize(rows, cols) ?? 0;

  it("should throw a truncated FormatError for input one byte short or empty", () => {
    expect(formatErrorCode(() => t.decode(new Uint8Array(size - 1), rows, cols))).toBe("truncated");
    expect(formatErrorCode(() => t.decode(new Uint8Array(0), rows, cols))).toBe("truncated");
  });

  it("should throw truncated rather than allocate for a huge declared shape", () => {
    const big = t.name === "hf_packed" ? [2 ** 24, 2 ** 20] : [2 ** 20, t.blockSize * 2 ** 10];
    expect(formatErrorCode(() => t.decode(new Uint8Array(size), big[0] ?? 0, big[1] ?? 0))).toBe("truncated");
  });

  it("should throw a bad-block FormatError for shapes the format cannot hold", () => {
    for (const [r, c] of [
      [0, cols],
      [rows, 0],
      [-1, cols],
      [Number.NaN, cols],
      [rows, 2 ** 60],
    ] as const) {
      expect(formatErrorCode(() => t.decode(new Uint8Array(size), r, c))).toBe("bad-block");
    }
  });

  it("should ignore trailing bytes and accept a view at an odd offset", () => {
    const buf = new Uint8Array(size + 7).fill(0x55);
    // 0x55 is a finite fp16/f32 scale and code 1 (zero) everywhere, so every format decodes it.
    const view = buf.subarray(1);
    const decoded = t.decode(view, rows, cols);
    expect(decoded.length).toBe(rows * cols);
  });

  it("should decode random bytes or reject them with a FormatError, never anything else", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: size, maxLength: size + 3 }), (bytes) => {
        let decoded: Float32Array | undefined;
        try {
          decoded = t.decode(bytes, rows, cols);
        } catch (e) {
          expect(e).toBeInstanceOf(FormatError);
          return;
        }
        expect(decoded.length).toBe(rows * cols);
      }),
      { numRuns: RUNS },
    );
  });

  it("should encode any floats, NaN and infinities included, into bytes its decoder accepts", () => {
    const n = rows * cols;
    const arb = fc.float32Array({ minLength: n, maxLength: n });
    fc.assert(
      fc.property(arb, (values) => {
        const bytes = t.encode(values, rows, cols);
        expect(bytes.length).toBe(size);
        expect(t.decode(bytes, rows, cols).length).toBe(n);
      }),
      { numRuns: RUNS },
    );
  });

  it("should reject encode calls whose value count does not match the shape", () => {
    expect(() => t.encode(new Float32Array(rows * cols + 1), rows, cols)).toThrow(ShapeError);
    expect(formatErrorCode(() => t.encode(new Float32Array(0), 0, cols))).toBe("bad-block");
  });
});

describe("bad block contents", () => {
  it.each([
    ["q8_0", 0, 32],
    ["q6_k", 208, 256],
    ["q1_0", 0, 128],
    ["tq1_0", 52, 256],
    ["tq2_0", 64, 256],
  ] as const)("should reject a %s block whose fp16 scale is inf or NaN", (name, at, cols) => {
    const t = QUANT_TRAITS[name];
    for (const h of [0x7c00, 0xfc00, 0x7e00]) {
      const bytes = new Uint8Array(2 * t.blockBytes).fill(0x55);
      bytes[t.blockBytes + at] = 0x00;
      bytes[t.blockBytes + at + 1] = 0x3c;
      bytes[at] = h & 0xff;
      bytes[at + 1] = h >>> 8;
      expect(formatErrorCode(() => t.decode(bytes, 1, 2 * cols))).toBe("bad-block");
    }
  });

  it("should reject an i2_s tensor whose scale is inf or NaN", () => {
    const t = QUANT_TRAITS.i2_s;
    for (const top of [0x7f, 0xff]) {
      for (const third of [0x80, 0xc0]) {
        const bytes = new Uint8Array(64).fill(0x55, 0, 32);
        bytes.set([0, 0, third, top], 32);
        expect(formatErrorCode(() => t.decode(bytes, 1, 128))).toBe("bad-block");
      }
    }
  });

  it.each([
    ["tq2_0", 256, 17],
    ["i2_s", 128, 3],
  ] as const)("should reject the unused code 3 in %s", (name, cols, at) => {
    const t = QUANT_TRAITS[name];
    const bytes = new Uint8Array(t.byteSize(1, cols) ?? 0).fill(0x55, 0, t.blockBytes);
    bytes[at] = 0x5d; // bits 3..2 = 3
    expect(formatErrorCode(() => t.decode(bytes, 1, cols))).toBe("bad-block");
  });
});
