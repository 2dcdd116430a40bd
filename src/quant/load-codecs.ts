/**
 * Native load-time helpers (native/cpu/load.cc): transcoders bit-identical to the JS ones they stand in for
 * (`repackTernary` for I2_S / TQ2_0, Q8_0 and Q6_K encoding of a float head), whose JS versions stay the reference and
 * run wherever no addon is loaded (pages, the JS-only backend), and a file mapping for FileSource (file-source.ts). The native CPU backend registers them when
 * its addon loads (src/backends/native-cpu/addon.ts); this module imports nothing, so pages can bundle it.
 */

/** The addon's functions, as native/cpu/load.cc documents them. */
export interface LoadCodecs {
  /**
   * n codes of I2_S (format 0), TQ2_0 (format 1) or TQ1_0 (format 2) into n/4 t2 bytes of `dst`. −2: the JS path
   * must decide (a code 3, or TQ block scales it does not take); else for TQ2_0 / TQ1_0 the fp16 bits of the one
   * scale (−1: all zero), for I2_S 0. `isa` ("scalar", "avx2", …) only lowers the kernel path (tests compare paths).
   */
  transcodeTernary(format: number, src: Uint8Array, n: number, dst: Uint8Array, isa?: string): number;
  /** The index of the first byte of t2 codes holding the code 3, or −1 (the check of every ternary tensor made from codes). */
  firstCode3?(codes: Uint8Array): number;
  /**
   * rows × cols f32 (0), f16 (1) or bf16 (2) values as Q8_0 rows into `dst`, as Q8_0.encode does; false, with
   * nothing written, when `src` is a view of a file mapping whose file is now shorter (see copyMapped).
   */
  encodeQ8_0(format: number, src: Uint8Array, rows: number, cols: number, dst: Uint8Array, isa?: string): boolean;
  /** As encodeQ8_0, to Q6_K rows as Q6_K.encode does (cols a multiple of 256). Absent in addons built before it. */
  encodeQ6_K?(format: number, src: Uint8Array, rows: number, cols: number, dst: Uint8Array, isa?: string): boolean;
  /**
   * Bytes [offset, offset + length) of an open file (a descriptor) mapped copy-on-write, as a buffer of exactly
   * those bytes (reads come from the page cache without a copy; writes stay private), unmapped when collected;
   * undefined when they cannot be mapped. The caller keeps the range inside the file. Absent on Windows builds.
   */
  mapRange?(fd: number, offset: number, length: number): ArrayBuffer | undefined;
  /** Drops the whole pages of [offset, offset + length) of a mapped buffer from this process (they stay cached). */
  releaseRange?(buffer: ArrayBuffer, offset: number, length: number): void;
  /**
   * The first `size` bytes of an open file (a descriptor) mapped read-only, as an opaque handle for the
   * `*Mapped` functions (no ArrayBuffer, so nothing is reported to the GC as external memory); unmapped when
   * collected; undefined when it cannot be mapped. Absent on Windows builds.
   */
  mapFile?(fd: number, size: number): FileMapping | undefined;
  /**
   * `dst.length` bytes of the mapped file at `offset` into `dst` (RangeError outside the mapping); false, with
   * nothing copied, when the file on disk is now shorter than those bytes (reading them would end the process).
   */
  copyMapped?(map: FileMapping, offset: number, dst: Uint8Array): boolean;
  /**
   * `transcodeTernary` for I2_S (0) / TQ2_0 (1) reading the mapped file at `offset`, on several threads; same
   * results, or −3 (nothing written) when the file on disk is now shorter than the source bytes.
   */
  transcodeMapped?(map: FileMapping, offset: number, format: 0 | 1, n: number, dst: Uint8Array): number;
  /** Drops the whole pages of the mapped file's [offset, offset + length) from this process (they stay cached). */
  releaseMapped?(map: FileMapping, offset: number, length: number): void;
}

/** `transcodeMapped`'s result when the mapped file became shorter than the bytes it was to read. */
export const MAPPED_FILE_SHRANK = -3;

/** A native whole-file mapping (`LoadCodecs.mapFile`): opaque to JS. */
export interface FileMapping {
  readonly __fileMapping: never;
}

let registered: LoadCodecs | undefined;

/** Sets (or, with undefined, clears) the native transcoders; tests clear them to compare with the JS path. */
export function setLoadCodecs(codecs: LoadCodecs | undefined): void {
  registered = codecs;
}

/** The registered native transcoders, if any. */
export function loadCodecs(): LoadCodecs | undefined {
  return registered;
}
