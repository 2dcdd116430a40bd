/**
 * Native load-time helpers (native/cpu/load.cc): transcoders bit-identical to the JS ones they stand in for
 * (`repackTernary` for I2_S / TQ2_0, Q8_0 encoding of a float head), whose JS versions stay the reference and
 * run wherever no addon is loaded (pages, the JS-only backend), and a file mapping for FileSource (file-source.ts). The native CPU backend registers them when
 * its addon loads (src/backends/native-cpu/addon.ts); this module imports nothing, so pages can bundle it.
 */

/** The addon's functions, as native/cpu/load.cc documents them. */
export interface LoadCodecs {
  /**
   * n codes of I2_S (format 0), TQ2_0 (format 1) or TQ1_0 (format 2) into n/4 t2 bytes of `dst`. −2: the JS path
   * must decide (a code 3, or TQ block scales it does not take); else for TQ2_0 / TQ1_0 the fp16 bits of the one
   * scale (−1: all zero), for I2_S 0.
   */
  transcodeTernary(format: number, src: Uint8Array, n: number, dst: Uint8Array): number;
  /** rows × cols f32 (0), f16 (1) or bf16 (2) values as Q8_0 rows into `dst`, as Q8_0.encode does. */
  encodeQ8_0(format: number, src: Uint8Array, rows: number, cols: number, dst: Uint8Array): void;
  /**
   * Bytes [offset, offset + length) of an open file (a descriptor) mapped copy-on-write, as a buffer of exactly
   * those bytes (reads come from the page cache without a copy; writes stay private), unmapped when collected;
   * undefined when they cannot be mapped. The caller keeps the range inside the file. Absent on Windows builds.
   */
  mapRange?(fd: number, offset: number, length: number): ArrayBuffer | undefined;
  /** Drops the whole pages of [offset, offset + length) of a mapped buffer from this process (they stay cached). */
  releaseRange?(buffer: ArrayBuffer, offset: number, length: number): void;
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
