/**
 * The bounded queue of one model at the HTTP level: at most `parallel + queue` requests are admitted at a time
 * (decoding or waiting in the model actor); the next one is refused at once (HTTP 429 with Retry-After) rather
 * than waiting without bound. A slot is released exactly once, when its request ends for any reason.
 */
export class Admission {
  #admitted = 0;

  constructor(
    /** Requests decoded together by the model. */
    readonly parallel: number,
    /** Requests that may wait beyond `parallel`. */
    readonly queue: number,
  ) {}

  get capacity(): number {
    return this.parallel + this.queue;
  }

  /** Requests admitted and not released. */
  get admitted(): number {
    return this.#admitted;
  }

  /** A release function, or undefined when the model is full. */
  tryAcquire(): (() => void) | undefined {
    if (this.#admitted >= this.capacity) {
      return undefined;
    }
    this.#admitted++;
    let released = false;
    return () => {
      if (!released) {
        released = true;
        this.#admitted--;
      }
    };
  }
}
