/**
 * Ternary × int8 GEMV speed of the wasm-simd backend, per thread count, against the JS reference kernel, on
 * the BitNet 2B-4T and 700M projection shapes. Not a test: `npx tsx bench/wasm-gemv.ts [--quick] [--threads 1,2]`
 * (default thread counts: 1 and 2).
 *
 * GOPS = 2·M·N·K / time (a multiply and an add per weight), median of repeated runs; GB/s counts the packed
 * weight bytes read (N·K/4).
 */
import type { TensorRef } from "../src/backends/backend.js";
import { createJsBackend } from "../src/backends/js/index.js";
import { ArrayBufferMemory } from "../src/backends/host-memory.js";
import { createWasmSimdBackend, probeWasmSimd } from "../src/backends/wasm-simd/index.js";
import type { BufferMemory, Kernels } from "../src/backends/backend.js";

const quick = process.argv.includes("--quick");
const threadsArg = process.argv[process.argv.indexOf("--threads") + 1];
const THREADS = (process.argv.includes("--threads") && threadsArg !== undefined ? threadsArg : "1,2")
  .split(",")
  .map(Number)
  .filter((t) => Number.isInteger(t) && t > 0);

const SHAPES: [string, number, number, number][] = [
  ["2B-4T ffn_up   1×2560→6912", 1, 2560, 6912],
  ["2B-4T ffn_down 1×6912→2560", 1, 6912, 2560],
  ["700M  ffn      1×1536→4096", 1, 1536, 4096],
  ["2B-4T prefill 16×2560→6912", 16, 2560, 6912],
];

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[s.length >> 1] ?? Number.NaN;
}

function measure(memory: BufferMemory, kernels: Partial<Kernels>, m: number, k: number, n: number, budgetMs: number): number {
  const kernel = kernels.matmulTernaryI8;
  if (kernel === undefined) {
    return Number.NaN;
  }
  const filled = (bytes: number, f: (i: number) => number): Uint8Array => Uint8Array.from({ length: bytes }, (_, i) => f(i));
  const x: TensorRef = { buffer: memory.adopt(filled(m * k, (i) => (i * 31) & 0xff)), dtype: "i8", shape: [m, k] };
  const s: TensorRef = {
    buffer: memory.adopt(new Uint8Array(Float32Array.from({ length: m }, () => 12.5).buffer)),
    dtype: "f32",
    shape: [m],
  };
  // Codes 0, 1, 2 in a pattern (no code 3): a realistic mix of −1, 0 and +1.
  const w: TensorRef = {
    buffer: memory.adopt(filled((n * k) / 4, (i) => [0b00011000, 0b10010001, 0b01100100, 0b00100110][i & 3] ?? 0)),
    dtype: "ternary",
    shape: [n, k],
    scale: 0.7,
  };
  const out: TensorRef = { buffer: memory.alloc(4 * m * n), dtype: "f32", shape: [m, n] };
  kernel(x, s, w, out);
  const times: number[] = [];
  const t0 = performance.now();
  while (performance.now() - t0 < budgetMs || times.length < 5) {
    const t = performance.now();
    kernel(x, s, w, out);
    times.push(performance.now() - t);
  }
  for (const t of [x, s, w, out]) {
    memory.free(t.buffer);
  }
  return median(times) / 1000;
}

const probe = await probeWasmSimd();
if (!probe.available) {
  console.log(`wasm-simd unavailable: ${probe.reason}`);
  process.exit(0);
}
const wasms = [];
for (const threads of THREADS) {
  wasms.push(await createWasmSimdBackend({ threads }));
}
const js = createJsBackend();
const jsMemory: BufferMemory = new ArrayBufferMemory("bench-js");

const threadCols = wasms.map((w) => `wasm ${w.info.threads}T GOPS`);
console.log(`| shape | ${threadCols.join(" | ")} | wasm ${wasms.at(-1)?.info.threads ?? 1}T GB/s | JS GOPS | best speed-up vs 1T |`);
console.log(`|---|${threadCols.map(() => "---|").join("")}---|---|---|`);
for (const [name, m, k, n] of SHAPES) {
  const ops = 2 * m * n * k;
  const gops = wasms.map((w) => ops / measure(w.memory, w.kernels, m, k, n, quick ? 300 : 1500) / 1e9);
  const tj = measure(jsMemory, js.kernels, m, k, n, quick ? 300 : 1500);
  const last = gops.at(-1) ?? Number.NaN;
  const gbps = ((last / 2) * 1e9 * (n * k)) / 4 / (m * n * k) / 1e9;
  const cells = gops.map((g) => g.toFixed(1)).join(" | ");
  const speedUp = Math.max(...gops) / (gops[0] ?? Number.NaN);
  console.log(`| ${name} | ${cells} | ${gbps.toFixed(2)} | ${(ops / tj / 1e9).toFixed(2)} | ${speedUp.toFixed(2)}× |`);
}
for (const w of wasms) {
  w.dispose();
}
