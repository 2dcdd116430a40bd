/**
 * One request's items as they arrive from NATS, read by the HTTP layer as a ReplyStream (gateway.ts). The
 * gateway may move a request that has streamed nothing to another worker ({@link RemoteStream.retarget}): it
 * then gets a new request id, so late items of the old worker (one that was only paused) are ignored.
 */
import type { ReplyStream } from "../../actors/index.js";
import type { ServeErrorCode } from "../errors.js";
import type { ModelOutput } from "../protocol.js";

/** Longest wait for each item of a request. */
export const ITEM_IDLE_TIMEOUT_MS = 120_000;
/** Most items that may wait unread in one request's stream (a flooding sender ends it). */
export const MAX_PENDING_ITEMS = 8192;

export class RemoteStream implements ReplyStream<ModelOutput> {
  readonly #items: ModelOutput[] = [];
  #wake: (() => void) | undefined;
  #ended = false;
  #next = 0;
  /** Token (or tensor) items received so far. */
  streamed = 0;
  /** Times this request was sent again to another worker after its worker was lost. */
  resent = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    /** The request's id on the wire (`<gateway>-<n>`), and the worker that runs it now. */
    public id: string,
    public worker: string,
    readonly model: string,
    private readonly onEnd: (stream: RemoteStream, cancelled: boolean) => void,
  ) {
    this.#arm();
  }

  get ended(): boolean {
    return this.#ended;
  }

  #arm(): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.fail("timeout", `model '${this.model}' produced no output in time`), ITEM_IDLE_TIMEOUT_MS);
    this.#timer.unref();
  }

  /** Moves a request that has streamed nothing to another worker under a new id (items count from 0 again). */
  retarget(id: string, worker: string): void {
    this.id = id;
    this.worker = worker;
    this.#next = 0;
    this.resent++;
    this.#arm();
  }

  /** An item frame for this request; false when it breaks the order (the stream then ends `failed`). */
  push(seq: number, item: ModelOutput): boolean {
    if (this.#ended) {
      return true;
    }
    if (seq !== this.#next || this.#items.length >= MAX_PENDING_ITEMS) {
      this.fail("failed", `model '${this.model}' sent its output out of order`);
      return false;
    }
    this.#next++;
    if (item.kind === "token" || item.kind === "tensor") {
      this.streamed++;
    }
    this.#items.push(item);
    if (item.kind === "done" || item.kind === "error") {
      this.#finish(false);
    } else {
      this.#arm();
    }
    this.#wake?.();
    return true;
  }

  /** Ends the request with an error item; `unavailable` becomes `crashed` once something was streamed. */
  fail(code: ServeErrorCode, message: string): void {
    if (this.#ended) {
      return;
    }
    const shown: ServeErrorCode = code === "unavailable" && this.streamed > 0 ? "crashed" : code;
    this.#items.push({ kind: "error", code: shown, message, model: this.model, completionTokens: this.streamed, failures: [] });
    this.#finish(false);
    this.#wake?.();
  }

  #finish(cancelled: boolean): void {
    this.#ended = true;
    clearTimeout(this.#timer);
    this.onEnd(this, cancelled);
  }

  cancel(): void {
    if (!this.#ended) {
      this.#finish(true);
    }
    this.#items.length = 0;
    this.#wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<ModelOutput> {
    try {
      for (;;) {
        const item = this.#items.shift();
        if (item !== undefined) {
          yield item;
          if (item.kind === "done" || item.kind === "error") {
            return;
          }
          continue;
        }
        if (this.#ended) {
          return;
        }
        await new Promise<void>((resolve) => (this.#wake = resolve));
        this.#wake = undefined;
      }
    } finally {
      this.cancel();
    }
  }
}
