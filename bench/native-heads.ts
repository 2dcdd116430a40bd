/**
 * The output head over each block format the native CPU backend decodes (matmulDense: F16, Q8_0, Q4_K, Q5_K,
 * Q6_K), one activation row (the decode GEMV) on the 700M shape (k 1536, n 32002), per ISA path, the formats
 * interleaved round by round so a loaded machine slows them alike. Prints the fastest round of each (ms) and its
 * time relative to F16. Run: `npx tsx bench/native-heads.ts [--rounds N] [--isa NAME] [--threads T]`. Not a test.
 */
import type { StorageDType, TensorRef } from "../src/backends/backend.js";
import { ArrayBufferMemory } from "../src/backends/host-memory.js";
import { nativeAddon } from "../src/backends/native-cpu/addon.js";
import { createNativeCpuBackend, probeNativeCpu } from "../src/backends/native-cpu/index.js";
import { QUANT_TRAITS } from "../src/quant/table.js";

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const ROUNDS = Number(arg("--rounds") ?? 15);
const THREADS = Number(arg("--threads") ?? 2);
const K = 1536;
const N = 32002;
const FORMATS = ["f16", "q8_0", "q4_k", "q5_k", "q6_k"] as const;

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
const values = Float32Array.from({ length: N * K }, () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 - 0.5) * 0.1);
const x = ref("f32", [1, K], new Uint8Array(Float32Array.from({ length: K }, (_, i) => Math.sin(i)).buffer));
const out = ref("f32", [1, N], new Uint8Array(4 * N));
const weights = FORMATS.map((f) => ref(f, [N, K], QUANT_TRAITS[f].encode(values, N, K)));

const best = nativeAddon()?.features().best ?? "scalar";
const order = best === "neon" ? ["scalar", "neon"] : ["scalar", "avx2", "avx512bw", "avx512vnni"];
const isas = arg("--isa") !== undefined ? [arg("--isa") ?? ""] : order.slice(0, order.indexOf(best) + 1);
for (const isa of isas) {
  const backend = createNativeCpuBackend({ threads: THREADS, isa });
  const fastest = FORMATS.map(() => Infinity);
  for (let r = 0; r < ROUNDS; r++) {
    weights.forEach((w, i) => {
      const t0 = performance.now();
      backend.kernels.matmulDense?.(x, w, out);
      fastest[i] = Math.min(fastest[i] ?? Infinity, performance.now() - t0);
    });
  }
  const f16 = fastest[0] ?? 1;
  console.log(
    `${backend.info.features[0]} (${THREADS} threads): ` +
      FORMATS.map((f, i) => `${f} ${(fastest[i] ?? 0).toFixed(2)} ms (${((fastest[i] ?? 0) / f16).toFixed(2)}×)`).join(", "),
  );
  backend.dispose();
}
