/**
 * The typed surface of the actor runtime: messages, replies, streams, behaviours, references.
 *
 * A protocol is a **discriminated union** on `type`. A variant that expects a reply carries the phantom
 * marker {@link Replies}, one that answers with a stream of items carries {@link Streams}; the markers exist
 * only in types. From them the compiler derives which messages `tell`, `ask` and `stream` accept, what each
 * returns, and the exact handler table an actor must provide:
 *
 * ```ts
 * type Counter =
 *   | { type: "add"; by: number }                       // tell only
 *   | ({ type: "get" } & Replies<number>)                // ask → Promise<number>
 *   | ({ type: "countTo"; n: number } & Streams<number>); // stream → ReplyStream<number>
 * ```
 *
 * Protocols that cross a thread or process boundary are declared with `protocol()` (schema.ts) instead,
 * which gives the same union type plus a BARE codec for every variant, reply and item.
 */
import type { Result } from "../core/result.js";
import type { Clock } from "./clock.js";
import type { ActorError } from "./errors.js";
import type { SupervisionOptions } from "./supervision.js";

declare const REPLY: unique symbol;
declare const STREAM: unique symbol;

/** Phantom marker: this message is asked and answered with one `R`. Never present at runtime. */
export interface Replies<R> {
  readonly [REPLY]?: R;
}

/** Phantom marker: this message is answered with a stream of `T` items. Never present at runtime. */
export interface Streams<T> {
  readonly [STREAM]?: T;
}

/** Every message is an object with a string `type` discriminant. */
export interface MessageBase {
  readonly type: string;
}

/** How a message expects to be answered. */
export type DeliveryMode = "tell" | "ask" | "stream";

/**
 * The codec of a protocol: what the runtime uses to move messages, replies and items across a boundary.
 * `protocol()` (schema.ts) builds one from a declaration.
 */
export interface ProtocolCodec<M extends MessageBase> {
  /** Variant names in wire order. */
  readonly variants: readonly string[];
  /** Delivery mode of a variant, or undefined for an unknown type. */
  modeOf(type: string): DeliveryMode | undefined;
  /** Throws ActorError `protocol` when the message does not fit its variant's schema. */
  encodeMessage(message: M): Uint8Array;
  decodeMessage(bytes: Uint8Array): Result<M, ActorError>;
  /** Encodes the reply (ask) or an item (stream) of variant `type`. */
  encodeResult(type: string, value: unknown): Uint8Array;
  decodeResult(type: string, bytes: Uint8Array): Result<unknown, ActorError>;
}

/** The variants of `M` that expect one reply. */
export type AskMessage<M> = M extends unknown ? (typeof REPLY extends keyof M ? M : never) : never;
/** The variants of `M` answered with a stream. */
export type StreamMessage<M> = M extends unknown ? (typeof STREAM extends keyof M ? M : never) : never;
/** The variants of `M` that expect nothing back. */
export type TellMessage<M> = M extends unknown
  ? typeof REPLY extends keyof M
    ? never
    : typeof STREAM extends keyof M
      ? never
      : M
  : never;

/** The reply type of an ask variant. */
export type ReplyOf<V> = V extends { readonly [REPLY]?: infer R } ? R : never;
/** The item type of a stream variant. */
export type ItemOf<V> = V extends { readonly [STREAM]?: infer T } ? T : never;
/** The variant of `M` whose `type` is `K`. */
export type Variant<M, K> = Extract<M, { readonly type: K }>;

/** What the handler of variant `V` must return: the reply, an async iterable of items, or nothing. */
export type HandlerResult<V> = typeof REPLY extends keyof V
  ? ReplyOf<V> | Promise<ReplyOf<V>>
  : typeof STREAM extends keyof V
    ? AsyncIterable<ItemOf<V>> | Promise<AsyncIterable<ItemOf<V>>>
    : void | Promise<void>;

/**
 * One handler per variant, checked for completeness by the compiler. Handlers run one message at a time:
 * the next message starts when the previous handler's promise settles. A stream handler returns its
 * iterable; the items are then pulled as the consumer reads them while the actor goes on with later
 * messages (so an actor stays responsive to status queries while it streams).
 */
export type Handlers<M extends MessageBase> = {
  readonly [K in M["type"]]: (message: Variant<M, K>, ctx: ActorContext<M>) => HandlerResult<Variant<M, K>>;
};

/** Why an actor terminated. */
export type Termination =
  | { readonly kind: "stopped" } // stop() or a parent stopping
  | { readonly kind: "failed"; readonly error: ActorError }; // stopped by supervision after a failure

/**
 * The live behaviour of one actor incarnation, returned by the definition's `create` (which is its
 * preStart). A restart throws the incarnation away and calls `create` again.
 */
export interface Behavior<M extends MessageBase> {
  readonly receive: Handlers<M>;
  /** After the actor stopped for good (children already stopped). Errors are ignored. Default: nothing. */
  postStop?(termination: Termination): void | Promise<void>;
  /** On the failing incarnation, before it is discarded for a restart. Default: nothing. */
  preRestart?(error: ActorError): void | Promise<void>;
  /** On the new incarnation, after `create`, when this start is a restart. Default: nothing. */
  postRestart?(error: ActorError): void | Promise<void>;
}

/** What an actor sees of itself and the runtime. */
export interface ActorContext<M extends MessageBase> {
  readonly self: ActorRef<M>;
  /** The actor's path, e.g. `/user/model/worker-1`. */
  readonly path: string;
  /** How many times this actor has been restarted. */
  readonly restarts: number;
  readonly clock: Clock;
  /**
   * Spawns a child supervised by this actor (with the definition's `supervision`). In a worker thread or
   * child process this throws ActorError `unsupported`.
   */
  spawn<C extends MessageBase>(definition: ActorDefinition<C>, options?: SpawnOptions): ActorRef<C>;
  /** Tells `message(termination)` to this actor when `target` terminates. Returns the unwatch function. */
  watch<T extends MessageBase>(target: ActorRef<T>, message: (termination: Termination) => TellMessage<M>): () => void;
  /** Links this actor with `target`: when either terminates with a failure, the other fails with `linked`. */
  link<T extends MessageBase>(target: ActorRef<T>): void;
}

/** An actor's code: a name, a factory and its optional codec, supervision and mailbox settings. */
export interface ActorDefinition<M extends MessageBase> {
  /** Default name of spawned instances (a spawn may override it). */
  readonly name: string;
  /** Creates a fresh incarnation (preStart). May be async; a throw is a `start-failed` failure. */
  readonly create: (ctx: ActorContext<M>) => Behavior<M> | Promise<Behavior<M>>;
  /** Required for worker and child-process isolation: the codec of every message, reply and item. */
  readonly protocol?: ProtocolCodec<M>;
  /** How this actor supervises its children. Default: {@link DEFAULT_SUPERVISION}. */
  readonly supervision?: SupervisionOptions;
  /** Mailbox capacity. Default: DEFAULT_MAILBOX_CAPACITY. */
  readonly mailboxCapacity?: number;
}

/** Declares an actor definition (an identity function that fixes `M`). */
export function defineActor<M extends MessageBase>(definition: ActorDefinition<M>): ActorDefinition<M> {
  return definition;
}

/** Where an actor's handlers run. Worker and child modes need the definition's `protocol`. */
export type Isolation =
  | { readonly kind: "in-process" }
  | {
      readonly kind: "worker" | "process";
      /** URL (or file path) of the module that exports the definition; see `actorModule()`. */
      readonly module: string | URL;
      /** The export that holds the definition. Default: `"default"`. */
      readonly export?: string;
      /** Node flags for the worker or child. Default: none, plus the tsx loader when the module is TypeScript. */
      readonly execArgv?: readonly string[];
      /** Time to load the module and run `create`. Default: DEFAULT_START_TIMEOUT_MS. */
      readonly startTimeoutMs?: number;
    };

export interface SpawnOptions {
  /** Unique among siblings. Default: the definition's name, suffixed with a number if taken. */
  readonly name?: string;
  /** Default: in-process. */
  readonly isolation?: Isolation;
  /** Overrides the definition's mailbox capacity. */
  readonly mailboxCapacity?: number;
}

export interface AskOptions {
  /** Rejects with ActorError `timeout` after this many clock milliseconds. Default: no timeout. */
  readonly timeoutMs?: number;
  /** Rejects with ActorError `cancelled` when aborted; a still-queued message is then skipped. */
  readonly signal?: AbortSignal;
}

export interface StreamOptions {
  /** Longest wait for the next item (the first included), in clock milliseconds. Default: none. */
  readonly idleTimeoutMs?: number;
  /** Cancels the stream (its consumer sees ActorError `cancelled`; the producer's iterator is returned). */
  readonly signal?: AbortSignal;
}

export interface StopOptions {
  /** `drain`: refuse new messages, finish the queued ones and open streams, then stop. `reject` (default): queued messages go to the dead letters and their asks reject with `stopped`. */
  readonly mode?: "drain" | "reject";
  /** With `drain`: after this many clock milliseconds, reject whatever is left. Default: no limit. */
  readonly timeoutMs?: number;
}

/** A cancellable async stream of replies. Breaking out of `for await` cancels it too. */
export interface ReplyStream<T> extends AsyncIterable<T> {
  /** Ends the stream: the producer's iterator is returned and pending reads reject with `cancelled`. */
  cancel(): void;
}

/** Status of an actor as its reference sees it. */
export type ActorStatus = "starting" | "running" | "suspended" | "restarting" | "stopping" | "stopped";

/**
 * A typed handle to an actor, the same for every isolation mode. Sending never throws: `tell` and `stream`
 * return a Result, `ask` rejects with an ActorError.
 */
export interface ActorRef<M extends MessageBase> {
  readonly path: string;
  readonly status: ActorStatus;
  /** Messages queued and not yet started. */
  readonly queued: number;
  /** Restarts so far. */
  readonly restarts: number;
  /** Queues a message. Refusals: `mailbox-full`, `stopped` (the message is then a dead letter). */
  tell(message: TellMessage<M>): Result<void, ActorError>;
  /** Queues a message and waits for its reply. */
  ask<V extends AskMessage<M>>(message: V, options?: AskOptions): Promise<ReplyOf<Variant<M, V["type"]>>>;
  /** Queues a message whose reply is a stream. Refusals as for `tell`. */
  stream<V extends StreamMessage<M>>(
    message: V,
    options?: StreamOptions,
  ): Result<ReplyStream<ItemOf<Variant<M, V["type"]>>>, ActorError>;
  /** Stops the actor (and its children first). Resolves after postStop. Idempotent. */
  stop(options?: StopOptions): Promise<void>;
  /** Resolves once the actor has terminated for good. */
  readonly terminated: Promise<Termination>;
}
