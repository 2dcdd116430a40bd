/**
 * Backend selection: probe the providers, order them (explicit list, then BARBELL_BACKENDS, then
 * priority and probe score), create the chosen ones and compose them with the JS reference into a
 * dispatcher (dispatch.ts), decorated with the autotuner when tuning is on. A failed probe or creation is remembered with its reason and not retried in this
 * process; concurrent resolutions share one in-flight attempt per provider.
 */
import os from "node:os";
import { BackendError } from "../core/errors.js";
import { Autotuner, machineFingerprint } from "./autotune.js";
import type { BackendName, BackendOptions, BackendProvider, PartialBackend, Probe } from "./backend.js";
import { autotune } from "./decorators/autotune.js";
import { createDispatcher, decorate, type Dispatcher, type DispatchOptions } from "./dispatch.js";
import { createJsBackend } from "./js/index.js";
import { PROVIDERS } from "./providers.js";

/** Every backend name a list may hold: the providers' (providers.ts, the one list), then the JS reference. */
export const BACKEND_NAMES: readonly BackendName[] = [...PROVIDERS.map((p) => p.name), "js"];

export interface ResolveOptions extends Omit<DispatchOptions, "memoryFrom">, BackendOptions {
  /**
   * Backends to use, preferred first (e.g. ["native-cpu", "js"]). Default: the BARBELL_BACKENDS
   * environment variable (comma-separated), else every available provider by priority. The JS
   * reference is appended as the last resort unless the list names backends and leaves "js" out,
   * in which case any kernel those backends lack is an error.
   */
  readonly backends?: readonly BackendName[];
  /** Environment to read BARBELL_BACKENDS from; default process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Providers to choose from; default the built-in list. */
  readonly providers?: readonly BackendProvider[];
  /**
   * Tune kernels per shape (backend × thread count), caching the choices on disk (default true unless
   * BARBELL_AUTOTUNE=0; the CLI's --no-autotune turns it off). Only when `threads` is not fixed are thread counts tuned.
   */
  readonly autotune?: boolean;
  /** The tuner to use; default a process-wide one over the user cache file. */
  readonly tuner?: Autotuner;
  /** Extra instances to tune over (the same backend with other thread counts); default: made here. */
  readonly variants?: readonly PartialBackend[];
  /** Told once per backend that was wanted (or ranked) but cannot run here, with the reason. */
  readonly onUnavailable?: (name: BackendName, reason: string) => void;
}

export interface ProbeReport {
  readonly name: BackendName;
  readonly basePriority: number;
  readonly probe: Probe;
}

const probes = new Map<BackendProvider, Promise<Probe>>();
/** Providers whose unavailability was already reported in this process. */
const told = new WeakSet<BackendProvider>();
const creations = new Map<string, Promise<PartialBackend>>();

/** Probes a provider once per process; a throwing probe counts as unavailable with its message. */
export function probeOnce(provider: BackendProvider): Promise<Probe> {
  let p = probes.get(provider);
  if (p === undefined) {
    p = provider.probe().catch((e: unknown) => ({ available: false as const, reason: e instanceof Error ? e.message : String(e) }));
    probes.set(provider, p);
  }
  return p;
}

/** Every provider with its probe result (for `barbell backends`), plus the always-available JS reference. */
export async function probeAll(providers: readonly BackendProvider[] = PROVIDERS): Promise<ProbeReport[]> {
  const reports = await Promise.all(providers.map(async (p) => ({ name: p.name, basePriority: p.basePriority, probe: await probeOnce(p) })));
  return [...reports, { name: "js", basePriority: 0, probe: { available: true, score: 1, features: ["reference"] } }];
}

/** Parses a BARBELL_BACKENDS / --backend value: comma-separated names from BACKEND_NAMES. */
export function parseBackendList(text: string): BackendName[] {
  const names = text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  for (const n of names) {
    if (!(BACKEND_NAMES as readonly string[]).includes(n)) {
      throw new BackendError("unavailable", `[backend] unknown backend "${n}" (known: ${BACKEND_NAMES.join(", ")})`);
    }
  }
  return names as BackendName[];
}

function creationKey(provider: BackendProvider, options: BackendOptions): string {
  return `${provider.name}:${options.threads ?? "default"}`;
}

async function createOnce(provider: BackendProvider, options: BackendOptions): Promise<PartialBackend> {
  const key = creationKey(provider, options);
  let p = creations.get(key);
  if (p === undefined) {
    p = provider.create(options);
    creations.set(key, p);
  }
  return p;
}

/**
 * Resolves the dispatcher for these options. Throws BackendError "unavailable" listing every
 * reason when an explicitly requested list has nothing that can run.
 */
export async function resolveBackend(options: ResolveOptions = {}): Promise<Dispatcher> {
  const providers = options.providers ?? PROVIDERS;
  const envList = (options.env ?? process.env)["BARBELL_BACKENDS"];

  const explicit = options.backends ?? (envList === undefined || envList.trim() === "" ? undefined : parseBackendList(envList));
  const reasons: string[] = [];
  const members: PartialBackend[] = [];
  const candidates: BackendProvider[] = [];
  if (explicit !== undefined) {
    for (const name of explicit) {
      const provider = providers.find((p) => p.name === name);
      if (provider !== undefined) {
        candidates.push(provider);
      } else if (name !== "js") {
        reasons.push(`${name}: not built into this barbell`);
      }
    }
  } else {
    const ranked = await Promise.all(
      providers.filter((p) => p.basePriority >= 0).map(async (p) => ({ p, probe: await probeOnce(p) })),
    );
    ranked.sort((a, b) => b.p.basePriority - a.p.basePriority || score(b.probe) - score(a.probe));
    candidates.push(...ranked.map((r) => r.p));
  }
  const skip = (provider: BackendProvider, reason: string): void => {
    reasons.push(`${provider.name}: ${reason}`);
    if (!told.has(provider)) {
      told.add(provider);
      options.onUnavailable?.(provider.name, reason);
    }
  };
  for (const provider of candidates) {
    const probe = await probeOnce(provider);
    if (!probe.available) {
      skip(provider, probe.reason);
      continue;
    }
    try {
      members.push(await createOnce(provider, options));
    } catch (e) {
      skip(provider, `failed to start: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  const jsAllowed = explicit === undefined || explicit.includes("js");
  if (explicit !== undefined && members.length === 0 && !jsAllowed) {
    throw new BackendError("unavailable", `[backend] none of ${explicit.join(", ")} can run here: ${reasons.join("; ")}`);
  }
  const env = options.env ?? process.env;
  const tune = (options.autotune ?? env["BARBELL_AUTOTUNE"] !== "0") && members.length > 0;
  const variants: PartialBackend[] = [...(options.variants ?? [])];
  if (tune && options.threads === undefined && options.variants === undefined) {
    for (const member of members) {
      const provider = providers.find((p) => p.name === member.name);
      for (const threads of threadCandidates(member.info.threads)) {
        if (provider !== undefined) {
          try {
            variants.push(await createOnce(provider, { threads }));
          } catch {
            // A variant that cannot start is simply not a candidate.
          }
        }
      }
    }
  }
  const dispatcher = createDispatcher(members, createJsBackend(), {
    strict: options.strict === true || !jsAllowed,
    ...(options.onFallback === undefined ? {} : { onFallback: options.onFallback }),
  });
  return tune ? decorate(dispatcher, autotune(options.tuner ?? sharedTuner(members), variants)) : dispatcher;
}

function score(probe: Probe): number {
  return probe.available ? probe.score : -1;
}

/** Disposes every backend instance this process created (thread pools, WASM instances) and forgets them. */
export async function disposeBackends(): Promise<void> {
  const all = [...creations.values()];
  creations.clear();
  for (const p of all) {
    try {
      (await p).dispose();
    } catch {
      // A creation that failed has nothing to dispose.
    }
  }
}

/** Thread counts worth trying besides the default: 1 and the default, never more than the CPUs. */
function threadCandidates(defaultThreads: number): number[] {
  const most = Math.max(1, os.availableParallelism());
  return [...new Set([1, Math.min(defaultThreads, most), most])].filter((t) => t !== defaultThreads);
}

const tuners = new Map<string, Autotuner>();
/** One tuner per set of backend builds: a rebuilt addon (its `info.detail`) invalidates the cache. */
function sharedTuner(members: readonly PartialBackend[]): Autotuner {
  const fingerprint = machineFingerprint(members.map((m) => `${m.name}:${m.info.detail ?? ""}`));
  let t = tuners.get(fingerprint);
  if (t === undefined) {
    t = new Autotuner({ fingerprint });
    tuners.set(fingerprint, t);
  }
  return t;
}
