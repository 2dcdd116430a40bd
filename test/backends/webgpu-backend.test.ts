/**
 * WebGPU as a backend of the contract (src/backends/webgpu/backend.ts), at the head of a strict dispatcher:
 * placement (each weight uploaded once, the KV cache on the device), generation and batched decoding through
 * loadModel with the same greedy tokens as the JS reference and one readback per step, data errors thrown at
 * the next read, the layout kernels the library gained for the contract (copyStrided, concat, byte-granular
 * writeRows and writes, matmulF32), exact bf16 / q6_k embeddings, RoPE past the table's first step, and the
 * `barbell backends` row with the adapter's name. The kernel-by-kernel cases are in conformance.test.ts
 * (which runs every case on this backend) and webgpu.test.ts.
 *
 * Skipped with the reason when there is no adapter, unless BARBELL_REQUIRE_WEBGPU=1 (CI).
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StorageDType, TensorRef } from "../../src/backends/backend.js";
import { createDispatcher, type Dispatcher } from "../../src/backends/dispatch.js";
import { createJsBackend } from "../../src/backends/js/index.js";
import { storageBytes } from "../../src/backends/storage.js";
import { createWebGpuBackend, probeWebGpuBackend, type WebGpuBackend } from "../../src/backends/webgpu/backend.js";
import { backendReports, formatBackendReports } from "../../src/cli/backends.js";
import { ShapeError, UsageError, ValueError } from "../../src/core/errors.js";
import { loadModel } from "../../src/engine/model.js";
import { makeBitnetFixture } from "../../src/model/bitnet/fixture.js";
import { QUANT_TRAITS } from "../../src/quant/table.js";
import { floats, rng } from "../conformance/cases.js";

const REQUIRED = process.env["BARBELL_REQUIRE_WEBGPU"] === "1";
const probe = await probeWebGpuBackend();
if (!probe.available && REQUIRED) {
  throw new Error(`BARBELL_REQUIRE_WEBGPU=1 but WebGPU is unavailable: ${probe.reason}`);
}
if (!probe.available) {
  console.warn(`webgpu backend tests skipped: ${probe.reason}`);
}

const bytesOf = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

function relL2(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    num += ((got[i] ?? 0) - (want[i] ?? 0)) ** 2;
    den += (want[i] ?? 0) ** 2;
  }
  return Math.sqrt(num / den);
}

describe.skipIf(!probe.available)("the webgpu backend", () => {
  let gpu: WebGpuBackend;
  let d: Dispatcher;
  const js = createJsBackend();
  let dir = "";
  beforeAll(async () => {
    gpu = await createWebGpuBackend();
    d = createDispatcher([gpu], createJsBackend(), { strict: true });
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "barbell-webgpu-"));
  });
  afterAll(async () => {
    gpu.dispose();
    await fs.rm(dir, { recursive: true, force: true });
  });

  /** The same tensor on the device (through the dispatcher) and on the JS reference. */
  const pair = (dtype: StorageDType, shape: number[], data?: ArrayBufferView, scale?: number): [TensorRef, TensorRef] =>
    [d, js].map((b): TensorRef => {
      const buffer = b.alloc(storageBytes(dtype, shape));
      if (data !== undefined) {
        b.write(buffer, bytesOf(data));
      }
      return scale === undefined ? { buffer, dtype, shape } : { buffer, dtype, shape, scale };
    }) as [TensorRef, TensorRef];
  const freeAll = (pairs: [TensorRef, TensorRef][]): void =>
    pairs.forEach(([a, b]) => {
      d.free(a.buffer);
      js.free(b.buffer);
    });
  const same = async ([a, b]: [TensorRef, TensorRef]): Promise<void> => {
    expect(Array.from(await d.readAsync(a.buffer))).toEqual(Array.from(js.read(b.buffer)));
  };

  it("should report its adapter, and be listed by `barbell backends` with it", async () => {
    if (!probe.available) {
      return;
    }
    expect(probe.features.some((f) => f.startsWith("adapter: "))).toBe(true);
    const row = (await backendReports(20)).find((r) => r.name === "webgpu");
    expect(row?.available).toBe(true);
    expect(formatBackendReports(row === undefined ? [] : [row])).toMatch(/^webgpu +available +\[adapter: [^\]]+\].*ternary GEMV \d/);
    console.log(`[webgpu backend test] ${formatBackendReports(row === undefined ? [] : [row])}`);
  });

  it("should generate through loadModel like the JS reference: weights uploaded once, one readback per step", async () => {
    const file = path.join(dir, "tiny.gguf");
    await fs.writeFile(file, makeBitnetFixture({ arch: "bitnet-b1.58", weightType: "i2_s", tied: false, seed: 31 }));
    using onGpu = await loadModel(file, { backend: d, contextLength: 32 });
    using onJs = await loadModel(file, { backend: js, contextLength: 32 });
    const opts = { maxTokens: 6, temperature: 0, stopTokens: [] };
    const before = gpu.stats();
    const a = await onGpu.generate([1, 2, 3], opts).complete();
    const after = gpu.stats();
    const b = await onJs.generate([1, 2, 3], opts).complete();
    expect(a.tokens).toEqual(b.tokens);
    // One logits read per step and no other round trip (writes of the step's ids are queued, not awaited).
    expect(after.readbacks - before.readbacks).toBe(6);
    const copies = d.copies();
    expect(copies).toBeGreaterThan(0); // the adopted weights, uploaded at first use
    const again = await onGpu.generate([4, 5], opts).complete();
    expect(d.copies()).toBe(copies); // … and never again
    expect(again.tokens).toEqual((await onJs.generate([4, 5], opts).complete()).tokens);
    // The logits themselves: f32 kernels on the device vs float64 in the reference.
    const [gl] = await onGpu.logits([7, 8, 9]);
    const [jl] = await onJs.logits([7, 8, 9]);
    expect(relL2(gl ?? [], jl ?? [])).toBeLessThan(1e-4);
    // Batched decoding (one token per sequence, caches on the device).
    using batcher = onGpu.batcher({ maxSequences: 2, contextLength: 32 });
    const [c, e] = await Promise.all([batcher.generate([1, 2, 3], opts).complete(), batcher.generate([4, 5], opts).complete()]);
    expect(c?.tokens).toEqual(b.tokens);
    expect(e?.tokens).toEqual(again.tokens);
    expect(d.fallbacks().size).toBe(0);
  }, 120_000);

  it("should free every device buffer with its model", async () => {
    const file = path.join(dir, "free.gguf");
    await fs.writeFile(file, makeBitnetFixture({ arch: "bitnet", weightType: "tq2_0", hidden: 256, heads: 4, seed: 32 }));
    const live = d.liveAllocations();
    const model = await loadModel(file, { backend: d, contextLength: 16 });
    await model.generate([1, 2], { maxTokens: 2, temperature: 0, stopTokens: [] }).complete();
    expect(d.liveAllocations()).toBeGreaterThan(live);
    model.dispose();
    expect(d.liveAllocations()).toBe(live);
  }, 60_000);

  it("should throw a data error the device recorded at the next read, then carry on", async () => {
    const x = new Float32Array(64).fill(1);
    x[5] = Number.NaN;
    const xd = pair("f32", [2, 32], x);
    const q = pair("i8", [2, 32]);
    const s = pair("f32", [2]);
    d.kernels.quantizeActivations(xd[0], q[0], s[0]);
    const error = await d.readAsync(s[0].buffer).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValueError);
    expect((error as ValueError).code).toBe("non-finite");
    await d.readAsync(s[0].buffer); // the status was cleared
    const ids = pair("i32", [2], Int32Array.of(1, 9));
    const table = pair("f32", [4, 8], floats(rng(1), 32));
    const out = pair("f32", [2, 8]);
    d.kernels.embedding(ids[0], table[0], out[0]);
    await expect(d.readAsync(out[0].buffer)).rejects.toBeInstanceOf(ShapeError);
    freeAll([xd, q, s, ids, table, out]);
  });

  it("should copy strided views, concatenate and write rows of any byte length like the reference", async () => {
    const r = rng(2);
    const i8 = Int8Array.from({ length: 7 * 5 }, () => Math.floor(r() * 256) - 128);
    const f32 = floats(r, 6 * 4);
    const all: [TensorRef, TensorRef][] = [];
    const run = async (name: "copyStrided" | "concat" | "writeRows", out: [TensorRef, TensorRef], args: (side: 0 | 1) => unknown[]): Promise<void> => {
      (d.kernels[name] as (...a: unknown[]) => void)(...args(0));
      (js.kernels[name] as (...a: unknown[]) => void)(...args(1));
      await same(out);
    };
    const src8 = pair("i8", [7, 5], i8);
    const src32 = pair("f32", [6, 4], f32);
    all.push(src8, src32);
    // i8: a transposed slice with a negative stride (5 bytes per row: words shared between rows).
    const t8 = pair("i8", [3, 6]);
    all.push(t8);
    await run("copyStrided", t8, (s) => [src8[s], 34, [-1, -5], t8[s]]);
    // f32: a transpose.
    const t32 = pair("f32", [4, 6]);
    all.push(t32);
    await run("copyStrided", t32, (s) => [src32[s], 0, [1, 4], t32[s]]);
    expect(() => d.kernels.copyStrided(src8[0], 30, [1, 5], t8[0])).toThrow(ShapeError); // reads past the end
    // concat of i8 parts along the last axis (rows of 5 + 3 bytes) and of f32 along the first.
    const part = pair("i8", [7, 3], Int8Array.from({ length: 21 }, (_, i) => i - 10));
    const cat8 = pair("i8", [7, 8]);
    const cat32 = pair("f32", [12, 4]);
    all.push(part, cat8, cat32);
    await run("concat", cat8, (s) => [[src8[s], part[s]], 1, cat8[s]]);
    await run("concat", cat32, (s) => [[src32[s], src32[s]], 0, cat32[s]]);
    // writeRows of i8 rows of 5 bytes at row 3 (an unaligned destination), and of ternary rows.
    const dst8 = pair("i8", [9, 5], Int8Array.from({ length: 45 }, (_, i) => 100 - i));
    const rows8 = pair("i8", [2, 5], i8.subarray(0, 10));
    all.push(dst8, rows8);
    await run("writeRows", dst8, (s) => [rows8[s], dst8[s], 3]);
    const dstT = pair("ternary", [4, 10], Uint8Array.from({ length: 12 }, (_, i) => i * 17));
    const rowT = pair("ternary", [1, 10], Uint8Array.of(1, 2, 3));
    all.push(dstT, rowT);
    await run("writeRows", dstT, (s) => [rowT[s], dstT[s], 2]);
    // A host-style partial write that covers no whole word.
    d.write(dst8[0].buffer, Uint8Array.of(7, 8, 9), 13);
    js.write(dst8[1].buffer, Uint8Array.of(7, 8, 9), 13);
    await same(dst8);
    expect(Array.from(await d.readAsync(dst8[0].buffer, 12, 5))).toEqual(Array.from(js.read(dst8[1].buffer, 12, 5)));
    // matmulF32 (the dense shader over f32 weights): a float kernel, within a tolerance.
    const w = pair("f32", [5, 4], floats(r, 20));
    const mm = pair("f32", [6, 5]);
    all.push(w, mm);
    d.kernels.matmulF32(src32[0], w[0], mm[0]);
    js.kernels.matmulF32(src32[1], w[1], mm[1]);
    const got = new Float32Array((await d.readAsync(mm[0].buffer)).slice().buffer);
    expect(relL2(got, new Float32Array(js.read(mm[1].buffer).slice().buffer))).toBeLessThan(1e-6);
    freeAll(all);
  });

  it("should look up bf16 and q6_k embedding rows exactly", async () => {
    const values = floats(rng(3), 12 * 256, 2);
    for (const format of ["bf16", "q6_k"] as const) {
      const table = pair(format, [12, 256], QUANT_TRAITS[format].encode(values, 12, 256));
      const ids = pair("i32", [3], Int32Array.of(11, 0, 5));
      const out = pair("f32", [3, 256]);
      d.kernels.embedding(ids[0], table[0], out[0]);
      js.kernels.embedding(ids[1], table[1], out[1]);
      await same(out);
      freeAll([table, ids, out]);
    }
  });

  it("should rotate positions past the table's first step (the factored RoPE table) within f32 error", async () => {
    const x = floats(rng(4), 3 * 2 * 128);
    const pos = Int32Array.of(1023, 1024, 999_999);
    const xs = pair("f32", [3, 2, 128], x);
    const ps = pair("i32", [3], pos);
    const out = pair("f32", [3, 2, 128]);
    d.kernels.rope(xs[0], ps[0], 500000, "neox", out[0]);
    js.kernels.rope(xs[1], ps[1], 500000, "neox", out[1]);
    const got = new Float32Array((await d.readAsync(out[0].buffer)).slice().buffer);
    expect(relL2(got, new Float32Array(js.read(out[1].buffer).slice().buffer))).toBeLessThan(2e-6);
    freeAll([xs, ps, out]);
  });

  it("should refuse a synchronous read of device memory", () => {
    const t = pair("f32", [4]);
    expect(() => d.read(t[0].buffer)).toThrow(UsageError);
    freeAll([t]);
  });
});

if (!probe.available) {
  describe("the webgpu backend", () => {
    it.skip(`skipped: ${probe.reason}; BARBELL_REQUIRE_WEBGPU=1 makes this a failure`, () => undefined);
  });
}
