import { MAX_MAILBOX_CAPACITY } from "./limits.js";

/**
 * A bounded FIFO queue. `offer` refuses (returns false) when full: the caller reports the refusal, so no
 * message is ever dropped without its sender learning it.
 */
export class Mailbox<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  constructor(readonly capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 1 || capacity > MAX_MAILBOX_CAPACITY) {
      throw new RangeError(`[mailbox] capacity must be an integer in 1..${MAX_MAILBOX_CAPACITY}, got ${capacity}`);
    }
  }

  get size(): number {
    return this.items.length - this.head;
  }

  offer(item: T): boolean {
    if (this.size >= this.capacity) {
      return false;
    }
    this.items.push(item);
    return true;
  }

  take(): T | undefined {
    if (this.head >= this.items.length) {
      return undefined;
    }
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head > 64 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  /** Removes and returns everything queued, oldest first. */
  drain(): T[] {
    const rest = this.items.slice(this.head) as T[];
    this.items = [];
    this.head = 0;
    return rest;
  }
}
