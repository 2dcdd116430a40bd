/**
 * `barbell pull` and `-m hf:` as library calls: find a repo's file in the cache or fetch it from the hub, leaving it
 * where Python's huggingface_hub would (docs/hub.md).
 */
import fs from "node:fs/promises";
import path from "node:path";
import type { HubConfig } from "./config.js";
import { cachedFile, linkSnapshot, readRef, regularFileSize, snapshotFiles, snapshotPath, writeRef } from "./cache.js";
import { downloadBlob, type DownloadOptions } from "./download.js";
import { HubError } from "./errors.js";
import { fileMetadata, repoFiles } from "./metadata.js";
import { checkRevision, repoString, type ModelRef, type RepoId } from "./names.js";

/** Most file names an error lists (the rest are counted). */
export const MAX_LISTED_FILES = 20;

export interface PullOptions extends DownloadOptions {
  /** Branch, tag or commit (default main). */
  readonly revision?: string;
  /** Notes for the user (stderr in the CLI): what is being fetched, a fallback to the cache. */
  readonly note?: (line: string) => void;
}

export interface PullResult {
  /** The file's path in the cache (its snapshot link). */
  readonly path: string;
  readonly repo: string;
  readonly file: string;
  readonly commit: string;
  readonly size: number;
  /** Bytes fetched by this call (0: everything was already cached). */
  readonly fetched: number;
}

function listFiles(files: readonly string[]): string {
  const shown = files.slice(0, MAX_LISTED_FILES).join(", ");
  return files.length > MAX_LISTED_FILES ? `${shown}, … (${files.length - MAX_LISTED_FILES} more)` : shown;
}

/** The one .gguf file among `files`, or a HubError listing the choices (several) or the files (none). */
export function pickGguf(repo: RepoId, files: readonly string[]): string {
  const gguf = files.filter((f) => f.toLowerCase().endsWith(".gguf"));
  const name = repoString(repo);
  if (gguf.length === 1) {
    return gguf[0] as string;
  }
  if (gguf.length === 0) {
    throw new HubError(
      "no-gguf",
      `[hub] ${name} holds no .gguf file${files.length === 0 ? "" : ` (its files: ${listFiles(files)})`}; name a file: barbell pull ${name}/<file>`,
    );
  }
  throw new HubError("ambiguous", `[hub] ${name} holds ${gguf.length} .gguf files; name one, e.g. barbell pull ${name}/${gguf[0] ?? ""}. They are: ${listFiles(gguf)}`);
}

/** The cached file for `ref` at `revision` (the only cached .gguf of the snapshot when no file is named), or undefined. */
export async function findCached(cfg: HubConfig, ref: ModelRef, revision = "main"): Promise<{ path: string; file: string; commit: string } | undefined> {
  const commit = await readRef(cfg.cacheDir, ref.repo, checkRevision(revision));
  if (commit === undefined) {
    return undefined;
  }
  let file = ref.file;
  if (file === undefined) {
    const present = (await snapshotFiles(cfg.cacheDir, ref.repo, commit)).filter((f) => f.size !== undefined).map((f) => f.file);
    if (present.filter((f) => f.toLowerCase().endsWith(".gguf")).length === 0) {
      return undefined;
    }
    file = pickGguf(ref.repo, present);
  }
  const p = await cachedFile(cfg.cacheDir, ref.repo, file, commit);
  return p === undefined ? undefined : { path: p, file, commit };
}

/**
 * Makes `ref` (at `opts.revision`, default main) a whole, verified file in the cache and returns its path. Asks
 * the hub which commit and blob the revision names (one HEAD; the file list too when no file is named), downloads
 * the blob unless it is cached, links it into the snapshot and records the ref. When the hub cannot be reached but
 * the file is cached, the cached copy is used (said through `note`); with HF_HUB_OFFLINE no request is made.
 */
export async function pull(cfg: HubConfig, ref: ModelRef, opts: PullOptions = {}): Promise<PullResult> {
  const revision = checkRevision(opts.revision ?? "main");
  const name = repoString(ref.repo);
  if (cfg.offline) {
    const hit = await findCached(cfg, ref, revision);
    if (hit === undefined) {
      throw new HubError("offline", `[hub] HF_HUB_OFFLINE is set and ${name}${ref.file === undefined ? "" : `/${ref.file}`} (${revision}) is not in the cache ${cfg.cacheDir}; unset HF_HUB_OFFLINE to download it`);
    }
    return { path: hit.path, repo: name, file: hit.file, commit: hit.commit, size: (await regularFileSize(hit.path)) ?? 0, fetched: 0 };
  }
  const request = {
    ...(opts.signal === undefined ? {} : { signal: opts.signal }),
    ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
  };
  let meta;
  let file = ref.file;
  try {
    file ??= pickGguf(ref.repo, (await repoFiles(cfg, ref.repo, revision, request)).files);
    meta = await fileMetadata(cfg, ref.repo, revision, file, request);
  } catch (e) {
    // The hub is unreachable or failing, but the file is cached: use it, as huggingface_hub does.
    const hit = e instanceof HubError && ["network", "timeout", "server", "rate-limited"].includes(e.code) ? await findCached(cfg, ref, revision) : undefined;
    if (hit === undefined) {
      throw e;
    }
    opts.note?.(`barbell: ${(e as HubError).message}; using the cached ${name}/${hit.file} (commit ${hit.commit.slice(0, 12)})\n`);
    return { path: hit.path, repo: name, file: hit.file, commit: hit.commit, size: (await regularFileSize(hit.path)) ?? 0, fetched: 0 };
  }
  const pointer = snapshotPath(cfg.cacheDir, ref.repo, meta.commit, file);
  const linked = (await regularFileSize(pointer)) === meta.size && path.basename(await realBlob(pointer)) === meta.etag;
  let fetched = 0;
  if (!linked) {
    const got = await downloadBlob(cfg, ref.repo, meta, `${name}/${file}`, opts);
    fetched = got.fetched;
    await linkSnapshot(cfg.cacheDir, ref.repo, meta.commit, file, meta.etag);
  }
  await writeRef(cfg.cacheDir, ref.repo, revision, meta.commit);
  return { path: pointer, repo: name, file, commit: meta.commit, size: meta.size, fetched };
}

/** The file a snapshot link resolves to ('' when it does not resolve). */
async function realBlob(p: string): Promise<string> {
  return fs.realpath(p).catch(() => "");
}

/**
 * `-m hf:<org>/<repo>[/<file>]`: the cached file, with no request; when it is not cached, `pull` fetches it if
 * `fetch` is set, else a HubError names the `barbell pull` command to run.
 */
export async function resolveHfModel(cfg: HubConfig, ref: ModelRef, fetch: boolean, opts: PullOptions = {}): Promise<PullResult | { path: string; fetched: 0 }> {
  const hit = await findCached(cfg, ref, opts.revision ?? "main");
  if (hit !== undefined) {
    return { path: hit.path, fetched: 0 };
  }
  if (fetch) {
    return pull(cfg, ref, opts);
  }
  const spec = `${repoString(ref.repo)}${ref.file === undefined ? "" : `/${ref.file}`}`;
  throw new HubError("not-cached", `[hub] hf:${spec} is not in the cache ${cfg.cacheDir}; run \`barbell pull ${spec}\` first, or add --pull`);
}
