/**
 * Decode speed at depth per KV cache type (issue 15 point 2): tg (greedy-free decode steps of one sequence, native
 * CPU backend) from an empty context and after `--depth` positions (default 4,096), for f32, f16 and q8_0 caches.
 * The depth rows are filled untimed with real, non-zero rows (one short prefill's rows tiled across the depth, in
 * the cache's own encoding: attention's cost does not depend on the values, but untouched zero pages would read
 * faster than a filled cache). Rounds alternate the cache types so a loaded machine slows them alike; the median
 * per type is printed with the ratio tg(depth)/tg(empty). The model's context must hold depth + tokens + 1
 * (≥ 4,160 for the defaults): generate one with makeBitnetFixture({ ...SHAPES["2b"], contextLength: 8192 }) (scripts/shapes.ts,
 * src/model/bitnet/fixture.ts) or `barbell fixture -c 8192 …`. Not a test.
 * Run: `npx tsx bench/kv-depth.ts <model.gguf> [--threads 1] [--depth 4096] [--tokens 64] [--rounds 3] [--types f32,f16,q8_0]`.
 */
import { resolveBackend } from "../src/backends/registry.js";
import { openGguf } from "../src/formats/gguf/index.js";
import { loadedFromGguf } from "../src/engine/load-gguf.js";
import { forward, prefill } from "../src/model/bitnet/forward.js";
import { KvCache, kvBytesPerPosition, parseKvCacheDType, type KvCacheDType } from "../src/model/bitnet/kv-cache.js";

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(name);
  return i > 0 ? (process.argv[i + 1] ?? fallback) : fallback;
};
const file = process.argv[2] ?? "";
const THREADS = Number(arg("--threads", "1"));
const DEPTH = Number(arg("--depth", "4096"));
const TOKENS = Number(arg("--tokens", "64"));
const ROUNDS = Number(arg("--rounds", "3"));
const TYPES = arg("--types", "f32,f16,q8_0").split(",").map(parseKvCacheDType);
const FILL = 64; // positions prefilled for real, then tiled over the depth

const backend = await resolveBackend({ backends: ["native-cpu"], threads: THREADS });
const loaded = await (async () => {
  await using gguf = await openGguf(file);
  return await loadedFromGguf(gguf, backend, {}, file);
})();
const { config, weights } = loaded;
if (config.contextLength < DEPTH + TOKENS + 1) {
  throw new Error(`the model's context ${config.contextLength} holds no ${DEPTH} + ${TOKENS} + 1 positions`);
}

/** A cache of `dtype` holding `depth` filled positions. */
function cacheAt(dtype: KvCacheDType, depth: number): KvCache {
  const cache = new KvCache(config, DEPTH + TOKENS + 1, backend, dtype);
  if (depth === 0) {
    return cache;
  }
  prefill(config, weights, cache, Array.from({ length: FILL }, (_, i) => (i * 7919) % config.vocabSize)).dispose();
  const rowBytes = cache.bytesPerPosition / (2 * config.layers);
  for (const t of [...cache.keys, ...cache.values]) {
    const block = backend.read(t.ref().buffer, 0, FILL * rowBytes).slice();
    for (let at = FILL; at < depth; at += FILL) {
      backend.write(t.ref().buffer, block.subarray(0, Math.min(FILL, depth - at) * rowBytes), at * rowBytes);
    }
  }
  cache.advance(depth - FILL);
  return cache;
}

/** Decode steps per second of TOKENS steps from `depth`. */
function tg(dtype: KvCacheDType, depth: number): number {
  using cache = cacheAt(dtype, depth);
  forward(config, weights, cache, [1]).dispose(); // warm-up step (untimed)
  const t0 = performance.now();
  for (let i = 0; i < TOKENS; i++) {
    forward(config, weights, cache, [(i * 31) % config.vocabSize]).dispose();
  }
  return (TOKENS * 1000) / (performance.now() - t0);
}

const results = new Map<string, number[]>();
for (let r = 0; r < ROUNDS; r++) {
  for (const dtype of r % 2 === 0 ? TYPES : [...TYPES].reverse()) {
    for (const depth of [0, DEPTH]) {
      const key = `${dtype}@${depth}`;
      results.set(key, [...(results.get(key) ?? []), tg(dtype, depth)]);
    }
  }
  process.stderr.write(`round ${r + 1}/${ROUNDS} done\n`);
}
const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
console.log(`${file}: tg${TOKENS} tokens/s, native-cpu ${THREADS} thread(s), median of ${ROUNDS} interleaved rounds`);
console.log("| kv type | cache MiB at depth | tg from empty | tg after depth | ratio |");
console.log("|---|---:|---:|---:|---:|");
for (const dtype of TYPES) {
  const empty = median(results.get(`${dtype}@0`) ?? []);
  const deep = median(results.get(`${dtype}@${DEPTH}`) ?? []);
  const mib = (DEPTH * kvBytesPerPosition(config, dtype)) / 2 ** 20;
  console.log(`| ${dtype} | ${mib.toFixed(0)} | ${empty.toFixed(2)} | ${deep.toFixed(2)} (d${DEPTH}) | ${(deep / empty).toFixed(3)} |`);
}
weights.dispose();
