import { BarbellError } from "../core/errors.js";

export type ServeErrorCode =
  | "bad-request" // the request does not fit the model (empty prompt, bad sampling option, too long)
  | "bad-config" // a model actor, ladder or fault plan that cannot work
  | "kernel" // a kernel failed on every backend of the chain
  | "crashed" // the model process died after the request had streamed tokens
  | "released" // ReleaseResources ended the request
  | "unavailable" // the model could not be loaded, or the actor is gone
  | "timeout" // no output within the configured idle time
  | "overloaded" // `parallel + queue` requests are in flight: refused at once (HTTP 429 with Retry-After)
  | "failed"; // any other failure while running the request

/** Failures of the serving layer: every request ends with its output or one of these codes. */
export class ServeError extends BarbellError {
  constructor(
    readonly code: ServeErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ServeError";
  }
}

/** Thrown by the fault-injection decorator (src/serve/faults.ts) in place of a kernel's work. */
export class InjectedFault extends BarbellError {
  readonly code = "injected";
  constructor(
    readonly kernel: string,
    readonly call: number,
  ) {
    super(`[faults] injected failure of ${kernel} on call ${call}`);
    this.name = "InjectedFault";
  }
}

/** A kernel threw: which kernel, on which chain. The model host retries the request on the next backend. */
export class KernelFailure extends BarbellError {
  readonly code = "kernel";
  constructor(
    readonly kernel: string,
    readonly backend: string,
    cause: unknown,
  ) {
    super(`[serve] kernel ${kernel} failed on ${backend}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = "KernelFailure";
  }
}
