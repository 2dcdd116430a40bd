/** A cascade id over HTTP: it answers, streaming and not, and the `barbell` field says which rung produced the output. */
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, type BarbellServer } from "../../../src/serve/http/index.js";
import type { ServedModelConfig } from "../../../src/serve/http/served.js";
import { writeLadder, type Ladder } from "../fixtures.js";

interface Report {
  model: string;
  cascade: { model: string; score: number | null; escalated: boolean }[];
}

let ladder: Ladder;
let server: BarbellServer;
let client: OpenAI;
let smallMinProb = 0;
const messages = [{ role: "user" as const, content: "Hello there" }];
const WINDOW = 4;

async function start(
  cascades: { name: string; threshold: number }[],
  isolation: "in-process" | "process" = "in-process",
): Promise<{ server: BarbellServer; client: OpenAI; url: string }> {
  const models: ServedModelConfig[] = [ladder.small, ladder.large].map((r) => ({ ...r, isolation, backends: ["js"] }));
  const s = await createServer({ models, cascades: cascades.map((c) => ({ ...c, rungs: ["small", "large"], metric: "min-prob", window: WINDOW })), log: () => undefined, publicHealth: true });
  const url = await s.listen(0);
  return { server: s, url, client: new OpenAI({ baseURL: `${url}/v1`, apiKey: "unused", maxRetries: 0 }) };
}

beforeAll(async () => {
  ladder = await writeLadder();
  // The small model's confidence on this prompt (the smallest probability of its first WINDOW greedy tokens)
  // sets thresholds just below it (the small model answers) and just above it (the cascade escalates).
  const probe = await start([]);
  const r = await probe.client.chat.completions.create({ model: "small", messages, max_tokens: 6, temperature: 0, logprobs: true });
  await probe.server.shutdown(1000);
  smallMinProb = Math.min(...(r.choices[0]?.logprobs?.content ?? []).slice(0, WINDOW).map((t) => Math.exp(t.logprob)));
  expect(smallMinProb).toBeGreaterThan(0);
  ({ server, client } = await start([
    { name: "keep", threshold: smallMinProb * 0.99 },
    { name: "escalate", threshold: smallMinProb * 1.01 },
  ]));
});
afterAll(async () => {
  await server.shutdown(1000);
  await ladder.remove();
});

async function direct(model: string): Promise<string> {
  const r = await client.chat.completions.create({ model, messages, max_tokens: 6, temperature: 0 });
  expect((r as unknown as { barbell?: unknown }).barbell).toBeUndefined(); // plain models have no cascade report
  return r.choices[0]?.message.content ?? "";
}

async function streamed(model: string): Promise<{ text: string; reports: Report[]; finish: (string | null)[] }> {
  const stream = await client.chat.completions.create({ model, messages, max_tokens: 6, temperature: 0, stream: true });
  let text = "";
  const reports: Report[] = [];
  const finish: (string | null)[] = [];
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta.content ?? "";
    finish.push(chunk.choices[0]?.finish_reason ?? null);
    const report = (chunk as unknown as { barbell?: Report }).barbell;
    if (report !== undefined) {
      reports.push(report);
    }
  }
  return { text, reports, finish };
}

describe("a cascade over HTTP", () => {
  it("should list the cascade in /v1/models", async () => {
    const ids = (await client.models.list()).data.map((m) => m.id);
    expect(ids).toEqual(["small", "large", "keep", "escalate"]);
  });

  it("should answer from the small rung when it is confident, and say so", async () => {
    const r = await client.chat.completions.create({ model: "keep", messages, max_tokens: 6, temperature: 0 });
    expect(r.model).toBe("keep");
    expect(r.choices[0]?.message.content).toBe(await direct("small"));
    expect(r.usage?.completion_tokens).toBe(6);
    const report = (r as unknown as { barbell: Report }).barbell;
    expect(report).toMatchObject({ model: "small", cascade: [{ model: "small", escalated: false }] });
    expect(report.cascade).toHaveLength(1);
    expect(report.cascade[0]?.score).toBeCloseTo(smallMinProb, 6);
  });

  it("should escalate to the large rung when the small one is out of its depth, and say so", async () => {
    const r = await client.chat.completions.create({ model: "escalate", messages, max_tokens: 6, temperature: 0 });
    expect(r.choices[0]?.message.content).toBe(await direct("large"));
    expect((r as unknown as { barbell: Report }).barbell).toMatchObject({
      model: "large",
      cascade: [
        { model: "small", escalated: true },
        { model: "large", escalated: false },
      ],
    });
  });

  it("should stream a cascade's answer with the report on the final chunk, both ways", async () => {
    const kept = await streamed("keep");
    expect(kept.text).toBe(await direct("small"));
    expect(kept.reports).toEqual([{ model: "small", cascade: [{ model: "small", score: expect.closeTo(smallMinProb, 6) as number, escalated: false }] }]);
    expect(kept.finish.at(-1)).toBe("length"); // the report rides on the chunk with the finish reason, the last one
    const escalated = await streamed("escalate");
    expect(escalated.text).toBe(await direct("large"));
    expect(escalated.reports).toHaveLength(1);
    expect(escalated.reports[0]).toMatchObject({ model: "large", cascade: [{ model: "small", escalated: true }, { model: "large", escalated: false }] });
  });

  it("should report every choice of an n > 1 request", async () => {
    const r = await client.completions.create({ model: "escalate", prompt: [1, 2, 3], max_tokens: 5, seed: 3, n: 2 });
    const report = (r as unknown as { barbell: Report & { choices: (Report & { index: number })[] } }).barbell;
    expect(report.choices.map((c) => c.index)).toEqual([0, 1]);
    expect(report.model).toBe(report.choices[0]?.model);
    for (const c of report.choices) {
      expect(["small", "large"]).toContain(c.model);
      expect(c.cascade.at(-1)).toMatchObject({ model: c.model, escalated: false }); // the rung that answered is the last one tried
    }
  });

  it("should route through the models' own actors, in child processes: each model loaded once", async () => {
    const run = await start([{ name: "keep", threshold: smallMinProb * 0.99 }], "process");
    try {
      type Detail = { pid: number; completed: number; rungs?: { pid: number; completed: number }[] };
      const ready = async (): Promise<Record<string, Detail>> =>
        ((await (await fetch(`${run.url}/health/ready`)).json()) as { models: Record<string, Detail> }).models;
      const before = await ready();
      expect(before.small?.pid).not.toBe(process.pid);
      expect(before.small?.pid).toBeGreaterThan(0);
      expect(before.large?.pid).not.toBe(before.small?.pid);
      expect(before.keep?.rungs?.map((r) => r.pid)).toEqual([before.small?.pid, before.large?.pid]);
      const r = await run.client.chat.completions.create({ model: "keep", messages, max_tokens: 6, temperature: 0 });
      expect((r as unknown as { barbell: Report }).barbell.model).toBe("small");
      const after = await ready();
      expect(after.small?.completed).toBe((before.small?.completed ?? 0) + 1); // the cascade's request ran on "small"
      expect(after.keep?.rungs?.[0]?.completed).toBe(after.small?.completed);
    } finally {
      await run.server.shutdown(1000);
    }
  });
});
