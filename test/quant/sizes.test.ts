import { describe, expect, it } from "vitest";
import { QUANT_TRAITS, quantByGgmlType } from "../../src/quant/table.js";
import type { QuantName } from "../../src/quant/types.js";

/** Block bytes summed field by field from each layout (the analogue of ggml's static_asserts). */
const LAYOUT: Record<QuantName, { block: number; bytes: number; ggml: number | undefined }> = {
  f32: { block: 1, bytes: 4, ggml: 0 },
  f16: { block: 1, bytes: 2, ggml: 1 },
  bf16: { block: 1, bytes: 2, ggml: 30 },
  q8_0: { block: 32, bytes: 2 + 32, ggml: 8 }, // d + qs[32]
  q4_k: { block: 256, bytes: 2 + 2 + 12 + 256 / 2, ggml: 12 }, // d + dmin + scales + qs
  q5_k: { block: 256, bytes: 2 + 2 + 12 + 256 / 8 + 256 / 2, ggml: 13 }, // d + dmin + scales + qh + qs
  q6_k: { block: 256, bytes: 256 / 2 + 256 / 4 + 256 / 16 + 2, ggml: 14 }, // ql + qh + scales + d
  q1_0: { block: 128, bytes: 2 + 128 / 8, ggml: 41 }, // d + sign bits
  tq1_0: { block: 256, bytes: (256 - (4 * 256) / 64) / 5 + 256 / 64 + 2, ggml: 34 }, // qs (5 trits/B) + qh (4/B) + d
  tq2_0: { block: 256, bytes: 256 / 4 + 2, ggml: 35 }, // qs + d
  i2_s: { block: 128, bytes: 128 / 4, ggml: 36 }, // codes only; the tensor adds γ + 28 zero bytes
  hf_packed: { block: 4, bytes: 1, ggml: undefined },
};

const NAMES = Object.keys(LAYOUT) as QuantName[];

describe("block layouts", () => {
  it("should hold one record per format name, each naming itself", () => {
    expect(Object.keys(QUANT_TRAITS).sort()).toEqual([...NAMES].sort());
    for (const name of NAMES) {
      expect(QUANT_TRAITS[name].name).toBe(name);
    }
  });

  it.each(NAMES)("should give %s the block size and byte count of its layout", (name) => {
    const t = QUANT_TRAITS[name];
    const layout = LAYOUT[name];
    expect(t.blockSize).toBe(layout.block);
    expect(t.blockBytes).toBe(layout.bytes);
    expect(t.bitsPerWeight).toBe((8 * t.blockBytes) / t.blockSize);
    expect(t.ggmlType).toBe(layout.ggml);
  });

  it("should give the documented bits per weight", () => {
    expect(QUANT_TRAITS.tq2_0.bitsPerWeight).toBe(2.0625);
    expect(QUANT_TRAITS.tq1_0.bitsPerWeight).toBe(1.6875);
    expect(QUANT_TRAITS.q6_k.bitsPerWeight).toBe(6.5625);
    expect(QUANT_TRAITS.q5_k.bitsPerWeight).toBe(5.5);
    expect(QUANT_TRAITS.q4_k.bitsPerWeight).toBe(4.5);
    expect(QUANT_TRAITS.q8_0.bitsPerWeight).toBe(8.5);
    expect(QUANT_TRAITS.q1_0.bitsPerWeight).toBe(1.125);
    expect(QUANT_TRAITS.i2_s.bitsPerWeight).toBe(2);
    expect(QUANT_TRAITS.hf_packed.bitsPerWeight).toBe(2);
  });

  it("should mark exactly the ternary-only formats as ternary", () => {
    const ternary = NAMES.filter((n) => QUANT_TRAITS[n].ternary).sort();
    expect(ternary).toEqual(["hf_packed", "i2_s", "tq1_0", "tq2_0"]);
  });

  it.each(NAMES.filter((n) => n !== "i2_s" && n !== "hf_packed"))(
    "should size a %s tensor as rows times blocks per row times block bytes",
    (name) => {
      const t = QUANT_TRAITS[name];
      for (const [rows, blocks] of [[1, 1], [3, 2], [2560, 10]] as const) {
        expect(t.byteSize(rows, blocks * t.blockSize)).toBe(rows * blocks * t.blockBytes);
      }
    },
  );

  it("should size an i2_s tensor as rows·cols/4 plus a 32-byte trailer", () => {
    expect(QUANT_TRAITS.i2_s.byteSize(2560, 2560)).toBe((2560 * 2560) / 4 + 32);
    expect(QUANT_TRAITS.i2_s.byteSize(1, 128)).toBe(64);
    expect(QUANT_TRAITS.i2_s.byteSize(2560, 6912)).toBe((2560 * 6912) / 4 + 32);
  });

  it("should size an hf_packed tensor as [rows/4, cols] bytes", () => {
    expect(QUANT_TRAITS.hf_packed.byteSize(2560, 2560)).toBe(640 * 2560);
    expect(QUANT_TRAITS.hf_packed.byteSize(4, 3)).toBe(3);
    expect(QUANT_TRAITS.hf_packed.byteSize(6912, 2560)).toBe(1728 * 2560);
  });

  it.each(NAMES)("should refuse hostile or unstorable shapes for %s without throwing", (name) => {
    const t = QUANT_TRAITS[name];
    const cols = t.name === "hf_packed" ? 3 : t.blockSize;
    const rows = t.name === "hf_packed" ? 4 : 1;
    const bad: [number, number][] = [
      [0, cols],
      [rows, 0],
      [-rows, cols],
      [rows, -cols],
      [Number.NaN, cols],
      [rows, Number.NaN],
      [Infinity, cols],
      [rows, Infinity],
      [rows + 0.5, cols],
      [rows, cols + 0.5],
      [2 ** 60, cols],
      [rows, 2 ** 60],
      [2 ** 30, 2 ** 30],
      [2 ** 52, 2 ** 12],
    ];
    for (const [r, c] of bad) {
      expect(t.byteSize(r, c)).toBeUndefined();
    }
    expect(t.byteSize(rows, cols)).toBeGreaterThan(0);
  });

  it("should refuse columns that are not a whole number of blocks", () => {
    expect(QUANT_TRAITS.q8_0.byteSize(1, 33)).toBeUndefined();
    expect(QUANT_TRAITS.q6_k.byteSize(1, 128)).toBeUndefined();
    expect(QUANT_TRAITS.tq2_0.byteSize(1, 3200)).toBeUndefined();
    expect(QUANT_TRAITS.tq1_0.byteSize(1, 255)).toBeUndefined();
    expect(QUANT_TRAITS.q1_0.byteSize(1, 64)).toBeUndefined();
    expect(QUANT_TRAITS.i2_s.byteSize(4, 32)).toBeUndefined(); // rows·cols = 128, but cols % 128 ≠ 0
    expect(QUANT_TRAITS.hf_packed.byteSize(6, 8)).toBeUndefined();
  });

  it("should find every GGUF format by its type id and nothing else", () => {
    for (const name of NAMES) {
      const id = QUANT_TRAITS[name].ggmlType;
      if (id !== undefined) {
        expect(quantByGgmlType(id)?.name).toBe(name);
      }
    }
    for (const id of [2, 15, 37, 38, 39, 42, -1, 1.5, Number.NaN, 2 ** 40]) {
      expect(quantByGgmlType(id)).toBeUndefined();
    }
  });
});
