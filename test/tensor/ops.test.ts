import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  ShapeError,
  UsageError,
  add,
  attention,
  concat,
  int32Tensor,
  linear,
  matmul,
  maximum,
  merge,
  mul,
  relu2,
  rename,
  reshape,
  rmsNorm,
  rope,
  scale,
  silu,
  slice,
  softmax,
  split,
  sub,
  tensor,
  ternarize,
  toTernary,
  transpose,
  unwrap,
  zeros,
} from "../../src/index.js";
import { quantizeActivations as quantizeRows } from "../../src/quant/values.js";

const range = (n: number, f: (i: number) => number = (i) => i): number[] => Array.from({ length: n }, (_, i) => f(i));

describe("matmul and linear", () => {
  it("should contract the last dim of x with the in dim of w", () => {
    using x = tensor([1, 2, 3, 4, 5, 6], ["seq", "embed"], [2, 3]);
    using w = tensor([1, 0, 0, 0, 1, 1], ["ffn", "embed"], [2, 3]);
    using y = matmul(x, w);
    expect(y.dims).toEqual(["seq", "ffn"]);
    expect(Array.from(y.toFloat32())).toEqual([1, 5, 4, 11]);
  });

  it("should name the dimension whose sizes disagree", () => {
    using x = zeros(["seq", "embed"], [1, 2560]);
    using w = zeros(["ffn", "embed"], [4, 2048]);
    expect(() => matmul(x, w)).toThrow(new ShapeError("dim-mismatch", "[matmul] embed: 2560 vs 2048"));
    expect(() => linear(x, w)).toThrow("[linear] embed: 2560 vs 2048");
  });

  it("should keep leading dims when x has more than two", () => {
    using x = tensor(range(12), ["batch", "seq", "embed"], [2, 3, 2]);
    using w = tensor([1, 1], ["vocab", "embed"], [1, 2]);
    using y = matmul(x, w);
    expect(y.dims).toEqual(["batch", "seq", "vocab"]);
    expect(Array.from(y.toFloat32())).toEqual([1, 5, 9, 13, 17, 21]);
  });

  it("should run a ternary linear layer exactly as int8 activations times trits, scaled once", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer(),
        (m, k, n, seed) => {
          const xs = range(m * k, (i) => Math.sin(seed + i * 1.7) * 3);
          const trits = range(n * k, (i) => ((seed + i * 7) % 3 + 3) % 3 - 1);
          const gamma = 0.37;
          using x = tensor(xs, ["seq", "embed"], [m, k]);
          using w = unwrap(toTernary(trits, ["ffn", "embed"], [n, k], { scale: gamma }));
          using y = linear(x, w);
          const q = unwrap(quantizeRows(Float32Array.from(xs), m, k));
          const got = y.toFloat32();
          for (let i = 0; i < m; i++) {
            for (let j = 0; j < n; j++) {
              let acc = 0;
              for (let c = 0; c < k; c++) {
                acc += (q.values[i * k + c] ?? 0) * (trits[j * k + c] ?? 0);
              }
              const expected = Math.fround(Math.fround(acc / (q.scales[i] ?? 1)) * Math.fround(gamma));
              expect(got[i * n + j]).toBe(expected);
            }
          }
        },
      ),
      { seed: 42, numRuns: 60 },
    );
  });

  it("should bring a ternarized layer close to its float layer", () => {
    const k = 256;
    const n = 16;
    using x = tensor(range(k, (i) => Math.cos(i * 0.3)), ["seq", "embed"], [1, k]);
    using wf = tensor(range(n * k, (i) => (Math.sin(i * 12.9898) * 43758.5453) % 1), ["ffn", "embed"], [n, k]);
    using wt = unwrap(ternarize(wf));
    using wq = tensor(wt.toFloat32(), ["ffn", "embed"], [n, k]);
    using exact = matmul(x, wq);
    using quant = linear(x, wt);
    const a = exact.toFloat32();
    const b = quant.toFloat32();
    let num = 0;
    let den = 0;
    for (let i = 0; i < n; i++) {
      num += ((a[i] ?? 0) - (b[i] ?? 0)) ** 2;
      den += (a[i] ?? 0) ** 2;
    }
    expect(num / den).toBeLessThan(1e-3);
  });
});

describe("elementwise", () => {
  it("should broadcast b over a by name", () => {
    using x = tensor([1, 2, 3, 4, 5, 6], ["seq", "embed"], [2, 3]);
    using bias = tensor([10, 20, 30], ["embed"], [3]);
    using perSeq = tensor([100, 200], ["seq"], [2]);
    using y = add(x, bias);
    using z = sub(y, perSeq);
    expect(Array.from(y.toFloat32())).toEqual([11, 22, 33, 14, 25, 36]);
    expect(Array.from(z.toFloat32())).toEqual([-89, -78, -67, -186, -175, -164]);
  });

  it("should reject a broadcast whose sizes disagree", () => {
    using x = zeros(["seq", "embed"], [2, 3]);
    using b = zeros(["embed"], [4]);
    expect(() => mul(x, b)).toThrow("[mul] embed: 3 vs 4");
  });

  it("should apply relu², silu, scale and maximum", () => {
    using x = tensor([-2, -0.5, 0, 1.5], ["embed"], [4]);
    using zero = tensor([0], ["embed"], [1]);
    using r = relu2(x);
    using s = silu(x);
    using d = scale(x, 2);
    expect(Array.from(r.toFloat32())).toEqual([0, 0, 0, 2.25]);
    expect(s.toFloat32()[3]).toBeCloseTo(1.5 / (1 + Math.exp(-1.5)), 6);
    expect(Array.from(d.toFloat32())).toEqual([-4, -1, 0, 3]);
    expect(() => maximum(x, zero)).toThrow("[maximum] embed: 4 vs 1");
  });
});

describe("layout ops", () => {
  it("should rename, split and merge without moving data", () => {
    using x = tensor(range(12), ["seq", "embed"], [2, 6]);
    using r = rename(x, "embed", "ffn");
    using s = split(x, "embed", ["head", "headDim"], [2, 3]);
    using m = merge(s, ["head", "headDim"], "embed");
    expect(r.dims).toEqual(["seq", "ffn"]);
    expect(s.dims).toEqual(["seq", "head", "headDim"]);
    expect(s.shape).toEqual([2, 2, 3]);
    expect(Array.from(m.toFloat32())).toEqual(range(12));
    expect(() => split(x, "embed", ["head", "headDim"], [4, 2])).toThrow("[split] embed: 6 is not head=4 × headDim=2");
  });

  it("should transpose by name", () => {
    using x = tensor(range(6), ["seq", "embed"], [2, 3]);
    using t = transpose(x, ["embed", "seq"]);
    expect(t.dims).toEqual(["embed", "seq"]);
    expect(Array.from(t.toFloat32())).toEqual([0, 3, 1, 4, 2, 5]);
  });

  it("should slice and concat along a named dim", () => {
    using x = tensor(range(6), ["seq", "embed"], [3, 2]);
    using a = slice(x, "seq", 0, 1);
    using b = slice(x, "seq", 1, 3);
    using c = concat(a, b, "seq");
    using e = concat(x, x, "embed");
    expect(Array.from(b.toFloat32())).toEqual([2, 3, 4, 5]);
    expect(Array.from(c.toFloat32())).toEqual(range(6));
    expect(Array.from(e.toFloat32())).toEqual([0, 1, 0, 1, 2, 3, 2, 3, 4, 5, 4, 5]);
    expect(() => slice(x, "seq", 2, 4)).toThrow(ShapeError);
  });

  it("should reshape only to the same element count", () => {
    using x = tensor(range(6), ["seq", "embed"], [3, 2]);
    using y = reshape(x, ["embed"], [6]);
    expect(y.shape).toEqual([6]);
    expect(() => reshape(x, ["embed"], [5])).toThrow(/has 6 elements/);
  });

  it("should refuse layout ops that would cut bit-packed rows", () => {
    using w = unwrap(toTernary([1, 0, -1, 1], ["ffn", "embed"], [2, 2]));
    using r = rename(w, "ffn", "vocab");
    expect(Array.from(r.toInt32())).toEqual([1, 0, -1, 1]);
    expect(() => transpose(w as never, ["embed", "ffn"] as never)).toThrow(UsageError);
  });
});

describe("nn ops", () => {
  it("should normalise by RMS over the last dim", () => {
    using x = tensor([3, 4, 0, 0], ["seq", "embed"], [2, 2]);
    using w = tensor([1, 2], ["embed"], [2]);
    using y = rmsNorm(x, w, 1e-5);
    const v = y.toFloat32();
    const inv = 1 / Math.sqrt(12.5 + 1e-5);
    expect(v[0]).toBeCloseTo(3 * inv, 6);
    expect(v[1]).toBeCloseTo(8 * inv, 6);
    expect(v[2]).toBe(0);
  });

  it("should leave position 0 unrotated and keep rope input and positions consistent", () => {
    using x = tensor(range(8, (i) => i + 1), ["seq", "head", "headDim"], [1, 2, 4]);
    using p0 = int32Tensor([0], ["seq"], [1]);
    using p2 = int32Tensor([0, 1], ["seq"], [2]);
    using y = rope(x, p0, { theta: 10000, mode: "neox" });
    expect(Array.from(y.toFloat32())).toEqual(range(8, (i) => i + 1));
    expect(() => rope(x, p2 as never, { theta: 10000, mode: "neox" })).toThrow("[rope] seq: 1 vs 2");
  });

  it("should make softmax rows sum to one", () => {
    using x = tensor([1, 2, 3, -1, 0, 1], ["seq", "vocab"], [2, 3]);
    using p = softmax(x, "vocab");
    const v = p.toFloat32();
    expect((v[0] ?? 0) + (v[1] ?? 0) + (v[2] ?? 0)).toBeCloseTo(1, 6);
  });

  it("should attend with grouped KV heads and check the cache bounds", () => {
    using q = tensor(range(8, (i) => i / 8), ["seq", "head", "headDim"], [1, 4, 2]);
    using k = tensor(range(6, (i) => i / 6), ["ctx", "kvHead", "headDim"], [3, 1, 2]);
    using v = tensor(range(6), ["ctx", "kvHead", "headDim"], [3, 1, 2]);
    using first = attention(q, k, v, { pos0: 0 });
    expect(Array.from(first.toFloat32())).toEqual([0, 1, 0, 1, 0, 1, 0, 1]);
    expect(() => attention(q, k, v, { pos0: 3 })).toThrow(ShapeError);
  });
});
