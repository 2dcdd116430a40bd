/** Typed decode: the expected dtype and dimension names are checked, and the result is a typed tensor. */
import { describe, expect, expectTypeOf, it } from "vitest";
import { createJsBackend } from "../../src/backends/js/index.js";
import { unwrap } from "../../src/core/result.js";
import {
  TensorTypeMismatch,
  decodeTensor,
  decodeTensorView,
  encodeTensor,
  encodeTensorFrame,
  encodeTensorParts,
} from "../../src/formats/barewire/index.js";
import { denseWeights, int32Tensor, tensor, type Tensor } from "../../src/tensor/index.js";
import { toBinary, toTernary } from "../../src/tensor/ops/quant.js";
import { sampleTensor } from "./helpers.js";

describe("BAREWire typed decode", () => {
  const x = tensor([1, 2, 3, 4, 5, 6], ["batch", "embed"], [2, 3]);
  const frame = encodeTensor(x, "x");

  it("should decode to a Tensor typed with the expected dtype and dimension names", () => {
    const r = decodeTensor(frame, { dtype: "f32", dims: ["batch", "embed"] });
    expect(r.ok).toBe(true);
    if (r.ok) {
      expectTypeOf(r.value).toEqualTypeOf<Tensor<"f32", ["batch", "embed"]>>();
      expect(r.value.describe()).toBe("Tensor<f32, [batch=2, embed=3]>");
      expect(Array.from(r.value.toFloat32())).toEqual([1, 2, 3, 4, 5, 6]);
      r.value.dispose();
    }
  });

  it("should name a dtype mismatch", () => {
    const r = decodeTensor(frame, { dtype: "i32", dims: ["batch", "embed"] });
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error).toBeInstanceOf(TensorTypeMismatch);
      expect(r.error.message).toContain("Type mismatch: expected dtype i32 but got dtype f32");
      expect((r.error as TensorTypeMismatch).field).toBe("dtype");
    }
  });

  it("should name the dimension whose name differs", () => {
    const r = decodeTensor(frame, { dtype: "f32", dims: ["batch", "seq"] });
    expect(!r.ok && r.error instanceof TensorTypeMismatch ? [r.error.field, r.error.dimIndex, r.error.message] : []).toEqual([
      "dim-name",
      1,
      '[barewire] Type mismatch: expected dimension 1 named "seq" but got "embed"',
    ]);
  });

  it("should name a size that differs and a rank that differs", () => {
    const size = decodeTensor(frame, { dtype: "f32", dims: ["batch", "embed"], sizes: { embed: 4 } });
    expect(!size.ok && size.error.message).toContain("expected embed=4 but got embed=3");
    const rank = decodeTensor(frame, { dtype: "f32", dims: ["embed"] });
    expect(!rank.ok && rank.error instanceof TensorTypeMismatch && rank.error.field).toBe("rank");
    const same = decodeTensor(frame, { dtype: "f32", dims: ["batch", "embed"], sizes: { batch: 2 } });
    expect(same.ok).toBe(true);
    if (same.ok) {
      same.value.dispose();
    }
  });

  it("should give a FormatError, not a mismatch, for broken bytes", () => {
    const r = decodeTensor(frame.subarray(0, 20), { dtype: "f32", dims: ["batch", "embed"] });
    expect(!r.ok && r.error.code).toBe("truncated");
  });

  it("should view an aligned payload without copying and copy a misaligned one, saying so", () => {
    const aligned = decodeTensorView(frame, { dtype: "f32", dims: ["batch", "embed"] });
    expect(aligned.ok && aligned.value.copied).toBe(false);
    expect(aligned.ok && aligned.value.data.buffer).toBe(frame.buffer);
    const shifted = new Uint8Array(frame.length + 1).subarray(1);
    shifted.set(frame);
    const moved = decodeTensorView(shifted, { dtype: "f32", dims: ["batch", "embed"] });
    expect(moved.ok && moved.value.copied).toBe(true);
    expect(moved.ok && Array.from(moved.value.data)).toEqual([1, 2, 3, 4, 5, 6]);
    if (moved.ok) {
      expectTypeOf(moved.value.data).toEqualTypeOf<Float32Array>();
    }
  });

  it("should round-trip i32, ternary, binary and dense block tensors through frames", () => {
    const backend = createJsBackend();
    const ids = int32Tensor([3, -1, 7], ["seq"], [3], { backend });
    const tern = unwrap(toTernary([1, -1, 0, 1, 0, -1, 1, 1], ["out", "in"], [2, 4], { backend, scale: 0.5 }));
    const bin = unwrap(toBinary([1, -1, -1, 1], ["out", "in"], [1, 4], { backend, scale: 0.25 }));
    const q8 = denseWeights("q8_0", sampleTensor("q8_0", 2, 32).payload, ["vocab", "embed"], [2, 32], { backend });
    const i = decodeTensor(encodeTensor(ids), { dtype: "i32", dims: ["seq"] }, { backend });
    const t = decodeTensor(encodeTensor(tern), { dtype: "ternary", dims: ["out", "in"] }, { backend });
    const b = decodeTensor(encodeTensor(bin), { dtype: "binary", dims: ["out", "in"] }, { backend });
    const q = decodeTensor(encodeTensor(q8), { dtype: "q8_0", dims: ["vocab", "embed"] }, { backend });
    expect(i.ok && Array.from(i.value.toInt32())).toEqual([3, -1, 7]);
    expect(t.ok && Array.from(t.value.toFloat32())).toEqual(Array.from(tern.toFloat32()));
    expect(t.ok && t.value.scale).toBe(tern.scale);
    expect(b.ok && Array.from(b.value.toFloat32())).toEqual(Array.from(bin.toFloat32()));
    expect(q.ok && Array.from(q.value.toFloat32())).toEqual(Array.from(q8.toFloat32()));
    for (const r of [i, t, b, q]) {
      if (r.ok) {
        r.value.dispose();
      }
    }
    for (const d of [ids, tern, bin, q8]) {
      d.dispose();
    }
    expect(backend.liveAllocations()).toBe(0);
  });

  it("should refuse ternary bytes holding the invalid code 3", () => {
    const bad = { ...sampleTensor("ternary", 1, 4), payload: Uint8Array.of(0xff) };
    const r = decodeTensor(encodeTensorFrame(bad), { dtype: "ternary", dims: ["rows", "cols"] });
    expect(!r.ok && r.error.code).toBe("bad-value");
  });

  it("should decode a block format without a storage dtype as a typed byte view", () => {
    const r = decodeTensorView(encodeTensorFrame(sampleTensor("i2_s", 1, 128)), { dtype: "i2_s", dims: ["rows", "cols"] });
    expect(r.ok && r.value.data.length).toBe(64);
    if (r.ok) {
      expectTypeOf(r.value.data).toEqualTypeOf<Uint8Array>();
    }
  });

  it("should encode a tensor's parts with the payload read once from the backend", () => {
    const parts = encodeTensorParts(x, "x");
    expect(Array.from(Buffer.concat([parts.head, parts.payload]))).toEqual(Array.from(frame));
  });
});
