/**
 * Fused steps (FusedKernels): a backend's one-call BitNet block must compute exactly what its own
 * kernels compute when the forward pass composes them (same kernels, same order: bit-identical logits
 * and KV cache), and stay within the float tolerance of the JS reference. Prefill, a second prefill
 * chunk at pos0 > 0 and token-by-token decoding are all checked, on SiLU and ReLU² archs, with MHA
 * and grouped KV heads. Backends without fused steps are listed as skipped with the reason.
 *
 * The composite ops of the op table (src/backends/ops.ts: attention, bitnetBlock, bitnetBlockBatch) are
 * also checked kernel by kernel: every backend's own kernel against the decomposition the table
 * declares, run on the same backend's kernels, with the table's tolerance ("exact" for the blocks).
 */
import { afterAll, describe, expect, it } from "vitest";
import type { Backend, BitnetBlockParams, BitnetBlockWeights, Kernels, TensorRef } from "../../src/backends/backend.js";
import { tracing } from "../../src/backends/decorators/trace.js";
import { createDispatcher, decorate, type OpName } from "../../src/backends/dispatch.js";
import { runDecomposition } from "../../src/backends/decompositions.js";
import { createJsBackend } from "../../src/backends/js/index.js";
import { FUSED_OPS, KERNEL_OPS } from "../../src/backends/ops.js";
import { PROVIDERS } from "../../src/backends/providers.js";
import { probeOnce, resolveBackend } from "../../src/backends/registry.js";
import { ValueError } from "../../src/core/errors.js";
import { readGgufBytes } from "../../src/formats/gguf/index.js";
import { configFromGguf } from "../../src/model/bitnet/config.js";
import { makeBitnetFixture, type BitnetFixtureOptions } from "../../src/model/bitnet/fixture.js";
import { forward, forwardBatch } from "../../src/model/bitnet/forward.js";
import { ggufWeightSource } from "../../src/model/bitnet/gguf-source.js";
import { KvCache } from "../../src/model/bitnet/kv-cache.js";
import { loadWeights } from "../../src/model/bitnet/weights.js";
import { tensor, tensorFromBytes } from "../../src/tensor/tensor.js";
import { CASES, type ConformanceCase } from "./cases.js";
import { BATCH_SHAPES, BLOCK_SHAPES, blockInputs, f32Of, f32OfAsync, type BlockInputs, type BlockShape } from "./composite-cases.js";

const FIXTURES: BitnetFixtureOptions[] = [
  { arch: "bitnet-b1.58", weightType: "i2_s", seed: 11 }, // ReLU², grouped KV heads
  { arch: "bitnet", weightType: "tq2_0", hidden: 256, heads: 4, seed: 12 }, // SiLU, MHA
  { arch: "bitnet-25", weightType: "tq1_0", hidden: 256, embeddingType: "q8_0", tied: false, seed: 13 },
];

function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += ((a[i] ?? 0) - (b[i] ?? 0)) ** 2;
    den += (b[i] ?? 0) ** 2;
  }
  return Math.sqrt(num / den);
}

/** Logits of: prefill [0..4), a second chunk [4..7), then 3 single-token steps; plus the final K cache. */
async function run(opts: BitnetFixtureOptions, backend: Backend): Promise<{ logits: Float32Array[]; keys: Float32Array }> {
  const file = readGgufBytes(makeBitnetFixture(opts));
  const config = configFromGguf(file.metadata);
  using weights = await loadWeights(ggufWeightSource(file), config, { backend });
  using cache = new KvCache(config, 16, backend);
  const steps = [[5, 17, 42, 100], [7, 3, 250], [9], [31], [64]];
  const logits: Float32Array[] = [];
  for (const tokens of steps) {
    using out = forward(config, weights, cache, tokens, { allLogits: true });
    logits.push(await out.toFloat32Async());
  }
  return { logits, keys: (await cache.keys[config.layers - 1]?.toFloat32Async()) ?? new Float32Array() };
}

for (const provider of PROVIDERS) {
  describe(`${provider.name} fused steps`, async () => {
    const probe = await probeOnce(provider);
    if (!probe.available) {
      it.skip(`${provider.name} is unavailable here: ${probe.reason}`, () => undefined);
      return;
    }
    const chain = await resolveBackend({ backends: [provider.name, "js"], autotune: false });
    const fused = chain.fused?.bitnetBlock;
    if (fused === undefined) {
      it.skip(`${provider.name} offers no fused bitnetBlock (the forward pass composes its kernels)`, () => undefined);
      return;
    }
    // The same chain without its fused steps: the forward pass then composes the kernels.
    const { fused: _unused, ...composed } = chain;

    it.each(FIXTURES)("should equal the composed kernels bit for bit on %o", async (opts) => {
      const a = await run(opts, chain);
      const b = await run(opts, composed);
      expect(a.logits.length).toBe(b.logits.length);
      a.logits.forEach((row, i) => expect(Buffer.from(row.buffer).equals(Buffer.from(b.logits[i]?.buffer ?? new ArrayBuffer(0)))).toBe(true));
      expect(Buffer.from(a.keys.buffer).equals(Buffer.from(b.keys.buffer))).toBe(true);
      expect(chain.liveAllocations()).toBe(0);
    });

    it.each(FIXTURES)("should run batched decode steps (one sequence per row) bit for bit like the composed kernels on %o", async (opts) => {
      const file = readGgufBytes(makeBitnetFixture(opts));
      const config = configFromGguf(file.metadata);
      const runBatch = async (backend: Backend) => {
        using weights = await loadWeights(ggufWeightSource(file), config, { backend });
        const caches = [0, 1, 2].map(() => new KvCache(config, 16, backend));
        try {
          // Different lengths per sequence, then two batched steps.
          [[5, 17, 42], [7], [3, 250, 9, 31, 64]].forEach((p, b) => forward(config, weights, caches[b] as KvCache, p).dispose());
          const rows: Float32Array[] = [];
          for (const step of [[11, 12, 13], [21, 22, 23]]) {
            using out = forwardBatch(config, weights, caches, step);
            rows.push(await out.toFloat32Async());
          }
          return { rows, keys: await Promise.all(caches.map(async (c) => (await c.keys[config.layers - 1]?.toFloat32Async()) ?? new Float32Array())) };
        } finally {
          caches.forEach((c) => c.dispose());
        }
      };
      const a = await runBatch(chain);
      const b = await runBatch(composed);
      a.rows.forEach((row, i) => expect(Buffer.from(row.buffer).equals(Buffer.from(b.rows[i]?.buffer ?? new ArrayBuffer(0)))).toBe(true));
      a.keys.forEach((k, i) => expect(Buffer.from(k.buffer).equals(Buffer.from(b.keys[i]?.buffer ?? new ArrayBuffer(0)))).toBe(true));
      expect(chain.liveAllocations()).toBe(0);
    });

    it.each(FIXTURES)("should stay within rel L2 1e-4 of the JS reference on %o", async (opts) => {
      const js = createJsBackend();
      const a = await run(opts, chain);
      const b = await run(opts, js);
      a.logits.forEach((row, i) => expect(relL2(row, b.logits[i] ?? [])).toBeLessThan(1e-4));
      expect(js.liveAllocations()).toBe(0);
    });

    it("should be used by the forward pass (one call per layer and step, no ternary matmul)", async () => {
      // The fused block is an op of the dispatcher like any kernel: a tracing decorator sees both.
      const ops = new Map<OpName, number>();
      const counting = decorate(chain, tracing((op) => ops.set(op, (ops.get(op) ?? 0) + 1)));
      const opts = FIXTURES[0] ?? {};
      const file = readGgufBytes(makeBitnetFixture(opts));
      const config = configFromGguf(file.metadata);
      using weights = await loadWeights(ggufWeightSource(file), config, { backend: counting });
      using cache = new KvCache(config, 8, counting);
      using _a = forward(config, weights, cache, [1, 2, 3]);
      using _b = forward(config, weights, cache, [4]);
      expect(ops.get("bitnetBlock")).toBe(2 * config.layers);
      expect(ops.get("matmulTernaryI8")).toBeUndefined();
      // Tracing needs the per-op activations, so it composes the kernels instead.
      using _c = forward(config, weights, cache, [5], { trace: () => undefined });
      expect(ops.get("bitnetBlock")).toBe(2 * config.layers);
      expect(ops.get("matmulTernaryI8")).toBe(7 * config.layers);
    });

    // WebGPU offers the single-sequence block only (its batch rows' positions live on the device).
    it.skipIf(chain.fused?.bitnetBlockBatch === undefined)("should use the batched block for batched steps and reject mismatched caches", async () => {
      const batched = chain.fused?.bitnetBlockBatch;
      expect(batched).toBeDefined();
      let calls = 0;
      let matmuls = 0;
      const counting: Backend = {
        ...chain,
        kernels: { ...chain.kernels, matmulTernaryI8: (...args) => (matmuls++, chain.kernels.matmulTernaryI8(...args)) },
        fused: { ...chain.fused, bitnetBlockBatch: (...args) => (calls++, batched?.(...args)) },
        layers: undefined, // one block call per layer (the every-block step: test/backends/native-layers.test.ts)
      };
      const opts = FIXTURES[0] ?? {};
      const file = readGgufBytes(makeBitnetFixture(opts));
      const config = configFromGguf(file.metadata);
      using weights = await loadWeights(ggufWeightSource(file), config, { backend: counting });
      const caches = [0, 1].map(() => new KvCache(config, 4, counting));
      try {
        forwardBatch(config, weights, caches, [1, 2]).dispose();
        expect(calls).toBe(config.layers);
        expect(matmuls).toBe(0);
        const layer = weights.layers[0];
        const h = tensor(new Float32Array(2 * config.hidden), ["seq", "embed"], [2, config.hidden], { backend: chain });
        const out = tensor(new Float32Array(2 * config.hidden), ["seq", "embed"], [2, config.hidden], { backend: chain });
        const far = tensor(new Int32Array([1, 4]), ["seq"], [2], { backend: chain }); // row 1 at 4: past a capacity of 4
        try {
          const w = {
            attnNorm: layer?.attnNorm.ref(), attnSubNorm: layer?.attnSubNorm.ref(), ffnNorm: layer?.ffnNorm.ref(), ffnSubNorm: layer?.ffnSubNorm.ref(),
            wq: layer?.wq.ref(), wk: layer?.wk.ref(), wv: layer?.wv.ref(), wo: layer?.wo.ref(), wGate: layer?.wGate.ref(), wUp: layer?.wUp.ref(), wDown: layer?.wDown.ref(),
          } as BitnetBlockWeights;
          const params: BitnetBlockParams = { heads: config.heads, kvHeads: config.kvHeads, headDim: config.headDim, eps: config.rmsEps, ropeTheta: config.ropeTheta, attnScale: 1 / Math.sqrt(config.headDim), activation: config.activation };
          const ks = caches.map((c) => c.keys[0]?.ref() as TensorRef);
          const vs = caches.map((c) => c.values[0]?.ref() as TensorRef);
          expect(() => batched?.(h.ref(), far.ref(), ks, vs, w, params, out.ref())).toThrow(/does not fit/);
          expect(() => batched?.(h.ref(), far.ref(), ks.slice(0, 1), vs, w, params, out.ref())).toThrow(/caches/);
        } finally {
          [h, out, far].forEach((t) => t.dispose());
        }
      } finally {
        caches.forEach((c) => c.dispose());
      }
    });

    describe("hostile arguments", () => {
      const E = 64;
      const H = 2;
      const D = 32;
      const F = 128;
      const params: BitnetBlockParams = { heads: H, kvHeads: H, headDim: D, eps: 1e-5, ropeTheta: 10000, attnScale: 1 / Math.sqrt(D), activation: "relu2" };
      const zeros = (dims: string[], shape: number[]) => tensor(new Float32Array(shape.reduce((x, y) => x * y, 1)), dims, shape, { backend: chain });
      const ternary = (rows: number, cols: number): TensorRef => {
        const buffer = chain.alloc(rows * Math.ceil(cols / 4));
        chain.write(buffer, new Uint8Array(rows * Math.ceil(cols / 4)).fill(0b01010101)); // every trit 0
        return { buffer, dtype: "ternary", shape: [rows, cols], scale: 1 };
      };
      function setup() {
        const w: BitnetBlockWeights = {
          attnNorm: zeros(["e"], [E]).ref(),
          attnSubNorm: zeros(["q"], [H * D]).ref(),
          ffnNorm: zeros(["e"], [E]).ref(),
          ffnSubNorm: zeros(["f"], [F]).ref(),
          wq: ternary(H * D, E),
          wk: ternary(H * D, E),
          wv: ternary(H * D, E),
          wo: ternary(E, H * D),
          wGate: ternary(F, E),
          wUp: ternary(F, E),
          wDown: ternary(E, F),
        };
        return w;
      }
      const freeAll = (refs: TensorRef[]) => refs.forEach((r) => chain.free(r.buffer));

      it("should reject a cache too small for pos0 + seq, a non-ternary projection and out aliasing h", () => {
        const w = setup();
        const h = zeros(["s", "e"], [2, E]);
        const out = zeros(["s", "e"], [2, E]);
        const pos = tensorFromBytes(chain, "i32", ["s"], [2], new Uint8Array(Int32Array.of(0, 1).buffer));
        const k = zeros(["c", "kv", "d"], [4, H, D]);
        const v = zeros(["c", "kv", "d"], [4, H, D]);
        try {
          expect(() => fused(h.ref(), pos.ref(), k.ref(), v.ref(), 3, w, params, out.ref())).toThrow(/inconsistent sizes|exceeds|bounds/);
          expect(() => fused(h.ref(), pos.ref(), k.ref(), v.ref(), 0, { ...w, wq: h.ref() }, params, out.ref())).toThrow(/ternary/);
          expect(() => fused(h.ref(), pos.ref(), k.ref(), v.ref(), 0, w, params, h.ref())).toThrow(/alias/);
          expect(() => fused(h.ref(), pos.ref(), k.ref(), v.ref(), 0, w, { ...params, kvHeads: 3 }, out.ref())).toThrow();
          expect(() => fused(h.ref(), pos.ref(), k.ref(), v.ref(), 0, { ...w, wDown: ternary(E, F / 2) }, params, out.ref())).toThrow(/columns/);
          // A valid call works (all-zero weights and norms: out equals h).
          fused(h.ref(), pos.ref(), k.ref(), v.ref(), 0, w, params, out.ref());
        } finally {
          [h, out, pos, k, v].forEach((t) => t.dispose());
          freeAll(Object.values(w));
        }
      });

      it("should throw ValueError non-finite for NaN activations (at the call, or at the next read on device memory)", async () => {
        const w = setup();
        const h = tensor(new Float32Array(E).fill(Number.NaN), ["s", "e"], [1, E], { backend: chain });
        const out = zeros(["s", "e"], [1, E]);
        const pos = tensorFromBytes(chain, "i32", ["s"], [1], new Uint8Array(Int32Array.of(0).buffer));
        const k = zeros(["c", "kv", "d"], [4, H, D]);
        const v = zeros(["c", "kv", "d"], [4, H, D]);
        try {
          let caught: unknown;
          try {
            fused(h.ref(), pos.ref(), k.ref(), v.ref(), 0, w, params, out.ref());
          } catch (e) {
            caught = e;
          }
          caught ??= await chain.readAsync(out.ref().buffer).catch((e: unknown) => e);
          expect(caught).toBeInstanceOf(ValueError);
          expect((caught as ValueError).code).toBe("non-finite");
        } finally {
          [h, out, pos, k, v].forEach((t) => t.dispose());
          freeAll(Object.values(w));
        }
      });
    });
  });
}

// ---- composite ops against the decompositions the op table declares ----

const ATTENTION_CASES = CASES.filter((c) => c.kernel === "attention");

/** Builds a conformance case on a backend; returns its arguments, output and a release function. */
function build(backend: Backend, c: ConformanceCase): { args: unknown[]; out: TensorRef; free(): void } {
  const buffers: TensorRef["buffer"][] = [];
  const data = c.build({
    alloc: (bytes) => {
      const b = backend.alloc(bytes);
      buffers.push(b);
      return b;
    },
    write: (buffer, src, offset) => backend.write(buffer, src, offset),
  });
  return { ...data, free: () => buffers.forEach((b) => backend.free(b)) };
}

function nmse(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    num += ((got[i] ?? 0) - (want[i] ?? 0)) ** 2;
    den += (want[i] ?? 0) ** 2;
  }
  return den === 0 ? num : num / den;
}

/** Same bits (an "exact" decomposition) or within the table's NMSE. */
function expectAgreement(compare: "exact" | number, got: Float32Array, want: Float32Array, what: string): void {
  if (compare === "exact") {
    expect(Buffer.from(got.buffer).equals(Buffer.from(want.buffer)), `${what}: not bit-identical`).toBe(true);
  } else {
    expect(got.length, what).toBe(want.length);
    expect(nmse(got, want), what).toBeLessThanOrEqual(compare);
  }
}

const runBlock = (fn: NonNullable<Backend["fused"]>["bitnetBlock"], i: BlockInputs, s: BlockShape): void =>
  fn?.(i.h, i.positions, i.kCaches[0] as TensorRef, i.vCaches[0] as TensorRef, s.filled[0] ?? 0, i.weights, i.params, i.out);
const runBatch = (fn: NonNullable<Backend["fused"]>["bitnetBlockBatch"], i: BlockInputs): void =>
  fn?.(i.h, i.positions, i.kCaches, i.vCaches, i.weights, i.params, i.out);

describe("op table decompositions", () => {
  it("should call exactly the kernels each decomposition declares (run on the JS reference)", () => {
    const js = createJsBackend();
    const used = new Set<string>();
    const recording: Backend = {
      ...js,
      kernels: Object.fromEntries(
        Object.entries(js.kernels).map(([name, fn]) => [name, (...args: unknown[]) => (used.add(name), (fn as (...a: unknown[]) => void)(...args))]),
      ) as unknown as Kernels,
    };
    for (const c of ATTENTION_CASES) {  // f32 caches, and f16 / q8_0 ones (decoded by embedding)
      const attention = build(js, c);
      try {
        runDecomposition(recording, KERNEL_OPS.attention.decomposition.run, ...(attention.args as Parameters<Kernels["attention"]>));
      } finally {
        attention.free();
      }
    }
    expect([...used].sort()).toEqual([...KERNEL_OPS.attention.decomposition.uses].sort());
    for (const [name, shape] of [["bitnetBlock", BLOCK_SHAPES[0]], ["bitnetBlockBatch", BATCH_SHAPES[0]]] as const) {
      used.clear();
      const inputs = blockInputs(js, shape as BlockShape);
      try {
        if (name === "bitnetBlock") {
          runDecomposition(recording, FUSED_OPS.bitnetBlock.decomposition.run, inputs.h, inputs.positions, inputs.kCaches[0] as TensorRef, inputs.vCaches[0] as TensorRef, 0, inputs.weights, inputs.params, inputs.out);
        } else {
          runDecomposition(recording, FUSED_OPS.bitnetBlockBatch.decomposition.run, inputs.h, inputs.positions, inputs.kCaches, inputs.vCaches, inputs.weights, inputs.params, inputs.out);
        }
      } finally {
        inputs.free();
      }
      expect([...used].sort(), name).toEqual([...FUSED_OPS[name].decomposition.uses].sort());
    }
    expect(js.liveAllocations()).toBe(0);
  });

  const targets: { name: string; make: () => Promise<{ backend: Backend; dispose(): void } | string> }[] = [
    { name: "js", make: async () => ({ backend: createJsBackend(), dispose: () => undefined }) },
    ...PROVIDERS.map((provider) => ({
      name: provider.name,
      make: async () => {
        const probe = await probeOnce(provider);
        if (!probe.available) {
          return `${provider.name} is unavailable here: ${probe.reason}`;
        }
        const member = await provider.create({});
        // The member's kernels (and fused steps) first, the JS reference for the kernels it lacks (copies).
        return { backend: createDispatcher([member], createJsBackend()), dispose: () => member.dispose() };
      },
    })),
  ];

  for (const target of targets) {
    describe(`${target.name}: composite kernels against their decompositions`, async () => {
      const made = await target.make();
      if (typeof made === "string") {
        it.skip(made, () => undefined);
        return;
      }
      const { backend } = made;
      const js = createJsBackend();
      afterAll(() => made.dispose());

      // f16 / q8_0 KV caches are host memory only (src/model/bitnet/kv-cache.ts refuses them on a device).
      const attentionCases = ATTENTION_CASES.filter((c) => backend.memoryKind === "host" || !c.name.includes(" cache,"));
      it.each(attentionCases.map((c) => [c.name, c] as const))(`attention within NMSE ${KERNEL_OPS.attention.decomposition.compare} of its decomposition: %s`, async (_name, c) => {
        const fused = build(backend, c);
        const composed = build(backend, c);
        try {
          backend.kernels.attention(...(fused.args as Parameters<Kernels["attention"]>));
          runDecomposition(backend, KERNEL_OPS.attention.decomposition.run, ...(composed.args as Parameters<Kernels["attention"]>));
          // Read back asynchronously: a device backend's memory (webgpu) has no synchronous read.
          expectAgreement(KERNEL_OPS.attention.decomposition.compare, await f32OfAsync(backend, composed.out), await f32OfAsync(backend, fused.out), "attention");
        } finally {
          fused.free();
          composed.free();
        }
      });

      const block = backend.fused?.bitnetBlock;
      const batch = backend.fused?.bitnetBlockBatch;
      if (block === undefined) {
        it.skip(`${target.name} offers no fused bitnetBlock`, () => undefined);
      } else {
        it.each(BLOCK_SHAPES.map((s) => [s.name, s] as const))("bitnetBlock equals its decomposition bit for bit, and is within rel L2 1e-4 of it on the JS reference: %s", async (_name, shape) => {
          const sets = [blockInputs(backend, shape), blockInputs(backend, shape)];
          const reference = blockInputs(js, shape);
          const [a, b] = sets as [BlockInputs, BlockInputs];
          try {
            runBlock(block, a, shape);
            const d = FUSED_OPS.bitnetBlock.decomposition;
            runDecomposition(backend, d.run, b.h, b.positions, b.kCaches[0] as TensorRef, b.vCaches[0] as TensorRef, shape.filled[0] ?? 0, b.weights, b.params, b.out);
            runDecomposition(js, d.run, reference.h, reference.positions, reference.kCaches[0] as TensorRef, reference.vCaches[0] as TensorRef, shape.filled[0] ?? 0, reference.weights, reference.params, reference.out);
            // Read back asynchronously: a device backend's memory (webgpu) has no synchronous read.
            const read = (t: TensorRef) => f32OfAsync(backend, t);
            expectAgreement(d.compare, await read(a.out), await read(b.out), "out");
            expectAgreement(d.compare, await read(a.kCaches[0] as TensorRef), await read(b.kCaches[0] as TensorRef), "kCache");
            expectAgreement(d.compare, await read(a.vCaches[0] as TensorRef), await read(b.vCaches[0] as TensorRef), "vCache");
            expect(relL2(await read(a.out), f32Of(js, reference.out))).toBeLessThan(1e-4);
          } finally {
            sets.forEach((i) => i.free());
            reference.free();
          }
        });
      }
      if (batch === undefined) {
        it.skip(`${target.name} offers no fused bitnetBlockBatch`, () => undefined);
      } else {
        it.each(BATCH_SHAPES.map((s) => [s.name, s] as const))("bitnetBlockBatch equals its decomposition bit for bit, and is within rel L2 1e-4 of it on the JS reference: %s", (_name, shape) => {
          const [a, b] = [blockInputs(backend, shape), blockInputs(backend, shape)];
          const reference = blockInputs(js, shape);
          try {
            runBatch(batch, a);
            const d = FUSED_OPS.bitnetBlockBatch.decomposition;
            runDecomposition(backend, d.run, b.h, b.positions, b.kCaches, b.vCaches, b.weights, b.params, b.out);
            runDecomposition(js, d.run, reference.h, reference.positions, reference.kCaches, reference.vCaches, reference.weights, reference.params, reference.out);
            expectAgreement(d.compare, f32Of(backend, a.out), f32Of(backend, b.out), "out");
            a.kCaches.forEach((k, i) => expectAgreement(d.compare, f32Of(backend, k), f32Of(backend, b.kCaches[i] as TensorRef), `kCache ${i}`));
            a.vCaches.forEach((v, i) => expectAgreement(d.compare, f32Of(backend, v), f32Of(backend, b.vCaches[i] as TensorRef), `vCache ${i}`));
            expect(relL2(f32Of(backend, a.out), f32Of(js, reference.out))).toBeLessThan(1e-4);
          } finally {
            [a, b, reference].forEach((i) => i.free());
          }
        });
      }
    });
  }
});
