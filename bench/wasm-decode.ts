/**
 * End-to-end greedy decode speed of the wasm-simd backend per thread count, against the native CPU backend
 * in the same process (runs interleaved, medians reported: the machine may be noisy). Not a test:
 *
 *   npx tsx bench/wasm-decode.ts [model.gguf] [--threads 1,2] [--runs 5] [--tokens 64]
 *
 * Default model: bench/.models/bitnet-700m-i2s.gguf (make it with
 * `npx tsx scripts/gen-model.ts 700m bench/.models/bitnet-700m-i2s.gguf`).
 */
import type { BackendName } from "../src/backends/backend.js";
import { disposeBackends } from "../src/backends/registry.js";
import { loadModel, type BitnetModel } from "../src/engine/model.js";

const args = process.argv.slice(2);
const flag = (name: string, fallback: string): string => {
  const at = args.indexOf(name);
  return at >= 0 ? (args[at + 1] ?? fallback) : fallback;
};
const file = args.find((a, i) => !a.startsWith("--") && !(args[i - 1] ?? "").startsWith("--")) ?? "bench/.models/bitnet-700m-i2s.gguf";
const threadCounts = flag("--threads", "1,2").split(",").map(Number);
const runs = Number(flag("--runs", "5"));
const maxTokens = Number(flag("--tokens", "64"));

interface Setup {
  readonly label: string;
  readonly model: BitnetModel;
  readonly decode: number[];
  readonly prefill: number[];
}

const median = (v: readonly number[]): number => [...v].sort((a, b) => a - b)[v.length >> 1] ?? Number.NaN;

const setups: Setup[] = [];
const add = async (label: string, backends: readonly BackendName[], threads: number): Promise<void> => {
  const fallbacks = new Set<string>();
  try {
    const model = await loadModel(file, {
      backends,
      threads,
      autotune: false,
      onFallback: (e) => fallbacks.add(`${e.kernel}→${e.to}`),
      onUnavailable: (name, reason) => console.log(`${name} unavailable: ${reason}`),
    });
    setups.push({ label, model, decode: [], prefill: [] });
    // One warm-up generation (tier-up of the wasm code, page faults of the weights).
    await model.generate([1, 2, 3, 4], { temperature: 0, maxTokens: 8, stopTokens: [] }).complete();
    if (fallbacks.size > 0) {
      console.log(`${label}: kernels that fell back: ${[...fallbacks].join(", ")}`);
    }
  } catch (error) {
    console.log(`${label}: cannot load (${error instanceof Error ? error.message : String(error)})`);
  }
};

for (const t of threadCounts) {
  await add(`wasm-simd ${t}T`, ["wasm-simd", "js"], t);
}
for (const t of threadCounts) {
  await add(`native-cpu ${t}T`, ["native-cpu", "js"], t);
}

const prompt = [1, 450, 4996, 17354, 1701, 432, 17204, 975, 278, 17366, 11203];
for (let r = 0; r < runs; r++) {
  for (const s of setups) {
    const result = await s.model.generate(prompt, { temperature: 0, maxTokens, stopTokens: [] }).complete();
    s.decode.push((result.tokens.length - 1) / (result.decodeMs / 1000));
    s.prefill.push(result.promptTokens / (result.prefillMs / 1000));
  }
}

console.log(`| ${file} | decode t/s (median of ${runs}) | decode t/s (best) | prefill t/s (median) |`);
console.log("|---|---|---|---|");
for (const s of setups) {
  const best = Math.max(...s.decode);
  console.log(`| ${s.label} | ${median(s.decode).toFixed(2)} | ${best.toFixed(2)} | ${median(s.prefill).toFixed(1)} |`);
}
for (const s of setups) {
  s.model.dispose();
}
await disposeBackends();
