/** Admission by predicted wait: the predictor's model (unit) and a 429 with Retry-After from a real server. */
import fs from "node:fs/promises";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { makeBitnetFixture } from "../../../src/model/bitnet/fixture.js";
import {
  Admission,
  DEFAULT_DECODE_TOKENS_PER_SECOND,
  DEFAULT_PREFILL_TOKENS_PER_SECOND,
  DEVIATION_EWMA_WEIGHT,
  DEVIATION_WEIGHT,
  RATE_EWMA_WEIGHT,
  WaitPredictor,
} from "../../../src/serve/http/admission.js";
import { ServeError } from "../../../src/serve/errors.js";
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

  it("should fold measurements in as a mean and deviation of the time per token, predicting with mean + 2 deviations", () => {
    const p = new WaitPredictor(4);
    // Prefill 2 ms/token; decode 1000 ms / 20 tokens / batch 2 = 25 ms per token of the aggregate.
    p.observe({ promptTokens: 50, prefillMs: 100, completionTokens: 21, decodeMs: 1000, meanBatch: 2 });
    // The first sample sets the mean and half of it as the deviation (RFC 6298): 2 + 2 × 1 and 25 + 2 × 12.5.
    expect(p.rates.prefillTokensPerSecond).toBeCloseTo(1000 / 4, 9);
    expect(p.rates.decodeTokensPerSecond).toBeCloseTo(1000 / 50, 9);
    expect(p.rates.measurements).toBe(1);
    // Prefill 1 ms/token; decode 1000 / 10 / 4 (the batch of 9 is capped at parallel 4) = 25 ms/token.
    p.observe({ promptTokens: 100, prefillMs: 100, completionTokens: 11, decodeMs: 1000, meanBatch: 9 });
    const prefillMean = 2 + RATE_EWMA_WEIGHT * (1 - 2);
    const prefillDeviation = 1 + DEVIATION_EWMA_WEIGHT * (Math.abs(2 - 1) - 1);
    expect(1000 / p.rates.prefillTokensPerSecond).toBeCloseTo(prefillMean + DEVIATION_WEIGHT * prefillDeviation, 9);
    expect(1000 / p.rates.decodeTokensPerSecond).toBeCloseTo(25 + DEVIATION_WEIGHT * (12.5 + DEVIATION_EWMA_WEIGHT * (0 - 12.5)), 9);
    // A service time uses the predicted times: 10 prompt tokens and 4 tokens after the first, decoded 4 to a step.
    expect(p.serviceMs({ promptTokens: 10, maxTokens: 5 })).toBeCloseTo(10 * (1000 / p.rates.prefillTokensPerSecond) + 4 * 4 * (1000 / p.rates.decodeTokensPerSecond), 6);
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
  it("should refuse by count (full) and by predicted wait (until a slot frees + its own prefill), and start the clock of a promoted request", () => {
    let now = 0;
    const a = new Admission(1, 2, 1500, () => now);
    const work = { promptTokens: 100, maxTokens: 11 }; // default rates: 1000 ms prefill + 1000 ms decode
    const first = a.admit(work); // a free slot: no wait
    expect(first.ok).toBe(true);
    now = 1000;
    expect(a.predictedWaitMs()).toBeCloseTo(1000, 6); // until the slot frees
    expect(a.admit(work)).toEqual({ ok: false, reason: "wait", waitMs: 2000 }); // + its own prefill > 1500
    now = 1600;
    const second = a.admit(work); // 400 + 1000 <= 1500
    expect(second.ok).toBe(true);
    // Behind both: the first slot frees at 400 ms, the second holds it 2000 ms more, then its own prefill.
    expect(a.admit(work)).toEqual({ ok: false, reason: "wait", waitMs: 3400 });
    if (!first.ok) {
      throw new Error("unreachable");
    }
    now = 1800;
    first.release();
    first.release(); // once only
    expect(a.admitted).toBe(1);
    expect(a.predictedWaitMs()).toBeCloseTo(2000, 6); // the second holds the slot from 1800 on
    now = 3800; // its predicted service is over: the slot counts as free
    expect(a.admit(work).ok).toBe(true);
    expect(a.tryAcquire()).toBeDefined(); // a multi-choice request's extra slot: counts, no work of its own
    expect(a.admitted).toBe(3);
    expect(a.admit({ promptTokens: 1, maxTokens: 1 })).toMatchObject({ ok: false, reason: "full" });
  });

  it("should learn how late queued requests get their slot and add it (mean + 2 deviations) to later slot waits", () => {
    let now = 0;
    const a = new Admission(1, 4, undefined, () => now);
    const work = { promptTokens: 100, maxTokens: 11 }; // 2000 ms
    const first = a.admit(work);
    expect(a.admit(work).ok).toBe(true); // queued: its slot is predicted in 2000 ms
    if (!first.ok) {
      throw new Error("unreachable");
    }
    now = 2600;
    first.release(); // 600 ms later than predicted (the HTTP side, a busy machine)
    expect(a.predictor.latenessMs).toBeCloseTo(600 + DEVIATION_WEIGHT * 300, 6);
    expect(a.predictedWaitMs()).toBeCloseTo(2000 + 1200, 6);
    expect(a.predictedWaitMs(work)).toBeCloseTo(2000 + 1200 + 1000, 6);
  });

  it("should refuse a maxWaitMs outside 1..MAX_WAIT_LIMIT_MS with a bad-config ServeError", () => {
    expect(() => new Admission(1, 1, 0)).toThrow(/maxWaitMs must be an integer in 1\.\.3600000/);
    expect(() => new Admission(1, 1, Number.NaN)).toThrow(ServeError);
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
