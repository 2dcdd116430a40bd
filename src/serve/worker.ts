/**
 * The model worker: the actor that holds a {@link ModelHost}. It runs in-process (tests, pure-JS backends)
 * or in a child process of its own (the default for native kernels: a segfault ends only this actor, and
 * its supervisor, the model actor, restarts it). Its messages are the four, as a BARE protocol.
 */
import { defineActor, type ActorDefinition } from "../actors/index.js";
import { ServeError } from "./errors.js";
import { ModelHost, checkHostConfig, type ModelHostConfig } from "./host.js";
import { modelWorkerProtocol, type ModelWorkerMsg } from "./protocol.js";

export interface ModelWorkerConfig extends ModelHostConfig {
  /** Set by the model actor when the worker runs in its own child process. */
  readonly isolated?: boolean;
}

/** The worker definition for `config`; the host is created at every (re)start with the actor's clock. */
export function modelWorker(config: ModelWorkerConfig): ActorDefinition<ModelWorkerMsg> {
  checkHostConfig(config);
  return defineActor<ModelWorkerMsg>({
    name: "worker",
    protocol: modelWorkerProtocol,
    mailboxCapacity: (config.maxQueue ?? 1024) + 64,
    create: async (ctx) => {
      const host = new ModelHost({ ...config, clock: ctx.clock, incarnation: ctx.restarts });
      if (config.preload !== false) {
        await host.load();
      }
      return {
        receive: {
          processInput: (m) => host.submit(m),
          expandCapability: async (m) => {
            const result = await host.expand({
              ...(m.rung === undefined ? {} : { rung: m.rung }),
              ...(m.backends === undefined ? {} : { backends: m.backends }),
            });
            return { ...result, status: host.status() };
          },
          releaseResources: async () => {
            await host.release();
            return host.status();
          },
          queryStatus: () => host.status(),
        },
        preRestart: () => host.dispose(),
        postStop: () => host.dispose(),
      };
    },
  });
}

/** Encodes a worker config for the child-process module URL (`?config=` base64url JSON). */
export function encodeWorkerConfig(config: ModelWorkerConfig): string {
  return Buffer.from(JSON.stringify(config), "utf8").toString("base64url");
}

/** Decodes `?config=`; a ServeError "bad-config" when it is missing or not a config. */
export function decodeWorkerConfig(text: string | null): ModelWorkerConfig {
  if (text === null) {
    throw new ServeError("bad-config", "[model] the worker module was loaded without ?config=");
  }
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(text, "base64url").toString("utf8"));
  } catch (error) {
    throw new ServeError("bad-config", `[model] worker config is not JSON: ${String(error)}`);
  }
  if (typeof value !== "object" || value === null) {
    throw new ServeError("bad-config", "[model] worker config is not an object");
  }
  const config = value as ModelWorkerConfig;
  checkHostConfig(config);
  return config;
}
