/**
 * Exports the CUDA harness's conformance vectors: inputs, and the outputs the JS reference backend computes
 * for them, for every kernel the CUDA layer implements; plus a small seeded BitNet model with the greedy ids
 * the JS reference decodes from it (native/cuda/harness: `--self-check`, `--gpu`, `--model`; docs/cuda.md).
 *
 *   npx tsx scripts/cuda/export-vectors.ts <outDir>      → <outDir>/vectors.bin, <outDir>/model.bin
 *
 * Deterministic (seeded); both files together stay far under the device tool's 64 MiB per call.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Backend, StorageDType, TensorRef } from "../../src/backends/backend.js";
import { runDecomposition, decomposeBitnetBlock } from "../../src/backends/decompositions.js";
import { createJsBackend } from "../../src/backends/js/index.js";
import { matmulTernaryI8Acc } from "../../src/backends/js/kernels/matmul.js";
import { UNARY_OPS, BINARY_OPS, type BinaryOp, type UnaryOp } from "../../src/backends/ops.js";
import { storageBytes } from "../../src/backends/storage.js";
import { mulberry32 } from "../../src/model/bitnet/fixture.js";
import { packTernary, ternaryRowBytes } from "../../src/quant/layouts.js";
import { QUANT_TRAITS } from "../../src/quant/table.js";
import { encodeVectors, tensor, type VectorCase, type VectorTensor } from "./vector-file.js";
import { exportModelCase } from "./export-model.js";

/** Float tolerances (rtol, atol) of the CUDA kernels against the float64 reference (docs/cuda.md). */
export const CUDA_TOLERANCES = {
  rmsNorm: [1e-6, 1e-7],
  rope: [1e-6, 1e-6],
  attention: [1e-4, 1e-5],
  softmax: [1e-6, 1e-9],
  unaryFloat: [1e-6, 1e-30],
  matmulDense: [1e-4, 1e-4],
} as const satisfies Record<string, readonly [number, number]>;

const EXACT = [0, 0] as const;

/** A JS-backend tensor with optional data, and reads of its bytes. */
class Ref {
  constructor(private readonly js: Backend) {}
  make(dtype: StorageDType, shape: number[], data?: ArrayBufferView, scale?: number): TensorRef {
    const buffer = this.js.alloc(storageBytes(dtype, shape));
    if (data !== undefined) {
      this.js.write(buffer, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    }
    return scale === undefined ? { buffer, dtype, shape } : { buffer, dtype, shape, scale };
  }
  bytes(t: TensorRef): Uint8Array {
    return this.js.read(t.buffer, 0, storageBytes(t.dtype, t.shape)).slice();
  }
  f32(t: TensorRef): Float32Array {
    return new Float32Array(this.bytes(t).buffer);
  }
}

const floats = (r: () => number, n: number, amp = 1): Float32Array => Float32Array.from({ length: n }, () => (r() * 2 - 1) * amp);
const trits = (r: () => number, n: number): Int8Array => Int8Array.from({ length: n }, () => Math.floor(r() * 3) - 1);
const f32 = (name: string, dims: number[], data: Float32Array, role: "in" | "expect" = "in"): VectorTensor => tensor(name, "f32", dims, data, role);

export function kernelCases(): VectorCase[] {
  const js = createJsBackend();
  const ref = new Ref(js);
  const K = js.kernels;
  const r = mulberry32(2112);
  const cases: VectorCase[] = [];
  const add = (c: Omit<VectorCase, "rtol" | "atol">, tol: readonly [number, number]): void => {
    cases.push({ ...c, rtol: tol[0], atol: tol[1] });
  };

  // ---- the activation quantizer (exact), with a zero row, and a non-finite input ----
  for (const [m, k] of [[1, 2560], [3, 300], [4, 17], [2, 64]] as const) {
    const x = floats(r, m * k, 3);
    if (m === 4) {
      x.fill(0, 0, k); // an all-zero row: the 1e-5 absmax floor
    }
    const q = ref.make("i8", [m, k]);
    const s = ref.make("f32", [m]);
    K.quantizeActivations(ref.make("f32", [m, k], x), q, s);
    add({ name: `quantize ${m}x${k}`, kernel: "quantizeActivations", attrs: { m, k }, tensors: [f32("x", [m, k], x), tensor("q", "i8", [m, k], ref.bytes(q), "expect"), f32("scales", [m], ref.f32(s), "expect")] }, EXACT);
  }
  {
    const x = floats(r, 2 * 64);
    x[37] = Number.NaN;
    x[90] = Number.POSITIVE_INFINITY;
    add({ name: "quantize non-finite", kernel: "quantizeActivations", attrs: { m: 2, k: 64, nonfinite: 37 }, tensors: [f32("x", [2, 64], x)] }, EXACT);
  }

  // ---- ternary × int8 (exact): tails in K, decode and prefill M, raw bytes with code 3 ----
  const shapes: [number, number, number, boolean][] = [
    [1, 256, 64, false], [1, 300, 17, false], [3, 128, 33, false], [5, 1000, 1, false], [1, 2560, 128, false],
    [7, 96, 40, false], [16, 2560, 64, false], [1, 6912, 32, false], [9, 640, 48, false], [2, 200, 24, true],
  ];
  for (const [m, k, n, raw] of shapes) {
    const xf = floats(r, m * k, 2);
    const xq = ref.make("i8", [m, k]);
    const xs = ref.make("f32", [m]);
    K.quantizeActivations(ref.make("f32", [m, k], xf), xq, xs);
    const packed = raw ? Uint8Array.from({ length: n * ternaryRowBytes(k) }, () => Math.floor(r() * 256)) : packTernary(trits(r, n * k), n, k);
    const gamma = Math.fround(0.01 + r() * 0.05);
    const out = ref.make("f32", [m, n]);
    K.matmulTernaryI8(xq, xs, ref.make("ternary", [n, k], packed, gamma), out);
    const acc = new Int32Array(m * n);
    const xBytes = ref.bytes(xq);
    matmulTernaryI8Acc(new Int8Array(xBytes.buffer), packed, m, k, n, acc);
    add({
      name: `ternary ${m}x${k}x${n}${raw ? " raw codes" : ""}`,
      kernel: "matmulTernaryI8",
      attrs: { m, k, n, gamma },
      tensors: [tensor("x", "i8", [m, k], xBytes), f32("xScales", [m], ref.f32(xs)), tensor("w", "raw", [n, ternaryRowBytes(k)], packed), tensor("acc", "i32", [m, n], acc, "expect"), f32("out", [m, n], ref.f32(out), "expect")],
    }, EXACT);
  }

  // ---- the integer Q8_0 head (exact) and the dense heads (tolerance) ----
  const DENSE_CODE = { f32: 0, f16: 1, bf16: 2, q8_0: 3 } as const;
  for (const [m, k, n] of [[1, 2560, 64], [3, 256, 33], [16, 512, 8]] as const) {
    const x = floats(r, m * k);
    const w = QUANT_TRAITS.q8_0.encode(floats(r, n * k, 0.1), n, k);
    const out = ref.make("f32", [m, n]);
    K.matmulQ8I8(ref.make("f32", [m, k], x), ref.make("q8_0", [n, k], w), out);
    add({ name: `q8 head ${m}x${k}x${n}`, kernel: "matmulQ8I8", attrs: { m, k, n }, tensors: [f32("x", [m, k], x), tensor("w", "raw", [w.byteLength], w), f32("out", [m, n], ref.f32(out), "expect")] }, EXACT);
  }
  for (const dtype of ["f32", "f16", "bf16", "q8_0"] as const) {
    // k = 100 takes the generic decode path (the F16 vector path needs k % 8 == 0); Q8_0 rows are whole blocks.
    for (const [m, k, n] of dtype === "q8_0" ? ([[1, 256, 40], [4, 2560, 16]] as const) : ([[1, 256, 40], [4, 2560, 16], [2, 100, 12]] as const)) {
      const x = floats(r, m * k);
      const w = QUANT_TRAITS[dtype].encode(floats(r, n * k, 0.1), n, k);
      const out = ref.make("f32", [m, n]);
      K.matmulDense(ref.make("f32", [m, k], x), ref.make(dtype, [n, k], w), out);
      add({ name: `dense ${dtype} ${m}x${k}x${n}`, kernel: "matmulDense", attrs: { m, k, n, dtype: DENSE_CODE[dtype] }, tensors: [f32("x", [m, k], x), tensor("w", "raw", [w.byteLength], w), f32("out", [m, n], ref.f32(out), "expect")] }, CUDA_TOLERANCES.matmulDense);
    }
    const [vocab, embed, seq] = [50, 64, 5];
    const table = QUANT_TRAITS[dtype].encode(floats(r, vocab * embed), vocab, embed);
    const ids = Int32Array.from([0, 49, 7, 7, 23]);
    const out = ref.make("f32", [seq, embed]);
    K.embedding(ref.make("i32", [seq], ids), ref.make(dtype, [vocab, embed], table), out);
    add({ name: `embedding ${dtype}`, kernel: "embedding", attrs: { seq, vocab, embed, dtype: DENSE_CODE[dtype] }, tensors: [tensor("ids", "i32", [seq], ids), tensor("table", "raw", [table.byteLength], table), f32("out", [seq, embed], ref.f32(out), "expect")] }, EXACT);
  }

  // ---- RMSNorm, RoPE, attention, softmax (tolerance) ----
  for (const [rows, cols, eps, weighted] of [[3, 2560, 1e-5, true], [2, 100, 1e-6, false], [1, 6912, 1e-5, true]] as const) {
    const x = floats(r, rows * cols, 2);
    const w = floats(r, cols, 1.5);
    const out = ref.make("f32", [rows, cols]);
    K.rmsNorm(ref.make("f32", [rows, cols], x), weighted ? ref.make("f32", [cols], w) : undefined, eps, out);
    add({ name: `rmsnorm ${rows}x${cols}${weighted ? "" : " no weight"}`, kernel: "rmsNorm", attrs: { rows, cols, eps }, tensors: [f32("x", [rows, cols], x), ...(weighted ? [f32("weight", [cols], w)] : []), f32("out", [rows, cols], ref.f32(out), "expect")] }, CUDA_TOLERANCES.rmsNorm);
  }
  for (const [mode, theta] of [["neox", 10000], ["adjacent", 500000], ["neox", 500000]] as const) {
    const [seq, heads, hd] = [5, 4, 64];
    const x = floats(r, seq * heads * hd);
    const pos = Int32Array.from([0, 1, 7, 100, 4000]);
    const out = ref.make("f32", [seq, heads, hd]);
    K.rope(ref.make("f32", [seq, heads, hd], x), ref.make("i32", [seq], pos), theta, mode, out);
    add({ name: `rope ${mode} θ=${theta}`, kernel: "rope", attrs: { seq, heads, headDim: hd, theta, neox: mode === "neox" ? 1 : 0 }, tensors: [f32("x", [seq, heads, hd], x), tensor("positions", "i32", [seq], pos), f32("out", [seq, heads, hd], ref.f32(out), "expect")] }, CUDA_TOLERANCES.rope);
  }
  // decode (one row), prefill (causal rows), split-K over several 256-key chunks, GQA and MHA
  for (const [seq, heads, kvHeads, hd, pos0] of [[1, 4, 2, 64, 9], [7, 4, 4, 32, 0], [1, 8, 2, 128, 600], [5, 2, 1, 128, 300], [3, 20, 5, 128, 1100]] as const) {
    const keys = pos0 + seq;
    const q = floats(r, seq * heads * hd);
    const k = floats(r, keys * kvHeads * hd);
    const v = floats(r, keys * kvHeads * hd);
    const scale = 1 / Math.sqrt(hd);
    const out = ref.make("f32", [seq, heads, hd]);
    K.attention(ref.make("f32", [seq, heads, hd], q), ref.make("f32", [keys, kvHeads, hd], k), ref.make("f32", [keys, kvHeads, hd], v), pos0, scale, out);
    add({ name: `attention s${seq} h${heads}/${kvHeads} d${hd} pos0 ${pos0}`, kernel: "attention", attrs: { seq, heads, kvHeads, headDim: hd, pos0, scale }, tensors: [f32("q", [seq, heads, hd], q), f32("k", [keys, kvHeads, hd], k), f32("v", [keys, kvHeads, hd], v), f32("out", [seq, heads, hd], ref.f32(out), "expect")] }, CUDA_TOLERANCES.attention);
  }
  {
    const [rows, cols] = [4, 1000];
    const x = floats(r, rows * cols, 8);
    x.fill(Number.NEGATIVE_INFINITY, 0, 500); // half of row 0 masked
    x.fill(Number.NEGATIVE_INFINITY, 2 * cols, 3 * cols); // row 2 fully masked: zeros
    const out = ref.make("f32", [rows, cols]);
    K.softmax(ref.make("f32", [rows, cols], x), out);
    add({ name: "softmax with masks", kernel: "softmax", attrs: { rows, cols }, tensors: [f32("x", [rows, cols], x), f32("out", [rows, cols], ref.f32(out), "expect")] }, CUDA_TOLERANCES.softmax);
  }

  // ---- element-wise: every op of the table, with −0, NaN and infinities ----
  const special = [0, -0, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1e-40, -1e-40, 88.5, -100];
  for (const [op, spec] of Object.entries(UNARY_OPS) as [UnaryOp, (typeof UNARY_OPS)[UnaryOp]][]) {
    const x = Float32Array.from([...special, ...floats(r, 1000, 6)]);
    const out = ref.make("f32", [x.length]);
    K.unary(op, ref.make("f32", [x.length], x), out);
    add({ name: `unary ${op}`, kernel: "unary", attrs: { op: spec.code }, tensors: [f32("x", [x.length], x), f32("out", [x.length], ref.f32(out), "expect")] }, spec.numerics === "exact" ? EXACT : CUDA_TOLERANCES.unaryFloat);
  }
  for (const [op, spec] of Object.entries(BINARY_OPS) as [BinaryOp, (typeof BINARY_OPS)[BinaryOp]][]) {
    const [rows, cols] = [6, 40];
    const a = Float32Array.from([...special, ...floats(r, rows * cols - special.length, 4)]);
    const b = Float32Array.from([-0, 0, ...floats(r, cols - 2, 4)]);
    const out = ref.make("f32", [rows, cols]);
    K.binary(op, ref.make("f32", [rows, cols], a), [cols, 1], ref.make("f32", [cols], b), [0, 1], out);
    add({
      name: `binary ${op} (b broadcast over rows)`,
      kernel: "binary",
      attrs: { op: spec.code },
      tensors: [f32("a", [rows, cols], a), f32("b", [cols], b), tensor("dims", "i32", [2], Int32Array.of(rows, cols)), tensor("aStrides", "i32", [2], Int32Array.of(cols, 1)), tensor("bStrides", "i32", [2], Int32Array.of(0, 1)), f32("out", [rows, cols], ref.f32(out), "expect")],
    }, spec.numerics === "exact" ? EXACT : CUDA_TOLERANCES.unaryFloat);
  }

  // ---- greedy sampling: the first maximum (ties → the lowest id) ----
  {
    const [rows, vocab] = [3, 5000];
    const logits = floats(r, rows * vocab, 10);
    logits[4321] = 50;
    logits[vocab + 17] = 40;
    logits[vocab + 3000] = 40; // a tie: 17 wins
    const ids = Int32Array.from({ length: rows }, (_, i) => argmax(logits.subarray(i * vocab, (i + 1) * vocab)));
    add({ name: "greedy sample", kernel: "sample", attrs: { rows, vocab }, tensors: [f32("logits", [rows, vocab], logits), tensor("ids", "i32", [rows], ids, "expect")] }, EXACT);
  }
  return cases;
}

/** Index of the first largest value (NaN never wins). */
export function argmax(v: Float32Array): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) {
    if ((v[i] ?? Number.NEGATIVE_INFINITY) > (v[best] ?? Number.NEGATIVE_INFINITY)) {
      best = i;
    }
  }
  return best;
}

/** Writes vectors.bin and model.bin into `dir`; returns their paths and sizes. */
export function exportVectors(dir: string): { vectors: string; model: string; bytes: number } {
  mkdirSync(dir, { recursive: true });
  const vectors = encodeVectors(kernelCases());
  const model = encodeVectors([exportModelCase({ runBlock: (js, ...args) => runDecomposition(js, decomposeBitnetBlock, ...args) })]);
  const paths = { vectors: join(dir, "vectors.bin"), model: join(dir, "model.bin") };
  writeFileSync(paths.vectors, vectors);
  writeFileSync(paths.model, model);
  return { ...paths, bytes: vectors.byteLength + model.byteLength };
}

if (process.argv[1] !== undefined && /export-vectors\.[tj]s$/.test(process.argv[1])) {
  const dir = process.argv[2];
  if (dir === undefined) {
    process.stderr.write("usage: tsx scripts/cuda/export-vectors.ts <outDir>\n");
    process.exit(2);
  }
  const out = exportVectors(dir);
  process.stdout.write(`wrote ${out.vectors} and ${out.model} (${out.bytes} bytes)\n`);
}
