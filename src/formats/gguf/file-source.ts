/**
 * GGUF from files (Node): the file byte source and `openGguf`. Kept apart from source.ts and reader.ts, which
 * import nothing from Node, so a page can bundle the GGUF reader (src/ui, `BlobSource` / `MemorySource`).
 */
import type { FileHandle } from "node:fs/promises";
import { FormatError, UsageError } from "../../core/errors.js";
import { openRegularFile } from "../../core/files.js";
import { readGguf, type GgufFile } from "./reader.js";
import type { ByteSource } from "./source.js";

/** A ByteSource over a file, read with positional reads. Close it (or `await using` it) when done. */
export class FileSource implements ByteSource, AsyncDisposable {
  #handle: FileHandle | undefined;

  private constructor(
    handle: FileHandle,
    readonly size: number,
    readonly path: string,
  ) {
    this.#handle = handle;
  }

  /** Opens `path` read-only (a regular file only: FileError for folders, FIFOs, devices) and records its size. */
  static async open(path: string, what = "[model] file"): Promise<FileSource> {
    const { handle, size } = await openRegularFile(path, what);
    return new FileSource(handle, size, path);
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const handle = this.#handle;
    if (handle === undefined) {
      throw new UsageError("disposed", `[gguf] ${this.path} is closed`);
    }
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await handle.read(out, done, length - done, offset + done);
      if (bytesRead === 0) {
        throw new FormatError(
          "truncated",
          `[gguf] ${this.path} ended at byte ${offset + done}, expected ${offset + length}`,
        );
      }
      done += bytesRead;
    }
    return out;
  }

  /** Closes the file; later reads throw. Idempotent. */
  async close(): Promise<void> {
    const handle = this.#handle;
    this.#handle = undefined;
    await handle?.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Opens a GGUF file and parses its header. Close the result (or `await using` it) to release the file. */
export async function openGguf(path: string): Promise<GgufFile> {
  const source = await FileSource.open(path);
  try {
    return await readGguf(source);
  } catch (e) {
    await source.close();
    throw e;
  }
}
