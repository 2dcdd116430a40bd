import { describe, expect, it } from "vitest";
import { createJsBackend } from "../../src/index.js";
import { readGgufBytes } from "../../src/formats/gguf/index.js";
import { configFromGguf } from "../../src/model/bitnet/config.js";
import { makeBitnetFixture, type BitnetFixtureOptions } from "../../src/model/bitnet/fixture.js";
import { extend, forward, forwardBatch, prefill, PREFILL_STEP_TOKENS } from "../../src/model/bitnet/forward.js";
import { KvCache } from "../../src/model/bitnet/kv-cache.js";
import { ggufWeightSource } from "../../src/model/bitnet/gguf-source.js";
import { loadWeights } from "../../src/model/bitnet/weights.js";
import { referenceLogits } from "../reference/forward64.js";

const backend = createJsBackend();

async function load(opts: BitnetFixtureOptions) {
  const bytes = makeBitnetFixture(opts);
  const file = readGgufBytes(bytes);
  const config = configFromGguf(file.metadata);
  const weights = await loadWeights(ggufWeightSource(file), config, { backend });
  return { bytes, config, weights };
}

function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += ((a[i] ?? 0) - (b[i] ?? 0)) ** 2;
    den += (b[i] ?? 0) ** 2;
  }
  return Math.sqrt(num / den);
}

describe("BitNet forward pass", () => {
  const cases: BitnetFixtureOptions[] = [
    { arch: "bitnet-b1.58", weightType: "i2_s", seed: 1 },
    { arch: "bitnet", weightType: "tq2_0", hidden: 256, heads: 4, seed: 2 },
    { arch: "bitnet-25", weightType: "tq1_0", hidden: 256, embeddingType: "q8_0", tied: false, seed: 3 },
    { arch: "bitnet-b1.58", weightType: "bf16", embeddingType: "bf16", seed: 5 },
    { arch: "bitnet", weightType: "f16", hidden: 256, embeddingType: "q6_k", tied: false, seed: 6 },
  ];
  it.each(cases)("should match the float64 reference logits of %o", async (opts) => {
    const { bytes, config, weights } = await load(opts);
    const tokens = [5, 17, 42, 100, 7, 3];
    const want = await referenceLogits(bytes, tokens, { quantizeActivations: true });
    {
      using cache = new KvCache(config, 32, backend);
      using logits = forward(config, weights, cache, tokens, { allLogits: true });
      const got = logits.toFloat32();
      for (let p = 0; p < tokens.length; p++) {
        const row = got.subarray(p * config.vocabSize, (p + 1) * config.vocabSize);
        expect(relL2(row, want[p] ?? [])).toBeLessThan(1e-4);
      }
    }
    weights.dispose();
    expect(backend.liveAllocations()).toBe(0);
  });

  it("should give the same last logits from one prefill as from token-by-token decoding", async () => {
    const { config, weights } = await load({ seed: 4 });
    const tokens = [1, 2, 3, 4, 5];
    using c1 = new KvCache(config, 8, backend);
    using c2 = new KvCache(config, 8, backend);
    using all = forward(config, weights, c1, tokens);
    let last;
    for (const t of tokens) {
      last?.dispose();
      last = forward(config, weights, c2, [t]);
    }
    expect(c2.length).toBe(5);
    expect(relL2(all.toFloat32(), last?.toFloat32() ?? [])).toBeLessThan(1e-6);
    last?.dispose();
    weights.dispose();
  });

  it("should prefill a long prompt in bounded steps with the logits of one step", async () => {
    const { config, weights } = await load({ seed: 8, contextLength: 512 });
    const tokens = Array.from({ length: PREFILL_STEP_TOKENS * 2 + 37 }, (_, i) => (i * 31) % config.vocabSize);
    using c1 = new KvCache(config, tokens.length, backend);
    using c2 = new KvCache(config, tokens.length, backend);
    using whole = forward(config, weights, c1, tokens);
    using chunked = prefill(config, weights, c2, tokens);
    expect(c2.length).toBe(tokens.length);
    expect(chunked.shape).toEqual([1, config.vocabSize]);
    expect(relL2(chunked.toFloat32(), whole.toFloat32())).toBeLessThan(1e-6);
    expect(() => prefill(config, weights, c2, [1])).toThrow(/do not fit/);
    weights.dispose();
  });

  it("should run the output head once per prompt, on its last step (extend fills the cache without it)", async () => {
    const { config, weights } = await load({ seed: 8, contextLength: 512 });
    // Every matmul kernel but the blocks' ternary / binary projections is the head's (attention has its own).
    const kernels = backend.kernels as unknown as Record<string, (...a: unknown[]) => unknown>;
    const headKernels = Object.keys(kernels).filter((k) => k.startsWith("matmul") && !/Ternary|Binary/.test(k));
    const saved = headKernels.map((k) => [k, kernels[k]] as const);
    let calls = 0;
    for (const [k, f] of saved) {
      kernels[k] = (...a: unknown[]) => {
        calls++;
        return f?.(...a);
      };
    }
    try {
      const tokens = Array.from({ length: PREFILL_STEP_TOKENS * 2 + 37 }, (_, i) => (i * 31) % config.vocabSize);
      using cache = new KvCache(config, tokens.length + 1, backend);
      using logits = prefill(config, weights, cache, tokens);
      expect(logits.shape).toEqual([1, config.vocabSize]);
      expect(calls).toBe(1);
      extend(config, weights, cache, [5]);
      expect(cache.length).toBe(tokens.length + 1);
      expect(calls).toBe(1);
    } finally {
      for (const [k, f] of saved) {
        kernels[k] = f as (...a: unknown[]) => unknown;
      }
      weights.dispose();
    }
  });
});

describe("batched decode steps", () => {
  it("should give each sequence the logits it gets alone, at different lengths", async () => {
    const { config, weights } = await load({ arch: "bitnet-b1.58", seed: 9 });
    const prompts = [[1, 2, 3], [7], [9, 8, 7, 6, 5]];
    const alone = prompts.map(() => new KvCache(config, 16, backend));
    const batched = prompts.map(() => new KvCache(config, 16, backend));
    try {
      prompts.forEach((p, b) => {
        forward(config, weights, alone[b] as KvCache, p).dispose();
        forward(config, weights, batched[b] as KvCache, p).dispose();
      });
      for (const step of [[11, 12, 13], [21, 22, 23]]) {
        using together = forwardBatch(config, weights, batched, step);
        expect(together.shape).toEqual([3, config.vocabSize]);
        const rows = together.toFloat32();
        step.forEach((t, b) => {
          using one = forward(config, weights, alone[b] as KvCache, [t]);
          const row = rows.subarray(b * config.vocabSize, (b + 1) * config.vocabSize);
          expect(relL2(row, one.toFloat32())).toBeLessThan(1e-6);
        });
      }
      expect(batched.map((c) => c.length)).toEqual([5, 3, 7]);
      expect(() => forwardBatch(config, weights, [batched[0] as KvCache, batched[0] as KvCache], [1, 2])).toThrow(/twice/);
      expect(() => forwardBatch(config, weights, batched, [1, 2])).toThrow(/3 caches/);
    } finally {
      [...alone, ...batched].forEach((c) => c.dispose());
      weights.dispose();
    }
    expect(backend.liveAllocations()).toBe(0);
  });
});
