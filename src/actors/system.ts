import { systemClock, type Clock } from "./clock.js";
import { Supervisor, type SystemServices } from "./cell.js";
import { DeadLetters } from "./dead-letters.js";
import type { ActorError } from "./errors.js";
import type { ActorDefinition, ActorRef, MessageBase, SpawnOptions } from "./protocol.js";
import { createRemoteInstance } from "./remote/host.js";
import { resolveSupervision, type SupervisionOptions } from "./supervision.js";

export interface ActorSystemOptions {
  /** Root of every path (`/<name>/…`). Default `"user"`. */
  readonly name?: string;
  /** Default: the real clock. Tests pass a ManualClock. */
  readonly clock?: Clock;
  /** Source of backoff jitter, in [0, 1). Default Math.random. */
  readonly random?: () => number;
  /** How the system supervises top-level actors. Default: DEFAULT_SUPERVISION. */
  readonly supervision?: SupervisionOptions;
  /** Called when a top-level actor escalates (it has then been stopped). */
  readonly onEscalation?: (path: string, error: ActorError) => void;
}

/** An escalation that reached the top of the tree. */
export interface Escalation {
  readonly error: ActorError;
  readonly at: number;
}

/**
 * A tree of actors with one clock and one dead-letter record. Top-level actors are supervised by the
 * system's guardian; an escalation that reaches the guardian stops that actor and is recorded.
 */
export class ActorSystem {
  readonly clock: Clock;
  readonly deadLetters: DeadLetters;
  /** Escalations that reached the guardian, oldest first. */
  readonly escalations: Escalation[] = [];
  private readonly guardian: Supervisor;

  constructor(options: ActorSystemOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.deadLetters = new DeadLetters(this.clock);
    const services: SystemServices = {
      clock: this.clock,
      random: options.random ?? Math.random,
      deadLetters: this.deadLetters,
      remoteInstance: createRemoteInstance,
    };
    this.guardian = new Supervisor(`/${options.name ?? "user"}`, resolveSupervision(options.supervision), services, (error, child) => {
      void child.stopWith({ kind: "failed", error }, {});
      this.escalations.push({ error, at: this.clock.now() });
      options.onEscalation?.(this.guardian.path, error);
    });
  }

  /** Spawns a top-level actor. Throws ActorError `unsupported` for a name already taken. */
  spawn<M extends MessageBase>(definition: ActorDefinition<M>, options?: SpawnOptions): ActorRef<M> {
    return this.guardian.spawn(definition, options);
  }

  /** Top-level actors that have not terminated. */
  get actors(): number {
    return this.guardian.children.size;
  }

  /** Stops every actor (queued messages are rejected) and waits for all of them, workers and children included. */
  async stop(): Promise<void> {
    await this.guardian.stopAll();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

export function createActorSystem(options?: ActorSystemOptions): ActorSystem {
  return new ActorSystem(options);
}
