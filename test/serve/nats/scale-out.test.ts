/**
 * Scale-out on NATS end to end (docs/scale-out.md): a real nats-server on loopback, two `barbell worker`
 * processes with the shipped KJV model (A: parallel 3, B: parallel 1, no queue; each model in its own child process), a gateway (`barbell serve
 * --nats`, in this process) and the openai client against it; the same requests against a direct
 * `barbell serve` of the model for reference. Hostile frames on every subject; a worker with another context
 * for the same model id is refused. Then the faults (docs/scale-out.md, "Faults"), with a third worker C
 * (parallel 1, queue 2): B paused (SIGSTOP) is taken out and comes back after SIGCONT; C killed (SIGKILL) under
 * load loses no request (its queued ones run elsewhere, its streamed one ends `crashed`); a nats-server restart
 * ends the requests in flight cleanly and the deployment serves again after it. Counts are asserted, not times.
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, type BarbellServer } from "../../../src/serve/http/index.js";
import { decodeNatsFrame, encodeNatsFrame, MAX_NATS_FRAME_BYTES } from "../../../src/serve/nats/wire.js";
import { detectionBoundMs } from "../../../src/serve/nats/gateway.js";
import { MODEL, NATS_NOTE, NATS_SKIP, startGateway, startNats, startWorker, stopChild, type GatewayRun, type NatsServer, type WorkerProcess } from "./helpers.js";

const PREFIX = "t19";
const HEARTBEAT_MS = 1000;
// The default process isolation: the model decodes in the worker's child process, so its heartbeats keep time.
const common = ["-m", MODEL, "--name", "kjv", "--backend", "js", "--queue", "0", "--heartbeat", String(HEARTBEAT_MS), "--nats-prefix", PREFIX];

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
  let gatewayRun: GatewayRun | undefined;
  let base = "";
  let gateway: OpenAI;
  let direct: BarbellServer;
  let reference: OpenAI;
  let nc: NatsConnection;

  const health = async (): Promise<Health> => (await (await fetch(`${base}/health/ready`)).json()) as Health;
  const workerIds = async (): Promise<string[]> => ((await health().catch(() => undefined))?.models["kjv"]?.workers.map((w) => w.id) ?? []).sort();
  /** The sum of a /metrics counter over the lines whose labels contain `labels`. */
  const metric = async (name: string, labels = ""): Promise<number> => {
    const text = await (await fetch(`${base}/metrics`)).text();
    return text
      .split("\n")
      .filter((l) => l.startsWith(`${name}{`) && l.includes(labels))
      .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
  };
  /** Polls `check` every 100 ms for at most `timeoutMs`; false when it never held. */
  const until = async (check: () => Promise<boolean>, timeoutMs = 30_000): Promise<boolean> => {
    for (const end = Date.now() + timeoutMs; Date.now() < end; ) {
      if (await check()) {
        return true;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    return false;
  };

  beforeAll(async () => {
    // max_payload above the frame limit, so that an oversized frame reaches barbell (which must refuse it).
    nats = await startNats("max_payload: 4MB");
    workers.push(await startWorker([...common, "--nats", nats.url, "--id", "A", "--parallel", "3"]));
    workers.push(await startWorker([...common, "--nats", nats.url, "--id", "B", "--parallel", "1"]));
    gatewayRun = await startGateway(nats.url, PREFIX, ["--public-health"]);
    base = gatewayRun.base;
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
    for (const w of workers) {
      w.child.kill("SIGCONT"); // a paused worker could not take its SIGTERM
    }
    await nc?.close();
    await gatewayRun?.stop();
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

  it("should serve through a second gateway at the same time: both route to the same workers and answer alike", async () => {
    const run = await startGateway(nats.url, PREFIX, ["--public-health"]);
    try {
      const second = run.base;
      const ready = await until(async () => {
        const h = (await (await fetch(`${second}/health/ready`)).json()) as Health;
        return (h.models["kjv"]?.workers.length ?? 0) === 2;
      });
      expect(ready).toBe(true);
      const other = new OpenAI({ baseURL: `${second}/v1`, apiKey: "unused", maxRetries: 0 });
      const completion = { model: "kjv", prompt: "And the earth was", max_tokens: 8, temperature: 0 } as const;
      const [a, b] = await Promise.all([gateway.completions.create(completion), other.completions.create(completion)]);
      expect(b.choices[0]?.text).toBe(a.choices[0]?.text);
      expect(a.choices[0]?.text.length).toBeGreaterThan(0);
    } finally {
      await run.stop();
    }
  }, 90_000);

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
    // The workers' next adverts (every heartbeat) carry their counts.
    await until(async () => ((await health()).models["kjv"]?.workers ?? []).every((w) => w.rejected_frames >= hostile.length), 10_000);
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

  // ---- faults ----

  it("should take a paused worker (SIGSTOP) out within the detection bound, route around it, and take it back after SIGCONT", async () => {
    const b = workers[1] as WorkerProcess;
    const lostBefore = await metric("barbell_nats_workers_lost_total", 'cause="heartbeat"');
    b.child.kill("SIGSTOP");
    try {
      const stopped = Date.now();
      expect(await until(async () => !(await workerIds()).includes("B"))).toBe(true);
      const detected = Date.now() - stopped;
      console.log(`SIGSTOP: worker B taken out after ${detected} ms (heartbeat ${HEARTBEAT_MS} ms, bound ${detectionBoundMs(HEARTBEAT_MS)} ms)`);
      expect(await metric("barbell_nats_workers_lost_total", 'cause="heartbeat"')).toBe(lostBefore + 1);
      const answers = await Promise.all([1, 2].map(() => gateway.completions.create({ model: "kjv", prompt: "And God said", max_tokens: 4, temperature: 0 })));
      expect(answers.map((a) => a.choices[0]?.finish_reason)).toEqual(["length", "length"]);
    } finally {
      b.child.kill("SIGCONT");
    }
    expect(await until(async () => (await workerIds()).includes("B"))).toBe(true);
  }, 120_000);

  it("should lose no request when a worker is killed under load: its queued requests run on other workers, its streamed one ends crashed", async () => {
    const c = await startWorker([...common, "--nats", nats.url, "--id", "C", "--parallel", "1", "--queue", "2"]);
    workers.push(c);
    await c.ready;
    expect(await until(async () => (await workerIds()).join() === "A,B,C")).toBe(true);
    const before = new Map((await health()).models["kjv"]?.workers.map((w) => [w.id, w.routed]));
    const faults = async (outcome: string): Promise<number> => metric("barbell_nats_request_faults_total", `outcome="${outcome}"`);
    const [resentBefore, crashedBefore] = [await faults("resent"), await faults("crashed")];
    // Seven streams: A takes 3 (parallel 3), B 1, C 3 (1 running and 2 queued); capacity 3 + 1 + 3.
    const tokens = Array.from({ length: 7 }, () => 0);
    const runs = tokens.map(async (_, i) => {
      try {
        const stream = await gateway.completions.create({ model: "kjv", prompt: "And God said", max_tokens: 48, temperature: 0, ignore_eos: true, stream: true } as never);
        let finish: string | null | undefined;
        for await (const chunk of stream as unknown as AsyncIterable<OpenAI.Completions.Completion>) {
          tokens[i] = (tokens[i] ?? 0) + (chunk.choices[0]?.text === "" || chunk.choices[0]?.text === undefined ? 0 : 1);
          finish ??= chunk.choices[0]?.finish_reason;
        }
        return `done:${finish}`;
      } catch (error) {
        return `error:${String((error as Error).message)}`;
      }
    });
    // Once the five running requests streamed, C dies (no SIGTERM: nothing is handed over).
    expect(await until(() => Promise.resolve(tokens.filter((n) => n > 0).length >= 5), 60_000)).toBe(true);
    const routed = Object.fromEntries(((await health()).models["kjv"]?.workers ?? []).map((w) => [w.id, w.routed - (before.get(w.id) ?? 0)]));
    expect(routed).toEqual({ A: 3, B: 1, C: 3 });
    c.child.kill("SIGKILL");
    const outcomes = await Promise.all(runs);
    const crashed = outcomes.filter((o) => o.startsWith("error:")).length;
    console.log(`SIGKILL under load: ${outcomes.filter((o) => o === "done:length").length} of 7 completed, ${crashed} crashed, ${(await faults("resent")) - resentBefore} resent`);
    // Every request ended: completed in full, or (only C's streamed one) with a crashed error after its tokens.
    expect(outcomes.filter((o) => o !== "done:length" && !/crashed|stopped answering/.test(o))).toEqual([]);
    expect(crashed).toBe(1);
    expect((await faults("crashed")) - crashedBefore).toBe(crashed);
    expect((await faults("resent")) - resentBefore).toBe((routed["C"] ?? 0) - crashed);
    expect(await workerIds()).toEqual(["A", "B"]);
  }, 180_000);

  it("should survive a nats-server restart: requests in flight end cleanly, every process reconnects and serves again", async () => {
    const [disconnects, reconnects] = [await metric("barbell_nats_connection_events_total", 'event="disconnect"'), await metric("barbell_nats_connection_events_total", 'event="reconnect"')];
    const streamed = [0, 0];
    const runs = streamed.map(async (_, i) => {
      try {
        const stream = await gateway.completions.create({ model: "kjv", prompt: "In the beginning", max_tokens: 400, temperature: 0, ignore_eos: true, stream: true } as never);
        for await (const chunk of stream as unknown as AsyncIterable<OpenAI.Completions.Completion>) {
          streamed[i] = (streamed[i] ?? 0) + 1;
          void chunk;
        }
        return "done";
      } catch (error) {
        return String((error as Error).message);
      }
    });
    expect(await until(() => Promise.resolve(streamed.every((n) => n > 0)), 60_000)).toBe(true);
    await nats.restart();
    const outcomes = await Promise.all(runs);
    console.log(`nats-server restart: in-flight requests ended ${JSON.stringify(outcomes)}`);
    expect(outcomes.every((o) => o === "done" || /crashed|NATS connection/.test(o))).toBe(true);
    // The gateway and both workers reconnect; the next request is answered (503 meanwhile, never a hang).
    let answer: OpenAI.Completions.Completion | undefined;
    expect(
      await until(async () => {
        answer = await gateway.completions.create({ model: "kjv", prompt: "And God said", max_tokens: 4, temperature: 0 }).catch(() => undefined);
        return answer !== undefined;
      }, 60_000),
    ).toBe(true);
    expect(answer?.choices[0]?.finish_reason).toBe("length");
    expect(await until(async () => (await workerIds()).join() === "A,B")).toBe(true);
    expect(await metric("barbell_nats_connection_events_total", 'event="disconnect"')).toBe(disconnects + 1);
    expect(await metric("barbell_nats_connection_events_total", 'event="reconnect"')).toBe(reconnects + 1);
    expect(await metric("barbell_nats_request_faults_total", 'cause="disconnect"')).toBe(outcomes.filter((o) => o !== "done").length);
  }, 180_000);
});
