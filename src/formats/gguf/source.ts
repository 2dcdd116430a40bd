/**
 * Byte sources: where GGUF bytes come from, kept apart from parsing. The reader only ever asks for ranges,
 * so a multi-GB file is never held in memory. This module imports nothing from Node, so pages can bundle it;
 * the file source (node:fs) is in file-source.ts.
 */
import { FormatError, ShapeError } from "../../core/errors.js";

/**
 * A FileSource read at least this long is the file range mapped (where the native addon is loaded), a view of the
 * file's pages; shorter reads are copies (file-source.ts). Here, with no Node import, for the loaders that must
 * tell the two apart (src/model/bitnet/gguf-source.ts).
 */
export const MAP_MIN_BYTES = 1 << 20;

/** Random-access bytes of known size. */
export interface ByteSource {
  /** Total size in bytes. */
  readonly size: number;
  /**
   * Reads `length` bytes at `offset`. Callers stay inside `[0, size)`; a source that returns fewer bytes
   * (e.g. the file shrank) is reported by the reader as FormatError `truncated`.
   */
  read(offset: number, length: number): Promise<Uint8Array>;
  /**
   * Says the bytes of the read [offset, offset + length) — or only its bytes [from, from + part) — will not be
   * read again (a mapped file drops those pages).
   */
  release?(offset: number, length: number, from?: number, part?: number): void;
  /**
   * The whole source as a native read-only file mapping (load-codecs' `mapFile`), made once on first call, for
   * loaders that convert tensors straight from it; undefined where there is none (no addon, not a file).
   */
  mapping?(): object | undefined;
  /** Releases what the source holds (an open file); sources without one leave it out. */
  close?(): Promise<void>;
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

/** What {@link BlobSource} needs of a Blob (a browser `File` from a file input, or a fetched `Response.blob()`). */
export interface BlobLike {
  readonly size: number;
  slice(start: number, end: number): { arrayBuffer(): Promise<ArrayBuffer> };
}

/**
 * A ByteSource over a Blob: each read slices the blob, so a file the user picked in a page is read range by
 * range (the header, then one tensor at a time) and never held whole in memory by this source.
 */
export class BlobSource implements ByteSource {
  constructor(readonly blob: BlobLike) {}

  get size(): number {
    return this.blob.size;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    return new Uint8Array(await this.blob.slice(offset, offset + length).arrayBuffer());
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

/**
 * The error for bytes of a mapped model file that can no longer be read: the file became shorter on disk after
 * it was opened (truncated or rewritten in place while in use). Reading them through the mapping would end the
 * process (SIGBUS); the native readers check first (LoadCodecs.copyMapped, transcodeMapped).
 */
export function shrankError(): FormatError {
  return new FormatError("truncated", "[gguf] the model file became shorter on disk after it was opened (changed while in use)");
}
