/**
 * The WASM SIMD backend against the JS reference kernels (the oracle): integer kernels and quantization,
 * the float64-order kernels bit for bit, f32-summing kernels within a tolerance; capabilities and placement.
 * Its memory and threads: wasm-simd-memory.test.ts.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { ShapeError, UsageError, ValueError } from "../../src/core/errors.js";
import type { Backend, BinaryOp, StorageDType, TensorRef, UnaryOp } from "../../src/backends/backend.js";
import { BINARY_OPS, UNARY_OPS } from "../../src/backends/ops.js";
import { createJsBackend } from "../../src/backends/js/index.js";
import { storageBytes } from "../../src/backends/storage.js";
import { createDispatcher } from "../../src/backends/dispatch.js";
import { packBinary, packTernary } from "../../src/quant/layouts.js";
import { f32BitsToHalfBits, f32Bits } from "../../src/quant/half.js";
import {
  createWasmSimdBackend,
  nodeThreadHost,
  probeWasmSimd,
  WASM_ALIGN,
  WASM_PAGE_BYTES,
  wasmSimdProvider,
  type WasmSimdBackend,
  type ThreadHost,
  type WasmSimdOptions,
} from "../../src/backends/wasm-simd/index.js";
import { mulberry32 as rng } from "../../src/model/bitnet/fixture.js";

const probe = await probeWasmSimd();
const skipReason = probe.available ? "" : probe.reason;

const bytesOf = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** The same tensor in both backends. */
interface Pair {
  readonly wasm: TensorRef;
  readonly js: TensorRef;
}

/** The suite runs single-threaded and on two threads that split every call they can (no size threshold). */
const CONFIGS: [string, WasmSimdOptions][] = [
  ["1 thread", { threads: 1 }],
  ["2 threads", { threads: 2, minParallelWork: 0 }],
];

describe.skipIf(!probe.available).each(CONFIGS)(`wasm-simd backend, %s ${skipReason}`, (label, options) => {
  let wb: WasmSimdBackend;
  let js: Backend;
  const held: Pair[] = [];

  beforeAll(async () => {
    wb = await createWasmSimdBackend(options);
    js = createJsBackend();
  });
  afterAll(() => {
    wb.dispose();
  });

  const k = (): Required<typeof wb.kernels> => wb.kernels as Required<typeof wb.kernels>;

  function pair(dtype: StorageDType, shape: number[], data: Uint8Array, scale?: number): Pair {
    const bytes = storageBytes(dtype, shape);
    const src = new Uint8Array(bytes);
    src.set(data.subarray(0, bytes));
    const extra = scale === undefined ? {} : { scale };
    const p = {
      wasm: { buffer: wb.memory.adopt(src), dtype, shape, ...extra },
      js: { buffer: js.adopt?.(src.slice()) ?? js.alloc(bytes), dtype, shape, ...extra },
    };
    held.push(p);
    return p;
  }
  const empty = (dtype: StorageDType, shape: number[]): Pair => pair(dtype, shape, new Uint8Array(0));
  const readBoth = (p: Pair): [Uint8Array, Uint8Array] => [wb.memory.read(p.wasm.buffer), js.read(p.js.buffer)];
  const f32Of = (b: Uint8Array): Float32Array => new Float32Array(b.buffer, b.byteOffset, b.byteLength >> 2);
  const release = (): void => {
    for (const p of held.splice(0)) {
      wb.memory.free(p.wasm.buffer);
      js.free(p.js.buffer);
    }
  };

  function randomF32(rand: () => number, n: number, spread = 4): Float32Array {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      a[i] = (rand() * 2 - 1) * spread;
    }
    return a;
  }
  function randomI8(rand: () => number, n: number): Int8Array {
    const a = new Int8Array(n);
    for (let i = 0; i < n; i++) {
      a[i] = Math.floor(rand() * 256) - 128;
    }
    return a;
  }
  function randomTrits(rand: () => number, n: number): Int8Array {
    const a = new Int8Array(n);
    for (let i = 0; i < n; i++) {
      a[i] = Math.floor(rand() * 3) - 1;
    }
    return a;
  }

  function expectClose(actual: Float32Array, expected: Float32Array, bound: (i: number) => number): void {
    expect(actual.length).toBe(expected.length);
    for (let i = 0; i < expected.length; i++) {
      const a = actual[i] ?? Number.NaN;
      const e = expected[i] ?? Number.NaN;
      if (Number.isNaN(e)) {
        expect(Number.isNaN(a), `index ${i}`).toBe(true);
      } else if (Math.abs(a - e) > bound(i)) {
        expect.fail(`index ${i}: ${a} vs ${e} (bound ${bound(i)})`);
      }
    }
  }

  const MATMUL_SHAPES: [number, number, number][] = [
    [1, 1, 1],
    [1, 3, 5],
    [1, 64, 7],
    [1, 65, 3],
    [2, 130, 9],
    [4, 256, 5],
    [5, 333, 17],
    [1, 2560, 16],
    [7, 1000, 3],
    [3, 64 * 40 + 7, 4],
    [1, 64 * 40, 1],
    [9, 517, 6],
  ];

  describe("ternary × int8", () => {
    it.each(MATMUL_SHAPES)("should equal the reference bit for bit (m %i, k %i, n %i)", (m, kk, n) => {
      const rand = rng(m * 7919 + kk * 31 + n);
      const x = pair("i8", [m, kk], bytesOf(randomI8(rand, m * kk)));
      const scales = Float32Array.from({ length: m }, () => 1 + rand() * 100);
      const s = pair("f32", [m], bytesOf(scales));
      const w = pair("ternary", [n, kk], packTernary(randomTrits(rand, n * kk), n, kk), 0.37 + rand());
      const out = empty("f32", [m, n]);
      k().matmulTernaryI8(x.wasm, s.wasm, w.wasm, out.wasm);
      js.kernels.matmulTernaryI8(x.js, s.js, w.js, out.js);
      const [a, b] = readBoth(out);
      expect(a).toEqual(b);
      release();
    });

    it("should ignore padding codes and decode code 3 as 0, like the reference", () => {
      const rand = rng(5);
      for (const [m, kk, n] of [[1, 70, 3], [2, 67, 4], [5, 64 * 17 + 1, 2]] as const) {
        const rowBytes = Math.ceil(kk / 4);
        const garbage = Uint8Array.from({ length: n * rowBytes }, () => Math.floor(rand() * 256));
        const x = pair("i8", [m, kk], bytesOf(randomI8(rand, m * kk)));
        const s = pair("f32", [m], bytesOf(Float32Array.from({ length: m }, () => 3)));
        const w = pair("ternary", [n, kk], garbage, 1.5);
        const out = empty("f32", [m, n]);
        k().matmulTernaryI8(x.wasm, s.wasm, w.wasm, out.wasm);
        js.kernels.matmulTernaryI8(x.js, s.js, w.js, out.js);
        const [a, b] = readBoth(out);
        expect(a).toEqual(b);
      }
      release();
    });

    it("should reach the extreme int16 partial sums exactly (all x = −128, all trits −1)", () => {
      const [m, kk, n] = [4, 64 * 40, 2];
      const x = pair("i8", [m, kk], new Uint8Array(m * kk).fill(0x80));
      const s = pair("f32", [m], bytesOf(Float32Array.from({ length: m }, () => 1)));
      const w = pair("ternary", [n, kk], packTernary(new Int8Array(n * kk).fill(-1), n, kk), 1);
      const out = empty("f32", [m, n]);
      k().matmulTernaryI8(x.wasm, s.wasm, w.wasm, out.wasm);
      expect(Array.from(f32Of(wb.memory.read(out.wasm.buffer)))).toEqual(new Array<number>(m * n).fill(128 * kk));
      release();
    });
  });

  describe("binary weights", () => {
    it.each(MATMUL_SHAPES)("binary × int8 should equal the reference (m %i, k %i, n %i)", (m, kk, n) => {
      const rand = rng(kk * 13 + n);
      const x = pair("i8", [m, kk], bytesOf(randomI8(rand, m * kk)));
      const s = pair("f32", [m], bytesOf(Float32Array.from({ length: m }, () => 0.5 + rand() * 50)));
      // Random words: padding bits past K are garbage and must not count.
      const words = Uint32Array.from({ length: n * Math.ceil(kk / 32) }, () => Math.floor(rand() * 2 ** 32));
      const w = pair("binary", [n, kk], bytesOf(words), 0.8);
      const out = empty("f32", [m, n]);
      k().matmulBinaryI8(x.wasm, s.wasm, w.wasm, out.wasm);
      js.kernels.matmulBinaryI8(x.js, s.js, w.js, out.js);
      const [a, b] = readBoth(out);
      expect(a).toEqual(b);
      release();
    });

    it.each(MATMUL_SHAPES)("binary × binary should equal the reference (m %i, k %i, n %i)", (m, kk, n) => {
      const rand = rng(kk * 17 + m);
      const wordsOf = (rows: number): Uint32Array =>
        Uint32Array.from({ length: rows * Math.ceil(kk / 32) }, () => Math.floor(rand() * 2 ** 32));
      const x = pair("binary", [m, kk], bytesOf(wordsOf(m)));
      const w = pair("binary", [n, kk], bytesOf(wordsOf(n)));
      const out = empty("i32", [m, n]);
      k().matmulBinaryBinary(x.wasm, w.wasm, out.wasm);
      js.kernels.matmulBinaryBinary(x.js, w.js, out.js);
      const [a, b] = readBoth(out);
      expect(a).toEqual(b);
      release();
    });

    it("should agree with packBinary signs", () => {
      const signs = Int8Array.from([1, -1, -1, 1, 1, 1, -1]);
      const x = pair("binary", [1, 7], bytesOf(packBinary(signs, 1, 7)));
      const out = empty("i32", [1, 1]);
      k().matmulBinaryBinary(x.wasm, x.wasm, out.wasm);
      expect(new Int32Array(wb.memory.read(out.wasm.buffer).buffer)[0]).toBe(7);
      release();
    });
  });

  describe("quantizeActivations", () => {
    it.each([
      [1, 1],
      [1, 17],
      [3, 64],
      [2, 2560],
      [5, 333],
    ])("should equal the reference bit for bit (m %i, k %i)", (m, kk) => {
      const rand = rng(m * 100 + kk);
      const xs = randomF32(rand, m * kk, 10);
      // Values whose scaled form lands on exact halves exercise ties-to-even: x = absmax · (j + 0.5) / 127.
      if (kk >= 8) {
        xs[0] = 10;
        for (let j = 1; j < 8; j++) {
          xs[j] = (10 * (j * 16 + 0.5)) / 127;
        }
      }
      const x = pair("f32", [m, kk], bytesOf(xs));
      const q = empty("i8", [m, kk]);
      const s = empty("f32", [m]);
      k().quantizeActivations(x.wasm, q.wasm, s.wasm);
      js.kernels.quantizeActivations(x.js, q.js, s.js);
      expect(readBoth(q)[0]).toEqual(readBoth(q)[1]);
      expect(readBoth(s)[0]).toEqual(readBoth(s)[1]);
      release();
    });

    it("should handle all-zero and tiny rows like the reference", () => {
      const xs = Float32Array.from([0, 0, 0, 0, 0, 1e-7, -3e-6, 2e-8, 0, 0]);
      const x = pair("f32", [2, 5], bytesOf(xs));
      const q = empty("i8", [2, 5]);
      const s = empty("f32", [2]);
      k().quantizeActivations(x.wasm, q.wasm, s.wasm);
      js.kernels.quantizeActivations(x.js, q.js, s.js);
      expect(readBoth(q)[0]).toEqual(readBoth(q)[1]);
      expect(readBoth(s)[0]).toEqual(readBoth(s)[1]);
      release();
    });

    it("should throw the reference's ValueError at the first non-finite value", () => {
      const xs = new Float32Array(40).fill(1);
      xs[21] = Number.NaN;
      xs[30] = Number.POSITIVE_INFINITY;
      const x = pair("f32", [2, 20], bytesOf(xs));
      const q = empty("i8", [2, 20]);
      const s = empty("f32", [2]);
      let caught: unknown;
      try {
        k().quantizeActivations(x.wasm, q.wasm, s.wasm);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(ValueError);
      expect((caught as ValueError).index).toBe(21);
      release();
    });
  });

  describe("dense weights", () => {
    const randomHalfs = (rand: () => number, n: number): Uint16Array =>
      Uint16Array.from({ length: n }, () => f32BitsToHalfBits(f32Bits((rand() * 2 - 1) * (rand() < 0.1 ? 1e-5 : 3))));
    const randomBf16 = (rand: () => number, n: number): Uint16Array =>
      Uint16Array.from({ length: n }, () => f32Bits((rand() * 2 - 1) * 3) >>> 16);

    for (const dtype of ["f32", "f16", "bf16"] as const) {
      it.each(MATMUL_SHAPES)(`matmulDense ${dtype} should match within 1e-5·Σ|x·w| (m %i, k %i, n %i)`, (m, kk, n) => {
        const rand = rng(m + kk + n);
        const xs = randomF32(rand, m * kk);
        const wData =
          dtype === "f32"
            ? bytesOf(randomF32(rand, n * kk))
            : bytesOf(dtype === "f16" ? randomHalfs(rand, n * kk) : randomBf16(rand, n * kk));
        const x = pair("f32", [m, kk], bytesOf(xs));
        const w = pair(dtype, [n, kk], wData);
        const out = empty("f32", [m, n]);
        k().matmulDense(x.wasm, w.wasm, out.wasm);
        js.kernels.matmulDense(x.js, w.js, out.js);
        // The magnitude Σ|x·w| from the reference run on |x| and |w|.
        const ax = pair("f32", [m, kk], bytesOf(xs.map(Math.abs)));
        const wAbs = new Uint8Array(wData);
        if (dtype === "f32") {
          const f = new Float32Array(wAbs.buffer);
          f.set(f.map(Math.abs));
        } else {
          const h = new Uint16Array(wAbs.buffer);
          h.set(h.map((v) => v & 0x7fff));
        }
        const aw = pair(dtype, [n, kk], wAbs);
        const mag = empty("f32", [m, n]);
        js.kernels.matmulDense(ax.js, aw.js, mag.js);
        const magnitude = f32Of(js.read(mag.js.buffer));
        const [a, b] = readBoth(out);
        expectClose(f32Of(a), f32Of(b), (i) => 1e-5 * (magnitude[i] ?? 0) + 1e-30);
        if (dtype === "f32") {
          k().matmulF32(x.wasm, w.wasm, out.wasm);
          expectClose(f32Of(wb.memory.read(out.wasm.buffer)), f32Of(b), (i) => 1e-5 * (magnitude[i] ?? 0) + 1e-30);
        }
        release();
      });

      it(`embedding ${dtype} should copy rows bit for bit, specials included`, () => {
        const rand = rng(99);
        const [vocab, embed] = [11, 37];
        let table: Uint8Array;
        if (dtype === "f32") {
          table = bytesOf(randomF32(rand, vocab * embed));
        } else {
          const h = dtype === "f16" ? randomHalfs(rand, vocab * embed) : randomBf16(rand, vocab * embed);
          const specials = dtype === "f16" ? [0x7c00, 0xfc00, 0x7e01, 0x0001, 0x83ff, 0x8000] : [0x7f80, 0xff80, 0x7fc1];
          h.set(specials, embed);
          table = bytesOf(h);
        }
        const ids = pair("i32", [5], bytesOf(Int32Array.from([1, 0, 10, 1, 4])));
        const t = pair(dtype, [vocab, embed], table);
        const out = empty("f32", [5, embed]);
        k().embedding(ids.wasm, t.wasm, out.wasm);
        js.kernels.embedding(ids.js, t.js, out.js);
        const [a, b] = readBoth(out);
        expect(a).toEqual(b);
        const bad = pair("i32", [2], bytesOf(Int32Array.from([3, vocab])));
        expect(() => k().embedding(bad.wasm, t.wasm, out.wasm)).toThrow(ShapeError);
        release();
      });
    }
  });

  describe("float kernels", () => {
    it.each([
      [1, 1],
      [3, 7],
      [2, 2560],
      [4, 129],
    ])("rmsNorm should equal the reference (rows %i, cols %i), with and without weight", (rows, cols) => {
      const rand = rng(rows * cols);
      const x = pair("f32", [rows, cols], bytesOf(randomF32(rand, rows * cols)));
      const w = pair("f32", [cols], bytesOf(randomF32(rand, cols, 2)));
      const out = empty("f32", [rows, cols]);
      for (const weight of [w, undefined]) {
        k().rmsNorm(x.wasm, weight?.wasm, 1e-5, out.wasm);
        js.kernels.rmsNorm(x.js, weight?.js, 1e-5, out.js);
        const [a, b] = readBoth(out);
        expect(a).toEqual(b);
      }
      release();
    });

    it.each([
      [1, 1, 2, "neox"],
      [3, 4, 8, "neox"],
      [2, 5, 128, "adjacent"],
      [5, 2, 64, "adjacent"],
    ] as const)("rope should equal the reference (seq %i, heads %i, dim %i, %s)", (seq, heads, hd, mode) => {
      const rand = rng(seq * heads * hd);
      const x = pair("f32", [seq, heads, hd], bytesOf(randomF32(rand, seq * heads * hd)));
      const pos = pair("i32", [seq], bytesOf(Int32Array.from({ length: seq }, (_, i) => i * 37 + 3)));
      const out = empty("f32", [seq, heads, hd]);
      k().rope(x.wasm, pos.wasm, 500000, mode, out.wasm);
      js.kernels.rope(x.js, pos.js, 500000, mode, out.js);
      const [a, b] = readBoth(out);
      expect(a).toEqual(b);
      release();
    });

    it("softmax should equal the reference, masked and NaN rows included", () => {
      const rand = rng(3);
      const cols = 13;
      const xs = randomF32(rand, 5 * cols, 20);
      xs.fill(Number.NEGATIVE_INFINITY, cols, 2 * cols);
      xs[2 * cols + 3] = Number.NEGATIVE_INFINITY;
      xs[3 * cols + 1] = Number.NaN;
      const x = pair("f32", [5, cols], bytesOf(xs));
      const out = empty("f32", [5, cols]);
      k().softmax(x.wasm, out.wasm);
      js.kernels.softmax(x.js, out.js);
      const [a, b] = readBoth(out);
      expect(a).toEqual(b);
      release();
    });

    it.each([
      [1, 0, 1, 1, 4],
      [1, 9, 4, 2, 64],
      [3, 5, 4, 4, 16],
      [4, 0, 6, 3, 33],
      [2, 30, 20, 5, 128],
    ])("attention should match within tolerance (seqQ %i, pos0 %i, heads %i, kv %i, dim %i)", (seqQ, pos0, h, kv, d) => {
      const rand = rng(seqQ * 1000 + pos0 * 10 + d);
      const cache = pos0 + seqQ + 3;
      const q = pair("f32", [seqQ, h, d], bytesOf(randomF32(rand, seqQ * h * d, 1)));
      const kk = pair("f32", [cache, kv, d], bytesOf(randomF32(rand, cache * kv * d, 1)));
      const v = pair("f32", [cache, kv, d], bytesOf(randomF32(rand, cache * kv * d, 1)));
      const out = empty("f32", [seqQ, h, d]);
      const scale = 1 / Math.sqrt(d);
      k().attention(q.wasm, kk.wasm, v.wasm, pos0, scale, out.wasm);
      js.kernels.attention(q.js, kk.js, v.js, pos0, scale, out.js);
      const [a, b] = readBoth(out);
      expectClose(f32Of(a), f32Of(b), () => 2e-5 * Math.sqrt(d));
      expect(() => k().attention(q.wasm, kk.wasm, v.wasm, cache, scale, out.wasm)).toThrow(ShapeError);
      release();
    });

    const UNARY = Object.keys(UNARY_OPS) as UnaryOp[];
    it.each(UNARY)("unary %s should equal the reference", (op) => {
      const rand = rng(op.length);
      const xs = randomF32(rand, 103, 12);
      xs.set([Number.NaN, -0, 0, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1e-40], 0);
      const x = pair("f32", [103], bytesOf(xs));
      const out = empty("f32", [103]);
      k().unary(op, x.wasm, out.wasm);
      js.kernels.unary(op, x.js, out.js);
      const [a, b] = readBoth(out);
      expect(f32Of(a)).toEqual(f32Of(b));
      release();
    });

    const BINARY = Object.keys(BINARY_OPS) as BinaryOp[];
    it.each(BINARY)("binary %s should equal the reference with broadcasting strides", (op) => {
      const rand = rng(op.charCodeAt(0));
      const cases: { shape: number[]; as: number[]; bs: number[] }[] = [
        { shape: [37], as: [1], bs: [1] },
        { shape: [5, 11], as: [11, 1], bs: [0, 1] },
        { shape: [5, 11], as: [11, 1], bs: [1, 0] },
        { shape: [5, 11], as: [0, 1], bs: [11, 1] },
        { shape: [3, 4, 6], as: [24, 6, 1], bs: [1, 3, 12] },
        { shape: [2, 3, 4, 5], as: [60, 20, 5, 1], bs: [0, 5, 0, 1] },
        { shape: [], as: [], bs: [] },
      ];
      for (const { shape, as, bs } of cases) {
        const size = (strides: number[]): number => shape.reduce((acc, s, d) => acc + (s - 1) * (strides[d] ?? 0), 0) + 1;
        const av = randomF32(rand, size(as));
        const bv = randomF32(rand, size(bs));
        av[0] = Number.NaN;
        bv[1 % bv.length] = -0;
        const a = pair("f32", [av.length], bytesOf(av));
        const b = pair("f32", [bv.length], bytesOf(bv));
        const out = empty("f32", shape);
        k().binary(op, a.wasm, as, b.wasm, bs, out.wasm);
        js.kernels.binary(op, a.js, as, b.js, bs, out.js);
        const [x, y] = readBoth(out);
        expect(f32Of(x)).toEqual(f32Of(y));
      }
      release();
    });

    it("scale should equal the reference", () => {
      const rand = rng(8);
      const x = pair("f32", [7, 9], bytesOf(randomF32(rand, 63)));
      const out = empty("f32", [7, 9]);
      k().scale(x.wasm, 0.1, out.wasm);
      js.kernels.scale(x.js, 0.1, out.js);
      const [a, b] = readBoth(out);
      expect(a).toEqual(b);
      release();
    });

    it("writeRows should copy rows into place and refuse overruns", () => {
      const rand = rng(4);
      const dst = pair("f32", [6, 5], bytesOf(randomF32(rand, 30)));
      const src = pair("f32", [2, 5], bytesOf(randomF32(rand, 10)));
      k().writeRows(src.wasm, dst.wasm, 3);
      js.kernels.writeRows(src.js, dst.js, 3);
      const [a, b] = readBoth(dst);
      expect(a).toEqual(b);
      expect(() => k().writeRows(src.wasm, dst.wasm, 5)).toThrow(UsageError);
      release();
    });
  });

  describe("capabilities and placement", () => {
    it("should refuse buffers that are not in its memory, and accept its own", () => {
      const dispatcher = createDispatcher([wb], js);
      const foreign: TensorRef = { buffer: js.alloc(64), dtype: "f32", shape: [16] };
      const own = pair("f32", [16], new Uint8Array(64));
      expect(dispatcher.accepts(wb, "scale", [foreign, 2, own.wasm])).toMatch(/not in wasm-simd's memory/);
      expect(dispatcher.accepts(wb, "scale", [own.wasm, 2, own.wasm])).toBe(true);
      expect(() => k().scale(foreign, 2, own.wasm)).toThrow(UsageError);
      js.free(foreign.buffer);
      release();
    });

    it("should refuse dtypes it does not implement and freed buffers", () => {
      const dispatcher = createDispatcher([wb], js);
      const x = pair("f32", [1, 32], new Uint8Array(128));
      const w = pair("q8_0", [1, 32], new Uint8Array(34));
      const out = pair("f32", [1, 1], new Uint8Array(4));
      expect(dispatcher.accepts(wb, "matmulDense", [x.wasm, w.wasm, out.wasm])).toMatch(/q8_0/);
      expect(dispatcher.accepts(wb, "concat", [[x.wasm], 0, x.wasm])).toMatch(/no concat/);
      const gone = wb.memory.alloc(64);
      wb.memory.free(gone);
      expect(dispatcher.accepts(wb, "scale", [{ buffer: gone, dtype: "f32", shape: [16] }, 2, x.wasm])).not.toBe(true);
      release();
    });
  });

  it("should describe itself", () => {
    expect(wb.name).toBe("wasm-simd");
    const threaded = (options.threads ?? 1) > 1 && wb.threadNote === undefined;
    expect(wb.info.features).toEqual(threaded ? ["simd128", "threads"] : ["simd128"]);
    expect(wb.info.threads).toBe(threaded ? options.threads : 1);
    expect(label).toMatch(/thread/);
    expect(wasmSimdProvider.name).toBe("wasm-simd");
  });
});
