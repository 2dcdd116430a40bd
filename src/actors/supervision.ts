/**
 * Supervision as in Erlang/OTP and Akka: a parent decides, per failure, whether a failed child resumes,
 * restarts, stops or escalates; restarts are limited by an intensity (at most `maxRestarts` in `withinMs`)
 * and delayed by an exponential backoff with jitter.
 */
import type { ActorError } from "./errors.js";

/** What a supervisor does with a failed child. */
export type Directive =
  | "resume" // keep the incarnation and its state; go on with the next message
  | "restart" // discard the incarnation, create a fresh one (queued messages are kept)
  | "stop" // stop the child for good (queued messages become dead letters)
  | "escalate"; // fail the supervisor itself with the child's error

export interface BackoffOptions {
  /** Delay of the first restart in a window. Default 0 (immediate). */
  readonly minMs: number;
  /** Largest delay. */
  readonly maxMs: number;
  /** Growth per consecutive restart. Default 2. */
  readonly factor?: number;
  /** Random extra delay as a fraction of the delay (0.2 = up to +20%). Default 0. */
  readonly jitter?: number;
}

export interface SupervisionOptions {
  /** `one-for-one`: only the failed child is restarted or stopped. `one-for-all`: every child is. */
  readonly strategy?: "one-for-one" | "one-for-all";
  /** Restart intensity: at most this many restarts within `withinMs`. Default 3. */
  readonly maxRestarts?: number;
  /** Default 5000 (clock milliseconds). */
  readonly withinMs?: number;
  /** Default: no delay. */
  readonly backoff?: BackoffOptions;
  /** Maps a failure to a directive. `error.code` says the kind (`failed`, `crashed`, `start-failed`, …) and `error.cause` holds what was thrown. Default: restart. */
  readonly decider?: (error: ActorError) => Directive;
  /**
   * Told of every failure of a child and what the supervisor did about it (for logs and cumulative counters
   * that outlive the children). Called after the decision; a throwing observer is ignored.
   */
  readonly observe?: (event: SupervisionEvent) => void;
}

/**
 * One failure of a child and its outcome: `restart` (after `delayMs`; `inWindow` restarts in the intensity
 * window, this one included), `resume`, `stop`, or `escalate` (the decider said so, or the restart intensity
 * was exceeded: then `error` is the `escalated` error the supervisor fails with, its cause the child's failure).
 */
export interface SupervisionEvent {
  readonly kind: "restart" | "resume" | "stop" | "escalate";
  /** The failed child's path. */
  readonly child: string;
  readonly error: ActorError;
  readonly delayMs: number;
  readonly inWindow: number;
  /** The restart intensity in force. */
  readonly maxRestarts: number;
  readonly withinMs: number;
}

export interface ResolvedSupervision {
  readonly strategy: "one-for-one" | "one-for-all";
  readonly maxRestarts: number;
  readonly withinMs: number;
  readonly backoff: Required<BackoffOptions>;
  readonly decider: (error: ActorError) => Directive;
  readonly observe: ((event: SupervisionEvent) => void) | undefined;
}

export const DEFAULT_SUPERVISION: ResolvedSupervision = {
  strategy: "one-for-one",
  maxRestarts: 3,
  withinMs: 5000,
  backoff: { minMs: 0, maxMs: 0, factor: 2, jitter: 0 },
  decider: () => "restart",
  observe: undefined,
};

export function resolveSupervision(options: SupervisionOptions | undefined): ResolvedSupervision {
  const backoff = options?.backoff;
  const resolved: ResolvedSupervision = {
    strategy: options?.strategy ?? DEFAULT_SUPERVISION.strategy,
    maxRestarts: options?.maxRestarts ?? DEFAULT_SUPERVISION.maxRestarts,
    withinMs: options?.withinMs ?? DEFAULT_SUPERVISION.withinMs,
    backoff: backoff
      ? { minMs: backoff.minMs, maxMs: backoff.maxMs, factor: backoff.factor ?? 2, jitter: backoff.jitter ?? 0 }
      : DEFAULT_SUPERVISION.backoff,
    decider: options?.decider ?? DEFAULT_SUPERVISION.decider,
    observe: options?.observe,
  };
  const b = resolved.backoff;
  if (!(resolved.maxRestarts >= 0) || !(resolved.withinMs > 0)) {
    throw new RangeError("[supervision] maxRestarts must be >= 0 and withinMs > 0");
  }
  if (!(b.minMs >= 0) || !(b.maxMs >= b.minMs) || !(b.factor >= 1) || !(b.jitter >= 0)) {
    throw new RangeError("[supervision] backoff needs 0 <= minMs <= maxMs, factor >= 1, jitter >= 0");
  }
  return resolved;
}

/**
 * Restart times within the sliding intensity window. `record` returns false when one more restart would
 * exceed the intensity (the supervisor must then stop the child and escalate).
 */
export class RestartWindow {
  private times: number[] = [];

  constructor(
    private readonly maxRestarts: number,
    private readonly withinMs: number,
  ) {}

  /** Restarts in the window ending at `now`. */
  count(now: number): number {
    this.times = this.times.filter((t) => now - t < this.withinMs);
    return this.times.length;
  }

  record(now: number): boolean {
    if (this.count(now) >= this.maxRestarts) {
      return false;
    }
    this.times.push(now);
    return true;
  }
}

/**
 * Delay before restart number `n` (1 = the first in the current window):
 * min(maxMs, minMs · factor^(n−1)) · (1 + jitter · random), with `random` in [0, 1).
 */
export function backoffDelay(backoff: Required<BackoffOptions>, n: number, random: () => number): number {
  if (backoff.maxMs === 0) {
    return 0;
  }
  const base = Math.min(backoff.maxMs, backoff.minMs * backoff.factor ** Math.max(0, n - 1));
  return base * (1 + backoff.jitter * random());
}
