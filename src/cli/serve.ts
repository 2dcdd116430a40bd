/**
 * `barbell serve`: the OpenAI-compatible HTTP server (docs/serving.md). One model from `-m`, several from
 * `--config` (a JSON file, which may also define cascades), or `--demo`: a generated model with random weights
 * so that a new user sees the server work (what `npm start` runs). SIGTERM and Ctrl-C shut down gracefully.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { type Command, InvalidArgumentError, Option } from "commander";
import type { BackendName } from "../backends/backend.js";
import { parseBackendList } from "../backends/registry.js";
import { makeBitnetFixture } from "../model/bitnet/fixture.js";
import { ServeError } from "../serve/errors.js";
import { createServer, type ServerOptions } from "../serve/http/index.js";
import type { CascadeConfig, ServedModelConfig } from "../serve/http/served.js";
import type { CliIo } from "./run.js";

function count(min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < min) {
      throw new InvalidArgumentError(`expected an integer >= ${min}`);
    }
    return n;
  };
}

function backendList(value: string): BackendName[] {
  try {
    return parseBackendList(value);
  } catch (e) {
    throw new InvalidArgumentError(e instanceof Error ? e.message : String(e));
  }
}

interface ServeFlags {
  model?: string;
  name?: string;
  config?: string;
  demo?: boolean;
  port: number;
  host: string;
  backend?: BackendName[];
  threads?: number;
  parallel?: number;
  queue?: number;
  ctx?: number;
  isolation: "process" | "in-process";
  apiKey?: string[];
  cors?: string[];
  bodyLimit?: number;
  timeout?: number;
  shutdownTimeout: number;
}

/** The config file: `{ models: [...], cascades?: [...], host?, port?, apiKeys?, corsOrigins?, bodyLimit?, requestTimeoutMs? }`. */
export interface ServeConfigFile {
  readonly host?: string;
  readonly port?: number;
  readonly models: readonly ServedModelConfig[];
  readonly cascades?: readonly CascadeConfig[];
  readonly apiKeys?: readonly string[];
  readonly corsOrigins?: readonly string[];
  readonly bodyLimit?: number;
  readonly requestTimeoutMs?: number;
}

/** Reads and checks a config file; model paths are relative to the file. */
export async function readServeConfig(file: string): Promise<ServeConfigFile> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await fs.readFile(file, "utf8"));
  } catch (e) {
    throw new ServeError("bad-config", `[serve] cannot read config ${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const bad = (what: string): never => {
    throw new ServeError("bad-config", `[serve] ${file}: ${what}`);
  };
  if (typeof parsed !== "object" || parsed === null || !Array.isArray((parsed as { models?: unknown }).models)) {
    bad("expected an object with a 'models' array");
  }
  const config = parsed as ServeConfigFile;
  if (config.models.length === 0) {
    bad("'models' is empty");
  }
  const models = config.models.map((m, i) => {
    if (typeof m !== "object" || m === null || typeof m.name !== "string" || m.name === "" || typeof m.path !== "string" || m.path === "") {
      return bad(`models[${i}] needs a non-empty 'name' and 'path'`);
    }
    for (const key of ["parallel", "queue", "threads", "contextLength"] as const) {
      const v = m[key];
      if (v !== undefined && !(Number.isSafeInteger(v) && v >= (key === "queue" ? 0 : 1))) {
        bad(`models[${i}].${key} must be a positive integer`);
      }
    }
    if (m.backends !== undefined) {
      parseBackendList(m.backends.join(","));
    }
    return { ...m, path: path.resolve(path.dirname(file), m.path) };
  });
  for (const [i, c] of (config.cascades ?? []).entries()) {
    if (typeof c.name !== "string" || !Array.isArray(c.rungs) || c.rungs.length === 0 || typeof c.threshold !== "number") {
      bad(`cascades[${i}] needs 'name', 'rungs' (model names) and a numeric 'threshold'`);
    }
  }
  return { ...config, models };
}

/** Writes the demo model (random weights) to a temp folder; returns its path and a cleanup function. */
async function demoModel(): Promise<{ path: string; remove: () => Promise<void> }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "barbell-serve-demo-"));
  const file = path.join(dir, "demo-random-bitnet-b1.58.gguf");
  await fs.writeFile(file, makeBitnetFixture({ hidden: 256, layers: 4, ffn: 512, vocab: 300, contextLength: 1024, seed: 7 }));
  return { path: file, remove: () => fs.rm(dir, { recursive: true, force: true }) };
}

export function addServeCommand(program: Command, io: CliIo): void {
  program
    .command("serve")
    .description("serve models over an OpenAI-compatible HTTP API (docs/serving.md)")
    .option("-m, --model <path>", "a GGUF file or Hugging Face folder")
    .option("--name <id>", "the model id clients send (default: the file name)")
    .option("--config <file>", "a JSON config with several models and cascades")
    .option("--demo", "serve a generated model with RANDOM weights (what `npm start` does)")
    .option("--port <n>", "TCP port (0: any free port)", count(0), 8080)
    .option("--host <addr>", "address to bind; 0.0.0.0 exposes the server to the network", "127.0.0.1")
    .option("--backend <list>", "backends, preferred first (e.g. native-cpu,js)", backendList)
    .option("--threads <n>", "kernel threads", count(1))
    .option("--parallel <n>", "requests decoded together per model (default 1)", count(1))
    .option("--queue <n>", "requests waiting beyond --parallel before 429 (default 16)", count(0))
    .option("--ctx <n>", "context (KV cache) length", count(1))
    .addOption(new Option("--isolation <kind>", "where each model runs").choices(["process", "in-process"]).default("process"))
    .option("--api-key <key...>", "require one of these Bearer keys on /v1/* (or BARBELL_API_KEYS, comma-separated)")
    .option("--cors <origin...>", "allow these browser origins ('*' for any); default CORS off")
    .option("--body-limit <bytes>", "largest request body", count(1))
    .option("--timeout <ms>", "longest a generation request may run", count(1))
    .option("--shutdown-timeout <ms>", "on SIGTERM, how long in-flight requests may finish", count(0), 10_000)
    .action(async (flags: ServeFlags) => {
      const sources = [flags.model !== undefined, flags.config !== undefined, flags.demo === true].filter(Boolean).length;
      if (sources !== 1) {
        throw new ServeError("bad-config", "[serve] give exactly one of -m <model>, --config <file> or --demo");
      }
      const file = flags.config === undefined ? undefined : await readServeConfig(flags.config);
      const demo = flags.demo === true ? await demoModel() : undefined;
      const perModel = {
        isolation: flags.isolation,
        ...(flags.backend === undefined ? {} : { backends: flags.backend }),
        ...(flags.threads === undefined ? {} : { threads: flags.threads }),
        ...(flags.parallel === undefined ? {} : { parallel: flags.parallel }),
        ...(flags.queue === undefined ? {} : { queue: flags.queue }),
        ...(flags.ctx === undefined ? {} : { contextLength: flags.ctx }),
      };
      const models: ServedModelConfig[] =
        file !== undefined
          ? file.models.map((m) => ({ ...perModel, ...m }))
          : demo !== undefined
            ? [{ name: flags.name ?? "barbell-demo", path: demo.path, randomWeights: true, ...perModel }]
            : [{ name: flags.name ?? path.basename(flags.model ?? "model").replace(/\.gguf$/i, ""), path: flags.model ?? "", ...perModel }];
      const envKeys = (process.env["BARBELL_API_KEYS"] ?? "").split(",").filter((k) => k !== "");
      const apiKeys = [...(flags.apiKey ?? []), ...(file?.apiKeys ?? []), ...envKeys];
      const bodyLimit = flags.bodyLimit ?? file?.bodyLimit;
      const requestTimeoutMs = flags.timeout ?? file?.requestTimeoutMs;
      const options: ServerOptions = {
        models,
        ...(file?.cascades === undefined ? {} : { cascades: file.cascades }),
        apiKeys,
        corsOrigins: flags.cors ?? file?.corsOrigins ?? [],
        ...(bodyLimit === undefined ? {} : { bodyLimit }),
        ...(requestTimeoutMs === undefined ? {} : { requestTimeoutMs }),
        log: (line) => io.err(`${line}\n`),
      };
      let server;
      try {
        server = await createServer(options);
      } catch (e) {
        await demo?.remove();
        throw e;
      }
      const host = file?.host !== undefined && flags.host === "127.0.0.1" ? file.host : flags.host;
      const port = file?.port !== undefined && flags.port === 8080 ? file.port : flags.port;
      const url = await server.listen(port, host);
      for (const s of server.served) {
        io.out(`barbell serve: model '${s.name}' (${s.kind}, ${s.info.arch}, context ${s.info.contextLength}, parallel ${s.admission.parallel}, queue ${s.admission.queue})\n`);
        if (s.randomWeights) {
          io.out(`barbell serve: NOTE '${s.name}' is a generated model with RANDOM weights: its text is meaningless (a demo of the server, not of a language model)\n`);
        }
      }
      if (apiKeys.length > 0) {
        io.out(`barbell serve: API keys required on /v1/*\n`);
      }
      io.out(`barbell serve: listening on ${url}\n`);
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          process.off("SIGTERM", stop);
          io.signal.removeEventListener("abort", stop);
          io.out(`barbell serve: shutting down (in-flight requests get ${flags.shutdownTimeout} ms)\n`);
          void server.shutdown(flags.shutdownTimeout).then(resolve, (e: unknown) => {
            io.err(`barbell serve: shutdown failed: ${e instanceof Error ? e.message : String(e)}\n`);
            resolve();
          });
        };
        process.once("SIGTERM", stop);
        if (io.signal.aborted) {
          stop();
        } else {
          io.signal.addEventListener("abort", stop, { once: true });
        }
      });
      await demo?.remove();
      io.out("barbell serve: stopped\n");
    });
}
