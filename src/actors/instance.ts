import { ActorError } from "./errors.js";
import type { ActorContext, ActorDefinition, Behavior, DeliveryMode, MessageBase, Termination } from "./protocol.js";

/**
 * Where one actor's handlers run: this thread, a worker thread or a child process. The cell (mailbox,
 * supervision, lifecycle) is always in the parent; an instance only runs incarnations and handlers.
 */
export interface Instance<M extends MessageBase> {
  /** False once the host died (a crashed host cannot run preRestart or postStop). */
  readonly alive: boolean;
  /** Creates an incarnation (`create`, then `postRestart(error)` when restarting); a dead host is replaced first. */
  start(ctx: ActorContext<M>, restartError: ActorError | undefined): Promise<void>;
  /** Runs one handler: tell → undefined, ask → the reply, stream → an iterator of items. */
  handle(mode: DeliveryMode, message: M): Promise<unknown>;
  preRestart(error: ActorError): Promise<void>;
  postStop(termination: Termination): Promise<void>;
  /** Frees the host (terminates the worker, kills the child). Idempotent. */
  dispose(): Promise<void>;
}

/** Callbacks from an instance to its cell. */
export interface InstanceEvents<M extends MessageBase> {
  /** The host died outside of a handler call (calls in flight reject with `crashed` themselves). */
  crashed(error: ActorError): void;
  /** The actor told itself a message from inside its host. */
  selfTell(message: M): void;
}

/** Runs handlers in this thread. */
export class LocalInstance<M extends MessageBase> implements Instance<M> {
  private behavior: Behavior<M> | undefined;
  private ctx: ActorContext<M> | undefined;
  readonly alive = true;

  constructor(private readonly definition: ActorDefinition<M>) {}

  async start(ctx: ActorContext<M>, restartError: ActorError | undefined): Promise<void> {
    this.ctx = ctx;
    this.behavior = undefined;
    try {
      this.behavior = await this.definition.create(ctx);
      if (restartError) {
        await this.behavior.postRestart?.(restartError);
      }
    } catch (error) {
      throw new ActorError("start-failed", `[actor] ${ctx.path}: create threw: ${String(error)}`, { cause: error });
    }
  }

  async handle(mode: DeliveryMode, message: M): Promise<unknown> {
    const behavior = this.behavior;
    const ctx = this.ctx;
    if (!behavior || !ctx) {
      throw new ActorError("failed", "[actor] no incarnation to handle the message");
    }
    return runHandler(behavior, ctx, mode, message);
  }

  async preRestart(error: ActorError): Promise<void> {
    await this.behavior?.preRestart?.(error);
  }

  async postStop(termination: Termination): Promise<void> {
    await this.behavior?.postStop?.(termination);
  }

  async dispose(): Promise<void> {
    this.behavior = undefined;
  }
}

/** Calls the handler of `message` and shapes its result for `mode` (shared by every host). */
export async function runHandler<M extends MessageBase>(
  behavior: Behavior<M>,
  ctx: ActorContext<M>,
  mode: DeliveryMode,
  message: M,
): Promise<unknown> {
  const table: object = behavior.receive;
  const handler: unknown = Object.hasOwn(table, message.type) ? Reflect.get(table, message.type) : undefined;
  if (typeof handler !== "function") {
    throw new ActorError("protocol", `[actor] ${ctx.path} has no handler for '${message.type}'`);
  }
  let result: unknown;
  try {
    result = await (handler as (m: M, c: ActorContext<M>) => unknown)(message, ctx);
  } catch (error) {
    if (error instanceof ActorError && (error.code === "failed" || error.code === "crashed")) {
      throw error;
    }
    throw new ActorError("failed", `[actor] ${ctx.path}: handler of '${message.type}' threw: ${String(error)}`, {
      cause: error,
    });
  }
  if (mode !== "stream") {
    return mode === "ask" ? result : undefined;
  }
  const iterable = result as AsyncIterable<unknown> | undefined;
  if (!iterable || typeof iterable[Symbol.asyncIterator] !== "function") {
    throw new ActorError("failed", `[actor] ${ctx.path}: stream handler of '${message.type}' returned no AsyncIterable`);
  }
  return iterable[Symbol.asyncIterator]();
}
