/**
 * The OpenAI-compatible HTTP server (fastify) over model actors: endpoints, admission (429), timeouts,
 * disconnects, API keys, CORS, metrics and graceful shutdown. docs/serving.md describes the behaviour.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { ServerResponse } from "node:http";
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { createActorSystem, type ActorSystem } from "../../actors/index.js";
import { ApiError } from "./errors.js";
import { Aborted, runJson, runStream, SseWriter, type AbortReason, type RunContext } from "./generate.js";
import { createMetrics, type ServerMetrics } from "./metrics.js";
import { spawnServed, type CascadeConfig, type Served, type ServedModelConfig } from "./served.js";
import { checkChatRequest, checkCompletionRequest, requestedModel } from "./validate.js";

export interface ServerOptions {
  readonly models: readonly ServedModelConfig[];
  readonly cascades?: readonly CascadeConfig[];
  /** Accepted Bearer keys for /v1/*; none (default) means no authentication. */
  readonly apiKeys?: readonly string[];
  /** Origins allowed to call from a browser ("*" for any); default none (CORS off). */
  readonly corsOrigins?: readonly string[];
  /** Largest request body in bytes. Default 1 MiB. */
  readonly bodyLimit?: number;
  /** Longest a generation request may run, in ms. Default 300 000. */
  readonly requestTimeoutMs?: number;
  /** Seconds a 429 tells the client to wait. Default 1. */
  readonly retryAfterSeconds?: number;
  /** Where unexpected errors are reported (never sent to clients). Default stderr. */
  readonly log?: (line: string) => void;
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

function digest(key: string): Buffer {
  return createHash("sha256").update(key).digest();
}

function sendRaw(raw: ServerResponse, error: ApiError, headers: Record<string, string> = {}): void {
  if (!raw.headersSent && !raw.destroyed) {
    raw.writeHead(error.status, { ...headers, "content-type": "application/json; charset=utf-8" });
  }
  raw.end(JSON.stringify(error.body()));
}

/** Creates the server and spawns its model actors (each model's header is read here, so a bad path fails now). */
export async function createServer(options: ServerOptions): Promise<BarbellServer> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const system: ActorSystem = createActorSystem();
  let served: Served[];
  try {
    served = await spawnServed(system, options.models, options.cascades ?? []);
  } catch (error) {
    await system.stop();
    throw error;
  }
  const byName = new Map(served.map((s) => [s.name, s]));
  const metrics = createMetrics(async () => {
    const out = new Map<string, number>();
    for (const s of served) {
      out.set(s.name, (await s.readiness()).restarts);
    }
    return out;
  });
  const keys = (options.apiKeys ?? []).map(digest);
  const origins = options.corsOrigins ?? [];
  const timeoutMs = options.requestTimeoutMs ?? 300_000;
  const retryAfter = String(options.retryAfterSeconds ?? 1);
  const inFlight = new Set<AbortController>();
  let drained: (() => void) | undefined;
  let draining = false;

  const app = Fastify({ bodyLimit: options.bodyLimit ?? 1024 * 1024, return503OnClosing: false, logger: false });

  app.addHook("onRequest", async (request, reply) => {
    const origin = request.headers.origin;
    if (origin !== undefined && (origins.includes("*") || origins.includes(origin))) {
      reply.raw.setHeader("access-control-allow-origin", origins.includes("*") ? "*" : origin);
      reply.raw.setHeader("vary", "origin");
      if (request.method === "OPTIONS") {
        reply.raw.setHeader("access-control-allow-methods", "GET, POST, OPTIONS");
        reply.raw.setHeader("access-control-allow-headers", "authorization, content-type");
        reply.raw.setHeader("access-control-max-age", "600");
        return reply.code(204).send();
      }
    }
    if (draining) {
      reply.header("connection", "close");
      throw new ApiError(503, "the server is shutting down", "server_error", null, "shutting_down");
    }
    if (keys.length > 0 && request.url.startsWith("/v1/")) {
      const match = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? "");
      const given = match?.[1] === undefined ? undefined : digest(match[1]);
      if (given === undefined || !keys.some((k) => timingSafeEqual(k, given))) {
        throw new ApiError(401, "a valid API key is needed (Authorization: Bearer <key>)", "authentication_error", null, "invalid_api_key");
      }
    }
    return undefined;
  });

  app.addHook("onResponse", async (request, reply) => {
    const model = (request.body as { model?: unknown } | undefined)?.model;
    metrics.requests.inc({ model: typeof model === "string" && byName.has(model) ? model : "", endpoint: ENDPOINT_LABEL(request), status: String(reply.raw.statusCode) });
  });

  app.setErrorHandler(async (error: FastifyError | ApiError, _request, reply) => {
    let api: ApiError;
    if (error instanceof ApiError) {
      api = error;
    } else if (typeof error.statusCode === "number" && error.statusCode >= 400 && error.statusCode < 500) {
      // fastify's own refusals: malformed JSON, body too large, wrong content type.
      api = new ApiError(error.statusCode, error.message, "invalid_request_error", null, error.code ?? null);
    } else {
      log(`barbell serve: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      api = new ApiError(500, "internal server error", "server_error");
    }
    if (api.status === 429) {
      reply.header("retry-after", retryAfter);
    }
    return reply.code(api.status).send(api.body());
  });

  app.setNotFoundHandler(async (request, reply) =>
    reply.code(404).send(new ApiError(404, `no route ${request.method} ${request.url.split("?")[0] ?? ""}`, "invalid_request_error", null, "not_found").body()),
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

  app.get("/v1/models", async () => ({ object: "list", data: served.map(modelObject) }));
  app.get<{ Params: { id: string } }>("/v1/models/:id", async (request) => {
    const s = byName.get(request.params.id);
    if (s === undefined) {
      throw new ApiError(404, `model '${request.params.id}' does not exist`, "invalid_request_error", "model", "model_not_found");
    }
    return modelObject(s);
  });

  app.get("/health/live", async () => ({ status: "ok" }));
  app.get("/health/ready", async (_request, reply) => {
    const models: Record<string, unknown> = {};
    let ready = !draining && served.length > 0;
    let degraded = false;
    for (const s of served) {
      const r = await s.readiness();
      ready &&= r.ready;
      degraded ||= r.degraded;
      models[s.name] = { ready: r.ready, degraded: r.degraded, in_flight: s.admission.admitted, capacity: s.admission.capacity, ...r.detail };
    }
    const status = draining ? "draining" : !ready ? "not_ready" : degraded ? "degraded" : "ready";
    return reply.code(ready ? 200 : 503).send({ status, models });
  });

  app.get("/metrics", async (_request, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));

  const generation = (kind: "chat" | "completion") => async (request: FastifyRequest, reply: FastifyReply) => {
    const name = requestedModel(request.body);
    const s = byName.get(name);
    if (s === undefined) {
      throw new ApiError(404, `model '${name}' does not exist (see GET /v1/models)`, "invalid_request_error", "model", "model_not_found");
    }
    const params = kind === "chat" ? checkChatRequest(request.body, s.info.contextLength) : checkCompletionRequest(request.body, s.info.contextLength, s.info.vocabSize);
    const release = s.admission.tryAcquire();
    if (release === undefined) {
      metrics.rejected.inc({ model: s.name });
      throw new ApiError(429, `model '${s.name}' has ${s.admission.capacity} requests running or queued; retry later`, "rate_limit_error", null, "rate_limit_exceeded");
    }
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
    const ctx: RunContext = { served: s, metrics, signal: controller.signal, timeoutMs, extraSlots };
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
    if (!params.stream) {
      try {
        return await runJson(ctx, params, admittedAt);
      } catch (error) {
        throw error instanceof Aborted ? (error.error ?? new ApiError(499, "the client closed the request", "invalid_request_error", null, "client_closed")) : error;
      } finally {
        finish();
      }
    }
    reply.hijack();
    const sse = new SseWriter(reply.raw);
    try {
      await runStream(ctx, params, admittedAt, sse);
    } catch (error) {
      const api = error instanceof Aborted ? error.error : error instanceof ApiError ? error : undefined;
      if (api === undefined && !(error instanceof Aborted)) {
        log(`barbell serve: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      }
      const shown = api ?? new ApiError(error instanceof Aborted ? 499 : 500, error instanceof Aborted ? "the client closed the request" : "internal server error", "server_error");
      sendRaw(reply.raw, shown, shown.status === 429 ? { "retry-after": retryAfter } : {});
    } finally {
      finish();
      if (!reply.raw.writableEnded) {
        reply.raw.end();
      }
    }
    return reply;
  };

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
        await system.stop();
      })();
      return stopped;
    },
  };
}
