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
import type { ServeErrorCode } from "../errors.js";
import { Admission } from "../http/admission.js";
import { PromptTokenizer } from "../http/prompts.js";
import type { Readiness, Served } from "../http/served.js";
import type { RemoteModels } from "../http/server.js";
import { toWireRequest } from "../model-actor.js";
import { fromWireItem, type ModelOutput, type ModelRequest } from "../protocol.js";
import { CardStore } from "./card.js";
import { checkId, isNoResponders, subjects, type Subjects } from "./connection.js";
import { encodeNatsFrame, expectNatsFrame, FrameCounters, NatsFrameError, type NatsAdvert } from "./wire.js";

/** Heartbeats a worker may miss before it is taken out. */
export const MISSED_HEARTBEATS = 3;
/** Most workers and models a gateway tracks (adverts beyond them are refused and counted). */
export const MAX_GATEWAY_WORKERS = 1024;
export const MAX_GATEWAY_MODELS = 64;
/** Longest wait for each item of a request, and for each chunk of a model card. */
export const ITEM_IDLE_TIMEOUT_MS = 120_000;
export const CARD_TIMEOUT_MS = 10_000;
/** Most items that may wait unread in one request's stream (a flooding sender ends it). */
export const MAX_PENDING_ITEMS = 8192;

const SERVE_CODES: ReadonlySet<string> = new Set<ServeErrorCode>(["bad-request", "bad-config", "kernel", "crashed", "released", "unavailable", "timeout", "overloaded", "failed"]);

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

/** One request's items as they arrive from NATS, read as a ReplyStream. */
class RemoteStream implements ReplyStream<ModelOutput> {
  readonly #items: ModelOutput[] = [];
  #wake: (() => void) | undefined;
  #ended = false;
  #next = 0;
  streamed = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    readonly id: string,
    readonly worker: string,
    readonly model: string,
    private readonly onEnd: (stream: RemoteStream, cancelled: boolean) => void,
  ) {
    this.#arm();
  }

  #arm(): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.fail("timeout", `model '${this.model}' produced no output in time`), ITEM_IDLE_TIMEOUT_MS);
    this.#timer.unref();
  }

  /** An item frame for this request; false when it breaks the order (the stream then ends `failed`). */
  push(seq: number, item: ModelOutput): boolean {
    if (this.#ended) {
      return true;
    }
    if (seq !== this.#next || this.#items.length >= MAX_PENDING_ITEMS) {
      this.fail("failed", `model '${this.model}' sent its output out of order`);
      return false;
    }
    this.#next++;
    if (item.kind === "token" || item.kind === "tensor") {
      this.streamed++;
    }
    this.#items.push(item);
    if (item.kind === "done" || item.kind === "error") {
      this.#finish(false);
    } else {
      this.#arm();
    }
    this.#wake?.();
    return true;
  }

  fail(code: ServeErrorCode, message: string): void {
    if (this.#ended) {
      return;
    }
    const shown: ServeErrorCode = code === "unavailable" && this.streamed > 0 ? "crashed" : code;
    this.#items.push({ kind: "error", code: shown, message, model: this.model, completionTokens: this.streamed, failures: [] });
    this.#finish(false);
    this.#wake?.();
  }

  #finish(cancelled: boolean): void {
    this.#ended = true;
    clearTimeout(this.#timer);
    this.onEnd(this, cancelled);
  }

  cancel(): void {
    if (!this.#ended) {
      this.#finish(true);
    }
    this.#items.length = 0;
    this.#wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<ModelOutput> {
    try {
      for (;;) {
        const item = this.#items.shift();
        if (item !== undefined) {
          yield item;
          if (item.kind === "done" || item.kind === "error") {
            return;
          }
          continue;
        }
        if (this.#ended) {
          return;
        }
        await new Promise<void>((resolve) => (this.#wake = resolve));
        this.#wake = undefined;
      }
    } finally {
      this.cancel();
    }
  }
}

export class NatsGateway implements RemoteModels {
  readonly id: string;
  readonly counters = new FrameCounters();
  readonly #nc: NatsConnection;
  readonly #s: Subjects;
  readonly #log: (line: string) => void;
  readonly #models = new Map<string, RemoteModel>();
  /** Models whose card is being fetched, and the workers refused (by id: why). */
  readonly #joining = new Set<string>();
  readonly #refused = new Map<string, string>();
  readonly #streams = new Map<string, RemoteStream>();
  readonly #cards = new CardStore();
  readonly #subs: Subscription[] = [];
  #sweep: NodeJS.Timeout | undefined;
  #requests = 0;
  #closed = false;

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
    g.#sweep = setInterval(() => g.#sweepWorkers(), 250);
    g.#sweep.unref();
    await nc.flush();
    nc.publish(g.#s.discover, encodeNatsFrame({ type: "discover", from: g.id }), { reply: `${g.#s.inbox(g.id)}.adverts` });
    return g;
  }

  #refuse(where: string, error: NatsFrameError): void {
    this.counters.count(error);
    this.#log(`barbell serve: [nats] refused a frame on ${where}: ${error.message}`);
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
    for (const stream of [...this.#streams.values()]) {
      stream.fail("unavailable", "the gateway is shutting down");
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
      return;
    }
    known.advert = a;
    known.seenAt = Date.now();
    known.sentSinceAdvert = 0;
    known.leaving = a.state === "leaving";
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
        this.counters.count(chunk.error);
        throw chunk.error;
      }
      const c = chunk.value;
      if (c.total !== bytes.length || c.offset !== offset || c.bytes.length === 0) {
        const error = new NatsFrameError("bad-value", `[nats] card chunk at ${c.offset} of ${c.total} bytes where ${offset} of ${bytes.length} was asked`);
        this.counters.count(error);
        throw error;
      }
      bytes.set(c.bytes, offset);
      offset += c.bytes.length;
    }
    return bytes;
  }

  #sweepWorkers(): void {
    const now = Date.now();
    for (const model of this.#models.values()) {
      for (const [id, w] of model.workers) {
        if (now - w.seenAt > MISSED_HEARTBEATS * w.advert.heartbeatMs) {
          model.workers.delete(id);
          this.#log(`barbell serve: [nats] worker '${id}' of model '${model.name}' missed ${MISSED_HEARTBEATS} heartbeats; taken out`);
          for (const stream of this.#streams.values()) {
            if (stream.worker === id) {
              stream.fail("unavailable", `model '${model.name}': its worker stopped answering; retry the request`);
            }
          }
        }
      }
      if (model.workers.size === 0) {
        this.#models.delete(model.name);
        void model.prompts.close();
        this.#log(`barbell serve: [nats] model '${model.name}' has no workers left; no longer served`);
      }
    }
  }

  // ---- requests ----

  /** The worker to send a request to: most free decode slots, then least busy, then fewest routed; none when all are full. */
  #pick(model: RemoteModel): WorkerEntry | undefined {
    let best: { w: WorkerEntry; free: number; busy: number } | undefined;
    for (const w of model.workers.values()) {
      if (w.leaving) {
        continue;
      }
      const busy = Math.max(w.advert.running + w.advert.queued + w.sentSinceAdvert, w.inflight);
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

  #open(model: RemoteModel, request: ModelRequest, signal: AbortSignal): Result<ReplyStream<ModelOutput>, ActorError> {
    const wire = toWireRequest(request);
    const w = typeof wire === "string" ? undefined : this.#pick(model);
    if (typeof wire === "string" || w === undefined) {
      const full = [...model.workers.values()].some((x) => !x.leaving);
      const stream = new RemoteStream("refused", "", model.name, () => undefined);
      stream.fail(
        typeof wire === "string" ? "bad-request" : full ? "overloaded" : "unavailable",
        typeof wire === "string" ? wire : full ? `every worker of model '${model.name}' is full; retry later` : `model '${model.name}' has no worker; retry later`,
      );
      return ok(stream);
    }
    const n = ++this.#requests;
    const id = `${this.id}-${n}`;
    const live = new RemoteStream(id, w.advert.worker, model.name, (s, cancelled) => {
      this.#streams.delete(s.id);
      w.inflight--;
      signal.removeEventListener("abort", onAbort);
      if (cancelled) {
        this.#nc.publish(this.#s.cancel(s.worker), encodeNatsFrame({ type: "cancel", id: s.id }));
      }
    });
    const onAbort = (): void => live.cancel();
    signal.addEventListener("abort", onAbort, { once: true });
    this.#streams.set(id, live);
    w.inflight++;
    w.sentSinceAdvert++;
    w.routed++;
    try {
      this.#nc.publish(this.#s.work(w.advert.worker), encodeNatsFrame({ type: "generate", id, request: wire }), { reply: `${this.#s.inbox(this.id)}.${n}` });
    } catch (error) {
      live.fail("unavailable", `model '${model.name}': the request could not be sent (${error instanceof Error ? error.message : String(error)})`);
    }
    return ok(live);
  }

  #onReply(m: Msg): void {
    const last = m.subject.slice(m.subject.lastIndexOf(".") + 1);
    if (isNoResponders(m)) {
      // Nobody listens on the worker's subject any more (it left or died): its request ends at once.
      if (last !== "adverts") {
        const stream = this.#streams.get(`${this.id}-${last}`);
        stream?.fail("unavailable", `model '${stream.model}': its worker is gone; retry the request`);
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
    const stream = this.#streams.get(m.id);
    if (stream === undefined) {
      return; // a late item of a request that ended (cancelled, timed out)
    }
    const model = this.#models.get(stream.model);
    const worker = model?.workers.get(stream.worker);
    if (worker !== undefined) {
      worker.seenAt = Date.now(); // its items show it is alive as well as its heartbeats
    }
    let item = fromWireItem(m.item, m.resent);
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
