/**
 * Scale-out on NATS end to end (docs/scale-out.md): a real nats-server on loopback, two `barbell worker`
 * processes with the shipped KJV model (A: parallel 3, B: parallel 1, no queue; each model in its own child process), a gateway (`barbell serve
 * --nats`, in this process) and the openai client against it; the same requests against a direct
 * `barbell serve` of the model for reference. Hostile frames on every subject; a worker with another context
 * for the same model id is refused.
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, type BarbellServer } from "../../../src/serve/http/index.js";
import { decodeNatsFrame, encodeNatsFrame, MAX_NATS_FRAME_BYTES } from "../../../src/serve/nats/wire.js";
import { runCli } from "../../cli/helpers.js";
import { MODEL, NATS_NOTE, NATS_SKIP, startNats, startWorker, stopChild, type NatsServer, type WorkerProcess } from "./helpers.js";

const PREFIX = "t19";
// The default process isolation: the model decodes in the worker's child process, so its heartbeats keep time.
const common = ["-m", MODEL, "--name", "kjv", "--backend", "js", "--queue", "0", "--heartbeat", "500", "--nats-prefix", PREFIX];

interface WorkerDetail {
  id: string;
  routed: number;
  completed: number;
  parallel: number;
  rejected_frames: number;
}
interface Health {
  status: string;
  models: Record<string, { gateway: string; workers: WorkerDetail[]; refused_workers: { id: string; why: string }[]; rejected_frames: number }>;
}

describe.skipIf(NATS_SKIP)(`barbell worker and barbell serve --nats ${NATS_NOTE}`, () => {
  let nats: NatsServer;
  const workers: WorkerProcess[] = [];
  const gatewayStop = new AbortController();
  let gatewayRun: Promise<unknown> | undefined;
  let gatewayOut = "";
  let base = "";
  let gateway: OpenAI;
  let direct: BarbellServer;
  let reference: OpenAI;
  let nc: NatsConnection;

  const health = async (): Promise<Health> => (await (await fetch(`${base}/health/ready`)).json()) as Health;

  beforeAll(async () => {
    // max_payload above the frame limit, so that an oversized frame reaches barbell (which must refuse it).
    nats = await startNats("max_payload: 4MB");
    workers.push(await startWorker([...common, "--nats", nats.url, "--id", "A", "--parallel", "3"]));
    workers.push(await startWorker([...common, "--nats", nats.url, "--id", "B", "--parallel", "1"]));
    let listening: (url: string) => void = () => undefined;
    const url = new Promise<string>((resolve) => (listening = resolve));
    gatewayRun = runCli(["serve", "--nats", nats.url, "--nats-prefix", PREFIX, "--port", "0", "--public-health", "--quiet"], {
      signal: gatewayStop.signal,
      onOut: (t) => {
        gatewayOut += t;
        const m = /listening on (\S+)/.exec(gatewayOut);
        if (m?.[1] !== undefined) {
          listening(m[1]);
        }
      },
    });
    base = await url;
    gateway = new OpenAI({ baseURL: `${base}/v1`, apiKey: "unused", maxRetries: 0 });
    direct = await createServer({ models: [{ name: "kjv", path: MODEL, isolation: "in-process", backends: ["js"] }] });
    reference = new OpenAI({ baseURL: `${await direct.listen(0)}/v1`, apiKey: "unused", maxRetries: 0 });
    await Promise.all(workers.map((w) => w.ready));
    // Both workers routable on the gateway (their adverts arrive every 200 ms).
    for (let i = 0; i < 200; i++) {
      const h = await health().catch(() => undefined);
      if ((h?.models["kjv"]?.workers.length ?? 0) === 2) {
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    nc = await connect({ servers: nats.url });
  }, 180_000);

  afterAll(async () => {
    await nc?.close();
    gatewayStop.abort();
    await gatewayRun;
    await direct?.shutdown(1000);
    await Promise.all(workers.map((w) => stopChild(w.child)));
    await nats?.stop();
  }, 60_000);

  it("should list the advertised model and show each worker in /health/ready", async () => {
    const models = await gateway.models.list();
    expect(models.data.map((m) => m.id)).toEqual(["kjv"]);
    const h = await health();
    expect(h.status).toBe("ready");
    expect(h.models["kjv"]?.workers.map((w) => [w.id, w.parallel]).sort()).toEqual([
      ["A", 3],
      ["B", 1],
    ]);
  });

  it("should give the greedy output of a direct barbell serve, streaming and not", async () => {
    const completion = { model: "kjv", prompt: "In the beginning God", max_tokens: 12, temperature: 0 } as const;
    const chat = { model: "kjv", messages: [{ role: "user" as const, content: "Who made the light?" }], max_tokens: 12, temperature: 0 };
    const want = await reference.completions.create(completion);
    const got = await gateway.completions.create(completion);
    expect(got.choices[0]?.text).toBe(want.choices[0]?.text);
    expect(got.usage).toEqual(want.usage);
    const wantChat = (await reference.chat.completions.create(chat)).choices[0]?.message.content;
    expect((await gateway.chat.completions.create(chat)).choices[0]?.message.content).toBe(wantChat);
    let streamed = "";
    for await (const chunk of await gateway.chat.completions.create({ ...chat, stream: true })) {
      streamed += chunk.choices[0]?.delta.content ?? "";
    }
    expect(streamed).toBe(wantChat);
    expect(wantChat?.length).toBeGreaterThan(0);
  }, 60_000);

  it("should route by free slots (3 to A, 1 to B, not 2 and 2) and answer 429 when every worker is full", async () => {
    const before = new Map((await health()).models["kjv"]?.workers.map((w) => [w.id, w.routed]));
    const ask = () =>
      fetch(`${base}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "kjv", prompt: "And God said", max_tokens: 160, temperature: 0, ignore_eos: true }) });
    const answers = await Promise.all([ask(), ask(), ask(), ask(), ask()]);
    const statuses = answers.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 200, 200, 200, 429]);
    const refused = answers.find((r) => r.status === 429);
    expect(((await refused?.json()) as { error: { type: string } }).error.type).toBe("rate_limit_error");
    const after = (await health()).models["kjv"]?.workers ?? [];
    const routed = Object.fromEntries(after.map((w) => [w.id, w.routed - (before.get(w.id) ?? 0)]));
    expect(routed).toEqual({ A: 3, B: 1 });
  }, 120_000);

  it("should refuse hostile frames on every subject with typed errors and keep serving", async () => {
    const h0 = await health();
    const gatewayId = h0.models["kjv"]?.gateway ?? "";
    const rejectedBefore = h0.models["kjv"]?.rejected_frames ?? 0;
    const valid = encodeNatsFrame({ type: "cancel", id: "x" });
    const hostile = [
      Uint8Array.from([1, 2, 3]), // garbage
      valid.subarray(0, valid.length - 1), // truncated
      new Uint8Array(MAX_NATS_FRAME_BYTES + 10).fill(0x42), // oversized
      Uint8Array.of(...valid.subarray(0, 4), 9, 0, ...valid.subarray(6)), // another version
    ];
    const expected = ["bad-magic", "malformed", "oversized", "bad-version"];
    expect(hostile.map((f) => (decodeNatsFrame(f).ok ? "" : (decodeNatsFrame(f) as { error: { code: string } }).error.code))).toEqual(expected);
    // A generate that cannot be read is answered on its reply subject with a refusal naming the error.
    const replies: string[] = [];
    const sub = nc.subscribe(`${PREFIX}.test.replies`, {
      callback: (_e, m) => {
        const d = decodeNatsFrame(m.data);
        replies.push(d.ok && d.value.type === "refusal" ? d.value.code : "other");
      },
    });
    for (const frame of hostile) {
      nc.publish(`${PREFIX}.adverts`, frame);
      nc.publish(`${PREFIX}.inbox.${gatewayId}.1`, frame);
      nc.publish(`${PREFIX}.work.A`, frame, { reply: `${PREFIX}.test.replies` });
      nc.publish(`${PREFIX}.cancel.B`, frame);
    }
    // Well-formed but wrong: an advert that breaks a limit, and a frame of the wrong kind.
    nc.publish(`${PREFIX}.adverts`, encodeNatsFrame({ type: "discover", from: "mallory" }));
    await nc.flush();
    for (let i = 0; i < 100 && replies.length < hostile.length; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    sub.unsubscribe();
    expect(replies.sort()).toEqual([...expected].sort());
    // Every process still serves, and the refusals are counted (adverts carry the workers' counts).
    const answer = await gateway.completions.create({ model: "kjv", prompt: "And God said", max_tokens: 4, temperature: 0 });
    expect(answer.choices[0]?.finish_reason).toBe("length");
    await new Promise((r) => setTimeout(r, 600));
    const h1 = await health();
    expect((h1.models["kjv"]?.rejected_frames ?? 0) - rejectedBefore).toBe(2 * hostile.length + 1);
    const byId = Object.fromEntries(h1.models["kjv"]?.workers.map((w) => [w.id, w.rejected_frames]) ?? []);
    expect(byId["A"]).toBeGreaterThanOrEqual(hostile.length);
    expect(byId["B"]).toBeGreaterThanOrEqual(hostile.length);
    expect(workers.every((w) => w.child.exitCode === null)).toBe(true);
  }, 60_000);

  it("should refuse a worker with another context for the same model id, naming both", async () => {
    const odd = await startWorker([...common, "--nats", nats.url, "--id", "C", "-c", "256"]);
    const { code, stderr } = await odd.exited;
    expect(code).toBe(1);
    expect(stderr).toMatch(/model 'kjv': worker 'C' has tokenizer [0-9a-f]{12} and context 256, but worker '[AB]' serves it with tokenizer [0-9a-f]{12} and context 2048/);
    expect((await health()).models["kjv"]?.workers.map((w) => w.id).sort()).toEqual(["A", "B"]);
  }, 120_000);
});
