/** The model worker in its own child process: crashes, restarts, in-flight requests, memory. */
import { describe, expect, it } from "vitest";
import { createActorSystem } from "../../src/actors/index.js";
import { modelActor, type ModelOutput } from "../../src/serve/index.js";
import { collect, lastOf, tokensOf, jsGreedy, serveFixtures } from "./helpers.js";

const env = serveFixtures();

const noBackoff = { maxRestarts: 5, withinMs: 60_000 };


describe("the model actor with its worker in a child process", () => {
  it("should serve from another process and free its memory there on ReleaseResources", async () => {
    env.system = createActorSystem();
    const ref = env.system.spawn(modelActor({ ladder: [env.ladder.small, env.ladder.large], backends: ["js"] }));
    const items = await collect(ref, { tokens: [1, 2, 3], maxTokens: 4, temperature: 0 });
    expect(tokensOf(items)).toEqual(await jsGreedy(env.ladder.small.path, [1, 2, 3], 4));
    const status = await ref.ask({ type: "queryStatus" });
    expect(status).toMatchObject({ available: true, isolation: "process", restarts: 0 });
    expect(status.worker?.pid).not.toBe(process.pid);
    const released = await ref.ask({ type: "releaseResources" });
    expect(released.worker).toMatchObject({ loaded: false, memory: { liveAllocations: 0, liveBytes: 0 } });
    const expanded = await ref.ask({ type: "expandCapability" });
    expect(expanded).toMatchObject({ ok: true, status: { worker: { model: "large", loaded: true } } });
  });

  it("should re-send a request the crash interrupted before it streamed, and end a streamed one with `crashed`", async () => {
    env.system = createActorSystem();
    const ref = env.system.spawn(
      modelActor({
        ladder: [env.ladder.small],
        backends: ["js"],
        supervision: noBackoff,
        // The first incarnation dies (SIGKILL) on its 4th embedding call: after the prefill and two decode steps.
        faults: [{ backend: "js", kernel: "embedding", nth: 4, action: "kill", incarnations: 1 }],
      }),
    );
    const first = await ref.ask({ type: "queryStatus" });
    const streamed = ref.stream({ type: "processInput", request: { tokens: [1, 2], maxTokens: 10, temperature: 0 } });
    const waiting = collect(ref, { tokens: [3, 4], maxTokens: 3, temperature: 0 }); // queued behind it in the worker
    if (!streamed.ok) {
      throw streamed.error;
    }
    const items: ModelOutput[] = [];
    for await (const item of streamed.value) {
      items.push(item);
    }
    expect(tokensOf(items)).toHaveLength(3);
    expect(lastOf(items)).toMatchObject({ kind: "error", code: "crashed", completionTokens: 3 });
    expect(lastOf(items).kind === "error" && lastOf(items)).toMatchObject({ message: expect.stringMatching(/SIGKILL/) });
    const resent = await waiting;
    expect(tokensOf(resent)).toEqual(await jsGreedy(env.ladder.small.path, [3, 4], 3));
    expect(lastOf(resent)).toMatchObject({ kind: "done", resent: 1 });
    const status = await ref.ask({ type: "queryStatus" });
    expect(status).toMatchObject({ restarts: 1, available: true, lastFailure: { code: "crashed" } });
    expect(status.worker?.pid).not.toBe(first.worker?.pid);
    expect(status.worker?.incarnation).toBe(1);
  });

  it("should end requests with a clear error when the worker keeps dying, never hang", async () => {
    env.system = createActorSystem();
    const ref = env.system.spawn(
      modelActor({
        ladder: [env.ladder.small],
        backends: ["js"],
        supervision: { maxRestarts: 2, withinMs: 60_000 },
        maxAttempts: 2,
        preload: false,
        faults: [{ backend: "js", action: "abort" }], // every incarnation aborts on its first kernel call
      }),
    );
    const items = await collect(ref, { tokens: [1], maxTokens: 2 });
    expect(items).toEqual([expect.objectContaining({ kind: "error", code: "unavailable", message: expect.stringMatching(/2 attempt/) })]);
    const status = await ref.ask({ type: "queryStatus" });
    expect(status.restarts).toBe(2);
    expect(status.lastFailure?.code).toBe("crashed");
  });

  it("should keep cumulative counters and log one line per failure, restart and escalation past the restart intensity", async () => {
    env.system = createActorSystem();
    const lines: string[] = [];
    const ref = env.system.spawn(
      modelActor({
        ladder: [env.ladder.small],
        backends: ["js"],
        supervision: { maxRestarts: 1, withinMs: 60_000 },
        preload: false,
        faults: [{ backend: "js", action: "abort" }], // every incarnation aborts on its first kernel call
        log: (line) => lines.push(line),
      }),
    );
    // Failure 1 restarts the worker and the request is re-sent; failure 2 exceeds 1 restart in 60 s: the worker
    // is stopped, the model actor fails `escalated` and the system (its supervisor) restarts it.
    const ended = await collect(ref, { tokens: [1], maxTokens: 2 }).then(
      (items) => lastOf(items),
      (error: unknown) => error,
    );
    expect(ended).toMatchObject({ code: expect.stringMatching(/^(unavailable|escalated)$/) });
    const status = await ref.ask({ type: "queryStatus" }); // answered by the model actor's new incarnation
    expect(ref.restarts).toBe(1);
    expect(status).toMatchObject({ restarts: 1, crashes: 2, escalations: 1, available: true, lastFailure: { code: "crashed" } });
    expect(lines).toEqual([
      expect.stringMatching(/^model 'small': worker failed \(crashed: .*\); restart 1 of at most 1 in 60000 ms, in 0 ms \(1 restart\(s\), 1 failure\(s\) in total\)$/),
      expect.stringMatching(/^model 'small': worker failed \(crashed: .*\); ESCALATED: more than 1 restart\(s\) within 60000 ms.*\(1 escalation\(s\), 2 failure\(s\) in total\)$/),
      "model 'small': the model actor restarted (1 time(s)) with a new worker",
    ]);
  });
});
