import { describe, expect, it } from "vitest";
import { createActorSystem, ManualClock } from "../../src/actors/index.js";
import { loadModel } from "../../src/engine/model.js";
import { modelActor, type ModelOutput } from "../../src/serve/index.js";
import { collect, lastOf, tokensOf, untilWorker, jsGreedy, serveFixtures } from "./helpers.js";

const env = serveFixtures();



describe("the model actor in-process", () => {
  it("should stream the tokens the engine generates and end with a done item naming the model", async () => {
    env.system = createActorSystem({ clock: new ManualClock() });
    const ref = env.system.spawn(modelActor({ ladder: [env.ladder.small, env.ladder.large], backends: ["js"], isolation: "in-process" }));
    const items = await collect(ref, { tokens: [1, 2, 3], maxTokens: 5, temperature: 0 });
    expect(tokensOf(items)).toEqual(await jsGreedy(env.ladder.small.path, [1, 2, 3], 5));
    expect(lastOf(items)).toMatchObject({ kind: "done", model: "small", backend: "js", promptTokens: 3, completionTokens: 5, failures: [], resent: 0 });
    const text = await collect(ref, { prompt: "the cat", maxTokens: 2, temperature: 0 });
    expect(lastOf(text)).toMatchObject({ kind: "done", completionTokens: 2 });
  });

  it("should skip log-probabilities a request does not want, unless confidence needs them", async () => {
    env.system = createActorSystem({ clock: new ManualClock() });
    const ref = env.system.spawn(modelActor({ ladder: [env.ladder.small], backends: ["js"], isolation: "in-process" }));
    const lean = await collect(ref, { tokens: [1, 2, 3], maxTokens: 3, temperature: 0, logprobs: false });
    const full = await collect(ref, { tokens: [1, 2, 3], maxTokens: 3, temperature: 0 });
    const judged = await collect(ref, { tokens: [1, 2, 3], maxTokens: 3, temperature: 0, logprobs: false, confidence: true });
    const logprobs = (items: ModelOutput[]): number[] => items.flatMap((i) => (i.kind === "token" && i.token !== undefined ? [i.logprob] : []));
    expect(tokensOf(lean)).toEqual(tokensOf(full));
    expect(logprobs(lean).every(Number.isNaN)).toBe(true);
    expect(logprobs(full).every(Number.isFinite)).toBe(true);
    expect(logprobs(judged)).toEqual(logprobs(full));
  });

  it("should answer a tensor of token ids with a logits tensor", async () => {
    env.system = createActorSystem({ clock: new ManualClock() });
    const ref = env.system.spawn(modelActor({ ladder: [env.ladder.small], backends: ["js"], isolation: "in-process" }));
    const ids = Int32Array.of(1, 2, 3);
    const input = { name: "ids", dtype: "i32" as const, dims: [{ name: "seq", size: 3 }], scales: [], flags: 0, payload: new Uint8Array(ids.buffer) };
    const items = await collect(ref, { input });
    const tensor = items.find((i): i is Extract<ModelOutput, { kind: "tensor" }> => i.kind === "tensor")?.tensor;
    using model = await loadModel(env.ladder.small.path, { backends: ["js"], autotune: false });
    const [expected] = await model.logits([1, 2, 3]);
    expect(tensor?.dims).toEqual([{ name: "vocab", size: 300 }]);
    expect(new Float32Array(tensor?.payload.slice().buffer ?? new ArrayBuffer(0))).toEqual(expected);
    expect(lastOf(items).kind).toBe("done");
  });

  it("should end bad requests with a typed bad-request error and keep serving", async () => {
    env.system = createActorSystem({ clock: new ManualClock() });
    const ref = env.system.spawn(modelActor({ ladder: [env.ladder.small], backends: ["js"], isolation: "in-process" }));
    const cases = [
      { tokens: [] },
      { tokens: [1], maxTokens: 0 },
      { tokens: [1], maxTokens: 1000 },
      { tokens: [100000] },
      { tokens: [1], temperature: -1 },
      { tokens: [1], topLogprobs: 21 },
      { prompt: "a", tokens: [1] },
      { tokens: [1], maxTokens: 1.5 },
    ];
    for (const request of cases) {
      const items = await collect(ref, request);
      expect(items, JSON.stringify(request)).toHaveLength(1);
      expect(items[0]).toMatchObject({ kind: "error", code: "bad-request" });
    }
    expect(lastOf(await collect(ref, { tokens: [1], maxTokens: 1 })).kind).toBe("done");
  });

  it("should cancel a running request and a queued one when their consumers leave", async () => {
    env.system = createActorSystem({ clock: new ManualClock() });
    const ref = env.system.spawn(modelActor({ ladder: [env.ladder.small], backends: ["js"], isolation: "in-process" }));
    const controller = new AbortController();
    const long = ref.stream({ type: "processInput", request: { tokens: [1], maxTokens: 60, temperature: 0 } }, { signal: controller.signal });
    const queued = ref.stream({ type: "processInput", request: { tokens: [2], maxTokens: 60, temperature: 0 } });
    if (!long.ok || !queued.ok) {
      throw new Error("refused");
    }
    const it1 = long.value[Symbol.asyncIterator]();
    expect((await it1.next()).value).toMatchObject({ kind: "token" });
    const second = queued.value[Symbol.asyncIterator]().next(); // sends the second request to the worker
    controller.abort();
    queued.value.cancel();
    const ended = await second.catch((e: unknown) => e);
    expect(ended).toSatisfy((e) => (e as { done?: boolean }).done === true || (e as { code?: string }).code === "cancelled");
    const status = await untilWorker(ref, (w) => w.running === 0);
    expect(status.worker).toMatchObject({ queued: 0, running: 0, completed: 0, failed: 0 });
    expect(status.inFlight).toBe(0);
    expect(lastOf(await collect(ref, { tokens: [1], maxTokens: 2 })).kind).toBe("done");
    expect((await ref.ask({ type: "queryStatus" })).worker?.completed).toBe(1);
  });

  it("should report backend, device, memory, capabilities and queue depth", async () => {
    env.system = createActorSystem({ clock: new ManualClock() });
    const ref = env.system.spawn(modelActor({ ladder: [env.ladder.small, env.ladder.large], backends: ["js"], isolation: "in-process" }));
    const status = await ref.ask({ type: "queryStatus" });
    expect(status).toMatchObject({ available: true, isolation: "in-process", workerState: "running", restarts: 0, queueDepth: 0 });
    expect(status.lastFailure).toBeUndefined();
    expect(status.worker).toMatchObject({
      model: "small",
      rung: 0,
      rungs: 2,
      loaded: true,
      backend: "js",
      chain: ["js"],
      capabilities: { arch: "bitnet-b1.58", vocab: 300, layers: 1, hidden: 64, text: true, canExpand: true },
    });
    expect(status.worker?.memory.liveAllocations).toBeGreaterThan(0);
    expect(status.worker?.memory.rss).toBeGreaterThan(0);
  });

  it("should free every allocation on ReleaseResources and load again on the next request", async () => {
    env.system = createActorSystem({ clock: new ManualClock() });
    const ref = env.system.spawn(modelActor({ ladder: [env.ladder.small], backends: ["js"], isolation: "in-process" }));
    await collect(ref, { tokens: [1, 2], maxTokens: 3 });
    const before = await ref.ask({ type: "queryStatus" });
    expect(before.worker?.memory.liveBytes).toBeGreaterThan(0);
    const released = await ref.ask({ type: "releaseResources" });
    expect(released.worker).toMatchObject({ loaded: false, memory: { liveAllocations: 0, liveBytes: 0 } });
    expect(lastOf(await collect(ref, { tokens: [1, 2], maxTokens: 3 })).kind).toBe("done");
    expect((await ref.ask({ type: "queryStatus" })).worker?.loaded).toBe(true);
  });

  it("should end running and queued requests with `released` when resources are released", async () => {
    env.system = createActorSystem({ clock: new ManualClock() });
    const ref = env.system.spawn(modelActor({ ladder: [env.ladder.small], backends: ["js"], isolation: "in-process" }));
    const running = ref.stream({ type: "processInput", request: { tokens: [1], maxTokens: 60 } });
    const queued = ref.stream({ type: "processInput", request: { tokens: [2], maxTokens: 60 } });
    if (!running.ok || !queued.ok) {
      throw new Error("refused");
    }
    const it1 = running.value[Symbol.asyncIterator]();
    expect((await it1.next()).value).toMatchObject({ kind: "token" });
    const rest = (async () => {
      const out: ModelOutput[] = [];
      for (let r = await it1.next(); r.done !== true; r = await it1.next()) {
        out.push(r.value);
      }
      return out;
    })();
    const queuedItems = (async () => {
      const out: ModelOutput[] = [];
      for await (const item of queued.value) {
        out.push(item);
      }
      return out;
    })();
    await untilWorker(ref, (w) => w.queued === 1);
    const status = await ref.ask({ type: "releaseResources" });
    expect(status.worker).toMatchObject({ loaded: false, memory: { liveAllocations: 0 } });
    expect(lastOf(await rest)).toMatchObject({ kind: "error", code: "released" });
    expect((await rest).length).toBeLessThan(60);
    expect(await queuedItems).toEqual([expect.objectContaining({ kind: "error", code: "released" })]);
  });

  it("should expand to the next rung while requests keep flowing, then free the old model", async () => {
    env.system = createActorSystem({ clock: new ManualClock() });
    const ref = env.system.spawn(modelActor({ ladder: [env.ladder.small, env.ladder.large], backends: ["js"], isolation: "in-process" }));
    const opened = ref.stream({ type: "processInput", request: { tokens: [1, 2, 3], maxTokens: 20, temperature: 0 } });
    if (!opened.ok) {
      throw opened.error;
    }
    const first: ModelOutput[] = [];
    let expanding: Promise<unknown> | undefined;
    const reading = (async () => {
      for await (const item of opened.value) {
        first.push(item);
        if (first.length === 1) {
          expanding = ref.ask({ type: "expandCapability" }); // the request is running on the small model
        }
      }
    })();
    await reading;
    const reply = await expanding;
    expect(reply).toMatchObject({ ok: true, status: { worker: { model: "large", rung: 1, capabilities: { hidden: 128, canExpand: false } } } });
    expect(lastOf(first)).toMatchObject({ kind: "done", model: "small", completionTokens: 20 });
    expect(tokensOf(first)).toEqual(await jsGreedy(env.ladder.small.path, [1, 2, 3], 20));
    const after = await collect(ref, { tokens: [1, 2, 3], maxTokens: 4, temperature: 0 });
    expect(lastOf(after)).toMatchObject({ kind: "done", model: "large" });
    expect(tokensOf(after)).toEqual(await jsGreedy(env.ladder.large.path, [1, 2, 3], 4));
    expect(await ref.ask({ type: "expandCapability" })).toMatchObject({ ok: false, code: "bad-request" });
    expect(await ref.ask({ type: "expandCapability", target: { rung: "nope" } })).toMatchObject({ ok: false, code: "bad-request" });
    expect(await ref.ask({ type: "expandCapability", target: { backends: ["tpu"] } })).toMatchObject({ ok: false, code: "bad-request" });
    const back = await ref.ask({ type: "expandCapability", target: { rung: "small", backends: ["js"] } });
    expect(back).toMatchObject({ ok: true, status: { worker: { model: "small" } } });
  });

  it("should refuse configs that cannot work with a typed error", () => {
    expect(() => modelActor({ ladder: [] })).toThrow(expect.objectContaining({ name: "ServeError", code: "bad-config" }));
    expect(() => modelActor({ ladder: [env.ladder.small, { ...env.ladder.small }] })).toThrow(/distinct/);
    expect(() => modelActor({ ladder: [env.ladder.small], rung: 3 })).toThrow(/rung 3/);
    expect(() => modelActor({ ladder: [env.ladder.small], faults: [{ backend: "js", action: "kill" }], isolation: "in-process" })).toThrow(
      /only allowed in a model worker's child process/,
    );
  });
});
