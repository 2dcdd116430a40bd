/**
 * GGUF from files (Node): the file byte source and `openGguf`. Kept apart from source.ts and reader.ts, which
 * import nothing from Node, so a page can bundle the GGUF reader (src/ui, `BlobSource` / `MemorySource`).
 */
import type { FileHandle } from "node:fs/promises";
import { FormatError, UsageError } from "../../core/errors.js";
import { openRegularFile } from "../../core/files.js";
import { loadCodecs } from "../../quant/load-codecs.js";
import { readGguf, type GgufFile } from "./reader.js";
import type { ByteSource } from "./source.js";

/** Reads from a mapped file at offsets that are not a multiple of this are copied, so typed views of them align. */
const VIEW_ALIGNMENT = 8;

/**
 * A ByteSource over a file. Where the native addon is loaded (src/quant/load-codecs.ts) the file is mapped
 * copy-on-write and reads are views of the page cache: nothing copied, and a tensor adopted as read keeps its
 * pages (file-backed, shared with the cache) alive after the source closes. Elsewhere, positional reads into
 * new arrays. Close it (or `await using` it) when done.
 */
export class FileSource implements ByteSource, AsyncDisposable {
  #handle: FileHandle | undefined;
  #map: Uint8Array | undefined;

  private constructor(
    handle: FileHandle,
    readonly size: number,
    readonly path: string,
    map: Uint8Array | undefined,
  ) {
    this.#handle = handle;
    this.#map = map;
  }

  /** Opens `path` read-only (a regular file only: FileError for folders, FIFOs, devices) and records its size. */
  static async open(path: string, what = "[model] file"): Promise<FileSource> {
    const { handle, size } = await openRegularFile(path, what);
    const mapped = loadCodecs()?.mapFile?.(path);
    return new FileSource(handle, size, path, mapped?.byteLength === size ? new Uint8Array(mapped) : undefined);
  }

  /** True when reads are views of a mapping of the file. */
  get mapped(): boolean {
    return this.#map !== undefined;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const handle = this.#handle;
    if (handle === undefined) {
      throw new UsageError("disposed", `[gguf] ${this.path} is closed`);
    }
    const map = this.#map;
    if (map !== undefined && offset + length <= map.length) {
      const view = map.subarray(offset, offset + length);
      return offset % VIEW_ALIGNMENT === 0 ? view : view.slice();
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

  /** Drops the mapped pages of a range that will not be read again (no-op when not mapped). */
  release(offset: number, length: number): void {
    const map = this.#map;
    if (map !== undefined && offset >= 0 && length >= 0 && offset + length <= map.length) {
      loadCodecs()?.releaseRange?.(map.buffer as ArrayBuffer, offset, length);
    }
  }

  /** Closes the file; later reads throw. Views already read stay valid (the mapping lives while they do). Idempotent. */
  async close(): Promise<void> {
    const handle = this.#handle;
    this.#handle = undefined;
    this.#map = undefined;
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
