/**
 * What `barbell serve` and `barbell worker` share for the model they serve: its flags and the one translation of
 * them into host options (each command declares its own options and checks), and the wait for a stop.
 */
import path from "node:path";
import type { BackendName } from "../backends/backend.js";
import type { ServedModelConfig } from "../serve/http/served.js";
import type { CliIo } from "./run.js";
import type { HeadPolicy } from "../model/bitnet/weights.js";
import type { KvCacheDType } from "../model/bitnet/kv-cache.js";

/** The flags of one served model that `serve` and `worker` share (each command declares its options). */
export interface ModelHostFlags {
  model?: string;
  name?: string;
  backend?: BackendName[];
  threads?: number;
  parallel?: number;
  queue?: number;
  ctx?: number;
  head?: HeadPolicy;
  kvType?: KvCacheDType;
  promptCache?: number;
  isolation: "process" | "in-process";
  shutdownTimeout: number;
}

/** A served model's options other than its name and file, as the flags give them (a flag not given: absent). */
export type HostOptions = Omit<ServedModelConfig, "name" | "path">;

/** The flags' host options: only the flags given, so a config file's or the host's defaults apply to the rest. */
export function hostOptions(flags: ModelHostFlags): HostOptions {
  return {
    isolation: flags.isolation,
    ...(flags.backend === undefined ? {} : { backends: flags.backend }),
    ...(flags.threads === undefined ? {} : { threads: flags.threads }),
    ...(flags.parallel === undefined ? {} : { parallel: flags.parallel }),
    ...(flags.queue === undefined ? {} : { queue: flags.queue }),
    ...(flags.ctx === undefined ? {} : { contextLength: flags.ctx }),
    ...(flags.head === undefined ? {} : { head: flags.head }),
    ...(flags.kvType === undefined ? {} : { kvType: flags.kvType }),
    ...(flags.promptCache === undefined ? {} : { promptCacheMiB: flags.promptCache }),
  };
}

/** The id clients send for a model: `--name`, else the file name without `.gguf`. */
export function servedName(flags: ModelHostFlags, modelPath: string): string {
  return flags.name ?? path.basename(modelPath).replace(/\.gguf$/i, "");
}

/** Resolves once SIGTERM arrives or the command's signal aborts (Ctrl-C, a test), whichever is first. */
export function untilStopped(io: Pick<CliIo, "signal">): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off("SIGTERM", stop);
      io.signal.removeEventListener("abort", stop);
      resolve();
    };
    process.once("SIGTERM", stop);
    if (io.signal.aborted) {
      stop();
    } else {
      io.signal.addEventListener("abort", stop, { once: true });
    }
  });
}
