/**
 * `barbell worker --nats nats://host:4222 -m model.gguf [--name id] [--parallel n]`: serve one model for a
 * deployment over NATS (docs/scale-out.md). The model runs as under `barbell serve` (a supervised model actor
 * and its worker process, continuous batching); gateways (`barbell serve --nats …`) route requests to it.
 * Also the NATS flags that `barbell serve` shares: `--nats`, `--nats-creds`, `--nats-prefix`, and NATS_TOKEN.
 */
import os from "node:os";
import { type Command, Option } from "commander";
import type { NatsConnection } from "@nats-io/transport-node";
import { DEFAULT_PROMPT_CACHE_MIB, MAX_PROMPT_CACHE_MIB } from "../engine/prompt-cache.js";
import { checkPrefix, connectNats, DEFAULT_NATS_PREFIX, MAX_NATS_ID_LENGTH } from "../serve/nats/connection.js";
import { DEFAULT_HEARTBEAT_MS, startNatsWorker } from "../serve/nats/worker.js";
import { backendList, intAtLeast, intInRange } from "./args.js";
import { CliError } from "./errors.js";
import { contextFlag, HEAD_HELP, kvTypeFlag, modelContextLength, threadsFlag } from "./flags.js";
import { modelOrDefault } from "./default-model.js";
import { hostOptions, servedName, untilStopped, type ModelHostFlags } from "./host-flags.js";
import type { CliIo } from "./run.js";
import { HEAD_POLICIES } from "../model/bitnet/weights.js";

export interface NatsFlags {
  nats?: string[];
  natsCreds?: string;
  natsPrefix: string;
}

/** Adds `--nats`, `--nats-creds` and `--nats-prefix` to a command. */
export function natsOptions(cmd: Command, what: string): Command {
  return cmd
    .option("--nats <url...>", `NATS server URLs (nats://host:4222) ${what}`)
    .option("--nats-creds <file>", "a NATS creds file (user JWT and NKey seed); a token goes in NATS_TOKEN instead (default: none)")
    .option("--nats-prefix <prefix>", "subject namespace of this deployment: gateways and workers must share it", checkedPrefix, DEFAULT_NATS_PREFIX);
}

function checkedPrefix(value: string): string {
  try {
    return checkPrefix(value);
  } catch (error) {
    throw new CliError("bad-flag", error instanceof Error ? error.message : String(error));
  }
}

/** Connects with the flags (and NATS_TOKEN); `name` labels the connection in the NATS server's monitoring. */
export function connectWithFlags(flags: NatsFlags, name: string): Promise<NatsConnection> {
  const token = process.env["NATS_TOKEN"];
  return connectNats({
    servers: flags.nats ?? [],
    prefix: flags.natsPrefix,
    name,
    ...(flags.natsCreds === undefined ? {} : { credsFile: flags.natsCreds }),
    ...(token === undefined || token === "" ? {} : { token }),
  });
}

interface WorkerFlags extends NatsFlags, ModelHostFlags {
  id?: string;
  heartbeat: number;
}

export function addWorkerCommand(program: Command, io: CliIo): void {
  const cmd = program
    .command("worker")
    .description("serve one model for gateways over NATS (barbell serve --nats; docs/scale-out.md)")
    .option("-m, --model <path>", "a GGUF file (default: the packaged models/barbell-kjv.gguf)")
    .option("--name <id>", "the model id clients send (default: the file name)")
    .option("--id <id>", `this worker's id in the deployment, 1..${MAX_NATS_ID_LENGTH} of [A-Za-z0-9_-] (default: host name and pid)`)
    .option("--backend <list>", "backends, preferred first (default: BARBELL_BACKENDS, else every one that works here)", backendList)
    .addOption(threadsFlag())
    .option("--parallel <n>", "requests decoded together (default 1)", intAtLeast(1))
    .option("--queue <n>", "requests waiting beyond --parallel (default 16)", intAtLeast(0))
    .addOption(contextFlag())
    .addOption(kvTypeFlag())
    .addOption(new Option("--head <type>", `${HEAD_HELP} (default: auto)`).choices(HEAD_POLICIES))
    .option("--prompt-cache <MiB>", `KV prefix cache, 0..${MAX_PROMPT_CACHE_MIB} (0: off) (default: ${DEFAULT_PROMPT_CACHE_MIB})`, intInRange(0, MAX_PROMPT_CACHE_MIB))
    .addOption(new Option("--isolation <kind>", "where the model runs").choices(["process", "in-process"]).default("process"))
    .option("--heartbeat <ms>", "advert period; gateways take the worker out after three missed ones", intInRange(10, 60_000), DEFAULT_HEARTBEAT_MS)
    .option("--shutdown-timeout <ms>", "on SIGTERM, how long open requests may finish", intAtLeast(0), 10_000);
  natsOptions(cmd, "to join (required)").action(async (flags: WorkerFlags) => {
    if (flags.nats === undefined || flags.nats.length === 0) {
      throw new CliError("bad-flag", "[worker] --nats <url> is required (e.g. --nats nats://127.0.0.1:4222)");
    }
    const modelPath = modelOrDefault(flags.model, io.err);
    if (flags.ctx !== undefined) {
      const own = await modelContextLength(modelPath);
      if (flags.ctx > own) {
        throw new CliError("bad-flag", `[worker] context ${flags.ctx} is more than the model's context of ${own} tokens; pass -c ${own} or less`);
      }
    }
    const id = flags.id ?? `${os.hostname().replace(/[^A-Za-z0-9_-]/g, "-").slice(0, 40)}-${process.pid}`;
    const nc = await connectWithFlags(flags, `barbell worker ${id}`);
    let worker;
    try {
      worker = await startNatsWorker(nc, {
        id,
        prefix: flags.natsPrefix,
        heartbeatMs: flags.heartbeat,
        log: (line) => io.err(`${line}\n`),
        model: {
          name: servedName(flags, modelPath),
          path: modelPath,
          ...hostOptions(flags),
        },
      });
    } catch (error) {
      await nc.close();
      throw error;
    }
    io.out(`barbell worker: '${worker.id}' ready: model '${worker.served.name}' (context ${worker.served.info.contextLength}) on prefix '${flags.natsPrefix}'\n`);
    await untilStopped(io);
    io.out(`barbell worker: leaving (open requests get ${flags.shutdownTimeout} ms)\n`);
    await worker.stop(flags.shutdownTimeout);
    await nc.drain().catch(() => undefined);
    io.out("barbell worker: stopped\n");
  });
}
