/**
 * Soak: many small requests through a supervised model actor with random injected faults. Every request
 * must end with `done`, a typed `error`, or our own cancellation; nothing hangs; memory returns.
 *
 * Counts: BARBELL_SOAK_REQUESTS (default 10 000, about 10 s here) through the in-process worker,
 * BARBELL_SOAK_PROCESS_REQUESTS (default 200) through the child-process worker with SIGKILLs. RSS is
 * compared after a warm-up and after release with a generous slack: a leak of a few KiB per request would
 * exceed it at 10 000 requests; the allocation counters must be exactly zero.
 */
import v8 from "node:v8";
import vm from "node:vm";
import { describe, expect, it } from "vitest";
import { createActorSystem, ManualClock, type ActorRef } from "../../src/actors/index.js";
import { PROVIDERS } from "../../src/backends/providers.js";
import { probeOnce } from "../../src/backends/registry.js";
import { mulberry32 } from "../../src/model/bitnet/fixture.js";
import { modelActor, type ModelMsg } from "../../src/serve/index.js";
import { serveFixtures } from "./helpers.js";

const REQUESTS = Number(process.env["BARBELL_SOAK_REQUESTS"] ?? 10_000);
const PROCESS_REQUESTS = Number(process.env["BARBELL_SOAK_PROCESS_REQUESTS"] ?? 200);
/** Live JS memory (V8 heap in use + external buffers, after a full GC) may stay above its start by this much. */
const LIVE_SLACK_BYTES = 64 * 1024 * 1024;
/**
 * RSS may stay above its start by this much (allocator noise, pooled buffers, JIT code, and the heap V8 keeps
 * reserved after a GC: Node 24 kept ~200 MB of heap after this soak with ~28 MB of it in use).
 */
const RSS_SLACK_BYTES = 256 * 1024 * 1024;
const live = (): number => {
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
};

v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;

const env = serveFixtures();

interface Outcomes {
  done: number;
  errors: Record<string, number>;
  cancelled: number;
  resent: number;
  retriedOnNextBackend: number;
}

/** Runs `count` random requests, `concurrency` at a time; every request must end in one of the three ways. */
async function drive(ref: ActorRef<ModelMsg>, count: number, concurrency: number, seed: number, between?: (i: number) => Promise<void>): Promise<Outcomes> {
  const random = mulberry32(seed);
  const outcomes: Outcomes = { done: 0, errors: {}, cancelled: 0, resent: 0, retriedOnNextBackend: 0 };
  const one = async (): Promise<void> => {
    const maxTokens = 1 + Math.floor(random() * 4);
    const tokens = Array.from({ length: 1 + Math.floor(random() * 2) }, () => Math.floor(random() * 256));
    const cancelAfter = random() < 0.05 ? Math.floor(random() * maxTokens) : -1;
    const sampled = random() < 0.5 ? { temperature: 0.8, seed: Math.floor(random() * 1000) } : { temperature: 0 };
    const opened = ref.stream({ type: "processInput", request: { tokens, maxTokens, ...sampled } });
    if (!opened.ok) {
      throw opened.error;
    }
    let seen = 0;
    for await (const item of opened.value) {
      if (item.kind === "token") {
        if (seen++ === cancelAfter) {
          outcomes.cancelled++;
          return; // leaving the loop cancels the request
        }
      } else if (item.kind === "done") {
        outcomes.done++;
        outcomes.resent += item.resent;
        outcomes.retriedOnNextBackend += item.failures.length > 0 ? 1 : 0;
        return;
      } else if (item.kind === "error") {
        outcomes.errors[item.code] = (outcomes.errors[item.code] ?? 0) + 1;
        return;
      }
    }
    throw new Error("a request ended without done or error");
  };
  for (let i = 0; i < count; i += concurrency) {
    await Promise.all(Array.from({ length: Math.min(concurrency, count - i) }, () => one()));
    await between?.(i);
  }
  return outcomes;
}

const total = (o: Outcomes): number => o.done + o.cancelled + Object.values(o.errors).reduce((a, b) => a + b, 0);

describe("soak", () => {
  it(`should end each of ${REQUESTS} requests cleanly under random kernel faults, and give its memory back`, async () => {
    const wasm = PROVIDERS.find((p) => p.name === "wasm-simd");
    const hasWasm = wasm !== undefined && (await probeOnce(wasm)).available;
    const clock = new ManualClock();
    env.system = createActorSystem({ clock });
    const ref = env.system.spawn(
      modelActor({
        ladder: [env.ladder.small],
        backends: hasWasm ? ["wasm-simd", "js"] : ["js"],
        isolation: "in-process",
        faults: [
          { backend: "wasm-simd", probability: 0.004, seed: 3 },
          { backend: "js", probability: 0.0005, seed: 4 },
        ],
        maxBackendFailures: 3,
        reprobeMs: 1000,
      }),
    );
    await drive(ref, 200, 8, 1); // warm-up: JIT, pools
    gc();
    const rssBefore = process.memoryUsage().rss;
    const liveBefore = live();
    const outcomes = await drive(ref, REQUESTS, 8, 2, async (i) => {
      if (i % 200 === 0) {
        await clock.advance(1000); // re-probe backends that were taken out
      }
    });
    const status = await ref.ask({ type: "queryStatus" });
    const released = await ref.ask({ type: "releaseResources" });
    await env.system.stop();
    env.system = undefined;
    gc();
    const rssAfter = process.memoryUsage().rss;
    const liveAfter = live();
    expect(total(outcomes)).toBe(REQUESTS);
    expect(Object.keys(outcomes.errors).filter((code) => code !== "kernel")).toEqual([]);
    expect(outcomes.done).toBeGreaterThan(REQUESTS * 0.8);
    expect(status.worker?.faultsInjected).toBeGreaterThan(0);
    expect(outcomes.retriedOnNextBackend + (outcomes.errors["kernel"] ?? 0)).toBeGreaterThan(0);
    expect(released.worker?.memory.liveAllocations).toBe(0);
    expect(liveAfter).toBeLessThan(liveBefore + LIVE_SLACK_BYTES);
    expect(rssAfter).toBeLessThan(rssBefore + RSS_SLACK_BYTES);
  });

  it(`should end each of ${PROCESS_REQUESTS} requests cleanly while the worker process is killed at random`, async () => {
    env.system = createActorSystem();
    const ref = env.system.spawn(
      modelActor({
        ladder: [env.ladder.small],
        backends: ["js"],
        faults: [{ backend: "js", probability: 0.0005, seed: 9, action: "kill" }],
        supervision: { maxRestarts: 100, withinMs: 60_000 },
        maxAttempts: 5,
      }),
    );
    const outcomes = await drive(ref, PROCESS_REQUESTS, 4, 5);
    const status = await ref.ask({ type: "queryStatus" });
    const released = await ref.ask({ type: "releaseResources" });
    expect(total(outcomes)).toBe(PROCESS_REQUESTS);
    expect(Object.keys(outcomes.errors).filter((code) => code !== "crashed")).toEqual([]);
    expect(status.restarts).toBeGreaterThan(0);
    expect(status.lastFailure?.code).toBe("crashed");
    expect(released.worker?.memory.liveAllocations).toBe(0);
  });
});
