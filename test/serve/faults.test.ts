import { describe, expect, it } from "vitest";
import { createActorSystem, ManualClock } from "../../src/actors/index.js";
import { PROVIDERS } from "../../src/backends/providers.js";
import { probeOnce } from "../../src/backends/registry.js";
import { createJsBackend } from "../../src/backends/js/index.js";
import { InjectedFault, modelActor, withFaults } from "../../src/serve/index.js";
import { collect, lastOf, tokensOf, untilWorker, jsGreedy, serveFixtures } from "./helpers.js";

const env = serveFixtures();



describe("the fault decorator", () => {
  it("should throw on the nth call of the chosen kernel only, counting per plan", () => {
    const backend = withFaults(createJsBackend(), [{ backend: "*", kernel: "scale", nth: 2, times: 2 }]);
    const x = { buffer: backend.alloc(16), dtype: "f32" as const, shape: [4] };
    const run = (): unknown => {
      try {
        backend.kernels.scale(x, 2, x);
        return "ok";
      } catch (e) {
        return e;
      }
    };
    const outcomes = [run(), run(), run(), run()];
    backend.kernels.softmax(x, x); // other kernels are not counted
    backend.free(x.buffer);
    expect(outcomes[0]).toBe("ok");
    expect(outcomes[1]).toBeInstanceOf(InjectedFault);
    expect(outcomes[2]).toMatchObject({ kernel: "scale", call: 3 });
    expect(outcomes[3]).toBe("ok");
    expect(backend.stats()).toEqual({ calls: 4, injected: 2 });
    expect(backend.liveAllocations()).toBe(0);
  });

  it("should refuse bad plans and process-ending actions outside a worker process", () => {
    expect(() => withFaults(createJsBackend(), [{ backend: "js", nth: 0 }])).toThrow(/nth/);
    expect(() => withFaults(createJsBackend(), [{ backend: "js", probability: 2 }])).toThrow(/probability/);
    expect(() => withFaults(createJsBackend(), [{ backend: "js", action: "kill" }])).toThrow(expect.objectContaining({ code: "bad-config" }));
  });
});

describe("kernel failures in the model actor", async () => {
  const wasm = PROVIDERS.find((p) => p.name === "wasm-simd");
  const probe = wasm === undefined ? undefined : await probeOnce(wasm);
  if (probe?.available !== true) {
    it.skip(`wasm-simd is unavailable here: ${probe?.available === false ? probe.reason : "not built"}`, () => undefined);
    return;
  }

  it("should retry a request on the next backend, take a failing backend out, re-probe it on the clock and put it back", async () => {
    const clock = new ManualClock();
    env.system = createActorSystem({ clock });
    const ref = env.system.spawn(
      modelActor({
        ladder: [env.ladder.small],
        backends: ["wasm-simd", "js"],
        isolation: "in-process",
        faults: [{ backend: "wasm-simd", nth: 1, times: 3 }], // the first three kernel calls on wasm-simd fail
        maxBackendFailures: 3,
        reprobeMs: 1000,
      }),
    );
    const expected = await jsGreedy(env.ladder.small.path, [5, 6], 3);
    for (let i = 1; i <= 3; i++) {
      const items = await collect(ref, { tokens: [5, 6], maxTokens: 3, temperature: 0 });
      expect(tokensOf(items)).toEqual(expected);
      expect(lastOf(items)).toMatchObject({ kind: "done", backend: "js", failures: [{ backend: "wasm-simd", error: expect.stringMatching(/injected/) }] });
    }
    let status = await ref.ask({ type: "queryStatus" });
    expect(status.worker).toMatchObject({ backend: "js", out: ["wasm-simd"], faultsInjected: 3 });
    expect(status.worker?.degradations).toEqual([expect.objectContaining({ backend: "wasm-simd", failures: 3, consecutive: 3, out: true, restored: 0 })]);
    expect(status.degradations).toEqual([expect.objectContaining({ backend: "wasm-simd", failures: 3 })]); // the supervisor's record
    // While it is out, requests go straight to js.
    expect(lastOf(await collect(ref, { tokens: [5, 6], maxTokens: 3, temperature: 0 }))).toMatchObject({ backend: "js", failures: [] });
    await clock.advance(999);
    expect((await ref.ask({ type: "queryStatus" })).worker?.out).toEqual(["wasm-simd"]);
    await clock.advance(1);
    status = await untilWorker(ref, (w) => w.out.length === 0);
    expect(status.worker?.degradations[0]).toMatchObject({ out: false, consecutive: 0, restored: 1 });
    expect(status.worker?.backend).toBe("wasm-simd>js");
    const back = await collect(ref, { tokens: [5, 6], maxTokens: 3, temperature: 0 });
    expect(lastOf(back)).toMatchObject({ kind: "done", backend: "wasm-simd>js", failures: [] });
    expect(tokensOf(back)).toEqual(expected);
  });

  it("should keep a backend out while its canary fails, and probe again each period", async () => {
    const clock = new ManualClock();
    env.system = createActorSystem({ clock });
    const ref = env.system.spawn(
      modelActor({
        ladder: [env.ladder.small],
        backends: ["wasm-simd", "js"],
        isolation: "in-process",
        faults: [{ backend: "wasm-simd", kernel: "embedding", nth: 1, times: 0 }],
        maxBackendFailures: 2,
        reprobeMs: 500,
      }),
    );
    for (let i = 0; i < 2; i++) {
      expect(lastOf(await collect(ref, { tokens: [1], maxTokens: 2 }))).toMatchObject({ kind: "done", backend: "js" });
    }
    for (let period = 1; period <= 3; period++) {
      await clock.advance(500);
      const status = await untilWorker(ref, (w) => (w.degradations[0]?.failures ?? 0) >= 2 + period);
      expect(status.worker?.out).toEqual(["wasm-simd"]);
    }
  });

  it("should continue a request on the next backend from the tokens it already streamed", async () => {
    env.system = createActorSystem({ clock: new ManualClock() });
    const ref = env.system.spawn(
      modelActor({
        ladder: [env.ladder.small],
        backends: ["wasm-simd", "js"],
        isolation: "in-process",
        faults: [{ backend: "wasm-simd", kernel: "embedding", nth: 4, times: 0 }], // prefill + 2 decode steps, then fail
      }),
    );
    const items = await collect(ref, { tokens: [7, 8, 9], maxTokens: 8, temperature: 0 });
    expect(tokensOf(items)).toEqual(await jsGreedy(env.ladder.small.path, [7, 8, 9], 8));
    expect(lastOf(items)).toMatchObject({ kind: "done", completionTokens: 8, backend: "js", failures: [{ backend: "wasm-simd", kernel: "embedding" }] });
    const released = await ref.ask({ type: "releaseResources" });
    expect(released.worker?.memory.liveAllocations).toBe(0); // nothing leaked by the failed forward passes
  });
});

describe("a kernel that fails on every backend", () => {
  it("should end the request with a typed kernel error and keep the actor serving", async () => {
    env.system = createActorSystem({ clock: new ManualClock() });
    const ref = env.system.spawn(
      modelActor({ ladder: [env.ladder.small], backends: ["js"], isolation: "in-process", faults: [{ backend: "js", kernel: "rmsNorm", nth: 1, times: 1 }] }),
    );
    const items = await collect(ref, { tokens: [1, 2], maxTokens: 2 });
    expect(items).toEqual([expect.objectContaining({ kind: "error", code: "kernel", failures: [expect.objectContaining({ backend: "js", kernel: "rmsNorm" })] })]);
    expect(lastOf(await collect(ref, { tokens: [1, 2], maxTokens: 2 })).kind).toBe("done");
    const status = await ref.ask({ type: "queryStatus" });
    expect(status.worker).toMatchObject({ out: [], completed: 1, failed: 1 }); // the last backend is never taken out
    expect(status.restarts).toBe(0);
  });
});
