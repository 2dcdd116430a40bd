/** The one dtype table (src/quant/dtypes.ts): the lists derived from it, pinned to the values they had when hand-kept. */
import { describe, expect, it } from "vitest";
import { KERNEL_OPS } from "../../src/backends/ops.js";
import { WIRE_DTYPES } from "../../src/formats/barewire/message.js";
import { elementBytes, STORAGE_WIRE_DTYPES } from "../../src/formats/barewire/dtypes.js";
import {
  DENSE_BLOCK_FORMATS,
  DENSE_FORMATS,
  dtypeTraits,
  GGUF_PROJECTION_FORMATS,
  INTEGER_HEAD_FORMATS,
  isDenseBlockFormat,
  isDTypeName,
  isIntegerHeadFormat,
  STORAGE_DTYPES,
  WIRE_DTYPE_ORDER,
} from "../../src/quant/dtypes.js";
import { QUANT_TRAITS } from "../../src/quant/table.js";

describe("dtype table", () => {
  it("should keep the BAREWire DType values byte for byte (schema/barewire.bare)", () => {
    expect(WIRE_DTYPE_ORDER).toEqual([
      "f32", "f16", "bf16", "i8", "i32", "ternary", "binary", "q8_0", "q6_k", "i2_s", "tq1_0", "tq2_0", "q1_0", "q4_k", "q5_k",
    ]);
    expect(WIRE_DTYPES).toEqual(WIRE_DTYPE_ORDER);
    WIRE_DTYPE_ORDER.forEach((d, i) => expect(dtypeTraits(d).wire, d).toBe(i));
    expect(dtypeTraits("hf_packed").wire).toBeUndefined();
  });

  it("should derive the lists that were kept by hand, with the same members and order", () => {
    expect(DENSE_BLOCK_FORMATS).toEqual(["f16", "bf16", "q8_0", "q4_k", "q5_k", "q6_k"]);
    expect(DENSE_FORMATS).toEqual(["f32", "f16", "bf16", "q8_0", "q4_k", "q5_k", "q6_k"]);
    expect(INTEGER_HEAD_FORMATS).toEqual(["q8_0", "q4_k", "q5_k", "q6_k"]);
    expect([...GGUF_PROJECTION_FORMATS].sort()).toEqual(["bf16", "f16", "f32", "i2_s", "tq1_0", "tq2_0"]);
    expect([...STORAGE_DTYPES].sort()).toEqual(["bf16", "binary", "f16", "f32", "i32", "i8", "q4_k", "q5_k", "q6_k", "q8_0", "ternary"]);
    expect(STORAGE_WIRE_DTYPES).toEqual(["f32", "f16", "bf16", "i8", "i32", "ternary", "binary", "q8_0", "q6_k", "q4_k", "q5_k"]);
  });

  it("should give every codec a row and take its GGUF id and block layout from the codec", () => {
    for (const [name, codec] of Object.entries(QUANT_TRAITS)) {
      expect(isDTypeName(name), name).toBe(true);
      if (isDTypeName(name)) {
        expect(dtypeTraits(name).codec, name).toBe(codec);
      }
    }
    expect(dtypeTraits("q6_k").codec?.ggmlType).toBe(14);
    expect(dtypeTraits("ternary").codec).toBeUndefined();
    expect(dtypeTraits("i32").codec).toBeUndefined();
  });

  it("should view payloads with the element sizes BAREWire always used", () => {
    const sizes = Object.fromEntries(WIRE_DTYPES.map((d) => [d, elementBytes(d)]));
    expect(sizes).toEqual({
      f32: 4, f16: 2, bf16: 2, i8: 1, i32: 4, ternary: 1, binary: 4, q8_0: 1, q6_k: 1, i2_s: 1, tq1_0: 1, tq2_0: 1, q1_0: 1, q4_k: 1, q5_k: 1,
    });
  });

  it("should drive the op table's operand lists", () => {
    const wOf = (op: keyof typeof KERNEL_OPS): unknown =>
      (KERNEL_OPS[op].params as readonly { kind: string; name: string; dtypes?: unknown }[]).find((p) => p.kind === "tensor" && p.name === "w")?.dtypes;
    expect(wOf("matmulQ8I8")).toEqual(INTEGER_HEAD_FORMATS);
    expect(wOf("matmulDense")).toEqual(DENSE_FORMATS);
  });

  it("should answer the predicates from the table, false for unknown names", () => {
    expect(isDenseBlockFormat("q4_k")).toBe(true);
    expect(isDenseBlockFormat("f32")).toBe(false);
    expect(isDenseBlockFormat("toString")).toBe(false);
    expect(isIntegerHeadFormat("q5_k")).toBe(true);
    expect(isIntegerHeadFormat("f16")).toBe(false);
    expect(isDTypeName("__proto__")).toBe(false);
  });
});
