/**
 * Compute layouts: how ternary and binary weights sit in memory for barbell's kernels.
 * File formats (I2_S, TQ2_0, …) are converted to these at load time; they are not the same thing.
 *
 * Ternary "t2" layout, row-major, ceil(cols/4) bytes per row:
 *
 *   byte c>>2 of a row:  bits 7..6   5..4   3..2   1..0
 *                        c+3        c+2    c+1    c+0      (c a multiple of 4)
 *   code = trit + 1 ∈ {0, 1, 2}; padding elements past `cols` hold code 1 (value 0).
 *
 * Binary "b1" layout, row-major, ceil(cols/32) little-endian uint32 words per row:
 *   element c is bit (c & 31) of word (c >> 5); 1 ↔ +1, 0 ↔ −1; padding bits are 0.
 */

export function ternaryRowBytes(cols: number): number {
  return Math.ceil(cols / 4);
}

/** Packs trits (each −1, 0 or +1, row-major rows×cols) into the t2 layout. */
export function packTernary(trits: Int8Array, rows: number, cols: number): Uint8Array {
  const rowBytes = ternaryRowBytes(cols);
  const out = new Uint8Array(rows * rowBytes).fill(0b01010101);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const code = (trits[r * cols + c] ?? 0) + 1;
      const at = r * rowBytes + (c >> 2);
      const shift = 2 * (c & 3);
      out[at] = ((out[at] ?? 0) & ~(3 << shift)) | (code << shift);
    }
  }
  return out;
}

/** Inverse of packTernary. Code 3 (never written) decodes to 0. */
export function unpackTernary(codes: Uint8Array, rows: number, cols: number): Int8Array {
  const rowBytes = ternaryRowBytes(cols);
  const out = new Int8Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const code = ((codes[r * rowBytes + (c >> 2)] ?? 0) >> (2 * (c & 3))) & 3;
      out[r * cols + c] = code === 3 ? 0 : code - 1;
    }
  }
  return out;
}

export function binaryRowWords(cols: number): number {
  return Math.ceil(cols / 32);
}

/** Packs signs (each −1 or +1, row-major rows×cols) into the b1 layout. */
export function packBinary(signs: Int8Array, rows: number, cols: number): Uint32Array {
  const rowWords = binaryRowWords(cols);
  const out = new Uint32Array(rows * rowWords);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      if ((signs[r * cols + c] ?? 0) > 0) {
        const at = r * rowWords + (c >> 5);
        out[at] = ((out[at] ?? 0) | (1 << (c & 31))) >>> 0;
      }
    }
  }
  return out;
}

/** Inverse of packBinary. */
export function unpackBinary(words: Uint32Array, rows: number, cols: number): Int8Array {
  const rowWords = binaryRowWords(cols);
  const out = new Int8Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const bit = ((words[r * rowWords + (c >> 5)] ?? 0) >>> (c & 31)) & 1;
      out[r * cols + c] = bit === 1 ? 1 : -1;
    }
  }
  return out;
}
