/**
 * The CUDA backend's TypeScript glue, without a GPU: the backend runs over a host-memory stand-in of the addon
 * whose calls are the JS reference kernels, so every kernel of the backend must give the JS backend's bytes.
 * This checks what the glue owns — rows and columns taken from shapes, dtype and op codes, strides, pointers,
 * byte offsets of writeRows, the device-layout weight copies (made once, dropped when the buffer is written),
 * readAsync's bounds and the data-problem status turned into a ValueError — not the CUDA kernels themselves
 * (scripts/cuda/device-check.sh runs those on a GPU).
 */
import { describe, expect, it } from "vitest";
import type { Backend, PartialBackend, StorageDType, TensorRef } from "../../src/backends/backend.js";
import { cudaBackendOn, type CudaAddon, type DevicePtr } from "../../src/backends/cuda/index.js";
import { attention } from "../../src/backends/js/kernels/attention.js";
import { embedding, matmulDense, matmulQ8I8 } from "../../src/backends/js/kernels/dense.js";
import { binaryBroadcast, unary } from "../../src/backends/js/kernels/elementwise.js";
import { createJsBackend } from "../../src/backends/js/index.js";
import { matmulTernaryI8 } from "../../src/backends/js/kernels/matmul.js";
import { rmsNorm } from "../../src/backends/js/kernels/norm.js";
import { rope } from "../../src/backends/js/kernels/rope.js";
import { softmax } from "../../src/backends/js/kernels/softmax.js";
import { BINARY_OPS, UNARY_OPS, type BinaryOp, type UnaryOp } from "../../src/backends/ops.js";
import { storageBytes } from "../../src/backends/storage.js";
import { ValueError, UsageError } from "../../src/core/errors.js";
import { mulberry32 } from "../../src/model/bitnet/fixture.js";
import { packTernary } from "../../src/quant/layouts.js";
import { QUANT_TRAITS } from "../../src/quant/table.js";
import type { QuantName } from "../../src/quant/types.js";
import { quantizeActivations } from "../../src/quant/values.js";

const FORMATS: readonly QuantName[] = ["f32", "f16", "bf16", "q8_0"];
const nameOf = <T extends string>(table: Readonly<Record<T, { code: number }>>, code: number): T =>
  (Object.entries(table) as [T, { code: number }][]).find(([, s]) => s.code === code)?.[0] as T;

/** The addon's calls over host memory: what barbell_cuda.h promises, computed by the JS reference. */
class FakeAddon implements CudaAddon {
  readonly abiVersion = 1;
  readonly opTableHash = 0;
  readonly mem = new Map<DevicePtr, ArrayBuffer>();
  repacks = 0;
  private next = 1n << 20n;
  private nonFinite = -1;

  private buf(p: DevicePtr): ArrayBuffer {
    const b = this.mem.get(p);
    if (b === undefined) {
      throw Object.assign(new Error("bad pointer"), { code: "EARG" });
    }
    return b;
  }
  private f32 = (p: DevicePtr): Float32Array => new Float32Array(this.buf(p));
  private u8 = (p: DevicePtr): Uint8Array => new Uint8Array(this.buf(p));

  probe = () => ({ devices: 1, detail: "fake" });
  init = (): void => undefined;
  sync = (): void => undefined;
  alloc = (bytes: number): DevicePtr => {
    const p = this.next;
    this.next += 1n << 20n;
    this.mem.set(p, new ArrayBuffer(Math.ceil(bytes / 4) * 4));
    return p;
  };
  free = (p: DevicePtr): void => void this.mem.delete(p);
  write = (p: DevicePtr, offset: number, src: Uint8Array): void => this.u8(p).set(src, offset);
  read = (p: DevicePtr, offset: number, length: number): Uint8Array => this.u8(p).slice(offset, offset + length);
  copy = (dst: DevicePtr, dOff: number, src: DevicePtr, sOff: number, n: number): void => this.u8(dst).set(this.u8(src).subarray(sOff, sOff + n), dOff);
  status = (): [number, number] => {
    const s: [number, number] = [this.nonFinite, -1];
    this.nonFinite = -1;
    return s;
  };
  private clone(raw: DevicePtr): DevicePtr {
    const p = this.alloc(this.buf(raw).byteLength);
    this.u8(p).set(this.u8(raw));
    return p;
  }
  repackTernary = (raw: DevicePtr): DevicePtr => {
    this.repacks++;
    return this.clone(raw);
  };
  repackQ8 = (raw: DevicePtr): [DevicePtr, DevicePtr] => [this.clone(raw), this.alloc(1)];
  quantize = (x: DevicePtr, m: number, k: number, q: DevicePtr, s: DevicePtr): void => {
    const r = quantizeActivations(this.f32(x).subarray(0, m * k), m, k);
    if (!r.ok) {
      this.nonFinite = r.error.index ?? 0;
      return;
    }
    new Int8Array(this.buf(q)).set(r.value.values);
    this.f32(s).set(r.value.scales);
  };
  ternary = (x: DevicePtr, xs: DevicePtr, w: DevicePtr, gamma: number, m: number, k: number, n: number, out: DevicePtr): void =>
    matmulTernaryI8(new Int8Array(this.buf(x)), this.f32(xs), this.u8(w), gamma, m, k, n, this.f32(out));
  rmsNorm = (x: DevicePtr, w: DevicePtr | null, rows: number, cols: number, eps: number, out: DevicePtr): void =>
    rmsNorm(this.f32(x), w === null ? undefined : this.f32(w), rows, cols, eps, this.f32(out));
  rope = (x: DevicePtr, seq: number, heads: number, hd: number, pos: DevicePtr, theta: number, neox: number, out: DevicePtr): void =>
    rope(this.f32(x), seq, heads, hd, new Int32Array(this.buf(pos)), theta, neox === 1 ? "neox" : "adjacent", this.f32(out));
  attention = (q: DevicePtr, k: DevicePtr, v: DevicePtr, seq: number, heads: number, kvHeads: number, hd: number, pos0: number, scale: number, out: DevicePtr): void =>
    attention(this.f32(q), this.f32(k), this.f32(v), { seqQ: seq, seqKV: pos0 + seq, nHead: heads, nKvHead: kvHeads, headDim: hd, pos0, scale }, this.f32(out));
  softmax = (x: DevicePtr, rows: number, cols: number, out: DevicePtr): void => softmax(this.f32(x), rows, cols, this.f32(out));
  unary = (op: number, x: DevicePtr, n: number, out: DevicePtr): void => unary(nameOf<UnaryOp>(UNARY_OPS, op), this.f32(x), n, this.f32(out));
  binary = (op: number, a: DevicePtr, as: Float64Array, b: DevicePtr, bs: Float64Array, dims: Float64Array, out: DevicePtr): void => {
    const total = dims.reduce((x, y) => x * y, 1);
    binaryBroadcast(nameOf<BinaryOp>(BINARY_OPS, op), this.f32(a), [...as], this.f32(b), [...bs], [...dims], this.f32(out).subarray(0, total));
  };
  embedding = (ids: DevicePtr, seq: number, dtype: number, table: DevicePtr, vocab: number, embed: number, out: DevicePtr): void =>
    embedding(new Int32Array(this.buf(ids)), seq, FORMATS[dtype] as QuantName, this.u8(table), vocab, embed, this.f32(out));
  dense = (x: DevicePtr, dtype: number, w: DevicePtr, m: number, k: number, n: number, out: DevicePtr): void =>
    matmulDense(this.f32(x), FORMATS[dtype] as QuantName, this.u8(w), m, k, n, this.f32(out));
  q8Head = (x: DevicePtr, scales: DevicePtr, _values: DevicePtr, m: number, k: number, n: number, out: DevicePtr): void =>
    matmulQ8I8(this.f32(x).subarray(0, m * k), this.u8(scales), m, k, n, this.f32(out));
  sample = (): void => undefined;
}

/** One tensor on both backends. */
function pair(js: Backend, cuda: PartialBackend, dtype: StorageDType, shape: number[], data?: ArrayBufferView, scale?: number): [TensorRef, TensorRef] {
  const bytes = storageBytes(dtype, shape);
  const mem = cuda.memory;
  if (mem === undefined) {
    throw new Error("the CUDA backend has device memory");
  }
  const refs = [js.alloc(bytes), mem.alloc(bytes)].map((buffer, i): TensorRef => {
    if (data !== undefined) {
      const src = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      if (i === 0) {
        js.write(buffer, src);
      } else {
        mem.write(buffer, src);
      }
    }
    return scale === undefined ? { buffer, dtype, shape } : { buffer, dtype, shape, scale };
  });
  return [refs[0] as TensorRef, refs[1] as TensorRef];
}

describe("CUDA backend glue (over a host stand-in of the addon)", () => {
  const r = mulberry32(7);
  const floats = (n: number, amp = 1): Float32Array => Float32Array.from({ length: n }, () => (r() * 2 - 1) * amp);
  const setup = () => {
    const fake = new FakeAddon();
    const cuda = cudaBackendOn(fake, "fake");
    const js = createJsBackend();
    const K = cuda.kernels;
    const same = async (a: TensorRef, b: TensorRef): Promise<void> => {
      expect(await cuda.memory?.readAsync(b.buffer)).toEqual(js.read(a.buffer));
    };
    return { fake, cuda, js, K, same, p: (dtype: StorageDType, shape: number[], data?: ArrayBufferView, scale?: number) => pair(js, cuda, dtype, shape, data, scale) };
  };

  it("should run every kernel it offers with the JS reference's results", async () => {
    const { js, K, same, p } = setup();
    const J = js.kernels;
    const run = async <A extends unknown[]>(name: string, jsRun: (...a: A) => void, cudaRun: ((...a: A) => void) | undefined, build: (side: 0 | 1) => A, out: (a: A) => TensorRef): Promise<void> => {
      expect(cudaRun, name).toBeDefined();
      const [ja, ca] = [build(0), build(1)];
      jsRun(...ja);
      cudaRun?.(...ca);
      await same(out(ja), out(ca));
    };
    const x = p("f32", [3, 64], floats(192, 3));
    const q = p("i8", [3, 64]);
    const s = p("f32", [3]);
    await run("quantize", J.quantizeActivations, K.quantizeActivations, (i) => [x[i], q[i], s[i]] as [TensorRef, TensorRef, TensorRef], (a) => a[1]);
    await same(s[0], s[1]);
    const w = p("ternary", [5, 64], packTernary(Int8Array.from({ length: 320 }, () => Math.floor(r() * 3) - 1), 5, 64), 0.037);
    const t = p("f32", [3, 5]);
    await run("ternary", J.matmulTernaryI8, K.matmulTernaryI8, (i) => [q[i], s[i], w[i], t[i]] as [TensorRef, TensorRef, TensorRef, TensorRef], (a) => a[3]);
    const norm = p("f32", [64], floats(64));
    const n1 = p("f32", [3, 64]);
    await run("rmsNorm", J.rmsNorm, K.rmsNorm, (i) => [x[i], norm[i], 1e-5, n1[i]] as [TensorRef, TensorRef, number, TensorRef], (a) => a[3]);
    await run("rmsNorm without weight", J.rmsNorm, K.rmsNorm, (i) => [x[i], undefined, 1e-6, n1[i]] as [TensorRef, TensorRef | undefined, number, TensorRef], (a) => a[3]);
    const qh = p("f32", [2, 4, 8], floats(64));
    const pos = p("i32", [2], Int32Array.of(3, 4));
    const ro = p("f32", [2, 4, 8]);
    for (const mode of ["neox", "adjacent"] as const) {
      await run(`rope ${mode}`, J.rope, K.rope, (i) => [qh[i], pos[i], 10000, mode, ro[i]] as [TensorRef, TensorRef, number, typeof mode, TensorRef], (a) => a[4]);
    }
    const kc = p("f32", [5, 2, 8], floats(80));
    const vc = p("f32", [5, 2, 8], floats(80));
    const at = p("f32", [2, 4, 8]);
    await run("attention", J.attention, K.attention, (i) => [qh[i], kc[i], vc[i], 3, 0.35, at[i]] as [TensorRef, TensorRef, TensorRef, number, number, TensorRef], (a) => a[5]);
    await run("softmax", J.softmax, K.softmax, (i) => [x[i], n1[i]] as [TensorRef, TensorRef], (a) => a[1]);
    await run("unary", J.unary, K.unary, (i) => ["relu2", x[i], n1[i]] as [UnaryOp, TensorRef, TensorRef], (a) => a[2]);
    const b = p("f32", [64], floats(64));
    await run("binary (broadcast)", J.binary, K.binary, (i) => ["mul", x[i], [64, 1], b[i], [0, 1], n1[i]] as [BinaryOp, TensorRef, number[], TensorRef, number[], TensorRef], (a) => a[5]);
    const wf = p("f32", [7, 64], floats(448));
    const mf = p("f32", [3, 7]);
    await run("matmulF32", J.matmulF32, K.matmulF32, (i) => [x[i], wf[i], mf[i]] as [TensorRef, TensorRef, TensorRef], (a) => a[2]);
    for (const fmt of ["f16", "bf16", "q8_0"] as const) {
      const wd = p(fmt, [7, 64], QUANT_TRAITS[fmt].encode(floats(448), 7, 64));
      await run(`matmulDense ${fmt}`, J.matmulDense, K.matmulDense, (i) => [x[i], wd[i], mf[i]] as [TensorRef, TensorRef, TensorRef], (a) => a[2]);
      const ids = p("i32", [3], Int32Array.of(6, 0, 2));
      const emb = p("f32", [3, 64]);
      await run(`embedding ${fmt}`, J.embedding, K.embedding, (i) => [ids[i], wd[i], emb[i]] as [TensorRef, TensorRef, TensorRef], (a) => a[2]);
    }
    const wq8 = p("q8_0", [7, 64], QUANT_TRAITS.q8_0.encode(floats(448), 7, 64));
    await run("matmulQ8I8", J.matmulQ8I8, K.matmulQ8I8, (i) => [x[i], wq8[i], mf[i]] as [TensorRef, TensorRef, TensorRef], (a) => a[2]);
    const rows = p("f32", [2, 8], floats(16));
    const cache = p("f32", [5, 8], floats(40));
    await run("writeRows", J.writeRows, K.writeRows, (i) => [rows[i], cache[i], 2] as [TensorRef, TensorRef, number], (a) => a[1]);
  });

  it("should repack a ternary weight once and again after it is written", async () => {
    const { fake, cuda, K, p, same, js } = setup();
    const x = p("f32", [2, 32], floats(64));
    const q = p("i8", [2, 32]);
    const s = p("f32", [2]);
    js.kernels.quantizeActivations(x[0], q[0], s[0]);
    K.quantizeActivations?.(x[1], q[1], s[1]);
    const packed = (): Uint8Array => packTernary(Int8Array.from({ length: 96 }, () => Math.floor(r() * 3) - 1), 3, 32);
    const w = p("ternary", [3, 32], packed(), 0.5);
    const out = p("f32", [2, 3]);
    K.matmulTernaryI8?.(q[1], s[1], w[1], out[1]);
    K.matmulTernaryI8?.(q[1], s[1], w[1], out[1]);
    expect(fake.repacks).toBe(1);
    const next = packed();
    js.write(w[0].buffer, next);
    cuda.memory?.write(w[1].buffer, next);
    js.kernels.matmulTernaryI8(q[0], s[0], w[0], out[0]);
    K.matmulTernaryI8?.(q[1], s[1], w[1], out[1]);
    expect(fake.repacks).toBe(2);
    await same(out[0], out[1]);
    const live = fake.mem.size;
    cuda.memory?.free(w[1].buffer);
    expect(fake.mem.size).toBe(live - 2); // the buffer and its device-layout copy
  });

  it("should report a non-finite activation on read, and refuse reads outside a buffer", async () => {
    const { cuda, K, p } = setup();
    const bad = floats(32);
    bad[5] = Number.NaN;
    const x = p("f32", [1, 32], bad);
    const q = p("i8", [1, 32]);
    const s = p("f32", [1]);
    K.quantizeActivations?.(x[1], q[1], s[1]);
    const error: unknown = await cuda.memory?.readAsync(q[1].buffer).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValueError);
    expect((error as ValueError).code).toBe("non-finite");
    expect((error as ValueError).index).toBe(5);
    await expect(cuda.memory?.readAsync(q[1].buffer, 30, 4)).rejects.toBeInstanceOf(UsageError);
    expect(() => cuda.memory?.read(q[1].buffer)).toThrow(UsageError);
  });

  it("should say which calls its kernels do not take", () => {
    const { cuda, p } = setup();
    const q = p("f32", [1, 2, 48]);
    const k = p("f32", [4, 1, 48]);
    expect(cuda.supports?.("attention", [q[1], k[1], k[1], q[1]])).toMatch(/head dim 48/);
    const x = p("f32", [1, 256]);
    const w = p("q6_k", [2, 256]);
    expect(cuda.supports?.("matmulDense", [x[1], w[1], x[1]])).toMatch(/q6_k/);
    expect(cuda.supports?.("concat", [])).toMatch(/no CUDA kernel/);
    expect(cuda.supports?.("matmulTernaryI8", [])).toBe(true);
  });
});
