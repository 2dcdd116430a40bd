/**
 * The models a server serves: one model actor per configured model, and one cascade router per configured
 * cascade (its rungs are configured models, and the router uses their actors: every model is loaded once). Each has a bounded
 * admission queue and the header-only {@link ModelInfo} the HTTP layer validates against.
 *
 * What reaches clients from a model is safe: a served model's stream never throws (a failure of its actor,
 * such as an escalation past the restart intensity, ends it with an `error` item `unavailable`, or `crashed`
 * after output), and the message of every server-side error item is replaced by safe text naming the model
 * and the code; the original (actor paths, pids, file paths, signals) goes to the server's log.
 */
import type { ActorError, ActorRef, ActorSystem, ReplyStream, SupervisionOptions } from "../../actors/index.js";
import type { BackendName } from "../../backends/backend.js";
import type { Result } from "../../core/result.js";
import { ServeError } from "../errors.js";
import type { FaultPlan } from "../faults.js";
import { modelActor, type ModelActorOptions, type ModelMsg, type ModelStatus } from "../model-actor.js";
import type { ModelOutput, ModelRequest } from "../protocol.js";
import type { CheckedRequest } from "../request.js";
import type { ServeErrorCode } from "../errors.js";
import { cascadeRouter, type ConfidenceMetric, type RouterMsg } from "../router.js";
import { Admission } from "./admission.js";
import { readModelInfo, type ModelInfo } from "./model-info.js";
import type { HeadPolicy } from "../../model/bitnet/weights.js";
import type { KvCacheDType } from "../../model/bitnet/kv-cache.js";

/** One model of a server's configuration (the config file's `models` entries). */
export interface ServedModelConfig {
  /** The id clients send as `model`. */
  readonly name: string;
  /** A GGUF file or a Hugging Face folder. */
  readonly path: string;
  /** A generated model with random weights: said on startup and in /v1/models. */
  readonly randomWeights?: boolean;
  /** Requests decoded together. Default 1. */
  readonly parallel?: number;
  /** Requests that may wait beyond `parallel` before the server answers 429. Default 16. */
  readonly queue?: number;
  readonly backends?: readonly BackendName[];
  readonly threads?: number;
  /** KV-cache capacity; default min(model context, 4096). */
  readonly contextLength?: number;
  /** What to do with a float output head (LoadModelOptions.headType: auto, keep, q8_0, q6_k). Default "auto". */
  readonly head?: HeadPolicy;
  /** KV cache element type, "f32" (default), "f16" or "q8_0" (docs/kv-cache.md). */
  readonly kvType?: KvCacheDType;
  /** Where the model worker runs. Default "process" (a native crash kills only the worker). */
  readonly isolation?: "process" | "in-process";
  /** Prefix cache budget in MiB (0: off). Default DEFAULT_PROMPT_CACHE_MIB (docs/serving.md, "Prefix cache"). */
  readonly promptCacheMiB?: number;
  /** Fault injection (drills and tests; docs/actors.md). */
  readonly faults?: readonly FaultPlan[];
  readonly supervision?: SupervisionOptions;
}

/** A cascade of configured models, smallest first (src/serve/router.ts). */
export interface CascadeConfig {
  readonly name: string;
  /** Names of configured models, smallest first. */
  readonly rungs: readonly string[];
  readonly metric?: ConfidenceMetric;
  readonly threshold: number;
  readonly window?: number;
  readonly parallel?: number;
  readonly queue?: number;
}

/** Readiness of one served model. */
export interface Readiness {
  readonly ready: boolean;
  /** Restarts, backend failures or backends taken out: serving, but not at full health. */
  readonly degraded: boolean;
  /** Cumulative: worker restarts, worker failures, and escalations past the restart intensity (undefined: no answer). */
  readonly restarts: number | undefined;
  readonly crashes: number | undefined;
  readonly escalations: number | undefined;
  /** Details for authorised callers only (pids, failures, backends). */
  readonly detail: Record<string, unknown>;
}

export interface Served {
  readonly name: string;
  readonly kind: "model" | "cascade";
  readonly info: ModelInfo;
  readonly randomWeights: boolean;
  readonly admission: Admission;
  /**
   * Sends a request: a checked one as it is, any other (a NATS worker's decoded frame) checked by the model actor.
   * A refusal (`mailbox-full`, `stopped`) is returned, never thrown.
   */
  open(request: ModelRequest | CheckedRequest, signal: AbortSignal): Result<ReplyStream<ModelOutput>, ActorError>;
  readiness(): Promise<Readiness>;
  stop(): Promise<void>;
}

/** What spawnServed needs besides the models. */
export interface ServedOptions {
  /** Where failures of the models go (lines with the details clients do not get). Default: nowhere. */
  readonly log?: (line: string) => void;
  /** Admission by predicted wait: longest predicted wait for a slot (ms) a request is admitted with. */
  readonly maxWaitMs?: number;
}

type ErrorItem = Extract<ModelOutput, { kind: "error" }>;

/** The text clients get for a model's server-side error codes (4xx codes keep the model's own message). */
const SAFE_TEXT: Partial<Record<ServeErrorCode, string>> = {
  unavailable: "is unavailable (its worker is restarting or failed); retry later",
  crashed: "stopped while generating (its worker crashed); retry the request",
  kernel: "failed on every backend",
  released: "released its resources while the request ran; retry the request",
  timeout: "produced no output in time",
  failed: "failed",
};

/**
 * `opened` as the HTTP layer reads it (see the file comment): never throws, safe error text, and each finished
 * generation's measured timing fed to `admission`'s wait predictor.
 */
function guarded(name: string, admission: Admission, opened: Result<ReplyStream<ModelOutput>, ActorError>, log: (line: string) => void): Result<ReplyStream<ModelOutput>, ActorError> {
  if (!opened.ok) {
    return opened;
  }
  const inner = opened.value;
  const safe = (item: ErrorItem): ErrorItem => {
    const text = SAFE_TEXT[item.code];
    if (text === undefined) {
      return item;
    }
    log(`barbell serve: model '${name}': request ended '${item.code}': ${item.message}`);
    return { ...item, message: `model '${name}' ${text}` };
  };
  async function* items(): AsyncGenerator<ModelOutput> {
    let streamed = 0;
    try {
      for await (const item of inner) {
        if (item.kind === "error") {
          yield safe(item);
          return;
        }
        if (item.kind === "token" || item.kind === "tensor") {
          streamed++;
        } else if (item.kind === "done" && item.timing !== undefined) {
          admission.observe({ promptTokens: item.promptTokens, completionTokens: item.completionTokens, ...item.timing });
        }
        yield item;
        if (item.kind === "done") {
          return;
        }
      }
      yield safe({ kind: "error", code: "failed", message: "[serve] the model ended the stream without a result", model: name, completionTokens: streamed, failures: [] });
    } catch (error) {
      // The model actor itself failed (an escalation: it is restarted by its supervisor) or the read was cancelled.
      const e = error as Partial<ActorError>;
      const code: ServeErrorCode = e.code === "timeout" ? "timeout" : streamed > 0 ? "crashed" : "unavailable";
      const item: ErrorItem = { kind: "error", code, message: `[serve] the model actor failed (${String(e.code)}): ${String(e.message)}`, model: name, completionTokens: streamed, failures: [] };
      yield e.code === "cancelled" ? { ...item, message: `model '${name}' request cancelled` } : safe(item);
    }
  }
  const iterable = items();
  return {
    ok: true,
    value: {
      cancel: () => inner.cancel(),
      [Symbol.asyncIterator]: () => iterable,
    },
  };
}

const DEFAULT_QUEUE = 16;
const STATUS_TIMEOUT_MS = 5_000;

function actorOptions(m: ServedModelConfig): Omit<ModelActorOptions, "ladder"> {
  return {
    isolation: m.isolation ?? "process",
    autotune: false,
    ...(m.backends === undefined ? {} : { backends: m.backends }),
    ...(m.threads === undefined ? {} : { threads: m.threads }),
    ...(m.contextLength === undefined ? {} : { contextLength: m.contextLength }),
    ...(m.faults === undefined ? {} : { faults: m.faults }),
    ...(m.supervision === undefined ? {} : { supervision: m.supervision }),
    ...(m.promptCacheMiB === undefined ? {} : { promptCacheMiB: m.promptCacheMiB }),
    // Continuous batching in the model worker, and the actor's own bound matching the admission queue's.
    parallel: m.parallel ?? 1,
    queue: m.queue ?? DEFAULT_QUEUE,
  };
}

function modelReadiness(s: ModelStatus): Readiness {
  const out = s.worker?.out ?? [];
  return {
    ready: s.available && s.worker?.loaded === true,
    degraded: s.restarts > 0 || s.degradations.length > 0 || out.length > 0,
    restarts: s.restarts,
    crashes: s.crashes,
    escalations: s.escalations,
    detail: {
      available: s.available,
      worker_state: s.workerState,
      loaded: s.worker?.loaded ?? false,
      backend: s.worker?.backend ?? "",
      backends_out: out,
      restarts: s.restarts,
      crashes: s.crashes,
      escalations: s.escalations,
      last_failure: s.lastFailure ?? null,
      degradations: s.degradations,
      queue_depth: s.queueDepth,
      in_flight: s.inFlight,
      completed: s.worker?.completed ?? 0,
      pid: s.worker?.pid ?? 0,
      ...(s.worker === undefined
        ? {}
        : {
            prompt_cache: {
              budget_bytes: s.worker.promptCache.budgetBytes,
              bytes: s.worker.promptCache.bytes,
              entries: s.worker.promptCache.entries,
              hits: s.worker.promptCache.hits,
              misses: s.worker.promptCache.misses,
              tokens_reused: s.worker.promptCache.tokensReused,
              evictions: s.worker.promptCache.evictions,
            },
          }),
    },
  };
}

async function ask<T>(query: () => Promise<T>): Promise<T | undefined> {
  try {
    return await query();
  } catch {
    return undefined;
  }
}

/** The model actor did not answer (undefined counters: the last ones known stand). */
const notAnswering: Readiness = { ready: false, degraded: true, restarts: undefined, crashes: undefined, escalations: undefined, detail: { available: false, error: "the model actor did not answer" } };

/** How the tokenizers of two models differ (undefined: the same vocabulary, token texts and special tokens). */
export function tokenizerDifference(a: ModelInfo, b: ModelInfo, nameA: string, nameB: string): string | undefined {
  const ta = a.tokenizer;
  const tb = b.tokenizer;
  if (ta === undefined || tb === undefined) {
    return ta === tb ? undefined : `'${ta === undefined ? nameA : nameB}' has no tokenizer`;
  }
  if (a.vocabSize !== b.vocabSize || ta.vocabSize !== tb.vocabSize) {
    return `vocabulary of ${a.vocabSize} vs ${b.vocabSize} tokens`;
  }
  for (const key of ["bos", "eos", "eot"] as const) {
    if (ta[key] !== tb[key]) {
      return `${key} token ${String(ta[key])} vs ${String(tb[key])}`;
    }
  }
  for (let id = 0; id < ta.vocabSize; id++) {
    if (ta.tokenText(id) !== tb.tokenText(id)) {
      return `token ${id} is ${JSON.stringify(ta.tokenText(id))} in '${nameA}' and ${JSON.stringify(tb.tokenText(id))} in '${nameB}'`;
    }
  }
  return undefined;
}

/** Spawns the actors of `models` and `cascades` in `system`; reads each model's header first (bad paths fail here). */
export async function spawnServed(
  system: ActorSystem,
  models: readonly ServedModelConfig[],
  cascades: readonly CascadeConfig[] = [],
  options: ServedOptions = {},
): Promise<Served[]> {
  const log = options.log ?? ((): void => undefined);
  const byName = new Map<string, ServedModelConfig>();
  for (const m of models) {
    if (byName.has(m.name)) {
      throw new ServeError("bad-config", `[serve] two models are named '${m.name}'`);
    }
    byName.set(m.name, m);
  }
  const infos = new Map<string, ModelInfo>();
  for (const m of models) {
    infos.set(m.name, await readModelInfo(m.path, m.contextLength));
  }
  // A cascade tokenizes with its first rung and sends the ids to every rung: they must share one tokenizer.
  for (const c of cascades) {
    const [first, ...rest] = c.rungs;
    for (const other of rest) {
      const a = infos.get(first ?? "");
      const b = infos.get(other);
      const why = a === undefined || b === undefined ? undefined : tokenizerDifference(a, b, first ?? "", other);
      if (why !== undefined) {
        throw new ServeError("bad-config", `[serve] cascade '${c.name}': models '${first}' and '${other}' do not share a tokenizer (${why}); a cascade's rungs must use the same vocabulary`);
      }
    }
  }
  const served: Served[] = [];
  const refs = new Map<string, ActorRef<ModelMsg>>();
  for (const m of models) {
    const rung = { name: m.name, path: m.path, ...(m.head === undefined ? {} : { headType: m.head }), ...(m.kvType === undefined ? {} : { kvCacheType: m.kvType }) };
    const ref: ActorRef<ModelMsg> = system.spawn(modelActor({ ladder: [rung], ...actorOptions(m), log: (line) => log(`barbell serve: ${line}`) }), {
      name: `model-${served.length}`,
    });
    refs.set(m.name, ref);
    const admission = new Admission(m.parallel ?? 1, m.queue ?? DEFAULT_QUEUE, options.maxWaitMs);
    served.push({
      name: m.name,
      kind: "model",
      info: infos.get(m.name) as ModelInfo,
      randomWeights: m.randomWeights === true,
      admission,
      open: (request, signal) => guarded(m.name, admission, ref.stream({ type: "processInput", request }, { signal }), log),
      readiness: async () => {
        const s = await ask(() => ref.ask({ type: "queryStatus" }, { timeoutMs: STATUS_TIMEOUT_MS }));
        return s === undefined ? notAnswering : modelReadiness(s);
      },
      stop: () => ref.stop(),
    });
  }
  const cascadeNames = new Set<string>();
  for (const c of cascades) {
    if (byName.has(c.name) || cascadeNames.has(c.name)) {
      throw new ServeError("bad-config", `[serve] cascade '${c.name}' has the name of a model or of another cascade`);
    }
    cascadeNames.add(c.name);
    const rungs = c.rungs.map((name) => {
      const m = byName.get(name);
      if (m === undefined) {
        throw new ServeError("bad-config", `[serve] cascade '${c.name}' names an unknown model '${name}'`);
      }
      return m;
    });
    const first = rungs[0];
    if (first === undefined) {
      throw new ServeError("bad-config", `[serve] cascade '${c.name}' has no rungs`);
    }
    const ref: ActorRef<RouterMsg> = system.spawn(
      cascadeRouter({
        ladder: rungs.map((m) => ({ name: m.name, path: m.path, ...(m.backends === undefined ? {} : { backends: m.backends }), ...(m.contextLength === undefined ? {} : { contextLength: m.contextLength }) })),
        threshold: c.threshold,
        ...(c.metric === undefined ? {} : { metric: c.metric }),
        ...(c.window === undefined ? {} : { window: c.window }),
        model: actorOptions(first),
        // The rungs are the configured models' own actors: each model is loaded once, whether it is asked
        // directly or through cascades, and its `parallel`/`queue` bound all of its users together.
        rungRefs: rungs.map((m) => refs.get(m.name) as ActorRef<ModelMsg>),
      }),
      { name: `cascade-${served.length}` },
    );
    const info = infos.get(first.name) as ModelInfo;
    const cascadeAdmission = new Admission(c.parallel ?? 1, c.queue ?? DEFAULT_QUEUE, options.maxWaitMs);
    served.push({
      name: c.name,
      kind: "cascade",
      // Requests are checked against the smallest context of the ladder.
      info: { ...info, contextLength: Math.min(...rungs.map((m) => infos.get(m.name)?.contextLength ?? info.contextLength)) },
      randomWeights: rungs.some((m) => m.randomWeights === true),
      admission: cascadeAdmission,
      open: (request, signal) => guarded(c.name, cascadeAdmission, ref.stream({ type: "processInput", request }, { signal }), log),
      readiness: async () => {
        const s = await ask(() => ref.ask({ type: "queryStatus" }, { timeoutMs: STATUS_TIMEOUT_MS }));
        if (s === undefined) {
          return notAnswering;
        }
        const parts = s.rungs.map(modelReadiness);
        return {
          ready: parts.length > 0 && parts.every((p) => p.ready),
          degraded: parts.some((p) => p.degraded),
          restarts: parts.reduce((sum, p) => sum + (p.restarts ?? 0), 0),
          crashes: parts.reduce((sum, p) => sum + (p.crashes ?? 0), 0),
          escalations: parts.reduce((sum, p) => sum + (p.escalations ?? 0), 0),
          detail: { requests: s.requests, escalations: s.escalations, answered_by: s.answeredBy, rungs: parts.map((p) => p.detail) },
        };
      },
      stop: () => ref.stop(),
    });
  }
  return served;
}
