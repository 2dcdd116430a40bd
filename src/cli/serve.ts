/**
 * `barbell serve`: the OpenAI-compatible HTTP server (docs/serving.md). One model from `-m`, several from
 * `--config` (a JSON file, which may also define cascades), `--demo` (a generated model with random weights),
 * or, with none of these, the packaged default model (src/cli/default-model.ts; what `npm start` serves).
 * SIGTERM and Ctrl-C shut down gracefully.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { type Command, Option } from "commander";
import { parseBackendList } from "../backends/registry.js";
import { aliasOption, backendList, intAtLeast, intInRange } from "./args.js";
import { CliError } from "./errors.js";
import { contextFlag, HEAD_HELP, kvTypeFlag, modelContextLength, threadsFlag } from "./flags.js";
import { HEAD_POLICIES } from "../model/bitnet/weights.js";
import { KV_CACHE_DTYPES } from "../model/bitnet/kv-cache.js";
import { makeBitnetFixture } from "../model/bitnet/fixture.js";
import { BarbellError } from "../core/errors.js";
import { DEFAULT_PROMPT_CACHE_MIB, MAX_PROMPT_CACHE_MIB } from "../engine/prompt-cache.js";
import { parseJsonFile, readRegularFile } from "../core/files.js";
import { ServeError } from "../serve/errors.js";
import { createServer, type ServerOptions } from "../serve/http/index.js";
import type { RequestLogEntry } from "../serve/http/server.js";
import {
  DEFAULT_BODY_TIMEOUT_MS,
  DEFAULT_HEADERS_TIMEOUT_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_CONNECTIONS_PER_IP,
  MAX_LIMIT_CONNECTIONS,
  MAX_LIMIT_TIMEOUT_MS,
  type ConnectionLimits,
} from "../serve/http/connections.js";
import { MAX_WAIT_LIMIT_MS } from "../serve/http/admission.js";
import type { CascadeConfig, ServedModelConfig } from "../serve/http/served.js";
import { defaultModelPath, DefaultModelError, modelOrDefault } from "./default-model.js";
import type { CliIo } from "./run.js";
import { NatsGateway } from "../serve/nats/gateway.js";
import { BatchStore } from "../serve/batch/store.js";
import { connectWithFlags, natsOptions, type NatsFlags } from "./worker.js";
import { hostOptions, servedName, untilStopped, type ModelHostFlags } from "./host-flags.js";

interface ServeFlags extends NatsFlags, ModelHostFlags {
  config?: string;
  demo?: boolean;
  port: number;
  host: string;
  apiKey?: string[];
  cors?: string[];
  bodyLimit?: number;
  timeout?: number;
  allowedHost?: string[];
  headerTimeout?: number;
  bodyTimeout?: number;
  idleTimeout?: number;
  maxConnections?: number;
  maxConnectionsPerIp?: number;
  maxWait?: number;
  publicHealth?: boolean;
  logFormat: "text" | "json";
  quiet?: boolean;
  ui?: boolean;
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
  readonly allowedHosts?: readonly string[];
  readonly limits?: ConnectionLimits;
  /** Admission by predicted wait (ms); see `--max-wait`. */
  readonly maxWaitMs?: number;
  /** /health/ready details for every caller; see `--public-health`. */
  readonly publicHealth?: boolean;
}

/** Largest config file read (bytes): a config is a few KiB; anything bigger is refused before parsing. */
export const MAX_CONFIG_BYTES = 1024 * 1024;
/** Most models, and most cascades, one config file may define. */
export const MAX_CONFIG_MODELS = 64;
export const MAX_CONFIG_CASCADES = 64;
/** Longest model or cascade name (it is the `model` id clients send and a metrics label). */
export const MAX_NAME_LENGTH = 256;

const TOP_FIELDS = ["host", "port", "models", "cascades", "apiKeys", "corsOrigins", "bodyLimit", "requestTimeoutMs", "allowedHosts", "limits", "maxWaitMs", "publicHealth"] as const;
/** The config's `limits` object: ConnectionLimits' fields, each bounded like its flag. */
const LIMIT_FIELDS = {
  headersTimeoutMs: MAX_LIMIT_TIMEOUT_MS,
  bodyTimeoutMs: MAX_LIMIT_TIMEOUT_MS,
  idleTimeoutMs: MAX_LIMIT_TIMEOUT_MS,
  maxConnections: MAX_LIMIT_CONNECTIONS,
  maxConnectionsPerIp: MAX_LIMIT_CONNECTIONS,
} as const satisfies Record<keyof ConnectionLimits, number>;
const MODEL_FIELDS = ["name", "path", "randomWeights", "parallel", "queue", "backends", "threads", "contextLength", "head", "kvType", "isolation", "faults", "supervision", "promptCacheMiB"] as const;
const CASCADE_FIELDS = ["name", "rungs", "metric", "threshold", "window", "parallel", "queue"] as const;

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** Reads and checks a config file; model paths are relative to the file. Every problem is a one-line ServeError "bad-config". */
export async function readServeConfig(file: string): Promise<ServeConfigFile> {
  let parsed: unknown;
  try {
    // A regular file only (a FIFO would block), at most MAX_CONFIG_BYTES, and a parse error that quotes no content.
    parsed = parseJsonFile((await readRegularFile(file, MAX_CONFIG_BYTES, "[serve] config")).toString("utf8"), file, "[serve] config");
  } catch (e) {
    throw new ServeError("bad-config", e instanceof BarbellError ? e.message : `[serve] cannot read config ${file}`);
  }
  const bad = (what: string): never => {
    throw new ServeError("bad-config", `[serve] ${file}: ${what}`);
  };
  const known = (where: string, o: Json, fields: readonly string[]): void => {
    for (const key of Object.keys(o)) {
      if (!fields.includes(key)) {
        bad(`unknown field ${where}${JSON.stringify(key)} (known: ${fields.join(", ")})`);
      }
    }
  };
  const integer = (where: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): void => {
    if (v !== undefined && !(typeof v === "number" && Number.isSafeInteger(v) && v >= min && v <= max)) {
      bad(`${where} must be an integer ${max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in ${min}..${max}`}, got ${JSON.stringify(v)}`);
    }
  };
  const strings = (where: string, v: unknown): void => {
    if (v !== undefined && !(Array.isArray(v) && v.every((s) => typeof s === "string" && s !== ""))) {
      bad(`${where} must be an array of non-empty strings`);
    }
  };
  const names = new Set<string>();
  const name = (where: string, v: unknown): string => {
    if (typeof v !== "string" || v === "" || v.length > MAX_NAME_LENGTH) {
      return bad(`${where}.name must be a non-empty string of at most ${MAX_NAME_LENGTH} characters (MAX_NAME_LENGTH)`);
    }
    if (names.has(v)) {
      bad(`${where}.name '${v}' is used twice (model and cascade names must be unique)`);
    }
    names.add(v);
    return v;
  };

  if (!isObject(parsed) || !Array.isArray(parsed["models"])) {
    return bad("expected an object with a 'models' array");
  }
  known("", parsed, TOP_FIELDS);
  if (parsed["host"] !== undefined && (typeof parsed["host"] !== "string" || parsed["host"] === "")) {
    bad("host must be a non-empty string");
  }
  integer("port", parsed["port"], 0, 65_535);
  strings("apiKeys", parsed["apiKeys"]);
  if (parsed["corsOrigins"] !== undefined && !(Array.isArray(parsed["corsOrigins"]) && parsed["corsOrigins"].every((s) => typeof s === "string" && s !== ""))) {
    bad("corsOrigins must be an array of non-empty strings");
  }
  integer("bodyLimit", parsed["bodyLimit"], 1);
  integer("requestTimeoutMs", parsed["requestTimeoutMs"], 1);
  strings("allowedHosts", parsed["allowedHosts"]);
  integer("maxWaitMs", parsed["maxWaitMs"], 1, MAX_WAIT_LIMIT_MS);
  if (parsed["publicHealth"] !== undefined && typeof parsed["publicHealth"] !== "boolean") {
    bad("publicHealth must be true or false");
  }
  const limits = parsed["limits"];
  if (limits !== undefined) {
    if (!isObject(limits)) {
      return bad("limits must be an object");
    }
    known("limits.", limits, Object.keys(LIMIT_FIELDS));
    for (const [key, max] of Object.entries(LIMIT_FIELDS)) {
      integer(`limits.${key}`, limits[key], 1, max);
    }
  }

  const rawModels: unknown[] = parsed["models"];
  if (rawModels.length === 0) {
    bad("'models' is empty");
  }
  if (rawModels.length > MAX_CONFIG_MODELS) {
    bad(`${rawModels.length} models; at most ${MAX_CONFIG_MODELS} (MAX_CONFIG_MODELS)`);
  }
  const models: ServedModelConfig[] = [];
  for (const [i, m] of rawModels.entries()) {
    const where = `models[${i}]`;
    if (!isObject(m)) {
      return bad(`${where} must be an object`);
    }
    known(`${where}.`, m, MODEL_FIELDS);
    const modelName = name(where, m["name"]);
    if (typeof m["path"] !== "string" || m["path"] === "") {
      bad(`${where}.path must be a non-empty string`);
    }
    integer(`${where}.parallel`, m["parallel"], 1);
    integer(`${where}.queue`, m["queue"], 0);
    integer(`${where}.threads`, m["threads"], 1);
    integer(`${where}.contextLength`, m["contextLength"], 1);
    integer(`${where}.promptCacheMiB`, m["promptCacheMiB"], 0, MAX_PROMPT_CACHE_MIB);
    if (m["randomWeights"] !== undefined && typeof m["randomWeights"] !== "boolean") {
      bad(`${where}.randomWeights must be true or false`);
    }
    if (m["head"] !== undefined && !HEAD_POLICIES.some((h) => h === m["head"])) {
      bad(`${where}.head must be one of ${HEAD_POLICIES.join(", ")}`);
    }
    if (m["kvType"] !== undefined && !KV_CACHE_DTYPES.some((d) => d === m["kvType"])) {
      bad(`${where}.kvType must be one of ${KV_CACHE_DTYPES.join(", ")}`);
    }
    if (m["isolation"] !== undefined && m["isolation"] !== "process" && m["isolation"] !== "in-process") {
      bad(`${where}.isolation must be "process" or "in-process"`);
    }
    if (m["backends"] !== undefined) {
      strings(`${where}.backends`, m["backends"]);
      try {
        parseBackendList((m["backends"] as string[]).join(","));
      } catch (e) {
        bad(`${where}.backends: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    if (m["faults"] !== undefined && !(Array.isArray(m["faults"]) && m["faults"].every(isObject))) {
      bad(`${where}.faults must be an array of fault plans`);
    }
    if (m["supervision"] !== undefined && !isObject(m["supervision"])) {
      bad(`${where}.supervision must be an object`);
    }
    const resolved = path.resolve(path.dirname(file), m["path"] as string);
    try {
      await fs.stat(resolved);
    } catch {
      bad(`${where}.path: no such file or folder ${resolved}`);
    }
    models.push({ ...(m as Partial<ServedModelConfig>), name: modelName, path: resolved });
  }

  const rawCascades = parsed["cascades"] ?? [];
  if (!Array.isArray(rawCascades)) {
    return bad("cascades must be an array");
  }
  if (rawCascades.length > MAX_CONFIG_CASCADES) {
    bad(`${rawCascades.length} cascades; at most ${MAX_CONFIG_CASCADES} (MAX_CONFIG_CASCADES)`);
  }
  const modelNames = new Set(models.map((m) => m.name));
  for (const [i, c] of (rawCascades as unknown[]).entries()) {
    const where = `cascades[${i}]`;
    if (!isObject(c)) {
      return bad(`${where} must be an object`);
    }
    known(`${where}.`, c, CASCADE_FIELDS);
    const cascade = name(where, c["name"]);
    const rungs = c["rungs"];
    if (!Array.isArray(rungs) || rungs.length === 0 || !rungs.every((r) => typeof r === "string")) {
      return bad(`${where}.rungs must be a non-empty array of model names, smallest first`);
    }
    for (const r of rungs as string[]) {
      if (!modelNames.has(r)) {
        bad(`cascade '${cascade}' names an unknown model '${r}' (models: ${[...modelNames].join(", ")})`);
      }
    }
    if (new Set(rungs).size !== rungs.length) {
      bad(`cascade '${cascade}' names a model twice`);
    }
    if (typeof c["threshold"] !== "number" || !Number.isFinite(c["threshold"])) {
      bad(`${where}.threshold must be a finite number`);
    }
    if (c["metric"] !== undefined && c["metric"] !== "min-prob" && c["metric"] !== "entropy") {
      bad(`${where}.metric must be "min-prob" or "entropy"`);
    }
    integer(`${where}.window`, c["window"], 1);
    integer(`${where}.parallel`, c["parallel"], 1);
    integer(`${where}.queue`, c["queue"], 0);
  }
  return { ...(parsed as Partial<ServeConfigFile>), models, ...(parsed["cascades"] === undefined ? {} : { cascades: rawCascades as CascadeConfig[] }) };
}

/** The fields of `o` that are not undefined (flags not given leave the defaults in place). */
function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Writes the demo model (random weights) to a temp folder; returns its path and a cleanup function. */
async function demoModel(): Promise<{ path: string; remove: () => Promise<void> }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "barbell-serve-demo-"));
  const file = path.join(dir, "demo-random-bitnet-b1.58.gguf");
  await fs.writeFile(file, makeBitnetFixture({ hidden: 256, layers: 4, ffn: 512, vocab: 300, contextLength: 1024, seed: 7 }));
  return { path: file, remove: () => fs.rm(dir, { recursive: true, force: true }) };
}

/** A request log line: `barbell serve: POST /v1/completions 200 model=m prompt_tokens=4 completion_tokens=16 12.3 ms`, or JSON. */
export function formatRequestLog(e: RequestLogEntry, format: "text" | "json"): string {
  const ms = Math.round(e.ms * 10) / 10;
  if (format === "json") {
    return JSON.stringify({
      time: new Date().toISOString(),
      method: e.method,
      path: e.path,
      status: e.status,
      model: e.model ?? null,
      prompt_tokens: e.promptTokens ?? null,
      completion_tokens: e.completionTokens ?? null,
      ms,
    });
  }
  const model = e.model === undefined ? "" : ` model=${e.model}`;
  const tokens = e.promptTokens === undefined ? "" : ` prompt_tokens=${e.promptTokens} completion_tokens=${e.completionTokens ?? 0}`;
  return `barbell serve: ${e.method} ${e.path} ${e.status}${model}${tokens} ${ms} ms`;
}

/** The demo page offers the packaged default model when it is there (a package built without models/: none). */
function demoPageOptions(): { defaultModel?: string } {
  try {
    return { defaultModel: defaultModelPath() };
  } catch (e) {
    if (e instanceof DefaultModelError) {
      return {};
    }
    throw e;
  }
}

/** Why the server cannot listen, in one line that says what to change (the flag, or the config's field). */
function listenError(error: unknown, host: string, port: number, configFile: string | undefined): CliError | unknown {
  const code = (error as { code?: unknown } | null)?.code;
  const otherPort = configFile === undefined ? "pass --port N, or --port 0 for any free port" : `set "port" in ${configFile} to another port, or 0 for any free port`;
  switch (code) {
    case "EADDRINUSE":
      return new CliError("listen", `[serve] port ${port} on ${host} is in use; ${otherPort}`);
    case "EACCES":
      return new CliError("listen", `[serve] no permission to listen on ${host} port ${port} (ports below 1024 need privileges); ${otherPort}`);
    case "EADDRNOTAVAIL":
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return new CliError(
        "listen",
        `[serve] cannot listen on ${host}: ${code === "EADDRNOTAVAIL" ? "not an address of this machine" : "the name does not resolve"}; pass --host 127.0.0.1 (this machine only) or --host 0.0.0.0 (every interface)`,
      );
    default:
      return error instanceof Error ? new CliError("listen", `[serve] cannot listen on ${host} port ${port}: ${error.message}`) : error;
  }
}

/** A context length above a model's own is refused before anything loads (the flag or the config field named). */
async function checkContexts(models: readonly ServedModelConfig[]): Promise<void> {
  for (const m of models) {
    if (m.contextLength !== undefined) {
      const own = await modelContextLength(m.path);
      if (m.contextLength > own) {
        throw new CliError("bad-flag", `[serve] model '${m.name}': context ${m.contextLength} (-c/--ctx, or contextLength in the config) is more than the model's context of ${own} tokens; pass -c ${own} or less`);
      }
    }
  }
}

export function addServeCommand(program: Command, io: CliIo): void {
  const ctx = contextFlag();
  natsOptions(
    program
    .command("serve")
    .description("serve models over an OpenAI-compatible HTTP API (docs/serving.md)")
    .option("-m, --model <path>", "a GGUF file or Hugging Face folder (default: the packaged models/barbell-kjv.gguf)")
    .option("--name <id>", "the model id clients send; also --alias (default: the file name)")
    .addOption(aliasOption("--alias <id>", new Option("--name <id>")))
    .option("--config <file>", "a JSON config with several models and cascades (default: none)")
    .option("--demo", "serve a generated model with RANDOM weights")
    .option("--port <n>", "TCP port, 0..65535 (0: any free port)", intInRange(0, 65_535), 8080)
    .option("--host <addr>", "address to bind; 0.0.0.0 exposes the server to the network", "127.0.0.1")
    .option("--backend <list>", "backends, preferred first (e.g. native-cpu,js) (default: BARBELL_BACKENDS, else every one that works here)", backendList)
    .addOption(threadsFlag())
    .option("--parallel <n>", "requests decoded together per model (default 1)", intAtLeast(1))
    .option("--queue <n>", "requests waiting beyond --parallel before 429 (default 16)", intAtLeast(0))
    .addOption(ctx)
    .addOption(aliasOption("--ctx-size <n>", ctx))
    .addOption(new Option("--head <type>", `${HEAD_HELP} (default: auto)`).choices(HEAD_POLICIES))
    .addOption(kvTypeFlag())
    .addOption(new Option("--isolation <kind>", "where each model runs").choices(["process", "in-process"]).default("process"))
    .option("--prompt-cache <MiB>", `KV prefix cache per model for prompts that repeat an earlier one's start, 0..${MAX_PROMPT_CACHE_MIB} (0: off) (default: ${DEFAULT_PROMPT_CACHE_MIB})`, intInRange(0, MAX_PROMPT_CACHE_MIB))
    .option("--api-key <key...>", "require one of these Bearer keys on /v1/* (or BARBELL_API_KEYS, comma-separated) (default: none, no authentication)")
    .option("--cors <origin...>", "allow these browser origins ('*' for any) (default: none, CORS off)")
    .option("--body-limit <bytes>", "largest request body (default: 1048576)", intAtLeast(1))
    .option("--timeout <ms>", "longest a generation request may run (default: 300000)", intAtLeast(1))
    .option("--shutdown-timeout <ms>", "on SIGTERM, how long in-flight requests may finish", intAtLeast(0), 10_000)
    .option("--allowed-host <name...>", "Host header names accepted besides IP literals and localhost ('*': any); a loopback server refuses others (DNS rebinding) (default: none)")
    .option("--header-timeout <ms>", `most time a client may take to send its headers (default ${DEFAULT_HEADERS_TIMEOUT_MS})`, intInRange(1, MAX_LIMIT_TIMEOUT_MS))
    .option("--body-timeout <ms>", `most time a client may take to send the whole request (default ${DEFAULT_BODY_TIMEOUT_MS})`, intInRange(1, MAX_LIMIT_TIMEOUT_MS))
    .option("--idle-timeout <ms>", `how long an idle keep-alive connection stays open (default ${DEFAULT_IDLE_TIMEOUT_MS})`, intInRange(1, MAX_LIMIT_TIMEOUT_MS))
    .option("--max-connections <n>", `most open connections (default ${DEFAULT_MAX_CONNECTIONS})`, intInRange(1, MAX_LIMIT_CONNECTIONS))
    .option("--max-connections-per-ip <n>", `most open connections from one address (default ${DEFAULT_MAX_CONNECTIONS_PER_IP})`, intInRange(1, MAX_LIMIT_CONNECTIONS))
    .option("--max-wait <ms>", "refuse (429) a request whose predicted wait for a decode slot exceeds this (default: no bound by time)", intInRange(1, MAX_WAIT_LIMIT_MS))
    .option("--public-health", "show /health/ready's per-model details (pids, failures) to every caller, not only to callers with an API key")
    .addOption(new Option("--log-format <format>", "one line per request on stdout: method, path, status, model, prompt/completion tokens, ms").choices(["text", "json"]).default("text"))
    .option("--quiet", "no request log lines (startup lines and errors are still written)")
    .option("--ui", "also serve the browser demo page at /ui/ (public, even with --api-key: the model runs in the browser; docs/webgpu.md)"),
    "to serve the models that workers advertise (barbell worker; docs/scale-out.md); no local model unless -m, --config or --demo (default: none)",
  ).action(async (flags: ServeFlags) => {
      const sources = [flags.model !== undefined, flags.config !== undefined, flags.demo === true].filter(Boolean).length;
      if (sources > 1) {
        throw new ServeError("bad-config", "[serve] give at most one of -m <model>, --config <file> or --demo (none: the default model)");
      }
      // Neither -m, --config nor --demo: the packaged default model (what `npm start` serves).
      const gateway = flags.nats !== undefined; // with no local model: only the advertised ones
      const modelPath = sources === 0 ? (gateway ? undefined : modelOrDefault(undefined, io.err)) : flags.model;
      const file = flags.config === undefined ? undefined : await readServeConfig(flags.config);
      const demo = flags.demo === true ? await demoModel() : undefined;
      const perModel = hostOptions(flags);
      const models: ServedModelConfig[] =
        file !== undefined
          ? file.models.map((m) => ({ ...perModel, ...m }))
          : demo !== undefined
            ? [{ name: flags.name ?? "barbell-demo", path: demo.path, randomWeights: true, ...perModel }]
            : modelPath === undefined
              ? []
              : [{ name: servedName(flags, modelPath), path: modelPath, ...perModel }];
      const envKeys = (process.env["BARBELL_API_KEYS"] ?? "").split(",").filter((k) => k !== "");
      const apiKeys = [...(flags.apiKey ?? []), ...(file?.apiKeys ?? []), ...envKeys];
      // Command-line flags are defaults; the config file's fields win (docs/serving.md, "Config file").
      const bodyLimit = file?.bodyLimit ?? flags.bodyLimit;
      const requestTimeoutMs = file?.requestTimeoutMs ?? flags.timeout;
      const maxWaitMs = file?.maxWaitMs ?? flags.maxWait;
      const options: ServerOptions = {
        models,
        ...(file?.cascades === undefined ? {} : { cascades: file.cascades }),
        apiKeys,
        corsOrigins: file?.corsOrigins ?? flags.cors ?? [],
        ...(bodyLimit === undefined ? {} : { bodyLimit }),
        ...(requestTimeoutMs === undefined ? {} : { requestTimeoutMs }),
        ...(maxWaitMs === undefined ? {} : { maxWaitMs }),
        publicHealth: file?.publicHealth ?? flags.publicHealth === true,
        allowedHosts: file?.allowedHosts ?? flags.allowedHost ?? [],
        limits: {
          ...definedOnly({
            headersTimeoutMs: flags.headerTimeout,
            bodyTimeoutMs: flags.bodyTimeout,
            idleTimeoutMs: flags.idleTimeout,
            maxConnections: flags.maxConnections,
            maxConnectionsPerIp: flags.maxConnectionsPerIp,
          }),
          ...file?.limits,
        },
        log: (line) => io.err(`${line}\n`),
        ...(flags.quiet === true ? {} : { requestLog: (entry: RequestLogEntry) => io.out(`${formatRequestLog(entry, flags.logFormat)}\n`) }),
        ...(flags.ui === true ? { ui: demoPageOptions() } : {}),
      };
      let server;
      const nc = gateway ? await connectWithFlags(flags, "barbell serve") : undefined;
      try {
        await checkContexts(models);
        const remote = nc === undefined ? undefined : await NatsGateway.start(nc, { prefix: flags.natsPrefix, log: (line) => io.err(`${line}\n`) });
        const batches = nc === undefined ? undefined : new BatchStore(nc, { prefix: flags.natsPrefix, log: (line) => io.err(`${line}\n`), serves: (model) => remote?.find(model) !== undefined });
        server = await createServer({ ...options, ...(remote === undefined ? {} : { remote }), ...(batches === undefined ? {} : { batches }) });
        void batches?.resume().catch((e: unknown) => io.err(`barbell serve: [batch] ${e instanceof Error ? e.message : String(e)}\n`)); // unfinished batches move on
        remote?.metrics.register(server.metrics.registry); // the gateway's fault and refused-frame counters on /metrics
      } catch (e) {
        await demo?.remove();
        await nc?.close();
        throw e;
      }
      const host = file?.host ?? flags.host;
      const port = file?.port ?? flags.port;
      let url: string;
      try {
        url = await server.listen(port, host);
      } catch (e) {
        // Nothing listens: stop the model workers (child processes) so the command ends, with one clear line.
        await server.shutdown(0);
        await demo?.remove();
        await nc?.close();
        throw listenError(e, host, port, file?.port === undefined ? undefined : flags.config);
      }
      for (const s of server.served) {
        io.out(`barbell serve: model '${s.name}' (${s.kind}, ${s.info.arch}, context ${s.info.contextLength}, parallel ${s.admission.parallel}, queue ${s.admission.queue})\n`);
        if (s.randomWeights) {
          io.out(`barbell serve: NOTE '${s.name}' is a generated model with RANDOM weights: its text is meaningless (a demo of the server, not of a language model)\n`);
        }
      }
      if (apiKeys.length > 0) {
        io.out(`barbell serve: API keys required on /v1/*\n`);
      }
      if (nc !== undefined) {
        io.out(`barbell serve: gateway on NATS ${(flags.nats ?? []).join(", ")}, prefix '${flags.natsPrefix}': serving the models that workers advertise\n`);
      }
      io.out(`barbell serve: listening on ${url}\n`);
      if (flags.ui === true) {
        io.out(`barbell serve: demo page at ${url}/ui/ (public: no API key needed)\n`);
      }
      await untilStopped(io);
      io.out(`barbell serve: shutting down (in-flight requests get ${flags.shutdownTimeout} ms)\n`);
      await server.shutdown(flags.shutdownTimeout).catch((e: unknown) => {
        io.err(`barbell serve: shutdown failed: ${e instanceof Error ? e.message : String(e)}\n`);
      });
      await demo?.remove();
      await nc?.drain().catch(() => undefined);
      io.out("barbell serve: stopped\n");
    });
}
