/**
 * The output head over each block format the native CPU backend decodes, per ISA path, the variants interleaved
 * round by round so a loaded machine slows them alike:
 * - float heads (matmulDense: F16, Q8_0, Q4_K, Q5_K, Q6_K; rows decoded exactly, f32 products) and
 * - integer heads (matmulQ8I8: Q8_0 against per-32 int8 activations, Q4_K / Q5_K / Q6_K against per-256 int8
 *   activations with 16-element sums; docs/heads.md),
 * on the 700M shape (k 1536, n 32002; F16 and Q8_0 too) and the 2B shape (k 2560, n 128256; the k-quants), for
 * one activation row (the decode GEMV) and eight (a batched decode step). Prints the median and fastest round (ms)
 * and each integer head's median relative to the float head of its format. Weights are random block bytes with
 * finite scales (the kernels' time does not depend on the values). Not a test.
 * Run: `npx tsx bench/native-heads.ts [--rounds N] [--isa NAME] [--threads T] [--shape 700m|2b] [--rows M]`.
 */
import type { StorageDType, TensorRef } from "../src/backends/backend.js";
import { ArrayBufferMemory } from "../src/backends/host-memory.js";
import { nativeAddon } from "../src/backends/native-cpu/addon.js";
import { createNativeCpuBackend, probeNativeCpu } from "../src/backends/native-cpu/index.js";
import { f32ToHalf } from "../src/quant/half.js";
import { QUANT_TRAITS } from "../src/quant/table.js";

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const ROUNDS = Number(arg("--rounds") ?? 11);
const THREADS = Number(arg("--threads") ?? 2);
const SHAPES = [
  { name: "700m", k: 1536, n: 32002, formats: ["f16", "q8_0", "q4_k", "q5_k", "q6_k"] },
  { name: "2b", k: 2560, n: 128256, formats: ["q8_0", "q4_k", "q5_k", "q6_k"] },
] as const;
type Format = "f16" | "q8_0" | "q4_k" | "q5_k" | "q6_k";
/** Byte offsets of each block's fp16 scales. */
const HALVES: Record<Format, readonly number[]> = { f16: [], q8_0: [0], q4_k: [0, 2], q5_k: [0, 2], q6_k: [208] };
const INTEGER: ReadonlySet<Format> = new Set(["q8_0", "q4_k", "q5_k", "q6_k"]);

const probe = probeNativeCpu();
if (!probe.available) {
  console.log(`native-cpu unavailable: ${probe.reason}`);
  process.exit(0);
}
const memory = new ArrayBufferMemory("bench-heads");
const ref = (dtype: StorageDType, shape: number[], bytes: Uint8Array): TensorRef => {
  const buffer = memory.alloc(bytes.byteLength);
  memory.write(buffer, bytes);
  return { buffer, dtype, shape };
};
let seed = 1;
const next = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;

/** Random rows of a format: random bytes, every fp16 (scale or value) replaced by a finite one. */
function randomRows(format: Format, n: number, k: number): Uint8Array {
  const t = QUANT_TRAITS[format];
  const bytes = new Uint8Array(t.byteSize(n, k) ?? 0);
  for (let i = 0; i < bytes.length; i += 4) {
    const v = Math.floor(next() * 2 ** 32);
    bytes[i] = v & 0xff;
    bytes[i + 1] = (v >>> 8) & 0xff;
    bytes[i + 2] = (v >>> 16) & 0xff;
    bytes[i + 3] = v >>> 24;
  }
  const halves = format === "f16" ? Array.from({ length: 128 }, (_, i) => 2 * i) : HALVES[format];
  const step = format === "f16" ? 256 : t.blockBytes;
  const h = f32ToHalf(0.01);
  for (let at = 0; at < bytes.length; at += step) {
    for (const s of halves) {
      bytes[at + s] = h & 0xff;
      bytes[at + s + 1] = h >>> 8;
    }
  }
  return bytes;
}

const median = (v: number[]): number => {
  const s = [...v].sort((a, b) => a - b);
  return ((s[(s.length - 1) >> 1] ?? 0) + (s[s.length >> 1] ?? 0)) / 2;
};

const best = nativeAddon()?.features().best ?? "scalar";
// The k-quant heads have AVX2 and AVX-512 VNNI kernels (AVX-512BW runs the AVX2 ones); scalar only when asked.
const x86 = ["avx2", "avx512vnni"].slice(0, best === "avx512vnni" ? 2 : best === "avx2" || best === "avx512bw" ? 1 : 0);
const isas = arg("--isa") !== undefined ? [arg("--isa") ?? ""] : x86.length > 0 ? x86 : [best];
const rowsList = arg("--rows") !== undefined ? [Number(arg("--rows"))] : [1, 8];
for (const shape of SHAPES.filter((s) => arg("--shape") === undefined || s.name === arg("--shape"))) {
  const { k, n } = shape;
  const weights = shape.formats.map((f) => ref(f, [n, k], randomRows(f, n, k)));
  for (const m of rowsList) {
    const x = ref("f32", [m, k], new Uint8Array(Float32Array.from({ length: m * k }, (_, i) => Math.sin(i)).buffer));
    const out = ref("f32", [m, n], new Uint8Array(4 * m * n));
    for (const isa of isas) {
      const backend = createNativeCpuBackend({ threads: THREADS, isa });
      const variants = shape.formats.flatMap((f, i) => {
        const w = weights[i] as TensorRef;
        const float = { label: `${f} float`, run: () => backend.kernels.matmulDense?.(x, w, out) };
        return INTEGER.has(f) ? [float, { label: `${f} int`, run: () => backend.kernels.matmulQ8I8?.(x, w, out) }] : [float];
      });
      const times = variants.map((): number[] => []);
      for (let r = 0; r < ROUNDS + 1; r++) {
        variants.forEach((v, i) => {
          const t0 = performance.now();
          v.run();
          if (r > 0) {
            times[i]?.push(performance.now() - t0);
          }
        });
      }
      console.log(`${shape.name} k ${k} n ${n}, ${m} row(s), ${backend.info.features[0]} (${THREADS} threads), ${ROUNDS} rounds:`);
      variants.forEach((v, i) => {
        const t = times[i] ?? [];
        const floatOf = v.label.endsWith(" int") ? variants.findIndex((u) => u.label === v.label.replace(" int", " float")) : -1;
        const ratio = floatOf >= 0 ? `  int/float ${(median(t) / median(times[floatOf] ?? [])).toFixed(2)}×` : "";
        console.log(`  ${v.label.padEnd(11)} median ${median(t).toFixed(2)} ms  min ${Math.min(...t).toFixed(2)} ms${ratio}`);
      });
      backend.dispose();
    }
  }
}
