import type { Clock } from "./clock.js";
import { DEAD_LETTER_CAPACITY } from "./limits.js";

export type DeadLetterReason =
  | "stopped" // sent to an actor that had stopped or was stopping
  | "rejected-on-stop"; // queued when the actor was stopped without draining

/** One message that was not delivered. */
export interface DeadLetter {
  /** Path of the intended recipient. */
  readonly to: string;
  /** The message's `type`. */
  readonly type: string;
  readonly message: unknown;
  readonly reason: DeadLetterReason;
  /** Clock time when it was recorded. */
  readonly at: number;
}

/** The dead-letter record of one actor system: a bounded ring of recent records plus a total count. */
export class DeadLetters {
  private ring: DeadLetter[] = [];
  private listeners = new Set<(letter: DeadLetter) => void>();
  /** Every dead letter ever recorded, including those the ring has evicted. */
  total = 0;

  constructor(
    private readonly clock: Clock,
    readonly capacity = DEAD_LETTER_CAPACITY,
  ) {}

  record(to: string, message: { readonly type: string }, reason: DeadLetterReason): void {
    const letter: DeadLetter = { to, type: message.type, message, reason, at: this.clock.now() };
    this.total++;
    this.ring.push(letter);
    if (this.ring.length > this.capacity) {
      this.ring.shift();
    }
    for (const listener of this.listeners) {
      listener(letter);
    }
  }

  /** The most recent records, oldest first (at most `capacity`). */
  recent(): readonly DeadLetter[] {
    return [...this.ring];
  }

  /** Calls `listener` for each new dead letter; returns the unsubscribe function. */
  subscribe(listener: (letter: DeadLetter) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
