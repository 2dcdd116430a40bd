/**
 * A push queue read as an async iterable, whose consumer can cancel it at once (even while the producer is
 * queued behind other work): `return()` on the iterator calls `onCancel` and drops what is buffered.
 */
export class Outbox<T> implements AsyncIterable<T> {
  #items: T[] = [];
  #ended = false;
  #cancelled = false;
  #wake: (() => void) | undefined;

  constructor(private readonly onCancel: () => void) {}

  get isCancelled(): boolean {
    return this.#cancelled;
  }

  push(item: T): void {
    if (!this.#ended) {
      this.#items.push(item);
      this.#wake?.();
    }
  }

  end(): void {
    this.#ended = true;
    this.#wake?.();
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: async (): Promise<IteratorResult<T>> => {
        for (;;) {
          const item = this.#items.shift();
          if (item !== undefined) {
            return { done: false, value: item };
          }
          if (this.#ended) {
            return { done: true, value: undefined };
          }
          await new Promise<void>((resolve) => (this.#wake = resolve));
          this.#wake = undefined;
        }
      },
      return: async (): Promise<IteratorResult<T>> => {
        if (!this.#ended) {
          this.#cancelled = true;
          this.#ended = true;
          this.#items = [];
          this.onCancel();
        }
        return { done: true, value: undefined };
      },
    };
  }
}
