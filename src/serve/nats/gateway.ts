/**
 * The NATS gateway (`barbell serve --nats …` without a local model): the models that workers advertise,
 * served through the ordinary HTTP layer as {@link RemoteModels} (each a `Served` whose `open` sends the
 * request to one worker over NATS and reads its items back). Several gateways may run at once: each keeps its
 * own view of the workers from their adverts and heartbeats; the workers are the only shared state.
 *
 * Routing is by load: the worker with the most free decode slots (its `parallel` minus what it runs and queues,
 * from its latest advert plus what this gateway sent since), then the least busy; a worker whose
 * `parallel + queue` is taken gets nothing, and when every worker of the model is full the request ends
 * `overloaded` (HTTP 429). A worker whose heartbeats stop is taken out after three periods; its open requests
 * end `unavailable` (nothing streamed yet) or `crashed`. A worker of a known model id that advertises another
 * tokenizer or context is refused (never routed to), with a line naming both.
 */
import { randomBytes } from "node:crypto";
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import type { ActorError, ReplyStream } from "../../actors/index.js";
import { ok, type Result } from "../../core/result.js";
import { Admission } from "../http/admission.js";
import { PromptTokenizer } from "../http/prompts.js";
import type { Readiness, Served } from "../http/served.js";
import type { RemoteModels } from "../http/server.js";
import { fromWireItem, type ModelOutput, type ModelRequest, type WireRequest } from "../protocol.js";
import { checkRequest, type CheckedRequest } from "../request.js";
import { CardStore } from "./card.js";
import { checkId, isNoResponders, subjects, type Subjects } from "./connection.js";
import { PrefixAffinity } from "./affinity.js";
import { NatsGatewayMetrics, type FaultCause, type WorkerLossCause } from "./metrics.js";
import { RemoteStream } from "./remote-stream.js";
import { encodeNatsFrame, expectNatsFrame, FrameCounters, NatsFrameError, type NatsAdvert } from "./wire.js";

/** Heartbeats a worker may miss before it is taken out. */
export const MISSED_HEARTBEATS = 3;
/** Most workers and models a gateway tracks (adverts beyond them are refused and counted). */
export const MAX_GATEWAY_WORKERS = 1024;
export const MAX_GATEWAY_MODELS = 64;
/** Longest wait for each chunk of a model card (each item of a request: ITEM_IDLE_TIMEOUT_MS, remote-stream.ts). */
export const CARD_TIMEOUT_MS = 10_000;
/** How often the gateway looks for workers whose heartbeats stopped. */
export const SWEEP_INTERVAL_MS = 250;
/** Times a request that streamed nothing is sent to another worker when its worker is lost (then `unavailable`). */
export const MAX_RESENDS = 2;
/** Longest wait of such a request for a free slot on another worker. */
export const RESEND_WAIT_MS = 30_000;

/** The longest a stopped worker (killed, paused, cut off) stays routable: three heartbeats and one sweep. */
export function detectionBoundMs(heartbeatMs: number): number {
  return MISSED_HEARTBEATS * heartbeatMs + SWEEP_INTERVAL_MS;
}

const SERVE_CODES: ReadonlySet<string> = new Set<string>(["bad-request", "bad-config", "kernel", "crashed", "released", "unavailable", "timeout", "overloaded", "failed"]);

interface WorkerEntry {
  advert: NatsAdvert;
  seenAt: number;
  /** Requests this gateway sent since the worker's latest advert, and its own requests open there. */
  sentSinceAdvert: number;
  inflight: number;
  routed: number;
  leaving: boolean;
}

interface RemoteModel {
  readonly name: string;
  readonly tokenizer: string;
  readonly context: number;
  readonly workers: Map<string, WorkerEntry>;
  readonly served: Served;
  readonly prompts: PromptTokenizer;
  /** Requests whose worker was lost before they streamed anything, waiting for a free slot elsewhere. */
  readonly waiting: Job[];
  /** Which worker was sent which prompt prefix (affinity.ts). */
  readonly affinity: PrefixAffinity;
}

/** A request this gateway has open: its stream, what to send again, and (while waiting) until when and why. */
interface Job {
  readonly stream: RemoteStream;
  readonly request: WireRequest;
  readonly model: RemoteModel;
  /** The prompt's whole-prefill-step prefix hashes (affinity.ts). */
  readonly keys: readonly string[];
  until: number;
  cause: FaultCause | undefined;
}

export interface NatsGatewayOptions {
  /** The gateway's id (a subject token); default a random one. */
  readonly id?: string;
  readonly prefix?: string;
  readonly log?: (line: string) => void;
}

type ErrorItem = Extract<ModelOutput, { kind: "error" }>;

/** The HTTP layer's admission for a remote model: its capacity is what its live workers offer now. */
class RemoteAdmission extends Admission {
  constructor(private readonly workers: () => Iterable<WorkerEntry>) {
    super(1, 0);
  }

  override get capacity(): number {
    let sum = 0;
    for (const w of this.workers()) {
      sum += w.leaving ? 0 : w.advert.parallel + w.advert.queue;
    }
    return sum;
  }
}

export class NatsGateway implements RemoteModels {
  readonly id: string;
  readonly counters = new FrameCounters();
  /** Fault and refused-frame counters; `barbell serve --nats` adds them to its /metrics. */
  readonly metrics = new NatsGatewayMetrics(() => this.#liveWorkers());
  readonly #nc: NatsConnection;
  readonly #s: Subjects;
  readonly #log: (line: string) => void;
  readonly #models = new Map<string, RemoteModel>();
  /** Models whose card is being fetched, and the workers refused (by id: why). */
  readonly #joining = new Set<string>();
  readonly #refused = new Map<string, string>();
  /** Open requests by their id on the wire (a waiting one is in its model's `waiting` only). */
  readonly #jobs = new Map<string, Job>();
  readonly #cards = new CardStore();
  readonly #subs: Subscription[] = [];
  #sweep: NodeJS.Timeout | undefined;
  #requests = 0;
  #closed = false;
  /** False while the NATS connection is down: no sweeps (heartbeats cannot arrive), new requests end 503. */
  #connected = true;

  private constructor(nc: NatsConnection, options: NatsGatewayOptions) {
    this.#nc = nc;
    this.id = checkId("gateway", options.id ?? `gw-${randomBytes(6).toString("hex")}`);
    this.#s = subjects(options.prefix);
    this.#log = options.log ?? ((): void => undefined);
  }

  /** Subscribes to the deployment's adverts and asks every worker to advertise now. */
  static async start(nc: NatsConnection, options: NatsGatewayOptions = {}): Promise<NatsGateway> {
    const g = new NatsGateway(nc, options);
    g.#subs.push(
      nc.subscribe(g.#s.adverts, { callback: (_e, m) => g.#onAdvert(m.data) }),
      // Replies come to <inbox>.<request number> (items) and <inbox>.adverts (answers to discover).
      nc.subscribe(`${g.#s.inbox(g.id)}.>`, { callback: (_e, m) => g.#onReply(m) }),
    );
    g.#sweep = setInterval(() => g.#sweepWorkers(), SWEEP_INTERVAL_MS);
    g.#sweep.unref();
    void g.#watch();
    await nc.flush();
    g.#discover();
    return g;
  }

  #discover(): void {
    this.#nc.publish(this.#s.discover, encodeNatsFrame({ type: "discover", from: this.id }), { reply: `${this.#s.inbox(this.id)}.adverts` });
  }

  /**
   * Follows the connection. On a disconnect every open request ends at once (`unavailable`, or `crashed` once it
   * streamed: its items may be lost in the NATS server) and its worker is told to cancel it (sent on reconnect);
   * on a reconnect every worker gets a fresh heartbeat allowance and is asked to advertise now.
   */
  async #watch(): Promise<void> {
    for await (const status of this.#nc.status()) {
      if (this.#closed) {
        return;
      }
      if (status.type === "disconnect" && this.#connected) {
        this.#connected = false;
        this.metrics.connection.inc({ event: "disconnect" });
        this.#log(`barbell serve: [nats] disconnected from ${status.server}; open requests end, new ones get 503 until it reconnects`);
        for (const model of this.#models.values()) {
          for (const job of model.waiting.splice(0)) {
            this.#end(job, "disconnect", "the gateway lost its NATS connection; retry the request");
          }
        }
        for (const job of [...this.#jobs.values()]) {
          this.#publishCancel(job.stream.worker, job.stream.id);
          this.#end(job, "disconnect", "the gateway lost its NATS connection; retry the request");
        }
      } else if (status.type === "reconnect") {
        this.#connected = true;
        this.metrics.connection.inc({ event: "reconnect" });
        this.#log(`barbell serve: [nats] reconnected to ${status.server}`);
        const now = Date.now();
        for (const model of this.#models.values()) {
          for (const w of model.workers.values()) {
            w.seenAt = now;
          }
        }
        this.#discover();
      }
    }
  }

  #refuse(where: string, error: NatsFrameError): void {
    this.#count(error);
    this.#log(`barbell serve: [nats] refused a frame on ${where}: ${error.message}`);
  }

  #count(error: NatsFrameError): void {
    this.counters.count(error);
    this.metrics.refused(error.code);
  }

  *#liveWorkers(): Iterable<{ model: string; worker: string; refused: number }> {
    for (const m of this.#models.values()) {
      for (const w of m.workers.values()) {
        yield { model: m.name, worker: w.advert.worker, refused: w.advert.rejected };
      }
    }
  }

  // ---- RemoteModels ----

  list(): readonly Served[] {
    return [...this.#models.values()].map((m) => m.served);
  }

  find(name: string): Served | undefined {
    return this.#models.get(name)?.served;
  }

  prompts(name: string): PromptTokenizer | undefined {
    return this.#models.get(name)?.prompts;
  }

  /** Waits until `model` has `workers` routable workers (tests and the CLI's startup line); false on timeout. */
  async waitFor(model: string, workers = 1, timeoutMs = 30_000): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      const m = this.#models.get(model);
      if (m !== undefined && [...m.workers.values()].filter((w) => !w.leaving).length >= workers) {
        return true;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return false;
  }

  async close(): Promise<void> {
    if (this.#closed) {
      return;
    }
    this.#closed = true;
    clearInterval(this.#sweep);
    for (const job of [...this.#jobs.values(), ...[...this.#models.values()].flatMap((m) => m.waiting)]) {
      job.stream.fail("unavailable", "the gateway is shutting down");
    }
    for (const sub of this.#subs) {
      sub.unsubscribe();
    }
    await Promise.all([...this.#models.values()].map((m) => m.prompts.close()));
    this.#models.clear();
    await this.#cards.close();
  }

  // ---- adverts ----

  #onAdvert(data: Uint8Array): void {
    const decoded = expectNatsFrame(data, "advert");
    if (!decoded.ok) {
      this.#refuse("adverts", decoded.error);
      return;
    }
    const a = decoded.value;
    if (this.#closed) {
      return;
    }
    const model = this.#models.get(a.model);
    if (model === undefined) {
      if (a.state === "ready" && !this.#joining.has(a.model) && this.#models.size + this.#joining.size < MAX_GATEWAY_MODELS) {
        void this.#join(a);
      }
      return;
    }
    const known = model.workers.get(a.worker);
    if (known !== undefined && a.seq <= known.advert.seq) {
      return; // an older advert (a discover answer overtaken by a heartbeat)
    }
    if (a.tokenizer !== model.tokenizer || a.context !== model.context) {
      const why =
        `model '${a.model}': worker '${a.worker}' advertises tokenizer ${a.tokenizer.slice(0, 12)} and context ${a.context}, ` +
        `but this gateway serves it with tokenizer ${model.tokenizer.slice(0, 12)} and context ${model.context}; the worker is refused`;
      if (this.#refused.get(a.worker) !== why) {
        this.#log(`barbell serve: [nats] ${why}`);
      }
      this.#refused.set(a.worker, why);
      return;
    }
    this.#refused.delete(a.worker);
    if (known === undefined) {
      if (this.#workerCount() >= MAX_GATEWAY_WORKERS) {
        this.#refuse("adverts", new NatsFrameError("bad-value", `[nats] more than ${MAX_GATEWAY_WORKERS} workers (MAX_GATEWAY_WORKERS)`));
        return;
      }
      this.#log(`barbell serve: [nats] worker '${a.worker}' joined model '${a.model}' (parallel ${a.parallel}, queue ${a.queue})`);
      model.workers.set(a.worker, { advert: a, seenAt: Date.now(), sentSinceAdvert: 0, inflight: 0, routed: 0, leaving: a.state === "leaving" });
      this.#drain(model);
      return;
    }
    known.advert = a;
    known.seenAt = Date.now();
    known.sentSinceAdvert = 0;
    known.leaving = a.state === "leaving";
    this.#drain(model);
  }

  #workerCount(): number {
    let n = 0;
    for (const m of this.#models.values()) {
      n += m.workers.size;
    }
    return n;
  }

  /** Fetches the card of a model's first worker and starts serving the model. */
  async #join(a: NatsAdvert): Promise<void> {
    this.#joining.add(a.model);
    try {
      const bytes = await this.#fetchCard(a);
      const card = await this.#cards.store(bytes, { sha256: a.card, tokenizer: a.tokenizer, context: a.context });
      if (this.#closed || this.#models.has(a.model)) {
        return;
      }
      const workers = new Map<string, WorkerEntry>();
      const admission = new RemoteAdmission(() => workers.values());
      const model: RemoteModel = {
        name: a.model,
        tokenizer: a.tokenizer,
        context: a.context,
        workers,
        waiting: [],
        affinity: new PrefixAffinity(),
        prompts: new PromptTokenizer(card.path, card.info, this.#log),
        served: {
          name: a.model,
          kind: "model",
          info: card.info,
          randomWeights: false,
          admission,
          open: (request, signal) => this.#open(model, request, signal),
          readiness: () => Promise.resolve(this.#readiness(model)),
          stop: () => Promise.resolve(),
        },
      };
      this.#models.set(a.model, model);
      this.#log(`barbell serve: [nats] serving model '${a.model}' (${card.info.arch}, context ${card.info.contextLength})`);
      this.#onAdvert(encodeNatsFrame(a));
    } catch (error) {
      this.#log(`barbell serve: [nats] cannot serve model '${a.model}' from worker '${a.worker}': ${error instanceof Error ? error.message : String(error)}`);
    } finally {
      this.#joining.delete(a.model);
    }
  }

  async #fetchCard(a: NatsAdvert): Promise<Uint8Array> {
    const bytes = new Uint8Array(a.cardBytes); // a.cardBytes <= MAX_CARD_BYTES (checked when the advert was decoded)
    let offset = 0;
    while (offset < bytes.length) {
      const reply = await this.#nc.request(this.#s.card(a.worker), encodeNatsFrame({ type: "cardRequest", offset }), { timeout: CARD_TIMEOUT_MS });
      const chunk = expectNatsFrame(reply.data, "cardChunk");
      if (!chunk.ok) {
        this.#count(chunk.error);
        throw chunk.error;
      }
      const c = chunk.value;
      if (c.total !== bytes.length || c.offset !== offset || c.bytes.length === 0) {
        const error = new NatsFrameError("bad-value", `[nats] card chunk at ${c.offset} of ${c.total} bytes where ${offset} of ${bytes.length} was asked`);
        this.#count(error);
        throw error;
      }
      bytes.set(c.bytes, offset);
      offset += c.bytes.length;
    }
    return bytes;
  }

  #sweepWorkers(): void {
    if (!this.#connected) {
      return; // heartbeats cannot arrive; the reconnect gives every worker a fresh allowance
    }
    const now = Date.now();
    for (const model of this.#models.values()) {
      for (const [id, w] of model.workers) {
        if (now - w.seenAt > MISSED_HEARTBEATS * w.advert.heartbeatMs) {
          this.#lose(model, id, "heartbeat");
        }
      }
      for (const job of model.waiting.filter((j) => now > j.until)) {
        model.waiting.splice(model.waiting.indexOf(job), 1);
        this.#end(job, job.cause ?? "heartbeat", `no other worker of model '${model.name}' took the request in time; retry it`);
      }
      if (model.workers.size === 0) {
        this.#models.delete(model.name);
        for (const job of model.waiting.splice(0)) {
          this.#end(job, job.cause ?? "heartbeat", `model '${model.name}' has no worker left; retry later`);
        }
        void model.prompts.close();
        this.#log(`barbell serve: [nats] model '${model.name}' has no workers left; no longer served`);
      }
    }
  }

  /**
   * Takes a worker out (its heartbeats stopped, or NATS has nobody on its subject). Its requests that streamed
   * nothing go to another worker (as a restarted model worker gets them under `barbell serve`), the others end
   * `crashed`; nothing waits on the lost worker.
   */
  #lose(model: RemoteModel, id: string, cause: WorkerLossCause): void {
    if (!model.workers.delete(id)) {
      return;
    }
    this.metrics.workersLost.inc({ model: model.name, cause });
    this.#log(
      cause === "heartbeat"
        ? `barbell serve: [nats] worker '${id}' of model '${model.name}' missed ${MISSED_HEARTBEATS} heartbeats; taken out`
        : `barbell serve: [nats] worker '${id}' of model '${model.name}' is gone from NATS; taken out`,
    );
    for (const job of [...this.#jobs.values()]) {
      if (job.stream.worker !== id || job.model !== model) {
        continue;
      }
      this.#publishCancel(id, job.stream.id); // in case it was only paused and comes back
      if (job.stream.streamed > 0 || job.stream.resent >= MAX_RESENDS) {
        this.#end(job, cause, `its worker stopped answering; retry the request`);
        continue;
      }
      this.#jobs.delete(job.stream.id);
      job.stream.worker = "";
      job.until = Date.now() + RESEND_WAIT_MS;
      job.cause = cause;
      model.waiting.push(job);
    }
    this.#drain(model);
  }

  /** Ends a request whose worker (or NATS) was lost: `crashed` once it streamed, else `unavailable`; counted. */
  #end(job: Job, cause: FaultCause, why: string): void {
    if (job.stream.ended) {
      return;
    }
    this.metrics.requestFaults.inc({ model: job.model.name, outcome: job.stream.streamed > 0 ? "crashed" : "unavailable", cause });
    job.stream.fail("unavailable", `model '${job.model.name}': ${why}`);
  }

  /** Sends waiting requests (their worker was lost) to workers with free slots, oldest first. */
  #drain(model: RemoteModel): void {
    while (model.waiting.length > 0 && this.#connected) {
      const job = model.waiting[0];
      const w = job === undefined ? undefined : this.#pick(model, job.keys);
      if (w === undefined || job === undefined) {
        return;
      }
      model.waiting.shift();
      if (job.stream.ended) {
        continue;
      }
      this.metrics.requestFaults.inc({ model: model.name, outcome: "resent", cause: job.cause ?? "heartbeat" });
      this.#log(`barbell serve: [nats] request ${job.stream.id} of model '${model.name}' sent again, to worker '${w.advert.worker}'`);
      this.#send(job, w);
    }
  }

  #publishCancel(worker: string, id: string): void {
    if (worker === "") {
      return;
    }
    try {
      this.#nc.publish(this.#s.cancel(worker), encodeNatsFrame({ type: "cancel", id }));
    } catch {
      // a closed connection: nothing to tell
    }
  }

  // ---- requests ----

  /** The worker to send a request to: most free decode slots, then least busy, then fewest routed; none when all are full. */
  #pick(model: RemoteModel, keys: readonly string[]): WorkerEntry | undefined {
    const busyOf = (w: WorkerEntry): number => Math.max(w.advert.running + w.advert.queued + w.sentSinceAdvert, w.inflight);
    // The worker that was sent the longest prefix of this prompt, when it has a free decode slot (affinity.ts).
    const warm = model.affinity.find(keys, (id) => {
      const w = model.workers.get(id);
      return w !== undefined && !w.leaving && busyOf(w) < w.advert.parallel;
    });
    if (warm !== undefined) {
      this.metrics.prefixRouted.inc({ model: model.name });
      return model.workers.get(warm);
    }
    let best: { w: WorkerEntry; free: number; busy: number } | undefined;
    for (const w of model.workers.values()) {
      if (w.leaving) {
        continue;
      }
      const busy = busyOf(w);
      if (busy >= w.advert.parallel + w.advert.queue) {
        continue;
      }
      const free = w.advert.parallel - busy;
      if (best === undefined || free > best.free || (free === best.free && (busy < best.busy || (busy === best.busy && w.routed < best.w.routed)))) {
        best = { w, free, busy };
      }
    }
    return best?.w;
  }

  #open(model: RemoteModel, request: ModelRequest | CheckedRequest, signal: AbortSignal): Result<ReplyStream<ModelOutput>, ActorError> {
    const wire = checkRequest(request); // a checked request as it is
    const keys = typeof wire === "string" ? [] : PrefixAffinity.keys(wire.tokens);
    const w = typeof wire === "string" || !this.#connected ? undefined : this.#pick(model, keys);
    if (typeof wire === "string" || w === undefined) {
      const full = [...model.workers.values()].some((x) => !x.leaving);
      const stream = new RemoteStream("refused", "", model.name, () => undefined);
      if (typeof wire === "string") {
        stream.fail("bad-request", wire);
      } else if (!this.#connected) {
        stream.fail("unavailable", `model '${model.name}': the gateway lost its NATS connection; retry later`);
      } else {
        stream.fail(full ? "overloaded" : "unavailable", full ? `every worker of model '${model.name}' is full; retry later` : `model '${model.name}' has no worker; retry later`);
      }
      return ok(stream);
    }
    const onAbort = (): void => stream.cancel();
    const stream = new RemoteStream("", "", model.name, (s, cancelled) => {
      signal.removeEventListener("abort", onAbort);
      const job = this.#jobs.get(s.id);
      if (job?.stream === s) {
        this.#jobs.delete(s.id);
        const entry = model.workers.get(s.worker);
        if (entry !== undefined) {
          entry.inflight--;
        }
        if (cancelled) {
          this.#publishCancel(s.worker, s.id);
        }
      } else {
        const at = model.waiting.findIndex((j) => j.stream === s);
        if (at >= 0) {
          model.waiting.splice(at, 1);
        }
      }
      this.#drain(model);
    });
    signal.addEventListener("abort", onAbort, { once: true });
    this.#send({ stream, request: wire, model, keys, until: 0, cause: undefined }, w);
    return ok(stream);
  }

  /** Sends a request to a worker under a new id (a re-sent one counts its items from 0 again). */
  #send(job: Job, w: WorkerEntry): void {
    const n = ++this.#requests;
    const id = `${this.id}-${n}`;
    if (job.stream.id === "") {
      job.stream.id = id;
      job.stream.worker = w.advert.worker;
    } else {
      job.stream.retarget(id, w.advert.worker);
    }
    this.#jobs.set(id, job);
    job.model.affinity.remember(job.keys, w.advert.worker);
    w.inflight++;
    w.sentSinceAdvert++;
    w.routed++;
    try {
      this.#nc.publish(this.#s.work(w.advert.worker), encodeNatsFrame({ type: "generate", id, request: job.request }), { reply: `${this.#s.inbox(this.id)}.${n}` });
    } catch (error) {
      job.stream.fail("unavailable", `model '${job.model.name}': the request could not be sent (${error instanceof Error ? error.message : String(error)})`);
    }
  }

  #onReply(m: Msg): void {
    const last = m.subject.slice(m.subject.lastIndexOf(".") + 1);
    if (isNoResponders(m)) {
      // Nobody listens on the worker's subject any more (it left or died): its request ends at once.
      const job = this.#jobs.get(`${this.id}-${last}`);
      if (job !== undefined) {
        this.#lose(job.model, job.stream.worker, "gone");
      }
      return;
    }
    if (last === "adverts") {
      this.#onAdvert(m.data);
    } else {
      this.#onItem(m.data);
    }
  }

  #onItem(data: Uint8Array): void {
    const decoded = expectNatsFrame(data, "item", "refusal");
    if (!decoded.ok) {
      this.#refuse("inbox", decoded.error);
      return;
    }
    const m = decoded.value;
    if (m.type === "refusal") {
      this.#log(`barbell serve: [nats] a worker refused a frame of this gateway: ${m.code}: ${m.message.slice(0, 200)}`);
      return;
    }
    const job = this.#jobs.get(m.id);
    if (job === undefined) {
      return; // a late item of a request that ended (cancelled, timed out) or moved to another worker
    }
    const stream = job.stream;
    const worker = job.model.workers.get(stream.worker);
    if (worker !== undefined) {
      worker.seenAt = Date.now(); // its items show it is alive as well as its heartbeats
    }
    let item = fromWireItem(m.item, m.resent + stream.resent);
    if (item.kind === "error" && !SERVE_CODES.has(item.code)) {
      item = { ...item, code: "failed" };
    }
    if (item.kind === "error" && item.code !== "bad-request" && item.code !== "overloaded") {
      // Workers send safe text already; a gateway still never passes on what it cannot vouch for.
      this.#log(`barbell serve: [nats] model '${item.model}' request ${m.id} ended '${item.code}': ${item.message.slice(0, 500)}`);
      item = { ...item, message: `model '${stream.model}' ${safeText(item)}` } satisfies ErrorItem;
    }
    if (!stream.push(m.seq, item)) {
      this.#refuse("inbox", new NatsFrameError("bad-value", `[nats] item ${m.seq} of request ${m.id} out of order`));
    }
  }

  #readiness(model: RemoteModel): Readiness {
    const workers = [...model.workers.values()];
    const refused = [...this.#refused].filter(([, why]) => why.startsWith(`model '${model.name}'`));
    return {
      ready: workers.some((w) => !w.leaving),
      degraded: refused.length > 0 || workers.some((w) => w.leaving),
      restarts: undefined,
      crashes: undefined,
      escalations: undefined,
      detail: {
        gateway: this.id,
        tokenizer: model.tokenizer,
        workers: workers.map((w) => ({
          id: w.advert.worker,
          state: w.leaving ? "leaving" : "ready",
          parallel: w.advert.parallel,
          queue: w.advert.queue,
          running: w.advert.running,
          queued: w.advert.queued,
          completed: w.advert.completed,
          routed: w.routed,
          in_flight: w.inflight,
          backends: w.advert.backends,
          last_seen_ms: Date.now() - w.seenAt,
          rejected_frames: w.advert.rejected,
        })),
        refused_workers: refused.map(([id, why]) => ({ id, why })),
        rejected_frames: this.counters.total,
      },
    };
  }
}

function safeText(item: ErrorItem): string {
  switch (item.code) {
    case "unavailable":
      return "is unavailable on its worker; retry later";
    case "crashed":
      return "stopped while generating (its worker crashed); retry the request";
    case "timeout":
      return "produced no output in time";
    case "released":
      return "released its resources while the request ran; retry the request";
    case "kernel":
      return "failed on every backend";
    default:
      return "failed";
  }
}
