/**
 * What the hub says about a file before it is downloaded (a HEAD on its resolve URL, redirects to the CDN not
 * followed) and which files a repo holds (the models API). Every value is checked before it is used.
 */
import type { HubConfig } from "./config.js";
import { HubError } from "./errors.js";
import { hubFetch, nextUrl, readJson, statusError, type HubResponse } from "./http.js";
import { apiRevisionUrl, checkCommit, checkFilePath, normalizeEtag, repoString, resolveUrl, type RepoId } from "./names.js";

/** Largest file accepted (1 TiB): a declared size above it is refused before anything is sized from it. */
export const MAX_FILE_BYTES = 2 ** 40;
/** Most files read from a repo's listing. */
export const MAX_REPO_FILES = 100_000;

export interface FileMetadata {
  /** The commit the revision resolved to (X-Repo-Commit). */
  readonly commit: string;
  /** The blob's name in the cache: X-Linked-Etag (the LFS SHA-256) or ETag, unquoted. */
  readonly etag: string;
  /** The file's size in bytes (X-Linked-Size or Content-Length). */
  readonly size: number;
  /** Where to GET the bytes: the CDN URL of a 302, else the resolve URL. */
  readonly location: string;
}

export interface RequestOptions {
  readonly signal?: AbortSignal;
  /** Time until response headers (default REQUEST_TIMEOUT_MS). */
  readonly timeoutMs?: number;
}

/** Parses a size header: decimal digits only, at most MAX_FILE_BYTES. */
export function parseSize(value: string | null, what: string): number {
  if (value === null || !/^\d{1,16}$/.test(value.trim())) {
    throw new HubError("bad-response", `[hub] ${what}: the hub sent no usable size (X-Linked-Size or Content-Length)`);
  }
  const n = Number(value.trim());
  if (n > MAX_FILE_BYTES) {
    throw new HubError("bad-response", `[hub] ${what}: the hub announces ${n} bytes, more than the ${MAX_FILE_BYTES} accepted`);
  }
  return n;
}

function errorContext(cfg: HubConfig, repo: RepoId, revision: string, file?: string): Parameters<typeof statusError>[2] {
  return { endpoint: cfg.endpoint, repo: repoString(repo), hasToken: cfg.token !== undefined, revision, ...(file === undefined ? {} : { file }) };
}

async function send(cfg: HubConfig, method: "HEAD" | "GET", url: string, what: string, opts: RequestOptions): Promise<HubResponse> {
  return hubFetch({
    method,
    url,
    endpoint: cfg.endpoint,
    redirects: "relative",
    what,
    ...(cfg.token === undefined ? {} : { token: cfg.token }),
    ...(opts.signal === undefined ? {} : { signal: opts.signal }),
    ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
  });
}

/** HEAD `{endpoint}/{repo}/resolve/{revision}/{file}`: the commit, blob ETag, size and download location. */
export async function fileMetadata(cfg: HubConfig, repo: RepoId, revision: string, file: string, opts: RequestOptions = {}): Promise<FileMetadata> {
  const what = `${repoString(repo)}/${file}`;
  const r = await send(cfg, "HEAD", resolveUrl(cfg.endpoint, repo, revision, file), what, opts);
  const { res } = r;
  await res.body?.cancel();
  const redirected = res.status >= 300 && res.status < 400;
  if (!redirected && (res.status < 200 || res.status >= 300)) {
    throw statusError(res, what, errorContext(cfg, repo, revision, file));
  }
  const commitHeader = res.headers.get("x-repo-commit");
  if (commitHeader === null) {
    throw new HubError("bad-response", `[hub] ${what}: the hub sent no X-Repo-Commit (is HF_ENDPOINT a Hugging Face hub?)`);
  }
  const commit = checkCommit(commitHeader.trim().toLowerCase(), `${what}: X-Repo-Commit`);
  const etagHeader = res.headers.get("x-linked-etag") ?? res.headers.get("etag");
  if (etagHeader === null) {
    throw new HubError("bad-response", `[hub] ${what}: the hub sent no ETag`);
  }
  const etag = normalizeEtag(etagHeader);
  const size = parseSize(res.headers.get("x-linked-size") ?? (redirected ? null : res.headers.get("content-length")), what);
  const location = redirected ? nextUrl(r.url, res.headers.get("location") ?? "", what) : r.url;
  return { commit, etag, size, location };
}

/** The repo's commit at `revision` and its files (`siblings[].rfilename`), from the models API. */
export async function repoFiles(cfg: HubConfig, repo: RepoId, revision: string, opts: RequestOptions = {}): Promise<{ commit: string; files: string[] }> {
  const what = `the file list of ${repoString(repo)}`;
  const r = await send(cfg, "GET", apiRevisionUrl(cfg.endpoint, repo, revision), what, opts);
  if (r.res.status < 200 || r.res.status >= 300) {
    await r.res.body?.cancel();
    throw statusError(r.res, what, errorContext(cfg, repo, revision));
  }
  const json = await readJson(r, what);
  const info = json as { sha?: unknown; siblings?: unknown } | null;
  if (info === null || typeof info !== "object" || typeof info.sha !== "string" || !Array.isArray(info.siblings)) {
    throw new HubError("bad-response", `[hub] ${what}: the answer has no 'sha' string and 'siblings' array`);
  }
  if (info.siblings.length > MAX_REPO_FILES) {
    throw new HubError("bad-response", `[hub] ${what}: more than ${MAX_REPO_FILES} files`);
  }
  const files: string[] = [];
  for (const s of info.siblings as unknown[]) {
    const name = (s as { rfilename?: unknown } | null)?.rfilename;
    if (typeof name !== "string") {
      throw new HubError("bad-response", `[hub] ${what}: a sibling has no 'rfilename' string`);
    }
    try {
      files.push(checkFilePath(name));
    } catch {
      // A name barbell would not accept as a path (say with '..'): not offered, never downloaded.
    }
  }
  return { commit: checkCommit(info.sha.toLowerCase(), `${what}: sha`), files };
}
