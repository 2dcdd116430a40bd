/** The WASM SIMD backend's memory (allocation, growth, placement) and its worker threads. Kernels: wasm-simd.test.ts. */
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

describe.skipIf(!probe.available)(`wasm-simd memory ${skipReason}`, () => {
  it("should hand out zeroed, 64-byte aligned buffers and reuse freed space", async () => {
    const backend = await createWasmSimdBackend({ maxBytes: 8 * WASM_PAGE_BYTES });
    const mem = backend.memory;
    const a = mem.alloc(100);
    const b = mem.alloc(1);
    const c = mem.alloc(0);
    for (const buf of [a, b, c]) {
      expect(buf.offset % WASM_ALIGN).toBe(0);
      expect(buf.view().every((v) => v === 0)).toBe(true);
    }
    expect(new Set([a.offset, b.offset, c.offset]).size).toBe(3);
    expect(mem.liveAllocations()).toBe(3);
    expect(mem.liveBytes()).toBe(101);
    mem.write(a, Uint8Array.of(1, 2, 3), 10);
    expect(Array.from(mem.read(a, 9, 5))).toEqual([0, 1, 2, 3, 0]);
    const top = mem.top;
    expect(mem.free(a)).toBe(true);
    expect(mem.free(a)).toBe(false);
    expect(() => a.view()).toThrow(UsageError);
    const d = mem.alloc(64);
    expect(d.offset).toBe(a.offset); // first fit reuses the freed block …
    expect(d.view().every((v) => v === 0)).toBe(true); // … zeroed again
    const e = mem.alloc(64);
    expect(e.offset).toBe(a.offset + 64);
    expect(mem.top).toBe(top);
    for (const buf of [b, c, d, e]) {
      mem.free(buf);
    }
    expect(mem.liveAllocations()).toBe(0);
    expect(mem.liveBytes()).toBe(0);
    // Everything coalesced back into the top: a large block starts where the first did.
    const big = mem.alloc(1000);
    expect(big.offset).toBe(a.offset);
    mem.free(big);
    backend.dispose();
  });

  it("should grow the memory, keep the data, and re-derive views after growth", async () => {
    const backend = await createWasmSimdBackend({ maxBytes: 64 * WASM_PAGE_BYTES, threads: 1 });
    const mem = backend.memory;
    const a = mem.adopt(Uint8Array.from({ length: 1000 }, (_, i) => i & 255));
    const oldView = a.view();
    const before = mem.capacity;
    const big = mem.alloc(40 * WASM_PAGE_BYTES);
    expect(mem.capacity).toBeGreaterThan(before);
    expect(oldView.byteLength).toBe(0); // the old ArrayBuffer was detached by grow (an unshared memory)
    expect(a.view().byteLength).toBe(1000);
    expect(Array.from(a.view().subarray(250, 260))).toEqual([250, 251, 252, 253, 254, 255, 0, 1, 2, 3]);
    // A kernel still works on a buffer allocated before the growth.
    const out = mem.alloc(4000);
    const x = mem.adopt(new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer));
    backend.kernels.scale?.({ buffer: x, dtype: "f32", shape: [4] }, 2, { buffer: out, dtype: "f32", shape: [4] });
    expect(Array.from(new Float32Array(mem.read(out, 0, 16).buffer))).toEqual([2, 4, 6, 8]);
    for (const buf of [a, big, out, x]) {
      mem.free(buf);
    }
    backend.dispose();
  });

  it("should throw a clear UsageError when the limit is reached, and recover after frees", async () => {
    const backend = await createWasmSimdBackend({ maxBytes: 4 * WASM_PAGE_BYTES });
    const mem = backend.memory;
    const a = mem.alloc(2 * WASM_PAGE_BYTES);
    expect(() => mem.alloc(2 * WASM_PAGE_BYTES)).toThrow(/out of memory.*limited to 262144 bytes/);
    expect(() => mem.alloc(-1)).toThrow(UsageError);
    mem.free(a);
    const b = mem.alloc(3 * WASM_PAGE_BYTES);
    mem.free(b);
    expect(mem.liveAllocations()).toBe(0);
    backend.dispose();
  });
});

describe.skipIf(!probe.available)(`wasm-simd threads ${skipReason}`, () => {
  /** A tensor's contents for {@link runOn}. */
  interface Input {
    readonly dtype: StorageDType;
    readonly shape: number[];
    readonly bytes: Uint8Array;
    readonly scale?: number;
  }
  type Memory = Pick<Backend, "adopt" | "alloc" | "free" | "read">;

  /** Runs `call` on fresh copies of `inputs` in `memory` and returns the bytes of an `out` of `outShape`. */
  function runOn(
    memory: Memory,
    inputs: readonly Input[],
    outDtype: StorageDType,
    outShape: number[],
    call: (refs: TensorRef[], out: TensorRef) => void,
  ): Uint8Array {
    const refs = inputs.map(
      (t): TensorRef => ({
        buffer: memory.adopt?.(t.bytes.slice()) ?? memory.alloc(t.bytes.byteLength),
        dtype: t.dtype,
        shape: t.shape,
        ...(t.scale === undefined ? {} : { scale: t.scale }),
      }),
    );
    const out: TensorRef = { buffer: memory.alloc(storageBytes(outDtype, outShape)), dtype: outDtype, shape: outShape };
    call(refs, out);
    const result = memory.read(out.buffer);
    for (const r of [...refs, out]) {
      memory.free(r.buffer);
    }
    return result;
  }

  const uniform = (rand: () => number, n: number, f: (r: number) => number): Uint8Array =>
    Uint8Array.from({ length: n }, () => f(rand()));
  const f32Bytes = (rand: () => number, n: number): Uint8Array =>
    bytesOf(Float32Array.from({ length: n }, () => rand() * 2 - 1));

  let backends: WasmSimdBackend[] = [];
  let js: Backend;
  beforeAll(async () => {
    js = createJsBackend();
    backends = [
      await createWasmSimdBackend({ threads: 1 }),
      await createWasmSimdBackend({ threads: 2 }),
      await createWasmSimdBackend({ threads: 3, minParallelWork: 0 }),
    ];
  });
  afterAll(() => {
    for (const b of backends) {
      b.dispose();
    }
  });

  it("should run 2 and 3 threads where shared memory is available (Node)", () => {
    expect(backends.map((b) => b.info.threads)).toEqual([1, 2, 3]);
    expect(backends[1]?.info.features).toContain("threads");
    expect(backends[0]?.info.features).not.toContain("threads");
  });

  /** Output of one kernel on every backend and on the JS reference. */
  function everywhere(
    kernel: "matmulTernaryI8" | "matmulBinaryI8" | "matmulBinaryBinary" | "matmulDense" | "attention",
    inputs: readonly Input[],
    outDtype: StorageDType,
    outShape: number[],
    extra: { pos0?: number; scale?: number } = {},
  ): { wasm: Uint8Array[]; reference: Uint8Array } {
    const call =
      (kernels: Partial<Backend["kernels"]>) =>
      (r: TensorRef[], out: TensorRef): void => {
        const [a, b, c, d] = r;
        if (a === undefined || b === undefined) {
          throw new Error("missing inputs");
        }
        if (kernel === "matmulBinaryBinary" || kernel === "matmulDense") {
          kernels[kernel]?.(a, b, out);
        } else if (c === undefined) {
          throw new Error("missing inputs");
        } else if (kernel === "attention") {
          kernels.attention?.(a, b, c, extra.pos0 ?? 0, extra.scale ?? 1, out);
        } else {
          kernels[kernel]?.(a, b, c, out);
        }
        expect(d).toBeUndefined();
      };
    return {
      wasm: backends.map((b) => runOn(b.memory, inputs, outDtype, outShape, call(b.kernels))),
      reference: runOn(js, inputs, outDtype, outShape, call(js.kernels)),
    };
  }

  it.each([
    [1, 2560, 6912 / 8],
    [1, 1536, 4096 / 4],
    [3, 640, 1000],
    [1, 333, 1029],
  ])("integer matmuls should be identical for 1, 2 and 3 threads and equal the reference (m %i, k %i, n %i)", (m, kk, n) => {
    const rand = rng(m * kk + n);
    const x: Input = { dtype: "i8", shape: [m, kk], bytes: uniform(rand, m * kk, (r) => Math.floor(r * 256)) };
    const s: Input = { dtype: "f32", shape: [m], bytes: bytesOf(Float32Array.from({ length: m }, () => 1 + rand() * 90)) };
    const trits = Int8Array.from({ length: n * kk }, () => Math.floor(rand() * 3) - 1);
    const t: Input = { dtype: "ternary", shape: [n, kk], bytes: packTernary(trits, n, kk), scale: 0.61 };
    const wordBytes = 4 * Math.ceil(kk / 32);
    const b: Input = { dtype: "binary", shape: [n, kk], bytes: uniform(rand, n * wordBytes, (r) => Math.floor(r * 256)), scale: 0.9 };
    const xb: Input = { dtype: "binary", shape: [m, kk], bytes: uniform(rand, m * wordBytes, (r) => Math.floor(r * 256)) };
    for (const [kernel, inputs, outDtype] of [
      ["matmulTernaryI8", [x, s, t], "f32"],
      ["matmulBinaryI8", [x, s, b], "f32"],
      ["matmulBinaryBinary", [xb, b], "i32"],
    ] as const) {
      const { wasm, reference } = everywhere(kernel, inputs, outDtype, [m, n]);
      for (const [i, out] of wasm.entries()) {
        expect(out, `${kernel} on ${backends[i]?.info.threads} threads`).toEqual(reference);
      }
    }
  });

  it.each([
    ["f32", 1, 1536, 700],
    ["f16", 1, 1536, 2000],
    ["bf16", 5, 300, 333],
  ] as const)("matmulDense %s should be identical across thread counts and close to the reference (m %i, k %i, n %i)", (dtype, m, kk, n) => {
    const rand = rng(kk + n);
    const x: Input = { dtype: "f32", shape: [m, kk], bytes: f32Bytes(rand, m * kk) };
    const words =
      dtype === "f32"
        ? f32Bytes(rand, n * kk)
        : bytesOf(
            Uint16Array.from({ length: n * kk }, () => {
              const bits = f32Bits(rand() * 2 - 1);
              return dtype === "f16" ? f32BitsToHalfBits(bits) : bits >>> 16;
            }),
          );
    const w: Input = { dtype, shape: [n, kk], bytes: words };
    const { wasm, reference } = everywhere("matmulDense", [x, w], "f32", [m, n]);
    for (const out of wasm) {
      expect(out).toEqual(wasm[0]);
    }
    const ref = new Float32Array(reference.buffer);
    const got = new Float32Array((wasm[0] ?? new Uint8Array(0)).slice().buffer);
    for (let i = 0; i < ref.length; i++) {
      expect(Math.abs((got[i] ?? 0) - (ref[i] ?? 0))).toBeLessThan(1e-5 * kk);
    }
  });

  it.each([
    [1, 200, 20, 5, 64],
    [7, 40, 16, 4, 64],
    [33, 0, 8, 8, 32],
  ])("attention should be identical across thread counts and close to the reference (seqQ %i, pos0 %i, heads %i, kv %i, dim %i)", (seqQ, pos0, h, kv, d) => {
    const rand = rng(seqQ + pos0 + h);
    const cache = pos0 + seqQ;
    const q: Input = { dtype: "f32", shape: [seqQ, h, d], bytes: f32Bytes(rand, seqQ * h * d) };
    const k: Input = { dtype: "f32", shape: [cache, kv, d], bytes: f32Bytes(rand, cache * kv * d) };
    const v: Input = { dtype: "f32", shape: [cache, kv, d], bytes: f32Bytes(rand, cache * kv * d) };
    const scale = 1 / Math.sqrt(d);
    const { wasm, reference } = everywhere("attention", [q, k, v], "f32", [seqQ, h, d], { pos0, scale });
    for (const out of wasm) {
      expect(out).toEqual(wasm[0]);
    }
    const ref = new Float32Array(reference.buffer);
    const got = new Float32Array((wasm[0] ?? new Uint8Array(0)).slice().buffer);
    for (let i = 0; i < ref.length; i++) {
      expect(Math.abs((got[i] ?? 0) - (ref[i] ?? 0))).toBeLessThan(2e-5 * Math.sqrt(d));
    }
  });

  /** Node's worker_threads host, recording every worker it starts and every exit. */
  async function recordingHost(): Promise<{ host: ThreadHost; spawned: number; exits: Promise<void>[]; terminated: number }> {
    const inner = await nodeThreadHost();
    if (inner === undefined) {
      throw new Error("not Node");
    }
    const record = { host: inner, spawned: 0, exits: [] as Promise<void>[], terminated: 0 };
    record.host = {
      name: "recording",
      spawn: (source) => {
        const worker = inner.spawn(source);
        record.spawned++;
        record.exits.push(new Promise<void>((resolve) => worker.onExit?.(resolve)));
        return {
          ...worker,
          terminate: () => {
            record.terminated++;
            worker.terminate();
          },
        };
      },
    };
    return record;
  }

  it("should start threads − 1 workers and have dispose terminate them all", async () => {
    const rec = await recordingHost();
    const backend = await createWasmSimdBackend({ threads: 3, threadHost: rec.host });
    expect(rec.spawned).toBe(2);
    expect(backend.info.detail).toMatch(/3 threads.*recording/);
    backend.dispose();
    backend.dispose();
    expect(rec.terminated).toBe(2);
    await Promise.all(rec.exits); // every worker has exited
    const one = await createWasmSimdBackend({ threads: 1, threadHost: rec.host });
    expect(rec.spawned).toBe(2); // one thread: no workers
    one.dispose();
  });

  it("should not keep a Node process alive when never disposed", () => {
    const dir = mkdtempSync(join(tmpdir(), "barbell-wasm-threads-"));
    try {
      const script = join(dir, "never-disposed.mts");
      const index = pathToFileURL(join(process.cwd(), "src/backends/wasm-simd/index.ts")).href;
      writeFileSync(
        script,
        [
          `import { createWasmSimdBackend } from ${JSON.stringify(index)};`,
          "const b = await createWasmSimdBackend({ threads: 2 });",
          "console.log(b.info.features.join(','));",
        ].join("\n"),
      );
      const run = spawnSync(process.execPath, ["--import", "tsx", script], { cwd: process.cwd(), timeout: 30_000, encoding: "utf8" });
      expect(run.error).toBeUndefined(); // no timeout: the process ended by itself
      expect(run.status).toBe(0);
      expect(run.stdout.trim()).toBe("simd128,threads");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("should fall back to one thread, saying why, when shared memory is unavailable", async () => {
    const rec = await recordingHost();
    for (const [name, value, reason] of [
      ["SharedArrayBuffer", undefined, /single-threaded: this host has no SharedArrayBuffer/],
      ["crossOriginIsolated", false, /single-threaded: the page is not cross-origin isolated/],
    ] as const) {
      vi.stubGlobal(name, value);
      try {
        const backend = await createWasmSimdBackend({ threads: 2, threadHost: rec.host });
        expect(backend.info.threads).toBe(1);
        expect(backend.info.features).toEqual(["simd128"]);
        expect(backend.threadNote).toMatch(reason);
        expect(backend.info.detail).toMatch(reason);
        // It still computes: a kernel over its (unshared) memory.
        const x = backend.memory.adopt(bytesOf(Float32Array.of(1, 2, 3)));
        const out = backend.memory.alloc(12);
        backend.kernels.scale?.({ buffer: x, dtype: "f32", shape: [3] }, 2, { buffer: out, dtype: "f32", shape: [3] });
        expect(Array.from(new Float32Array(backend.memory.read(out).buffer))).toEqual([2, 4, 6]);
        backend.dispose();
      } finally {
        vi.unstubAllGlobals();
      }
    }
    expect(rec.spawned).toBe(0);
  });

  it("should fall back to one thread when workers cannot start", async () => {
    const failing: ThreadHost = {
      name: "failing",
      spawn: () => {
        throw new Error("no workers here");
      },
    };
    const backend = await createWasmSimdBackend({ threads: 2, threadHost: failing });
    expect(backend.info.threads).toBe(1);
    expect(backend.threadNote).toMatch(/single-threaded: .*no workers here/);
    backend.dispose();
  });
});
