/**
 * GGUF from files (Node): the file byte source and `openGguf`. Kept apart from source.ts and reader.ts, which
 * import nothing from Node, so a page can bundle the GGUF reader (src/ui, `BlobSource` / `MemorySource`).
 */
import type { FileHandle } from "node:fs/promises";
import { FormatError, UsageError } from "../../core/errors.js";
import { openRegularFile } from "../../core/files.js";
import { loadCodecs, type FileMapping } from "../../quant/load-codecs.js";
import { readGguf, type GgufFile } from "./reader.js";
import { MAP_MIN_BYTES, shrankError, type ByteSource } from "./source.js";


/**
 * A ByteSource over a file. Where the native addon is loaded (src/quant/load-codecs.ts), a read of
 * MAP_MIN_BYTES or more is the range mapped copy-on-write, as an array of its own: nothing copied, the pages
 * shared with the page cache, and a backend that adopts the array (a model's embedding) keeps it without a
 * copy after the source closes. Shorter reads are copies from one read-only mapping of the whole file; all reads
 * elsewhere (no addon) are positional reads into new arrays.
 * Close it (or `await using` it) when done.
 */
export class FileSource implements ByteSource, AsyncDisposable {
  #handle: FileHandle | undefined;
  /** Mapped reads by "offset:length", for `release`. */
  readonly #mapped = new Map<string, WeakRef<ArrayBuffer>>();
  #mappedBytes = 0;
  /** The whole-file mapping once asked for (null: it could not be made). */
  #mapping: object | null | undefined;

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

  /** Bytes served as mappings so far (not copied). */
  get mappedBytes(): number {
    return this.#mappedBytes;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const handle = this.#handle;
    if (handle === undefined) {
      throw new UsageError("disposed", `[gguf] ${this.path} is closed`);
    }
    const mapRange = loadCodecs()?.mapRange;
    if (mapRange !== undefined && length >= MAP_MIN_BYTES && offset >= 0 && offset + length <= this.size) {
      const mapped = mapRange(handle.fd, offset, length);
      if (mapped !== undefined) {
        this.#mapped.set(`${offset}:${length}`, new WeakRef(mapped));
        this.#mappedBytes += length;
        return new Uint8Array(mapped);
      }
    }
    const out = new Uint8Array(length);
    // A short read from the whole-file mapping, where there is one: a copy without a round trip through the
    // I/O thread pool (a model's ~100 norm vectors and scales are read this way at load).
    const map = offset >= 0 && offset + length <= this.size ? this.mapping() : undefined;
    const copyMapped = loadCodecs()?.copyMapped;
    if (map !== undefined && copyMapped !== undefined) {
      if (!copyMapped(map as FileMapping, offset, out)) {
        throw shrankError();
      }
      return out;
    }
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

  /** The whole file mapped read-only (see ByteSource.mapping), made on the first call while the file is open. */
  mapping(): object | undefined {
    if (this.#mapping === undefined && this.#handle !== undefined) {
      this.#mapping = loadCodecs()?.mapFile?.(this.#handle.fd, this.size) ?? null;
    }
    return this.#mapping ?? undefined;
  }

  /**
   * Drops the pages of a mapped read [offset, offset + length) that will not be used again, or of its bytes
   * [from, from + part) only (a conversion that goes through it in pieces); a no-op for copied reads.
   */
  release(offset: number, length: number, from = 0, part = length - from): void {
    const key = `${offset}:${length}`;
    const mapped = this.#mapped.get(key)?.deref();
    const whole = from <= 0 && from + part >= length;
    if (whole) {
      this.#mapped.delete(key);
    }
    if (mapped !== undefined && from >= 0 && part >= 0 && from + part <= mapped.byteLength) {
      loadCodecs()?.releaseRange?.(mapped, from, part);
    }
  }

  /**
   * Closes the file; later reads throw. Mapped reads stay valid (a mapping lives while its array does), and
   * `release` still drops their pages (a weight converted on first use, after loading closed the file). Idempotent.
   */
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
