/**
 * Opening files that come from users: only regular files, never blocking, with typed errors.
 *
 * `open()` on a FIFO blocks until a writer appears (a `serve -m /some/fifo` hung silently), and a device can
 * be endless, so every user-given path is opened with O_NONBLOCK (no effect on regular files) and checked
 * with fstat on the open handle (no window between the check and the open) before a byte is read.
 */
import { constants, type Stats } from "node:fs";
import { open, rename, rm, stat, writeFile, type FileHandle } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { FileError, FormatError } from "./errors.js";

/** The node error code of a failed fs call, if any. */
function errnoCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** A FileError for a failed open/stat/read of `path` (named as the user gave it; `what` says what it was for). */
export function fileError(error: unknown, path: string, what: string): FileError {
  if (error instanceof FileError) {
    return error;
  }
  const code = errnoCode(error);
  if (code === "ENOENT" || code === "ENOTDIR") {
    return new FileError("missing", `${what} ${path} does not exist`);
  }
  if (code === "EISDIR") {
    return new FileError("not-a-file", `${what} ${path} is a folder, not a file`);
  }
  if (code === "EACCES" || code === "EPERM") {
    return new FileError("unreadable", `${what} ${path} cannot be read (permission denied)`);
  }
  return new FileError("unreadable", `${what} ${path} cannot be read${code === undefined ? "" : ` (${code})`}`);
}

/**
 * Checks, before any work, that `out` can be written as a file: its folder exists and is a folder, and `out` is not
 * a folder (a missing `out` is what is wanted; any other stat failure shows up when writing). `label` starts the
 * messages ("[convert]"), `name` says what to give instead of a folder ("the .gguf file").
 */
export async function checkOutputFile(out: string, label: string, name: string): Promise<void> {
  const dir = dirname(out);
  try {
    if (!(await stat(resolve(dir))).isDirectory()) {
      throw new FileError("not-a-file", `${label} output folder ${dir} is not a folder`);
    }
  } catch (e) {
    throw fileError(e, dir, `${label} output folder`);
  }
  const existing = await stat(out).catch(() => undefined);
  if (existing?.isDirectory() === true) {
    throw new FileError("not-a-file", `${label} output ${out} is a folder; name ${name} to write`);
  }
}

function kindOf(s: Stats): string {
  return s.isDirectory() ? "a folder" : s.isFIFO() ? "a FIFO" : s.isSocket() ? "a socket" : s.isCharacterDevice() || s.isBlockDevice() ? "a device" : "not a regular file";
}

/** Opens a regular file read-only; a FileError for anything else (folders, FIFOs, sockets, devices, missing). */
export async function openRegularFile(path: string, what = "file"): Promise<{ handle: FileHandle; size: number }> {
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    throw fileError(error, path, what);
  }
  try {
    const s = await handle.stat();
    if (!s.isFile()) {
      throw new FileError("not-a-file", `${what} ${path} is ${kindOf(s)}, not a regular file`);
    }
    return { handle, size: s.size };
  } catch (error) {
    await handle.close();
    throw fileError(error, path, what);
  }
}

/** Reads a whole regular file of at most `maxBytes` (the limit is checked on its size before reading). */
export async function readRegularFile(path: string, maxBytes: number, what = "file"): Promise<Buffer> {
  const { handle, size } = await openRegularFile(path, what);
  try {
    if (size > maxBytes) {
      throw new FileError("too-large", `${what} ${path} is ${size} bytes, more than the ${maxBytes} allowed`);
    }
    const out = Buffer.alloc(size);
    let done = 0;
    while (done < size) {
      const { bytesRead } = await handle.read(out, done, size - done, done);
      if (bytesRead === 0) {
        break; // shrank while reading: what was there
      }
      done += bytesRead;
    }
    return out.subarray(0, done);
  } catch (error) {
    throw fileError(error, path, what);
  } finally {
    await handle.close();
  }
}

/** Whether a user-given model path is a folder (a Hugging Face checkout) or something to open as a file. */
export async function pathKind(path: string, what = "file"): Promise<"folder" | "file"> {
  try {
    return (await stat(path)).isDirectory() ? "folder" : "file";
  } catch (error) {
    throw fileError(error, path, what);
  }
}

/** Where a JSON parse failed, from the parser's message ("at position N"); never the text around it. */
function jsonPosition(error: unknown): string {
  const at = /position (\d+)/.exec(error instanceof Error ? error.message : "");
  return at === null ? "" : ` (at byte ${at[1]})`;
}

/**
 * Parses JSON text from a file. A parse failure is a FormatError naming the file and position only: the
 * parser's own message quotes the text, which for a file that is not JSON (say /etc/passwd) leaks its bytes.
 */
export function parseJsonFile(text: string, path: string, what = "file"): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new FormatError("bad-value", `${what} ${path} is not valid JSON${jsonPosition(error)}`);
  }
}

/** A JSON file's value, or undefined when the file does not exist; other failures are typed errors. */
export async function readOptionalJson(path: string, maxBytes: number, what = "file"): Promise<unknown> {
  let bytes: Buffer;
  try {
    bytes = await readRegularFile(path, maxBytes, what);
  } catch (error) {
    if (error instanceof FileError && error.code === "missing") {
      return undefined;
    }
    throw error;
  }
  return parseJsonFile(bytes.toString("utf8"), path, what);
}

/**
 * Writes next to the target and renames, so an interrupted or failed write never leaves a partial file. `bytes`
 * may be produced piece by piece (an async iterable): a throw while producing removes the partial temp file.
 */
export async function writeAtomically(file: string, bytes: Uint8Array | string | AsyncIterable<Uint8Array>): Promise<void> {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  try {
    await writeFile(tmp, bytes);
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}
