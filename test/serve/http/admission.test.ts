/** Admission by predicted wait: the predictor's model (unit) and a 429 with Retry-After from a real server. */
import fs from "node:fs/promises";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { makeBitnetFixture } from "../../../src/model/bitnet/fixture.js";
import {
  Admission,
  DEFAULT_DECODE_TOKENS_PER_SECOND,
  DEFAULT_PREFILL_TOKENS_PER_SECOND,
  RATE_EWMA_WEIGHT,
  WaitPredictor,
} from "../../../src/serve/http/admission.js";
import { post, startServer, until, writeModel, type Running } from "./helpers.js";

describe("WaitPredictor", () => {
  it("should predict service times from the default rates until the first measurement", () => {
    const p = new WaitPredictor(1);
    expect(p.rates).toEqual({ prefillTokensPerSecond: DEFAULT_PREFILL_TOKENS_PER_SECOND, decodeTokensPerSecond: DEFAULT_DECODE_TOKENS_PER_SECOND, measurements: 0 });
    // 100 prompt tokens at 100/s, then 10 tokens after the first at 10/s.
    expect(p.serviceMs({ promptTokens: 100, maxTokens: 11 })).toBeCloseTo(2000, 6);
    expect(p.serviceMs({ promptTokens: 100, maxTokens: 11, choices: 3 })).toBeCloseTo(6000, 6);
    // With 2 slots busy, a request decodes at half the aggregate rate.
    expect(new WaitPredictor(2).serviceMs({ promptTokens: 100, maxTokens: 11 })).toBeCloseTo(3000, 6);
  });

  it("should fold measurements in: the first replaces the defaults, later ones move the mean by the EWMA weight", () => {
    const p = new WaitPredictor(4);
    p.observe({ promptTokens: 50, prefillMs: 100, completionTokens: 21, decodeMs: 1000, meanBatch: 2 });
    expect(p.rates).toMatchObject({ prefillTokensPerSecond: 500, decodeTokensPerSecond: 40, measurements: 1 }); // 20 tokens/s × batch 2
    p.observe({ promptTokens: 100, prefillMs: 100, completionTokens: 11, decodeMs: 1000, meanBatch: 9 }); // batch capped at parallel 4
    expect(p.rates.prefillTokensPerSecond).toBeCloseTo(500 + RATE_EWMA_WEIGHT * (1000 - 500), 9);
    expect(p.rates.decodeTokensPerSecond).toBeCloseTo(40 + RATE_EWMA_WEIGHT * (40 - 40), 9);
    p.observe({ promptTokens: 10, prefillMs: 0.01, completionTokens: 1, decodeMs: 0, meanBatch: 1 }); // below timer resolution, nothing decoded
    expect(p.rates.measurements).toBe(2);
  });

  it("should give 0 while a slot is free, else when the first slot frees after the requests waiting ahead", () => {
    const p = new WaitPredictor(2);
    const work = { promptTokens: 100, maxTokens: 11 }; // 3000 ms each with 2 busy slots
    expect(p.waitMs([{ work, ranMs: 500 }])).toBe(0);
    expect(p.waitMs([{ work, ranMs: 500 }, { work, ranMs: 2000 }])).toBeCloseTo(1000, 6);
    // A third waits for the slot freeing at 1000 ms and holds it until 4000; the next frees at 2500.
    expect(p.waitMs([{ work, ranMs: 500 }, { work, ranMs: 2000 }, { work, ranMs: undefined }])).toBeCloseTo(2500, 6);
    // A request that ran past its prediction frees its slot "now".
    expect(p.waitMs([{ work, ranMs: 9000 }, { work, ranMs: 0 }])).toBe(0);
  });
});

describe("Admission", () => {
  it("should refuse by count (full) and by predicted wait, and note when a waiting request gets a slot", () => {
    let now = 0;
    const a = new Admission(1, 2, 1500, () => now);
    const work = { promptTokens: 100, maxTokens: 11 }; // 2000 ms with one slot
    const first = a.admit(work);
    expect(first.ok).toBe(true);
    now = 1000;
    expect(a.predictedWaitMs()).toBeCloseTo(1000, 6);
    const second = a.admit(work); // waits 1000 ms <= 1500
    expect(second.ok).toBe(true);
    expect(a.admit(work)).toEqual({ ok: false, reason: "wait", waitMs: 3000 });
    if (!first.ok || !second.ok) {
      throw new Error("unreachable");
    }
    now = 1200;
    first.release();
    first.release(); // once only
    expect(a.admitted).toBe(1);
    expect(a.predictedWaitMs()).toBeCloseTo(2000, 6); // the second started at 1200
    now = 3000;
    const third = a.admit(work);
    expect(third.ok).toBe(true);
    const extra = a.tryAcquire(); // a multi-choice request's extra slot: counts, no work of its own
    expect(extra).toBeDefined();
    expect(a.admit({ promptTokens: 1, maxTokens: 1 })).toMatchObject({ ok: false, reason: "full" });
  });
});

// A model slow enough on the js backend that a long generation is still running when the next request comes.
let model: Awaited<ReturnType<typeof writeModel>>;
let slow: string;
let running: Running | undefined;
beforeAll(async () => {
  model = await writeModel();
  slow = path.join(model.dir, "slow.gguf");
  await fs.writeFile(slow, makeBitnetFixture({ layers: 6, hidden: 512, ffn: 1024, vocab: 300, contextLength: 512, seed: 5 }));
});
afterEach(async () => {
  await running?.server.shutdown(100);
  running = undefined;
});
afterAll(async () => {
  await model.remove();
});

describe("admission by predicted wait over HTTP", () => {
  it("should answer 429 with the predicted wait as Retry-After while a long request runs, though the queue has room", async () => {
    running = await startServer(slow, { parallel: 1, queue: 8 }, { maxWaitMs: 100 });
    const { url, server } = running;
    const controller = new AbortController();
    const long = await fetch(`${url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "tiny", prompt: [1, 2, 3], max_tokens: 500, temperature: 0, stream: true }),
      signal: controller.signal,
    });
    await long.body?.getReader().read(); // its first event: it runs
    // No measurement yet: 499 tokens at the conservative default rate are far more than 100 ms away.
    const refused = await post(`${url}/v1/completions`, { model: "tiny", prompt: [4, 5], max_tokens: 1 });
    expect(refused.status).toBe(429);
    expect(refused.json).toMatchObject({ error: { type: "rate_limit_error", code: "rate_limit_exceeded", message: expect.stringMatching(/wait about \d+ ms \(more than 100 ms\)/) } });
    const wait = server.served[0]?.admission.predictedWaitMs() ?? 0;
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(Math.ceil(wait / 1000));
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(1);
    controller.abort();
    await until(() => server.served[0]?.admission.admitted === 0);
    expect((await post(`${url}/v1/completions`, { model: "tiny", prompt: [4, 5], max_tokens: 2 })).status).toBe(200); // a free slot: no wait
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toContain('barbell_rejected_requests_total{model="tiny"} 1');
    expect(server.served[0]?.admission.predictor.rates.measurements).toBe(1); // the finished request was measured
  });
});
