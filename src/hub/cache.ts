/**
 * The Hugging Face cache layout, shared with Python's huggingface_hub (docs/hub.md):
 *
 *   {cache}/models--{org}--{name}/blobs/{etag}                 the files' bytes, named by ETag
 *   {cache}/models--{org}--{name}/snapshots/{commit}/{path}    relative symlinks to ../../blobs/{etag}
 *   {cache}/models--{org}--{name}/refs/{revision}              the commit a branch or tag pointed at
 *
 * A snapshot link is made only to a blob that is complete and verified, so a path under snapshots/ is always a
 * whole file. Every name joined here was checked by names.ts first.
 */
import { constants, type Dirent } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { writeAtomically } from "../core/files.js";
import { HubError } from "./errors.js";
import { checkCommit, checkRevision, isCommitHash, MAX_PATH_DEPTH, repoFolderName, repoFromFolderName, repoString, type RepoId } from "./names.js";

/** Most entries read from the cache root, a snapshot folder or a blobs folder when listing. */
export const MAX_CACHE_ENTRIES = 10_000;
/** Largest ref file read (a commit hash is 40 characters). */
export const MAX_REF_BYTES = 256;

/** The suffix of a blob being downloaded (resumed from its length). */
export const INCOMPLETE_SUFFIX = ".incomplete";

export function repoDir(cacheDir: string, repo: RepoId): string {
  return path.join(cacheDir, repoFolderName(repo));
}

export function blobPath(cacheDir: string, repo: RepoId, etag: string): string {
  return path.join(repoDir(cacheDir, repo), "blobs", etag);
}

export function snapshotPath(cacheDir: string, repo: RepoId, commit: string, file: string): string {
  return path.join(repoDir(cacheDir, repo), "snapshots", commit, ...file.split("/"));
}

function errno(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** The commit `refs/{revision}` holds, or undefined when there is none or it does not hold a commit hash. */
export async function readRef(cacheDir: string, repo: RepoId, revision: string): Promise<string | undefined> {
  if (isCommitHash(revision)) {
    return revision;
  }
  const file = path.join(repoDir(cacheDir, repo), "refs", ...checkRevision(revision).split("/"));
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const s = await handle.stat();
    if (!s.isFile() || s.size > MAX_REF_BYTES) {
      return undefined;
    }
    const text = (await handle.readFile("utf8")).trim();
    return checkCommit(text, "ref");
  } catch {
    return undefined;
  } finally {
    await handle.close();
  }
}

/** Writes `refs/{revision}` = commit (no newline, as huggingface_hub writes it); nothing for a commit-hash revision. */
export async function writeRef(cacheDir: string, repo: RepoId, revision: string, commit: string): Promise<void> {
  if (isCommitHash(revision)) {
    return;
  }
  const file = path.join(repoDir(cacheDir, repo), "refs", ...checkRevision(revision).split("/"));
  await fs.mkdir(path.dirname(file), { recursive: true });
  await writeAtomically(file, commit);
}

/** The size of the regular file at `p` (links followed), or undefined when there is none (missing, dangling, a folder). */
export async function regularFileSize(p: string): Promise<number | undefined> {
  try {
    const s = await fs.stat(p);
    return s.isFile() ? s.size : undefined;
  } catch {
    return undefined;
  }
}

/** The cached path of `file` at `revision` (its snapshot link), or undefined when it is not (wholly) in the cache. */
export async function cachedFile(cacheDir: string, repo: RepoId, file: string, revision = "main"): Promise<string | undefined> {
  const commit = await readRef(cacheDir, repo, revision);
  if (commit === undefined) {
    return undefined;
  }
  const p = snapshotPath(cacheDir, repo, commit, file);
  return (await regularFileSize(p)) === undefined ? undefined : p;
}

/** Makes `snapshots/{commit}/{file}` a relative symlink to the blob (a hard link where symlinks are not allowed), atomically. */
export async function linkSnapshot(cacheDir: string, repo: RepoId, commit: string, file: string, etag: string): Promise<string> {
  const pointer = snapshotPath(cacheDir, repo, commit, file);
  const blob = blobPath(cacheDir, repo, etag);
  await fs.mkdir(path.dirname(pointer), { recursive: true });
  const tmp = `${pointer}.${process.pid}.link.tmp`;
  await fs.rm(tmp, { force: true });
  try {
    try {
      await fs.symlink(path.relative(path.dirname(pointer), blob), tmp);
    } catch (e) {
      if (!["EPERM", "ENOSYS", "EOPNOTSUPP", "ENOTSUP"].includes(errno(e) ?? "")) {
        throw e;
      }
      await fs.link(blob, tmp);
    }
    await fs.rename(tmp, pointer);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
  return pointer;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errno(e) === "EPERM";
  }
}

/**
 * Takes `.locks/models--{org}--{name}/{etag}.barbell.lock` (created exclusively, holding our pid) so two barbell
 * processes never write the same blob; a lock whose process is gone is taken over. Returns the release function.
 * (Python's huggingface_hub locks `{etag}.lock` with flock, which Node cannot take: the two do not see each other.)
 */
export async function lockBlob(cacheDir: string, repo: RepoId, etag: string): Promise<() => Promise<void>> {
  const dir = path.join(cacheDir, ".locks", repoFolderName(repo));
  const file = path.join(dir, `${etag}.barbell.lock`);
  await fs.mkdir(dir, { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await fs.open(file, "wx");
      await handle.writeFile(String(process.pid));
      await handle.close();
      return () => fs.rm(file, { force: true });
    } catch (e) {
      if (errno(e) !== "EEXIST") {
        throw e;
      }
    }
    const text = await fs.readFile(file, "utf8").catch(() => "");
    const pid = /^\d{1,10}$/.test(text.trim()) ? Number(text.trim()) : 0;
    if (pid > 0 && pidAlive(pid)) {
      throw new HubError("busy", `[hub] another barbell process (pid ${pid}) is downloading this file of ${repoString(repo)}; wait for it, or delete ${file} if none is running`);
    }
    await fs.rm(file, { force: true }); // its process is gone: a stale lock
  }
  throw new HubError("busy", `[hub] cannot take the download lock ${file}; delete it if no barbell pull is running`);
}

export interface CachedFileEntry {
  /** The path inside the repo. */
  readonly file: string;
  /** Its size, or undefined when its blob is missing (a dangling link). */
  readonly size?: number;
}

export interface CachedSnapshot {
  readonly commit: string;
  /** The refs (branches, tags) that point at this commit. */
  readonly refs: readonly string[];
  readonly files: readonly CachedFileEntry[];
}

export interface CachedRepo {
  readonly repo: string;
  readonly path: string;
  readonly snapshots: readonly CachedSnapshot[];
  /** Partial downloads in blobs/ (`{etag}.incomplete`) and their bytes so far. */
  readonly incomplete: readonly { readonly etag: string; readonly bytes: number }[];
}

async function entries(dir: string): Promise<Dirent[]> {
  try {
    const list = await fs.readdir(dir, { withFileTypes: true });
    return list.slice(0, MAX_CACHE_ENTRIES).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  } catch {
    return [];
  }
}

async function walkFiles(dir: string, prefix: string, depth: number, out: CachedFileEntry[]): Promise<void> {
  for (const e of await entries(dir)) {
    if (out.length >= MAX_CACHE_ENTRIES) {
      return;
    }
    const full = path.join(dir, e.name);
    const rel = prefix === "" ? e.name : `${prefix}/${e.name}`;
    if (e.isDirectory()) {
      if (depth < MAX_PATH_DEPTH) {
        await walkFiles(full, rel, depth + 1, out);
      }
    } else if (!e.name.endsWith(".link.tmp")) {
      const size = await regularFileSize(full);
      out.push(size === undefined ? { file: rel } : { file: rel, size });
    }
  }
}

/** The files of one snapshot (paths inside the repo, sizes; undefined size: a dangling link). */
export async function snapshotFiles(cacheDir: string, repo: RepoId, commit: string): Promise<CachedFileEntry[]> {
  const files: CachedFileEntry[] = [];
  await walkFiles(path.join(repoDir(cacheDir, repo), "snapshots", checkCommit(commit, "snapshot")), "", 0, files);
  return files;
}

async function readRefs(root: string): Promise<Map<string, string[]>> {
  const byCommit = new Map<string, string[]>();
  const visit = async (dir: string, prefix: string, depth: number): Promise<void> => {
    for (const e of await entries(dir)) {
      const rel = prefix === "" ? e.name : `${prefix}/${e.name}`;
      if (e.isDirectory() && depth < MAX_PATH_DEPTH) {
        await visit(path.join(dir, e.name), rel, depth + 1);
      } else if (e.isFile()) {
        const text = await fs.readFile(path.join(dir, e.name), "utf8").catch(() => "");
        const commit = text.length <= MAX_REF_BYTES ? text.trim() : "";
        if (isCommitHash(commit)) {
          byCommit.set(commit, [...(byCommit.get(commit) ?? []), rel]);
        }
      }
    }
  };
  await visit(path.join(root, "refs"), "", 0);
  return byCommit;
}

/** Every model repo in the cache: its snapshots (with the refs naming them), their files and sizes, partial downloads. */
export async function listCache(cacheDir: string): Promise<CachedRepo[]> {
  const repos: CachedRepo[] = [];
  for (const e of await entries(cacheDir)) {
    const repo = e.isDirectory() ? repoFromFolderName(e.name) : undefined;
    if (repo === undefined) {
      continue; // datasets--, spaces--, .locks and anything else
    }
    const root = path.join(cacheDir, e.name);
    const refs = await readRefs(root);
    const snapshots: CachedSnapshot[] = [];
    for (const s of await entries(path.join(root, "snapshots"))) {
      if (!s.isDirectory() || !isCommitHash(s.name)) {
        continue;
      }
      const files: CachedFileEntry[] = [];
      await walkFiles(path.join(root, "snapshots", s.name), "", 0, files);
      snapshots.push({ commit: s.name, refs: refs.get(s.name) ?? [], files });
    }
    const incomplete: { etag: string; bytes: number }[] = [];
    for (const b of await entries(path.join(root, "blobs"))) {
      if (b.isFile() && b.name.endsWith(INCOMPLETE_SUFFIX)) {
        incomplete.push({ etag: b.name.slice(0, -INCOMPLETE_SUFFIX.length), bytes: (await regularFileSize(path.join(root, "blobs", b.name))) ?? 0 });
      }
    }
    repos.push({ repo: repoString(repo), path: root, snapshots, incomplete });
  }
  return repos;
}
