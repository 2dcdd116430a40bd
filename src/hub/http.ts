/**
 * HTTP to the hub with Node's fetch (undici): redirects followed by hand (counted, http(s) only, never https to
 * http, the token only to the hub's own origin), a time limit until the headers arrive, statuses turned into
 * HubErrors that say what to do, and bounded JSON bodies. Header blocks are bounded by undici itself (16 KiB).
 */
import { HubError } from "./errors.js";

/** Most redirects followed for one request. */
export const MAX_REDIRECTS = 5;
/** Longest Location header followed (signed CDN URLs run to about 1–2 KiB). */
export const MAX_LOCATION_LENGTH = 8192;
/** Longest time from sending a request to having its response headers. */
export const REQUEST_TIMEOUT_MS = 30_000;
/** Largest JSON answer read from the API (the file list of a large repo). */
export const MAX_API_RESPONSE_BYTES = 16 * 2 ** 20;

export interface HubRequest {
  readonly method: "HEAD" | "GET";
  readonly url: string;
  /** The hub's base URL: its origin alone gets the token. */
  readonly endpoint: string;
  readonly token?: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** "relative": follow only same-site redirects (a renamed repo) and return a redirect to elsewhere (the CDN) as is; "all": follow any. */
  readonly redirects: "relative" | "all";
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
  /** What is being fetched, for messages (`org/name/file`). */
  readonly what: string;
}

export interface HubResponse {
  readonly res: Response;
  /** The URL that gave `res` (after the redirects followed). */
  readonly url: string;
  /** Aborts the response's body (its reader then throws); `reason()` says why it was aborted, if it was. */
  readonly abort: (why: "timeout" | "interrupted" | "refused") => void;
  readonly reason: () => "timeout" | "interrupted" | "refused" | undefined;
}

function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

/** Why a fetch failed, from undici's error cause (a code like ECONNREFUSED), never its message. */
function causeCode(e: unknown): string {
  const cause = (e as { cause?: { code?: unknown } } | null)?.cause;
  return typeof cause?.code === "string" && /^[A-Z_]{1,40}$/.test(cause.code) ? cause.code : "connection failed";
}

/** Turns a failed fetch or body read into a HubError (timeout, Ctrl-C, or the network). */
export function networkError(e: unknown, why: "timeout" | "interrupted" | "refused" | undefined, what: string, endpoint: string, timeoutMs: number): HubError {
  if (e instanceof HubError) {
    return e;
  }
  if (why === "timeout") {
    return new HubError("timeout", `[hub] no answer for ${what} within ${timeoutMs} ms; try again later (a partial download is kept and resumed)`);
  }
  if (why === "interrupted") {
    return new HubError("interrupted", `[hub] ${what} was interrupted; run the same command again to resume`);
  }
  return new HubError(
    "network",
    `[hub] cannot reach ${endpoint} for ${what} (${causeCode(e)}); check your network and HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use only the cache`,
  );
}

/**
 * Sends a request, following redirects as `req.redirects` says. A redirect that is not followed comes back as the
 * response (its Location is for the caller). Throws HubError for a network failure, a timeout or a bad redirect;
 * any status is returned (see `statusError`).
 */
export async function hubFetch(req: HubRequest): Promise<HubResponse> {
  const timeoutMs = req.timeoutMs ?? REQUEST_TIMEOUT_MS;
  const origin = new URL(req.endpoint).origin;
  const controller = new AbortController();
  let reason: "timeout" | "interrupted" | "refused" | undefined;
  const abort = (why: "timeout" | "interrupted" | "refused"): void => {
    reason ??= why;
    controller.abort();
  };
  const onAbort = (): void => abort("interrupted");
  if (req.signal?.aborted === true) {
    throw new HubError("interrupted", `[hub] ${req.what} was interrupted before it started`);
  }
  req.signal?.addEventListener("abort", onAbort, { once: true });
  const timer = setTimeout(() => abort("timeout"), timeoutMs);
  let url = req.url;
  try {
    for (let hop = 0; ; hop++) {
      const sameOrigin = new URL(url).origin === origin;
      const headers: Record<string, string> = {
        "accept-encoding": "identity",
        "user-agent": "barbell",
        ...req.headers,
        ...(req.token !== undefined && sameOrigin ? { authorization: `Bearer ${req.token}` } : {}),
      };
      const res = await fetch(url, { method: req.method, headers, redirect: "manual", signal: controller.signal });
      if (!isRedirect(res.status)) {
        clearTimeout(timer);
        return { res, url, abort, reason: () => reason };
      }
      const location = res.headers.get("location");
      if (location === null || location.length === 0 || location.length > MAX_LOCATION_LENGTH) {
        await res.body?.cancel();
        throw new HubError("bad-response", `[hub] ${req.what}: the hub answered ${res.status} without a usable Location (1..${MAX_LOCATION_LENGTH} characters)`);
      }
      const next = nextUrl(url, location, req.what);
      // "relative" follows only what stays on this origin (`/\\host` parses as another host: judged by the result).
      if (req.redirects === "relative" && new URL(next).origin !== new URL(url).origin) {
        clearTimeout(timer);
        return { res, url, abort, reason: () => reason };
      }
      await res.body?.cancel();
      if (hop >= MAX_REDIRECTS) {
        throw new HubError("redirect", `[hub] ${req.what}: more than ${MAX_REDIRECTS} redirects`);
      }
      url = next;
    }
  } catch (e) {
    clearTimeout(timer);
    throw networkError(e, reason, req.what, req.endpoint, timeoutMs);
  } finally {
    req.signal?.removeEventListener("abort", onAbort);
  }
}

/** Resolves a redirect target: http(s) only, never from https down to http. */
export function nextUrl(from: string, location: string, what: string): string {
  let target: URL;
  try {
    target = new URL(location, from);
  } catch {
    throw new HubError("redirect", `[hub] ${what}: the redirect target is not a URL`);
  }
  if (target.protocol !== "http:" && target.protocol !== "https:") {
    throw new HubError("redirect", `[hub] ${what}: refusing a redirect to a ${target.protocol.replace(/:$/, "")} URL (only http and https)`);
  }
  if (new URL(from).protocol === "https:" && target.protocol === "http:") {
    throw new HubError("redirect", `[hub] ${what}: refusing a redirect from https down to http`);
  }
  return target.href;
}

/**
 * The HubError for a status that is not success, with what to do. The hub's own error text is not shown (it is
 * outside input); its X-Error-Code header picks the message.
 */
export function statusError(
  res: Response,
  what: string,
  opts: { readonly endpoint: string; readonly repo: string; readonly file?: string; readonly hasToken: boolean; readonly revision: string },
): HubError {
  const code = res.headers.get("x-error-code") ?? "";
  const s = res.status;
  if (s === 401) {
    if (code === "GatedRepo") {
      return new HubError(
        "unauthorized",
        `[hub] ${opts.repo} is gated: accept its terms at ${opts.endpoint}/${opts.repo} and set HF_TOKEN to a token of that account${opts.hasToken ? " (the token sent has no access yet)" : ""}`,
      );
    }
    return new HubError(
      "unauthorized",
      opts.hasToken
        ? `[hub] 401 for ${what}: HF_TOKEN has no access to ${opts.repo}, or the repo does not exist; check the token and the repo name`
        : `[hub] 401 for ${what}: ${opts.repo} is private or gated, or does not exist; set HF_TOKEN to a token with access, or check the repo name`,
    );
  }
  if (s === 403) {
    return new HubError("forbidden", `[hub] 403 for ${what}: access to ${opts.repo} is refused; accept its terms at ${opts.endpoint}/${opts.repo}, or use a token with read access in HF_TOKEN`);
  }
  if (s === 404) {
    if (code === "EntryNotFound" && opts.file !== undefined) {
      return new HubError("not-found", `[hub] ${opts.repo} has no file ${opts.file} at revision ${opts.revision}; \`barbell pull ${opts.repo}\` lists its .gguf files`);
    }
    if (code === "RevisionNotFound") {
      return new HubError("not-found", `[hub] ${opts.repo} has no revision ${opts.revision}; check --revision`);
    }
    return new HubError("not-found", `[hub] 404 for ${what}: check the repo name, the file name and the revision (${opts.revision})`);
  }
  if (s === 429) {
    return new HubError("rate-limited", `[hub] the hub is rate-limiting requests (429) for ${what}; wait a while, or set HF_TOKEN (logged-in limits are higher)`);
  }
  if (s >= 500) {
    return new HubError("server", `[hub] the hub failed (${s}) for ${what}; try again later`);
  }
  return new HubError("server", `[hub] unexpected status ${s} for ${what}`);
}

/** Reads a JSON body of at most `maxBytes` (Content-Length checked first, then the bytes as they come). */
export async function readJson(r: HubResponse, what: string, maxBytes: number = MAX_API_RESPONSE_BYTES): Promise<unknown> {
  const declared = Number(r.res.headers.get("content-length") ?? "0");
  if (declared > maxBytes) {
    r.abort("refused");
    throw new HubError("bad-response", `[hub] ${what}: the answer is ${declared} bytes, more than the ${maxBytes} allowed`);
  }
  const body = r.res.body;
  if (body === null) {
    throw new HubError("bad-response", `[hub] ${what}: empty answer`);
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  const timer = setTimeout(() => r.abort("timeout"), REQUEST_TIMEOUT_MS);
  try {
    for await (const chunk of body) {
      total += chunk.length;
      if (total > maxBytes) {
        r.abort("refused");
        throw new HubError("bad-response", `[hub] ${what}: the answer is longer than the ${maxBytes} bytes allowed`);
      }
      chunks.push(chunk);
    }
  } catch (e) {
    throw networkError(e, r.reason(), what, new URL(r.url).origin, REQUEST_TIMEOUT_MS);
  } finally {
    clearTimeout(timer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown;
  } catch {
    throw new HubError("bad-response", `[hub] ${what}: the answer is not valid JSON`);
  }
}
