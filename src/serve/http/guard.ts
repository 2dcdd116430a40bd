/**
 * Who may reach what, checked before any route runs: the Host header (DNS rebinding), CORS, API keys by the
 * matched route (deny by default), and answers in OpenAI's error shape for what fastify and Node refuse before
 * a route runs (bad URLs, over-long parameters, malformed HTTP, header and body timeouts).
 *
 * Keys are checked against the route the router matched, never the raw URL: the router decodes
 * percent-escapes and accepts absolute-form targets (`POST /%761/completions`, `POST http://host/v1/...`), so a
 * prefix test on `request.url` let those through unauthenticated. A route is open only if it says so
 * (`config: PUBLIC`); unmatched URLs are refused like protected ones, so they reveal nothing either.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { isIP } from "node:net";
import type { Socket } from "node:net";
import type { FastifyReply, FastifyRequest } from "fastify";
import { ApiError } from "./errors.js";

/** Route config of the routes anyone may call (health probes, metrics scrapers). */
export const PUBLIC = { public: true } as const;

export interface GuardOptions {
  /** Accepted Bearer keys; none means no authentication. */
  readonly apiKeys?: readonly string[];
  /** Origins allowed to call from a browser ("*" for any); none means CORS off. */
  readonly corsOrigins?: readonly string[];
  /**
   * Host names (the Host header, without port) accepted besides IP literals and `localhost`. When the server
   * is bound to a loopback address, any other name is refused (403), as Jupyter does; elsewhere the check
   * applies only when names are given. "*" turns the check off.
   */
  readonly allowedHosts?: readonly string[];
}

function digest(key: string): Buffer {
  return createHash("sha256").update(key).digest();
}

/** Whether an address the server binds to is loopback only. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** The host name of a Host header value ("name:port", "[v6]:port"), lower-cased, without a trailing dot. */
function hostName(header: string): string {
  const h = header.trim().toLowerCase();
  const name = h.startsWith("[") ? h.slice(1, h.indexOf("]") < 0 ? undefined : h.indexOf("]")) : h.replace(/:\d*$/, "");
  return name.endsWith(".") ? name.slice(0, -1) : name;
}

/** Longest part of a client's URL echoed back in an error message. */
const MAX_ECHOED_URL = 200;

/** A URL as shown in an error message: without its query, and cut short. */
export function shownUrl(url: string): string {
  const path = url.split("?")[0] ?? "";
  return path.length > MAX_ECHOED_URL ? `${path.slice(0, MAX_ECHOED_URL)}…` : path;
}

export class Guard {
  readonly #keys: readonly Buffer[];
  readonly #origins: readonly string[];
  readonly #allowed: ReadonlySet<string>;
  #checkHost: boolean;

  constructor(options: GuardOptions) {
    this.#keys = (options.apiKeys ?? []).map(digest);
    this.#origins = options.corsOrigins ?? [];
    this.#allowed = new Set((options.allowedHosts ?? []).map(hostName));
    this.#checkHost = this.#allowed.size > 0 && !this.#allowed.has("*");
  }

  /** Called once the bind address is known: a loopback server checks Host headers unless told "*". */
  bound(host: string): void {
    this.#checkHost = !this.#allowed.has("*") && (this.#allowed.size > 0 || isLoopback(host));
  }

  /** Whether the request carries an accepted key (always true when no keys are configured). */
  isAuthorised(request: FastifyRequest): boolean {
    if (this.#keys.length === 0) {
      return true;
    }
    const match = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? "");
    const given = match?.[1] === undefined ? undefined : digest(match[1]);
    return given !== undefined && this.#keys.some((k) => timingSafeEqual(k, given));
  }

  /**
   * The onRequest check: Host, CORS (a preflight from an allowed origin is answered here, 204), then the key
   * for every route not marked {@link PUBLIC}. Returns true when the reply was sent (a preflight).
   */
  check(request: FastifyRequest, reply: FastifyReply): boolean {
    if (this.#checkHost) {
      const name = hostName(request.headers.host ?? "");
      if (!(name === "localhost" || isIP(name) !== 0 || this.#allowed.has(name))) {
        throw new ApiError(
          403,
          `the Host header '${name.slice(0, MAX_ECHOED_URL)}' is not allowed by this server (start it with --allowed-host NAME to accept a name)`,
          "permission_error",
          null,
          "host_not_allowed",
        );
      }
    }
    // CORS (docs/architecture.md, "One of each": why not @fastify/cors), on the reply: its answers, refusals
    // and event streams carry them. `Vary: Origin` on every answer to a browser when origins are configured,
    // so a cache never gives one origin's answer to another.
    const origin = request.headers.origin;
    if (origin !== undefined && this.#origins.length > 0) {
      reply.header("vary", "origin");
    }
    if (origin !== undefined && (this.#origins.includes("*") || this.#origins.includes(origin))) {
      reply.header("access-control-allow-origin", this.#origins.includes("*") ? "*" : origin);
      if (request.method === "OPTIONS") {
        reply.header("access-control-allow-methods", "GET, POST, OPTIONS");
        reply.header("access-control-allow-headers", "authorization, content-type");
        reply.header("access-control-max-age", "600");
        void reply.code(204).send();
        return true;
      }
      // A browser client reads a 429's Retry-After only when it is exposed (it is not a CORS-safelisted header).
      reply.header("access-control-expose-headers", "retry-after");
    }
    const open = (request.routeOptions.config as { public?: unknown } | undefined)?.public === true;
    if (!open && !this.isAuthorised(request)) {
      throw new ApiError(401, "a valid API key is needed (Authorization: Bearer <key>)", "authentication_error", null, "invalid_api_key");
    }
    return false;
  }
}

/** What fastify's own refusals (by code) become; the framework's codes and wording never reach a client. */
const FRAMEWORK: Readonly<Record<string, readonly [status: number, message: string, code: string]>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: [413, "the request body is larger than this server accepts", "request_too_large"],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, "send the request body as application/json", "unsupported_media_type"],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, "the request body's length does not match its Content-Length", "invalid_content_length"],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, "the request body is empty", "invalid_json"],
  FST_ERR_CTP_INVALID_JSON_BODY: [400, "the request body is not valid JSON", "invalid_json"],
  FST_ERR_BAD_URL: [400, "the URL is not valid (a bad percent-escape)", "invalid_url"],
  FST_ERR_MAX_PARAM_LENGTH: [414, "a path parameter of the URL is too long", "url_too_long"],
};

/**
 * The ApiError for an error fastify raised before or around a handler, or undefined when it is not a client
 * error (an internal one: log it and answer 500).
 */
export function frameworkError(error: { code?: unknown; statusCode?: unknown; name?: unknown }): ApiError | undefined {
  const known = typeof error.code === "string" ? FRAMEWORK[error.code] : undefined;
  if (known !== undefined) {
    return new ApiError(known[0], known[1], "invalid_request_error", null, known[2]);
  }
  const status = error.statusCode;
  if (typeof status !== "number" || status < 400 || status >= 500) {
    return undefined;
  }
  if (error.name === "SyntaxError") {
    // The JSON parser (and its prototype-poisoning check) throw SyntaxErrors with status 400.
    return new ApiError(400, "the request body is not valid JSON", "invalid_request_error", null, "invalid_json");
  }
  return new ApiError(status, "the request could not be read", "invalid_request_error", null, "invalid_request");
}

/** What Node's HTTP parser refusals (by code) become, written straight to the socket. */
const CLIENT_ERRORS: Readonly<Record<string, readonly [status: number, reason: string, message: string, code: string]>> = {
  ERR_HTTP_REQUEST_TIMEOUT: [408, "Request Timeout", "the request (headers and body) did not arrive in time", "request_timeout"],
  HPE_HEADER_OVERFLOW: [431, "Request Header Fields Too Large", "the request headers are too large", "headers_too_large"],
};

/** fastify's `clientErrorHandler`: an OpenAI-shaped answer to malformed or too-slow HTTP, then the socket closes. */
export function answerClientError(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === "ECONNRESET" || socket.destroyed) {
    return;
  }
  const [status, reason, message, code] = CLIENT_ERRORS[error.code ?? ""] ?? [400, "Bad Request", "the request is not valid HTTP", "bad_request"];
  if (socket.writable) {
    socket.write(rawResponse(new ApiError(status, message, "invalid_request_error", null, code), reason));
  }
  socket.destroy();
}

/** A whole HTTP/1.1 response carrying `error`, for answers written to a socket before or without fastify. */
export function rawResponse(error: ApiError, reason: string, headers: Record<string, string> = {}): string {
  const body = JSON.stringify(error.body());
  const extra = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join("");
  return `HTTP/1.1 ${error.status} ${reason}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}connection: close\r\n\r\n${body}`;
}
