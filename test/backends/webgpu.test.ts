/**
 * The WebGPU kernels against the JS reference kernels on the same inputs: bit for bit for the integer
 * kernels (ternary, binary, Q8_0 head), the activation quantizer, the soft-float helpers and the embedding
 * lookup; within a stated relative L2 error for the float kernels, which compute in f32 where the reference
 * uses float64:
 *   RMSNorm, RoPE, softmax, attention, float head, exp/silu: rel L2 ≤ 2e-6 (measured on SwiftShader: ≤ ~3e-7).
 * add, mul and scale (soft-float on the device) and relu2/neg are exact.
 *
 * Runs in Node on whatever adapter Dawn finds (without a GPU: SwiftShader from Debian's chromium package,
 * installed by scripts/install-webgpu.sh). Without an adapter the suite is skipped with the reason, unless
 * BARBELL_REQUIRE_WEBGPU=1 (CI), which turns the skip into a failure.
 */
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { ShapeError, UsageError, ValueError } from "../../src/core/errors.js";
import type { TensorRef } from "../../src/backends/backend.js";
import { ArrayBufferMemory, views } from "../../src/backends/host-memory.js";
import { createJsBackend } from "../../src/backends/js/index.js";
import { attention as refAttention } from "../../src/backends/js/kernels/attention.js";
import { matmulBinaryI8 as refBinary, matmulTernaryI8 as refTernary } from "../../src/backends/js/kernels/matmul.js";
import { binaryBroadcast, unary as refUnary } from "../../src/backends/js/kernels/elementwise.js";
import { softmax as refSoftmax } from "../../src/backends/js/kernels/softmax.js";
import { ENTRY_POINT } from "../../src/backends/webgpu/pipelines.js";
import { SOFTFLOAT_WGSL } from "../../src/backends/webgpu/shaders/softfloat.wgsl.js";
import { WebGpuContext, WebGpuError, type RopeTable } from "../../src/backends/webgpu/index.js";
import { packBinary, packTernary } from "../../src/quant/layouts.js";
import { QUANT_TRAITS } from "../../src/quant/table.js";
import { quantizeActivations, roundHalfEven } from "../../src/quant/values.js";

const REQUIRED = process.env["BARBELL_REQUIRE_WEBGPU"] === "1";
/** Relative L2 error allowed for the f32 kernels against the float64 reference. */
const FLOAT_REL_L2 = 2e-6;

let gpu: WebGpuContext | undefined;
let unavailable = "";
try {
  gpu = await WebGpuContext.create();
} catch (error) {
  if (REQUIRED || !(error instanceof WebGpuError)) {
    throw error;
  }
  unavailable = error.message;
  // The default reporter does not list the names of skipped tests: say why on stderr as well.
  console.warn(`webgpu kernel tests skipped: ${unavailable}`);
}

const reference = createJsBackend();

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function relL2(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    num += ((got[i] ?? 0) - (want[i] ?? 0)) ** 2;
    den += (want[i] ?? 0) ** 2;
  }
  return Math.sqrt(den === 0 ? num : num / den);
}

const bitsOf = (a: Float32Array): Uint32Array => new Uint32Array(a.buffer, a.byteOffset, a.length);

describe.skipIf(gpu === undefined)("webgpu kernels", () => {
  // Inside this block gpu is defined (the block is skipped otherwise).
  const ctx = (): WebGpuContext => gpu as WebGpuContext;
  let baseline = 0;
  const owned: TensorRef[] = [];
  const tables: RopeTable[] = [];

  const up = (dtype: TensorRef["dtype"], shape: number[], data: ArrayBufferView, scale?: number): TensorRef => {
    const t = ctx().upload(dtype, shape, data, scale);
    owned.push(t);
    return t;
  };
  const alloc = (dtype: TensorRef["dtype"], shape: number[]): TensorRef => {
    const t = ctx().alloc(dtype, shape);
    owned.push(t);
    return t;
  };

  afterEach(() => {
    for (const t of owned.splice(0)) {
      ctx().free(t);
    }
    for (const t of tables.splice(0)) {
      t.dispose();
    }
    expect(ctx().memory.liveAllocations(), "device buffers leaked by this test").toBe(baseline);
  });
  afterAll(() => {
    gpu?.dispose();
  });

  it("should report the adapter it runs on", () => {
    baseline = ctx().memory.liveAllocations();
    const a = ctx().adapter;
    console.log(`[webgpu test] adapter: ${a.vendor} ${a.architecture} ${a.device} (${a.description}), runtime ${a.runtime}, software ${a.software}`);
    expect(a.runtime.length).toBeGreaterThan(0);
  });

  it("should compute IEEE binary32 ×, ÷, +, int→f32, round-half-even and f16→f32 in integer WGSL, bit for bit", async () => {
    const n = 60_000;
    const r = rng(7);
    const word = (): number => Math.floor(r() * 2 ** 32) >>> 0;
    const specials = [0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 1, 0x807fffff, 0x7f7fffff, 0x00800000, 0x3f800000, 0x42fe0000, 0x3f000000, 0x40200000, 0xc0600000, 0x4effffff];
    const inp = new Uint32Array(2 * n);
    for (let i = 0; i < n; i++) {
      let a = word();
      let b = word();
      const mode = i % 5;
      if (mode === 1) {
        a = specials[i % specials.length] ?? 0;
      } else if (mode === 2) {
        b = ((a & 0xff800000) ^ (word() & 0x00ffffff)) >>> 0; // close magnitudes: cancellation
      } else if (mode === 3) {
        a = ((a & 0x807fffff) | ((i % 8) << 23)) >>> 0; // subnormal or tiny
        b = ((b & 0x807fffff) | (((i % 8) + 100) << 23)) >>> 0;
      } else if (mode === 4) {
        a = ((a & 0x80ffffff) | (((i % 10) + 120) << 23)) >>> 0; // near 1: rounding to integers
      }
      inp[2 * i] = a;
      inp[2 * i + 1] = b;
    }
    const code = `${SOFTFLOAT_WGSL}
@group(0) @binding(0) var<storage, read> inp: array<u32>;
@group(0) @binding(1) var<storage, read_write> outp: array<u32>;
@compute @workgroup_size(64) fn ${ENTRY_POINT}(@builtin(global_invocation_id) g: vec3<u32>) {
  let i = g.x + g.y * 64u * 65535u;
  if (i >= arrayLength(&inp) / 2u) { return; }
  let a = inp[2u * i];
  let b = inp[2u * i + 1u];
  outp[6u * i] = sf_mul(a, b);
  outp[6u * i + 1u] = sf_div(a, b);
  outp[6u * i + 2u] = sf_add(a, b);
  outp[6u * i + 3u] = sf_from_i32(bitcast<i32>(a));
  outp[6u * i + 4u] = bitcast<u32>(sf_round_even_clamp(a, -128, 127));
  outp[6u * i + 5u] = sf_half_to_f32(b & 0xffffu);
}`;
    const input = up("i32", [2 * n], inp);
    const output = alloc("i32", [6 * n]);
    const c = ctx();
    await c.pipelines.check("softfloat test", code);
    c.recorder.dispatch(c.pipelines.get("softfloat test", code), undefined, [c.memory.resolve(input.buffer, "t").gpu, c.memory.resolve(output.buffer, "t").gpu], Math.ceil(n / 64));
    const got = new Uint32Array((await c.read(output)).buffer);

    const f = new Float32Array(1);
    const u = new Uint32Array(f.buffer);
    const val = (bits: number): number => {
      u[0] = bits;
      return f[0] ?? 0;
    };
    const bits = (x: number): number => {
      f[0] = x;
      return u[0] ?? 0;
    };
    const canon = (b: number): number => ((b & 0x7fffffff) > 0x7f800000 ? 0x7fc00000 : b >>> 0);
    const mismatches = [0, 0, 0, 0, 0, 0];
    for (let i = 0; i < n; i++) {
      const a = inp[2 * i] ?? 0;
      const b = inp[2 * i + 1] ?? 0;
      const x = val(a);
      const h = QUANT_TRAITS.f16.decode(Uint8Array.of(b & 0xff, (b >>> 8) & 0xff), 1, 1)[0] ?? 0;
      const want = [
        bits(x * val(b)),
        bits(x / val(b)),
        bits(x + val(b)),
        bits(a | 0),
        Number.isNaN(x) ? 0 : Math.min(127, Math.max(-128, roundHalfEven(x))) >>> 0,
        bits(h),
      ];
      want.forEach((w, k) => {
        if (canon(got[6 * i + k] ?? 0) !== canon(w)) {
          mismatches[k] = (mismatches[k] ?? 0) + 1;
        }
      });
    }
    expect(mismatches).toEqual([0, 0, 0, 0, 0, 0]);
  });

  // The cases of test/conformance/cases.ts run on the backend (the same kernels, through its memory) in
  // test/conformance/conformance.test.ts; this file keeps the edge cases the table does not have.

  // ---- further exact cases ----

  it("ternary: code 3, garbage row padding, unaligned rows and tile tails are exact", async () => {
    const [m, k, n] = [6, 301, 19];
    const r = rng(11);
    const q = quantizeActivations(Float32Array.from({ length: m * k }, () => (r() * 2 - 1) * 4), m, k);
    if (!q.ok) {
      throw q.error;
    }
    const rowBytes = Math.ceil(k / 4);
    const w = packTernary(Int8Array.from({ length: n * k }, () => Math.floor(r() * 3) - 1), n, k);
    for (let j = 0; j < n; j++) {
      w[j * rowBytes + rowBytes - 1] = ((w[j * rowBytes + rowBytes - 1] ?? 0) | 0xfc) & 0xff; // padding codes: garbage (3s)
      if (j % 2 === 0) {
        w[j * rowBytes + 5] = 0xff; // four code-3 trits, which decode to 0
      }
    }
    const want = new Float32Array(m * n);
    refTernary(q.value.values, q.value.scales, w, 0.7, m, k, n, want);
    const out = alloc("f32", [m, n]);
    ctx().kernels.matmulTernaryI8(up("i8", [m, k], q.value.values), up("f32", [m], q.value.scales), up("ternary", [n, k], w, 0.7), out);
    expect(Array.from(bitsOf(await ctx().readF32(out)))).toEqual(Array.from(bitsOf(want)));
  });

  it("ternary: an int32 sum above 2^24 is rounded to f32 like the reference (k = 140000)", async () => {
    const [m, k, n] = [1, 140_000, 2];
    const x = new Int8Array(m * k).fill(127);
    x[3] = 126; // an odd sum, so that fround(acc) rounds
    const trits = new Int8Array(n * k).fill(1);
    const w = packTernary(trits, n, k);
    const scales = Float32Array.of(3.1);
    const want = new Float32Array(m * n);
    refTernary(x, scales, w, 0.01, m, k, n, want);
    const out = alloc("f32", [m, n]);
    ctx().kernels.matmulTernaryI8(up("i8", [m, k], x), up("f32", [m], scales), up("ternary", [n, k], w, 0.01), out);
    expect(Array.from(bitsOf(await ctx().readF32(out)))).toEqual(Array.from(bitsOf(want)));
    expect(Math.fround(127 * k - 1)).not.toBe(127 * k - 1); // the case does exercise the rounding
  });

  it("binary: garbage padding bits and tile tails are exact", async () => {
    const [m, k, n] = [5, 1000, 7];
    const r = rng(12);
    const q = quantizeActivations(Float32Array.from({ length: m * k }, () => r() * 2 - 1), m, k);
    if (!q.ok) {
      throw q.error;
    }
    const w = packBinary(Int8Array.from({ length: n * k }, () => (r() < 0.5 ? -1 : 1)), n, k);
    const words = Math.ceil(k / 32);
    for (let j = 0; j < n; j++) {
      w[j * words + words - 1] = ((w[j * words + words - 1] ?? 0) | 0xff000000) >>> 0; // padding bits set
    }
    const want = new Float32Array(m * n);
    refBinary(q.value.values, q.value.scales, w, 0.25, m, k, n, want);
    const out = alloc("f32", [m, n]);
    ctx().kernels.matmulBinaryI8(up("i8", [m, k], q.value.values), up("f32", [m], q.value.scales), up("binary", [n, k], w, 0.25), out);
    expect(Array.from(bitsOf(await ctx().readF32(out)))).toEqual(Array.from(bitsOf(want)));
  });

  it("quantize: tiny rows, ties and odd row lengths are exact; a non-finite input is reported as ValueError", async () => {
    const [m, k] = [3, 37];
    const r = rng(13);
    const x = Float32Array.from({ length: m * k }, () => (r() * 2 - 1) * 3);
    for (let c = 0; c < k; c++) {
      x[k + c] = (r() - 0.5) * 1e-6; // absmax below QUANT_EPS
    }
    x[2 * k] = 127;
    x[2 * k + 1] = 0.5; // exact ties after scaling
    x[2 * k + 2] = -1.5;
    const want = quantizeActivations(x, m, k);
    if (!want.ok) {
      throw want.error;
    }
    const q = alloc("i8", [m, k]);
    const s = alloc("f32", [m]);
    ctx().kernels.quantizeActivations(up("f32", [m, k], x), q, s);
    expect(Array.from(new Int8Array((await ctx().read(q)).buffer, 0, m * k))).toEqual(Array.from(want.value.values));
    expect(Array.from(bitsOf(await ctx().readF32(s)))).toEqual(Array.from(bitsOf(want.value.scales)));
    await ctx().checkStatus();

    const bad = x.slice();
    bad[40] = Number.NaN;
    ctx().kernels.quantizeActivations(up("f32", [m, k], bad), q, s);
    const error = await ctx().checkStatus().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValueError);
    expect((error as ValueError).code).toBe("non-finite");
    expect((error as ValueError).index).toBe(40);
    await ctx().checkStatus(); // cleared
  });

  it("embedding: f32, f16 and q8_0 rows are exact; an id outside the vocabulary is a ShapeError", async () => {
    const [vocab, embed] = [40, 64];
    const r = rng(14);
    const values = Float32Array.from({ length: vocab * embed }, () => (r() * 2 - 1) * 2);
    const ids = Int32Array.of(39, 0, 7, 7, 22);
    for (const format of ["f32", "f16", "q8_0"] as const) {
      const table = QUANT_TRAITS[format].encode(values, vocab, embed);
      const host = new ArrayBufferMemory("emb");
      const hostRef = (dtype: TensorRef["dtype"], shape: number[], data?: ArrayBufferView): TensorRef => {
        const buffer = host.alloc(dtype === "f32" || dtype === "i32" ? shape.reduce((a, b) => a * b, 1) * 4 : (data?.byteLength ?? 0));
        if (data !== undefined) {
          host.write(buffer, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
        }
        return { buffer, dtype, shape };
      };
      const wantRef = hostRef("f32", [ids.length, embed]);
      reference.kernels.embedding(hostRef("i32", [ids.length], ids), hostRef(format, [vocab, embed], table), wantRef);
      const out = alloc("f32", [ids.length, embed]);
      ctx().kernels.embedding(up("i32", [ids.length], ids), up(format, [vocab, embed], table), out);
      expect(Array.from(bitsOf(await ctx().readF32(out))), format).toEqual(Array.from(bitsOf(views.f32(wantRef))));
    }
    const out = alloc("f32", [2, embed]);
    ctx().kernels.embedding(up("i32", [2], Int32Array.of(3, vocab)), up("f32", [vocab, embed], values), out);
    await expect(ctx().checkStatus()).rejects.toBeInstanceOf(ShapeError);
  });

  // ---- further float cases ----

  it("attention over a long cache (several 64-key chunks, GQA, head dim 128) written with writeRows", async () => {
    const [seq, heads, kvHeads, headDim, capacity, pos0] = [3, 4, 2, 128, 320, 250];
    const r = rng(15);
    const rows = pos0 + seq;
    const kHost = Float32Array.from({ length: capacity * kvHeads * headDim }, (_, i) => (i < rows * kvHeads * headDim ? r() * 2 - 1 : 0));
    const vHost = Float32Array.from({ length: capacity * kvHeads * headDim }, (_, i) => (i < rows * kvHeads * headDim ? r() * 2 - 1 : 0));
    const qHost = Float32Array.from({ length: seq * heads * headDim }, () => r() * 2 - 1);
    const want = new Float32Array(seq * heads * headDim);
    refAttention(qHost, kHost, vHost, { seqQ: seq, seqKV: rows, nHead: heads, nKvHead: kvHeads, headDim, pos0, scale: 1 / Math.sqrt(headDim) }, want);
    // The cache starts with the first pos0 rows; the last seq rows are appended on the device.
    const k = alloc("f32", [capacity, kvHeads, headDim]);
    const v = alloc("f32", [capacity, kvHeads, headDim]);
    ctx().memory.write(k.buffer, new Uint8Array(kHost.buffer, 0, pos0 * kvHeads * headDim * 4));
    ctx().memory.write(v.buffer, new Uint8Array(vHost.buffer, 0, pos0 * kvHeads * headDim * 4));
    const tail = (src: Float32Array): TensorRef => up("f32", [seq, kvHeads, headDim], src.slice(pos0 * kvHeads * headDim, rows * kvHeads * headDim));
    ctx().kernels.writeRows(tail(kHost), k, pos0);
    ctx().kernels.writeRows(tail(vHost), v, pos0);
    const out = alloc("f32", [seq, heads, headDim]);
    ctx().kernels.attention(up("f32", [seq, heads, headDim], qHost), k, v, pos0, 1 / Math.sqrt(headDim), out);
    expect(relL2(await ctx().readF32(out), want)).toBeLessThanOrEqual(FLOAT_REL_L2);
  });

  it("softmax: −Inf entries give 0, a fully masked row gives zeros, a NaN makes its row NaN (in place)", async () => {
    const [rows, cols] = [3, 300];
    const r = rng(16);
    const x = Float32Array.from({ length: rows * cols }, () => (r() * 2 - 1) * 10);
    for (let c = 0; c < cols; c += 3) {
      x[c] = Number.NEGATIVE_INFINITY;
    }
    x.fill(Number.NEGATIVE_INFINITY, cols, 2 * cols);
    x[2 * cols + 17] = Number.NaN;
    const want = new Float32Array(rows * cols);
    refSoftmax(x, rows, cols, want);
    const t = up("f32", [rows, cols], x);
    ctx().kernels.softmax(t, t);
    const got = await ctx().readF32(t);
    expect(relL2(got.subarray(0, cols), want.subarray(0, cols))).toBeLessThanOrEqual(FLOAT_REL_L2);
    expect(Array.from(got.subarray(0, cols)).filter((v, c) => c % 3 === 0 && v !== 0)).toEqual([]);
    expect(Array.from(got.subarray(cols, 2 * cols)).every((v) => v === 0)).toBe(true);
    expect(Array.from(got.subarray(2 * cols)).every(Number.isNaN)).toBe(true);
  });

  it("rope in place; a position outside the table is reported as a ShapeError", async () => {
    const [seq, heads, headDim] = [2, 3, 64];
    const r = rng(17);
    const x = Float32Array.from({ length: seq * heads * headDim }, () => r() * 2 - 1);
    const positions = Int32Array.of(5, 90);
    const host = new ArrayBufferMemory("rope");
    const hx = host.alloc(x.byteLength);
    host.write(hx, new Uint8Array(x.buffer));
    const hp = host.alloc(8);
    host.write(hp, new Uint8Array(positions.buffer));
    const xRef: TensorRef = { buffer: hx, dtype: "f32", shape: [seq, heads, headDim] };
    reference.kernels.rope(xRef, { buffer: hp, dtype: "i32", shape: [seq] }, 10000, "adjacent", xRef);
    const table = ctx().kernels.createRopeTable(10000, headDim, 100);
    tables.push(table);
    const t = up("f32", [seq, heads, headDim], x);
    ctx().kernels.rope(t, up("i32", [seq], positions), table, "adjacent", t);
    expect(relL2(await ctx().readF32(t), views.f32(xRef))).toBeLessThanOrEqual(FLOAT_REL_L2);
    ctx().kernels.rope(t, up("i32", [seq], Int32Array.of(5, 100)), table, "adjacent", t);
    await expect(ctx().checkStatus()).rejects.toBeInstanceOf(ShapeError);
  });

  it("binary sub/div/max/min are exact (signed zeros, NaN, broadcast, out aliasing a); unary ops in place within tolerance", async () => {
    const r = rng(18);
    const [rows, cols] = [2, 50];
    const a = Float32Array.from({ length: rows * cols }, () => (r() * 2 - 1) * 100);
    const b = Float32Array.from({ length: cols }, () => (r() * 2 - 1) * 3);
    a[0] = -0;
    b[0] = 0;
    a[1] = Number.NaN;
    b[2] = 0; // division by zero
    for (const op of ["sub", "div", "max", "min"] as const) {
      const want = new Float32Array(rows * cols);
      binaryBroadcast(op, a, [cols, 1], b, [0, 1], [rows, cols], want);
      const t = up("f32", [rows, cols], a);
      ctx().kernels.binary(op, t, [cols, 1], up("f32", [cols], b), [0, 1], t);
      const got = await ctx().readF32(t);
      const canon = (x: Float32Array): number[] => Array.from(bitsOf(x), (v) => ((v & 0x7fffffff) > 0x7f800000 ? 0x7fc00000 : v));
      expect(canon(got), op).toEqual(canon(want));
    }
    const x = Float32Array.from({ length: 777 }, () => (r() * 2 - 1) * 30);
    x[0] = 200;
    x[1] = -200;
    for (const op of ["gelu", "sigmoid", "tanh", "silu", "exp", "relu", "abs"] as const) {
      const want = new Float32Array(x.length);
      refUnary(op, x, x.length, want);
      const t = up("f32", [x.length], x);
      ctx().kernels.unary(op, t, t);
      const got = await ctx().readF32(t);
      expect(Array.from(got).every((v, i) => Number.isFinite(v) === Number.isFinite(want[i])), op).toBe(true);
      const finite = (arr: Float32Array): number[] => Array.from(arr, (v, i) => (Number.isFinite(want[i]) ? v : 0));
      expect(relL2(finite(got), finite(want)), op).toBeLessThanOrEqual(FLOAT_REL_L2);
    }
  });

  // ---- checks before anything is recorded ----

  it("refuses bad operands with typed errors before recording anything", () => {
    const x = alloc("i8", [2, 64]);
    const s = alloc("f32", [2]);
    const w = alloc("ternary", [8, 32]);
    const out = alloc("f32", [2, 8]);
    const [q, k, v, o] = [alloc("f32", [1, 3, 8]), alloc("f32", [4, 2, 8]), alloc("f32", [4, 2, 8]), alloc("f32", [1, 3, 8])];
    // Allocations may record a clear of a pooled buffer: count from here.
    const pending = ctx().recorder.pending;
    expect(() => ctx().kernels.matmulTernaryI8(x, s, w, out)).toThrow(ShapeError); // k 64 vs 32
    expect(() => ctx().kernels.matmulTernaryI8(x, s, { ...w, dtype: "binary" }, out)).toThrow(UsageError);
    expect(() => ctx().kernels.attention(q, k, v, 0, 1, o)).toThrow(ShapeError);
    expect(() => ctx().kernels.createRopeTable(10000, 64, 2 ** 21)).toThrow(ShapeError);
    expect(() => ctx().memory.alloc(ctx().memory.maxBufferBytes + 1)).toThrow(WebGpuError);
    expect(ctx().recorder.pending).toBe(pending);
  });

  it("refuses a freed buffer with UsageError", async () => {
    const t = ctx().alloc("f32", [4]);
    ctx().free(t);
    expect(ctx().free(t)).toBe(false);
    await expect(ctx().read(t)).rejects.toBeInstanceOf(UsageError);
  });
});

if (gpu === undefined) {
  describe("webgpu kernels", () => {
    it.skip(`skipped: no WebGPU adapter here (${unavailable}); BARBELL_REQUIRE_WEBGPU=1 makes this a failure`, () => undefined);
  });
}
