/** Overload (429), timeout, client disconnect, shutdown, API keys and CORS. */
import OpenAI from "openai";
import { describe, expect, it } from "vitest";
import { post, type Running, tinyServers, until } from "./helpers.js";

const tiny = tinyServers();
let running: Running | undefined;

const long = { model: "tiny", prompt: [1, 2, 3], max_tokens: 240, temperature: 0 };

async function readAll(res: Response): Promise<string> {
  return await res.text();
}

describe("load and overload", () => {
  it("should refuse the third concurrent request with 429 and Retry-After (parallel 1, queue 1) and complete the accepted ones", async () => {
    running = await tiny.start({ parallel: 1, queue: 1 });
    const { url, server } = running;
    const accepted = [0, 1].map(() =>
      fetch(`${url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ ...long, stream: true }) }),
    );
    await until(() => server.served[0]?.admission.admitted === 2);
    const third = await post(`${url}/v1/completions`, long);
    expect(third.status).toBe(429);
    expect(third.headers.get("retry-after")).toBe("1");
    expect(third.json).toMatchObject({ error: { type: "rate_limit_error", code: "rate_limit_exceeded" } });
    for (const res of await Promise.all(accepted)) {
      expect(res.status).toBe(200);
      const body = await readAll(res);
      expect(body).toContain('"finish_reason":"length"');
      expect(body.trimEnd().endsWith("data: [DONE]")).toBe(true);
    }
    expect(server.served[0]?.admission.admitted).toBe(0);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toContain('barbell_rejected_requests_total{model="tiny"} 1');
    expect(metrics).toContain('barbell_http_requests_total{model="tiny",endpoint="/v1/completions",status="200"} 2');
    expect((await post(`${url}/v1/completions`, { ...long, max_tokens: 2 })).status).toBe(200);
  });

  it("should run a request's n choices side by side while slots are free, each equal to its own seeded request", async () => {
    running = await tiny.start({ parallel: 4, queue: 0 });
    const { url, server } = running;
    const body = { model: "tiny", prompt: [1, 2, 3], max_tokens: 40, temperature: 2, seed: 7 };
    const res = fetch(`${url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ ...body, n: 3, stream: true }) });
    let most = 0;
    const poll = setInterval(() => (most = Math.max(most, server.served[0]?.admission.admitted ?? 0)), 1);
    const text = await (await res).text();
    clearInterval(poll);
    expect(most).toBe(3); // one slot for the request, two more for its other choices
    expect(server.served[0]?.admission.admitted).toBe(0);
    const streamed = ["", "", ""];
    for (const line of text.split("\n")) {
      if (line.startsWith("data: {")) {
        for (const c of (JSON.parse(line.slice(6)) as { choices: { index: number; text: string }[] }).choices) {
          streamed[c.index] += c.text;
        }
      }
    }
    const whole = await post(`${url}/v1/completions`, { ...body, n: 3 });
    const texts = (whole.json as { choices: { index: number; text: string }[] }).choices.map((c) => c.text);
    expect(texts).toEqual(streamed);
    for (const index of [0, 1, 2]) {
      const alone = await post(`${url}/v1/completions`, { ...body, seed: 7 + index });
      expect((alone.json as { choices: { text: string }[] }).choices[0]?.text).toBe(streamed[index]);
    }
    expect(new Set(streamed).size).toBe(3); // the seeds differ, so do the samples
  });

  it("should run the choices it has no free slot for one after another (parallel 1, queue 1)", async () => {
    running = await tiny.start({ parallel: 1, queue: 1 });
    const { url, server } = running;
    const r = await post(`${url}/v1/completions`, { model: "tiny", prompt: [1, 2, 3], max_tokens: 5, temperature: 0.9, seed: 3, n: 4 });
    expect(r.status).toBe(200);
    const choices = (r.json as { choices: { index: number; finish_reason: string }[] }).choices;
    expect(choices.map((c) => [c.index, c.finish_reason])).toEqual([0, 1, 2, 3].map((i) => [i, "length"]));
    expect(server.served[0]?.admission.admitted).toBe(0);
  });

  it("should end a request that runs past the timeout with 504", async () => {
    running = await tiny.start({}, { requestTimeoutMs: 1 });
    const r = await post(`${running.url}/v1/completions`, long);
    expect(r).toMatchObject({ status: 504, json: { error: { type: "server_error", code: "timeout" } } });
    expect(running.server.served[0]?.admission.admitted).toBe(0);
  });

  it("should cancel the generation of a client that disconnects and free its slot", async () => {
    running = await tiny.start({ parallel: 1, queue: 0 });
    const { url, server } = running;
    const controller = new AbortController();
    const res = await fetch(`${url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...long, stream: true }),
      signal: controller.signal,
    });
    const reader = res.body?.getReader();
    await reader?.read(); // the first event: the generation runs
    controller.abort();
    await until(() => server.served[0]?.admission.admitted === 0);
    expect(server.served[0]?.admission.admitted).toBe(0);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toContain('barbell_cancelled_requests_total{model="tiny",reason="disconnect"} 1');
    // The only slot is free again (queue 0: a request still holding it would make this a 429).
    expect((await post(`${url}/v1/completions`, { ...long, max_tokens: 2 })).status).toBe(200);
  });

  it("should finish in-flight requests on shutdown and refuse new ones", async () => {
    running = await tiny.start();
    const { url, server } = running;
    const inFlight = post(`${url}/v1/completions`, { ...long, max_tokens: 60 });
    await until(() => server.served[0]?.admission.admitted === 1);
    const stopping = server.shutdown(30_000);
    const done = await inFlight;
    expect(done.status).toBe(200);
    expect(done.json).toMatchObject({ choices: [{ finish_reason: "length" }], usage: { completion_tokens: 60 } });
    await stopping;
    await expect(fetch(`${url}/health/live`)).rejects.toThrow();
  });

  it("should cancel in-flight requests at the shutdown deadline with 503", async () => {
    running = await tiny.start();
    const { url, server } = running;
    const inFlight = post(`${url}/v1/completions`, long);
    await until(() => server.served[0]?.admission.admitted === 1);
    await server.shutdown(0);
    expect(await inFlight).toMatchObject({ status: 503, json: { error: { code: "shutting_down" } } });
  });
});

describe("security", () => {
  it("should require a Bearer key on /v1/* when keys are set, and leave health open", async () => {
    running = await tiny.start({}, { apiKeys: ["k-123"] });
    const { url } = running;
    const body = { model: "tiny", prompt: [1], max_tokens: 1 };
    expect(await post(`${url}/v1/completions`, body)).toMatchObject({ status: 401, json: { error: { code: "invalid_api_key" } } });
    expect((await post(`${url}/v1/completions`, body, { authorization: "Bearer wrong" })).status).toBe(401);
    expect((await post(`${url}/v1/completions`, body, { authorization: "Bearer k-123" })).status).toBe(200);
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "k-123", maxRetries: 0 });
    expect((await client.models.list()).data).toHaveLength(1);
    expect((await fetch(`${url}/health/live`)).status).toBe(200);
  });

  it("should send no CORS headers by default and allow configured origins", async () => {
    running = await tiny.start();
    const off = await fetch(`${running.url}/v1/models`, { headers: { origin: "https://app.example" } });
    expect(off.headers.get("access-control-allow-origin")).toBeNull();
    await running.server.shutdown(100);
    running = await tiny.start({}, { corsOrigins: ["https://app.example"] });
    const on = await fetch(`${running.url}/v1/models`, { headers: { origin: "https://app.example" } });
    expect(on.headers.get("access-control-allow-origin")).toBe("https://app.example");
    const other = await fetch(`${running.url}/v1/models`, { headers: { origin: "https://evil.example" } });
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
    const preflight = await fetch(`${running.url}/v1/chat/completions`, { method: "OPTIONS", headers: { origin: "https://app.example" } });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-headers")).toContain("authorization");
  });

  it("should bind to 127.0.0.1 by default", async () => {
    running = await tiny.start();
    expect(new URL(running.url).hostname).toBe("127.0.0.1");
  });
});
