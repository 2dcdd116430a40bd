/**
 * A NATS worker (`barbell worker --nats …`): one model served exactly as `barbell serve` serves it (the same
 * `spawnServed`: a supervised model actor, its worker process, continuous batching, safe error text), joined
 * to a deployment over NATS. It advertises itself on `<prefix>.adverts` (model id, tokenizer hash, context,
 * capacity, backends, load) every heartbeat and whenever a request starts or ends, answers `discover` and
 * model-card requests, runs `generate` requests and streams their items to the requester, and cancels a
 * request on `cancel`. Before it advertises, it asks the deployment for the workers already there and refuses
 * to join when one serves the same model id with another tokenizer or context.
 */
import { createActorSystem, type ActorSystem } from "../../actors/index.js";
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import { ServeError } from "../errors.js";
import { spawnServed, type Served, type ServedModelConfig } from "../http/served.js";
import { blankItem, type ModelOutput, type WireItem } from "../protocol.js";
import { checkWireRequest } from "../request.js";
import { buildCard, type ModelCard } from "./card.js";
import { checkId, isNoResponders, subjects, type Subjects } from "./connection.js";
import { startBatchRunner, type BatchRunner } from "../batch/runner.js";
import { CARD_CHUNK_BYTES, decodeNatsFrame, encodeNatsFrame, expectNatsFrame, FrameCounters, NatsFrameError, type NatsAdvert, type NatsGenerate } from "./wire.js";

/** Default heartbeat period (ms); a gateway takes a worker out after three missed heartbeats. */
export const DEFAULT_HEARTBEAT_MS = 1_000;
/** How long a joining worker collects the adverts of the workers already there. */
export const DEFAULT_DISCOVER_MS = 750;
/** Longest wait for the model to load before the worker gives up. */
export const WORKER_LOAD_TIMEOUT_MS = 300_000;
/** Most requests one worker keeps open (running, queued, or being refused): bounds its bookkeeping. */
export const MAX_WORKER_OPEN_REQUESTS = 4096;

export interface NatsWorkerOptions {
  /** The worker's id (a subject token), unique in the deployment. */
  readonly id: string;
  readonly prefix?: string;
  /** The model, as `barbell serve` takes it (name = the model id clients send). */
  readonly model: ServedModelConfig;
  readonly heartbeatMs?: number;
  readonly discoverMs?: number;
  /** Where lines about failures and refused frames go. */
  readonly log?: (line: string) => void;
}

export interface NatsWorker {
  readonly id: string;
  readonly served: Served;
  readonly counters: FrameCounters;
  /** Says "leaving", stops taking requests, lets open ones finish (up to `deadlineMs`), stops the model. */
  stop(deadlineMs?: number): Promise<void>;
}

/** A model item as it crosses NATS (the inverse of protocol.ts's fromWireItem). */
export function toWireItem(o: ModelOutput): WireItem {
  switch (o.kind) {
    case "token":
      return { ...blankItem("token"), token: o.token, text: o.text, logprob: o.logprob, entropy: o.entropy, topLogprobs: o.topLogprobs };
    case "tensor":
      return { ...blankItem("tensor"), tensor: o.tensor };
    case "done":
      return {
        ...blankItem("done"),
        finishReason: o.finishReason,
        model: o.model,
        backend: o.backend,
        promptTokens: o.promptTokens,
        completionTokens: o.completionTokens,
        failures: o.failures,
        prefillMs: o.timing?.prefillMs ?? 0,
        decodeMs: o.timing?.decodeMs ?? 0,
        meanBatch: o.timing?.meanBatch ?? 0,
      };
    case "error":
      return { ...blankItem("error"), code: o.code, message: o.message, model: o.model, completionTokens: o.completionTokens, failures: o.failures };
  }
}

/** The adverts that the workers already in the deployment answer a discover with, for `discoverMs`. */
async function currentAdverts(nc: NatsConnection, s: Subjects, from: string, discoverMs: number, counters: FrameCounters): Promise<NatsAdvert[]> {
  const inbox = `${s.discover}.reply.${from}`;
  const found = new Map<string, NatsAdvert>();
  const sub = nc.subscribe(inbox, {
    callback: (_e, m) => {
      if (isNoResponders(m)) {
        return; // no other worker yet
      }
      const a = expectNatsFrame(m.data, "advert");
      if (a.ok) {
        found.set(a.value.worker, a.value);
      } else {
        counters.count(a.error);
      }
    },
  });
  nc.publish(s.discover, encodeNatsFrame({ type: "discover", from }), { reply: inbox });
  await new Promise((resolve) => setTimeout(resolve, discoverMs));
  sub.unsubscribe();
  return [...found.values()];
}

/** The refusal for joining next to `other`, or undefined when this worker fits the deployment. */
export function joinProblem(mine: Pick<NatsAdvert, "worker" | "model" | "tokenizer" | "context">, other: NatsAdvert): string | undefined {
  if (other.worker === mine.worker) {
    return `[nats] worker id '${mine.worker}' is already in use (by a worker serving '${other.model}'); pass another --name`;
  }
  if (other.model === mine.model && (other.tokenizer !== mine.tokenizer || other.context !== mine.context)) {
    return (
      `[nats] model '${mine.model}': worker '${mine.worker}' has tokenizer ${mine.tokenizer.slice(0, 12)} and context ${mine.context}, ` +
      `but worker '${other.worker}' serves it with tokenizer ${other.tokenizer.slice(0, 12)} and context ${other.context}; ` +
      `every worker of one model id must share its tokenizer and context (pass another --name, or the same file and -c)`
    );
  }
  return undefined;
}

/** Starts a worker: builds the model card, checks the deployment, loads the model, then advertises. */
export async function startNatsWorker(nc: NatsConnection, options: NatsWorkerOptions): Promise<NatsWorker> {
  const id = checkId("worker", options.id);
  const s = subjects(options.prefix);
  const log = options.log ?? ((): void => undefined);
  const heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
  const counters = new FrameCounters();
  const refused = (what: string, error: NatsFrameError): void => {
    counters.count(error);
    log(`barbell worker: refused a frame on ${what}: ${error.message}`);
  };
  const card: ModelCard = await buildCard(options.model.path);
  const system: ActorSystem = createActorSystem();
  let served: Served;
  try {
    [served] = (await spawnServed(system, [options.model], [], { log })) as [Served];
  } catch (error) {
    await system.stop();
    throw error;
  }
  const parallel = options.model.parallel ?? 1;
  const queue = options.model.queue ?? 16;
  let seq = 0;
  let completed = 0;
  let state: "ready" | "leaving" = "ready";
  const open = new Map<string, AbortController>();
  // eslint-disable-next-line prefer-const -- set once the worker serves; adverts read it before
  let batch: BatchRunner | undefined; // batch lines (docs/batch.md) run in the slots live requests leave free
  const advert = (): NatsAdvert => ({
    type: "advert",
    worker: id,
    model: served.name,
    tokenizer: card.tokenizer,
    card: card.sha256,
    cardBytes: card.bytes.length,
    context: served.info.contextLength,
    arch: served.info.arch,
    vocab: served.info.vocabSize,
    parallel,
    queue,
    running: Math.min(open.size + (batch?.running ?? 0), parallel),
    queued: Math.max(0, open.size + (batch?.running ?? 0) - parallel),
    backends: [...(options.model.backends ?? [])],
    state,
    seq: seq++,
    heartbeatMs,
    completed,
    rejected: counters.total,
  });
  const advertise = (to = s.adverts): void => nc.publish(to, encodeNatsFrame(advert()));

  try {
    const started = Date.now();
    while (!(await served.readiness()).ready) {
      if (Date.now() - started > WORKER_LOAD_TIMEOUT_MS) {
        throw new ServeError("unavailable", `[nats] model '${served.name}' did not load within ${WORKER_LOAD_TIMEOUT_MS} ms`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    // Checked right before the first advert (workers that load meanwhile are caught by the gateways' own check).
    const mine = advert();
    for (const other of await currentAdverts(nc, s, id, options.discoverMs ?? DEFAULT_DISCOVER_MS, counters)) {
      const why = joinProblem(mine, other);
      if (why !== undefined) {
        throw new ServeError("bad-config", why);
      }
    }
  } catch (error) {
    await system.stop();
    throw error;
  }

  const send = (reply: string, id: string, n: number, item: WireItem, resent = 0): void => {
    nc.publish(reply, encodeNatsFrame({ type: "item", id, seq: n, resent, item }));
  };
  const fail = (reply: string, rid: string, code: string, message: string): void => send(reply, rid, 0, { ...blankItem("error"), code, message, model: served.name });

  const run = async (m: NatsGenerate, reply: string): Promise<void> => {
    const controller = new AbortController();
    open.set(m.id, controller);
    advertise();
    let n = 0;
    try {
      const request = checkWireRequest(m.request); // a frame from NATS is hostile input: checked here (request.ts)
      if (typeof request === "string") {
        fail(reply, m.id, "bad-request", request);
        return;
      }
      const opened = served.open(request, controller.signal);
      if (!opened.ok) {
        fail(reply, m.id, "unavailable", `model '${served.name}' is not available on worker '${id}' (${opened.error.code})`);
        return;
      }
      const onAbort = (): void => opened.value.cancel();
      controller.signal.addEventListener("abort", onAbort, { once: true });
      try {
        for await (const item of opened.value) {
          if (controller.signal.aborted) {
            break;
          }
          send(reply, m.id, n++, toWireItem(item), item.kind === "done" ? item.resent : 0);
          if (item.kind === "done") {
            completed++;
          }
          if (item.kind === "done" || item.kind === "error") {
            break;
          }
        }
      } finally {
        controller.signal.removeEventListener("abort", onAbort);
        opened.value.cancel();
      }
    } catch (error) {
      log(`barbell worker: request ${m.id} failed: ${error instanceof Error ? error.message : String(error)}`);
      fail(reply, m.id, "failed", `model '${served.name}' failed on worker '${id}'`);
    } finally {
      open.delete(m.id);
      if (state === "ready") {
        advertise();
      }
    }
  };

  const onGenerate = (m: Msg): void => {
    const decoded = expectNatsFrame(m.data, "generate");
    if (!decoded.ok) {
      refused("work", decoded.error);
      if (m.reply !== undefined) {
        m.respond(encodeNatsFrame({ type: "refusal", code: decoded.error.code, message: decoded.error.message }));
      }
      return;
    }
    if (m.reply === undefined) {
      refused("work", new NatsFrameError("bad-value", "[nats] a generate frame without a reply subject"));
      return;
    }
    if (state !== "ready" || open.has(decoded.value.id) || open.size >= MAX_WORKER_OPEN_REQUESTS) {
      const why = state !== "ready" ? `worker '${id}' is leaving` : open.has(decoded.value.id) ? `request id '${decoded.value.id}' is already running` : `worker '${id}' has too many open requests`;
      fail(m.reply, decoded.value.id, state !== "ready" ? "unavailable" : open.has(decoded.value.id) ? "bad-request" : "overloaded", why);
      return;
    }
    void run(decoded.value, m.reply);
  };

  const subs: Subscription[] = [
    nc.subscribe(s.work(id), { callback: (_e, m) => onGenerate(m) }),
    nc.subscribe(s.cancel(id), {
      callback: (_e, m) => {
        const decoded = expectNatsFrame(m.data, "cancel");
        if (!decoded.ok) {
          refused("cancel", decoded.error);
          return;
        }
        open.get(decoded.value.id)?.abort();
      },
    }),
    nc.subscribe(s.card(id), {
      callback: (_e, m) => {
        const decoded = expectNatsFrame(m.data, "cardRequest");
        if (m.reply === undefined) {
          return;
        }
        if (!decoded.ok) {
          refused("card", decoded.error);
          m.respond(encodeNatsFrame({ type: "refusal", code: decoded.error.code, message: decoded.error.message }));
          return;
        }
        const offset = Math.min(decoded.value.offset, card.bytes.length);
        const bytes = card.bytes.subarray(offset, Math.min(card.bytes.length, offset + CARD_CHUNK_BYTES));
        m.respond(encodeNatsFrame({ type: "cardChunk", total: card.bytes.length, offset, bytes }));
      },
    }),
    nc.subscribe(s.discover, {
      callback: (_e, m) => {
        const decoded = decodeNatsFrame(m.data);
        if (!decoded.ok || decoded.value.type !== "discover") {
          if (!decoded.ok) {
            refused("discover", decoded.error);
          }
          return;
        }
        if (m.reply !== undefined && decoded.value.from !== id) {
          advertise(m.reply);
        }
      },
    }),
  ];
  advertise();
  const heartbeat = setInterval(() => advertise(), heartbeatMs);
  batch = startBatchRunner(nc, { prefix: options.prefix, served, modelPath: options.model.path, free: () => (state === "ready" ? parallel - open.size : 0), log, onLoad: () => state === "ready" && advertise() });
  void (async () => {
    // A disconnect ends every open request here (its items may be lost in the NATS server, and its gateway ends
    // it too); a reconnect advertises at once, so gateways see the worker again without waiting a heartbeat.
    for await (const status of nc.status()) {
      if (status.type === "disconnect") {
        log(`barbell worker: disconnected from NATS (${status.server}); ${open.size} open request(s) cancelled`);
        for (const controller of open.values()) {
          controller.abort();
        }
      } else if (status.type === "reconnect") {
        log(`barbell worker: reconnected to NATS (${status.server})`);
        if (state === "ready") {
          advertise();
        }
      }
    }
  })();
  log(`barbell worker: '${id}' serves model '${served.name}' (context ${served.info.contextLength}, parallel ${parallel}, queue ${queue}) on ${s.adverts}`);

  let stopping: Promise<void> | undefined;
  return {
    id,
    served,
    counters,
    stop(deadlineMs = 10_000) {
      stopping ??= (async () => {
        state = "leaving";
        clearInterval(heartbeat);
        advertise();
        subs[0]?.unsubscribe(); // no new work; cancels and card requests still answered while open ones finish
        const batchStopped = batch?.stop(deadlineMs);
        const until = Date.now() + deadlineMs;
        while (open.size > 0 && Date.now() < until) {
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        for (const controller of open.values()) {
          controller.abort();
        }
        await batchStopped;
        for (const sub of subs) {
          sub.unsubscribe();
        }
        await nc.flush().catch(() => undefined);
        await system.stop();
      })();
      return stopping;
    },
  };
}
