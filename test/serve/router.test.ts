import { describe, expect, it } from "vitest";
import { createActorSystem, ManualClock, type ActorRef } from "../../src/actors/index.js";
import { loadModel } from "../../src/engine/model.js";
import { cascadeRouter, confidenceScore, type CascadeOptions, type CascadeOutput, type RouterMsg } from "../../src/serve/index.js";
import { serveFixtures } from "./helpers.js";

const env = serveFixtures();

const request = { tokens: [1, 2, 3], maxTokens: 6, temperature: 0 };

function router(options: Omit<CascadeOptions, "ladder" | "model">): ActorRef<RouterMsg> {
  env.system = createActorSystem({ clock: new ManualClock() });
  return env.system.spawn(cascadeRouter({ ladder: [env.ladder.small, env.ladder.large], model: { backends: ["js"], isolation: "in-process" }, ...options }));
}

async function run(ref: ActorRef<RouterMsg>): Promise<CascadeOutput[]> {
  const opened = ref.stream({ type: "processInput", request });
  if (!opened.ok) {
    throw opened.error;
  }
  const out: CascadeOutput[] = [];
  for await (const item of opened.value) {
    out.push(item);
  }
  return out;
}

function done(items: readonly CascadeOutput[]): Extract<CascadeOutput, { kind: "done" }> {
  const last = items[items.length - 1];
  if (last?.kind !== "done") {
    throw new Error(`no done item: ${JSON.stringify(last)}`);
  }
  return last;
}

const tokens = (items: readonly CascadeOutput[]): number[] => items.flatMap((i) => (i.kind === "token" && i.token !== undefined ? [i.token] : []));

async function direct(path: string): Promise<{ tokens: number[]; minProb: number }> {
  using model = await loadModel(path, { backends: ["js"], autotune: false });
  const pieces = [];
  for await (const piece of model.generate(request.tokens, { temperature: 0, maxTokens: request.maxTokens })) {
    pieces.push(piece);
  }
  return { tokens: pieces.flatMap((p) => (p.token === null ? [] : [p.token])), minProb: Math.min(...pieces.slice(0, 4).map((p) => Math.exp(p.logprob))) };
}

describe("the cascade router", () => {
  it("should keep the small model when its window is confident enough", async () => {
    const small = await direct(env.ladder.small.path);
    const ref = router({ metric: "min-prob", threshold: small.minProb * 0.99, window: 4 });
    const items = await run(ref);
    expect(tokens(items)).toEqual(small.tokens);
    expect(done(items)).toMatchObject({ model: "small", cascade: [{ model: "small", escalated: false }] });
    expect(done(items).cascade[0]?.score).toBeCloseTo(small.minProb, 10);
    expect(items.some((i) => i.kind === "token" && i.entropy !== undefined)).toBe(false); // not asked for
  });

  it("should escalate to the large model when the small one is out of its depth, and say so", async () => {
    const small = await direct(env.ladder.small.path);
    const large = await direct(env.ladder.large.path);
    const ref = router({ metric: "min-prob", threshold: small.minProb * 1.01, window: 4 });
    const items = await run(ref);
    expect(tokens(items)).toEqual(large.tokens); // none of the small model's held tokens leaked
    expect(done(items)).toMatchObject({
      model: "large",
      cascade: [
        { model: "small", escalated: true },
        { model: "large", escalated: false },
      ],
    });
    const status = await ref.ask({ type: "queryStatus" });
    expect(status).toMatchObject({ requests: 1, escalations: 1, answeredBy: { small: 0, large: 1 } });
    expect(status.rungs.map((r) => r.worker?.completed)).toEqual([0, 1]); // the small request was cancelled
  });

  it("should escalate on entropy: a zero threshold always escalates, a huge one never does", async () => {
    let ref = router({ metric: "entropy", threshold: 0 });
    expect(done(await run(ref)).model).toBe("large");
    await env.system?.stop();
    ref = router({ metric: "entropy", threshold: 1e9 });
    const items = await run(ref);
    expect(done(items)).toMatchObject({ model: "small" });
    expect(done(items).cascade[0]?.score).toBeGreaterThan(0);
    expect(done(items).cascade[0]?.score).toBeLessThanOrEqual(Math.log(300) + 1e-9);
  });

  it("should score windows as documented and refuse bad options", () => {
    expect(confidenceScore("min-prob", [{ logprob: Math.log(0.5) }, { logprob: Math.log(0.25) }])).toBeCloseTo(0.25);
    expect(confidenceScore("entropy", [{ logprob: 0, entropy: 1 }, { logprob: 0, entropy: 3 }])).toBe(2);
    expect(confidenceScore("entropy", [])).toBeNaN();
    expect(() => cascadeRouter({ ladder: [], threshold: 1 })).toThrow(/at least one/);
    expect(() => cascadeRouter({ ladder: [env.ladder.small], threshold: Number.NaN })).toThrow(/threshold/);
    expect(() => cascadeRouter({ ladder: [env.ladder.small], threshold: 1, window: 0 })).toThrow(/window/);
  });
});
