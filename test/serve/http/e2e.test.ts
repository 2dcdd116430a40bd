/** `barbell serve` as a real process, through the official openai client; and a model process killed mid-stream. */
import { spawn, type ChildProcess } from "node:child_process";
import OpenAI from "openai";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startServer, until, writeModel, type Running } from "./helpers.js";

let model: Awaited<ReturnType<typeof writeModel>>;
let child: ChildProcess | undefined;
let running: Running | undefined;
beforeAll(async () => {
  model = await writeModel();
});
afterEach(async () => {
  child?.kill("SIGKILL");
  child = undefined;
  await running?.server.shutdown(100);
  running = undefined;
});
afterAll(async () => {
  await model.remove();
});

const messages = [{ role: "user" as const, content: "Hi" }];

describe("barbell serve (child process)", () => {
  it("should serve the openai client, streaming and not, and exit 0 on SIGTERM after finishing in-flight work", async () => {
    const proc = spawn(process.execPath, ["--import", "tsx", "test/serve/http/cli-entry.ts", "serve", "-m", model.file, "--name", "tiny", "--port", "0", "--backend", "js"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    child = proc;
    let out = "";
    proc.stdout?.on("data", (d: Buffer) => (out += d.toString()));
    proc.stderr?.on("data", (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => proc.on("exit", (code) => resolve(code)));
    await until(() => /listening on (http:\S+)/.test(out) || proc.exitCode !== null);
    const url = /listening on (http:\S+)/.exec(out)?.[1];
    expect(url, out).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "none", maxRetries: 0 });

    const whole = await client.chat.completions.create({ model: "tiny", messages, max_tokens: 5, temperature: 0 });
    const stream = await client.chat.completions.create({ model: "tiny", messages, max_tokens: 5, temperature: 0, stream: true });
    let streamed = "";
    for await (const chunk of stream) {
      streamed += chunk.choices[0]?.delta.content ?? "";
    }
    expect(streamed).toBe(whole.choices[0]?.message.content);
    expect(whole.usage?.completion_tokens).toBe(5);

    const inFlight = client.completions.create({ model: "tiny", prompt: "Hello", max_tokens: 100, temperature: 0 });
    await until(async () => /barbell_requests_in_flight\{model="tiny"\} 1/.test(await (await fetch(`${url}/metrics`)).text()));
    proc.kill("SIGTERM");
    const finished = await inFlight;
    expect(finished.usage?.completion_tokens).toBe(100);
    expect(await exited).toBe(0);
    expect(out).toContain("barbell serve: stopped");
  });
});

describe("a model process killed mid-stream", () => {
  it("should end the stream with an error event, stay up, and serve the next request", async () => {
    running = await startServer(model.file, {
      isolation: "process",
      supervision: { maxRestarts: 5, withinMs: 60_000 },
      // The first worker process SIGKILLs itself on its 4th embedding call: after the prefill and two tokens.
      faults: [{ backend: "js", kernel: "embedding", nth: 4, action: "kill", incarnations: 1 }],
    }, { publicHealth: true });
    const client = new OpenAI({ baseURL: `${running.url}/v1`, apiKey: "none", maxRetries: 0 });
    const stream = await client.chat.completions.create({ model: "tiny", messages, max_tokens: 20, temperature: 0, stream: true });
    let text = "";
    let failure: unknown;
    try {
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta.content ?? "";
      }
    } catch (error) {
      failure = error;
    }
    expect(failure).toBeInstanceOf(OpenAI.APIError);
    expect(String((failure as Error).message)).toMatch(/crashed|SIGKILL/);
    expect(text.length).toBeGreaterThan(0);
    expect((await fetch(`${running.url}/health/live`)).status).toBe(200);
    const next = await client.chat.completions.create({ model: "tiny", messages, max_tokens: 4, temperature: 0 });
    expect(next.usage?.completion_tokens).toBe(4);
    const url = running.url;
    await until(async () => (await fetch(`${url}/health/ready`)).status === 200);
    const ready = (await (await fetch(`${url}/health/ready`)).json()) as { status: string; models: { tiny: { restarts: number } } };
    expect(ready).toMatchObject({ status: "degraded", models: { tiny: { restarts: 1 } } });
    expect(await (await fetch(`${url}/metrics`)).text()).toContain('barbell_worker_restarts{model="tiny"} 1');
  });
});
