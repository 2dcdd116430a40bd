import { describe, expect, it } from "vitest";
import { BackendError, UsageError, add, scale, tensor } from "../../src/index.js";
import type { BackendProvider, Kernels, PartialBackend, Probe } from "../../src/backends/backend.js";
import { autotune } from "../../src/backends/decorators/autotune.js";
import { createDispatcher, decorate, type FallbackEvent } from "../../src/backends/dispatch.js";
import { createJsBackend } from "../../src/backends/js/index.js";
import { views } from "../../src/backends/host-memory.js";
import { parseBackendList, probeAll, resolveBackend } from "../../src/backends/registry.js";

/** A test double: a partial backend whose only kernel is `scale`, computed as doubling, and counted. */
function doubler(options: { refuse?: string } = {}): PartialBackend & { calls: number } {
  const self = {
    name: "wasm-simd" as const,
    calls: 0,
    info: { features: ["test"], threads: 1 },
    kernels: {
      scale: (x, _factor, out) => {
        self.calls++;
        const src = views.f32(x);
        const dst = views.f32(out);
        for (let i = 0; i < out.shape.reduce((a, b) => a * b, 1); i++) {
          dst[i] = (src[i] ?? 0) * 2;
        }
      },
    } satisfies Partial<Kernels>,
    ...(options.refuse === undefined ? {} : { supports: () => options.refuse ?? "" }),
    dispose: () => undefined,
  };
  return self;
}

describe("dispatcher routing and fallback", () => {
  it("should run a kernel on the first member that has it and fall back to JS for the rest", () => {
    const member = doubler();
    const events: FallbackEvent[] = [];
    const chain = createDispatcher([member], createJsBackend(), { onFallback: (e) => events.push(e) });
    using x = tensor([1, 2, 3], ["embed"], [3], { backend: chain });
    using y = scale(x, 10); // the member's kernel: doubles, whatever the factor
    expect(Array.from(y.toFloat32())).toEqual([2, 4, 6]);
    expect(member.calls).toBe(1);
    using z = scale(x, 10);
    expect(member.calls).toBe(2);
    expect(events).toEqual([]);
    expect(chain.name).toBe("wasm-simd>js");
  });

  it("should count fallbacks per kernel and report each kernel once", () => {
    const events: FallbackEvent[] = [];
    const chain = createDispatcher([doubler({ refuse: "not in my memory" })], createJsBackend(), { onFallback: (e) => events.push(e) });
    using x = tensor([1, 2], ["embed"], [2], { backend: chain });
    using a = scale(x, 3);
    using b = scale(x, 3);
    expect(Array.from(a.toFloat32())).toEqual([3, 6]);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ kernel: "scale", from: "wasm-simd", to: "js", reason: "wasm-simd: not in my memory" });
    expect(chain.fallbacks().get("scale")?.count).toBe(2);
  });

  it("should make any fallback an error in strict mode", () => {
    const chain = createDispatcher([doubler()], createJsBackend(), { strict: true });
    using x = tensor([1, 2], ["embed"], [2], { backend: chain });
    using y = scale(x, 1);
    expect(Array.from(y.toFloat32())).toEqual([2, 4]);
    expect(() => add(x, x)).toThrow(BackendError);
    expect(() => add(x, x)).toThrow("[backend] binary would fall back from wasm-simd to js (wasm-simd has no binary kernel)");
    expect(chain.liveAllocations()).toBe(2);
  });
});

function provider(name: PartialBackend["name"], probe: Probe, priority = 10, create?: () => Promise<PartialBackend>): BackendProvider & { probes: number } {
  const p = {
    name,
    basePriority: priority,
    probes: 0,
    probe: async () => {
      p.probes++;
      return probe;
    },
    create: create ?? (async () => ({ ...doubler(), name })),
  };
  return p;
}

describe("backend registry", () => {
  it("should parse backend lists and reject unknown names", () => {
    expect(parseBackendList("native-cpu, js")).toEqual(["native-cpu", "js"]);
    expect(parseBackendList("native-cpu, cuda")).toEqual(["native-cpu", "cuda"]);
    expect(() => parseBackendList("tpu")).toThrow(/unknown backend "tpu"/);
  });

  it("should skip unavailable providers, remember probes and keep JS last", async () => {
    const down = provider("native-cpu", { available: false, reason: "no AVX2" });
    const up = provider("wasm-simd", { available: true, score: 5, features: ["simd128"] });
    const chain = await resolveBackend({ providers: [down, up], env: {} });
    expect(chain.members).toEqual(["wasm-simd", "js"]);
    await resolveBackend({ providers: [down, up], env: {} });
    expect(down.probes).toBe(1);
    const reports = await probeAll([down, up]);
    expect(reports.map((r) => r.name)).toEqual(["native-cpu", "wasm-simd", "js"]);
  });

  it("should follow BARBELL_BACKENDS and fail with every reason when nothing requested can run", async () => {
    const down = provider("native-cpu", { available: false, reason: "addon not built" });
    await expect(resolveBackend({ providers: [down], env: { BARBELL_BACKENDS: "native-cpu" } })).rejects.toThrow(BackendError);
    await expect(resolveBackend({ providers: [down], env: { BARBELL_BACKENDS: "native-cpu" } })).rejects.toThrow(
      "native-cpu: addon not built",
    );
    const chain = await resolveBackend({ providers: [down], env: { BARBELL_BACKENDS: "native-cpu,js" } });
    expect(chain.members).toEqual(["js"]);
  });

  it("should make a list without js strict", async () => {
    const up = provider("wasm-simd", { available: true, score: 1, features: [] });
    const chain = await resolveBackend({ providers: [up], backends: ["wasm-simd"] });
    using x = tensor([1, 2], ["embed"], [2], { backend: chain });
    using y = scale(x, 1);
    expect(Array.from(y.toFloat32())).toEqual([2, 4]);
    expect(() => add(x, x)).toThrow(BackendError);
  });

  it("should remember a provider that failed to start", async () => {
    let attempts = 0;
    const broken = provider("native-cpu", { available: true, score: 9, features: [] }, 10, async () => {
      attempts++;
      throw new Error("thread pool failed");
    });
    const chain = await resolveBackend({ providers: [broken], env: {} });
    expect(chain.members).toEqual(["js"]);
    await resolveBackend({ providers: [broken], env: {} });
    expect(attempts).toBe(1);
  });
});

describe("the autotuning decorator", () => {
  /** A partial backend whose GEMV writes its own marker into the output and costs `cost` fake ms. */
  function marker(name: PartialBackend["name"], threads: number, mark: number, clock: { t: number }, cost: number): PartialBackend {
    return {
      name,
      info: { features: [], threads },
      kernels: {
        matmulTernaryI8: (_x, _s, _w, out) => {
          clock.t += cost;
          views.f32(out).fill(mark);
        },
      },
      dispose: () => undefined,
    };
  }

  it("should route each shape to the fastest member or variant and keep that choice", async () => {
    const { Autotuner } = await import("../../src/backends/autotune.js");
    const { ternaryFromCodes, linear } = await import("../../src/index.js");
    const clock = { t: 0 };
    const slow = marker("native-cpu", 2, 1, clock, 5);
    const fast = marker("native-cpu", 1, 2, clock, 1);
    const tuner = new Autotuner({ file: null, fingerprint: "test", now: () => clock.t });
    const chain = decorate(createDispatcher([slow], createJsBackend()), autotune(tuner, [fast]));
    using x = tensor(new Float32Array(8).fill(1), ["seq", "embed"], [1, 8], { backend: chain });
    const w = ternaryFromCodes(new Uint8Array(4).fill(0b01010101), ["ffn", "embed"], [2, 8], { backend: chain });
    if (!w.ok) {
      throw w.error;
    }
    using weights = w.value;
    using y = linear(x, weights);
    expect(Array.from(y.toFloat32())).toEqual([2, 2]);
    expect(tuner.cached("matmulTernaryI8 i8[1x8] f32[1] ternary[2x8] f32[1x2]")).toBe("native-cpu×1");
    const before = clock.t;
    using z = linear(x, weights);
    expect(clock.t - before).toBe(1);
  });
});

describe("fused steps in a dispatcher", () => {
  /** A backend whose fused block records its calls and costs `cost` fake ms. */
  function fusedMarker(threads: number, clock: { t: number }, cost: number, calls: string[]): PartialBackend {
    return {
      name: "native-cpu",
      info: { features: [], threads },
      kernels: {},
      fused: {
        bitnetBlock: () => {
          clock.t += cost;
          calls.push(`×${threads}`);
        },
      },
      dispose: () => undefined,
    };
  }
  const ref = (shape: number[]) => ({ buffer: { id: 0, bytes: 0 }, dtype: "f32" as const, shape });
  const weights = Object.fromEntries(
    ["attnNorm", "attnSubNorm", "ffnNorm", "ffnSubNorm", "wq", "wk", "wv", "wo", "wGate", "wUp", "wDown"].map((k) => [k, ref([8, 8])]),
  ) as never;
  const params = { heads: 2, kvHeads: 2, headDim: 4, eps: 1e-5, ropeTheta: 1e4, attnScale: 0.5, activation: "relu2" as const };
  const call = (chain: { fused?: PartialBackend["fused"] }, seq: number) =>
    chain.fused?.bitnetBlock?.(ref([seq, 8]), ref([seq]), ref([4, 2, 4]), ref([4, 2, 4]), 0, weights, params, ref([seq, 8]));

  it("should offer only the first member's fused steps, untuned without a tuner", () => {
    const calls: string[] = [];
    const clock = { t: 0 };
    const chain = createDispatcher([fusedMarker(2, clock, 1, calls)], createJsBackend());
    call(chain, 1);
    expect(calls).toEqual(["×2"]);
    const second = createDispatcher([doubler(), fusedMarker(2, clock, 1, calls)], createJsBackend());
    expect(second.fused).toBeUndefined();
  });

  it("should run the block on the thread-count variant the tuner found fastest, per shape class", async () => {
    const { Autotuner } = await import("../../src/backends/autotune.js");
    const calls: string[] = [];
    const clock = { t: 0 };
    const tuner = new Autotuner({ file: null, fingerprint: "test", now: () => clock.t, runs: 3 });
    const chain = decorate(createDispatcher([fusedMarker(2, clock, 5, calls)], createJsBackend()), autotune(tuner, [fusedMarker(1, clock, 1, calls)]));
    call(chain, 1);
    expect(tuner.cached("bitnetBlock seq1 8x8 kv2x4")).toBe("native-cpu×1");
    calls.length = 0;
    call(chain, 1);
    call(chain, 1);
    expect(calls).toEqual(["×1", "×1"]); // decided once, then only the winner runs
    call(chain, 64); // another shape class is timed on its own
    expect(tuner.cached("bitnetBlock seq17+ 8x8 kv2x4")).toBe("native-cpu×1");
  });

  it("should tune the every-block step over the variants for decode and run longer steps on the head", async () => {
    const { Autotuner } = await import("../../src/backends/autotune.js");
    const calls: string[] = [];
    const disposed: string[] = [];
    const clock = { t: 0 };
    /** A marker whose every-block step records where it runs and costs `cost` fake ms per step. */
    const stepping = (threads: number, cost: number): PartialBackend => ({
      ...fusedMarker(threads, clock, cost, calls),
      layers: {
        prepare: () => ({
          run: (h) => {
            clock.t += cost;
            calls.push(`layers×${threads} seq${h.shape[0]}`);
          },
          runBatch: () => undefined,
          dispose: () => void disposed.push(`×${threads}`),
        }),
      },
    });
    const tuner = new Autotuner({ file: null, fingerprint: "test", now: () => clock.t, runs: 3 });
    const chain = decorate(createDispatcher([stepping(2, 5)], createJsBackend()), autotune(tuner, [stepping(1, 1)]));
    const step = chain.layers;
    expect(step).toBeDefined();
    expect(chain.layers).toBe(step); // one step object: forward() prepares the model once
    const stack = step?.prepare([weights, weights], params);
    stack?.run(ref([1, 8]), ref([1]), [], [], 0, ref([1, 8]));
    expect(tuner.cached("bitnetLayers one seq1 8x8 kv2x4 L2")).toBe("native-cpu×1");
    calls.length = 0;
    stack?.run(ref([1, 8]), ref([1]), [], [], 1, ref([1, 8]));
    stack?.run(ref([4, 8]), ref([4]), [], [], 2, ref([4, 8]));
    expect(calls).toEqual(["layers×1 seq1", "layers×2 seq4"]);
    stack?.dispose();
    expect(disposed.sort()).toEqual(["×1", "×2"]);
    // A variant without the step: the tuned step is not offered (the block is tuned per layer instead).
    const mixed = decorate(createDispatcher([stepping(2, 5)], createJsBackend()), autotune(tuner, [fusedMarker(1, clock, 1, calls)]));
    expect(mixed.layers).toBeUndefined();
  });
});

describe("host memory reuse", () => {
  it("should reuse a freed small buffer zeroed, with a new handle, and keep the old handle dead", async () => {
    const { ArrayBufferMemory, hostBytes } = await import("../../src/backends/host-memory.js");
    const memory = new ArrayBufferMemory("test");
    const a = memory.alloc(64);
    hostBytes(a).fill(7);
    const backing = hostBytes(a).buffer;
    memory.free(a);
    const b = memory.alloc(64);
    expect(hostBytes(b).buffer).toBe(backing);
    expect(Array.from(hostBytes(b)).every((v) => v === 0)).toBe(true);
    expect(b.id).not.toBe(a.id);
    expect(() => hostBytes(a)).toThrow(/was freed/);
    expect(memory.liveAllocations()).toBe(1);
    expect(memory.liveBytes()).toBe(64);
  });
});

describe("host memory groups", () => {
  it("should give zeroed, disjoint, 64-byte-aligned buffers of one allocation, each freed alone and never recycled", async () => {
    const { ArrayBufferMemory, GROUP_ALIGN_BYTES, hostBytes } = await import("../../src/backends/host-memory.js");
    const memory = new ArrayBufferMemory("test");
    const group = memory.allocGroup([100, 0, 64, 7]);
    const views = group.map((b) => hostBytes(b));
    expect(views.map((v) => [v.byteOffset, v.byteLength])).toEqual([
      [0, 100],
      [128, 0],
      [128, 64],
      [192, 7],
    ]);
    expect(GROUP_ALIGN_BYTES).toBe(64);
    views.forEach((v) => expect(v.buffer).toBe(views[0]?.buffer));
    expect(views[0]?.buffer.byteLength).toBe(256);
    views.forEach((v, i) => v.fill(i + 1));
    expect(Array.from(views[2] ?? [])).toEqual(new Array(64).fill(3));
    expect(memory.liveAllocations()).toBe(4);
    expect(memory.liveBytes()).toBe(171);
    expect(memory.free(group[0] as (typeof group)[number])).toBe(true);
    expect(memory.free(group[0] as (typeof group)[number])).toBe(false);
    expect(() => hostBytes(group[0] as (typeof group)[number])).toThrow(/was freed/);
    expect(Array.from(hostBytes(group[3] as (typeof group)[number]))).toEqual(new Array(7).fill(4));
    // A freed part is not handed out again: a later buffer of its size is fresh memory.
    const fresh = memory.alloc(100);
    expect(hostBytes(fresh).buffer).not.toBe(views[0]?.buffer);
    expect(memory.liveBytes()).toBe(171);
    for (const bad of [-1, 1.5, Number.MAX_SAFE_INTEGER]) {
      expect(() => memory.allocGroup([8, bad, 8])).toThrow(/cannot allocate/);
    }
    expect(memory.liveAllocations()).toBe(4);
  });
});

describe("byte arenas", () => {
  it("should carve fresh 64-byte-aligned ranges from shared chunks, and a lazy buffer should keep its range, not a copy", async () => {
    const { ARENA_CHUNK_BYTES, ArrayBufferMemory, ByteArena, hostBytes } = await import("../../src/backends/host-memory.js");
    const arena = new ByteArena();
    const a = arena.take(100);
    const b = arena.take(1000);
    expect([a.byteOffset, a.byteLength, b.byteOffset, b.byteLength]).toEqual([0, 100, 128, 1000]);
    expect(b.buffer).toBe(a.buffer);
    expect(a.buffer.byteLength).toBe(ARENA_CHUNK_BYTES);
    expect(b.every((v) => v === 0)).toBe(true);
    // What does not fit starts a new chunk; more than half a chunk gets an ArrayBuffer of its own.
    const c = arena.take(ARENA_CHUNK_BYTES / 2);
    const d = arena.take(ARENA_CHUNK_BYTES / 2);
    expect([c.buffer === a.buffer, c.byteOffset, d.buffer === c.buffer]).toEqual([true, 1152, false]);
    const big = arena.take(ARENA_CHUNK_BYTES / 2 + 1);
    expect([big.byteOffset, big.buffer.byteLength]).toEqual([0, ARENA_CHUNK_BYTES / 2 + 1]);
    expect(() => arena.take(-1)).toThrow(/cannot allocate/);
    const memory = new ArrayBufferMemory("test");
    b.fill(9);
    const lazy = memory.adoptLazy(1000, () => b);
    expect(hostBytes(lazy).buffer).toBe(a.buffer);
    expect(hostBytes(lazy).byteOffset).toBe(128);
    expect(memory.liveBytes()).toBe(1000);
    const eager = memory.adopt(a);
    expect([hostBytes(eager).buffer === a.buffer, hostBytes(eager).byteOffset, hostBytes(eager).byteLength]).toEqual([true, 0, 100]);
    // Anything else is adopted as a copy, as before.
    const plain = new Uint8Array(64).subarray(8, 24);
    const other = memory.adoptLazy(16, () => plain);
    expect(hostBytes(other).buffer).not.toBe(plain.buffer);
    expect(hostBytes(memory.adopt(plain)).buffer).not.toBe(plain.buffer);
    memory.free(lazy);
    expect(() => hostBytes(lazy)).toThrow(/was freed/);
    expect(memory.alloc(1000)).not.toBe(lazy);
  });
});

describe("unavailable backends", () => {
  it("should say once why a backend cannot run", async () => {
    const told: string[] = [];
    const down = provider("native-cpu", { available: false, reason: "the addon was not built" });
    await resolveBackend({ providers: [down], env: {}, onUnavailable: (n, r) => told.push(`${n}: ${r}`) });
    await resolveBackend({ providers: [down], env: {}, onUnavailable: (n, r) => told.push(`${n}: ${r}`) });
    expect(told).toEqual(["native-cpu: the addon was not built"]);
  });
});

describe("capabilities as data", () => {
  it("should check declared capabilities against the op table and the backend's own kernels", async () => {
    const { checkCapabilities } = await import("../../src/backends/capabilities.js");
    const base = doubler();
    expect(() => checkCapabilities("t", { ...base, capabilities: { scale: true } })).not.toThrow();
    expect(() => checkCapabilities("t", { ...base, capabilities: {} })).toThrow(/scale is a kernel it has but has no entry/);
    expect(() => checkCapabilities("t", { ...base, capabilities: { scale: true, softmax: true } })).toThrow(/softmax has an entry but no kernel/);
    expect(() => checkCapabilities("t", { ...base, capabilities: { scale: { dtypes: { y: ["f32"] } } } })).toThrow(/no tensor operand 'y'/);
    expect(() => checkCapabilities("t", { ...base, capabilities: { scale: { dtypes: { x: ["f32", "i8"] } } } })).toThrow(/the op table allows f32/);
    expect(() => checkCapabilities("t", { ...base, capabilities: { scale: { maxRank: 0 } } })).toThrow(/positive integer/);
    // The dispatcher refuses a member with bad capabilities when it is created.
    expect(() => createDispatcher([{ ...base, capabilities: {} }], createJsBackend())).toThrow(UsageError);
  });

  it("should accept or refuse a call by dtype, rank, contraction length and the table's sameDtype", async () => {
    const { capabilityAccepts } = await import("../../src/backends/capabilities.js");
    const ref = (dtype: "f32" | "i8" | "f16" | "ternary", shape: number[]) => ({ buffer: { id: 1, bytes: 0 }, dtype, shape });
    expect(capabilityAccepts("embedding", { dtypes: { table: ["f32"] } }, [ref("f32", [2]), ref("f16", [4, 8]), ref("f32", [2, 8])])).toBe(
      "embedding takes f32 as table, not f16",
    );
    expect(capabilityAccepts("matmulTernaryI8", { maxK: 64 }, [ref("i8", [1, 128]), ref("f32", [1]), ref("ternary", [4, 128]), ref("f32", [1, 4])])).toBe(
      "matmulTernaryI8 takes k ≤ 64, got 128",
    );
    expect(capabilityAccepts("matmulTernaryI8", { maxK: 128 }, [ref("i8", [1, 128]), ref("f32", [1]), ref("ternary", [4, 128]), ref("f32", [1, 4])])).toBe(true);
    expect(capabilityAccepts("binary", { maxRank: 2 }, ["add", ref("f32", [1, 2, 3]), [6, 3, 1], ref("f32", [1, 2, 3]), [6, 3, 1], ref("f32", [1, 2, 3])])).toMatch(/rank ≤ 2/);
    expect(capabilityAccepts("writeRows", true, [ref("i8", [1, 4]), ref("f32", [4, 4]), 0])).toMatch(/one dtype/);
  });

  it("should fall back, with the capability's reason, when a member's data refuses the call", () => {
    const events: FallbackEvent[] = [];
    const member = { ...doubler(), capabilities: { scale: { maxRank: 1 } } };
    const dispatcher = createDispatcher([member], createJsBackend(), { onFallback: (e) => events.push(e) });
    using x = tensor([1, 2, 3, 4], ["seq", "embed"], [2, 2], { backend: dispatcher });
    using y = scale(x, 3);
    expect(Array.from(y.toFloat32())).toEqual([3, 6, 9, 12]); // the JS reference ran it
    expect(member.calls).toBe(0);
    expect(events[0]).toMatchObject({ kernel: "scale", to: "js", reason: "wasm-simd: scale takes rank ≤ 1, x has 2" });
  });
});

describe("decorators over the dispatcher's hook", () => {
  it("should count fused steps as ops for fault injection and tracing, and share memory with the base", async () => {
    const { faultInjector } = await import("../../src/backends/decorators/faults.js");
    const { tracing } = await import("../../src/backends/decorators/trace.js");
    const blocks: string[] = [];
    const member: PartialBackend = {
      name: "native-cpu",
      info: { features: [], threads: 1 },
      kernels: {},
      fused: { bitnetBlock: () => void blocks.push("block") },
      dispose: () => undefined,
    };
    const base = createDispatcher([member], createJsBackend());
    const seen: string[] = [];
    const injector = faultInjector([{ op: "bitnetBlock", nth: 2 }], (op, call) => new Error(`${op} #${call}`));
    const decorated = decorate(decorate(base, tracing((op) => seen.push(op))), injector.decorator);
    const r = { buffer: { id: 0, bytes: 0 }, dtype: "f32" as const, shape: [1, 8] };
    const weights = Object.fromEntries(["attnNorm", "attnSubNorm", "ffnNorm", "ffnSubNorm", "wq", "wk", "wv", "wo", "wGate", "wUp", "wDown"].map((k) => [k, r])) as never;
    const params = { heads: 2, kvHeads: 2, headDim: 4, eps: 1e-5, ropeTheta: 1e4, attnScale: 0.5, activation: "relu2" as const };
    const block = decorated.fused?.bitnetBlock;
    expect(block).toBeDefined();
    block?.(r, r, r, r, 0, weights, params, r);
    expect(() => block?.(r, r, r, r, 0, weights, params, r)).toThrow("bitnetBlock #2");
    block?.(r, r, r, r, 0, weights, params, r);
    expect(blocks).toEqual(["block", "block"]); // the injected fault stopped the second call before it ran
    expect(seen).toEqual(["bitnetBlock", "bitnetBlock"]); // tracing is inside the fault decorator
    expect(injector.stats()).toEqual({ calls: 3, injected: 1 });
    using x = tensor([1], ["embed"], [1], { backend: decorated });
    expect(base.liveAllocations()).toBe(1);
    expect(decorated.name).toBe(base.name);
  });

  it("should switch the ops of one memory between dispatchers, map their errors and follow the active one's fused steps", async () => {
    const { createSwitch } = await import("../../src/backends/decorators/switch.js");
    const member = doubler();
    const home = createDispatcher([member], createJsBackend());
    const other = createDispatcher([], createJsBackend());
    const sw = createSwitch(home, { mapError: (e, op, backend) => new Error(`${op} on ${backend}: ${(e as Error).message}`) });
    using x = tensor([1, 2], ["embed"], [2], { backend: sw.backend });
    using a = scale(x, 5);
    expect(Array.from(a.toFloat32())).toEqual([2, 4]); // the home's member doubles
    sw.use(other);
    expect(sw.backend.name).toBe("js");
    using b = scale(x, 5);
    expect(Array.from(b.toFloat32())).toEqual([5, 10]); // the JS reference, on the home's buffers
    expect(home.liveAllocations()).toBe(3);
    const bad = { buffer: { id: 99, bytes: 0 }, dtype: "f32" as const, shape: [1] };
    expect(() => sw.backend.kernels.softmax(bad, bad)).toThrow(/^softmax on js: /);
    sw.use(home);
    expect(sw.backend.name).toBe("wasm-simd>js");
  });
});
