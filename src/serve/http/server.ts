/**
 * The OpenAI-compatible HTTP server (fastify) over model actors: endpoints, admission (429), timeouts,
 * disconnects, API keys, CORS, metrics and graceful shutdown. docs/serving.md describes the behaviour.
 */
import type { ServerResponse } from "node:http";
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { createActorSystem, type ActorSystem } from "../../actors/index.js";
import { registerBatches, type BatchStore } from "./batches.js";
import { connectionLimits, limitedServerFactory, type ConnectionLimits } from "./connections.js";
import { ApiError } from "./errors.js";
import { answerClientError, frameworkError, Guard, PUBLIC, shownUrl } from "./guard.js";
import { Aborted, preparePrompt, runJson, runStream, SseWriter, type AbortReason, type RunContext } from "./generate.js";
import { createMetrics, type ServerMetrics } from "./metrics.js";
import { PromptTokenizer } from "./prompts.js";
import { spawnServed, type CascadeConfig, type Served, type ServedModelConfig } from "./served.js";
import { loadUiAssets, registerUi, type UiOptions } from "./ui.js";
import { checkChatRequest, checkCompletionRequest, requestedModel } from "./validate.js";

export interface ServerOptions {
  readonly models: readonly ServedModelConfig[];
  readonly cascades?: readonly CascadeConfig[];
  /** Accepted Bearer keys for /v1/*; none (default) means no authentication. */
  readonly apiKeys?: readonly string[];
  /** Origins allowed to call from a browser ("*" for any); default none (CORS off). */
  readonly corsOrigins?: readonly string[];
  /**
   * Host names accepted in the Host header besides IP literals and localhost; a server bound to loopback
   * refuses any other name (DNS rebinding). "*" turns the check off. See {@link GuardOptions}.
   */
  readonly allowedHosts?: readonly string[];
  /** Header, body and idle timeouts and connection caps (defaults in connections.ts). */
  readonly limits?: ConnectionLimits;
  /** Largest request body in bytes. Default 1 MiB. */
  readonly bodyLimit?: number;
  /** Longest a generation request may run, in ms. Default 300 000. */
  readonly requestTimeoutMs?: number;
  /** Seconds a 429 tells the client to wait. Default 1. */
  readonly retryAfterSeconds?: number;
  /**
   * Admission by predicted wait: a request whose predicted wait for a decode slot exceeds this many ms gets 429
   * at once, with Retry-After the predicted wait in seconds, rounded up (admission.ts). Default none.
   */
  readonly maxWaitMs?: number;
  /** Show /health/ready's per-model details (pids, failures, counters) to every caller, not only authorised ones. */
  readonly publicHealth?: boolean;
  /** Where unexpected errors are reported (never sent to clients). Default stderr. */
  readonly log?: (line: string) => void;
  /** Called once per request when its connection is done with it (the CLI's request log lines). Default: none. */
  readonly requestLog?: (entry: RequestLogEntry) => void;
  /** Mount the browser demo page at /ui/ (public; ui.ts). Default: off. */
  readonly ui?: UiOptions;
  /** Models served from elsewhere besides `models` (a NATS gateway, src/serve/nats); closed at shutdown. */
  readonly remote?: RemoteModels;
  /** OpenAI's Files and Batch API over JetStream (a NATS gateway; docs/batch.md). */
  readonly batches?: BatchStore;
}

/** Models that come and go (served by remote workers): looked up at every request. */
export interface RemoteModels {
  list(): readonly Served[];
  find(name: string): Served | undefined;
  /** The prompt tokenizer of a listed model. */
  prompts(name: string): PromptTokenizer | undefined;
  close(): Promise<void>;
}

/** One request as the request log sees it. */
export interface RequestLogEntry {
  readonly method: string;
  /** The path without the query string (shortened when long). */
  readonly path: string;
  /** The status sent; 499 when the client closed the connection before the answer was complete. */
  readonly status: number;
  /** The served model it named, if it names one that exists. */
  readonly model: string | undefined;
  /** Generation requests that ran: the usage they report (undefined for others). */
  readonly promptTokens: number | undefined;
  readonly completionTokens: number | undefined;
  /** From the request's arrival to the end of its answer. */
  readonly ms: number;
}

export interface BarbellServer {
  readonly app: FastifyInstance;
  readonly served: readonly Served[];
  readonly metrics: ServerMetrics;
  /** Starts listening; returns the base URL (port 0 picks a free port). Default host 127.0.0.1. */
  listen(port: number, host?: string): Promise<string>;
  /**
   * Stops accepting requests, lets in-flight ones finish until `deadlineMs`, cancels the rest (their clients get
   * 503 `shutting_down` or a stream error event), then closes the listener and stops the model actors.
   */
  shutdown(deadlineMs?: number): Promise<void>;
}

const ENDPOINT_LABEL = (request: FastifyRequest): string => request.routeOptions.url ?? "unmatched";

function sendRaw(raw: ServerResponse, error: ApiError, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(error.body());
  if (!raw.headersSent && !raw.destroyed) {
    raw.writeHead(error.status, { ...headers, "content-type": "application/json; charset=utf-8", "content-length": String(Buffer.byteLength(body)) });
  }
  raw.end(body);
}

/** Creates the server and spawns its model actors (each model's header is read here, so a bad path fails now). */
export async function createServer(options: ServerOptions): Promise<BarbellServer> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  // The demo page's files first: a UiError (not built) before any model starts.
  const uiAssets = options.ui === undefined ? undefined : await loadUiAssets();
  const system: ActorSystem = createActorSystem();
  let served: Served[];
  try {
    served = await spawnServed(system, options.models, options.cascades ?? [], { log, ...(options.maxWaitMs === undefined ? {} : { maxWaitMs: options.maxWaitMs }) });
  } catch (error) {
    await system.stop();
    throw error;
  }
  const local = new Map(served.map((s) => [s.name, s]));
  const remote = options.remote;
  const byName = { get: (name: string): Served | undefined => local.get(name) ?? remote?.find(name), has: (name: string): boolean => byName.get(name) !== undefined };
  const allServed = (): readonly Served[] => (remote === undefined ? served : [...served, ...remote.list()]);
  // Each served name's prompt tokenizer (a cascade tokenizes with its first rung's vocabulary).
  const modelPath = new Map(options.models.map((m) => [m.name, m.path]));
  const firstRung = new Map((options.cascades ?? []).map((c) => [c.name, c.rungs[0] ?? ""]));
  const prompts = new Map(served.map((s) => [s.name, new PromptTokenizer(modelPath.get(s.name) ?? modelPath.get(firstRung.get(s.name) ?? "") ?? "", s.info, log)]));
  const metrics = createMetrics(async () => new Map(await Promise.all(allServed().map(async (s) => [s.name, await s.readiness()] as const))));
  // Host, CORS and keys; `guard.isAuthorised(request)` says whether a caller may see details (health).
  const guard = new Guard(options);
  const timeoutMs = options.requestTimeoutMs ?? 300_000;
  const retryAfter = String(options.retryAfterSeconds ?? 1);
  const inFlight = new Set<AbortController>();
  let drained: (() => void) | undefined;
  let draining = false;

  const app = Fastify({
    bodyLimit: options.bodyLimit ?? 1024 * 1024,
    return503OnClosing: false,
    logger: false,
    serverFactory: limitedServerFactory(connectionLimits(options.limits)),
    clientErrorHandler: answerClientError,
    // Bad percent-escapes and over-long path parameters, refused before routing: in OpenAI's shape too.
    frameworkErrors: (error, _request, reply) => {
      const api = frameworkError(error) ?? new ApiError(400, "the request could not be read", "invalid_request_error", null, "invalid_request");
      sendRaw(reply.raw, api);
    },
  });

  // The request log: one entry per request, when its response ends or its connection closes ("close" comes in both cases).
  const tallies = new WeakMap<FastifyRequest, { prompt: number; completion: number }>();
  const requestLog = options.requestLog;
  if (requestLog !== undefined) {
    app.addHook("onRequest", async (request, reply) => {
      const start = performance.now();
      reply.raw.once("close", () => {
        const model = (request.body as { model?: unknown } | undefined)?.model;
        const tally = tallies.get(request);
        requestLog({
          method: request.method,
          path: shownUrl(request.url),
          status: reply.raw.writableFinished ? reply.raw.statusCode : 499,
          model: typeof model === "string" && byName.has(model) ? model : undefined,
          promptTokens: tally?.prompt,
          completionTokens: tally?.completion,
          ms: performance.now() - start,
        });
      });
    });
  }

  app.addHook("onRequest", async (request, reply) => {
    if (guard.check(request, reply)) {
      return reply; // a CORS preflight, answered
    }
    if (draining) {
      reply.header("connection", "close");
      throw new ApiError(503, "the server is shutting down", "server_error", null, "shutting_down");
    }
    return undefined;
  });

  app.addHook("onResponse", async (request, reply) => {
    const model = (request.body as { model?: unknown } | undefined)?.model;
    metrics.requests.inc({ model: typeof model === "string" && byName.has(model) ? model : "", endpoint: ENDPOINT_LABEL(request), status: String(reply.raw.statusCode) });
  });

  app.setErrorHandler(async (error: FastifyError | ApiError, _request, reply) => {
    // fastify's own refusals (malformed JSON, body too large, wrong content type) in our words and codes.
    let api = error instanceof ApiError ? error : frameworkError(error);
    if (api === undefined) {
      log(`barbell serve: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      api = new ApiError(500, "internal server error", "server_error");
    }
    if (api.status === 429) {
      reply.header("retry-after", retryAfter);
    }
    return reply.code(api.status).send(api.body());
  });

  app.setNotFoundHandler(async (request, reply) =>
    reply.code(404).send(new ApiError(404, `no route ${request.method} ${shownUrl(request.url)}`, "invalid_request_error", null, "not_found").body()),
  );

  const modelObject = (s: Served): Record<string, unknown> => ({
    id: s.name,
    object: "model",
    created: 0,
    owned_by: "barbell",
    metadata: {
      kind: s.kind,
      arch: s.info.arch,
      context_length: s.info.contextLength,
      vocab_size: s.info.vocabSize,
      random_weights: s.randomWeights,
      ...(s.randomWeights ? { note: "a generated model with random weights: its text is meaningless" } : {}),
    },
  });

  app.get("/v1/models", async () => ({ object: "list", data: allServed().map(modelObject) }));
  app.get<{ Params: { id: string } }>("/v1/models/:id", async (request) => {
    const s = byName.get(request.params.id);
    if (s === undefined) {
      throw new ApiError(404, `model '${request.params.id}' does not exist`, "invalid_request_error", "model", "model_not_found");
    }
    return modelObject(s);
  });

  app.get("/health/live", { config: PUBLIC }, async () => ({ status: "ok" }));
  // Details (pids, failures, counters) only for authorised callers: with API keys, a valid one; without keys,
  // nobody is authenticated, so only `publicHealth` shows them. Others get the status alone.
  const healthDetails = (request: FastifyRequest): boolean => options.publicHealth === true || ((options.apiKeys ?? []).length > 0 && guard.isAuthorised(request));
  app.get("/health/ready", { config: PUBLIC }, async (request, reply) => {
    const models: Record<string, unknown> = {};
    let ready = !draining && allServed().length > 0;
    let degraded = false;
    for (const s of allServed()) {
      const r = await s.readiness();
      ready &&= r.ready;
      degraded ||= r.degraded;
      models[s.name] = { ready: r.ready, degraded: r.degraded, in_flight: s.admission.admitted, capacity: s.admission.capacity, ...r.detail };
    }
    const status = draining ? "draining" : !ready ? "not_ready" : degraded ? "degraded" : "ready";
    return reply.code(ready ? 200 : 503).send(healthDetails(request) ? { status, models } : { status });
  });

  app.get("/metrics", { config: PUBLIC }, async (_request, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));

  const generation = (kind: "chat" | "completion") => async (request: FastifyRequest, reply: FastifyReply) => {
    const name = requestedModel(request.body);
    const s = byName.get(name);
    if (s === undefined) {
      throw new ApiError(404, `model '${name}' does not exist (see GET /v1/models)`, "invalid_request_error", "model", "model_not_found");
    }
    const params = kind === "chat" ? checkChatRequest(request.body, s.info.contextLength) : checkCompletionRequest(request.body, s.info.contextLength, s.info.vocabSize);
    const tokenizer = prompts.get(s.name) ?? remote?.prompts(s.name);
    if (tokenizer === undefined) {
      throw new ApiError(503, `model '${name}' has no worker now; retry later`, "server_error", null, "unavailable"); // a remote model that just left
    }
    const prompt = await preparePrompt(s, params, tokenizer); // a 400 for a prompt that does not fit, before admission
    const admitted = s.admission.admit({ promptTokens: prompt.ids.length, maxTokens: prompt.maxTokens, choices: params.n });
    if (!admitted.ok) {
      metrics.rejected.inc({ model: s.name });
      const full = admitted.reason === "full";
      const why = full ? `has ${s.admission.capacity} requests running or queued` : `would make this request wait about ${Math.ceil(admitted.waitMs)} ms (more than ${s.admission.maxWaitMs} ms)`;
      const refusal = new ApiError(429, `model '${s.name}' ${why}; retry later`, "rate_limit_error", null, "rate_limit_exceeded");
      const after = full ? retryAfter : String(Math.max(1, Math.ceil(admitted.waitMs / 1000)));
      return reply.code(429).header("retry-after", after).send(refusal.body());
    }
    const release = admitted.release;
    const admittedAt = performance.now();
    const controller = new AbortController();
    const abort = (reason: AbortReason): void => controller.abort(reason);
    inFlight.add(controller);
    metrics.inFlight.inc({ model: s.name });
    const timer = setTimeout(() => abort("timeout"), timeoutMs);
    const onClose = (): void => {
      if (!reply.raw.writableFinished) {
        abort("disconnect");
      }
    };
    reply.raw.on("close", onClose);
    const extras: (() => void)[] = [];
    const extraSlots = (max: number): number => {
      for (let i = 0; i < max; i++) {
        const more = s.admission.tryAcquire();
        if (more === undefined) {
          break;
        }
        extras.push(more);
      }
      return extras.length;
    };
    const tally = { prompt: prompt.ids.length, completion: 0 };
    tallies.set(request, tally);
    const ctx: RunContext = { served: s, metrics, signal: controller.signal, timeoutMs, prompt, extraSlots, tally };
    const finish = (): void => {
      clearTimeout(timer);
      reply.raw.off("close", onClose);
      if (controller.signal.aborted && controller.signal.reason !== "timeout") {
        metrics.cancelled.inc({ model: s.name, reason: String(controller.signal.reason) });
      } else if (controller.signal.aborted) {
        metrics.cancelled.inc({ model: s.name, reason: "timeout" });
      }
      release();
      extras.splice(0).forEach((more) => more());
      metrics.inFlight.dec({ model: s.name });
      // Shutdown waits until the answer is written, not just computed.
      const settle = (): void => {
        inFlight.delete(controller);
        if (inFlight.size === 0) {
          drained?.();
        }
      };
      if (reply.raw.writableFinished || reply.raw.destroyed) {
        settle();
      } else {
        reply.raw.once("finish", settle);
        reply.raw.once("close", settle);
      }
    };
    // An error before any output keeps its status: the client closed (499), the timeout or shutdown (their
    // errors), the model's own refusal; anything else is internal (the error handler logs it, 500).
    const beforeOutput = (error: unknown): unknown =>
      error instanceof Aborted ? (error.error ?? new ApiError(499, "the client closed the request", "invalid_request_error", null, "client_closed")) : error;
    if (!params.stream) {
      try {
        return await runJson(ctx, params, admittedAt);
      } catch (error) {
        throw beforeOutput(error);
      } finally {
        finish();
      }
    }
    // Streamed: fastify sends the events' byte stream once the first event exists (docs/architecture.md, "One of each").
    const sse = new SseWriter(controller.signal);
    const run = runStream(ctx, params, admittedAt, sse).finally(() => {
      finish();
      sse.end();
    });
    try {
      await Promise.race([sse.firstEvent(), run]);
    } catch (error) {
      throw beforeOutput(error);
    }
    return reply
      .header("content-type", "text/event-stream; charset=utf-8")
      .header("cache-control", "no-cache")
      .header("x-accel-buffering", "no")
      .send(sse.body);
  };

  if (options.ui !== undefined && uiAssets !== undefined) {
    registerUi(app, options.ui, uiAssets);
  }

  if (options.batches !== undefined) {
    registerBatches(app, options.batches, metrics.registry, log);
  }
  app.post("/v1/chat/completions", generation("chat"));
  app.post("/v1/completions", generation("completion"));

  const waitForDrain = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      if (inFlight.size === 0) {
        resolve();
        return;
      }
      const timer = setTimeout(resolve, ms);
      drained = () => {
        clearTimeout(timer);
        resolve();
      };
    });

  let stopped: Promise<void> | undefined;
  return {
    app,
    served,
    metrics,
    async listen(port, host = "127.0.0.1") {
      guard.bound(host);
      return app.listen({ port, host });
    },
    shutdown(deadlineMs = 10_000) {
      stopped ??= (async () => {
        draining = true;
        const closing = app.close();
        await waitForDrain(deadlineMs);
        for (const c of inFlight) {
          c.abort("shutdown");
        }
        await waitForDrain(5_000);
        app.server.closeAllConnections();
        await closing;
        await Promise.all([...prompts.values()].map((p) => p.close()));
        await remote?.close();
        await system.stop();
      })();
      return stopped;
    },
  };
}
