import { describe, expect, it } from "vitest";
import {
  ShapeError,
  attention,
  createJsBackend,
  denseWeights,
  embedding,
  int32Tensor,
  linear,
  linearQuantized,
  matmul,
  quantizeActivations,
  tensor,
  toTernary,
  unwrap,
} from "../../src/index.js";
import { QUANT_TRAITS } from "../../src/quant/table.js";

const values = (n: number, seed: number): Float32Array =>
  Float32Array.from({ length: n }, (_, i) => Math.sin(seed + i * 0.37) * 2);

describe("dense weights in block formats", () => {
  it.each(["f16", "bf16", "q8_0", "q6_k"] as const)("should run a %s head exactly like its decoded f32 copy", (format) => {
    const [n, k] = [6, 256];
    const bytes = QUANT_TRAITS[format].encode(values(n * k, 1), n, k);
    using w = denseWeights(format, bytes, ["vocab", "embed"], [n, k]);
    using wf = tensor(w.toFloat32(), ["vocab", "embed"], [n, k]);
    using x = tensor(values(2 * k, 2), ["seq", "embed"], [2, k]);
    using a = matmul(x, w);
    using b = matmul(x, wf);
    using c = linear(x, w);
    expect(Array.from(a.toFloat32())).toEqual(Array.from(b.toFloat32()));
    expect(Array.from(c.toFloat32())).toEqual(Array.from(b.toFloat32()));
  });

  it("should refuse bytes that do not match the format and shape", () => {
    expect(() => denseWeights("q8_0", new Uint8Array(10), ["vocab", "embed"], [1, 32])).toThrow(
      "[denseWeights] q8_0 [vocab, embed] needs 34 bytes, got 10",
    );
    expect(() => denseWeights("q6_k", new Uint8Array(210), ["vocab", "embed"], [1, 100])).toThrow(ShapeError);
  });

  it("should adopt file bytes without a copy on the JS backend", () => {
    const backend = createJsBackend();
    const bytes = QUANT_TRAITS.f16.encode(values(8, 3), 2, 4);
    using w = denseWeights("f16", bytes, ["vocab", "embed"], [2, 4], { backend, adopt: true });
    expect(backend.liveBytes()).toBe(16);
    expect(Array.from(w.toFloat32())).toEqual(Array.from(QUANT_TRAITS.f16.decode(bytes, 2, 4)));
  });

  it("should look up embedding rows and reject ids outside the vocabulary", () => {
    const table = values(4 * 32, 5);
    using w = denseWeights("q8_0", QUANT_TRAITS.q8_0.encode(table, 4, 32), ["vocab", "embed"], [4, 32]);
    using ids = int32Tensor([3, 0, 3], ["seq"], [3]);
    using e = embedding(ids, w);
    const decoded = w.toFloat32();
    expect(e.dims).toEqual(["seq", "embed"]);
    expect(Array.from(e.toFloat32().subarray(0, 32))).toEqual(Array.from(decoded.subarray(96, 128)));
    using bad = int32Tensor([4], ["seq"], [1]);
    expect(() => embedding(bad, w)).toThrow("[embedding] token id 4 at position 0 is outside the vocabulary of 4");
  });
});

describe("shared activation quantization and cache-length attention", () => {
  it("should give linearQuantized the same result as linear", () => {
    using x = tensor(values(3 * 40, 7), ["seq", "embed"], [3, 40]);
    using w = unwrap(toTernary(Array.from({ length: 5 * 40 }, (_, i) => (i % 3) - 1), ["ffn", "embed"], [5, 40], { scale: 0.2 }));
    using q = quantizeActivations(x);
    using a = linearQuantized(q, w);
    using b = linear(x, w);
    expect(Array.from(a.toFloat32())).toEqual(Array.from(b.toFloat32()));
  });

  it("should attend only to the filled front of a larger cache", () => {
    using q = tensor(values(1 * 2 * 4, 1), ["seq", "head", "headDim"], [1, 2, 4]);
    const kv = values(3 * 1 * 4, 2);
    using kFull = tensor([...kv, ...values(5 * 4, 9)], ["ctx", "kvHead", "headDim"], [8, 1, 4]);
    using vFull = tensor([...kv, ...values(5 * 4, 10)], ["ctx", "kvHead", "headDim"], [8, 1, 4]);
    using k = tensor(kv, ["ctx", "kvHead", "headDim"], [3, 1, 4]);
    using v = tensor(kv, ["ctx", "kvHead", "headDim"], [3, 1, 4]);
    using a = attention(q, kFull, vFull, { length: 3 });
    using b = attention(q, k, v);
    expect(Array.from(a.toFloat32())).toEqual(Array.from(b.toFloat32()));
    expect(() => attention(q, kFull, vFull, { length: 9 })).toThrow(ShapeError);
  });
});
