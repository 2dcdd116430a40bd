/**
 * Prefix reuse in the server (src/engine/prompt-cache.ts, the Batcher's `promptCache`, the model host): a request
 * whose prompt starts with an earlier one's tokens copies that prefix's KV rows and prefills only the rest, with
 * exactly the tokens of a cold run (greedy and seeded, js and native-cpu); the reused length is whole aligned
 * prefill steps; the byte budget and least-recently-used eviction; status counters; config checks.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createActorSystem, type ActorRef, type ActorSystem } from "../../src/actors/index.js";
import type { BackendName } from "../../src/backends/backend.js";
import { createJsBackend } from "../../src/backends/js/index.js";
import { PROVIDERS } from "../../src/backends/providers.js";
import { probeOnce } from "../../src/backends/registry.js";
import { loadModel, type BitnetModel } from "../../src/engine/model.js";
import { commonPrefix, exactReuse, PromptCache } from "../../src/engine/prompt-cache.js";
import { PREFILL_STEP_TOKENS, prefill } from "../../src/model/bitnet/forward.js";
import { KvCache } from "../../src/model/bitnet/kv-cache.js";
import { makeBitnetFixture } from "../../src/model/bitnet/fixture.js";
import { configFromGguf } from "../../src/model/bitnet/config.js";
import { ggufWeightSource } from "../../src/model/bitnet/gguf-source.js";
import { loadWeights } from "../../src/model/bitnet/weights.js";
import { openGguf } from "../../src/formats/gguf/index.js";
import { modelActor, type ModelMsg, type ModelRequest } from "../../src/serve/index.js";
import { collect, lastOf, tokensOf } from "./helpers.js";

let dir = "";
let file = "";
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "barbell-prefix-"));
  file = path.join(dir, "m.gguf");
  await fs.writeFile(file, makeBitnetFixture({ hidden: 128, layers: 2, ffn: 256, vocab: 300, contextLength: 1024, seed: 17 }));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

const native = PROVIDERS.find((p) => p.name === "native-cpu");
const nativeProbe = native === undefined ? undefined : await probeOnce(native);
const BACKENDS: BackendName[] = nativeProbe?.available === true ? ["js", "native-cpu"] : ["js"];

/** Token ids of a made-up conversation turn. */
const ids = (n: number, salt: number): number[] => Array.from({ length: n }, (_, i) => (1 + i * 37 + salt * 101) % 299);

describe("the exact-reuse rule", () => {
  it("should reuse whole aligned prefill steps only, leaving at least one prompt token to run", () => {
    expect(commonPrefix([1, 2, 3], [1, 2, 4])).toBe(2);
    expect(exactReuse(127, 1000)).toBe(0);
    expect(exactReuse(300, 1000)).toBe(256);
    expect(exactReuse(1000, 1000)).toBe(896); // 999 usable
    expect(exactReuse(256, 256)).toBe(128);
    expect(exactReuse(5, 0)).toBe(0);
  });
});

describe("PromptCache", () => {
  let model: BitnetModel;
  const backend = createJsBackend();
  beforeAll(async () => {
    model = await loadModel(file, { backend });
  });
  afterAll(() => model.dispose());

  it("should keep prefixes within its budget, evict the least recently used first, and free everything", async () => {
    const rows = 2 * PREFILL_STEP_TOKENS;
    const live = backend.liveAllocations();
    using pc = new PromptCache(model.config, 1);
    using batcher = model.batcher({ promptCache: { cache: pc, namespace: "a" } });
    const prompt = (k: number): number[] => ids(rows + 10, k);
    await batcher.generate(prompt(0), { temperature: 0, maxTokens: 2 }).complete();
    // A compact copy of the 256 exact rows (the sequence's own cache had 268 positions).
    const entry = pc.bytes;
    expect(entry).toBe(rows * model.config.layers * 2 * model.config.kvHeads * model.config.headDim * 4);
    const count = Math.floor(pc.budgetBytes / entry); // prefixes that fit the budget
    expect(count).toBeGreaterThan(1);
    const prompts = Array.from({ length: count + 1 }, (_, k) => prompt(k));
    for (const p of prompts.slice(1, count)) {
      await batcher.generate(p, { temperature: 0, maxTokens: 2 }).complete();
    }
    expect(pc.stats()).toMatchObject({ entries: count, hits: 0, misses: count, evictions: 0 });
    expect(pc.bytes).toBeLessThanOrEqual(pc.budgetBytes);
    // The first prefix is used again (a hit), so the second is the least recently used when a new one comes.
    const again = await batcher.generate([...(prompts[0] ?? []), 5, 6], { temperature: 0, maxTokens: 2 }).complete();
    expect(again.cachedTokens).toBe(rows);
    await batcher.generate(prompts[count] ?? [], { temperature: 0, maxTokens: 2 }).complete();
    expect(pc.stats()).toMatchObject({ entries: count, hits: 1, evictions: 1, tokensReused: rows });
    expect(pc.bytes).toBeLessThanOrEqual(pc.budgetBytes);
    expect((await batcher.generate(prompts[1] ?? [], { temperature: 0, maxTokens: 2 }).complete()).cachedTokens).toBe(0); // evicted
    expect((await batcher.generate(prompts[0] ?? [], { temperature: 0, maxTokens: 2 }).complete()).cachedTokens).toBe(rows); // kept
    // Another namespace (another backend chain) never sees these rows.
    using other = model.batcher({ promptCache: { cache: pc, namespace: "b" } });
    expect((await other.generate(prompts[0] ?? [], { temperature: 0, maxTokens: 2 }).complete()).cachedTokens).toBe(0);
    pc.clear();
    expect(pc.stats()).toMatchObject({ entries: 0, bytes: 0 });
    batcher.dispose();
    other.dispose();
    expect(backend.liveAllocations()).toBe(live);
  });

  it("should keep nothing with a budget of 0, and refuse a budget out of range", async () => {
    using pc = new PromptCache(model.config, 0);
    using batcher = model.batcher({ promptCache: { cache: pc, namespace: "a" } });
    const p = ids(300, 1);
    await batcher.generate(p, { temperature: 0, maxTokens: 2 }).complete();
    expect((await batcher.generate(p, { temperature: 0, maxTokens: 2 }).complete()).cachedTokens).toBe(0);
    expect(pc.stats()).toMatchObject({ entries: 0, hits: 0 });
    expect(() => new PromptCache(model.config, -1)).toThrow(/budget -1 MiB/);
    expect(() => new PromptCache(model.config, 1.5)).toThrow(/budget 1.5 MiB/);
    expect(() => new PromptCache(model.config, 2 ** 40)).toThrow(/not an integer in 0\.\./);
  });

  it("should copy rows bit for bit (KvCache.prefixOf, copyPrefix, offer and restore)", async () => {
    await using f = await openGguf(file);
    const config = configFromGguf(f.metadata, f.tensor("token_embd.weight")?.dims[1]);
    using weights = await loadWeights(ggufWeightSource(f), config, { backend });
    const tokens = ids(400, 4);
    using cold = new KvCache(config, 1000, backend);
    prefill(config, weights, cold, tokens).dispose();
    const rows = async (c: KvCache, n: number): Promise<Float32Array[]> => {
      const all = await Promise.all([...c.keys, ...c.values].map((t) => t.toFloat32Async()));
      return all.map((a) => a.slice(0, n * config.kvHeads * config.headDim));
    };
    using compact = KvCache.prefixOf(config, cold, 384);
    expect(compact.capacity).toBe(384);
    expect(await rows(compact, 384)).toEqual(await rows(cold, 384));
    using part = new KvCache(config, 500, backend);
    part.copyPrefix(config, compact, 200);
    expect(part.length).toBe(200);
    expect(await rows(part, 200)).toEqual(await rows(cold, 200));
    using pc = new PromptCache(config, 16);
    expect(pc.offer("x", tokens.slice(0, 384), cold)).toBe(false); // 1,000 positions for 384 rows: a compact copy
    using target = new KvCache(config, 450, backend);
    expect(pc.restore("x", [...tokens, 9, 9], target)).toBe(384);
    expect(target.length).toBe(384);
    expect(await rows(target, 384)).toEqual(await rows(cold, 384));
    expect(pc.restore("y", tokens, target)).toBe(0); // another namespace
    expect(() => part.copyPrefix(config, compact, 385)).toThrow(/cannot take 385 positions of a cache holding 384/);
    using small = new KvCache(config, 100, backend);
    expect(() => small.copyPrefix(config, compact, 200)).toThrow(/cannot copy 200 positions into a cache of 100/);
  });
});

const REQUESTS: Record<string, Partial<ModelRequest>> = {
  greedy: { temperature: 0 },
  seeded: { temperature: 0.9, topK: 40, seed: 3 },
};

describe.each(BACKENDS)("prefix reuse in the model actor on %s", (backend) => {
  let system: ActorSystem | undefined;
  afterEach(async () => {
    await system?.stop();
    system = undefined;
  });

  function spawn(promptCacheMiB: number, parallel = 1): ActorRef<ModelMsg> {
    system ??= createActorSystem();
    return system.spawn(modelActor({ ladder: [{ name: "m", path: file }], backends: [backend], autotune: false, threads: 2, isolation: "in-process", parallel, promptCacheMiB }));
  }

  it.each(Object.keys(REQUESTS))("should answer the second turn of a conversation with a cold run's exact tokens, reusing the first (%s)", async (name) => {
    const sampling = REQUESTS[name] ?? {};
    const warm = spawn(64);
    const cold = spawn(0);
    const turn1 = ids(300, 7);
    const first = await collect(warm, { tokens: turn1, maxTokens: 12, ...sampling });
    expect(tokensOf(first)).toEqual(tokensOf(await collect(cold, { tokens: turn1, maxTokens: 12, ...sampling })));
    // The client resends the whole conversation: the first turn, the reply, a new message.
    const turn2 = [...turn1, ...tokensOf(first), ...ids(60, 8)];
    const got = await collect(warm, { tokens: turn2, maxTokens: 16, ...sampling });
    const want = await collect(cold, { tokens: turn2, maxTokens: 16, ...sampling });
    expect(tokensOf(got)).toEqual(tokensOf(want));
    expect(lastOf(got)).toMatchObject({ kind: "done", promptTokens: turn2.length });
    const status = (await warm.ask({ type: "queryStatus" })).worker?.promptCache;
    // The first turn's two full prefill steps (256 of its 300 tokens) were copied, not computed.
    expect(status).toMatchObject({ hits: 1, misses: 1, tokensReused: 256, entries: 1 });
    expect(status?.bytes).toBeGreaterThan(0);
    expect(status?.budgetBytes).toBe(64 * 2 ** 20);
    expect((await cold.ask({ type: "queryStatus" })).worker?.promptCache).toMatchObject({ hits: 0, entries: 0, bytes: 0, budgetBytes: 0 });
  });

  it("should give concurrent requests sharing a prefix a cold run's tokens in shared steps", async () => {
    const warm = spawn(64, 4);
    const cold = spawn(0, 1);
    const shared = ids(260, 9);
    await collect(warm, { tokens: shared, maxTokens: 2, temperature: 0 });
    const prompts = [0, 1, 2, 3].map((k) => [...shared, ...ids(20 + 7 * k, 10 + k)]);
    const got = await Promise.all(prompts.map((tokens) => collect(warm, { tokens, maxTokens: 10, temperature: 0 })));
    for (const [k, tokens] of prompts.entries()) {
      expect(tokensOf(got[k] ?? [])).toEqual(tokensOf(await collect(cold, { tokens, maxTokens: 10, temperature: 0 })));
    }
    const status = (await warm.ask({ type: "queryStatus" })).worker?.promptCache;
    expect(status).toMatchObject({ hits: 4, tokensReused: 4 * 256 });
  });
});

describe("prompt cache config", () => {
  it("should refuse a budget out of range with a typed error", () => {
    expect(() => modelActor({ ladder: [{ name: "m", path: "m.gguf" }], promptCacheMiB: -1 })).toThrow(
      expect.objectContaining({ code: "bad-config", message: expect.stringMatching(/promptCacheMiB must be an integer in 0\.\.65536, got -1/) }),
    );
    expect(() => modelActor({ ladder: [{ name: "m", path: "m.gguf" }], promptCacheMiB: 1e9 })).toThrow(/promptCacheMiB/);
  });

});
