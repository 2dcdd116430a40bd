/**
 * Decode attention (one query row) of one layer at a given depth, native CPU backend: ms per call and the
 * cache read rate (K and V rows 0 … depth of every KV head, f32), for the 700M shape (16 heads, 16 KV heads,
 * head size 96) and the 2B shape (20 heads over 5 KV heads, head size 128). Multiply by the layer count for
 * the attention share of one decoded token. Rounds alternate the depths so a loaded machine slows them alike;
 * the median and fastest round are printed, and the median CPU time per call (process CPU, every thread). To compare two builds of the addon, run this once per build
 * (BARBELL_NATIVE_PATH=…) back to back. Not a test.
 * Run: `npx tsx bench/attention-depth.ts [--rounds N] [--threads T] [--depths 512,4096] [--calls C]`.
 */
import type { TensorRef } from "../src/backends/backend.js";
import { ArrayBufferMemory } from "../src/backends/host-memory.js";
import { createNativeCpuBackend, probeNativeCpu } from "../src/backends/native-cpu/index.js";

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const ROUNDS = Number(arg("--rounds") ?? 7);
const THREADS = Number(arg("--threads") ?? 2);
const CALLS = Number(arg("--calls") ?? 20);
const DEPTHS = (arg("--depths") ?? "512,4096").split(",").map(Number);
const SHAPES = [
  { name: "700m", layers: 24, heads: 16, kvHeads: 16, headDim: 96 },
  { name: "2b", layers: 30, heads: 20, kvHeads: 5, headDim: 128 },
] as const;

const probe = probeNativeCpu();
if (!probe.available) {
  console.log(`native-cpu unavailable: ${probe.reason}`);
  process.exit(0);
}
const memory = new ArrayBufferMemory("bench-attention-depth");
const backend = createNativeCpuBackend({ threads: THREADS });

function f32(shape: number[], fill: boolean): TensorRef {
  const n = shape.reduce((a, b) => a * b, 1);
  const buffer = memory.alloc(4 * n);
  if (fill) {
    const data = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37));
    memory.write(buffer, new Uint8Array(data.buffer));
  }
  return { buffer, dtype: "f32", shape };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

console.log(`decode attention, one layer, native-cpu (${probe.features.join(" ")}), ${THREADS} thread(s), ${CALLS} calls per round`);
for (const s of SHAPES) {
  const capacity = Math.max(...DEPTHS) + 1;
  const k = f32([capacity, s.kvHeads, s.headDim], true);
  const v = f32([capacity, s.kvHeads, s.headDim], true);
  const q = f32([1, s.heads, s.headDim], true);
  const out = f32([1, s.heads, s.headDim], false);
  const times = new Map<number, number[]>(DEPTHS.map((d) => [d, []]));
  const cpu = new Map<number, number[]>(DEPTHS.map((d) => [d, []]));
  for (let r = 0; r < ROUNDS; r++) {
    for (const depth of DEPTHS) {
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      for (let c = 0; c < CALLS; c++) {
        backend.kernels.attention?.(q, k, v, depth, 1 / Math.sqrt(s.headDim), out);
      }
      times.get(depth)?.push((performance.now() - t0) / CALLS);
      const used = process.cpuUsage(c0);
      cpu.get(depth)?.push((used.user + used.system) / 1000 / CALLS);
    }
  }
  for (const depth of DEPTHS) {
    const ts = times.get(depth) ?? [];
    const bytes = 2 * (depth + 1) * s.kvHeads * s.headDim * 4;
    const med = median(ts);
    console.log(
      `${s.name} @ ${depth}: ${med.toFixed(3)} ms median (fastest ${Math.min(...ts).toFixed(3)}), ` +
        `${(bytes / (med / 1000) / 1e9).toFixed(1)} GB/s of cache, ×${s.layers} layers = ${(med * s.layers).toFixed(1)} ms per token; ` +
        `CPU ${median(cpu.get(depth) ?? []).toFixed(3)} ms per call (all threads; less sensitive to a loaded machine)`,
    );
  }
}
backend.dispose();
