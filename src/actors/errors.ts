import { BarbellError } from "../core/errors.js";

export type ActorErrorCode =
  | "mailbox-full" // the bounded mailbox refused the message; nothing was queued
  | "stopped" // the actor is stopping or stopped; the message went to the dead letters
  | "timeout" // an ask (or a stream's idle wait) ran past its deadline
  | "cancelled" // the caller cancelled an ask or a stream (AbortSignal or cancel())
  | "failed" // the handler of this message threw; the supervisor decides what happens to the actor
  | "crashed" // the worker thread or child process running the actor died
  | "escalated" // a child failed more often than its restart intensity allows, or its decider escalated
  | "linked" // a linked actor terminated with a failure
  | "start-failed" // the actor's factory (preStart) threw, or its module could not be loaded
  | "protocol" // a malformed frame or a message that does not fit the actor's protocol
  | "unsupported"; // an operation that this isolation mode does not offer

/** Where a remote failure came from: the thrown value's name, message and code, as the actor saw them. */
export interface RemoteErrorInfo {
  readonly name: string;
  readonly message: string;
  readonly code: string;
}

/** Every failure the actor runtime reports to a caller. */
export class ActorError extends BarbellError {
  constructor(
    readonly code: ActorErrorCode,
    message: string,
    options?: { cause?: unknown; remote?: RemoteErrorInfo },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ActorError";
    if (options?.remote) {
      this.remote = options.remote;
    }
  }

  /** Set when the failure happened in a worker thread or child process. */
  readonly remote?: RemoteErrorInfo;
}

/** A malformed frame or message, or a value that does not fit its protocol: ActorError `protocol`. */
export function protocolError(message: string): ActorError {
  return new ActorError("protocol", `[actor-frame] ${message}`);
}

/** The name, message and code of any thrown value (for logs, dead letters and frames). */
export function describeError(error: unknown): RemoteErrorInfo {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return { name: error.name, message: error.message, code: typeof code === "string" ? code : "" };
  }
  return { name: "Error", message: String(error), code: "" };
}
