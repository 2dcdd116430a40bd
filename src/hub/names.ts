/**
 * Names that come from users and from the hub: repo ids, file paths inside a repo, revisions, ETags and commit
 * hashes. Each is checked against a named limit and an allowed alphabet before it reaches a URL or a path in
 * the cache, so nothing from outside can climb out of the cache folder (`..`, absolute paths, backslashes).
 */
import { HubError } from "./errors.js";

/** Longest org or repo name (the hub's own limit for a repo name is 96 characters). */
export const MAX_REPO_PART_LENGTH = 96;
/** Longest file path inside a repo, and longest single segment of it (a file name on common file systems). */
export const MAX_FILE_PATH_LENGTH = 1024;
export const MAX_PATH_SEGMENT_LENGTH = 255;
/** Most folders a file path inside a repo may have. */
export const MAX_PATH_DEPTH = 32;
/** Longest revision (branch, tag, `refs/pr/N` or commit hash). */
export const MAX_REVISION_LENGTH = 256;
/** Longest ETag used as a blob file name (a SHA-256 is 64 hex digits, a git blob id 40). */
export const MAX_ETAG_LENGTH = 128;

/** A model repo on the hub, `org/name`. */
export interface RepoId {
  readonly org: string;
  readonly name: string;
}

/** What `barbell pull` and `-m hf:` name: a repo and, optionally, a file in it. */
export interface ModelRef {
  readonly repo: RepoId;
  readonly file?: string;
}

const REPO_PART = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;
const REVISION = /^[A-Za-z0-9._/-]+$/;
const COMMIT = /^[0-9a-f]{40}$/;
const ETAG = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;
const SHA256 = /^[0-9a-f]{64}$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

function bad(what: string, value: string, why: string): HubError {
  // The value is shown only when it is short and printable, so hostile input cannot flood or garble the terminal.
  const shown = value.length <= 120 && !CONTROL.test(value) ? ` '${value}'` : "";
  return new HubError("bad-name", `[hub] ${what}${shown} ${why}`);
}

function checkRepoPart(part: string, what: string): string {
  if (part.length === 0 || part.length > MAX_REPO_PART_LENGTH) {
    throw bad(what, part, `must be 1..${MAX_REPO_PART_LENGTH} characters`);
  }
  if (!REPO_PART.test(part)) {
    throw bad(what, part, "may hold only letters, digits, '-', '_' and '.', and must start with a letter, digit or '_'");
  }
  // `--` separates org and name in the cache folder (models--org--name), `..` climbs out of it.
  if (part.includes("--") || part.includes("..") || part.endsWith(".") || part.endsWith("-") || part.endsWith(".git")) {
    throw bad(what, part, "may not hold '--' or '..', nor end with '-', '.' or '.git'");
  }
  return part;
}

/** Checks `org/name`. */
export function parseRepoId(text: string): RepoId {
  const parts = text.split("/");
  if (parts.length !== 2) {
    throw bad("repo", text, "must be <org>/<name>");
  }
  return { org: checkRepoPart(parts[0] ?? "", "repo org"), name: checkRepoPart(parts[1] ?? "", "repo name") };
}

/** `org/name` of a repo. */
export function repoString(repo: RepoId): string {
  return `${repo.org}/${repo.name}`;
}

/** Checks a file path inside a repo: relative, `/`-separated, no `.`/`..`/empty segments, no backslash or control characters. */
export function checkFilePath(file: string): string {
  if (file.length === 0 || file.length > MAX_FILE_PATH_LENGTH) {
    throw bad("file path", file, `must be 1..${MAX_FILE_PATH_LENGTH} characters`);
  }
  if (file.includes("\\") || CONTROL.test(file)) {
    throw bad("file path", file, "may not hold backslashes or control characters");
  }
  if (file.startsWith("/")) {
    throw bad("file path", file, "must be relative to the repo (no leading '/')");
  }
  const segments = file.split("/");
  if (segments.length > MAX_PATH_DEPTH + 1) {
    throw bad("file path", file, `has more than ${MAX_PATH_DEPTH} folders`);
  }
  for (const s of segments) {
    if (s === "" || s === "." || s === "..") {
      throw bad("file path", file, "may not hold empty, '.' or '..' segments");
    }
    if (s.length > MAX_PATH_SEGMENT_LENGTH) {
      throw bad("file path", file, `has a segment longer than ${MAX_PATH_SEGMENT_LENGTH} characters`);
    }
  }
  return file;
}

/** Checks a revision: a branch, tag, `refs/pr/N` or commit hash, with no `.`/`..`/empty segments. */
export function checkRevision(revision: string): string {
  if (revision.length === 0 || revision.length > MAX_REVISION_LENGTH) {
    throw bad("revision", revision, `must be 1..${MAX_REVISION_LENGTH} characters`);
  }
  if (!REVISION.test(revision) || revision.split("/").some((s) => s === "" || s === "." || s === "..")) {
    throw bad("revision", revision, "may hold only letters, digits, '-', '_', '.' and '/' between non-empty segments other than '.' and '..'");
  }
  return revision;
}

/** `<org>/<repo>[/<file path>]`, as `barbell pull` and `-m hf:` take it. */
export function parseModelRef(text: string): ModelRef {
  const parts = text.split("/");
  if (parts.length < 2) {
    throw bad("model", text, "must be <org>/<repo> or <org>/<repo>/<file>");
  }
  const repo = parseRepoId(`${parts[0] ?? ""}/${parts[1] ?? ""}`);
  const rest = parts.slice(2).join("/");
  return parts.length === 2 ? { repo } : { repo, file: checkFilePath(rest) };
}

/** Whether a revision is a full commit hash (then it names a snapshot directly, with no ref to write). */
export function isCommitHash(revision: string): boolean {
  return COMMIT.test(revision);
}

/** Checks the commit hash a hub sends (`X-Repo-Commit`, the API's `sha`) or a cache's ref file holds. */
export function checkCommit(value: string, what: string): string {
  if (!COMMIT.test(value)) {
    throw new HubError("bad-response", `[hub] ${what} is not a 40-digit hex commit hash`);
  }
  return value;
}

/**
 * Normalizes an ETag the way Hugging Face clients do (a weak `W/` prefix and the quotes dropped) and checks that it
 * can name a blob file: [A-Za-z0-9._-], starting with [A-Za-z0-9_], at most MAX_ETAG_LENGTH characters.
 */
export function normalizeEtag(raw: string): string {
  const etag = raw.trim().replace(/^W\//, "").replace(/^"(.*)"$/, "$1");
  if (etag.length === 0 || etag.length > MAX_ETAG_LENGTH || !ETAG.test(etag)) {
    throw new HubError("bad-response", `[hub] the hub's ETag is not 1..${MAX_ETAG_LENGTH} characters of [A-Za-z0-9._-] (starting with a letter, digit or '_')`);
  }
  return etag;
}

/** Whether an ETag is an LFS SHA-256 (64 lowercase hex digits), which the finished file must hash to. */
export function isSha256Etag(etag: string): boolean {
  return SHA256.test(etag);
}

/** The repo's folder name in the cache: `models--{org}--{name}`. */
export function repoFolderName(repo: RepoId): string {
  return `models--${repo.org}--${repo.name}`;
}

/** The repo a cache folder name stands for, or undefined for anything else (datasets, spaces, stray folders). */
export function repoFromFolderName(folder: string): RepoId | undefined {
  const m = /^models--([^/]+?)--([^/]+)$/.exec(folder);
  if (m === null) {
    return undefined;
  }
  try {
    return parseRepoId(`${m[1] ?? ""}/${m[2] ?? ""}`);
  } catch {
    return undefined;
  }
}

/** `{endpoint}/{org}/{name}/resolve/{revision}/{file}`, every part percent-encoded (the revision as one segment). */
export function resolveUrl(endpoint: string, repo: RepoId, revision: string, file: string): string {
  const enc = file.split("/").map(encodeURIComponent).join("/");
  return `${endpoint}/${encodeURIComponent(repo.org)}/${encodeURIComponent(repo.name)}/resolve/${encodeURIComponent(revision)}/${enc}`;
}

/** `{endpoint}/api/models/{org}/{name}/revision/{revision}`: the repo's commit and file list. */
export function apiRevisionUrl(endpoint: string, repo: RepoId, revision: string): string {
  return `${endpoint}/api/models/${encodeURIComponent(repo.org)}/${encodeURIComponent(repo.name)}/revision/${encodeURIComponent(revision)}`;
}
