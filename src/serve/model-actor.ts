/**
 * The model actor: what a server talks to. It is an in-process supervisor whose one child, the model
 * worker, holds the weights — in a child process by default, so a native crash kills only the worker.
 *
 * - `processInput` streams {@link ModelOutput}s; the last item is always `done` or `error`, never a throw
 *   (a throwing producer would fail this actor). Cancelling the stream (or its AbortSignal) cancels the
 *   request in the worker, queued or running.
 * - When the worker dies, a request that had streamed nothing is sent again to the restarted worker (up to
 *   `maxAttempts` times); one that had streamed tokens ends with a `crashed` error. Nothing hangs: the
 *   worker's restart closes its streams, and `idleTimeoutMs` bounds the wait for every item.
 * - Up to `parallel` requests run at a time (the worker batches their decode steps) and up to `queue` more
 *   wait; a request beyond `parallel + queue` ends at once with an `overloaded` error (HTTP 429).
 * - The supervisor's record (cumulative worker failures, restarts and escalations, last failure, backend
 *   degradations reported by requests) survives worker restarts and restarts of this actor itself (after an
 *   escalation), and is part of `queryStatus`; each failure, restart and escalation is one `log` line.
 */
import {
  actorModule,
  defineActor,
  type ActorDefinition,
  type ActorError,
  type ActorRef,
  type Clock,
  type Replies,
  type Streams,
  type SupervisionEvent,
  type SupervisionOptions,
} from "../actors/index.js";
import { ServeError } from "./errors.js";
import type { ExpandTarget } from "./host.js";
import { fromWireItem, type BackendFailure, type ModelOutput, type ModelRequest, type ModelWorkerMsg, type WorkerStatus } from "./protocol.js";
import { checkRequest, type CheckedRequest } from "./request.js";
import { encodeWorkerConfig, modelWorker, type ModelWorkerConfig } from "./worker.js";

export interface ModelActorOptions extends ModelWorkerConfig {
  /** Where the worker runs. Default "process". */
  readonly isolation?: "process" | "in-process";
  /** How the worker is restarted. Default: restart on any failure, at most 5 times in 60 s, 100 ms→5 s backoff. */
  readonly supervision?: SupervisionOptions;
  /** Sends of a request that the worker's death interrupted before it streamed anything. Default 3. */
  readonly maxAttempts?: number;
  /** Longest wait for each output item, in clock ms. Default 120 000. */
  readonly idleTimeoutMs?: number;
  /** Longest wait for the worker's status, in clock ms. Default 10 000. */
  readonly statusTimeoutMs?: number;
  /** Front mailbox capacity (a full one refuses `processInput` with `mailbox-full`: HTTP 429). Default 256. */
  readonly mailboxCapacity?: number;
  /** Node flags for the worker's child process. */
  readonly execArgv?: readonly string[];
  /**
   * Requests that may wait beyond `parallel` (which the worker decodes together). A request that arrives
   * while `parallel + queue` are in flight ends at once with `error` `overloaded` (HTTP 429). Default 256.
   */
  readonly queue?: number;
  /** Where the supervisor's lines go (one per worker failure, restart and escalation). Default: nowhere. */
  readonly log?: (line: string) => void;
}

/** A failure the supervisor saw. */
export interface FailureRecord {
  readonly code: string;
  readonly message: string;
  readonly at: number;
}

/** Backend degradations as the supervisor recorded them from requests (they survive worker restarts). */
export interface DegradationRecord {
  readonly backend: string;
  readonly failures: number;
  readonly kernel: string;
  readonly error: string;
  readonly at: number;
}

export interface ModelStatus {
  /** Whether the worker answered (false while it restarts or after it was stopped for good). */
  readonly available: boolean;
  readonly isolation: "process" | "in-process";
  /** The worker actor's status (`running`, `restarting`, …). */
  readonly workerState: string;
  /** Worker restarts so far, cumulative: they survive restarts of this actor after an escalation. */
  readonly restarts: number;
  /** Worker failures the supervisor handled (crashes, start failures, …), cumulative. */
  readonly crashes: number;
  /** Times the worker failed past the restart intensity (this actor then failed `escalated`), cumulative. */
  readonly escalations: number;
  readonly lastFailure: FailureRecord | undefined;
  /** Requests accepted and not finished: this actor's mailbox, the worker's, its queue and the running one. */
  readonly queueDepth: number;
  /** Requests whose stream is open (queued or running). */
  readonly inFlight: number;
  /** Requests decoded together at most, and requests that may wait beyond them (beyond both: `overloaded`). */
  readonly parallel: number;
  readonly queue: number;
  /** Requests refused `overloaded` so far. */
  readonly overloaded: number;
  readonly degradations: readonly DegradationRecord[];
  /** What the worker says (undefined when it did not answer). */
  readonly worker: WorkerStatus | undefined;
}

export type ExpandReply =
  | { readonly ok: true; readonly message: string; readonly status: ModelStatus }
  | { readonly ok: false; readonly code: string; readonly message: string; readonly status: ModelStatus };

/**
 * The model actor's messages. `processInput` takes a checked request as it is and checks any other (`checkRequest`:
 * code callers, requests decoded from NATS frames).
 */
export type ModelMsg =
  | ({ readonly type: "processInput"; readonly request: ModelRequest | CheckedRequest } & Streams<ModelOutput>)
  | ({ readonly type: "expandCapability"; readonly target?: ExpandTarget } & Replies<ExpandReply>)
  | ({ readonly type: "releaseResources" } & Replies<ModelStatus>)
  | ({ readonly type: "queryStatus" } & Replies<ModelStatus>);

const DEFAULT_SUPERVISION: SupervisionOptions = {
  maxRestarts: 5,
  withinMs: 60_000,
  backoff: { minMs: 100, maxMs: 5_000, factor: 2 },
};

/** The wire form of a request (the checked request), or a message saying what is wrong with it. */
export const toWireRequest: (r: ModelRequest) => CheckedRequest | string = checkRequest;

interface Record_ {
  clock: Clock | undefined;
  lastFailure: FailureRecord | undefined;
  crashes: number;
  restarts: number;
  escalations: number;
  readonly degradations: Map<string, { failures: number; kernel: string; error: string; at: number }>;
}

/**
 * The model actor's definition. Each call makes a definition with its own supervisor record: spawn it once.
 * Throws ServeError "bad-config" for a config that cannot work.
 */
export function modelActor(options: ModelActorOptions): ActorDefinition<ModelMsg> {
  const isolation = options.isolation ?? "process";
  const { supervision, maxAttempts, idleTimeoutMs, statusTimeoutMs, mailboxCapacity, execArgv, queue: queueOption, isolation: _i, log, ...config } = options;
  const workerConfig: ModelWorkerConfig = { ...config, isolated: isolation === "process" };
  const worker = modelWorker(workerConfig); // checks the config
  const attempts = maxAttempts ?? 3;
  if (!(Number.isSafeInteger(attempts) && attempts >= 1)) {
    throw new ServeError("bad-config", `[model] maxAttempts must be an integer >= 1, got ${attempts}`);
  }
  const parallel = config.parallel ?? 1;
  const queue = queueOption ?? 256;
  if (!(Number.isSafeInteger(queue) && queue >= 0)) {
    throw new ServeError("bad-config", `[model] queue must be an integer >= 0, got ${queue}`);
  }
  const record: Record_ = { clock: undefined, lastFailure: undefined, crashes: 0, restarts: 0, escalations: 0, degradations: new Map() };
  const name = config.ladder[config.rung ?? 0]?.name ?? "model";
  const observe = (event: SupervisionEvent): void => {
    record.crashes++;
    const failure = event.kind === "escalate" && event.error.cause instanceof Error ? (event.error.cause as ActorError) : event.error;
    const what = `model '${name}': worker failed (${failure.code}: ${failure.message})`;
    if (event.kind === "restart") {
      record.restarts++;
      log?.(`${what}; restart ${event.inWindow} of at most ${event.maxRestarts} in ${event.withinMs} ms, in ${Math.round(event.delayMs)} ms (${record.restarts} restart(s), ${record.crashes} failure(s) in total)`);
    } else if (event.kind === "escalate") {
      record.escalations++;
      log?.(
        `${what}; ESCALATED: more than ${event.maxRestarts} restart(s) within ${event.withinMs} ms: requests in flight end 'unavailable' and the model actor's supervisor decides (${record.escalations} escalation(s), ${record.crashes} failure(s) in total)`,
      );
    } else {
      log?.(`${what}; supervisor directive: ${event.kind} (${record.crashes} failure(s) in total)`);
    }
  };
  const noteFailure = (error: ActorError): void => {
    record.lastFailure = { code: error.code, message: error.message, at: record.clock?.now() ?? 0 };
  };
  const noteDegradations = (failures: readonly BackendFailure[]): void => {
    for (const f of failures) {
      const d = record.degradations.get(f.backend) ?? { failures: 0, kernel: "", error: "", at: 0 };
      d.failures++;
      d.kernel = f.kernel;
      d.error = f.error;
      d.at = record.clock?.now() ?? 0;
      record.degradations.set(f.backend, d);
    }
  };
  const base = supervision ?? DEFAULT_SUPERVISION;
  return defineActor<ModelMsg>({
    name: "model",
    mailboxCapacity: mailboxCapacity ?? 256,
    supervision: {
      ...base,
      decider: (error) => {
        noteFailure(error);
        return base.decider?.(error) ?? "restart";
      },
      observe: (event) => {
        observe(event);
        base.observe?.(event);
      },
    },
    create: (ctx) => {
      record.clock = ctx.clock;
      if (ctx.restarts > 0) {
        log?.(`model '${name}': the model actor restarted (${ctx.restarts} time(s)) with a new worker`);
      }
      const ref: ActorRef<ModelWorkerMsg> = ctx.spawn(worker, {
        name: "worker",
        isolation:
          isolation === "process"
            ? {
                kind: "process",
                module: `${actorModule(import.meta.url, "./worker-entry.js").href}?config=${encodeWorkerConfig(workerConfig)}`,
                ...(execArgv === undefined ? {} : { execArgv }),
              }
            : { kind: "in-process" },
      });
      let inFlight = 0;
      let overloaded = 0;

      const status = async (): Promise<ModelStatus> => {
        let answer: WorkerStatus | undefined;
        try {
          answer = await ref.ask({ type: "queryStatus" }, { timeoutMs: statusTimeoutMs ?? 10_000 });
        } catch {
          answer = undefined;
        }
        return summarize(answer);
      };
      const summarize = (answer: WorkerStatus | undefined): ModelStatus => ({
        available: answer !== undefined,
        isolation,
        workerState: ref.status,
        restarts: record.restarts,
        crashes: record.crashes,
        escalations: record.escalations,
        lastFailure: record.lastFailure,
        queueDepth: ctx.self.queued + ref.queued + (answer === undefined ? inFlight : answer.queued + answer.running),
        inFlight,
        parallel,
        queue,
        overloaded,
        degradations: [...record.degradations].map(([backend, d]) => ({ backend, ...d })),
        worker: answer,
      });

      async function* processInput(request: ModelRequest | CheckedRequest): AsyncGenerator<ModelOutput> {
        const wire = checkRequest(request);
        if (typeof wire === "string") {
          yield { kind: "error", code: "bad-request", message: wire, model: "", completionTokens: 0, failures: [] };
          return;
        }
        if (inFlight >= parallel + queue) {
          overloaded++;
          yield {
            kind: "error",
            code: "overloaded",
            message: `[model] overloaded: ${inFlight} request(s) in flight (parallel ${parallel} + queue ${queue}); retry later`,
            model: "",
            completionTokens: 0,
            failures: [],
          };
          return;
        }
        inFlight++;
        let streamed = 0;
        try {
          for (let attempt = 1; ; attempt++) {
            const opened = ref.stream({ type: "processInput", ...wire }, { idleTimeoutMs: idleTimeoutMs ?? 120_000 });
            if (!opened.ok) {
              yield { kind: "error", code: "unavailable", message: `[model] worker refused the request: ${opened.error.message}`, model: "", completionTokens: 0, failures: [] };
              return;
            }
            const stream = opened.value;
            try {
              for await (const item of stream) {
                const out = fromWireItem(item, attempt - 1);
                if (out.kind === "token" || out.kind === "tensor") {
                  streamed++;
                } else {
                  noteDegradations(out.failures);
                }
                yield out;
                if (out.kind === "done" || out.kind === "error") {
                  return;
                }
              }
              yield { kind: "error", code: "failed", message: "[model] the worker ended the stream without a result", model: "", completionTokens: streamed, failures: [] };
              return;
            } catch (error) {
              const e = error as ActorError;
              noteFailure(e);
              const lost = e.code === "crashed" || e.code === "failed" || e.code === "stopped" || e.code === "protocol";
              if (lost && streamed === 0 && attempt < attempts && ctx.self.status !== "stopping") {
                continue;
              }
              const code = e.code === "timeout" ? "timeout" : streamed > 0 ? "crashed" : "unavailable";
              yield {
                kind: "error",
                code,
                message: `[model] the model worker failed (${e.code}) after ${streamed} streamed item(s) and ${attempt} attempt(s): ${e.message}`,
                model: "",
                completionTokens: streamed,
                failures: [],
              };
              return;
            } finally {
              stream.cancel();
            }
          }
        } finally {
          inFlight--;
        }
      }

      return {
        receive: {
          processInput: (m) => processInput(m.request),
          queryStatus: () => status(),
          releaseResources: async () => {
            let answer: WorkerStatus | undefined;
            try {
              answer = await ref.ask({ type: "releaseResources" }, { timeoutMs: statusTimeoutMs ?? 10_000 });
            } catch (error) {
              noteFailure(error as ActorError);
            }
            return summarize(answer);
          },
          expandCapability: async (m) => {
            const target = m.target ?? {};
            try {
              const reply = await ref.ask({ type: "expandCapability", rung: target.rung, backends: target.backends });
              const s = summarize(reply.status);
              return reply.ok ? { ok: true, message: reply.message, status: s } : { ok: false, code: reply.code, message: reply.message, status: s };
            } catch (error) {
              const e = error as ActorError;
              noteFailure(e);
              return { ok: false, code: "unavailable", message: `[model] expand failed: ${e.message}`, status: summarize(undefined) };
            }
          },
        },
      };
    },
  });
}
