/**
 * Decode attention (one query row) of one layer at a given depth, native CPU backend: ms per call and the
 * cache read rate (K and V rows 0 … depth of every KV head, f32), for the 700M shape (16 heads, 16 KV heads,
 * head size 96) and the 2B shape (20 heads over 5 KV heads, head size 128). Multiply by the layer count for
 * the attention share of one decoded token. Rounds alternate the depths so a loaded machine slows them alike;
 * the median and fastest round are printed, and the median CPU time per call (process CPU, every thread). To compare two builds of the addon, run this once per build
 * (BARBELL_NATIVE_PATH=…) back to back. `--types f32,f16,q8_0` times the same attention over KV caches of each type
 * (src/model/bitnet/kv-cache.ts), interleaved within each round. Not a test.
 * `--all-layers` gives every layer of the shape its own cache and cycles through them call by call, so the cache is
 * read from memory as in the model (one layer's cache stays in the L3 and flatters the kernel); `--shapes 2b` times one
 * shape only.
 * Run: `npx tsx bench/attention-depth.ts [--rounds N] [--threads T] [--depths 512,4096] [--calls C] [--types f32]
 * [--all-layers] [--shapes 700m,2b]`.
 */
import type { TensorRef } from "../src/backends/backend.js";
import { ArrayBufferMemory } from "../src/backends/host-memory.js";
import { createNativeCpuBackend, probeNativeCpu } from "../src/backends/native-cpu/index.js";
import { storageBytes } from "../src/backends/storage.js";
import { parseKvCacheDType, type KvCacheDType } from "../src/model/bitnet/kv-cache.js";
import { QUANT_TRAITS } from "../src/quant/table.js";

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const ROUNDS = Number(arg("--rounds") ?? 7);
const THREADS = Number(arg("--threads") ?? 2);
const CALLS = Number(arg("--calls") ?? 20);
const DEPTHS = (arg("--depths") ?? "512,4096").split(",").map(Number);
const TYPES: readonly KvCacheDType[] = (arg("--types") ?? "f32").split(",").map(parseKvCacheDType);
const ALL_LAYERS = process.argv.includes("--all-layers");
const SHAPE_NAMES = (arg("--shapes") ?? "700m,2b").split(",");
const SHAPES = [
  { name: "700m", layers: 24, heads: 16, kvHeads: 16, headDim: 96 },
  { name: "2b", layers: 30, heads: 20, kvHeads: 5, headDim: 128 },
].filter((s) => SHAPE_NAMES.includes(s.name));

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

/** A KV cache [capacity, kvHeads, headDim] of `dtype` holding the same values as f32(shape, true), encoded. */
function cache(dtype: KvCacheDType, shape: number[]): TensorRef {
  if (dtype === "f32") {
    return f32(shape, true);
  }
  const rows = (shape[0] ?? 0) * (shape[1] ?? 0);
  const values = Float32Array.from({ length: rows * (shape[2] ?? 0) }, (_, i) => Math.sin(i * 0.37));
  const buffer = memory.alloc(storageBytes(dtype, shape));
  memory.write(buffer, QUANT_TRAITS[dtype].encode(values, rows, shape[2] ?? 0));
  return { buffer, dtype, shape };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

console.log(
  `decode attention, one layer${ALL_LAYERS ? " (each call the next layer's cache)" : ""}, native-cpu (${probe.features.join(" ")}), ${THREADS} thread(s), ${CALLS} calls per round`,
);
for (const s of SHAPES) {
  const capacity = Math.max(...DEPTHS) + 1;
  const caches = ALL_LAYERS ? s.layers : 1;
  const kv = new Map(
    TYPES.map((t) => [t, Array.from({ length: caches }, () => [cache(t, [capacity, s.kvHeads, s.headDim]), cache(t, [capacity, s.kvHeads, s.headDim])])]),
  );
  const q = f32([1, s.heads, s.headDim], true);
  const out = f32([1, s.heads, s.headDim], false);
  const key = (t: KvCacheDType, d: number): string => `${t}@${d}`;
  const times = new Map<string, number[]>();
  const cpu = new Map<string, number[]>();
  for (let r = 0; r < ROUNDS; r++) {
    for (const type of r % 2 === 0 ? TYPES : [...TYPES].reverse()) {
      const layers = kv.get(type) as TensorRef[][];
      for (const depth of DEPTHS) {
        const t0 = performance.now();
        const c0 = process.cpuUsage();
        for (let c = 0; c < CALLS; c++) {
          const [k, v] = layers[c % layers.length] as TensorRef[];
          backend.kernels.attention?.(q, k as TensorRef, v as TensorRef, depth, 1 / Math.sqrt(s.headDim), out);
        }
        times.set(key(type, depth), [...(times.get(key(type, depth)) ?? []), (performance.now() - t0) / CALLS]);
        const used = process.cpuUsage(c0);
        cpu.set(key(type, depth), [...(cpu.get(key(type, depth)) ?? []), (used.user + used.system) / 1000 / CALLS]);
      }
    }
  }
  for (const [type, depth] of TYPES.flatMap((t) => DEPTHS.map((d) => [t, d] as const))) {
    const ts = times.get(key(type, depth)) ?? [];
    const bytes = 2 * storageBytes(type, [depth + 1, s.kvHeads, s.headDim]);
    const med = median(ts);
    console.log(
      `${s.name}${type === "f32" && TYPES.length === 1 ? "" : ` ${type}`} @ ${depth}: ${med.toFixed(3)} ms median (fastest ${Math.min(...ts).toFixed(3)}), ` +
        `${(bytes / (med / 1000) / 1e9).toFixed(1)} GB/s of cache, ×${s.layers} layers = ${(med * s.layers).toFixed(1)} ms per token; ` +
        `CPU ${median(cpu.get(key(type, depth)) ?? []).toFixed(3)} ms per call (all threads; less sensitive to a loaded machine)`,
    );
  }
}
backend.dispose();
