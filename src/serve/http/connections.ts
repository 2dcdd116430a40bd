/**
 * The HTTP server under fastify, with the limits a server exposed to slow or hostile clients needs: time to send
 * the headers, time to send the whole request (headers and body), idle keep-alive time, and caps on open
 * connections in total and per client address. Without them 3,000 connections that sent half a body were all
 * held open (issue 13). Streams that are already answering are not cut: the body timeout covers receiving the
 * request only, and no socket inactivity timeout is set (a long prefill sends nothing for a while).
 */
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { ApiError } from "./errors.js";
import { rawResponse } from "./guard.js";

export interface ConnectionLimits {
  /** Most ms a client may take to send the request headers. Default {@link DEFAULT_HEADERS_TIMEOUT_MS}. */
  readonly headersTimeoutMs?: number;
  /** Most ms a client may take to send the whole request, body included. Default {@link DEFAULT_BODY_TIMEOUT_MS}. */
  readonly bodyTimeoutMs?: number;
  /** Most ms an idle keep-alive connection stays open between requests. Default {@link DEFAULT_IDLE_TIMEOUT_MS}. */
  readonly idleTimeoutMs?: number;
  /** Most open connections in all. Default {@link DEFAULT_MAX_CONNECTIONS}. */
  readonly maxConnections?: number;
  /** Most open connections from one client address. Default {@link DEFAULT_MAX_CONNECTIONS_PER_IP}. */
  readonly maxConnectionsPerIp?: number;
}

export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;
export const DEFAULT_BODY_TIMEOUT_MS = 30_000;
export const DEFAULT_IDLE_TIMEOUT_MS = 5_000;
export const DEFAULT_MAX_CONNECTIONS = 1024;
export const DEFAULT_MAX_CONNECTIONS_PER_IP = 128;
/** Longest timeout the options accept (one hour), and the most connections. */
export const MAX_LIMIT_TIMEOUT_MS = 3_600_000;
export const MAX_LIMIT_CONNECTIONS = 65_536;
/** How often Node checks connections against the header and body timeouts, at most. */
const MAX_CHECK_INTERVAL_MS = 1_000;

/** The limits with defaults filled in; a RangeError-free ApiError-free check is the caller's (the CLI's) job. */
export function connectionLimits(limits: ConnectionLimits = {}): Required<ConnectionLimits> {
  const headersTimeoutMs = limits.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS;
  return {
    headersTimeoutMs,
    // Node requires headersTimeout <= requestTimeout.
    bodyTimeoutMs: Math.max(limits.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS, headersTimeoutMs),
    idleTimeoutMs: limits.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
    maxConnections: limits.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
    maxConnectionsPerIp: limits.maxConnectionsPerIp ?? DEFAULT_MAX_CONNECTIONS_PER_IP,
  };
}

/** A fastify `serverFactory`: Node's HTTP server with the header, body and idle timeouts and the connection caps. */
export function limitedServerFactory(limits: Required<ConnectionLimits>) {
  return (handler: RequestListener<typeof IncomingMessage, typeof ServerResponse>): Server => {
    const server = createServer(
      {
        headersTimeout: limits.headersTimeoutMs,
        requestTimeout: limits.bodyTimeoutMs,
        keepAliveTimeout: limits.idleTimeoutMs,
        connectionsCheckingInterval: Math.min(MAX_CHECK_INTERVAL_MS, Math.max(10, Math.floor(limits.headersTimeoutMs / 4))),
      },
      handler,
    );
    const perAddress = new Map<string, number>();
    let open = 0;
    server.on("connection", (socket: Socket) => {
      const address = socket.remoteAddress ?? "";
      const mine = perAddress.get(address) ?? 0;
      if (open >= limits.maxConnections || mine >= limits.maxConnectionsPerIp) {
        const whose = open >= limits.maxConnections ? `the server has ${open} open` : `this address has ${mine} open`;
        const error = new ApiError(503, `too many connections (${whose}); close some and retry`, "server_error", null, "too_many_connections");
        socket.end(rawResponse(error, "Service Unavailable", { "retry-after": "1" }));
        socket.destroySoon();
        return;
      }
      open++;
      perAddress.set(address, mine + 1);
      socket.once("close", () => {
        open--;
        const left = (perAddress.get(address) ?? 1) - 1;
        if (left === 0) {
          perAddress.delete(address);
        } else {
          perAddress.set(address, left);
        }
      });
    });
    return server;
  };
}
