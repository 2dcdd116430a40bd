/**
 * Fault injection for tests and drills: plans (plain data, so a parent can hand them to a model worker in a
 * child process) checked here and run by the fault-injection decorator of src/backends/decorators over a
 * dispatcher, whose op calls then fail on a chosen call — they throw {@link InjectedFault}, or kill or abort
 * the process they run in.
 */
import type { Backend } from "../backends/backend.js";
import { faultInjector, type FaultAction, type FaultRule, type FaultStats } from "../backends/decorators/faults.js";
import { asDispatcher, decorate, type Dispatcher } from "../backends/dispatch.js";
import { createRng } from "../model/sampling/index.js";
import { InjectedFault, ServeError } from "./errors.js";

export type { FaultAction, FaultStats };

/** When and how a chain's kernels fail. */
export interface FaultPlan {
  /** The chain the plan applies to, by its first backend ("wasm-simd", "js", …), or "*" for every chain. */
  readonly backend: string;
  /**
   * The kernel that fails (a name of `Kernels`, "bitnetBlock" for the fused block, "bitnetBlockBatch" for the
   * fused block of a batched decode step). Default: any kernel.
   */
  readonly kernel?: string;
  /** The first failing call of that kernel, counted from 1 per decorated chain. Default 1. */
  readonly nth?: number;
  /** How many calls fail from `nth` on; 0 means every call. Default 1. */
  readonly times?: number;
  /** Instead of `nth`/`times`: each matching call fails with this probability, from a seeded stream. */
  readonly probability?: number;
  /** Seed of the probability stream. Default 1. */
  readonly seed?: number;
  /** "throw" (default) an InjectedFault; "kill" sends SIGKILL to this process; "abort" calls process.abort(). */
  readonly action?: FaultAction;
  /** Active only in the first this-many incarnations of a model worker (0 = always). Default 0. */
  readonly incarnations?: number;
}

export interface FaultOptions {
  /** "kill" and "abort" are refused unless the caller runs in a process of its own (a model worker child). */
  readonly allowProcessFaults?: boolean;
  /** Mixed into every plan's seed, so a restarted worker draws a new stream. Default 0. */
  readonly salt?: number;
}

/** Checks a plan's fields; a ServeError "bad-config" names the first bad one. */
export function checkFaultPlan(plan: FaultPlan, options: FaultOptions = {}): void {
  const bad = (what: string): never => {
    throw new ServeError("bad-config", `[faults] ${what}`);
  };
  if (typeof plan.backend !== "string" || plan.backend.length === 0) {
    bad("a plan needs a backend name or '*'");
  }
  if (plan.nth !== undefined && !(Number.isSafeInteger(plan.nth) && plan.nth >= 1)) {
    bad(`nth must be an integer >= 1, got ${plan.nth}`);
  }
  if (plan.times !== undefined && !(Number.isSafeInteger(plan.times) && plan.times >= 0)) {
    bad(`times must be an integer >= 0, got ${plan.times}`);
  }
  if (plan.probability !== undefined && !(plan.probability >= 0 && plan.probability <= 1)) {
    bad(`probability must be in [0, 1], got ${plan.probability}`);
  }
  const action = plan.action ?? "throw";
  if (action !== "throw" && action !== "kill" && action !== "abort") {
    bad(`unknown action '${String(action)}'`);
  }
  if (action !== "throw" && options.allowProcessFaults !== true) {
    bad(`action '${action}' would end this process; it is only allowed in a model worker's child process`);
  }
}

/** Whether the plan decorates a chain that starts with `head`. */
export function planApplies(plan: FaultPlan, head: string, incarnation: number): boolean {
  const incarnations = plan.incarnations ?? 0;
  return (plan.backend === "*" || plan.backend === head) && (incarnations === 0 || incarnation < incarnations);
}

function seeded(seed: number): () => number {
  const rng = createRng(seed);
  return () => rng.next();
}

/**
 * Decorates `backend` so that its op calls (kernels and fused steps) follow `plans`: the fault-injection
 * decorator of src/backends/decorators over the backend's dispatcher. Memory is the backend's own: only
 * compute fails. The decorator counts per plan; `stats()` sums them.
 */
export function withFaults(backend: Backend, plans: readonly FaultPlan[], options: FaultOptions = {}): Dispatcher & { stats(): FaultStats } {
  for (const plan of plans) {
    checkFaultPlan(plan, options);
  }
  const rules: FaultRule[] = plans.map((plan) => ({
    ...(plan.kernel === undefined ? {} : { op: plan.kernel }),
    ...(plan.nth === undefined ? {} : { nth: plan.nth }),
    ...(plan.times === undefined ? {} : { times: plan.times }),
    ...(plan.probability === undefined ? {} : { probability: plan.probability, random: seeded((plan.seed ?? 1) + 7919 * (options.salt ?? 0)) }),
    ...(plan.action === undefined ? {} : { action: plan.action }),
  }));
  const injector = faultInjector(rules, (op, call) => new InjectedFault(op, call));
  return Object.assign(decorate(asDispatcher(backend), injector.decorator), { stats: () => injector.stats() });
}
