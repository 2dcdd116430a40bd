/**
 * Downloads one blob into the cache: bytes go to `blobs/{etag}.incomplete` (resumed with `Range: bytes=N-` after a
 * dropped connection or a second run), never past the announced size; the finished file is checked (size, and
 * SHA-256 when the ETag is an LFS hash) and only then renamed to `blobs/{etag}`. A file that fails the check is
 * deleted; nothing is ever linked from snapshots/ before this returns.
 */
import { createHash, type Hash } from "node:crypto";
import { constants } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import type { HubConfig } from "./config.js";
import { blobPath, INCOMPLETE_SUFFIX, lockBlob, regularFileSize } from "./cache.js";
import { HubError } from "./errors.js";
import { hubFetch, networkError, statusError, type HubResponse } from "./http.js";
import type { FileMetadata } from "./metadata.js";
import { isSha256Etag, type RepoId } from "./names.js";

/** Longest wait for the next bytes of a body before the attempt counts as dropped. */
export const BODY_IDLE_TIMEOUT_MS = 60_000;
/** Most GET attempts for one file (the first and its resumes after dropped connections). */
export const MAX_DOWNLOAD_ATTEMPTS = 5;
/** Pause before a resume, times the attempt number. */
export const RETRY_DELAY_MS = 1_000;
/** Bytes gathered before one write to disk. */
const WRITE_CHUNK_BYTES = 4 * 2 ** 20;

export type DownloadEvent =
  | { readonly kind: "start"; readonly what: string; readonly total: number; readonly resumeFrom: number }
  | { readonly kind: "progress"; readonly done: number; readonly total: number }
  | { readonly kind: "retry"; readonly attempt: number; readonly done: number; readonly reason: string }
  | { readonly kind: "verify"; readonly sha256: boolean };

export interface DownloadOptions {
  readonly signal?: AbortSignal;
  /** Time until response headers (default REQUEST_TIMEOUT_MS). */
  readonly timeoutMs?: number;
  readonly idleTimeoutMs?: number;
  readonly maxAttempts?: number;
  readonly retryDelayMs?: number;
  readonly onEvent?: (e: DownloadEvent) => void;
}

function errno(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** Hashes the first `bytes` of an open file (the part kept from an earlier attempt). */
async function hashPrefix(handle: fs.FileHandle, bytes: number, hash: Hash): Promise<void> {
  const buf = Buffer.alloc(Math.min(WRITE_CHUNK_BYTES, Math.max(bytes, 1)));
  for (let pos = 0; pos < bytes; ) {
    const { bytesRead } = await handle.read(buf, 0, Math.min(buf.length, bytes - pos), pos);
    if (bytesRead === 0) {
      throw new HubError("size-mismatch", "[hub] the partial download shrank while it was being read");
    }
    hash.update(buf.subarray(0, bytesRead));
    pos += bytesRead;
  }
}

/** Refuses to start when the cache's file system has less free space than the bytes still to come. */
async function checkFreeSpace(dir: string, needed: number, what: string): Promise<void> {
  let free: number;
  try {
    const s = await fs.statfs(dir);
    free = s.bavail * s.bsize;
  } catch {
    return; // no statfs here: the write itself reports ENOSPC
  }
  if (free < needed) {
    const mib = (n: number): string => (n / 2 ** 20).toFixed(1);
    throw new HubError("disk-full", `[hub] ${what} needs ${mib(needed)} MiB more but the cache's disk has ${mib(free)} MiB free; free space or set HF_HUB_CACHE to another disk`);
  }
}

/** The `Content-Range` of a 206 must be exactly `bytes {from}-{size-1}/{size}`. */
function checkContentRange(value: string | null, from: number, size: number, what: string): void {
  if (value?.trim() !== `bytes ${from}-${size - 1}/${size}`) {
    throw new HubError("bad-response", `[hub] ${what}: the hub answered the resume request with a different range than asked (bytes ${from}-${size - 1}/${size})`);
  }
}

class Attempt {
  constructor(
    readonly kind: "retry" | "fatal",
    readonly error: HubError,
  ) {}
}

/** The partial file's length and the hash of its bytes so far (one GET may restart both from zero). */
interface Progress {
  have: number;
  hash: Hash;
}

/**
 * Ensures `blobs/{meta.etag}` holds the whole, verified file and returns its path; downloads (or resumes) it when
 * it is not there. `what` names the file in messages and events (`org/name/file`).
 */
export async function downloadBlob(cfg: HubConfig, repo: RepoId, meta: FileMetadata, what: string, opts: DownloadOptions = {}): Promise<{ path: string; fetched: number }> {
  const blob = blobPath(cfg.cacheDir, repo, meta.etag);
  if ((await regularFileSize(blob)) === meta.size) {
    return { path: blob, fetched: 0 };
  }
  await fs.mkdir(path.dirname(blob), { recursive: true });
  const release = await lockBlob(cfg.cacheDir, repo, meta.etag);
  try {
    const fetched = await downloadLocked(cfg, meta, blob, what, opts);
    return { path: blob, fetched };
  } finally {
    await release();
  }
}

async function downloadLocked(cfg: HubConfig, meta: FileMetadata, blob: string, what: string, opts: DownloadOptions): Promise<number> {
  const incomplete = `${blob}${INCOMPLETE_SUFFIX}`;
  const sha256 = isSha256Etag(meta.etag);
  const handle = await fs.open(incomplete, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o644);
  let keep = true; // false: the partial file is worthless (longer than announced, wrong hash) and is deleted
  let fetched = 0;
  try {
    const state: Progress = { have: (await handle.stat()).size, hash: createHash("sha256") };
    if (state.have > meta.size) {
      await handle.truncate(0);
      state.have = 0;
    }
    if (sha256 && state.have > 0) {
      await hashPrefix(handle, state.have, state.hash);
    }
    await checkFreeSpace(path.dirname(blob), meta.size - state.have, what);
    opts.onEvent?.({ kind: "start", what, total: meta.size, resumeFrom: state.have });
    const maxAttempts = opts.maxAttempts ?? MAX_DOWNLOAD_ATTEMPTS;
    for (let attempt = 1; state.have < meta.size; attempt++) {
      const before = state.have;
      const outcome = await getOnce(cfg, meta, what, handle, state, opts);
      fetched += Math.max(0, state.have - before);
      if (outcome === undefined) {
        continue;
      }
      // The file holds exactly the bytes counted (a failed write may have left a tail).
      await handle.truncate(state.have);
      const { error } = outcome;
      if (outcome.kind === "fatal" || opts.signal?.aborted === true) {
        keep = error.code !== "size-mismatch";
        throw keep ? kept(error, state.have, meta.size) : error;
      }
      if (attempt >= maxAttempts) {
        throw kept(new HubError(error.code, `${error.message} (${attempt} attempts)`), state.have, meta.size);
      }
      opts.onEvent?.({ kind: "retry", attempt, done: state.have, reason: error.message });
      await new Promise((r) => setTimeout(r, (opts.retryDelayMs ?? RETRY_DELAY_MS) * attempt));
    }
    await handle.datasync();
    const size = (await handle.stat()).size;
    if (size !== meta.size) {
      keep = false;
      throw new HubError("size-mismatch", `[hub] ${what}: the download is ${size} bytes, not the ${meta.size} announced; it was deleted, run the command again`);
    }
    opts.onEvent?.({ kind: "verify", sha256 });
    if (sha256) {
      const digest = state.hash.digest("hex");
      if (digest !== meta.etag) {
        keep = false;
        throw new HubError(
          "checksum",
          `[hub] ${what}: the downloaded file's SHA-256 is ${digest}, not the ${meta.etag} the hub announced; it was deleted and nothing was linked. Run the command again; if it repeats, something between you and the hub alters the file`,
        );
      }
    }
  } finally {
    await handle.close();
    if (!keep) {
      await fs.rm(incomplete, { force: true });
    }
  }
  await fs.rename(incomplete, blob);
  return fetched;
}

/** The error of a stopped download, saying that its bytes are kept for a resume (when there are any). */
function kept(error: HubError, have: number, size: number): HubError {
  return have === 0 ? error : new HubError(error.code, `${error.message} (${have} of ${size} bytes kept; run the same command again to resume)`);
}

/**
 * One GET from `state.have` on, writing what arrives and updating `state`. Undefined when the file is complete;
 * otherwise an Attempt saying why it stopped and whether another GET may resume it.
 */
async function getOnce(cfg: HubConfig, meta: FileMetadata, what: string, handle: fs.FileHandle, state: Progress, opts: DownloadOptions): Promise<Attempt | undefined> {
  const idleMs = opts.idleTimeoutMs ?? BODY_IDLE_TIMEOUT_MS;
  let r: HubResponse;
  try {
    r = await hubFetch({
      method: "GET",
      url: meta.location,
      endpoint: cfg.endpoint,
      redirects: "all",
      what,
      ...(state.have > 0 ? { headers: { range: `bytes=${state.have}-` } } : {}),
      ...(cfg.token === undefined ? {} : { token: cfg.token }),
      ...(opts.signal === undefined ? {} : { signal: opts.signal }),
      ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
    });
  } catch (e) {
    const error = networkError(e, undefined, what, cfg.endpoint, opts.timeoutMs ?? 0);
    return new Attempt(error.code === "network" || error.code === "timeout" ? "retry" : "fatal", error);
  }
  const { res } = r;
  if (res.status === 200 && state.have > 0) {
    // The server ignored the Range: start over from byte 0.
    await handle.truncate(0);
    state.have = 0;
    state.hash = createHash("sha256");
  } else if (res.status === 206) {
    try {
      checkContentRange(res.headers.get("content-range"), state.have, meta.size, what);
    } catch (e) {
      await res.body?.cancel();
      return new Attempt("fatal", e as HubError);
    }
  } else if (res.status !== 200) {
    await res.body?.cancel();
    const repo = what.split("/").slice(0, 2).join("/");
    const error = statusError(res, what, { endpoint: cfg.endpoint, repo, hasToken: cfg.token !== undefined, revision: meta.commit });
    return new Attempt(res.status >= 500 || res.status === 429 ? "retry" : "fatal", error);
  }
  const encoding = (res.headers.get("content-encoding") ?? "identity").trim().toLowerCase();
  if (encoding !== "identity") {
    r.abort("refused");
    return new Attempt("fatal", new HubError("bad-response", `[hub] ${what}: the hub sent the file with a Content-Encoding although identity was asked`));
  }
  const body = res.body;
  if (body === null) {
    return new Attempt("retry", new HubError("network", `[hub] ${what}: the hub sent no body`));
  }
  const onAbort = (): void => r.abort("interrupted");
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  const idle = setTimeout(() => r.abort("timeout"), idleMs);
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let refusal: Attempt | undefined;
  const flush = async (): Promise<void> => {
    if (pendingBytes === 0) {
      return;
    }
    const buf = pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending, pendingBytes);
    pending = [];
    pendingBytes = 0;
    try {
      await handle.write(buf, 0, buf.length, state.have);
    } catch (e) {
      if (errno(e) === "ENOSPC" || errno(e) === "EDQUOT") {
        throw new HubError("disk-full", `[hub] ${what}: the cache's disk is full; free space (or set HF_HUB_CACHE to another disk)`);
      }
      throw new HubError("disk-full", `[hub] ${what}: writing to the cache failed (${errno(e) ?? "I/O error"})`);
    }
    state.hash.update(buf);
    state.have += buf.length;
  };
  try {
    for await (const chunk of body) {
      idle.refresh();
      if (state.have + pendingBytes + chunk.length > meta.size) {
        // Leaving the loop closes the aborted body, which may reject with the abort reason: the catch returns this.
        refusal = new Attempt("fatal", new HubError("size-mismatch", `[hub] ${what}: the hub sent more than the ${meta.size} bytes it announced; the partial file was deleted`));
        r.abort("refused");
        return refusal;
      }
      pending.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      pendingBytes += chunk.length;
      opts.onEvent?.({ kind: "progress", done: state.have + pendingBytes, total: meta.size });
      if (pendingBytes >= WRITE_CHUNK_BYTES) {
        await flush();
      }
    }
    await flush();
  } catch (e) {
    if (refusal !== undefined) {
      return refusal;
    }
    if (e instanceof HubError) {
      return new Attempt("fatal", e); // a write failed
    }
    try {
      await flush(); // keep what arrived before the drop
    } catch (w) {
      return new Attempt("fatal", w as HubError);
    }
    const why = r.reason();
    if (why === "interrupted") {
      return new Attempt("fatal", new HubError("interrupted", `[hub] ${what}: interrupted`));
    }
    if (why === "timeout") {
      return new Attempt("retry", new HubError("timeout", `[hub] ${what}: no bytes for ${idleMs} ms`));
    }
    return new Attempt("retry", new HubError("network", `[hub] ${what}: the connection dropped after ${state.have} of ${meta.size} bytes`));
  } finally {
    clearTimeout(idle);
    opts.signal?.removeEventListener("abort", onAbort);
  }
  if (state.have < meta.size) {
    return new Attempt("retry", new HubError("network", `[hub] ${what}: the connection closed after ${state.have} of ${meta.size} bytes`));
  }
  return undefined;
}
