/**
 * Accuracy of the f16 and q8_0 KV caches against f32 on a real model: one teacher-forced forward over a text's
 * tokens (every position's logits, native CPU backend, one step so every position attends over rounded rows),
 * then per type the relative L2 distance of the logits to f32's, the share of positions whose argmax agrees,
 * and the mean |Δ log p| of the f32 argmax token; first the same for f32 run in two steps (summation order only: the
 * model's own sensitivity to float noise, through its per-token int8 activation quantization). Not a test.
 * Run: `npx tsx bench/kv-accuracy.ts <model.gguf> [--tokens 256] [--text file]` (default text: README.md).
 */
import fs from "node:fs";
import { resolveBackend } from "../src/backends/registry.js";
import { loadedFromGguf } from "../src/engine/load-gguf.js";
import { openGguf } from "../src/formats/gguf/index.js";
import { forward } from "../src/model/bitnet/forward.js";
import { KV_CACHE_DTYPES, KvCache } from "../src/model/bitnet/kv-cache.js";

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(name);
  return i > 0 ? (process.argv[i + 1] ?? fallback) : fallback;
};
const file = process.argv[2] ?? "";
const TOKENS = Number(arg("--tokens", "256"));
const backend = await resolveBackend({ backends: ["native-cpu"], threads: 1 });
const loaded = await (async () => {
  await using gguf = await openGguf(file);
  return await loadedFromGguf(gguf, backend, {}, file);
})();
const { config, weights, tokenizer } = loaded;
if (tokenizer === undefined) {
  throw new Error(`${file} has no tokenizer`);
}
const ids = [...tokenizer.encode(fs.readFileSync(arg("--text", "README.md"), "utf8")).slice(0, TOKENS)];
const V = config.vocabSize;
const logits = new Map<string, Float32Array>();
for (const dtype of KV_CACHE_DTYPES) {
  using cache = new KvCache(config, ids.length, backend, dtype);
  using out = forward(config, weights, cache, ids, { allLogits: true });
  logits.set(dtype, out.toFloat32());
}
{
  // The noise floor: an f32 cache, the same tokens in two steps (attention sums in another order, nothing rounded).
  using cache = new KvCache(config, ids.length, backend);
  const half = Math.floor(ids.length / 2);
  using a = forward(config, weights, cache, ids.slice(0, half), { allLogits: true });
  using b = forward(config, weights, cache, ids.slice(half), { allLogits: true });
  const both = new Float32Array(ids.length * config.vocabSize);
  both.set(a.toFloat32());
  both.set(b.toFloat32(), half * config.vocabSize);
  logits.set("f32 in two steps", both);
}
const base = logits.get("f32") as Float32Array;
const logSoftmax = (row: Float32Array, i: number): number => {
  const m = row.reduce((a, b) => Math.max(a, b), -Infinity);
  return (row[i] ?? 0) - m - Math.log(row.reduce((s, x) => s + Math.exp(x - m), 0));
};
console.log(`${file}: ${ids.length} tokens teacher-forced, logits of every position vs the f32 cache`);
console.log("| kv type | rel L2 of logits | argmax agrees | mean abs Δ log p(f32 argmax) |");
console.log("|---|---:|---:|---:|");
for (const dtype of ["f32 in two steps", ...KV_CACHE_DTYPES.slice(1)]) {
  const got = logits.get(dtype) as Float32Array;
  let num = 0;
  let den = 0;
  let agree = 0;
  let dlp = 0;
  for (let p = 0; p < ids.length; p++) {
    const a = base.subarray(p * V, (p + 1) * V);
    const b = got.subarray(p * V, (p + 1) * V);
    let ia = 0;
    let ib = 0;
    for (let j = 0; j < V; j++) {
      num += ((a[j] ?? 0) - (b[j] ?? 0)) ** 2;
      den += (a[j] ?? 0) ** 2;
      ia = (a[j] ?? 0) > (a[ia] ?? 0) ? j : ia;
      ib = (b[j] ?? 0) > (b[ib] ?? 0) ? j : ib;
    }
    agree += ia === ib ? 1 : 0;
    dlp += Math.abs(logSoftmax(a, ia) - logSoftmax(b, ia));
  }
  console.log(`| ${dtype} | ${Math.sqrt(num / den).toExponential(2)} | ${((100 * agree) / ids.length).toFixed(1)} % | ${(dlp / ids.length).toExponential(2)} |`);
}
weights.dispose();
