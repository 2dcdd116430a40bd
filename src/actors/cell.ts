/**
 * The actor cell: mailbox, lifecycle and supervision of one actor. It lives in the parent's thread for
 * every isolation mode; its {@link Instance} runs the handlers (here, in a worker, or in a child process).
 */
import { err, ok, type Result } from "../core/result.js";
import type { Clock, Timer } from "./clock.js";
import type { DeadLetters } from "./dead-letters.js";
import { ActorError } from "./errors.js";
import { LocalInstance, type Instance, type InstanceEvents } from "./instance.js";
import { DEFAULT_MAILBOX_CAPACITY } from "./limits.js";
import { Mailbox } from "./mailbox.js";
import type {
  ActorContext,
  ActorDefinition,
  ActorRef,
  ActorStatus,
  AskOptions,
  DeliveryMode,
  MessageBase,
  ReplyStream,
  SpawnOptions,
  StopOptions,
  StreamOptions,
  TellMessage,
  Termination,
} from "./protocol.js";
import { ReplyStreamImpl, type StreamOwner } from "./stream.js";
import { backoffDelay, resolveSupervision, RestartWindow, type ResolvedSupervision, type SupervisionEvent } from "./supervision.js";

/** What every cell shares with its system. */
export interface SystemServices {
  readonly clock: Clock;
  readonly random: () => number;
  readonly deadLetters: DeadLetters;
  /** Creates the instance for a worker or child-process isolation (remote/host.ts). */
  readonly remoteInstance: <M extends MessageBase>(
    definition: ActorDefinition<M>,
    isolation: Exclude<SpawnOptions["isolation"], undefined | { kind: "in-process" }>,
    events: InstanceEvents<M>,
    path: string,
  ) => Instance<M>;
}

interface Envelope {
  readonly mode: DeliveryMode;
  readonly message: MessageBase;
  cancelled: boolean;
  settle?: { resolve(value: unknown): void; reject(error: ActorError): void } | undefined;
  stream?: ReplyStreamImpl<unknown>;
  timer?: Timer;
}

/**
 * What a supervisor, a link and the registry below use of a cell: nothing that depends on its message type,
 * so a `Cell<M>` of any protocol is one without a cast.
 */
export interface SupervisedCell {
  readonly path: string;
  readonly name: string;
  readonly isLive: boolean;
  fail(error: ActorError): void;
  resume(): void;
  scheduleRestart(delayMs: number, error: ActorError): void;
  stopWith(termination: Termination, options: StopOptions): Promise<void>;
}

const cells = new WeakMap<object, SupervisedCell>();

/** The parent side of supervision: a cell, or the system's guardian. */
export class Supervisor {
  readonly children = new Map<string, SupervisedCell>();
  private readonly windows = new Map<SupervisedCell, RestartWindow>();
  private allWindow: RestartWindow;

  constructor(
    readonly path: string,
    readonly supervision: ResolvedSupervision,
    private readonly services: SystemServices,
    /** The supervisor's own failure: an escalation (`child` is the child that escalated). */
    private readonly escalate: (error: ActorError, child: SupervisedCell) => void,
  ) {
    this.allWindow = new RestartWindow(supervision.maxRestarts, supervision.withinMs);
  }

  spawn<C extends MessageBase>(definition: ActorDefinition<C>, options: SpawnOptions = {}): ActorRef<C> {
    let name = options.name ?? definition.name;
    if (options.name !== undefined && this.children.has(name)) {
      throw new ActorError("unsupported", `[actor] ${this.path}/${name} already exists`);
    }
    for (let i = 1; this.children.has(name); i++) {
      name = `${definition.name}-${i}`;
    }
    const cell = new Cell<C>(this, `${this.path}/${name}`, name, definition, options, this.services);
    this.children.set(name, cell);
    cell.begin();
    return cell.ref;
  }

  childTerminated(child: SupervisedCell): void {
    if (this.children.get(child.name) === child) {
      this.children.delete(child.name);
    }
    this.windows.delete(child);
  }

  /** Tells the supervision's observer, if any, of a failure's outcome (an observer that throws is ignored). */
  private observed(kind: SupervisionEvent["kind"], child: SupervisedCell, error: ActorError, delayMs = 0, inWindow = 0): void {
    const { observe, maxRestarts, withinMs } = this.supervision;
    try {
      observe?.({ kind, child: child.path, error, delayMs, inWindow, maxRestarts, withinMs });
    } catch {
      // an observer is for logs and counters; it cannot change the decision
    }
  }

  /** Applies the decider, the strategy and the restart intensity to a child's failure. */
  childFailed(child: SupervisedCell, error: ActorError): void {
    let directive;
    try {
      directive = this.supervision.decider(error);
    } catch {
      directive = "escalate" as const;
    }
    const all = this.supervision.strategy === "one-for-all";
    const targets = all ? [...this.children.values()].filter((c) => c.isLive) : [child];
    if (directive === "resume") {
      this.observed("resume", child, error);
      child.resume();
    } else if (directive === "stop") {
      this.observed("stop", child, error);
      for (const target of targets) {
        void target.stopWith({ kind: "failed", error }, {});
      }
    } else if (directive === "escalate") {
      this.observed("escalate", child, error);
      this.escalate(error, child);
    } else {
      let window = all ? this.allWindow : this.windows.get(child);
      if (!window) {
        window = new RestartWindow(this.supervision.maxRestarts, this.supervision.withinMs);
        this.windows.set(child, window);
      }
      const now = this.services.clock.now();
      if (!window.record(now)) {
        const escalation = new ActorError(
          "escalated",
          `[actor] ${child.path} failed more than ${this.supervision.maxRestarts} times within ` +
            `${this.supervision.withinMs} ms: ${error.message}`,
          { cause: error },
        );
        this.observed("escalate", child, escalation, 0, window.count(now));
        for (const target of targets) {
          void target.stopWith({ kind: "failed", error: escalation }, {});
        }
        this.escalate(escalation, child);
        return;
      }
      const delay = backoffDelay(this.supervision.backoff, window.count(now), this.services.random);
      this.observed("restart", child, error, delay, window.count(now));
      for (const target of targets) {
        const reason =
          target === child
            ? error
            : new ActorError("failed", `[actor] restarted with its sibling ${child.path} (one-for-all)`, {
                cause: error,
              });
        target.scheduleRestart(delay, reason);
      }
    }
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.children.values()].map((c) => c.stopWith({ kind: "stopped" }, {})));
  }
}

/** One actor. */
export class Cell<M extends MessageBase> implements StreamOwner, SupervisedCell {
  readonly ref: ActorRef<M>;
  private state: ActorStatus = "starting";
  private readonly mailbox: Mailbox<Envelope>;
  private instance: Instance<M>;
  private readonly ctx: ActorContext<M>;
  private readonly children: Supervisor;
  private readonly streams = new Set<ReplyStreamImpl<unknown>>();
  private restarts = 0;
  private current: Envelope | undefined;
  private pumping = false;
  private restartTimer: Timer | undefined;
  private stopping: Promise<void> | undefined;
  private idleWaiters: (() => void)[] = [];
  private resolveTerminated: (t: Termination) => void = () => {};
  private readonly terminated: Promise<Termination>;

  constructor(
    private readonly parent: Supervisor,
    readonly path: string,
    readonly name: string,
    private readonly definition: ActorDefinition<M>,
    options: SpawnOptions,
    private readonly services: SystemServices,
  ) {
    this.mailbox = new Mailbox(options.mailboxCapacity ?? definition.mailboxCapacity ?? DEFAULT_MAILBOX_CAPACITY);
    this.terminated = new Promise((resolve) => (this.resolveTerminated = resolve));
    this.children = new Supervisor(path, resolveSupervision(definition.supervision), services, (error) =>
      this.fail(new ActorError("escalated", error.message, { cause: error })),
    );
    const isolation = options.isolation ?? { kind: "in-process" };
    const events: InstanceEvents<M> = {
      crashed: (error) => this.crashed(error),
      selfTell: (message) => void this.enqueue("tell", message),
    };
    this.instance =
      isolation.kind === "in-process"
        ? new LocalInstance(definition)
        : services.remoteInstance(definition, isolation, events, path);
    this.ref = this.makeRef();
    this.ctx = this.makeContext(isolation.kind === "in-process");
    cells.set(this.ref, this);
  }

  get isLive(): boolean {
    return this.state !== "stopping" && this.state !== "stopped";
  }

  begin(): void {
    void this.startIncarnation(undefined);
  }

  // ---- sending ----

  private enqueue(mode: DeliveryMode, message: MessageBase, init?: Partial<Envelope>): Result<Envelope, ActorError> {
    if (!this.isLive) {
      this.services.deadLetters.record(this.path, message, "stopped");
      return err(new ActorError("stopped", `[actor] ${this.path} is ${this.state}; '${message.type}' is a dead letter`));
    }
    const envelope: Envelope = { mode, message, cancelled: false, ...init };
    if (!this.mailbox.offer(envelope)) {
      return err(
        new ActorError("mailbox-full", `[actor] ${this.path}: mailbox full (${this.mailbox.capacity}); '${message.type}' refused`),
      );
    }
    this.schedule();
    return ok(envelope);
  }

  private ask(message: MessageBase, options: AskOptions = {}): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const sent: { envelope?: Envelope } = {};
      const finish = (): void => {
        const envelope = sent.envelope;
        if (envelope) {
          envelope.cancelled = true;
          envelope.timer?.cancel();
          envelope.settle = undefined;
        }
        options.signal?.removeEventListener("abort", onAbort);
      };
      const onAbort = (): void => {
        finish();
        reject(new ActorError("cancelled", `[actor] ask '${message.type}' to ${this.path} cancelled`));
      };
      if (options.signal?.aborted) {
        onAbort();
        return;
      }
      const settle = {
        resolve: (value: unknown) => {
          finish();
          resolve(value);
        },
        reject: (error: ActorError) => {
          finish();
          reject(error);
        },
      };
      const queued = this.enqueue("ask", message, { settle });
      if (!queued.ok) {
        reject(queued.error);
        return;
      }
      const envelope = queued.value;
      sent.envelope = envelope;
      options.signal?.addEventListener("abort", onAbort, { once: true });
      if (options.timeoutMs !== undefined) {
        envelope.timer = this.services.clock.setTimer(() => {
          finish();
          reject(new ActorError("timeout", `[actor] ask '${message.type}' to ${this.path}: no reply within ${options.timeoutMs} ms`));
        }, options.timeoutMs);
      }
    });
  }

  private stream(message: MessageBase, options: StreamOptions = {}): Result<ReplyStream<unknown>, ActorError> {
    const stream = new ReplyStreamImpl<unknown>(this, this.services.clock, options.idleTimeoutMs, undefined);
    const queued = this.enqueue("stream", message, { stream });
    if (!queued.ok) {
      return queued;
    }
    this.streams.add(stream);
    const envelope = queued.value;
    stream.onCancel = () => {
      envelope.cancelled = true;
    };
    if (options.signal) {
      if (options.signal.aborted) {
        stream.cancel();
      } else {
        options.signal.addEventListener("abort", () => stream.cancel(), { once: true });
      }
    }
    return ok(stream);
  }

  producerFailed(_stream: ReplyStreamImpl<unknown>, error: unknown): ActorError {
    const failure =
      error instanceof ActorError && (error.code === "failed" || error.code === "crashed")
        ? error
        : new ActorError("failed", `[actor] ${this.path}: stream producer threw: ${String(error)}`, { cause: error });
    this.fail(failure);
    return failure;
  }

  ended(stream: ReplyStreamImpl<unknown>): void {
    this.streams.delete(stream);
    this.notifyIdle();
  }

  // ---- processing ----

  private schedule(): void {
    if (!this.pumping && (this.state === "running" || this.state === "stopping")) {
      void this.pump();
    }
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    while ((this.state === "running" || this.state === "stopping") && !this.stopDiscarding) {
      const envelope = this.mailbox.take();
      if (!envelope) {
        break;
      }
      if (envelope.cancelled) {
        continue;
      }
      this.current = envelope;
      try {
        const result = await this.instance.handle(envelope.mode, envelope.message as M);
        if (envelope.mode === "stream") {
          envelope.stream?.attach(result as AsyncIterator<unknown>);
        } else {
          envelope.settle?.resolve(result);
        }
      } catch (error) {
        const failure =
          error instanceof ActorError
            ? error
            : new ActorError("failed", `[actor] ${this.path}: ${String(error)}`, { cause: error });
        envelope.settle?.reject(failure);
        envelope.stream?.close(failure);
        this.current = undefined;
        this.fail(failure);
        break;
      }
      this.current = undefined;
    }
    this.pumping = false;
    this.notifyIdle();
    if (this.mailbox.size > 0 && this.state === "running") {
      this.schedule(); // a failure resumed synchronously while this loop was still marked as running
    }
  }

  private stopDiscarding = false;

  private get isIdle(): boolean {
    return !this.pumping && this.current === undefined;
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) {
      wake();
    }
  }

  /** Resolves when no handler runs (and, with `drained`, nothing is queued and no stream is open). */
  private async waitUntil(condition: () => boolean): Promise<void> {
    while (!condition()) {
      await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    }
  }

  // ---- lifecycle and failure ----

  private async startIncarnation(restartError: ActorError | undefined): Promise<void> {
    try {
      await this.instance.start(this.ctx, restartError);
    } catch (error) {
      if (this.state === "starting" || this.state === "restarting") {
        this.state = "running";
        this.fail(
          error instanceof ActorError ? error : new ActorError("start-failed", `[actor] ${this.path}: ${String(error)}`),
        );
      }
      return;
    }
    if (this.state === "starting" || this.state === "restarting") {
      this.state = "running";
      this.schedule();
    }
  }

  /** A failure of this actor: suspend and let the parent decide. */
  fail(error: ActorError): void {
    if (this.state !== "running" && this.state !== "starting") {
      return;
    }
    this.state = "suspended";
    this.parent.childFailed(this, error);
  }

  /** Ends the streams whose producer ran in the incarnation that is going away (queued ones stay). */
  private closeActiveStreams(error: ActorError): void {
    for (const stream of [...this.streams]) {
      if (stream.isAttached) {
        stream.close(error);
      }
    }
  }

  private crashed(error: ActorError): void {
    this.closeActiveStreams(error);
    if (this.current === undefined) {
      this.fail(error);
    }
  }

  resume(): void {
    if (this.state === "suspended") {
      this.state = "running";
      this.schedule();
    }
  }

  scheduleRestart(delayMs: number, error: ActorError): void {
    if (!this.isLive || this.state === "restarting") {
      return;
    }
    this.state = "restarting";
    this.closeActiveStreams(error);
    if (delayMs <= 0) {
      queueMicrotask(() => void this.restart(error));
    } else {
      this.restartTimer = this.services.clock.setTimer(() => void this.restart(error), delayMs);
    }
  }

  private async restart(error: ActorError): Promise<void> {
    await this.waitUntil(() => this.isIdle);
    if (this.state !== "restarting") {
      return;
    }
    if (this.instance.alive) {
      await this.instance.preRestart(error).catch(() => {});
    }
    await this.children.stopAll();
    this.restarts++;
    await this.startIncarnation(error);
  }

  stopWith(termination: Termination, options: StopOptions): Promise<void> {
    this.stopping ??= this.runStop(termination, options);
    return this.stopping;
  }

  private async runStop(termination: Termination, options: StopOptions): Promise<void> {
    const wasRunning = this.state === "running";
    this.state = "stopping";
    this.restartTimer?.cancel();
    if (options.mode === "drain" && wasRunning) {
      let timer: Timer | undefined;
      if (options.timeoutMs !== undefined) {
        timer = this.services.clock.setTimer(() => {
          this.stopDiscarding = true;
          this.notifyIdle();
        }, options.timeoutMs);
      }
      this.schedule();
      await this.waitUntil(() => this.stopDiscarding || (this.isIdle && this.mailbox.size === 0 && this.streams.size === 0));
      timer?.cancel();
    }
    this.stopDiscarding = true;
    const stopped = new ActorError("stopped", `[actor] ${this.path} stopped before handling the message`);
    for (const envelope of this.mailbox.drain()) {
      if (!envelope.cancelled) {
        this.services.deadLetters.record(this.path, envelope.message, "rejected-on-stop");
        envelope.settle?.reject(stopped);
        envelope.stream?.close(stopped);
      }
    }
    for (const stream of [...this.streams]) {
      stream.close(new ActorError("stopped", `[actor] ${this.path} stopped`));
    }
    await this.waitUntil(() => this.isIdle);
    await this.children.stopAll();
    if (this.instance.alive) {
      await this.instance.postStop(termination).catch(() => {});
    }
    await this.instance.dispose().catch(() => {});
    this.state = "stopped";
    this.parent.childTerminated(this);
    this.resolveTerminated(termination);
  }

  // ---- the reference and the context ----

  private makeRef(): ActorRef<M> {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const cell = this;
    const ref = {
      path: this.path,
      get status() {
        return cell.state;
      },
      get queued() {
        return cell.mailbox.size;
      },
      get restarts() {
        return cell.restarts;
      },
      tell: (message: MessageBase) => {
        const queued = cell.enqueue("tell", message);
        return queued.ok ? ok(undefined) : queued;
      },
      ask: (message: MessageBase, options?: AskOptions) => cell.ask(message, options),
      stream: (message: MessageBase, options?: StreamOptions) => cell.stream(message, options),
      stop: (options: StopOptions = {}) => cell.stopWith({ kind: "stopped" }, options),
      terminated: this.terminated,
    };
    return ref as ActorRef<M>;
  }

  private makeContext(local: boolean): ActorContext<M> {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const cell = this;
    const unsupported = (what: string): never => {
      throw new ActorError("unsupported", `[actor] ${cell.path}: ${what} is only available to in-process actors`);
    };
    return {
      self: this.ref,
      path: this.path,
      get restarts() {
        return cell.restarts;
      },
      clock: this.services.clock,
      spawn: (definition, options) => (local ? this.children.spawn(definition, options) : unsupported("spawn")),
      watch: (target, message) => {
        let active = true;
        void target.terminated.then((termination) => {
          if (active && cell.isLive) {
            cell.ref.tell(message(termination));
          }
        });
        return () => {
          active = false;
        };
      },
      link: (target) => {
        const other = cells.get(target);
        void target.terminated.then((t) => {
          if (t.kind === "failed") {
            cell.fail(new ActorError("linked", `[actor] linked ${target.path} failed: ${t.error.message}`, { cause: t.error }));
          }
        });
        void cell.terminated.then((t) => {
          if (t.kind === "failed") {
            other?.fail(new ActorError("linked", `[actor] linked ${cell.path} failed: ${t.error.message}`, { cause: t.error }));
          }
        });
      },
    };
  }
}

export function cellOf(ref: object): SupervisedCell | undefined {
  return cells.get(ref);
}

export type { TellMessage };
