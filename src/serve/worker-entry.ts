/**
 * The module a model worker's child process imports (process isolation). Its configuration travels in the
 * module URL (`worker-entry.js?config=<base64url JSON>`), so each worker gets its own without globals.
 */
import { defineActor } from "../actors/index.js";
import { modelWorkerProtocol, type ModelWorkerMsg } from "./protocol.js";
import { decodeWorkerConfig, modelWorker } from "./worker.js";

function fromUrl(): ReturnType<typeof modelWorker> {
  try {
    return modelWorker({ ...decodeWorkerConfig(new URL(import.meta.url).searchParams.get("config")), isolated: true });
  } catch (error) {
    // The host reports this as start-failed with the message, instead of failing the import.
    return defineActor<ModelWorkerMsg>({
      name: "worker",
      protocol: modelWorkerProtocol,
      create: () => {
        throw error;
      },
    });
  }
}

export default fromUrl();
