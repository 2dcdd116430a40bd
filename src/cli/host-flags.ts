/**
 * The served model's flags that `barbell serve` and `barbell worker` share, and the one translation of them
 * into a served model's host options (each command declares its own options and checks).
 */
import path from "node:path";
import type { BackendName } from "../backends/backend.js";
import type { ServedModelConfig } from "../serve/http/served.js";

/** The flags of one served model that `serve` and `worker` share (each command declares its options). */
export interface ModelHostFlags {
  model?: string;
  name?: string;
  backend?: BackendName[];
  threads?: number;
  parallel?: number;
  queue?: number;
  ctx?: number;
  head?: "keep" | "q8_0";
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
    ...(flags.promptCache === undefined ? {} : { promptCacheMiB: flags.promptCache }),
  };
}

/** The id clients send for a model: `--name`, else the file name without `.gguf`. */
export function servedName(flags: ModelHostFlags, modelPath: string): string {
  return flags.name ?? path.basename(modelPath).replace(/\.gguf$/i, "");
}
