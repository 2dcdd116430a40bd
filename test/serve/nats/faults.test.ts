/**
 * A gateway's fault handling in one process (docs/scale-out.md, "Faults"): a real nats-server on loopback, the
 * gateway (NatsGateway) and scripted workers that speak the wire protocol by hand, so each fault is exact: a
 * worker whose heartbeats stop (as under SIGSTOP) is taken out after MISSED_HEARTBEATS periods, its request that
 * streamed nothing is sent again to another worker and the streamed one ends `crashed`; a worker gone from NATS
 * (no responders) is taken out at the first request, which waits for a free slot elsewhere; late items of a
 * paused worker are ignored; hostile frames are counted on the metrics; a prompt that starts like an earlier
 * one (whole prefill steps) goes back to the worker that had it when that worker has a free slot.
 */
import { connect, type Msg, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ModelOutput } from "../../../src/serve/protocol.js";
import { blankItem, type WireItem } from "../../../src/serve/protocol.js";
import { buildCard, type ModelCard } from "../../../src/serve/nats/card.js";
import { detectionBoundMs, MISSED_HEARTBEATS, NatsGateway } from "../../../src/serve/nats/gateway.js";
import type { RemoteStream } from "../../../src/serve/nats/remote-stream.js";
import { CARD_CHUNK_BYTES, encodeNatsFrame, expectNatsFrame, type NatsGenerate } from "../../../src/serve/nats/wire.js";
import { PREFILL_STEP_TOKENS } from "../../../src/model/bitnet/forward.js";
import { MODEL, NATS_NOTE, NATS_SKIP, startNats, type NatsServer } from "./helpers.js";

const PREFIX = "tf";
const HEARTBEAT_MS = 100;

interface Received {
  readonly id: string;
  readonly reply: string;
}

/** A worker scripted by the test: adverts on a timer, card chunks, and the generate frames it receives. */
class ScriptedWorker {
  readonly received: Received[] = [];
  #seq = 0;
  #timer: NodeJS.Timeout | undefined;
  #subs: Subscription[] = [];

  constructor(
    private readonly nc: NatsConnection,
    readonly id: string,
    private readonly parallel: number,
    private readonly card: ModelCard,
  ) {
    this.#subs.push(
      nc.subscribe(`${PREFIX}.work.${id}`, {
        callback: (_e, m: Msg) => {
          const g = expectNatsFrame(m.data, "generate");
          if (g.ok && m.reply !== undefined) {
            this.received.push({ id: (g.value as NatsGenerate).id, reply: m.reply });
          }
        },
      }),
      nc.subscribe(`${PREFIX}.card.${id}`, {
        callback: (_e, m: Msg) => {
          const r = expectNatsFrame(m.data, "cardRequest");
          if (r.ok) {
            const offset = r.value.offset;
            m.respond(encodeNatsFrame({ type: "cardChunk", total: card.bytes.length, offset, bytes: card.bytes.subarray(offset, offset + CARD_CHUNK_BYTES) }));
          }
        },
      }),
    );
    this.resume();
  }

  advertise(): void {
    this.nc.publish(
      `${PREFIX}.adverts`,
      encodeNatsFrame({
        type: "advert",
        worker: this.id,
        model: "kjv",
        tokenizer: this.card.tokenizer,
        card: this.card.sha256,
        cardBytes: this.card.bytes.length,
        context: 2048,
        arch: "bitnet",
        vocab: 1,
        parallel: this.parallel,
        queue: 0,
        running: 0,
        queued: 0,
        backends: ["js"],
        state: "ready",
        seq: this.#seq++,
        heartbeatMs: HEARTBEAT_MS,
        completed: 0,
        rejected: 0,
      }),
    );
  }

  /** Heartbeats stop (the process is paused: its subscriptions stay, so NATS still delivers to it). */
  pause(): void {
    clearInterval(this.#timer);
  }

  resume(): void {
    this.advertise();
    this.#timer = setInterval(() => this.advertise(), HEARTBEAT_MS);
  }

  /** Gone from NATS: no heartbeats, no subscriptions (a publish to it gets NATS's no-responders status). */
  kill(): void {
    this.pause();
    for (const s of this.#subs) {
      s.unsubscribe();
    }
  }

  send(r: Received, seq: number, item: WireItem): void {
    this.nc.publish(r.reply, encodeNatsFrame({ type: "item", id: r.id, seq, resent: 0, item }));
  }

  token(r: Received, seq: number): void {
    this.send(r, seq, { ...blankItem("token"), token: 5, text: "x" });
  }

  done(r: Received, seq: number): void {
    this.send(r, seq, { ...blankItem("done"), finishReason: "length", model: "kjv", backend: "js", promptTokens: 3, completionTokens: seq });
  }
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Reads a stream to its end (bounded by the stream's own timeouts). */
async function collect(stream: AsyncIterable<ModelOutput>): Promise<ModelOutput[]> {
  const items: ModelOutput[] = [];
  for await (const item of stream) {
    items.push(item);
  }
  return items;
}

describe.skipIf(NATS_SKIP)(`a NATS gateway's faults, in process ${NATS_NOTE}`, () => {
  let nats: NatsServer;
  let gnc: NatsConnection;
  let wnc: NatsConnection;
  let gateway: NatsGateway;
  let card: ModelCard;
  const registry = new Registry();
  const workers: ScriptedWorker[] = [];

  const served = () => {
    const s = gateway.find("kjv");
    if (s === undefined) {
      throw new Error("model kjv not served");
    }
    return s;
  };
  const workerIds = async (): Promise<string[]> =>
    ((await served().readiness()).detail as { workers: { id: string }[] }).workers.map((w) => w.id).sort();
  const metric = async (name: string, labels: string): Promise<number> => {
    const line = (await registry.metrics()).split("\n").find((l) => l.startsWith(`${name}{${labels}}`));
    return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(" ") + 1));
  };
  const open = (tokens: readonly number[] = [1, 2, 3]) => {
    const opened = served().open({ tokens, maxTokens: 4 }, new AbortController().signal);
    if (!opened.ok) {
      throw new Error(opened.error.message);
    }
    return opened.value;
  };

  beforeAll(async () => {
    nats = await startNats();
    gnc = await connect({ servers: nats.url });
    wnc = await connect({ servers: nats.url });
    card = await buildCard(MODEL);
    gateway = await NatsGateway.start(gnc, { id: "g1", prefix: PREFIX });
    gateway.metrics.register(registry);
  }, 60_000);

  afterAll(async () => {
    for (const w of workers) {
      w.kill();
    }
    await gateway?.close();
    await gnc?.close();
    await wnc?.close();
    await nats?.stop();
  }, 30_000);

  it("should take out a worker whose heartbeats stop, send its unstreamed request to another worker and end its streamed one crashed", async () => {
    const a = new ScriptedWorker(wnc, "A", 4, card);
    const b = new ScriptedWorker(wnc, "B", 1, card);
    workers.push(a, b);
    await until("the model", () => gateway.find("kjv") !== undefined);
    await until("A and B listed", async () => (await workerIds()).length === 2);
    expect(await workerIds()).toEqual(["A", "B"]);
    // Most free slots: both go to A (4 free, then 3, against B's 1).
    const streamed = open();
    const unstreamed = open();
    const ended = [collect(streamed), collect(unstreamed)];
    await until("A to receive both", () => a.received.length === 2);
    const [r1, r2] = a.received as [Received, Received];
    a.token(r1, 0);
    await until("the token", () => (streamed as RemoteStream).streamed === 1);
    a.pause();
    const paused = Date.now();
    await until("A taken out", () => b.received.length === 1, 10_000);
    const detected = Date.now() - paused;
    expect(await workerIds()).toEqual(["B"]);
    // Not before three heartbeats could have been missed (A's last advert came before the pause).
    expect(detected).toBeGreaterThanOrEqual((MISSED_HEARTBEATS - 1) * HEARTBEAT_MS);
    const crashed = await ended[0];
    expect(crashed?.at(-1)).toMatchObject({ kind: "error", code: "crashed", completionTokens: 1 });
    // The re-sent request has a new id on B; A's late items for it (if A comes back) are ignored.
    const moved = b.received[0] as Received;
    expect(moved.id).not.toBe(r2.id);
    a.token(r2, 0);
    a.done(r2, 1);
    b.token(moved, 0);
    b.token(moved, 1);
    b.done(moved, 2);
    const items = (await ended[1]) ?? [];
    expect(items.map((i) => i.kind)).toEqual(["token", "token", "done"]);
    expect(items.at(-1)).toMatchObject({ kind: "done", resent: 1, completionTokens: 2 });
    expect(await metric("barbell_nats_workers_lost_total", 'model="kjv",cause="heartbeat"')).toBe(1);
    expect(await metric("barbell_nats_request_faults_total", 'model="kjv",outcome="resent",cause="heartbeat"')).toBe(1);
    expect(await metric("barbell_nats_request_faults_total", 'model="kjv",outcome="crashed",cause="heartbeat"')).toBe(1);
    // A comes back (SIGCONT): it is routable again.
    a.resume();
    await until("A back", async () => (await workerIds()).length === 2);
    expect(await workerIds()).toEqual(["A", "B"]);
    console.log(`heartbeat ${HEARTBEAT_MS} ms: a paused worker was taken out after ${detected} ms (bound ${detectionBoundMs(HEARTBEAT_MS)} ms)`);
  }, 60_000);

  it("should take out a worker gone from NATS at its first request and send its requests on as slots free up elsewhere", async () => {
    const [a, b] = workers as [ScriptedWorker, ScriptedWorker];
    // A vanishes (killed: no subscriptions) before its heartbeats are missed; both requests go to it (most free slots).
    a.kill();
    await wnc.flush();
    const sentToA = a.received.length;
    const first = open();
    const second = open();
    const ended = [collect(first), collect(second)];
    await until("A taken out", async () => (await metric("barbell_nats_workers_lost_total", 'model="kjv",cause="gone"')) === 1);
    expect(await workerIds()).toEqual(["B"]);
    expect(a.received.length).toBe(sentToA);
    // B has one slot: the first request runs there, the second waits for it.
    await until("the first on B", () => b.received.length === 2);
    await new Promise((r) => setTimeout(r, 3 * HEARTBEAT_MS));
    expect(b.received.length).toBe(2);
    b.done(b.received[1] as Received, 0);
    await until("the second on B", () => b.received.length === 3);
    b.token(b.received[2] as Received, 0);
    b.done(b.received[2] as Received, 1);
    const [one, two] = await Promise.all(ended);
    expect(one?.at(-1)).toMatchObject({ kind: "done", resent: 1 });
    expect(two?.at(-1)).toMatchObject({ kind: "done", resent: 1 });
    expect(await metric("barbell_nats_request_faults_total", 'model="kjv",outcome="resent",cause="gone"')).toBe(2);
  }, 60_000);

  it("should count refused frames by code on the metrics", async () => {
    const before = await metric("barbell_nats_refused_frames_total", 'code="bad-magic"');
    wnc.publish(`${PREFIX}.adverts`, Uint8Array.of(1, 2, 3));
    wnc.publish(`${PREFIX}.inbox.g1.999`, Uint8Array.of(9, 9, 9, 9, 9, 9, 9));
    wnc.publish(`${PREFIX}.adverts`, encodeNatsFrame({ type: "discover", from: "mallory" }));
    await wnc.flush();
    await until("the refusals", async () => (await metric("barbell_nats_refused_frames_total", 'code="unexpected"')) >= 1);
    expect(await metric("barbell_nats_refused_frames_total", 'code="bad-magic"')).toBe(before + 2);
    expect(await metric("barbell_nats_refused_frames_total", 'code="unexpected"')).toBe(1);
    expect(await metric("barbell_nats_workers", 'model="kjv"')).toBe(1); // B
  }, 30_000);

  it("should send a prompt that starts like an earlier one to the worker that had it, when it has a free slot", async () => {
    const p = new ScriptedWorker(wnc, "P", 4, card);
    const q = new ScriptedWorker(wnc, "Q", 2, card);
    workers.push(p, q);
    await until("P and Q listed", async () => (await workerIds()).join() === "B,P,Q");
    const before = await metric("barbell_nats_prefix_routed_total", 'model="kjv"');
    const conversation = Array.from({ length: 2 * PREFILL_STEP_TOKENS + 7 }, (_, i) => (i * 7) % 50);
    // Two short prompts fill P to 2 of 4, so the conversation goes to Q (2 free as well, less busy).
    const first = [open(), open(), open(conversation)].map(collect);
    await until("P 2, Q 1", () => p.received.length === 2 && q.received.length === 1);
    for (const r of [...p.received, ...q.received]) {
      (p.received.includes(r) ? p : q).done(r, 0);
    }
    await Promise.all(first);
    // Its next turn: by free slots alone P (4 free against 2); by its prefix, Q.
    const next = collect(open([...conversation, 9, 9, 9]));
    await until("the next turn", () => p.received.length + q.received.length === 4);
    expect([p.received.length, q.received.length]).toEqual([2, 2]);
    q.done(q.received[1] as Received, 0);
    expect((await next).at(-1)).toMatchObject({ kind: "done" });
    expect(await metric("barbell_nats_prefix_routed_total", 'model="kjv"')).toBe(before + 1);
    // A short prompt (no whole step) is routed by free slots: to P.
    const short = collect(open());
    await until("the short one", () => p.received.length === 3);
    p.done(p.received[2] as Received, 0);
    await short;
  }, 30_000);
});
