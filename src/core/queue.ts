/**
 * The one push queue: a producer pushes items and then ends it with a result or fails it with an error; one
 * consumer reads it as an async iterator (items in order, then the result as the `done` value, or the error
 * thrown). The consumer can cancel at once, even while a read is pending or the producer is queued behind
 * other work: `cancel()` (or `return()` on the iterator, e.g. leaving a `for await`) drops what is buffered,
 * calls the cancel hook once, settles a pending read as done, and makes later pushes no-ops.
 *
 * No back-pressure: `push` never waits (the producers, a decode loop and the model host, emit one token per
 * step, and a consumer that stops reading cancels). Reads dequeue by index, so a long stream costs O(1) per
 * item, and read slots are cleared so items are not kept alive after they are read.
 */
import { UsageError } from "./errors.js";

/** How a queue ended: with the producer's result, or with its error. */
export type QueueEnd<R> = { readonly result: R } | { readonly error: unknown };

/** Read slots gathered before the buffer is compacted (amortised O(1) per item). */
const COMPACT_AFTER = 1024;

export class PushQueue<T, R = void> implements AsyncIterable<T> {
  #items: (T | undefined)[] = [];
  #head = 0;
  #end: QueueEnd<R> | undefined;
  #cancelled = false;
  #wake: (() => void) | undefined;
  readonly #onCancel: (() => void) | undefined;

  /** `onCancel` runs once, when the consumer cancels before the producer ended the queue. */
  constructor(onCancel?: () => void) {
    this.#onCancel = onCancel;
  }

  /** Whether the consumer cancelled. */
  get isCancelled(): boolean {
    return this.#cancelled;
  }

  /** Whether no more items will be accepted (ended, failed or cancelled). */
  get isClosed(): boolean {
    return this.#end !== undefined || this.#cancelled;
  }

  /** Items pushed and not yet read. */
  get size(): number {
    return this.#items.length - this.#head;
  }

  /** Adds an item; false (and nothing kept) once the queue is closed. */
  push(item: T): boolean {
    if (this.isClosed) {
      return false;
    }
    this.#items.push(item);
    this.#notify();
    return true;
  }

  /** Ends the queue with a result, read as the iterator's `done` value after the buffered items. First end wins. */
  end(result: R): void {
    this.#close({ result });
  }

  /** Ends the queue with an error, thrown to the reader after the buffered items. First end wins. */
  fail(error: unknown): void {
    this.#close({ error });
  }

  /** Ends it either way (`{ result }` or `{ error }`). */
  close(end: QueueEnd<R>): void {
    this.#close(end);
  }

  /** The consumer stops reading: buffered items are dropped, the cancel hook runs (unless already ended). */
  cancel(): void {
    if (this.#cancelled) {
      return;
    }
    const ended = this.#end !== undefined;
    this.#cancelled = true;
    this.#items = [];
    this.#head = 0;
    this.#notify();
    if (!ended) {
      this.#onCancel?.();
    }
  }

  /**
   * The next item, or `done` with the result (undefined after a cancel); rejects with the producer's error.
   * One reader at a time: a second read while one is pending is a UsageError.
   */
  async next(): Promise<IteratorResult<T, R | undefined>> {
    for (;;) {
      if (this.#cancelled) {
        return { done: true, value: undefined };
      }
      if (this.#head < this.#items.length) {
        return { done: false, value: this.#take() };
      }
      const end = this.#end;
      if (end !== undefined) {
        if ("error" in end) {
          throw end.error;
        }
        return { done: true, value: end.result };
      }
      if (this.#wake !== undefined) {
        throw new UsageError("unsupported", "[queue] one reader at a time");
      }
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<T, R | undefined> {
    return {
      next: () => this.next(),
      return: () => {
        this.cancel();
        return Promise.resolve({ done: true, value: undefined });
      },
    };
  }

  /**
   * The items as an async generator that returns the result (for `yield*`); leaving it early cancels the
   * queue, and a cancel from elsewhere ends it with a UsageError, since there is no result to return.
   */
  async *drain(): AsyncGenerator<T, R> {
    try {
      for (;;) {
        const step = await this.next();
        if (step.done !== true) {
          yield step.value;
          continue;
        }
        if (this.#cancelled) {
          throw new UsageError("disposed", "[queue] cancelled before it ended");
        }
        return step.value as R;
      }
    } finally {
      if (this.#end === undefined) {
        this.cancel(); // the reader left before the end
      }
    }
  }

  #take(): T {
    const item = this.#items[this.#head] as T;
    this.#items[this.#head] = undefined;
    this.#head++;
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head >= COMPACT_AFTER && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  #close(end: QueueEnd<R>): void {
    if (this.isClosed) {
      return;
    }
    this.#end = end;
    this.#notify();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}
