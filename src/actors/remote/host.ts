/**
 * The parent side of an actor that runs in a worker thread or a child process. The cell (mailbox,
 * supervision) stays here; this instance forwards one handler call at a time as frames and turns every
 * way the host can fail into a typed ActorError: a crash or exit rejects whatever is in flight with
 * `crashed`, a malformed frame kills the host and rejects with `protocol`.
 */
import { pathToFileURL } from "node:url";
import type { Clock } from "../clock.js";
import { ActorError, describeError, type RemoteErrorInfo } from "../errors.js";
import type { Instance, InstanceEvents } from "../instance.js";
import { DEFAULT_START_TIMEOUT_MS } from "../limits.js";
import type { ActorContext, ActorDefinition, DeliveryMode, Isolation, MessageBase, ProtocolCodec, Termination } from "../protocol.js";
import { openChannel, type Channel } from "./channel.js";
import { decodeFrame, encodeFrame, type Frame } from "./frames.js";

type RemoteIsolation = Exclude<Isolation, { kind: "in-process" }>;

interface Pending {
  readonly type: string;
  readonly mode: DeliveryMode | "start" | "hook";
  resolve(value: unknown): void;
  reject(error: ActorError): void;
}

function remoteFailure(code: "failed" | "start-failed", path: string, info: RemoteErrorInfo): ActorError {
  return new ActorError(code, `[actor] ${path}: ${info.name}: ${info.message}`, { remote: info });
}

/** The parent side of a stream produced in the host: items arrive as frames and are acknowledged as read. */
class RemoteSource implements AsyncIterator<unknown> {
  private items: unknown[] = [];
  private ended = false;
  private failure: ActorError | undefined;
  private wake: (() => void) | undefined;

  constructor(
    private readonly id: number,
    private readonly send: (frame: Frame) => void,
    private readonly forget: (id: number) => void,
  ) {}

  push(item: unknown): void {
    this.items.push(item);
    this.wake?.();
  }

  end(failure?: ActorError): void {
    this.ended = true;
    this.failure ??= failure;
    this.wake?.();
  }

  async next(): Promise<IteratorResult<unknown>> {
    for (;;) {
      if (this.items.length > 0) {
        this.send({ kind: "ack", id: this.id });
        return { done: false, value: this.items.shift() };
      }
      if (this.failure) {
        throw this.failure;
      }
      if (this.ended) {
        return { done: true, value: undefined };
      }
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
  }

  async return(): Promise<IteratorResult<unknown>> {
    if (!this.ended) {
      this.ended = true;
      this.send({ kind: "cancel", id: this.id });
      this.forget(this.id);
    }
    return { done: true, value: undefined };
  }
}

export class RemoteInstance<M extends MessageBase> implements Instance<M> {
  private channel: Channel | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly sources = new Map<number, RemoteSource>();
  private hook: Pending | undefined;
  private clock: Clock | undefined;

  constructor(
    private readonly protocol: ProtocolCodec<M>,
    private readonly isolation: RemoteIsolation,
    private readonly events: InstanceEvents<M>,
    private readonly path: string,
  ) {}

  get alive(): boolean {
    return this.channel !== undefined;
  }

  /** Process id of a child-process host (undefined for a worker or when none runs). */
  get pid(): number | undefined {
    return this.channel?.pid;
  }

  private send(frame: Frame): void {
    this.channel?.send(encodeFrame(frame));
  }

  private open(): void {
    const module = this.isolation.module;
    const href = module instanceof URL ? module.href : module.startsWith("file:") ? module : pathToFileURL(module).href;
    const channel = openChannel(
      { kind: this.isolation.kind, module: href, exportName: this.isolation.export ?? "default", execArgv: this.isolation.execArgv },
      {
        frame: (data) => {
          if (this.channel === channel) {
            this.receive(data);
          }
        },
        exited: (description) => {
          if (this.channel === channel) {
            this.lost(new ActorError("crashed", `[actor] ${this.path}: ${description}`));
          }
        },
      },
    );
    this.channel = channel;
  }

  /** The host is gone or unusable: reject everything in flight, end streams, tell the cell. */
  private lost(error: ActorError): void {
    const channel = this.channel;
    this.channel = undefined;
    void channel?.close();
    const hadCalls = this.pending.size > 0 || this.hook !== undefined;
    for (const call of this.pending.values()) {
      call.reject(error);
    }
    this.pending.clear();
    this.hook?.reject(error);
    this.hook = undefined;
    for (const source of this.sources.values()) {
      source.end(error);
    }
    this.sources.clear();
    if (!hadCalls) {
      this.events.crashed(error);
    }
  }

  private receive(data: unknown): void {
    const decoded = decodeFrame(data);
    if (!decoded.ok) {
      this.lost(new ActorError("protocol", `[actor] ${this.path}: bad frame from its host: ${decoded.error.message}`));
      return;
    }
    const frame = decoded.value;
    const bad = (what: string): void =>
      this.lost(new ActorError("protocol", `[actor] ${this.path}: unexpected '${frame.kind}' frame (${what})`));
    switch (frame.kind) {
      case "started":
      case "start-failed":
      case "hook-done": {
        const hook = this.hook;
        if (!hook || (hook.mode === "start") !== (frame.kind !== "hook-done")) {
          return bad("no lifecycle call waits for it");
        }
        this.hook = undefined;
        if (frame.kind === "start-failed") {
          hook.reject(remoteFailure("start-failed", this.path, frame.error));
        } else {
          hook.resolve(undefined);
        }
        return;
      }
      case "done": {
        const call = this.pending.get(frame.id);
        if (!call) {
          return bad(`no call ${frame.id}`);
        }
        this.pending.delete(frame.id);
        if (call.mode === "ask") {
          const reply = this.protocol.decodeResult(call.type, frame.body);
          if (!reply.ok) {
            return this.lost(reply.error);
          }
          call.resolve(reply.value);
        } else if (call.mode === "stream") {
          const source = new RemoteSource(frame.id, (f) => this.send(f), (id) => this.sources.delete(id));
          this.sources.set(frame.id, source);
          call.resolve(source);
        } else {
          call.resolve(undefined);
        }
        return;
      }
      case "failed": {
        const error = remoteFailure("failed", this.path, frame.error);
        const call = this.pending.get(frame.id);
        const source = this.sources.get(frame.id);
        if (call) {
          this.pending.delete(frame.id);
          call.reject(error);
        } else if (source) {
          this.sources.delete(frame.id);
          source.end(error);
        } else if (frame.id === 0) {
          this.lost(new ActorError("protocol", `[actor] ${this.path}: its host refused a frame: ${frame.error.message}`));
        }
        return;
      }
      case "item":
      case "end": {
        const source = this.sources.get(frame.id);
        if (!source) {
          return; // a stream cancelled here; items already in flight are dropped by design
        }
        if (frame.kind === "end") {
          this.sources.delete(frame.id);
          source.end();
          return;
        }
        const item = this.protocol.decodeResult(this.typeOf(frame.id), frame.body);
        if (!item.ok) {
          return this.lost(item.error);
        }
        source.push(item.value);
        return;
      }
      case "self-tell": {
        const message = this.protocol.decodeMessage(frame.body);
        if (!message.ok) {
          return this.lost(message.error);
        }
        this.events.selfTell(message.value);
        return;
      }
      default:
        return bad("a parent-to-actor frame");
    }
  }

  private readonly streamTypes = new Map<number, string>();

  private typeOf(id: number): string {
    return this.streamTypes.get(id) ?? "";
  }

  private lifecycle(frame: Frame, start: boolean, timeoutMs: number | undefined): Promise<void> {
    if (!this.channel) {
      return Promise.reject(new ActorError("crashed", `[actor] ${this.path}: its host is not running`));
    }
    return new Promise<void>((resolve, reject) => {
      const timer =
        timeoutMs === undefined
          ? undefined
          : (this.clock?.setTimer(() => {
              this.lost(new ActorError(start ? "start-failed" : "timeout", `[actor] ${this.path}: no answer within ${timeoutMs} ms`));
            }, timeoutMs) ?? undefined);
      this.hook = {
        type: frame.kind,
        mode: start ? "start" : "hook",
        resolve: () => {
          timer?.cancel();
          resolve();
        },
        reject: (error) => {
          timer?.cancel();
          reject(error);
        },
      };
      this.send(frame);
    });
  }

  async start(ctx: ActorContext<M>, restartError: ActorError | undefined): Promise<void> {
    this.clock = ctx.clock;
    if (!this.channel) {
      this.open();
    }
    const error = restartError ? describeError(restartError) : undefined;
    await this.lifecycle(
      { kind: "start", restarts: ctx.restarts, error },
      true,
      this.isolation.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS,
    );
  }

  handle(mode: DeliveryMode, message: M): Promise<unknown> {
    if (!this.channel) {
      return Promise.reject(new ActorError("crashed", `[actor] ${this.path}: its host is not running`));
    }
    let body: Uint8Array;
    try {
      body = this.protocol.encodeMessage(message);
    } catch (error) {
      return Promise.reject(error);
    }
    const id = this.nextId++;
    if (mode === "stream") {
      this.streamTypes.set(id, message.type);
    }
    return new Promise((resolve, reject) => {
      this.pending.set(id, { type: message.type, mode, resolve, reject });
      this.send({ kind: "deliver", id, mode, body });
    });
  }

  async preRestart(error: ActorError): Promise<void> {
    await this.lifecycle({ kind: "pre-restart", error: describeError(error) }, false, undefined);
  }

  async postStop(termination: Termination): Promise<void> {
    const error = termination.kind === "failed" ? describeError(termination.error) : undefined;
    await this.lifecycle({ kind: "post-stop", error }, false, undefined);
  }

  async dispose(): Promise<void> {
    const channel = this.channel;
    this.channel = undefined;
    this.streamTypes.clear();
    await channel?.close();
  }
}

/** Creates the instance of a worker or child-process isolation (the definition must carry a protocol). */
export function createRemoteInstance<M extends MessageBase>(
  definition: ActorDefinition<M>,
  isolation: RemoteIsolation,
  events: InstanceEvents<M>,
  path: string,
): Instance<M> {
  if (!definition.protocol) {
    throw new ActorError(
      "unsupported",
      `[actor] ${path}: '${definition.name}' has no protocol codec; worker and process isolation need one`,
    );
  }
  return new RemoteInstance(definition.protocol, isolation, events, path);
}
