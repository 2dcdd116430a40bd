// native-cpu's every-block step (Backend.layers, native/cpu/layers.cc): the logits and KV caches of one call per
// step for all layers are the bits of one fused `bitnetBlock` call per layer (prefill, a second chunk, decode
// steps, and a batch step), and the prepared handle's resources: freed with disposed weights (a typed error,
// not a crash), refused after its own dispose, and the addon's checks on what a call passes.
import { readFileSync } from "node:fs";

import { describe, expect, it } from "vitest";
import type { Backend, BitnetBlockWeights, BitnetLayers, BitnetLayersStep } from "../../src/backends/backend.js";
import { createDispatcher } from "../../src/backends/dispatch.js";
import { createJsBackend } from "../../src/backends/js/index.js";
import { nativeAddon } from "../../src/backends/native-cpu/addon.js";
import { createNativeCpuBackend, probeNativeCpu } from "../../src/backends/native-cpu/index.js";
import { makeLayers } from "../../src/backends/native-cpu/layers.js";
import { ShapeError, UsageError } from "../../src/core/errors.js";
import { readGgufBytes } from "../../src/formats/gguf/index.js";
import { configFromGguf } from "../../src/model/bitnet/config.js";
import { makeBitnetFixture, type BitnetFixtureOptions } from "../../src/model/bitnet/fixture.js";
import { blockParams, forward, forwardBatch, fusedWeights } from "../../src/model/bitnet/forward.js";
import { ggufWeightSource } from "../../src/model/bitnet/gguf-source.js";
import { KvCache, type KvCacheDType } from "../../src/model/bitnet/kv-cache.js";
import { loadWeights } from "../../src/model/bitnet/weights.js";

const probe = probeNativeCpu();
const FIXTURES: BitnetFixtureOptions[] = [
  { arch: "bitnet-b1.58", weightType: "i2_s", seed: 21 }, // ReLU², grouped KV heads
  { arch: "bitnet", weightType: "tq2_0", hidden: 256, heads: 4, seed: 22 }, // SiLU, MHA
];

/** A view of `chain` whose every-block step counts its calls and disposals (or that has none: per layer). */
function counted(chain: Backend, on: boolean): { backend: Backend; stats: { runs: number; prepared: number; disposed: number } } {
  const stats = { runs: 0, prepared: 0, disposed: 0 };
  const step = chain.layers;
  const wrapped: BitnetLayersStep | undefined =
    step === undefined || !on
      ? undefined
      : {
          prepare: (layers, params) => {
            const inner = step.prepare(layers, params);
            stats.prepared++;
            return {
              run: (...a) => {
                stats.runs++;
                inner.run(...a);
              },
              runBatch: (...a) => {
                stats.runs++;
                inner.runBatch(...a);
              },
              dispose: () => {
                stats.disposed++;
                inner.dispose();
              },
            };
          },
        };
  const { layers: _unused, ...rest } = chain;
  return { backend: { ...rest, ...(wrapped === undefined ? {} : { layers: wrapped }) }, stats };
}

async function run(opts: BitnetFixtureOptions, chain: Backend, stack: boolean, dtype: KvCacheDType = "f32") {
  const file = readGgufBytes(makeBitnetFixture(opts));
  const config = configFromGguf(file.metadata);
  const { backend, stats } = counted(chain, stack);
  using weights = await loadWeights(ggufWeightSource(file), config, { backend });
  const caches = [0, 1, 2].map(() => new KvCache(config, 16, backend, dtype));
  try {
    const logits: Float32Array[] = [];
    // Sequence 0: prefill [0..4), a second chunk [4..7), two decode steps; sequences 1 and 2: short prompts.
    for (const [b, tokens] of [[0, [5, 17, 42, 100]], [0, [7, 3, 250]], [0, [9]], [0, [31]], [1, [8, 2]], [2, [77]]] as const) {
      using out = forward(config, weights, caches[b] as KvCache, tokens, { allLogits: true });
      logits.push(await out.toFloat32Async());
    }
    for (const tokens of [[64, 65, 66], [1, 2, 3]]) {
      using out = forwardBatch(config, weights, caches, tokens);
      logits.push(await out.toFloat32Async());
    }
    const kv = caches.flatMap((c) => [c.keys[config.layers - 1], c.values[0]]).map((t) => (t === undefined ? new Uint8Array() : backend.read(t.ref().buffer).slice()));
    return { logits, kv, stats };
  } finally {
    caches.forEach((c) => c.dispose());
  }
}

describe.skipIf(!probe.available)("native-cpu layers in one call", () => {
  const chain = createDispatcher([createNativeCpuBackend({ threads: 2 })], createJsBackend());

  it("should be offered by the dispatcher, and not with BARBELL_NATIVE_LAYERS=0", () => {
    expect(chain.layers).toBeDefined();
    const addon = nativeAddon();
    expect(addon).toBeDefined();
    const ctx = new (addon as NonNullable<typeof addon>).Context(1, "");
    try {
      expect(makeLayers(ctx, addon as NonNullable<typeof addon>, { BARBELL_NATIVE_LAYERS: "0" })).toBeUndefined();
    } finally {
      ctx.dispose();
    }
  });

  it.each(FIXTURES)("should give the bits of one fused block per layer on %o", async (opts) => {
    const one = await run(opts, chain, true);
    const per = await run(opts, chain, false);
    // 6 single-sequence steps and 2 batch steps, each one call; prepared once, freed with the weights' view.
    expect(one.stats).toMatchObject({ runs: 8, prepared: 1 });
    expect(per.stats.runs).toBe(0);
    expect(one.logits.length).toBe(per.logits.length);
    one.logits.forEach((l, i) => expect(Buffer.from(l.buffer).equals(Buffer.from((per.logits[i] as Float32Array).buffer))).toBe(true));
    one.kv.forEach((t, i) => expect(Buffer.from(t).equals(Buffer.from(per.kv[i] as Uint8Array))).toBe(true));
  });

  it.each(["f16", "q8_0"] as const)("should give the same bits with a %s KV cache", async (dtype) => {
    const opts = FIXTURES[1] ?? {};
    const one = await run(opts, chain, true, dtype);
    const per = await run(opts, chain, false, dtype);
    expect(one.stats).toMatchObject({ runs: 8, prepared: 1 });
    one.logits.forEach((l, i) => expect(Buffer.from(l.buffer).equals(Buffer.from((per.logits[i] as Float32Array).buffer))).toBe(true));
    one.kv.forEach((t, i) => expect(Buffer.from(t).equals(Buffer.from(per.kv[i] as Uint8Array))).toBe(true));
  });

  it("should free the handle and throw UsageError 'disposed' once the weights are disposed", async () => {
    const file = readGgufBytes(makeBitnetFixture(FIXTURES[0]));
    const config = configFromGguf(file.metadata);
    const { backend, stats } = counted(chain, true);
    const weights = await loadWeights(ggufWeightSource(file), config, { backend });
    using cache = new KvCache(config, 8, backend);
    forward(config, weights, cache, [1, 2]).dispose();
    weights.dispose();
    expect(() => forward(config, weights, cache, [3])).toThrow(UsageError);
    expect(stats).toMatchObject({ prepared: 1, disposed: 1 });
    // Fresh weights of the same file: prepared anew.
    using again = await loadWeights(ggufWeightSource(file), config, { backend });
    forward(config, again, cache, [3]).dispose();
    expect(stats.prepared).toBe(2);
  });

  it("should refuse a disposed handle, wrong cache lists and foreign handles with typed errors", async () => {
    const file = readGgufBytes(makeBitnetFixture(FIXTURES[0]));
    const config = configFromGguf(file.metadata);
    using weights = await loadWeights(ggufWeightSource(file), config, { backend: chain });
    using cache = new KvCache(config, 4, chain);
    const blocks = weights.layers.map(fusedWeights).filter((b) => b !== undefined);
    expect(blocks).toHaveLength(config.layers);
    const params = blockParams(config);
    const step = chain.layers as BitnetLayersStep;
    const layers: BitnetLayers = step.prepare(blocks, params);
    const h = chain.alloc(4 * config.hidden);
    const out = chain.alloc(4 * config.hidden);
    const pos = chain.alloc(4);
    const ref = (buffer: typeof h, dtype: "f32" | "i32", shape: number[]) => ({ buffer, dtype, shape });
    const ks = cache.keys.map((t) => t.ref());
    const vs = cache.values.map((t) => t.ref());
    expect(() => layers.run(ref(h, "f32", [1, config.hidden]), ref(pos, "i32", [1]), ks.slice(1), vs, 0, ref(out, "f32", [1, config.hidden]))).toThrow(ShapeError);
    expect(() => layers.run(ref(h, "f32", [1, config.hidden]), ref(pos, "i32", [1]), ks, vs, 4, ref(out, "f32", [1, config.hidden]))).toThrow(ShapeError);
    layers.run(ref(h, "f32", [1, config.hidden]), ref(pos, "i32", [1]), ks, vs, 0, ref(out, "f32", [1, config.hidden]));
    layers.dispose();
    layers.dispose();
    expect(() => layers.run(ref(h, "f32", [1, config.hidden]), ref(pos, "i32", [1]), ks, vs, 0, ref(out, "f32", [1, config.hidden]))).toThrow(UsageError);
    const addon = nativeAddon() as NonNullable<ReturnType<typeof nativeAddon>>;
    const ctx = new addon.Context(1, "");
    try {
      const f = new Float32Array(4);
      expect(() => ctx.layers?.({} as never, f, f, new Int32Array(1), [], [], Float64Array.of(1, 0, 1, 0))).toThrow(TypeError);
      expect(() => addon.layerStack?.(2, () => undefined)).toThrow(/not captured/);
      expect(() => addon.layerStack?.(0, () => undefined)).toThrow(TypeError);
    } finally {
      ctx.dispose();
    }
    [h, out, pos].forEach((b) => chain.free(b));
  });

  // Linux with transparent huge pages on request ("madvise" or "always"): the first step's rows of a cache in one
  // allocation land in 2 MiB pages (native/cpu/layers.cc prefault_rows), so a first pass over the context takes
  // one fault per 2 MiB, not 512.
  it.skipIf(!hugePagesOnRequest())("should back the caches' first rows with transparent huge pages", async () => {
    const file = readGgufBytes(makeBitnetFixture(FIXTURES[0]));
    const config = configFromGguf(file.metadata);
    using weights = await loadWeights(ggufWeightSource(file), config, { backend: chain });
    const rowBytes = 4 * config.kvHeads * config.headDim;
    // Every layer cache ≥ 4 MiB, so the 2 MiB window holding the first row of each cache after the first lies
    // wholly inside the allocation.
    const capacity = Math.ceil((4 << 20) / rowBytes);
    using cache = new KvCache(config, capacity, chain);
    const before = anonHugeKiB();
    forward(config, weights, cache, [5, 17]).dispose();
    const one = anonHugeKiB() - before;
    expect(one).toBeGreaterThanOrEqual(2048 * (2 * config.layers - 1));
    // A batch step (one token of each of two sequences) fills its rows' windows the same way.
    const caches = [0, 1].map(() => new KvCache(config, capacity, chain));
    try {
      forwardBatch(config, weights, caches, [3, 4]).dispose();
      expect(anonHugeKiB() - before - one).toBeGreaterThanOrEqual(2 * 2048 * (2 * config.layers - 1));
    } finally {
      caches.forEach((c) => c.dispose());
    }
  });
});

function hugePagesOnRequest(): boolean {
  try {
    return /\[(always|madvise)\]/.test(readFileSync("/sys/kernel/mm/transparent_hugepage/enabled", "utf8")) && anonHugeKiB() >= 0;
  } catch {
    return false;
  }
}

/** This process's anonymous memory in transparent huge pages, in KiB (Linux). */
function anonHugeKiB(): number {
  const m = /AnonHugePages:\s+(\d+) kB/.exec(readFileSync("/proc/self/smaps_rollup", "utf8"));
  return m === null ? -1 : Number(m[1]);
}
