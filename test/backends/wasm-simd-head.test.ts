/**
 * wasm-simd's integer output head (matmulQ8I8 over Q8_0, Q4_K, Q5_K, Q6_K; native/wasm/assembly/head.ts) and
 * its block-format embedding against the JS reference, bit for bit: random block bytes (every code, scale and
 * min pattern; d and dmin of either sign, subnormal and zero), encoded weights, all codes at 0 or maximum,
 * odd row counts, single- and multi-threaded; bad input gets the reference's typed errors; and GGUF models
 * whose embedding or head is Q4_K, Q5_K, Q6_K or Q8_0 run strictly on wasm-simd.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Backend, StorageDType, TensorRef } from "../../src/backends/backend.js";
import { capabilityAccepts, type OpCapability } from "../../src/backends/capabilities.js";
import { createJsBackend } from "../../src/backends/js/index.js";
import { storageBytes } from "../../src/backends/storage.js";
import { createWasmSimdBackend, probeWasmSimd, type WasmSimdBackend, type WasmSimdOptions } from "../../src/backends/wasm-simd/index.js";
import { FormatError, ShapeError, UsageError, ValueError } from "../../src/core/errors.js";
import { loadModel } from "../../src/engine/model.js";
import { makeBitnetFixture, mulberry32 as rng } from "../../src/model/bitnet/fixture.js";
import { f32ToHalf } from "../../src/quant/half.js";
import { QUANT_TRAITS } from "../../src/quant/table.js";

const probe = await probeWasmSimd();
const skipReason = probe.available ? "" : probe.reason;

const FORMATS = ["q8_0", "q4_k", "q5_k", "q6_k"] as const;
type Format = (typeof FORMATS)[number];
/** Byte offsets of a block's fp16 scales (d, and dmin for the affine k-quants). */
const SCALES: Record<Format, readonly number[]> = { q8_0: [0], q4_k: [0, 2], q5_k: [0, 2], q6_k: [208] };
/** Scales written into random blocks: either sign, normal, subnormal (2^-20) and zero. */
const SCALE_VALUES = [2 ** -8, -(2 ** -7), 3 * 2 ** -9, 2 ** -20, -(2 ** -22), 0, -0];

/** Byte ranges of a block's codes (the high bits included), the rest being scales. */
const CODES: Record<Format, readonly [number, number]> = { q8_0: [2, 34], q4_k: [16, 144], q5_k: [16, 176], q6_k: [0, 192] };

/**
 * Random block bytes: every code and 6-bit scale/min pattern, fp16 scales from SCALE_VALUES; with `fill`,
 * every code byte is `fill` (extreme codes) and only the scales are random.
 */
function randomBlocks(format: Format, r: () => number, rows: number, cols: number, fill?: number): Uint8Array {
  const t = QUANT_TRAITS[format];
  const bytes = Uint8Array.from({ length: rows * (cols / t.blockSize) * t.blockBytes }, () => Math.floor(r() * 256));
  for (let at = 0; at < bytes.length; at += t.blockBytes) {
    if (fill !== undefined) {
      bytes.fill(fill, at + CODES[format][0], at + CODES[format][1]);
    }
    for (const s of SCALES[format]) {
      const v = SCALE_VALUES[Math.floor(r() * SCALE_VALUES.length)] ?? 1;
      const h = f32ToHalf(v * (0.5 + r()));
      bytes[at + s] = h & 0xff;
      bytes[at + s + 1] = h >>> 8;
    }
  }
  return bytes;
}

function floats(r: () => number, n: number, spread: number): Float32Array {
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * spread);
}

/** The suite runs single-threaded and on two threads that split every call (no size threshold). */
const CONFIGS: [string, WasmSimdOptions][] = [
  ["1 thread", { threads: 1 }],
  ["2 threads", { threads: 2, minParallelWork: 0 }],
];

describe.skipIf(!probe.available).each(CONFIGS)(`wasm-simd integer head, %s ${skipReason}`, (_label, options) => {
  let wb: WasmSimdBackend;
  let js: Backend;
  beforeAll(async () => {
    wb = await createWasmSimdBackend(options);
    js = createJsBackend();
  });
  afterAll(() => wb.dispose());

  /** The backend's declared capability for `op` (it must declare one). */
  const capOf = (op: "matmulQ8I8" | "embedding"): OpCapability | true => {
    const cap = wb.capabilities?.[op];
    expect(cap).toBeDefined();
    return cap ?? true;
  };

  /** The same tensor in both backends. */
  const pair = (dtype: StorageDType, shape: number[], data: ArrayBufferView): { wasm: TensorRef; js: TensorRef } => {
    const src = new Uint8Array(Math.max(8, storageBytes(dtype, shape)));
    src.set(new Uint8Array(data.buffer, data.byteOffset, Math.min(data.byteLength, src.length)));
    return { wasm: { buffer: wb.memory.adopt(src), dtype, shape }, js: { buffer: js.adopt?.(src.slice()) ?? js.alloc(src.length), dtype, shape } };
  };
  const bits = (b: Uint8Array): Uint32Array => new Uint32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));

  /** Runs matmulQ8I8 on both backends and expects the same bits. */
  function expectHead(format: Format, w: Uint8Array, x: Float32Array, [m, k, n]: [number, number, number]): void {
    const xs = pair("f32", [m, k], x);
    const ws = pair(format, [n, k], w);
    const out = pair("f32", [m, n], new Float32Array(m * n).fill(Number.NaN));
    expect(capabilityAccepts("matmulQ8I8", capOf("matmulQ8I8"), [xs.wasm, ws.wasm, out.wasm])).toBe(true);
    wb.kernels.matmulQ8I8?.(xs.wasm, ws.wasm, out.wasm);
    js.kernels.matmulQ8I8(xs.js, ws.js, out.js);
    const got = bits(wb.memory.read(out.wasm.buffer));
    expect(got).toEqual(bits(js.read(out.js.buffer)));
    expect(got.some((b) => b !== 0)).toBe(true);
    for (const p of [xs, ws, out]) {
      wb.memory.free(p.wasm.buffer);
      js.free(p.js.buffer);
    }
  }

  const SHAPES: Record<Format, [number, number, number][]> = {
    q8_0: [[1, 32, 1], [1, 1536, 37], [3, 96, 17], [5, 512, 33], [9, 64, 40]],
    q4_k: [[1, 256, 1], [1, 1536, 37], [3, 512, 17], [5, 768, 33]],
    q5_k: [[1, 256, 1], [1, 1536, 37], [3, 512, 17], [5, 768, 33]],
    q6_k: [[1, 256, 1], [1, 1536, 37], [3, 512, 17], [5, 768, 33]],
  };

  for (const format of FORMATS) {
    it(`matches the JS reference bit for bit on random ${format} blocks, several shapes`, () => {
      const r = rng(700 + FORMATS.indexOf(format));
      for (const [m, k, n] of SHAPES[format]) {
        const x = floats(r, m * k, 3);
        x.fill(0, 0, Math.min(k, 256)); // a zero block (absmax below the quantizer's eps)
        x[m * k - 3] = 250; // an outlier block
        expectHead(format, randomBlocks(format, r, n, k), x, [m, k, n]);
      }
    });

    it(`matches on encoded ${format} weights and on blocks of extreme codes`, () => {
      const r = rng(710 + FORMATS.indexOf(format));
      const [m, k, n] = [2, 512, 19];
      expectHead(format, QUANT_TRAITS[format].encode(floats(r, n * k, 0.5), n, k), floats(r, m * k, 2), [m, k, n]);
      // Extreme codes: Q8_0's −128 and 127; the k-quants' 0 and maximum (every bit of the codes clear or set).
      for (const fill of format === "q8_0" ? [0x80, 0x7f] : [0x00, 0xff]) {
        expectHead(format, randomBlocks(format, r, n, k, fill), floats(r, m * k, 2), [m, k, n]);
      }
    });

    it(`decodes ${format} embedding rows bit for bit (zeros' signs included)`, () => {
      const r = rng(720 + FORMATS.indexOf(format));
      const [vocab, embed] = [23, 512];
      const table = pair(format, [vocab, embed], randomBlocks(format, r, vocab, embed));
      const ids = pair("i32", [6], Int32Array.of(7, 0, 22, 7, 13, 1));
      const out = pair("f32", [6, embed], new Float32Array(6 * embed).fill(Number.NaN));
      expect(capabilityAccepts("embedding", capOf("embedding"), [ids.wasm, table.wasm, out.wasm])).toBe(true);
      wb.kernels.embedding?.(ids.wasm, table.wasm, out.wasm);
      js.kernels.embedding(ids.js, table.js, out.js);
      expect(bits(wb.memory.read(out.wasm.buffer))).toEqual(bits(js.read(out.js.buffer)));
    });
  }

  it.skipIf((options.threads ?? 1) < 2)("splits a head call across the worker threads when it has them", () => {
    if (wb.info.threads < 2) {
      return; // no shared memory here: the backend says why in threadNote, and the exact-match tests still ran
    }
    const before = wb.workerChunks();
    const r = rng(740);
    // Whether a worker wakes in time to claim a chunk depends on the scheduler: a few bounded tries, each exact.
    for (let round = 0; round < 10 && wb.workerChunks() === before; round++) {
      expectHead("q6_k", randomBlocks("q6_k", r, 512, 512), floats(r, 512, 1), [1, 512, 512]);
      expectHead("q8_0", randomBlocks("q8_0", r, 512, 512), floats(r, 2 * 512, 1), [2, 512, 512]);
    }
    expect(wb.workerChunks()).toBeGreaterThan(before);
  });

  it("refuses bad input with the reference's typed errors", () => {
    const r = rng(730);
    const run = (b: Backend | WasmSimdBackend, x: TensorRef, w: TensorRef, out: TensorRef): unknown => {
      try {
        b.kernels.matmulQ8I8?.(x, w, out);
        return undefined;
      } catch (error) {
        return error;
      }
    };
    const both = (x: Float32Array, format: StorageDType, w: Uint8Array, [m, k, n]: [number, number, number]): [unknown, unknown] => {
      const xs = pair("f32", [m, k], x);
      const ws = pair(format, [n, k], w);
      const out = pair("f32", [m, n], new Float32Array(m * n));
      return [run(wb, xs.wasm, ws.wasm, out.wasm), run(js, xs.js, ws.js, out.js)];
    };
    // k not a multiple of the format's block.
    for (const [format, k] of [["q8_0", 48], ["q6_k", 288], ["q4_k", 128]] as const) {
      const [got, want] = both(floats(r, k, 1), format, new Uint8Array(storageBytes(format, [2, 512])), [1, k, 2]);
      expect(got).toBeInstanceOf(ShapeError);
      expect(want).toBeInstanceOf(ShapeError);
      expect((got as ShapeError).code).toBe((want as ShapeError).code);
    }
    // Non-finite activations: ValueError "non-finite", nothing computed.
    for (const format of FORMATS) {
      const x = floats(r, 2 * 256, 1);
      x[300] = Number.NaN;
      const [got, want] = both(x, format, randomBlocks(format, r, 3, 256), [2, 256, 3]);
      expect(got).toBeInstanceOf(ValueError);
      expect(want).toBeInstanceOf(ValueError);
      expect([(got as ValueError).code, (got as ValueError).index]).toEqual([(want as ValueError).code, (want as ValueError).index]);
    }
    // A weight format the integer head does not take.
    const [got, want] = both(floats(r, 256, 1), "f16", new Uint8Array(512 * 2), [1, 256, 2]);
    expect(got).toBeInstanceOf(UsageError);
    expect(want).toBeInstanceOf(UsageError);
    // Operands larger than their buffers: a typed error, never a read outside them.
    const small = { buffer: wb.memory.adopt(new Uint8Array(64)), dtype: "q6_k", shape: [4, 256] } as const;
    const x = pair("f32", [1, 256], floats(r, 256, 1));
    const out = pair("f32", [1, 4], new Float32Array(4));
    expect(() => wb.kernels.matmulQ8I8?.(x.wasm, small, out.wasm)).toThrow(ShapeError);
    // An embedding row with a non-finite scale: FormatError, as the reference decoder.
    const table = randomBlocks("q6_k", r, 2, 512);
    table[210 + 208] = 0x00;
    table[210 + 209] = 0x7c; // +inf as d of row 0's second block
    const t = pair("q6_k", [2, 512], table);
    const ids = pair("i32", [1], Int32Array.of(0));
    const rows = pair("f32", [1, 512], new Float32Array(512));
    expect(() => wb.kernels.embedding?.(ids.wasm, t.wasm, rows.wasm)).toThrow(FormatError);
    expect(() => js.kernels.embedding(ids.js, t.js, rows.js)).toThrow(FormatError);
    expect(() => wb.kernels.embedding?.(pair("i32", [1], Int32Array.of(2)).wasm, t.wasm, rows.wasm)).toThrow(ShapeError);
  });
});

describe.skipIf(!probe.available)(`wasm-simd k-quant models ${skipReason}`, () => {
  it("runs models whose embedding and head are q4_k, q5_k, q6_k or q8_0 strictly on wasm-simd, as the JS reference", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "barbell-wasm-head-"));
    try {
      for (const [embeddingType, tied] of [["q6_k", true], ["q6_k", false], ["q4_k", true], ["q5_k", false], ["q8_0", true]] as const) {
        const file = path.join(dir, `${embeddingType}-${tied ? "tied" : "untied"}.gguf`);
        const opts = { hidden: 256, layers: 1, heads: 4, kvHeads: 2, ffn: 256, vocab: 300, embeddingType, tied, seed: 9 } as const;
        await writeFile(file, makeBitnetFixture(opts));
        const fallbacks: string[] = [];
        const wasm = await loadModel(file, { backends: ["wasm-simd"], autotune: false, onFallback: (e) => fallbacks.push(JSON.stringify(e)) });
        const reference = await loadModel(file, { backends: ["js"], autotune: false });
        try {
          const [got] = await wasm.logits([1, 17, 42, 299]);
          const [want] = await reference.logits([1, 17, 42, 299]);
          expect(fallbacks).toEqual([]);
          expect(got?.length).toBe(300);
          // The ternary layers, the head and the embedding are exact; only f32-summing kernels (attention) differ.
          let err = 0;
          let ref = 0;
          for (let i = 0; i < 300; i++) {
            err += ((got?.[i] ?? 0) - (want?.[i] ?? 0)) ** 2;
            ref += (want?.[i] ?? 0) ** 2;
          }
          expect(err / ref).toBeLessThanOrEqual(1e-8);
        } finally {
          wasm.dispose();
          reference.dispose();
        }
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
