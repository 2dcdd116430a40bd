/**
 * µs per call of the decode-path kernels of the native CPU backend at 700M shapes (M = 1), median of
 * several rounds, plus the f16 / Q8_0 head GEMV in GB/s (cold: a ring of copies ≥ 256 MiB) and
 * attention at decode and prefill sizes. Run: `npx tsx bench/native-kernels.ts [threads]`. Not a test.
 */
import { ArrayBufferMemory } from "../src/backends/host-memory.js";
import type { PartialBackend, TensorRef } from "../src/backends/backend.js";
import { createNativeCpuBackend } from "../src/backends/native-cpu/index.js";
import { Q8_0 } from "../src/quant/formats/q8-0.js";
import { f32ToHalf } from "../src/quant/half.js";

const threads = Number(process.argv[2] ?? "2");
const memory = new ArrayBufferMemory("bench");
function tensor(dtype: TensorRef["dtype"], shape: number[], data: ArrayBufferView): TensorRef {
  const buffer = memory.alloc(data.byteLength);
  memory.write(buffer, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  return { buffer, dtype, shape };
}
const rnd = (n: number, s = 1): Float32Array => Float32Array.from({ length: n }, (_, i) => (((i * 2654435761) >>> 8) % 2001) / 1000 - 1).map((v) => v * s);
function median(v: number[]): number {
  return [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)] ?? NaN;
}
/** Median µs per call. */
function time(fn: (i: number) => void, minMs = 30, rounds = 7): number {
  let calls = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < 10) {fn(calls++);}
  const per = (performance.now() - t0) / calls;
  const reps = Math.max(1, Math.ceil(minMs / per));
  const out: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const s = performance.now();
    for (let i = 0; i < reps; i++) {fn(calls++);}
    out.push(((performance.now() - s) * 1000) / reps);
  }
  return median(out);
}
const b: PartialBackend = createNativeCpuBackend({ threads });
const k = b.kernels;
const H = 1536, F = 4096;
const x = tensor("f32", [1, H], rnd(H));
const y = tensor("f32", [1, H], rnd(H));
const o = tensor("f32", [1, H], new Float32Array(H));
const xf = tensor("f32", [1, F], rnd(F));
const of = tensor("f32", [1, F], new Float32Array(F));
const q = tensor("i8", [1, H], new Int8Array(H));
const s = tensor("f32", [1], new Float32Array(1));
const w = tensor("f32", [H], rnd(H));
const rows: [string, number][] = [];
rows.push(["quantizeActivations 1×1536", time(() => k.quantizeActivations?.(x, q, s))]);
rows.push(["rmsNorm 1×1536", time(() => k.rmsNorm?.(x, w, 1e-5, o))]);
rows.push(["binary add 1×1536", time(() => k.binary?.("add", x, [H, 1], y, [H, 1], o))]);
rows.push(["unary silu 1×4096", time(() => k.unary?.("silu", xf, of))]);
const qh = tensor("f32", [1, 16, 96], rnd(H));
const pos = tensor("i32", [1], Int32Array.of(37));
rows.push(["rope 1×16×96", time(() => k.rope?.(qh, pos, 10000, "neox", { ...o, shape: [1, 16, 96] }))]);
const cache = tensor("f32", [640, 16, 96], new Float32Array(640 * H));
rows.push(["writeRows 1 row of 1536", time((i) => k.writeRows?.({ ...y, shape: [1, 16, 96] }, cache, i % 600))]);
for (const ctx of [64, 512]) {
  const kc = tensor("f32", [ctx, 16, 96], rnd(ctx * H, 0.3));
  const vc = tensor("f32", [ctx, 16, 96], rnd(ctx * H));
  rows.push([`attention decode, ${ctx} keys`, time(() => k.attention?.(qh, kc, vc, ctx - 1, 0.1, { ...o, shape: [1, 16, 96] }))]);
}
{
  const S = 512;
  const qp = tensor("f32", [S, 16, 96], rnd(S * H));
  const kc = tensor("f32", [S, 16, 96], rnd(S * H, 0.3));
  const op = tensor("f32", [S, 16, 96], new Float32Array(S * H));
  rows.push([`attention prefill 512×512 (per call)`, time(() => k.attention?.(qp, kc, kc, 0, 0.1, op), 100, 3)]);
  memory.free(qp.buffer);
}
for (const [name, us] of rows) {console.log(`${name.padEnd(40)} ${us.toFixed(1).padStart(9)} µs`);}
// Head GEMV: 32002 × 1536, f16 and q8_0; cold = ring of copies.
const V = 32002;
const wf = rnd(V * H, 0.05);
const heads: [string, TensorRef[], number][] = [];
const f16 = Uint16Array.from(wf, (v) => f32ToHalf(v));
heads.push(["head f16", [0, 1, 2].map(() => tensor("f16", [V, H], f16)), f16.byteLength]);
const q8 = Q8_0.encode(wf, V, H);
heads.push(["head q8_0", [0, 1, 2, 3, 4].map(() => tensor("q8_0", [V, H], q8)), q8.byteLength]);
const logits = tensor("f32", [1, V], new Float32Array(V));
for (const [name, ring, bytes] of heads) {
  const us = time((i) => k.matmulDense?.(x, ring[i % ring.length] as TensorRef, logits), 100, 5);
  console.log(`${name.padEnd(40)} ${us.toFixed(1).padStart(9)} µs  ${(bytes / us / 1000).toFixed(1)} GB/s (threads ${threads})`);
}
b.dispose();
