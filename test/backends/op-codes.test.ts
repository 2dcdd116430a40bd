/**
 * Op codes outside the op table (src/backends/ops.ts) are an error in every backend, never a default op:
 * the JS reference, the native addon (RangeError, turned into UsageError by its glue) and the wasm module
 * (UNKNOWN_OP status, turned into UsageError by its glue). Every code the table has is accepted.
 */
import { describe, expect, it } from "vitest";
import type { BinaryOp, UnaryOp } from "../../src/backends/backend.js";
import { createJsBackend } from "../../src/backends/js/index.js";
import { nativeAddon } from "../../src/backends/native-cpu/addon.js";
import { nativeElementwise, probeNativeCpu } from "../../src/backends/native-cpu/index.js";
import { binaryCode, BINARY_OPS, OP_TABLE_HASH, unaryCode, UNARY_OPS } from "../../src/backends/ops.js";
import { wasmElementwise } from "../../src/backends/wasm-simd/kernels.js";
import { instantiateKernels, probeWasmSimd, WASM_UNKNOWN_OP } from "../../src/backends/wasm-simd/loader.js";
import { requireWasmApi } from "../../src/backends/wasm-simd/wasm-api.js";
import { UsageError } from "../../src/core/errors.js";

const UNARY_COUNT = Object.keys(UNARY_OPS).length;
const BINARY_COUNT = Object.keys(BINARY_OPS).length;
/** Codes no table has: one past the end, negative, fractional, far out, NaN. */
const badCodes = (count: number): number[] => [count, -1, 1.5, 2 ** 31, Number.NaN];

function expectUnsupported(run: () => void, pattern: RegExp): void {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(UsageError);
  expect((caught as UsageError).code).toBe("unsupported");
  expect((caught as UsageError).message).toMatch(pattern);
}

describe("op names outside the table", () => {
  it("should be UsageError 'unsupported' in the table's code lookup and in the JS reference", () => {
    expectUnsupported(() => unaryCode("softplus" as UnaryOp), /unknown op "softplus"/);
    expectUnsupported(() => binaryCode("constructor" as BinaryOp), /unknown op "constructor"/);
    const js = createJsBackend();
    const x = js.alloc(16);
    const out = js.alloc(16);
    try {
      const ref = (buffer: typeof x) => ({ buffer, dtype: "f32" as const, shape: [4] });
      expectUnsupported(() => js.kernels.unary("softplus" as UnaryOp, ref(x), ref(out)), /unknown op/);
      expectUnsupported(() => js.kernels.binary("hasOwnProperty" as BinaryOp, ref(x), [1], ref(x), [1], ref(out)), /unknown op/);
      // Even an empty shape does not let an unknown op through.
      expectUnsupported(() => js.kernels.binary("pow" as BinaryOp, ref(x), [], ref(x), [], { ...ref(out), shape: [0] }), /unknown op/);
    } finally {
      js.free(x);
      js.free(out);
    }
  });
});

describe("native-cpu op codes", () => {
  const probe = probeNativeCpu();
  const addon = nativeAddon();
  if (!probe.available || addon === undefined) {
    it.skip(`native-cpu is unavailable here: ${probe.available ? "not loaded" : probe.reason}`, () => undefined);
    return;
  }

  it("should report the op table it was built from", () => {
    expect(addon.opTableHash).toBe(OP_TABLE_HASH);
  });

  it("should throw a RangeError for an unknown code and write nothing; the glue makes it UsageError 'unsupported'", () => {
    const ctx = new addon.Context(1, "scalar");
    try {
      const x = Float32Array.of(1, -2, 3, -4);
      const y = Float32Array.of(5, 6, 7, 8);
      const strides = Float64Array.of(1);
      const shape = Float64Array.of(4);
      for (const code of badCodes(UNARY_COUNT)) {
        const out = new Float32Array(4).fill(42);
        expect(() => ctx.unary(code, x, 4, out)).toThrow(RangeError);
        expect(() => ctx.unary(code, x, 4, out)).toThrow(/unary: unknown op code/);
        expectUnsupported(() => nativeElementwise.unary(ctx, code, x, 4, out), /unknown op code/);
        expect([...out]).toEqual([42, 42, 42, 42]);
      }
      for (const code of badCodes(BINARY_COUNT)) {
        const out = new Float32Array(4).fill(42);
        expect(() => ctx.binaryFlat(code, x, y, 4, out)).toThrow(RangeError);
        expect(() => ctx.binary(code, x, strides, y, strides, shape, out)).toThrow(/binary: unknown op code/);
        expectUnsupported(() => nativeElementwise.binaryFlat(ctx, code, x, y, 4, out), /unknown op code/);
        expectUnsupported(() => nativeElementwise.binary(ctx, code, x, strides, y, strides, shape, out), /unknown op code/);
        expect([...out]).toEqual([42, 42, 42, 42]);
      }
      expect(() => ctx.unary("1" as unknown as number, x, 4, new Float32Array(4))).toThrow(TypeError);
      // Every code of the table runs.
      for (const { code } of Object.values(UNARY_OPS)) {
        const out = new Float32Array(4).fill(Number.NaN);
        nativeElementwise.unary(ctx, code, x, 4, out);
        expect(out.every((v) => !Number.isNaN(v))).toBe(true);
      }
      for (const { code } of Object.values(BINARY_OPS)) {
        const out = new Float32Array(4).fill(Number.NaN);
        nativeElementwise.binaryFlat(ctx, code, x, y, 4, out);
        expect(out.every((v) => !Number.isNaN(v))).toBe(true);
      }
    } finally {
      ctx.dispose();
    }
  });
});

describe("wasm-simd op codes", async () => {
  const probe = await probeWasmSimd();
  if (!probe.available) {
    it.skip(`wasm-simd is unavailable here: ${probe.reason}`, () => undefined);
    return;
  }

  it("should return UNKNOWN_OP for an unknown code and write nothing; the glue makes it UsageError 'unsupported'", async () => {
    const memory = new (requireWasmApi().Memory)({ initial: 2, maximum: 2 });
    const wasm = await instantiateKernels(memory);
    expect(wasm.opTableHash() >>> 0).toBe(OP_TABLE_HASH);
    const base = Math.max(wasm.heapBase(), 64);
    const [x, y, out] = [base, base + 64, base + 128];
    const f32 = new Float32Array(memory.buffer);
    f32.set([1, -2, 3, -4], x / 4);
    f32.set([5, 6, 7, 8], y / 4);
    const outValues = (): number[] => [...f32.subarray(out / 4, out / 4 + 4)];
    const binaryArgs = [1, 1, 1, 4, 0, 0, 0, 1, 0, 0, 0, 1]; // shape [1,1,1,4], contiguous strides
    // The module sees i32 codes (a fractional or NaN code is truncated at the JS boundary, so the glue
    // refuses those before the call).
    for (const code of badCodes(UNARY_COUNT)) {
      f32.fill(42, out / 4, out / 4 + 4);
      if (Number.isInteger(code)) {
        expect(wasm.unary(code, x, 4, out)).toBe(WASM_UNKNOWN_OP);
      }
      expectUnsupported(() => wasmElementwise(wasm, "unary", code, x, 0, out, 4), /unknown op/);
      expect(outValues()).toEqual([42, 42, 42, 42]);
    }
    for (const code of badCodes(BINARY_COUNT)) {
      f32.fill(42, out / 4, out / 4 + 4);
      if (Number.isInteger(code)) {
        expect(wasm.binary(code, x, y, out, ...binaryArgs)).toBe(WASM_UNKNOWN_OP);
      }
      expectUnsupported(() => wasmElementwise(wasm, "binary", code, x, y, out, 0, binaryArgs), /unknown op/);
      expect(outValues()).toEqual([42, 42, 42, 42]);
    }
    for (const { code } of Object.values(UNARY_OPS)) {
      f32.fill(Number.NaN, out / 4, out / 4 + 4);
      wasmElementwise(wasm, "unary", code, x, 0, out, 4);
      expect(outValues().every((v) => !Number.isNaN(v))).toBe(true);
    }
    for (const { code } of Object.values(BINARY_OPS)) {
      f32.fill(Number.NaN, out / 4, out / 4 + 4);
      wasmElementwise(wasm, "binary", code, x, y, out, 0, binaryArgs);
      expect(outValues().every((v) => !Number.isNaN(v))).toBe(true);
    }
  });
});
