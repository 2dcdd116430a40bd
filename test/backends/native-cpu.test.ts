/**
 * The native CPU backend against the JS reference, on every ISA path this machine can run (forced per
 * backend instance through the `isa` option, the in-process twin of BARBELL_NATIVE_ISA).
 * Integer kernels (ternary, binary, quantization, embedding) must match bit for bit; float kernels
 * within NMSE ≤ 1e-10. Skipped, with the probe's reason, when the addon is not built or not loadable.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadModel } from "../../src/engine/model.js";
import type { PartialBackend, StorageDType, TensorRef, UnaryOp, BinaryOp } from "../../src/backends/backend.js";
import { ArrayBufferMemory, views } from "../../src/backends/host-memory.js";
import { createJsBackend } from "../../src/backends/js/index.js";
import { nativeAddon } from "../../src/backends/native-cpu/addon.js";
import { BINARY_OPS, UNARY_OPS } from "../../src/backends/ops.js";
import { createNativeCpuBackend, nativeCapabilities, nativeCpuProvider, probeNativeCpu } from "../../src/backends/native-cpu/index.js";
import { capabilityAccepts, type OpName } from "../../src/backends/capabilities.js";

/** Whether the native capabilities (data) accept a call, as the dispatcher checks them. */
const accepts = (op: OpName, args: readonly unknown[]): true | string => capabilityAccepts(op, nativeCapabilities(nativeAddon() ?? {})[op] ?? true, args);
import { ShapeError, ValueError } from "../../src/core/errors.js";
import { f32ToHalf } from "../../src/quant/half.js";
import { Q6_K } from "../../src/quant/formats/q6-k.js";
import { Q8_0 } from "../../src/quant/formats/q8-0.js";
import { packBinary, packTernary } from "../../src/quant/layouts.js";
import { makeBitnetFixture, mulberry32 as rng } from "../../src/model/bitnet/fixture.js";

const probe = probeNativeCpu();
const reason = probe.available ? "" : probe.reason;

/** ISA paths runnable here, lowest first. */
function isaPaths(): string[] {
  const best = nativeAddon()?.features().best ?? "scalar";
  const order = best === "neon" ? ["scalar", "neon"] : ["scalar", "avx2", "avx512bw", "avx512vnni"];
  return order.slice(0, order.indexOf(best) + 1);
}

// ---- deterministic data ----

const memory = new ArrayBufferMemory("native-cpu-test");
const js = createJsBackend();

function tensor(dtype: StorageDType, shape: number[], data: ArrayBufferView, scale?: number): TensorRef {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const buffer = memory.alloc(Math.max(8, bytes.byteLength));
  memory.write(buffer, bytes);
  return scale === undefined ? { buffer, dtype, shape } : { buffer, dtype, shape, scale };
}

function zeros(dtype: "f32" | "i32" | "i8", shape: number[]): TensorRef {
  const n = shape.reduce((a, b) => a * b, 1);
  const bytes = dtype === "i8" ? n : 4 * n;
  return { buffer: memory.alloc(Math.max(8, bytes)), dtype, shape };
}

function randomF32(r: () => number, n: number, spread = 4): Float32Array {
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * spread);
}

function randomI8(r: () => number, n: number): Int8Array {
  return Int8Array.from({ length: n }, () => Math.floor(r() * 256) - 128);
}

function randomTrits(r: () => number, n: number): Int8Array {
  return Int8Array.from({ length: n }, () => Math.floor(r() * 3) - 1);
}

/**
 * t2 bytes of n rows of k codes written directly: codes 0..2 within K (a ternary tensor never holds code 3:
 * kernels may read it as any value) and any code, 3 included, in the padding past K.
 */
function rawCodes(r: () => number, n: number, k: number): Uint8Array {
  const rowBytes = Math.ceil(k / 4);
  const w = new Uint8Array(n * rowBytes);
  for (let j = 0; j < n; j++) {
    for (let c = 0; c < rowBytes * 4; c++) {
      const code = Math.floor(r() * (c < k ? 3 : 4));
      w[j * rowBytes + (c >> 2)] = (w[j * rowBytes + (c >> 2)] ?? 0) | (code << (2 * (c & 3)));
    }
  }
  return w;
}

function nmse(got: Float32Array, want: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let t = 0; t < want.length; t++) {
    const w = want[t] ?? 0;
    const g = got[t] ?? 0;
    if (Number.isNaN(w) || Number.isNaN(g)) {
      if (Number.isNaN(w) !== Number.isNaN(g)) {
        return Infinity;
      }
      continue;
    }
    if (w === g) {
      continue;
    }
    num += (g - w) * (g - w);
    den += w * w;
  }
  return num === 0 ? 0 : num / Math.max(den, 1e-30);
}

function f32Of(t: TensorRef, n: number): Float32Array {
  return views.f32(t).slice(0, n);
}

function expectBitEqual(got: Float32Array | Int32Array, want: Float32Array | Int32Array): void {
  const g = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const w = new Uint32Array(want.buffer, want.byteOffset, want.length);
  let first = -1;
  for (let t = 0; t < w.length; t++) {
    if (g[t] !== w[t]) {
      first = t;
      break;
    }
  }
  expect(first === -1 ? "equal" : `index ${first}: ${got[first]} vs ${want[first]}`).toBe("equal");
}

const TOLERANCE = 1e-10;

// (m, k, n): M = 1 and M > 1, N = 1, K off multiples of 4, 32, 64, 128 and 256, plus real FFN shapes.
const MATMUL_SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [1, 3, 5],
  [1, 37, 9],
  [1, 255, 13],
  [2, 257, 1],
  [3, 300, 17],
  [4, 512, 8],
  [5, 1000, 33],
  [9, 129, 6],
  [1, 1536, 40],
  [1, 6912, 12],
  [6, 2560, 21],
];

if (!probe.available) {
  describe("native-cpu backend", () => {
    it.skip(`native-cpu is unavailable: ${reason}`, () => {});
  });
}

describe.skipIf(!probe.available)("native-cpu backend", () => {
  afterAll(() => {
    expect(memory.liveAllocations()).toBeGreaterThanOrEqual(0);
  });

  it("reports its probe and creates through the provider", async () => {
    expect(probe.available).toBe(true);
    expect((await nativeCpuProvider.probe()).available).toBe(true);
    const backend = await nativeCpuProvider.create({ threads: 1 });
    expect(backend.name).toBe("native-cpu");
    expect(backend.info.threads).toBe(1);
    backend.dispose();
  });

  for (const isa of probe.available ? isaPaths() : []) {
    describe(`ISA path ${isa}`, () => {
      let backend: PartialBackend | undefined;
      const nk = (): PartialBackend => {
        backend ??= createNativeCpuBackend({ isa, threads: 2 });
        return backend;
      };
      afterAll(() => backend?.dispose());

      it("runs on the requested path", () => {
        expect(nk().info.features[0]).toBe(isa);
      });

      it("matmulTernaryI8 is bit-exact (packed weights, and raw codes with garbage padding codes past K)", () => {
        const r = rng(11);
        for (const [m, k, n] of MATMUL_SHAPES) {
          for (const raw of [false, true]) {
            const rowBytes = Math.ceil(k / 4);
            const w = raw
              ? rawCodes(r, n, k)
              : packTernary(randomTrits(r, n * k), n, k);
            const wt = tensor("ternary", [n, k], w, 0.75 + r());
            const xt = tensor("i8", [m, k], randomI8(r, m * k));
            const st = tensor(
              "f32",
              [m],
              Float32Array.from({ length: m }, () => 1 + r() * 100),
            );
            const got = zeros("f32", [m, n]);
            const want = zeros("f32", [m, n]);
            nk().kernels.matmulTernaryI8?.(xt, st, wt, got);
            js.kernels.matmulTernaryI8(xt, st, wt, want);
            expectBitEqual(f32Of(got, m * n), f32Of(want, m * n));
          }
        }
        // Largest partial sums (every weight ±1, every activation -128 or 127, long rows): kernels that sum in
        // int16 before widening (the AVX2 tile) must not overflow.
        for (const [m, k, n] of [[5, 4099, 6], [1, 8192, 9]] as const) {
          for (const [t, v] of [[1, -128], [-1, -128], [1, 127], [-1, 127]] as const) {
            const wt = tensor("ternary", [n, k], packTernary(new Int8Array(n * k).fill(t), n, k), 1);
            const xt = tensor("i8", [m, k], new Int8Array(m * k).fill(v));
            const st = tensor("f32", [m], new Float32Array(m).fill(1));
            const got = zeros("f32", [m, n]);
            const want = zeros("f32", [m, n]);
            nk().kernels.matmulTernaryI8?.(xt, st, wt, got);
            js.kernels.matmulTernaryI8(xt, st, wt, want);
            expectBitEqual(f32Of(got, m * n), f32Of(want, m * n));
          }
        }
      });

      it("matmulBinaryI8 and matmulBinaryBinary are bit-exact (garbage padding bits)", () => {
        const r = rng(12);
        for (const [m, k, n] of MATMUL_SHAPES) {
          const words = Math.ceil(k / 32);
          const w = Uint32Array.from({ length: n * words }, () => Math.floor(r() * 2 ** 32));
          const wt = tensor("binary", [n, k], w, 0.5 + r());
          const xt = tensor("i8", [m, k], randomI8(r, m * k));
          const st = tensor(
            "f32",
            [m],
            Float32Array.from({ length: m }, () => 1 + r() * 100),
          );
          const got = zeros("f32", [m, n]);
          const want = zeros("f32", [m, n]);
          nk().kernels.matmulBinaryI8?.(xt, st, wt, got);
          js.kernels.matmulBinaryI8(xt, st, wt, want);
          expectBitEqual(f32Of(got, m * n), f32Of(want, m * n));

          const xb = tensor(
            "binary",
            [m, k],
            Uint32Array.from({ length: m * words }, () => Math.floor(r() * 2 ** 32)),
          );
          const gotI = zeros("i32", [m, n]);
          const wantI = zeros("i32", [m, n]);
          nk().kernels.matmulBinaryBinary?.(xb, wt, gotI);
          js.kernels.matmulBinaryBinary(xb, wt, wantI);
          expectBitEqual(views.i32(gotI).slice(0, m * n), views.i32(wantI).slice(0, m * n));
        }
        // Packed ±1 weights as produced by packBinary, too.
        const wt = tensor(
          "binary",
          [7, 77],
          packBinary(
            Int8Array.from({ length: 7 * 77 }, () => (r() < 0.5 ? -1 : 1)),
            7,
            77,
          ),
          1,
        );
        const xt = tensor("i8", [2, 77], randomI8(r, 2 * 77));
        const st = tensor("f32", [2], Float32Array.of(3, 5));
        const got = zeros("f32", [2, 7]);
        const want = zeros("f32", [2, 7]);
        nk().kernels.matmulBinaryI8?.(xt, st, wt, got);
        js.kernels.matmulBinaryI8(xt, st, wt, want);
        expectBitEqual(f32Of(got, 14), f32Of(want, 14));
      });

      it("quantizeActivations is bit-exact, ties included, and rejects non-finite input", () => {
        const r = rng(13);
        const cases: [number, number, Float32Array][] = [
          [1, 1, Float32Array.of(0)],
          [2, 3, Float32Array.of(0, 0, 0, 1e-7, -2e-6, 3e-6)],
          // absmax 127 → s = 1: exact .5 ties must round to even.
          [1, 8, Float32Array.of(127, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 126.5)],
        ];
        for (const [m, k] of [
          [1, 2560],
          [3, 1001],
          [7, 33],
        ] as const) {
          const x = randomF32(r, m * k, 10 ** (r() * 6 - 3));
          cases.push([m, k, x]);
        }
        for (const [m, k, x] of cases) {
          expectQuantizeLikeJs(nk(), tensor("f32", [m, k], x), m, k);
        }
        const bad = tensor("f32", [1, 3], Float32Array.of(1, Number.NaN, 2));
        expect(() => nk().kernels.quantizeActivations?.(bad, zeros("i8", [1, 3]), zeros("f32", [1]))).toThrow(
          ValueError,
        );
      });

      it("splits large quantizations, norms and elementwise ops over threads with identical results", () => {
        // 300 rows × 1000: the row-parallel paths (chunks of ≥ 32 Ki elements) on two threads.
        const r = rng(21);
        const [m, k] = [300, 1000];
        const x = randomF32(r, m * k, 3);
        const xt = tensor("f32", [m, k], x);
        expectQuantizeLikeJs(nk(), xt, m, k);
        // The first non-finite value is reported even when it sits in a later chunk.
        const withNan = x.slice();
        withNan[251 * k + 7] = Number.POSITIVE_INFINITY;
        withNan[287 * k + 1] = Number.NaN;
        let caught: unknown;
        try {
          nk().kernels.quantizeActivations?.(tensor("f32", [m, k], withNan), zeros("i8", [m, k]), zeros("f32", [m]));
        } catch (e) {
          caught = e;
        }
        expect(caught).toBeInstanceOf(ValueError);
        expect((caught as ValueError).index).toBe(251 * k + 7);
        // RMSNorm rows and a long elementwise op: the same bits as one thread.
        const single = createNativeCpuBackend({ isa, threads: 1 });
        try {
          const w = tensor("f32", [k], randomF32(r, k, 1));
          const n1 = zeros("f32", [m, k]);
          const n2 = zeros("f32", [m, k]);
          nk().kernels.rmsNorm?.(xt, w, 1e-5, n1);
          single.kernels.rmsNorm?.(xt, w, 1e-5, n2);
          expectBitEqual(f32Of(n1, m * k), f32Of(n2, m * k));
          const u1 = zeros("f32", [m * k]);
          const u2 = zeros("f32", [m * k]);
          nk().kernels.unary?.("silu", { ...xt, shape: [m * k] }, u1);
          single.kernels.unary?.("silu", { ...xt, shape: [m * k] }, u2);
          expectBitEqual(f32Of(u1, m * k), f32Of(u2, m * k));
        } finally {
          single.dispose();
        }
      });

      it("matmulDense (f32 and f16 weights) and matmulF32 are within NMSE 1e-10", () => {
        const r = rng(14);
        for (const [m, k, n] of [...MATMUL_SHAPES, [1, 2560, 300] as [number, number, number]]) {
          const x = tensor("f32", [m, k], randomF32(r, m * k));
          const wf = randomF32(r, n * k, 0.5);
          const w16 = tensor(
            "f16",
            [n, k],
            Uint16Array.from(wf, (v) => f32ToHalf(v)),
          );
          const w32 = tensor("f32", [n, k], wf);
          for (const w of [w16, w32]) {
            const got = zeros("f32", [m, n]);
            const want = zeros("f32", [m, n]);
            nk().kernels.matmulDense?.(x, w, got);
            js.kernels.matmulDense(x, w, want);
            expect(nmse(f32Of(got, m * n), f32Of(want, m * n))).toBeLessThanOrEqual(TOLERANCE);
          }
          const got = zeros("f32", [m, n]);
          const want = zeros("f32", [m, n]);
          nk().kernels.matmulF32?.(x, w32, got);
          js.kernels.matmulF32(x, w32, want);
          expect(nmse(f32Of(got, m * n), f32Of(want, m * n))).toBeLessThanOrEqual(TOLERANCE);
        }
        expect(accepts("matmulDense", [x0(), { ...x0(), dtype: "bf16" }, x0()])).toMatch(/bf16/);
      });

      it("matmulDense with q8_0 weights is within NMSE 1e-10 (GEMV, several rows, odd n)", () => {
        const r = rng(15);
        for (const [m, k, n] of [
          [1, 32, 1],
          [1, 1536, 203],
          [3, 96, 7],
          [5, 2560, 33],
        ] as const) {
          const x = tensor("f32", [m, k], randomF32(r, m * k));
          const w = tensor("q8_0", [n, k], Q8_0.encode(randomF32(r, n * k, 0.5), n, k));
          const got = zeros("f32", [m, n]);
          const want = zeros("f32", [m, n]);
          expect(accepts("matmulDense", [x, w, got])).toBe(true);
          nk().kernels.matmulDense?.(x, w, got);
          js.kernels.matmulDense(x, w, want);
          expect(nmse(f32Of(got, m * n), f32Of(want, m * n))).toBeLessThanOrEqual(TOLERANCE);
        }
        const xo = tensor("f32", [1, 40], randomF32(r, 40));
        // q8_0 rows are whole 32-element blocks (the typed layer cannot make one of 40); the kernel refuses it too.
        expect(() => nk().kernels.matmulDense?.(xo, { ...xo, dtype: "q8_0", shape: [2, 40] }, zeros("f32", [1, 2]))).toThrow(/multiple of 32/);
      });

      it("matmulDense with q6_k weights (llama-quantize's head) runs here within NMSE 1e-10; q6_k and q8_0 embedding rows are exact", () => {
        const r = rng(17);
        for (const [m, k, n] of [
          [1, 256, 1],
          [1, 1536, 203],
          [4, 512, 33],
        ] as const) {
          const x = tensor("f32", [m, k], randomF32(r, m * k));
          const w = tensor("q6_k", [n, k], Q6_K.encode(randomF32(r, n * k, 0.5), n, k));
          const got = zeros("f32", [m, n]);
          const want = zeros("f32", [m, n]);
          expect(accepts("matmulDense", [x, w, got])).toBe(true);
          nk().kernels.matmulDense?.(x, w, got);
          js.kernels.matmulDense(x, w, want);
          expect(nmse(f32Of(got, m * n), f32Of(want, m * n))).toBeLessThanOrEqual(TOLERANCE);
        }
        const xo = tensor("f32", [1, 128], randomF32(r, 128));
        expect(() => nk().kernels.matmulDense?.(xo, { ...xo, dtype: "q6_k", shape: [2, 128] }, zeros("f32", [1, 2]))).toThrow(/multiple of 256/);
        const [v, e] = [30, 768];
        const t = tensor("q6_k", [v, e], Q6_K.encode(randomF32(r, v * e, 2), v, e));
        const ids = tensor("i32", [5], Int32Array.of(0, 29, 7, 7, 13));
        const got = zeros("f32", [5, e]);
        const want = zeros("f32", [5, e]);
        expect(accepts("embedding", [ids, t, got])).toBe(true);
        nk().kernels.embedding?.(ids, t, got);
        js.kernels.embedding(ids, t, want);
        expectBitEqual(f32Of(got, 5 * e), f32Of(want, 5 * e));
        expect(() => nk().kernels.embedding?.(tensor("i32", [2], Int32Array.of(3, 30)), t, zeros("f32", [2, e]))).toThrow(ShapeError);
        const t8 = tensor("q8_0", [v, 96], Q8_0.encode(randomF32(r, v * 96, 2), v, 96));
        const got8 = zeros("f32", [5, 96]);
        const want8 = zeros("f32", [5, 96]);
        expect(accepts("embedding", [ids, t8, got8])).toBe(true);
        nk().kernels.embedding?.(ids, t8, got8);
        js.kernels.embedding(ids, t8, want8);
        expectBitEqual(f32Of(got8, 5 * 96), f32Of(want8, 5 * 96));
      });

      it("matmulQ8I8 (the integer Q8_0 head) is bit-exact: tiles of 16 rows, tails, 1 to 11 rows, 1 and 2 threads", () => {
        const r = rng(16);
        const single = createNativeCpuBackend({ isa, threads: 1 });
        try {
          for (const [m, k, n] of [
            [1, 32, 1],
            [1, 1536, 203],
            [1, 2080, 37], // m = 1 row kernel: 4 groups of 16 blocks + 1 tail block
            [1, 96, 16], // m = 1 row kernel: tail blocks only
            [3, 96, 16],
            [8, 2560, 35],
            [11, 64, 130],
          ] as const) {
            const x = tensor("f32", [m, k], randomF32(r, m * k, 3));
            const wb = Q8_0.encode(randomF32(r, n * k, 0.5), n, k);
            for (let j = 0; j < n; j += 2) {
              wb[j * (k / 32) * 34 + 2 + (j % 32)] = 0x80; // q = -128 (|q| = 128 in the AVX2 path)
            }
            const w = tensor("q8_0", [n, k], wb);
            const got = zeros("f32", [m, n]);
            const got1 = zeros("f32", [m, n]);
            const want = zeros("f32", [m, n]);
            expect(accepts("matmulQ8I8", [x, w, got])).toBe(true);
            nk().kernels.matmulQ8I8?.(x, w, got);
            single.kernels.matmulQ8I8?.(x, w, got1);
            js.kernels.matmulQ8I8(x, w, want);
            expectBitEqual(f32Of(got, m * n), f32Of(want, m * n));
            expectBitEqual(f32Of(got1, m * n), f32Of(want, m * n));
          }
        } finally {
          single.dispose();
        }
        const bad = randomF32(r, 64);
        bad[37] = Number.NaN;
        const xb = tensor("f32", [1, 64], bad);
        const wb = tensor("q8_0", [4, 64], Q8_0.encode(randomF32(r, 256), 4, 64));
        expect(() => nk().kernels.matmulQ8I8?.(xb, wb, zeros("f32", [1, 4]))).toThrow(/index 37/);
        const xo = tensor("f32", [1, 40], randomF32(r, 40));
        expect(() => nk().kernels.matmulQ8I8?.(xo, { ...xo, dtype: "q8_0", shape: [2, 40] }, zeros("f32", [1, 2]))).toThrow(/multiple of 32/);
      });

      it("embedding (f32 and f16 tables) is exact and checks ids", () => {
        const r = rng(15);
        const [v, e] = [50, 37];
        const table = randomF32(r, v * e);
        const ids = tensor("i32", [4], Int32Array.of(0, 49, 7, 7));
        for (const t of [
          tensor("f32", [v, e], table),
          tensor(
            "f16",
            [v, e],
            Uint16Array.from(table, (x) => f32ToHalf(x)),
          ),
        ]) {
          const got = zeros("f32", [4, e]);
          const want = zeros("f32", [4, e]);
          nk().kernels.embedding?.(ids, t, got);
          js.kernels.embedding(ids, t, want);
          expectBitEqual(f32Of(got, 4 * e), f32Of(want, 4 * e));
          const bad = tensor("i32", [2], Int32Array.of(3, 50));
          expect(() => nk().kernels.embedding?.(bad, t, zeros("f32", [2, e]))).toThrow(ShapeError);
        }
      });

      it("rmsNorm, rope, softmax, scale and unary are within NMSE 1e-10", () => {
        const r = rng(16);
        const check = (
          n: number,
          run: (k: PartialBackend["kernels"] | typeof js.kernels, out: TensorRef) => void,
        ): void => {
          const got = zeros("f32", [n]);
          const want = zeros("f32", [n]);
          run(nk().kernels, got);
          run(js.kernels, want);
          expect(nmse(f32Of(got, n), f32Of(want, n))).toBeLessThanOrEqual(TOLERANCE);
        };
        for (const [rows, cols] of [
          [1, 1],
          [3, 2560],
          [5, 17],
        ] as const) {
          const x = tensor("f32", [rows, cols], randomF32(r, rows * cols));
          const w = tensor("f32", [cols], randomF32(r, cols));
          check(rows * cols, (k, out) => k.rmsNorm?.(x, w, 1e-5, { ...out, shape: [rows, cols] }));
          check(rows * cols, (k, out) => k.rmsNorm?.(x, undefined, 1e-6, { ...out, shape: [rows, cols] }));
          check(rows * cols, (k, out) => k.softmax?.(x, { ...out, shape: [rows, cols] }));
          check(rows * cols, (k, out) => k.scale?.(x, 0.37, { ...out, shape: [rows, cols] }));
          for (const op of Object.keys(UNARY_OPS) as UnaryOp[]) {
            check(rows * cols, (k, out) => k.unary?.(op, x, { ...out, shape: [rows, cols] }));
          }
        }
        // Masked softmax rows: −Infinity entries and a fully masked row.
        const masked = tensor(
          "f32",
          [2, 4],
          Float32Array.of(1, -Infinity, 2, 3, -Infinity, -Infinity, -Infinity, -Infinity),
        );
        check(8, (k, out) => k.softmax?.(masked, { ...out, shape: [2, 4] }));
        for (const mode of ["neox", "adjacent"] as const) {
          const [s, h, d] = [5, 3, 64];
          const x = tensor("f32", [s, h, d], randomF32(r, s * h * d));
          const pos = tensor("i32", [s], Int32Array.of(0, 1, 7, 100, 4095));
          check(s * h * d, (k, out) => k.rope?.(x, pos, 10000, mode, { ...out, shape: [s, h, d] }));
        }
      });

      it("attention (causal, GQA, over a cache prefix) is within NMSE 1e-10", () => {
        const r = rng(17);
        for (const [seqQ, seqKV, nHead, nKv, d, pos0] of [
          [1, 1, 1, 1, 8, 0],
          [1, 40, 4, 2, 64, 39],
          [6, 20, 6, 3, 32, 10],
          [3, 64, 8, 8, 128, 0],
          // Large enough to split over the pool; head sizes that leave SIMD tails.
          [40, 100, 8, 2, 96, 60],
          [33, 70, 6, 2, 40, 37],
          [17, 17, 4, 4, 20, 0],
        ] as const) {
          const q = tensor("f32", [seqQ, nHead, d], randomF32(r, seqQ * nHead * d));
          // A cache with spare capacity: only the first pos0 + seqQ … seqKV positions are read.
          const k = tensor("f32", [seqKV, nKv, d], randomF32(r, seqKV * nKv * d));
          const v = tensor("f32", [seqKV, nKv, d], randomF32(r, seqKV * nKv * d));
          const n = seqQ * nHead * d;
          const got = zeros("f32", [seqQ, nHead, d]);
          const want = zeros("f32", [seqQ, nHead, d]);
          nk().kernels.attention?.(q, k, v, pos0, 1 / Math.sqrt(d), got);
          js.kernels.attention(q, k, v, pos0, 1 / Math.sqrt(d), want);
          expect(nmse(f32Of(got, n), f32Of(want, n))).toBeLessThanOrEqual(TOLERANCE);
        }
      });

      it("binary: contiguous, broadcast over rows, and general strides", () => {
        const r = rng(18);
        const [rows, cols] = [7, 45];
        const a = tensor("f32", [rows, cols], randomF32(r, rows * cols));
        const b = tensor("f32", [rows, cols], randomF32(r, rows * cols));
        const row = tensor("f32", [cols], randomF32(r, cols));
        const cases: [TensorRef, number[], TensorRef, number[], number[]][] = [
          [a, [cols, 1], b, [cols, 1], [rows, cols]],
          [a, [cols, 1], row, [0, 1], [rows, cols]],
          [row, [0, 1], a, [cols, 1], [rows, cols]],
          // Transposed read of a and a column broadcast of b, rank 3.
          [a, [0, 1, cols], b, [1, 0, 0], [2, cols, rows]],
          [a, [], b, [], []],
        ];
        for (const [x, xs, y, ys, shape] of cases) {
          const n = shape.reduce((p, q) => p * q, 1);
          for (const op of Object.keys(BINARY_OPS) as BinaryOp[]) {
            const got = zeros("f32", shape);
            const want = zeros("f32", shape);
            nk().kernels.binary?.(op, x, xs, y, ys, got);
            js.kernels.binary(op, x, xs, y, ys, want);
            expectBitEqual(f32Of(got, n), f32Of(want, n));
          }
        }
        expect(() => nk().kernels.binary?.("add", a, [cols, 1], row, [1, 1], zeros("f32", [rows, cols]))).toThrow(
          ShapeError,
        );
      });

      it("writeRows copies rows into a cache", () => {
        const src = tensor("f32", [2, 3], Float32Array.of(1, 2, 3, 4, 5, 6));
        const dst = zeros("f32", [4, 3]);
        nk().kernels.writeRows?.(src, dst, 1);
        expect(Array.from(f32Of(dst, 12))).toEqual([0, 0, 0, 1, 2, 3, 4, 5, 6, 0, 0, 0]);
        expect(() => nk().kernels.writeRows?.(src, dst, 3)).toThrow(ShapeError);
      });

      it("checks shapes and lengths before calling native code", () => {
        const x = tensor("i8", [2, 10], new Int8Array(20));
        const s = tensor("f32", [2], new Float32Array(2));
        const w = tensor("ternary", [3, 12], new Uint8Array(9), 1);
        expect(() => nk().kernels.matmulTernaryI8?.(x, s, w, zeros("f32", [2, 3]))).toThrow(ShapeError);
        const short = tensor("ternary", [300, 10], new Uint8Array(9), 1);
        expect(() => nk().kernels.matmulTernaryI8?.(x, s, short, zeros("f32", [2, 300]))).toThrow(ShapeError);
      });
    });
  }

  it("gives identical integer results with 1 and 2 threads", () => {
    const r = rng(21);
    const one = createNativeCpuBackend({ threads: 1 });
    const two = createNativeCpuBackend({ threads: 2 });
    try {
      expect(one.info.threads).toBe(1);
      expect(two.info.threads).toBe(2);
      for (const [m, k, n] of [
        [1, 2560, 1000],
        [9, 1536, 301],
      ] as const) {
        const wt = tensor("ternary", [n, k], packTernary(randomTrits(r, n * k), n, k), 1.25);
        const xt = tensor("i8", [m, k], randomI8(r, m * k));
        const st = tensor(
          "f32",
          [m],
          Float32Array.from({ length: m }, () => 1 + r() * 100),
        );
        const a = zeros("f32", [m, n]);
        const b = zeros("f32", [m, n]);
        one.kernels.matmulTernaryI8?.(xt, st, wt, a);
        two.kernels.matmulTernaryI8?.(xt, st, wt, b);
        expectBitEqual(f32Of(a, m * n), f32Of(b, m * n));
      }
    } finally {
      one.dispose();
      two.dispose();
    }
  });


  it("can be disposed twice, and refuses work afterwards", () => {
    const b = createNativeCpuBackend({ threads: 2 });
    b.dispose();
    b.dispose();
    const x = tensor("f32", [2], Float32Array.of(1, 2));
    expect(() => b.kernels.scale?.(x, 2, zeros("f32", [2]))).toThrow(/disposed/);
  });

  it("honours BARBELL_NATIVE_ISA and never goes above the CPU's best path", () => {
    const saved = process.env.BARBELL_NATIVE_ISA;
    try {
      process.env.BARBELL_NATIVE_ISA = "scalar";
      const b = createNativeCpuBackend({ threads: 1 });
      expect(b.info.features[0]).toBe("scalar");
      b.dispose();
    } finally {
      if (saved === undefined) {
        delete process.env.BARBELL_NATIVE_ISA;
      } else {
        process.env.BARBELL_NATIVE_ISA = saved;
      }
    }
    const addon = nativeAddon();
    const best = addon?.features().best ?? "scalar";
    const ctx = addon === undefined ? undefined : new addon.Context(1, "avx512vnni");
    expect(ctx?.isa === "avx512vnni" || ctx?.isa === best).toBe(true);
    ctx?.dispose();
  });
});

/** quantizeActivations of x [m, k] on `backend` gives the JS reference's codes and scales bit for bit. */
function expectQuantizeLikeJs(backend: PartialBackend, xt: TensorRef, m: number, k: number): void {
  const q1 = zeros("i8", [m, k]);
  const s1 = zeros("f32", [m]);
  const q2 = zeros("i8", [m, k]);
  const s2 = zeros("f32", [m]);
  backend.kernels.quantizeActivations?.(xt, q1, s1);
  js.kernels.quantizeActivations(xt, q2, s2);
  expect(views.i8(q1).slice(0, m * k)).toEqual(views.i8(q2).slice(0, m * k));
  expectBitEqual(f32Of(s1, m), f32Of(s2, m));
}

function x0(): TensorRef {
  return { buffer: { id: 0, bytes: 0 }, dtype: "f32", shape: [1, 1] };
}
