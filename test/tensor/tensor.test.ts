import { describe, expect, it } from "vitest";
import {
  ShapeError,
  UsageError,
  ValueError,
  createJsBackend,
  int32Tensor,
  tensor,
  zeros,
  Tensor,
  add,
} from "../../src/index.js";
import type { INTERNAL } from "../../src/tensor/tensor.js";
import { expectNoLeaks } from "../helpers/leaks.js";

describe("tensor creation", () => {
  it("should keep dims, shape and values", () => {
    using t = tensor([1, 2, 3, 4, 5, 6], ["seq", "embed"], [2, 3]);
    expect(t.dims).toEqual(["seq", "embed"]);
    expect(t.shape).toEqual([2, 3]);
    expect(t.size).toBe(6);
    expect(t.sizeOf("embed")).toBe(3);
    expect(Array.from(t.toFloat32())).toEqual([1, 2, 3, 4, 5, 6]);
    expect(t.describe()).toBe("Tensor<f32, [seq=2, embed=3]>");
  });

  it("should reject a value count that does not match the shape", () => {
    expect(() => tensor([1, 2, 3], ["seq", "embed"], [2, 2])).toThrow(/\[tensor\] 3 values for shape \[seq, embed\] of 4/);
  });

  it("should reject non-positive, fractional and unsafe sizes", () => {
    for (const bad of [0, -1, 1.5, Number.NaN, 2 ** 60]) {
      expect(() => zeros(["seq"], [bad])).toThrow(ShapeError);
    }
  });

  it("should reject a tensor above the element limit without allocating it", () => {
    expect(() => zeros(["seq", "embed"], [2 ** 16, 2 ** 16])).toThrow(/exceed the limit/);
  });

  it("should reject a repeated dimension name at runtime too", () => {
    const dims = ["seq", "seq"] as string[];
    expect(() => zeros(dims as never, [1, 1] as never)).toThrow(/"seq" is used twice/);
  });

  it("should refuse construction with new from outside", () => {
    const backend = createJsBackend();
    const buffer = backend.alloc(4);
    expect(() => new Tensor(Symbol("fake") as unknown as typeof INTERNAL, backend, buffer, "f32", ["x"], [1])).toThrow(
      UsageError,
    );
    backend.free(buffer);
  });

  it("should hand out copies, so callers cannot mutate a tensor", () => {
    using t = tensor([1, 2], ["embed"], [2]);
    const values = t.toFloat32();
    values[0] = 100;
    expect(Array.from(t.toFloat32())).toEqual([1, 2]);
    expect(Object.isFrozen(t.shape)).toBe(true);
    expect(Object.isFrozen(t.dims)).toBe(true);
  });

  it("should read into a caller's array, which stays the caller's", async () => {
    using t = tensor([1, 2, 3], ["embed"], [3]);
    const into = new Float32Array(3);
    await expect(t.toFloat32Async(into)).resolves.toBe(into);
    expect(Array.from(into)).toEqual([1, 2, 3]);
    into[0] = 100;
    expect(Array.from(t.toFloat32())).toEqual([1, 2, 3]);
    using q = int32Tensor([4, -5, 6], ["seq"], [3]); // not float32 storage: decoded, then written into the array
    await expect(q.toFloat32Async(into)).resolves.toBe(into);
    expect(Array.from(into)).toEqual([4, -5, 6]);
    await expect(t.toFloat32Async(new Float32Array(2))).rejects.toThrow(ShapeError);
    t.dispose();
    await expect(t.toFloat32Async(into)).rejects.toThrow(/was disposed/);
  });

  it("should make int32 tensors and reject values that are not int32", () => {
    using p = int32Tensor([0, 1, 2], ["seq"], [3]);
    expect(Array.from(p.toInt32())).toEqual([0, 1, 2]);
    expect(() => int32Tensor([0.5], ["seq"], [1])).toThrow(ValueError);
    expect(() => int32Tensor([2 ** 31], ["seq"], [1])).toThrow(/not an int32/);
  });
});

describe("deterministic memory", () => {
  it("should free memory on dispose and count live allocations", () => {
    const backend = createJsBackend();
    const t = zeros(["seq", "embed"], [4, 8], { backend });
    expect(backend.liveAllocations()).toBe(1);
    expect(backend.liveBytes()).toBe(4 * 8 * 4);
    t.dispose();
    t.dispose();
    expect(backend.liveAllocations()).toBe(0);
    expect(backend.liveBytes()).toBe(0);
    expect(t.isDisposed).toBe(true);
  });

  it("should free memory at the end of a using block", () => {
    const backend = createJsBackend();
    {
      using a = tensor([1, 2], ["embed"], [2], { backend });
      using b = add(a, a);
      expect(backend.liveAllocations()).toBe(2);
      expect(Array.from(b.toFloat32())).toEqual([2, 4]);
    }
    expect(backend.liveAllocations()).toBe(0);
  });

  it("should refuse to use a disposed tensor", () => {
    const t = tensor([1], ["embed"], [1]);
    t.dispose();
    expect(() => t.toFloat32()).toThrow(/was disposed/);
    expect(() => add(t, t)).toThrow(UsageError);
  });

  it("should refuse operands from two backends", () => {
    const other = createJsBackend();
    using a = tensor([1], ["embed"], [1]);
    using b = tensor([1], ["embed"], [1], { backend: other });
    expect(() => add(a, b)).toThrow(/different backends/);
  });

  it("should report a leak through the helper", () => {
    const backend = createJsBackend();
    expect(() => expectNoLeaks(() => zeros(["x"], [1], { backend }), backend)).toThrow();
    expect(backend.liveAllocations()).toBe(1);
  });
});
