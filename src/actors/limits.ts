/**
 * Named limits of the actor runtime. Every bound here exists so that a full queue or a hostile peer is
 * reported as a typed error instead of growing memory without end.
 */

/** Default mailbox capacity — bounds the messages one actor holds; a full mailbox refuses (never drops). */
export const DEFAULT_MAILBOX_CAPACITY = 1024;

/** Largest mailbox capacity a spawn may ask for — one actor cannot reserve unbounded memory. */
export const MAX_MAILBOX_CAPACITY = 1 << 20;

/** Dead-letter records kept (a ring); older records are evicted but always counted in `total`. */
export const DEAD_LETTER_CAPACITY = 1024;

/** Largest actor frame across a thread or process boundary (256 MiB) — bounds what a peer makes us hold. */
export const MAX_ACTOR_FRAME_BYTES = 256 * 1024 * 1024;

/** Largest head of an actor frame (its kind and fields, before the body) — bounds what the head decoder allocates. */
export const MAX_ACTOR_FRAME_HEAD_BYTES = 64 * 1024;

/**
 * Longest name, message or code of an error that crosses a boundary (longer ones are cut when sent) — bounds
 * the head, and stays below 16384, the length from which @bare-ts/lib 0.4's generated string writer errs.
 */
export const MAX_ERROR_STRING_BYTES = 8 * 1024;

/** Longest string field in an actor frame (16 MiB) — strings as memory bombs. */
export const MAX_FIELD_STRING_BYTES = 16 * 1024 * 1024;

/** Longest list field in an actor frame — bounds the array a decoder allocates. */
export const MAX_FIELD_LIST_LENGTH = 1 << 24;

/** Stream items a remote actor may send before the consumer acknowledges them — flow control. */
export const STREAM_WINDOW = 64;

/** Default time to wait for a worker or child process to load its module and start the actor. */
export const DEFAULT_START_TIMEOUT_MS = 30_000;

/** Default time a stopping worker or child process gets to run postStop before it is killed. */
export const DEFAULT_STOP_TIMEOUT_MS = 5_000;
