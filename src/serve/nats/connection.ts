/**
 * Connecting to NATS and naming subjects. Every subject of a deployment starts with its prefix
 * (`--nats-prefix`, default "barbell"), so several deployments share one NATS cluster without seeing each
 * other's messages (and NATS permissions can be granted per prefix). Credentials: a creds file
 * (`--nats-creds`: a user JWT and NKey seed) or a token (`NATS_TOKEN`), passed through to the client.
 */
import { connect, credsAuthenticator, type Msg, type NatsConnection } from "@nats-io/transport-node";
import { readRegularFile } from "../../core/files.js";
import { BarbellError } from "../../core/errors.js";
import { ServeError } from "../errors.js";

/** Default subject prefix. */
export const DEFAULT_NATS_PREFIX = "barbell";
/** Longest prefix (characters); each dot-separated token is `[A-Za-z0-9_-]+`. */
export const MAX_NATS_PREFIX_LENGTH = 128;
/** Longest worker or gateway id: one subject token of `[A-Za-z0-9_-]`. */
export const MAX_NATS_ID_LENGTH = 64;
/** Largest creds file read (a creds file is about 1 KiB). */
export const MAX_CREDS_BYTES = 64 * 1024;
/** How long the first connection may take before the command gives up. */
export const NATS_CONNECT_TIMEOUT_MS = 10_000;

export interface NatsSettings {
  /** Server URLs, e.g. ["nats://127.0.0.1:4222"]. */
  readonly servers: readonly string[];
  readonly prefix?: string;
  /** A creds file (JWT + NKey seed). */
  readonly credsFile?: string;
  /** A token (the CLI reads it from NATS_TOKEN, never from a flag: flags show in `ps`). */
  readonly token?: string;
  /** The connection's name, shown by the NATS server's monitoring. */
  readonly name?: string;
}

/** Throws ServeError "bad-config" unless `prefix` is a valid subject prefix. */
export function checkPrefix(prefix: string): string {
  if (prefix.length === 0 || prefix.length > MAX_NATS_PREFIX_LENGTH || !prefix.split(".").every((token) => /^[A-Za-z0-9_-]+$/.test(token))) {
    throw new ServeError("bad-config", `[nats] prefix '${prefix.slice(0, MAX_NATS_PREFIX_LENGTH)}' must be 1..${MAX_NATS_PREFIX_LENGTH} characters of dot-separated [A-Za-z0-9_-] tokens`);
  }
  return prefix;
}

/** Throws ServeError "bad-config" unless `id` can be one subject token. */
export function checkId(what: string, id: string): string {
  if (!new RegExp(`^[A-Za-z0-9_-]{1,${MAX_NATS_ID_LENGTH}}$`).test(id)) {
    throw new ServeError("bad-config", `[nats] ${what} id '${id.slice(0, MAX_NATS_ID_LENGTH)}' must be 1..${MAX_NATS_ID_LENGTH} characters of [A-Za-z0-9_-]`);
  }
  return id;
}

/** The subjects of one deployment. */
export interface Subjects {
  /** Workers' adverts and heartbeats. */
  readonly adverts: string;
  /** Requests for adverts now. */
  readonly discover: string;
  /** Generate requests for one worker. */
  work(worker: string): string;
  /** Cancellations for one worker. */
  cancel(worker: string): string;
  /** Model-card chunks from one worker. */
  card(worker: string): string;
  /** Output items for one gateway. */
  inbox(gateway: string): string;
}

export function subjects(prefix = DEFAULT_NATS_PREFIX): Subjects {
  const p = checkPrefix(prefix);
  return {
    adverts: `${p}.adverts`,
    discover: `${p}.discover`,
    work: (w) => `${p}.work.${checkId("worker", w)}`,
    cancel: (w) => `${p}.cancel.${checkId("worker", w)}`,
    card: (w) => `${p}.card.${checkId("worker", w)}`,
    inbox: (g) => `${p}.inbox.${checkId("gateway", g)}`,
  };
}

/**
 * The NATS server's "no responders" status (503, no payload): what a publish with a reply subject gets back when
 * nobody subscribes to its subject. Not a frame, and not hostile.
 */
export function isNoResponders(m: Msg): boolean {
  return m.data.length === 0 && m.headers?.code === 503;
}

/** Connects (reconnecting for ever after the first connection); a ServeError "unavailable" when it cannot. */
export async function connectNats(settings: NatsSettings): Promise<NatsConnection> {
  if (settings.servers.length === 0) {
    throw new ServeError("bad-config", "[nats] no server URL");
  }
  let authenticator;
  if (settings.credsFile !== undefined) {
    try {
      authenticator = credsAuthenticator(new Uint8Array(await readRegularFile(settings.credsFile, MAX_CREDS_BYTES, "[nats] creds file")));
    } catch (error) {
      throw new ServeError("bad-config", error instanceof BarbellError ? error.message : `[nats] cannot read the creds file ${settings.credsFile}`);
    }
  }
  try {
    return await connect({
      servers: [...settings.servers],
      ...(settings.name === undefined ? {} : { name: settings.name }),
      ...(settings.token === undefined ? {} : { token: settings.token }),
      ...(authenticator === undefined ? {} : { authenticator }),
      timeout: NATS_CONNECT_TIMEOUT_MS,
      reconnect: true,
      maxReconnectAttempts: -1,
    });
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new ServeError("unavailable", `[nats] cannot connect to ${settings.servers.join(", ")}: ${why}`);
  }
}
