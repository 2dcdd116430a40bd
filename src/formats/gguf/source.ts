/**
 * Byte sources: where GGUF bytes come from, kept apart from parsing. The reader only ever asks for ranges,
 * so a multi-GB file is never held in memory.
 */
import type { FileHandle } from "node:fs/promises";
import { FormatError, ShapeError, UsageError } from "../../core/errors.js";
import { openRegularFile } from "../../core/files.js";

/** Random-access bytes of known size. */
export interface ByteSource {
  /** Total size in bytes. */
  readonly size: number;
  /**
   * Reads `length` bytes at `offset`. Callers stay inside `[0, size)`; a source that returns fewer bytes
   * (e.g. the file shrank) is reported by the reader as FormatError `truncated`.
   */
  read(offset: number, length: number): Promise<Uint8Array>;
}

/** A ByteSource over bytes already in memory; reads are zero-copy views. */
export class MemorySource implements ByteSource {
  constructor(readonly bytes: Uint8Array) {}

  get size(): number {
    return this.bytes.length;
  }

  read(offset: number, length: number): Promise<Uint8Array> {
    return Promise.resolve(this.bytes.subarray(offset, offset + length));
  }
}

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

/** Reads exactly `length` bytes at `offset`; a short read is FormatError "truncated" tagged `[component]`. */
export async function readExact(source: ByteSource, offset: number, length: number, component: string): Promise<Uint8Array> {
  const out = await source.read(offset, length);
  if (out.length !== length) {
    throw new FormatError("truncated", `[${component}] source returned ${out.length} of ${length} bytes at ${offset}`);
  }
  return out;
}

/**
 * Reads `range` (default: all) of a tensor that occupies `size` bytes at file offset `base`. A range outside
 * the tensor is ShapeError "bounds" naming the tensor.
 */
export function readTensorRange(
  source: ByteSource,
  base: number,
  size: number,
  name: string,
  range: { readonly offset?: number; readonly length?: number },
  component: string,
): Promise<Uint8Array> {
  const start = range.offset ?? 0;
  const length = range.length ?? size - start;
  const inside = Number.isSafeInteger(start) && Number.isSafeInteger(length) && start >= 0 && length >= 0;
  if (!inside || start + length > size) {
    throw new ShapeError("bounds", `[${component}] range [${start}, +${length}) is outside tensor "${name}" (${size} bytes)`);
  }
  return readExact(source, base + start, length, component);
}
