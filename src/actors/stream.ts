import type { Clock, Timer } from "./clock.js";
import { ActorError } from "./errors.js";
import type { ReplyStream } from "./protocol.js";

/** What a stream tells the actor that produces it. */
export interface StreamOwner {
  /** The producer's iterator threw: the actor failed. Returns the error the consumer sees. */
  producerFailed(stream: ReplyStreamImpl<unknown>, error: unknown): ActorError;
  /** The stream ended in any way (done, failed, cancelled, closed). */
  ended(stream: ReplyStreamImpl<unknown>): void;
}

/**
 * The consumer's side of a streamed reply. It exists before the actor has handled the message; the
 * handler's iterator is attached later. Items are pulled on demand, so a slow consumer slows the
 * producer (backpressure); `close` (stop, restart, crash) and `cancel` end it at once, even while a read
 * is pending.
 */
export class ReplyStreamImpl<T> implements ReplyStream<T> {
  private source: AsyncIterator<T> | undefined;
  private attached: Promise<void>;
  private attach_: () => void = () => {};
  private closedWith: ActorError | undefined;
  private finished = false;
  private readonly closedPromise: Promise<never>;
  private rejectClosed: (error: ActorError) => void = () => {};
  /** Called by cancel() so the owner can skip the message if it is still queued. */
  onCancel: () => void = () => {};

  constructor(
    private readonly owner: StreamOwner,
    private readonly clock: Clock,
    private readonly idleTimeoutMs: number | undefined,
    signal: AbortSignal | undefined,
  ) {
    this.attached = new Promise((resolve) => (this.attach_ = resolve));
    this.closedPromise = new Promise<never>((_, reject) => (this.rejectClosed = reject));
    this.closedPromise.catch(() => {});
    if (signal) {
      if (signal.aborted) {
        this.cancel();
      } else {
        signal.addEventListener("abort", () => this.cancel(), { once: true });
      }
    }
  }

  get isOpen(): boolean {
    return !this.finished;
  }

  /** Whether the actor has started producing (its handler returned the iterator). */
  get isAttached(): boolean {
    return this.source !== undefined;
  }

  /** The actor's handler returned this iterator. */
  attach(source: AsyncIterator<T>): void {
    if (this.finished) {
      void source.return?.()?.catch(() => {});
      return;
    }
    this.source = source;
    this.attach_();
  }

  /** Ends the stream with `error` (stop, restart, crash): pending and later reads reject with it. */
  close(error: ActorError): void {
    if (this.finished) {
      return;
    }
    this.closedWith = error;
    this.finish();
    this.rejectClosed(error);
    void this.source?.return?.()?.catch(() => {});
  }

  cancel(): void {
    if (!this.finished) {
      this.onCancel();
      this.close(new ActorError("cancelled", "[actor] stream cancelled by its consumer"));
    }
  }

  private finish(): void {
    this.finished = true;
    this.owner.ended(this as ReplyStreamImpl<unknown>);
  }

  async next(): Promise<IteratorResult<T>> {
    if (this.closedWith) {
      throw this.closedWith;
    }
    if (this.finished) {
      return { done: true, value: undefined };
    }
    let timer: Timer | undefined;
    const deadline =
      this.idleTimeoutMs === undefined
        ? undefined
        : new Promise<never>((_, reject) => {
            timer = this.clock.setTimer(() => {
              const error = new ActorError("timeout", `[actor] no stream item within ${this.idleTimeoutMs} ms`);
              this.close(error);
              reject(error);
            }, this.idleTimeoutMs ?? 0);
          });
    deadline?.catch(() => {});
    const guards: Promise<never>[] = deadline ? [this.closedPromise, deadline] : [this.closedPromise];
    try {
      await Promise.race([this.attached, ...guards]);
      const source = this.source;
      if (!source) {
        throw this.closedWith ?? new ActorError("stopped", "[actor] stream closed");
      }
      let result: IteratorResult<T>;
      try {
        result = await Promise.race([source.next(), ...guards]);
      } catch (error) {
        if (error instanceof ActorError && error === this.closedWith) {
          throw error;
        }
        const reported = this.owner.producerFailed(this as ReplyStreamImpl<unknown>, error);
        this.close(reported);
        throw reported;
      }
      if (result.done) {
        this.finish();
        return { done: true, value: undefined };
      }
      return result;
    } finally {
      timer?.cancel();
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => this.next(),
      return: async () => {
        if (!this.finished) {
          this.onCancel();
          this.close(new ActorError("cancelled", "[actor] stream left by its consumer"));
        }
        return { done: true, value: undefined };
      },
    };
  }
}
