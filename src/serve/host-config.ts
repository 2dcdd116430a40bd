/** The model host's configuration (plain data: it travels to a child process as JSON) and its check. */
import type { BackendName } from "../backends/backend.js";
import { parseBackendList } from "../backends/registry.js";
import type { Clock } from "../actors/index.js";
import { MAX_BATCH_SEQUENCES } from "../model/bitnet/forward.js";
import { MAX_PROMPT_CACHE_MIB } from "../engine/prompt-cache.js";
import { ServeError } from "./errors.js";
import { checkFaultPlan, type FaultPlan } from "./faults.js";
import type { HeadPolicy } from "../model/bitnet/weights.js";
import type { KvCacheDType } from "../model/bitnet/kv-cache.js";

/** One model of a ladder (smallest or cheapest first). */
export interface ModelRung {
  readonly name: string;
  /** A GGUF file or a Hugging Face folder. */
  readonly path: string;
  /** Backends for this rung; default the host's `backends`. */
  readonly backends?: readonly BackendName[];
  readonly contextLength?: number;
  readonly headType?: HeadPolicy;
  /** KV cache element type (src/model/bitnet/kv-cache.ts); default f32. */
  readonly kvCacheType?: KvCacheDType;
}

/** Plain data (it travels to a child process as JSON). */
export interface ModelHostConfig {
  readonly ladder: readonly ModelRung[];
  /** The rung to load first. Default 0. */
  readonly rung?: number;
  /** Backends, preferred first; default the registry's choice (BARBELL_BACKENDS, else all available). */
  readonly backends?: readonly BackendName[];
  readonly threads?: number;
  /** Default false: a server should not time kernels on its first requests. */
  readonly autotune?: boolean;
  readonly contextLength?: number;
  /** Fault injection (tests and drills). */
  readonly faults?: readonly FaultPlan[];
  /** Consecutive failures that take a backend out of the chain. Default 3. */
  readonly maxBackendFailures?: number;
  /** Re-probe period of a backend that was taken out, in clock ms. Default 30 000. */
  readonly reprobeMs?: number;
  /** Requests waiting in the host (beyond the running ones); a request past it ends `overloaded`. Default 1024. */
  readonly maxQueue?: number;
  /**
   * Requests decoded together (continuous batching: one pass over the weights per step serves all of them,
   * each with its own KV cache). Default 1: one request at a time, the lowest latency per request.
   */
  readonly parallel?: number;
  /** Load the model when the host is created (default true); otherwise on the first request. */
  readonly preload?: boolean;
  /**
   * MiB of KV rows of earlier prompts kept for reuse (src/engine/prompt-cache.ts): a request whose prompt starts
   * with an earlier one's tokens prefills only the rest, with the same output. 0 turns it off. Default
   * DEFAULT_PROMPT_CACHE_MIB (512).
   */
  readonly promptCacheMiB?: number;
}

export interface ModelHostOptions extends ModelHostConfig {
  readonly clock?: Clock;
  /** The worker's restart count: salts random fault plans and limits `incarnations`. */
  readonly incarnation?: number;
  /** True in a worker's own child process: allows kill/abort faults and frees process-wide backends on release. */
  readonly isolated?: boolean;
}

export interface ExpandTarget {
  /** A rung by name; default the next rung (unless `backends` is given: then the same rung). */
  readonly rung?: string;
  /** Another backend list for the target rung. */
  readonly backends?: readonly string[];
}

export interface ExpandResult {
  readonly ok: boolean;
  /** "" when ok, else a ServeError code. */
  readonly code: string;
  readonly message: string;
}

/** Defaults of the host's limits. */
export const HOST_DEFAULTS = { maxBackendFailures: 3, reprobeMs: 30_000, maxQueue: 1024, parallel: 1 };

/** Checks a host config; a ServeError "bad-config" names the first problem. */
export function checkHostConfig(config: ModelHostConfig & { readonly isolated?: boolean }): void {
  const bad = (what: string): never => {
    throw new ServeError("bad-config", `[model] ${what}`);
  };
  if (!Array.isArray(config.ladder) || config.ladder.length === 0) {
    bad("the ladder needs at least one model");
  }
  const names = new Set<string>();
  for (const rung of config.ladder) {
    if (typeof rung.name !== "string" || rung.name === "" || names.has(rung.name)) {
      bad(`ladder names must be distinct and non-empty, got '${String(rung.name)}'`);
    }
    names.add(rung.name);
    if (typeof rung.path !== "string" || rung.path === "") {
      bad(`rung '${rung.name}' has no path`);
    }
    if (rung.backends !== undefined) {
      parseBackendList(rung.backends.join(","));
    }
  }
  if (config.backends !== undefined) {
    parseBackendList(config.backends.join(","));
  }
  for (const plan of config.faults ?? []) {
    checkFaultPlan(plan, { allowProcessFaults: config.isolated === true });
  }
  const rung = config.rung ?? 0;
  if (!Number.isSafeInteger(rung) || rung < 0 || rung >= config.ladder.length) {
    bad(`rung ${rung} is not in 0..${config.ladder.length - 1}`);
  }
  for (const [key, min] of [["maxBackendFailures", 1], ["reprobeMs", 1], ["maxQueue", 0]] as const) {
    const v = config[key];
    if (v !== undefined && !(Number.isSafeInteger(v) && v >= min)) {
      bad(`${key} must be an integer >= ${min}, got ${v}`);
    }
  }
  const budget = config.promptCacheMiB;
  if (budget !== undefined && !(Number.isSafeInteger(budget) && budget >= 0 && budget <= MAX_PROMPT_CACHE_MIB)) {
    bad(`promptCacheMiB must be an integer in 0..${MAX_PROMPT_CACHE_MIB}, got ${budget}`);
  }
  const parallel = config.parallel;
  if (parallel !== undefined && !(Number.isSafeInteger(parallel) && parallel >= 1 && parallel <= MAX_BATCH_SEQUENCES)) {
    bad(`parallel must be an integer in 1..${MAX_BATCH_SEQUENCES}, got ${parallel}`);
  }
}
