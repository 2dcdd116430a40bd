/**
 * The addon's training kernels (native/cpu/train_kernels.cc, src/train/kernels.ts) against the JS rules
 * they replace: the gemm against a float64 product (every transpose/accumulate combination, edge sizes,
 * the same bits on every thread count), RMSNorm's backward and the cross-entropy through a fast tape with
 * and without them, and AdamW bit for bit against qat.ts adamwUpdate.
 */
import { describe, expect, it } from "vitest";
import { int32Tensor, tensor } from "../../src/tensor/index.js";
import { createTape } from "../../src/train/autograd.js";
import { nativeTrainContextClass, nativeTrainKernels, type NativeTrainContext } from "../../src/train/fast.js";
import { ACCUMULATE, gemmFromMatmul, TRANS_A, TRANS_B, type HostMatmul, type TrainKernels } from "../../src/train/kernels.js";
import { adamwParams, adamwUpdate } from "../../src/train/qat.js";
import type { Param } from "../../src/train/model.js";
import { Rng } from "../../src/model/sampling/rng.js";
import { absmeanTernarize } from "../../src/quant/values.js";

const Train = nativeTrainContextClass();

function random(n: number, rng: Rng, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal() * scale);
}

/** C = op(A)·op(B) (+ C0) in float64. */
function refGemm(a: Float32Array, b: Float32Array, c0: Float32Array, m: number, n: number, k: number, flags: number): { c: Float64Array; mag: Float64Array } {
  const c = new Float64Array(m * n);
  const mag = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = (flags & ACCUMULATE) !== 0 ? (c0[i * n + j] ?? 0) : 0;
      let t = Math.abs(s);
      for (let p = 0; p < k; p++) {
        const x = ((flags & TRANS_A) !== 0 ? a[p * m + i] : a[i * k + p]) ?? 0;
        const y = ((flags & TRANS_B) !== 0 ? b[j * k + p] : b[p * n + j]) ?? 0;
        s += x * y;
        t += Math.abs(x * y);
      }
      c[i * n + j] = s;
      mag[i * n + j] = t;
    }
  }
  return { c, mag };
}

/** A plain f32 x·wᵀ in JS: with gemmFromMatmul, the fast tape's rules without any native kernel. */
const jsMatmul: HostMatmul = (x, w, m, k, n, out) => {
  for (let r = 0; r < m; r++) {
    for (let j = 0; j < n; j++) {
      let acc = 0;
      for (let i = 0; i < k; i++) {
        acc += (x[r * k + i] ?? 0) * (w[j * k + i] ?? 0);
      }
      out[r * n + j] = acc;
    }
  }
};
const JS_KERNELS: TrainKernels = { gemm: gemmFromMatmul(jsMatmul) };

function withContext<T>(threads: number, isa: string, fn: (ctx: NativeTrainContext) => T): T {
  if (Train === undefined) {
    throw new Error("no TrainContext");
  }
  const ctx = new Train(threads, isa);
  try {
    return fn(ctx);
  } finally {
    ctx.dispose();
  }
}

describe.skipIf(Train === undefined)("native training kernels", () => {
  it("gemm: every transpose/accumulate combination within 1e-6 of Σ|a·b| (float64 reference), the same bits on 1 and 3 threads, on each ISA path", () => {
    const rng = new Rng(3);
    const isas = ["", "scalar", "avx2"];
    for (const [m, n, k] of [
      [1, 1, 1],
      [7, 5, 3],
      [97, 131, 300],
      [200, 33, 513],
    ] as const) {
      const a = random(m * k, rng);
      const b = random(k * n, rng);
      const c0 = random(m * n, rng);
      for (let flags = 0; flags < 8; flags++) {
        const { c: want, mag } = refGemm(a, b, c0, m, n, k, flags);
        for (const isa of isas) {
          const [c1, c3] = [1, 3].map((threads) =>
            withContext(threads, isa, (ctx) => {
              const c = c0.slice();
              ctx.gemm(a, b, c, m, n, k, flags);
              return c;
            }),
          );
          expect(Buffer.from(c1?.buffer ?? new ArrayBuffer(0)).equals(Buffer.from(c3?.buffer ?? new ArrayBuffer(1))), `${m}×${n}×${k} flags ${flags} ${isa}`).toBe(true);
          let worst = 0;
          for (let i = 0; i < m * n; i++) {
            worst = Math.max(worst, Math.abs((c1?.[i] ?? Number.NaN) - (want[i] ?? 0)) / Math.max(mag[i] ?? 0, 1e-30));
          }
          expect(worst, `${m}×${n}×${k} flags ${flags} ${isa}`).toBeLessThan(1e-6);
        }
      }
    }
  });

  it("gemm refuses arrays shorter than its sizes (RangeError) and a k of 0 writes zeros", () => {
    withContext(2, "", (ctx) => {
      const c = new Float32Array(4).fill(7);
      expect(() => ctx.gemm(new Float32Array(5), new Float32Array(6), c, 2, 2, 3, 0)).toThrow(RangeError);
      expect(() => ctx.gemm(new Float32Array(6), new Float32Array(6), c, 2, 2, 3, 8)).toThrow(RangeError);
      ctx.gemm(new Float32Array(0), new Float32Array(0), c, 2, 2, 0, 0);
      expect([...c]).toEqual([0, 0, 0, 0]);
    });
  });

  it("RMSNorm backward: gx bit for bit the tape's f32 rule, gw within 1e-6 relative (another summation order over rows)", () => {
    const rng = new Rng(5);
    const [rows, cols] = [70, 48];
    const xv = random(rows * cols, rng);
    const wv = random(cols, rng);
    const r = random(rows * cols, rng);
    const grads = (kernels: TrainKernels): Float32Array[] => {
      using g = createTape({ kernels });
      using x = tensor(xv, ["seq", "embed"], [rows, cols]);
      using w = tensor(wv, ["embed"], [cols]);
      using rt = tensor(r, ["seq", "embed"], [rows, cols]);
      const loss = g.sum(g.mul(g.rmsNorm(g.param(x), g.param(w), 1e-5), rt));
      using gr = g.backward(loss);
      return [gr.get(x).toFloat32(), gr.get(w).toFloat32()];
    };
    const [jx, jw] = grads(JS_KERNELS);
    const [nx, nw] = withContext(2, "", (ctx) => grads(nativeTrainKernels(ctx)));
    expect(nx).toEqual(jx);
    const scale = Math.max(...(jw ?? []).map(Math.abs));
    for (let i = 0; i < cols; i++) {
      expect(Math.abs((nw?.[i] ?? 0) - (jw?.[i] ?? 0))).toBeLessThanOrEqual(1e-6 * scale);
    }
  });

  it("cross-entropy: loss within 1e-12 relative and gradient within 1e-6 of each row's largest (libm exp/log), and a bad target is refused", () => {
    const rng = new Rng(7);
    const [rows, v] = [40, 300];
    const lv = random(rows * v, rng, 3);
    const tv = Array.from({ length: rows }, () => rng.below(v));
    const run = (kernels: TrainKernels): [number, Float32Array] => {
      using g = createTape({ kernels });
      using logits = tensor(lv, ["seq", "vocab"], [rows, v]);
      using targets = int32Tensor(tv, ["seq"], [rows]);
      const loss = g.crossEntropy(g.param(logits), targets);
      using gr = g.backward(loss);
      return [loss.toFloat32()[0] ?? Number.NaN, gr.get(logits).toFloat32()];
    };
    const [jl, jg] = run(JS_KERNELS);
    const [nl, ng] = withContext(2, "", (ctx) => run(nativeTrainKernels(ctx)));
    expect(Math.abs(nl - jl)).toBeLessThanOrEqual(1e-12 * Math.abs(jl) + 1e-7);
    const scale = Math.max(...jg.map(Math.abs));
    for (let i = 0; i < rows * v; i++) {
      expect(Math.abs((ng[i] ?? 0) - (jg[i] ?? 0))).toBeLessThanOrEqual(1e-6 * scale);
    }
    withContext(1, "", (ctx) => {
      const bad = Int32Array.from(tv);
      bad[3] = v;
      expect(ctx.crossEntropy(lv, bad, rows, v, new Float32Array(rows * v))).toBe(-4);
      expect(() => ctx.crossEntropyBackward(new Float32Array(rows * v), bad, rows, v, 1, new Float32Array(rows * v))).toThrow(RangeError);
    });
  });

  it("AdamW: bit for bit qat.ts adamwUpdate (decay on a matrix, none on a vector, a clipping factor), over several chunks", () => {
    const rng = new Rng(9);
    const o = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };
    for (const matrix of [true, false]) {
      const n = 70_001;
      const data = random(n, rng, 0.1);
      const grad = random(n, rng, 0.01);
      const m0 = random(n, rng, 1e-3);
      const v0 = Float32Array.from(random(n, rng, 1e-3), Math.abs);
      const js: Param = { name: "w", dims: ["x"], shape: [n], matrix, data: data.slice() };
      const [jm, jv] = [m0.slice(), v0.slice()];
      for (let t = 1; t <= 3; t++) {
        adamwUpdate(js, grad, jm, jv, 1e-3, t, o, 0.37);
      }
      const nat: Param = { ...js, data: data.slice() };
      const [nm, nv] = [m0.slice(), v0.slice()];
      withContext(2, "", (ctx) => {
        for (let t = 1; t <= 3; t++) {
          ctx.adamw(nat.data, grad, nm, nv, n, adamwParams(nat, 1e-3, t, o, 0.37));
        }
      });
      expect(Buffer.from(nat.data.buffer).equals(Buffer.from(js.data.buffer))).toBe(true);
      expect(Buffer.from(nm.buffer).equals(Buffer.from(jm.buffer))).toBe(true);
      expect(Buffer.from(nv.buffer).equals(Buffer.from(jv.buffer))).toBe(true);
    }
  });

  it("ternarize: trits and γ bit for bit absmeanTernarize (ties at ±0.5 and ±1.5 included), NaN for a non-finite weight", () => {
    const rng = new Rng(11);
    const w = random(100_003, rng, 0.02);
    // mean|w| of four values 1, 1, 0.5, 1.5 is 1: exact ties of w/γ at 0.5 and 1.5 (round half to even: 0 and 2 → 1).
    const ties = Float32Array.of(1, -1, 0.5, -1.5, 1.5, -0.5, 1, 1);
    withContext(2, "", (ctx) => {
      for (const values of [w, ties]) {
        const want = absmeanTernarize(values);
        if (!want.ok) {
          throw want.error;
        }
        const trits = new Int8Array(values.length);
        expect(ctx.ternarize?.(values, values.length, trits)).toBe(want.value.scale);
        expect(trits).toEqual(want.value.values);
      }
      expect(ctx.ternarize?.(Float32Array.of(1, Number.NaN), 2, new Int8Array(2))).toBeNaN();
      expect(ctx.ternarize?.(Float32Array.of(1, Number.POSITIVE_INFINITY), 2, new Int8Array(2))).toBeNaN();
    });
  });
});
