/**
 * Continuous batching in the serving stack: `parallel` requests of one model actor share decode steps and
 * give the tokens they get alone; `queue` bounds the requests waiting beyond them (`overloaded` at once);
 * cancelling one request leaves the others alone; a kernel fault in a batched step is retried per request
 * on the next backend chain.
 */
import { describe, expect, it } from "vitest";
import { createActorSystem, ManualClock, type ActorRef } from "../../src/actors/index.js";
import { PROVIDERS } from "../../src/backends/providers.js";
import { probeOnce } from "../../src/backends/registry.js";
import { loadModel } from "../../src/engine/model.js";
import { modelActor, type ModelMsg, type ModelOutput } from "../../src/serve/index.js";
import { collect, lastOf, tokensOf, untilWorker, serveFixtures } from "./helpers.js";

const env = serveFixtures();


async function greedy(path: string, prompts: readonly number[][], maxTokens: readonly number[], backends: ("js" | "native-cpu")[] = ["js"]): Promise<number[][]> {
  using model = await loadModel(path, { backends, autotune: false });
  const out: number[][] = [];
  for (const [i, tokens] of prompts.entries()) {
    out.push([...(await model.generate(tokens, { temperature: 0, maxTokens: maxTokens[i] ?? 1 }).complete()).tokens]);
  }
  return out;
}

/** Opens a request and reads it to the end in the background. */
function start(ref: ActorRef<ModelMsg>, request: Parameters<typeof collect>[1]): Promise<ModelOutput[]> {
  return collect(ref, request);
}

const PROMPTS = [[1, 2, 3], [9], [5, 6, 7, 8], [4, 4]];
const BUDGETS = [12, 9, 7, 10];

describe("continuous batching in the model actor", () => {
  it("should give concurrent requests the greedy tokens they get alone, in shared decode steps", async () => {
    env.system = createActorSystem({ clock: new ManualClock() });
    const ref = env.system.spawn(modelActor({ ladder: [env.ladder.large], backends: ["js"], isolation: "in-process", parallel: 4 }));
    const want = await greedy(env.ladder.large.path, PROMPTS, BUDGETS);
    const got = await Promise.all(PROMPTS.map((tokens, i) => start(ref, { tokens, maxTokens: BUDGETS[i] ?? 1, temperature: 0 })));
    expect(got.map(tokensOf)).toEqual(want);
    expect(got.map((items) => lastOf(items))).toEqual(
      BUDGETS.map((n) => expect.objectContaining({ kind: "done", finishReason: "length", completionTokens: n, failures: [] })),
    );
    const status = await ref.ask({ type: "queryStatus" });
    expect(status).toMatchObject({ parallel: 4, queueDepth: 0, inFlight: 0 });
    const w = status.worker;
    expect(w).toMatchObject({ parallel: 4, running: 0, queued: 0, active: 0, completed: 4 });
    // Steps carried several sequences: the mean batch is well above one.
    expect((w?.batchRows ?? 0) / (w?.batchSteps ?? 1)).toBeGreaterThan(2);
  });

  it("should decode one request at a time with parallel 1 (every step carries one sequence)", async () => {
    env.system = createActorSystem({ clock: new ManualClock() });
    const ref = env.system.spawn(modelActor({ ladder: [env.ladder.large], backends: ["js"], isolation: "in-process" }));
    const got = await Promise.all(PROMPTS.slice(0, 2).map((tokens, i) => start(ref, { tokens, maxTokens: BUDGETS[i] ?? 1, temperature: 0 })));
    expect(got.map(tokensOf)).toEqual(await greedy(env.ladder.large.path, PROMPTS.slice(0, 2), BUDGETS));
    const w = (await ref.ask({ type: "queryStatus" })).worker;
    expect(w?.parallel).toBe(1);
    expect(w?.batchRows).toBe(w?.batchSteps);
  });

  it("should refuse a request beyond parallel + queue at once with `overloaded`, and complete every accepted one", async () => {
    env.system = createActorSystem({ clock: new ManualClock() });
    const ref = env.system.spawn(modelActor({ ladder: [env.ladder.large], backends: ["js"], isolation: "in-process", parallel: 1, queue: 1 }));
    const runs = [[1, 2], [3], [4, 5]].map((tokens) => start(ref, { tokens, maxTokens: 20, temperature: 0 }));
    const [a, b, c] = await Promise.all(runs);
    expect(lastOf(a ?? [])).toMatchObject({ kind: "done", completionTokens: 20 });
    expect(lastOf(b ?? [])).toMatchObject({ kind: "done", completionTokens: 20 });
    expect(c).toEqual([expect.objectContaining({ kind: "error", code: "overloaded", message: expect.stringMatching(/2 request\(s\) in flight \(parallel 1 \+ queue 1\)/) })]);
    const status = await ref.ask({ type: "queryStatus" });
    expect(status).toMatchObject({ parallel: 1, queue: 1, overloaded: 1, inFlight: 0, queueDepth: 0 });
    expect(status.worker?.completed).toBe(2);
    // Room again once they are done.
    expect(lastOf(await collect(ref, { tokens: [6], maxTokens: 2 })).kind).toBe("done");
  });

  it("should report the queue depth while requests wait beyond parallel", async () => {
    env.system = createActorSystem({ clock: new ManualClock() });
    const ref = env.system.spawn(modelActor({ ladder: [env.ladder.large], backends: ["js"], isolation: "in-process", parallel: 2, queue: 4 }));
    const runs = [1, 2, 3, 4].map((t) => start(ref, { tokens: [t], maxTokens: 30, temperature: 0 }));
    const status = await untilWorker(ref, (w) => w.running === 2 && w.queued === 2);
    expect(status).toMatchObject({ inFlight: 4, queueDepth: 4 });
    expect((await Promise.all(runs)).map((items) => lastOf(items).kind)).toEqual(["done", "done", "done", "done"]);
  });

  it("should free a cancelled request's slot for a waiting one and leave the others' tokens alone", async () => {
    env.system = createActorSystem({ clock: new ManualClock() });
    const ref = env.system.spawn(modelActor({ ladder: [env.ladder.large], backends: ["js"], isolation: "in-process", parallel: 2, queue: 2 }));
    const want = await greedy(env.ladder.large.path, [[1, 2, 3], [7]], [30, 6]);
    const order: string[] = [];
    const a = start(ref, { tokens: [1, 2, 3], maxTokens: 30, temperature: 0 }).finally(() => order.push("a"));
    const opened = ref.stream({ type: "processInput", request: { tokens: [2], maxTokens: 30, temperature: 0 } });
    if (!opened.ok) {
      throw opened.error;
    }
    const c = start(ref, { tokens: [7], maxTokens: 6, temperature: 0 }).finally(() => order.push("c")); // waits: parallel is 2
    let cancelledAfter = 0;
    for await (const item of opened.value) {
      if (item.kind === "token" && ++cancelledAfter === 2) {
        break; // the client goes away: the stream is cancelled
      }
    }
    const [itemsA, itemsC] = await Promise.all([a, c]);
    expect(cancelledAfter).toBe(2);
    // The waiting request took the cancelled one's slot at once: its 6 tokens were done long before a's 30.
    expect(order).toEqual(["c", "a"]);
    expect(tokensOf(itemsA)).toEqual(want[0]);
    expect(tokensOf(itemsC)).toEqual(want[1]);
    const status = await untilWorker(ref, (w) => w.running === 0 && w.active === 0);
    expect(status.worker).toMatchObject({ completed: 2, failed: 0, queued: 0 });
    expect(status.inFlight).toBe(0);
  });

  it("should end every running request with `released` on ReleaseResources and free all memory", async () => {
    env.system = createActorSystem({ clock: new ManualClock() });
    const ref = env.system.spawn(modelActor({ ladder: [env.ladder.large], backends: ["js"], isolation: "in-process", parallel: 3 }));
    const runs = [1, 2, 3, 4].map((t) => start(ref, { tokens: [t], maxTokens: 60, temperature: 0 }));
    await untilWorker(ref, (w) => w.running === 3 && w.queued === 1 && w.batchSteps > 2);
    const released = await ref.ask({ type: "releaseResources" });
    expect(released.worker).toMatchObject({ loaded: false, running: 0, active: 0, memory: { liveAllocations: 0 } });
    const ends = (await Promise.all(runs)).map((items) => lastOf(items));
    expect(ends).toEqual(ends.map(() => expect.objectContaining({ kind: "error", code: "released" })));
    expect(lastOf(await collect(ref, { tokens: [1], maxTokens: 2 })).kind).toBe("done");
  });

  it("should let running requests finish on the old model while expansion moves new ones to the next rung", async () => {
    env.system = createActorSystem({ clock: new ManualClock() });
    const ref = env.system.spawn(modelActor({ ladder: [env.ladder.small, env.ladder.large], backends: ["js"], isolation: "in-process", parallel: 2 }));
    const want = await greedy(env.ladder.small.path, [[1, 2], [3]], [25, 25]);
    const runs = [[1, 2], [3]].map((tokens) => start(ref, { tokens, maxTokens: 25, temperature: 0 }));
    await untilWorker(ref, (w) => w.running === 2 && w.batchSteps > 1);
    expect(await ref.ask({ type: "expandCapability" })).toMatchObject({ ok: true, status: { worker: { model: "large" } } });
    const after = await collect(ref, { tokens: [1, 2], maxTokens: 3, temperature: 0 });
    const old = await Promise.all(runs);
    expect(old.map(tokensOf)).toEqual(want);
    expect(old.map((items) => lastOf(items))).toEqual([expect.objectContaining({ model: "small" }), expect.objectContaining({ model: "small" })]);
    expect(lastOf(after)).toMatchObject({ kind: "done", model: "large" });
    expect(tokensOf(after)).toEqual((await greedy(env.ladder.large.path, [[1, 2]], [3]))[0]);
  });

  it("should refuse a bad parallel or queue with a typed error", () => {
    expect(() => modelActor({ ladder: [env.ladder.small], parallel: 0 })).toThrow(expect.objectContaining({ code: "bad-config", message: expect.stringMatching(/parallel/) }));
    expect(() => modelActor({ ladder: [env.ladder.small], parallel: 65 })).toThrow(/parallel/);
    expect(() => modelActor({ ladder: [env.ladder.small], queue: -1 })).toThrow(expect.objectContaining({ code: "bad-config", message: expect.stringMatching(/queue/) }));
  });
});

describe("a kernel fault in a batched step", async () => {
  const native = PROVIDERS.find((p) => p.name === "native-cpu");
  const probe = native === undefined ? undefined : await probeOnce(native);
  if (probe?.available !== true) {
    it.skip(`native-cpu is unavailable here: ${probe?.available === false ? probe.reason : "not built"}`, () => undefined);
    return;
  }

  it("should fail the sequences of that step, retry each on the next chain from its streamed tokens, and count one backend failure", async () => {
    env.system = createActorSystem({ clock: new ManualClock() });
    const ref = env.system.spawn(
      modelActor({
        ladder: [env.ladder.large],
        backends: ["native-cpu", "js"],
        threads: 1,
        isolation: "in-process",
        parallel: 4,
        // The fused block of a batched decode step (only steps of two or more sequences call it): its second call fails.
        faults: [{ backend: "native-cpu", kernel: "bitnetBlockBatch", nth: 2, times: 1 }],
      }),
    );
    const want = await greedy(env.ladder.large.path, PROMPTS, BUDGETS, ["native-cpu"]);
    expect(await greedy(env.ladder.large.path, PROMPTS, BUDGETS, ["js"])).toEqual(want); // same greedy tokens on both chains
    const got = await Promise.all(PROMPTS.map((tokens, i) => start(ref, { tokens, maxTokens: BUDGETS[i] ?? 1, temperature: 0 })));
    expect(got.map(tokensOf)).toEqual(want);
    const ends = got.map((items) => lastOf(items));
    expect(ends.every((e) => e.kind === "done" && e.completionTokens === BUDGETS[ends.indexOf(e)])).toBe(true);
    const retried = ends.filter((e) => e.kind === "done" && e.failures.length > 0);
    expect(retried.length).toBeGreaterThanOrEqual(2); // every sequence of the failed step
    for (const e of retried) {
      expect(e).toMatchObject({ backend: "js", failures: [{ backend: "native-cpu", kernel: "bitnetBlockBatch", error: expect.stringMatching(/injected/) }] });
    }
    // A later request runs on native-cpu again (its success resets the consecutive-failure count).
    const after = lastOf(await start(ref, { tokens: PROMPTS[0] ?? [1], maxTokens: 2, temperature: 0 }));
    expect(after).toMatchObject({ kind: "done", backend: "native-cpu>js", failures: [] });
    const status = await ref.ask({ type: "queryStatus" });
    expect(status.worker).toMatchObject({ faultsInjected: 1, completed: 5, failed: 0, out: [] });
    // One failed step is one failure of the backend, however many requests it carried.
    expect(status.worker?.degradations).toEqual([expect.objectContaining({ backend: "native-cpu", failures: 1, consecutive: 0 })]);
    const released = await ref.ask({ type: "releaseResources" });
    expect(released.worker?.memory.liveAllocations).toBe(0);
  });
});
