/**
 * The entry of a worker thread or child process that runs one actor. It imports the actor's module,
 * then answers the parent's frames: start (create, postRestart), deliver (one handler), pre-restart,
 * post-stop, and the stream controls cancel and ack. Streams are pumped at most STREAM_WINDOW items ahead
 * of the parent's acknowledgements. A child process exits when its parent disconnects.
 */
import { isMainThread, parentPort, workerData } from "node:worker_threads";
import { systemClock } from "../clock.js";
import { ActorError, describeError, type RemoteErrorInfo } from "../errors.js";
import { runHandler } from "../instance.js";
import { STREAM_WINDOW } from "../limits.js";
import type { ActorContext, ActorDefinition, ActorRef, Behavior, MessageBase } from "../protocol.js";
import { decodeFrame, encodeFrame, type Frame } from "./frames.js";

interface Port {
  send(frame: Uint8Array): void;
  listen(handler: (data: unknown) => void): void;
}

function openPort(): { port: Port; module: string; exportName: string } {
  if (!isMainThread && parentPort) {
    const parent = parentPort;
    const data = workerData as { module: string; exportName: string };
    return {
      module: data.module,
      exportName: data.exportName,
      port: {
        send: (frame) => parent.postMessage(frame, [frame.buffer as ArrayBuffer]),
        listen: (handler) => parent.on("message", handler),
      },
    };
  }
  const send = process.send?.bind(process);
  if (!send) {
    throw new Error("[actor-entry] started without a parent channel");
  }
  process.on("disconnect", () => process.exit(0));
  return {
    module: process.argv[2] ?? "",
    exportName: process.argv[3] ?? "default",
    port: { send: (frame) => void send(frame), listen: (handler) => process.on("message", handler) },
  };
}

function asError(info: RemoteErrorInfo): ActorError {
  return new ActorError("failed", info.message, { remote: info });
}

class Stream {
  unacked = 0;
  cancelled = false;
  wake: (() => void) | undefined;
  constructor(readonly iterator: AsyncIterator<unknown>) {}
}

async function main(): Promise<void> {
  const { port, module, exportName } = openPort();
  const send = (frame: Frame): void => port.send(encodeFrame(frame));
  let definition: ActorDefinition<MessageBase> | undefined;
  let loadError: unknown;
  try {
    const loaded = (await import(module)) as Record<string, unknown>;
    const candidate = loaded[exportName] as ActorDefinition<MessageBase> | undefined;
    if (!candidate || typeof candidate.create !== "function" || !candidate.protocol) {
      throw new ActorError("start-failed", `[actor-entry] ${module} has no actor definition with a protocol in export '${exportName}'`);
    }
    definition = candidate;
  } catch (error) {
    loadError = error;
  }
  const protocol = definition?.protocol;
  let behavior: Behavior<MessageBase> | undefined;
  const streams = new Map<number, Stream>();
  let restarts = 0;

  const self = {
    path: `${module}#${exportName}`,
    tell(message: MessageBase) {
      if (!protocol) {
        throw new ActorError("unsupported", "[actor-entry] no protocol");
      }
      send({ kind: "self-tell", body: protocol.encodeMessage(message) });
      return { ok: true, value: undefined };
    },
  };
  const unsupported = (): never => {
    throw new ActorError("unsupported", "[actor] spawn, watch and link are only available to in-process actors");
  };
  const ctx = {
    self: self as ActorRef<MessageBase>,
    path: self.path,
    get restarts() {
      return restarts;
    },
    clock: systemClock,
    spawn: unsupported,
    watch: unsupported,
    link: unsupported,
  } satisfies ActorContext<MessageBase>;

  const pump = async (id: number, stream: Stream): Promise<void> => {
    try {
      for (;;) {
        while (stream.unacked >= STREAM_WINDOW && !stream.cancelled) {
          await new Promise<void>((resolve) => (stream.wake = resolve));
        }
        if (stream.cancelled) {
          return;
        }
        const next = await stream.iterator.next();
        if (stream.cancelled) {
          return;
        }
        if (next.done) {
          send({ kind: "end", id });
          return;
        }
        stream.unacked++;
        send({ kind: "item", id, body: protocol?.encodeResult(typeOfStream.get(id) ?? "", next.value) ?? new Uint8Array() });
      }
    } catch (error) {
      if (!stream.cancelled) {
        send({ kind: "failed", id, error: describeError(error) });
      }
    } finally {
      streams.delete(id);
      typeOfStream.delete(id);
    }
  };
  const typeOfStream = new Map<number, string>();

  const deliver = async (id: number, mode: Frame & { kind: "deliver" }): Promise<void> => {
    const decoded = protocol?.decodeMessage(mode.body);
    if (!decoded?.ok || !behavior) {
      send({ kind: "failed", id, error: describeError(decoded?.ok === false ? decoded.error : new Error("no incarnation")) });
      return;
    }
    const message = decoded.value;
    if (protocol?.modeOf(message.type) !== mode.mode) {
      send({ kind: "failed", id, error: describeError(new ActorError("protocol", `'${message.type}' is not a ${mode.mode} message`)) });
      return;
    }
    try {
      const result = await runHandler(behavior, ctx, mode.mode, message);
      if (mode.mode === "ask") {
        send({ kind: "done", id, body: protocol.encodeResult(message.type, result) });
      } else if (mode.mode === "stream") {
        const stream = new Stream(result as AsyncIterator<unknown>);
        streams.set(id, stream);
        typeOfStream.set(id, message.type);
        send({ kind: "done", id, body: new Uint8Array() });
        void pump(id, stream);
      } else {
        send({ kind: "done", id, body: new Uint8Array() });
      }
    } catch (error) {
      const cause = error instanceof ActorError && error.cause !== undefined ? error.cause : error;
      send({ kind: "failed", id, error: describeError(cause) });
    }
  };

  const cancelStreams = (): void => {
    for (const stream of streams.values()) {
      stream.cancelled = true;
      stream.wake?.();
      void stream.iterator.return?.()?.catch(() => {});
    }
    streams.clear();
  };

  port.listen((data) => {
    const decoded = decodeFrame(data);
    if (!decoded.ok) {
      send({ kind: "failed", id: 0, error: describeError(decoded.error) });
      return;
    }
    const frame = decoded.value;
    switch (frame.kind) {
      case "start":
        void (async () => {
          try {
            if (!definition) {
              throw loadError;
            }
            restarts = frame.restarts;
            behavior = await definition.create(ctx);
            if (frame.error) {
              await behavior.postRestart?.(asError(frame.error));
            }
            send({ kind: "started" });
          } catch (error) {
            send({ kind: "start-failed", error: describeError(error) });
          }
        })();
        return;
      case "deliver":
        void deliver(frame.id, frame);
        return;
      case "cancel": {
        const stream = streams.get(frame.id);
        if (stream) {
          stream.cancelled = true;
          stream.wake?.();
          streams.delete(frame.id);
          void stream.iterator.return?.()?.catch(() => {});
        }
        return;
      }
      case "ack": {
        const stream = streams.get(frame.id);
        if (stream) {
          stream.unacked = Math.max(0, stream.unacked - 1);
          stream.wake?.();
        }
        return;
      }
      case "pre-restart":
      case "post-stop":
        void (async () => {
          cancelStreams();
          try {
            if (frame.kind === "pre-restart") {
              await behavior?.preRestart?.(asError(frame.error));
            } else {
              await behavior?.postStop?.(frame.error ? { kind: "failed", error: asError(frame.error) } : { kind: "stopped" });
            }
          } catch {
            // lifecycle hook errors are ignored, as in-process
          }
          behavior = undefined;
          send({ kind: "hook-done" });
        })();
        return;
      default:
        send({ kind: "failed", id: 0, error: describeError(new ActorError("protocol", `unexpected '${frame.kind}' frame`)) });
    }
  });
}

void main();
