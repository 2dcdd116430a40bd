/**
 * The fault-injection decorator: op calls fail on chosen calls, for tests and drills. A rule picks an op (or
 * any), and either a window of calls (`nth`, `times`) or a probability drawn from the caller's random stream;
 * a failing call throws the caller's error, or kills or aborts the process. Memory is never affected: only
 * compute fails. (The serving layer checks plans and makes them rules: src/serve/faults.ts.)
 */
import type { Decorator, OpName } from "../dispatch.js";

export type FaultAction = "throw" | "kill" | "abort";

export interface FaultRule {
  /** The op that fails (a kernel or fused step of the op table); absent: any op. */
  readonly op?: string;
  /** The first failing call of that op, counted from 1. Default 1. */
  readonly nth?: number;
  /** How many calls fail from `nth` on; 0 means every call. Default 1. */
  readonly times?: number;
  /** Instead of `nth`/`times`: each matching call fails when `random() < probability`. */
  readonly probability?: number;
  readonly random?: () => number;
  /** Default "throw". */
  readonly action?: FaultAction;
}

export interface FaultStats {
  /** Op calls that matched a rule. */
  readonly calls: number;
  /** Calls that failed. */
  readonly injected: number;
}

export interface FaultInjector {
  readonly decorator: Decorator;
  stats(): FaultStats;
}

/** Rules over op calls; `error(op, call)` is what a "throw" rule throws on the `call`-th matching call. */
export function faultInjector(rules: readonly FaultRule[], error: (op: OpName, call: number) => Error): FaultInjector {
  const armed = rules.map((rule) => ({ rule, calls: 0 }));
  let calls = 0;
  let injected = 0;
  const strike = (op: OpName): void => {
    for (const a of armed) {
      if (a.rule.op !== undefined && a.rule.op !== op) {
        continue;
      }
      a.calls++;
      calls++;
      let fail: boolean;
      if (a.rule.probability !== undefined) {
        fail = (a.rule.random?.() ?? Math.random()) < a.rule.probability;
      } else {
        const nth = a.rule.nth ?? 1;
        const times = a.rule.times ?? 1;
        fail = a.calls >= nth && (times === 0 || a.calls < nth + times);
      }
      if (!fail) {
        continue;
      }
      injected++;
      const action = a.rule.action ?? "throw";
      if (action === "kill") {
        process.kill(process.pid, "SIGKILL");
      } else if (action === "abort") {
        process.abort();
      }
      throw error(op, a.calls);
    }
  };
  return {
    decorator: (next) => ({
      fuses: next.fuses,
      run: (op, args) => {
        strike(op);
        next.run(op, args);
      },
    }),
    stats: () => ({ calls, injected }),
  };
}
