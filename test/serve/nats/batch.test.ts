/**
 * Durable batch jobs end to end (docs/batch.md): a nats-server with JetStream on loopback, three
 * `barbell worker` processes with the shipped KJV model, a gateway (`barbell serve --nats`, in this process)
 * and the openai client. A 1,000-line batch runs while one worker is killed (SIGKILL, holding lines) and the
 * gateway is restarted: exactly 1,000 result lines come back, one per custom_id. Hostile uploads get typed
 * 400s; hostile records on the streams are refused and counted.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import OpenAI, { toFile } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { batchNames, encodeBatchRecord } from "../../../src/serve/batch/wire.js";
import { MODEL, NATS_NOTE, NATS_SKIP, startNats, startWorker, stopChild, startGateway as startGatewayRun, type NatsServer, type WorkerProcess } from "./helpers.js";

const PREFIX = "t19b";
const LINES = 1000;
const BAD = [17, 503, 911]; // lines whose body the live API would refuse (max_tokens 0)
// wasm-simd where it is built (CI builds it), else the JS reference; the model in the worker process keeps the test light on 2 cores.
const common = ["-m", MODEL, "--name", "kjv", "--backend", "wasm-simd,js", "--isolation", "in-process", "--parallel", "2", "--nats-prefix", PREFIX];

interface Gateway {
  base: string;
  client: OpenAI;
  stop(): Promise<void>;
}

describe.skipIf(NATS_SKIP)(`durable batch jobs on JetStream ${NATS_NOTE}`, () => {
  let nats: NatsServer;
  let store: string;
  const workers: WorkerProcess[] = [];
  let gateway: Gateway | undefined;
  let nc: NatsConnection;

  const startGateway = async (): Promise<Gateway> => {
    const run = await startGatewayRun(nats.url, PREFIX, ["--public-health"]);
    const base = run.base;
    return {
      base,
      client: new OpenAI({ baseURL: `${base}/v1`, apiKey: "unused", maxRetries: 0, timeout: 60_000 }),
      stop: () => run.stop(),
    };
  };

  /** Waits until the gateway routes to `n` workers of kjv. */
  const waitWorkers = async (g: Gateway, n: number): Promise<void> => {
    for (let i = 0; i < 300; i++) {
      const h = (await (await fetch(`${g.base}/health/ready`)).json().catch(() => ({}))) as { models?: Record<string, { workers: unknown[] }> };
      if ((h.models?.["kjv"]?.workers.length ?? 0) >= n) {
        return;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`the gateway did not see ${n} workers`);
  };

  beforeAll(async () => {
    store = await fs.mkdtemp(path.join(os.tmpdir(), "barbell-js-"));
    nats = await startNats(`jetstream { store_dir: "${store}" }`);
    for (const id of ["W1", "W2", "W3"]) {
      workers.push(await startWorker([...common, "--nats", nats.url, "--id", id]));
    }
    await Promise.all(workers.map((w) => w.ready));
    gateway = await startGateway();
    await waitWorkers(gateway, 3);
    nc = await connect({ servers: nats.url });
  }, 240_000);

  afterAll(async () => {
    await nc?.close();
    await gateway?.stop();
    await Promise.all(workers.map((w) => stopChild(w.child, 5_000)));
    await nats?.stop();
    await fs.rm(store, { recursive: true, force: true });
  }, 60_000);

  it("refuses hostile uploads and batch requests with typed 400s", async () => {
    const g = gateway as Gateway;
    const upload = async (text: string, purpose = "batch"): Promise<{ status: number; body: { error?: { code: string; message: string } } }> => {
      const form = new FormData();
      form.set("purpose", purpose);
      form.set("file", new Blob([text]), "in.jsonl");
      const res = await fetch(`${g.base}/v1/files`, { method: "POST", body: form });
      return { status: res.status, body: (await res.json()) as { error?: { code: string; message: string } } };
    };
    const ok = JSON.stringify({ custom_id: "a", method: "POST", url: "/v1/completions", body: { model: "kjv", prompt: "In", max_tokens: 1 } });
    expect((await upload(`${ok}\n${ok}`)).body.error?.code).toBe("duplicate_custom_id");
    expect((await upload(`${ok}\n{oops`)).body.error).toMatchObject({ code: "invalid_jsonl", message: expect.stringMatching(/line 2/) });
    expect((await upload(ok, "fine-tune")).status).toBe(400);
    const raw = await fetch(`${g.base}/v1/files`, { method: "POST", headers: { "content-type": "multipart/form-data; boundary=x" }, body: "--x\r\ngarbage" });
    expect(raw.status).toBe(400);
    // A raw JSONL body with ?purpose=batch is accepted too.
    const plain = await fetch(`${g.base}/v1/files?purpose=batch`, { method: "POST", headers: { "content-type": "application/jsonl" }, body: ok });
    const file = (await plain.json()) as { id: string; bytes: number };
    expect(plain.status).toBe(200);
    expect(file.bytes).toBe(Buffer.byteLength(ok));
    const create = (body: Record<string, unknown>): Promise<Response> =>
      fetch(`${g.base}/v1/batches`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    expect((await create({ input_file_id: file.id, endpoint: "/v1/chat/completions", completion_window: "24h" })).status).toBe(400); // the lines ask for /v1/completions
    expect((await create({ input_file_id: file.id, endpoint: "/v1/completions", completion_window: "1h" })).status).toBe(400);
    expect((await create({ input_file_id: "file-000000000000000000000000", endpoint: "/v1/completions", completion_window: "24h" })).status).toBe(404);
    expect((await fetch(`${g.base}/v1/batches/batch_nope`)).status).toBe(404);
    const metrics = await (await fetch(`${g.base}/metrics`)).text();
    expect(metrics).toMatch(/barbell_batch_refused_total\{code="duplicate_custom_id"\} 1/);
  }, 60_000);

  it("runs 1,000 lines to exactly 1,000 results while a worker is killed, then every barbell process restarts", async () => {
    let g = gateway as Gateway;
    const lines = Array.from({ length: LINES }, (_, i) =>
      JSON.stringify({
        custom_id: `req-${i}`,
        method: "POST",
        url: "/v1/completions",
        body: { model: i === 999 ? "no-such-model" : "kjv", prompt: `And God said ${i}`, max_tokens: BAD.includes(i) ? 0 : 1 + (i % 2), temperature: 0 },
      }),
    );
    const file = await g.client.files.create({ file: await toFile(Buffer.from(`${lines.join("\n")}\n`), "kjv.jsonl"), purpose: "batch" });
    expect(file).toMatchObject({ object: "file", purpose: "batch", filename: "kjv.jsonl" });
    const batch = await g.client.batches.create({ input_file_id: file.id, endpoint: "/v1/completions", completion_window: "24h", metadata: { run: "kill-and-restart" } });
    expect(batch).toMatchObject({ object: "batch", status: "validating", input_file_id: file.id, request_counts: { total: LINES, completed: 0, failed: 0 } });

    const done = async (): Promise<number> => {
      const b = await g.client.batches.retrieve(batch.id);
      return (b.request_counts?.completed ?? 0) + (b.request_counts?.failed ?? 0);
    };
    const until = async (what: string, check: () => Promise<boolean>, ms = 240_000): Promise<void> => {
      const end = Date.now() + ms;
      while (!(await check())) {
        if (Date.now() > end) {
          throw new Error(`timed out waiting for ${what}`);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    // A worker killed while it holds lines: they are redelivered to the others after the lease (10 s).
    await until("300 results", async () => (await done()) >= 300);
    // W1 holds lines when it is killed (its adverts count the batch lines it runs).
    await until("W1 running lines", async () => {
      const h = (await (await fetch(`${g.base}/health/ready`)).json()) as { models: Record<string, { workers: { id: string; running: number }[] }> };
      return (h.models["kjv"]?.workers.find((w) => w.id === "W1")?.running ?? 0) > 0;
    });
    const killed = workers[0] as WorkerProcess;
    killed.child.kill("SIGKILL");
    await killed.exited;
    // Then every barbell process goes: the gateway stops and the other two workers are killed; new ones start.
    // The batch lives in JetStream, not in any of them.
    await until("500 results", async () => (await done()) >= 500);
    await g.stop();
    const midway = await done().catch(() => -1);
    expect(midway).toBe(-1); // nobody answers while the gateway is down
    for (const w of workers.slice(1, 3)) {
      w.child.kill("SIGKILL");
      await w.exited;
    }
    for (const id of ["W4", "W5"]) {
      workers.push(await startWorker([...common, "--nats", nats.url, "--id", id]));
    }
    await Promise.all(workers.slice(3).map((w) => w.ready));
    gateway = g = await startGateway();
    await waitWorkers(g, 2);
    let final: OpenAI.Batches.Batch | undefined;
    await until("the batch to complete", async () => {
      final = await g.client.batches.retrieve(batch.id);
      return final.status === "completed";
    });
    const b = final as OpenAI.Batches.Batch;
    expect(b.request_counts).toEqual({ total: LINES, completed: LINES - BAD.length - 1, failed: BAD.length + 1 });
    expect(b.metadata).toEqual({ run: "kill-and-restart" });
    expect(b.output_file_id).toMatch(/^file-/);
    expect(b.error_file_id).toMatch(/^file-/);

    const read = async (id: string): Promise<{ custom_id: string; response: { status_code: number; body: Record<string, unknown> } }[]> =>
      (await (await g.client.files.content(id)).text())
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => JSON.parse(l) as { custom_id: string; response: { status_code: number; body: Record<string, unknown> } });
    const output = await read(b.output_file_id as string);
    const errors = await read(b.error_file_id as string);
    const ids = [...output, ...errors].map((r) => r.custom_id);
    expect(ids.length).toBe(LINES);
    expect(new Set(ids).size).toBe(LINES);
    expect(new Set(ids)).toEqual(new Set(lines.map((_, i) => `req-${i}`)));
    for (const r of output) {
      expect(r.response.status_code).toBe(200);
      expect(r.response.body).toMatchObject({ object: "text_completion", model: "kjv", usage: { completion_tokens: expect.any(Number) } });
    }
    expect(errors.map((r) => r.custom_id).sort()).toEqual([...BAD.map((i) => `req-${i}`), "req-999"].sort());
    expect(errors.find((r) => r.custom_id === "req-17")?.response).toMatchObject({ status_code: 400, body: { error: { param: "max_tokens" } } });
    expect(errors.find((r) => r.custom_id === "req-999")?.response).toMatchObject({ status_code: 404, body: { error: { code: "model_not_found" } } });
    // Greedy answers equal the live API's for the same request.
    const live = await g.client.completions.create({ model: "kjv", prompt: "And God said 4", max_tokens: 1, temperature: 0 });
    expect((output.find((r) => r.custom_id === "req-4")?.response.body["choices"] as { text: string }[])[0]?.text).toBe(live.choices[0]?.text);

    const metrics = await (await fetch(`${g.base}/metrics`)).text();
    expect(metrics).toMatch(/barbell_batches_total\{status="completed"\} 1/);
    expect(metrics).toMatch(new RegExp(`barbell_batch_lines_total\\{outcome="completed"\\} ${LINES - BAD.length - 1}`));
    const list = await g.client.batches.list({ limit: 5 });
    expect(list.data.map((x) => x.id)).toContain(batch.id);
  }, 420_000);

  it("cancels a batch: the lines that did not run get batch_cancelled lines, one per custom_id", async () => {
    const g = gateway as Gateway;
    const n = 200;
    const text = Array.from({ length: n }, (_, i) => JSON.stringify({ custom_id: `c${i}`, method: "POST", url: "/v1/chat/completions", body: { model: "kjv", messages: [{ role: "user", content: `Psalm ${i}` }], max_tokens: 8 } }));
    const f = await g.client.files.create({ file: await toFile(Buffer.from(text.join("\n")), "c.jsonl"), purpose: "batch" });
    const b = await g.client.batches.create({ input_file_id: f.id, endpoint: "/v1/chat/completions", completion_window: "24h" });
    const cancelling = await g.client.batches.cancel(b.id);
    expect(["cancelling", "cancelled"]).toContain(cancelling.status);
    await expect(g.client.batches.cancel(b.id)).rejects.toMatchObject({ status: 409 });
    let final = cancelling;
    for (let i = 0; i < 300 && final.status !== "cancelled"; i++) {
      await new Promise((r) => setTimeout(r, 200));
      final = await g.client.batches.retrieve(b.id);
    }
    expect(final.status).toBe("cancelled");
    const lines = async (id: string | null | undefined): Promise<{ custom_id: string; error: { code: string } | null }[]> =>
      id === null || id === undefined ? [] : (await (await g.client.files.content(id)).text()).split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as { custom_id: string; error: { code: string } | null });
    const all = [...(await lines(final.output_file_id)), ...(await lines(final.error_file_id))];
    expect(all.length).toBe(n);
    expect(new Set(all.map((l) => l.custom_id)).size).toBe(n);
    expect(all.filter((l) => l.error?.code === "batch_cancelled").length).toBe(final.request_counts?.failed);
    expect(final.request_counts?.failed).toBeGreaterThan(0);
  }, 120_000);

  it("refuses hostile records on the streams and keeps serving", async () => {
    const g = gateway as Gateway;
    const names = batchNames(PREFIX);
    const js = jetstream(nc);
    await js.publish(names.batch(`batch_${"0".repeat(24)}`), new TextEncoder().encode("not a record"));
    await js.publish(names.line("kjv", `batch_${"0".repeat(24)}`), Uint8Array.of(0x42, 0x42, 0x41, 0x54, 1, 0, 0, 0xff));
    const list = await g.client.batches.list();
    expect(list.data.every((b) => b.id !== `batch_${"0".repeat(24)}`)).toBe(true);
    expect(await (await fetch(`${g.base}/metrics`)).text()).toMatch(/barbell_batch_refused_records_total [1-9]/);
    const small = await g.client.files.create({
      file: await toFile(Buffer.from(JSON.stringify({ custom_id: "x", method: "POST", url: "/v1/completions", body: { model: "kjv", prompt: "In", max_tokens: 1 } })), "x.jsonl"),
      purpose: "batch",
    });
    const b = await g.client.batches.create({ input_file_id: small.id, endpoint: "/v1/completions", completion_window: "24h" });
    for (let i = 0; i < 300 && (await g.client.batches.retrieve(b.id)).status !== "completed"; i++) {
      await new Promise((r) => setTimeout(r, 200));
    }
    expect((await g.client.batches.retrieve(b.id)).request_counts).toEqual({ total: 1, completed: 1, failed: 0 });
    // The same line delivered again (as after a worker died before acknowledging it): acknowledged, no second result.
    const jsm = await jetstreamManager(nc);
    const before = await jsm.streams.getMessage(names.results, { last_by_subj: names.result(b.id, 0) });
    const body = JSON.stringify({ model: "kjv", prompt: "In", max_tokens: 1 });
    await js.publish(names.line("kjv", b.id), encodeBatchRecord({ type: "line", batch: b.id, index: 0, customId: "x", url: "/v1/completions", body }));
    for (let i = 0; i < 100 && (await jsm.streams.info(names.lines)).state.messages > 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect((await jsm.streams.info(names.lines)).state.messages).toBe(0);
    const after = await jsm.streams.getMessage(names.results, { last_by_subj: names.result(b.id, 0) });
    expect(after?.seq).toBe(before?.seq);
    const stored = await jsm.streams.info(names.results, { subjects_filter: `${PREFIX}.batch.result.${b.id}.*` });
    expect(stored.state.subjects).toEqual({ [names.result(b.id, 0)]: 1 });
  }, 120_000);
});

describe.skipIf(NATS_SKIP)(`batch jobs without JetStream ${NATS_NOTE}`, () => {
  it("answer 503 while live serving goes on", async () => {
    const nats = await startNats();
    const gatewayRun = await startGatewayRun(nats.url, PREFIX);
    try {
      const base = gatewayRun.base;
      const form = new FormData();
      form.set("purpose", "batch");
      form.set("file", new Blob(['{"custom_id":"a","method":"POST","url":"/v1/completions","body":{}}']), "in.jsonl");
      const upload = await fetch(`${base}/v1/files`, { method: "POST", body: form });
      expect(upload.status).toBe(503);
      expect(await upload.json()).toMatchObject({ error: { code: "unavailable", message: expect.stringMatching(/JetStream/) } });
      expect((await fetch(`${base}/v1/batches`)).status).toBe(503);
      expect((await fetch(`${base}/health/live`)).status).toBe(200);
    } finally {
      await gatewayRun.stop();
      await nats.stop();
    }
  }, 60_000);
});
