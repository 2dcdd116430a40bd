/**
 * What clients and operators see when models fail: safe error bodies (no paths, pids or actor paths), health
 * details only for authorised callers, the escalation past the restart intensity answered 503 `unavailable`,
 * cumulative supervision counters in /health/ready and /metrics, and one log line per failure and escalation.
 */
import fs from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { post, type Running, tinyServers, until } from "./helpers.js";

const tiny = tinyServers();
let running: Running | undefined;

const request = { model: "tiny", prompt: [1, 2, 3], max_tokens: 4, temperature: 0 };

/** Nothing a client should learn about the host: file paths, pids, actor paths, signals. */
function expectSafe(text: string, dir: string): void {
  expect(text).not.toContain(dir);
  expect(text).not.toMatch(/\/user\/|pid|SIG[A-Z]+|\.gguf|\[actor\]|\[model\]/);
}

interface Health {
  status: string;
  models?: Record<string, { restarts: number; crashes: number; escalations: number; last_failure: { code: string; message: string } | null }>;
}

async function health(url: string, headers: Record<string, string> = {}): Promise<Health> {
  return (await (await fetch(`${url}/health/ready`, { headers })).json()) as Health;
}

describe("health details", () => {
  it("should show per-model details to callers with a valid key only, or to everyone with publicHealth", async () => {
    running = await tiny.start({}, { apiKeys: ["k-1"] });
    expect(await health(running.url)).toEqual({ status: "ready" });
    expect(await health(running.url, { authorization: "Bearer wrong" })).toEqual({ status: "ready" });
    const authorised = await health(running.url, { authorization: "Bearer k-1" });
    expect(authorised).toMatchObject({ status: "ready", models: { tiny: { ready: true, loaded: true, restarts: 0, crashes: 0, escalations: 0, last_failure: null } } });
    await running.server.shutdown(100);
    running = await tiny.start({}, { publicHealth: true });
    expect(await health(running.url)).toMatchObject({ status: "ready", models: { tiny: { restarts: 0, crashes: 0, escalations: 0 } } });
  });

  it("should size each model's prefix cache by promptCacheMiB and show its counters in the details", async () => {
    running = await tiny.start({ promptCacheMiB: 3 }, { publicHealth: true });
    const body = { model: "tiny", prompt: Array.from({ length: 140 }, (_, i) => 1 + (i % 200)), max_tokens: 2, temperature: 0 };
    for (let i = 0; i < 2; i++) {
      expect((await post(`${running.url}/v1/completions`, body)).status).toBe(200);
    }
    const details = (await (await fetch(`${running.url}/health/ready`)).json()) as { models: Record<string, { prompt_cache: Record<string, number> }> };
    const cache = details.models["tiny"]?.prompt_cache;
    expect(cache?.["budget_bytes"]).toBe(3 * 1024 * 1024);
    expect(cache?.["hits"]).toBeGreaterThanOrEqual(1); // the second request reused the first one's 128-token prefill step
    expect(cache?.["tokens_reused"]).toBeGreaterThanOrEqual(128);
  });
});

describe("a model that fails past its restart intensity", () => {
  it("should answer 503 unavailable with safe text, keep cumulative counters across the model actor's restart, and log each failure", async () => {
    const lines: string[] = [];
    running = await tiny.start(
      {
        isolation: "process",
        supervision: { maxRestarts: 1, withinMs: 60_000 },
        // Every worker process SIGKILLs itself on its first embedding call: the request is re-sent once, the
        // second crash exceeds 1 restart in 60 s, the model actor fails `escalated` and is restarted.
        faults: [{ backend: "js", kernel: "embedding", nth: 1, action: "kill" }],
      },
      { publicHealth: true, log: (line) => lines.push(line) },
    );
    const { url } = running;
    const r = await post(`${url}/v1/completions`, request);
    expect(r.status).toBe(503);
    expect(r.json).toMatchObject({ error: { type: "server_error", code: "unavailable", message: expect.stringContaining("model 'tiny'") } });
    expectSafe(JSON.stringify(r.json), tiny.model.dir);
    await until(async () => (await health(url)).models?.["tiny"]?.escalations === 1 && (await fetch(`${url}/health/ready`)).status === 200);
    const after = await health(url);
    // Cumulative: the model actor's restart (after the escalation) does not reset them.
    expect(after).toMatchObject({ status: "degraded", models: { tiny: { restarts: 1, crashes: 2, escalations: 1, last_failure: { code: "crashed" } } } });
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toContain('barbell_worker_restarts{model="tiny"} 1');
    expect(metrics).toContain('barbell_worker_crashes{model="tiny"} 2');
    expect(metrics).toContain('barbell_worker_escalations{model="tiny"} 1');
    const supervision = lines.filter((l) => /^barbell serve: model 'tiny': (worker failed|the model actor restarted)/.test(l));
    expect(supervision).toEqual([
      expect.stringMatching(/^barbell serve: model 'tiny': worker failed \(crashed: .*SIGKILL.*\); restart 1 of at most 1/),
      expect.stringMatching(/^barbell serve: model 'tiny': worker failed \(crashed: .*\); ESCALATED/),
      expect.stringMatching(/^barbell serve: model 'tiny': the model actor restarted/),
    ]);
    expect(lines.some((l) => l.startsWith("barbell serve: model 'tiny': request ended 'unavailable'"))).toBe(true);
  });

  it("should not put the model's path in a client's answer or the open health check when the worker cannot load it", async () => {
    const copy = `${tiny.model.dir}/copy-of-tiny.gguf`;
    await fs.copyFile(tiny.model.file, copy);
    const lines: string[] = [];
    running = await tiny.start(
      {
        path: copy,
        isolation: "process",
        supervision: { maxRestarts: 1, withinMs: 60_000 },
        // The first worker dies on its first request; the next one cannot load the file (removed meanwhile).
        faults: [{ backend: "js", kernel: "embedding", nth: 1, action: "kill", incarnations: 1 }],
      },
      { apiKeys: ["k-1"], log: (line) => lines.push(line) },
    );
    const { url } = running;
    const key = { authorization: "Bearer k-1" };
    await until(async () => (await health(url)).status === "ready");
    await fs.rm(copy);
    const r = await post(`${url}/v1/completions`, request, key);
    expect(r.status).toBe(503);
    expect(r.json).toMatchObject({ error: { code: "unavailable" } });
    expectSafe(JSON.stringify(r.json), tiny.model.dir);
    const open = await fetch(`${url}/health/ready`);
    const body = await open.text();
    expect(Object.keys(JSON.parse(body) as object)).toEqual(["status"]);
    expectSafe(body, tiny.model.dir);
    // The operator's view: the details in the log (and in health for an authorised caller).
    expect(lines.join("\n")).toContain(copy);
    expect((await health(url, key)).models?.["tiny"]?.crashes).toBeGreaterThanOrEqual(2);
  });
});
