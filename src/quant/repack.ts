/**
 * Ternary weights from a file format into barbell's compute layout ("t2", src/quant/layouts.ts)
 * plus the one per-tensor scale γ — the step every model loader runs once per projection.
 *
 * The file must really hold γ·{−1, 0, +1} with a single γ: per-block scales that differ (a TQ2_0
 * quantized from non-ternary floats) or values off the grid are refused with a FormatError that
 * names the first offending element, because running them as ternary would silently change the model.
 */
import { FormatError } from "../core/errors.js";
import { f32FromBits, halfToF32 } from "./half.js";
import { ternaryRowBytes } from "./layouts.js";
import { loadCodecs } from "./load-codecs.js";
import { QUANT_TRAITS } from "./table.js";
import type { QuantName } from "./types.js";

export interface TernaryPacked {
  /** t2 codes, row-major rows × ceil(cols/4) bytes. */
  readonly codes: Uint8Array;
  /** γ: the float each ±1 stands for (0 for an all-zero tensor). */
  readonly scale: number;
}

/** Rows decoded per step by the generic path: bounds the float32 scratch memory. */
const ROWS_PER_CHUNK = 64;

/**
 * Repacks a rows×cols ternary tensor stored as `format` into t2 codes and γ. I2_S is transcoded
 * code for code; every other format is decoded in row chunks and checked against one γ.
 */
export function repackTernary(format: QuantName, bytes: Uint8Array, rows: number, cols: number): TernaryPacked {
  const traits = QUANT_TRAITS[format];
  const size = traits.byteSize(rows, cols);
  if (size === undefined) {
    throw new FormatError("bad-dims", `[repack] ${format} cannot hold a ${rows}x${cols} tensor`);
  }
  if (bytes.length < size) {
    throw new FormatError("truncated", `[repack] ${format} ${rows}x${cols} needs ${size} bytes, got ${bytes.length}`);
  }
  if (format === "i2_s") {
    return repackI2S(bytes, rows, cols);
  }
  const native = loadCodecs();
  if (native !== undefined && (format === "tq2_0" || format === "tq1_0")) {
    const codes = new Uint8Array((rows * cols) / 4);
    const scale = native.transcodeTernary(format === "tq2_0" ? 1 : 2, bytes, rows * cols, codes);
    if (scale !== -2) {
      return { codes, scale: scale === -1 ? 0 : halfToF32(scale) };
    }
  }
  // TQ2_0 as llama-quantize writes a ternary model (one block scale, or 0 for all-zero blocks) moves codes
  // without decoding; anything else (differing or negative scales, code 3) takes the decoding path, whose
  // result and errors are the reference.
  return (format === "tq2_0" ? repackTQ2Fast(bytes, rows, cols) : undefined) ?? repackDecoded(format, bytes, rows, cols);
}

/**
 * I2_S and t2 share the code (trit + 1), so only positions move. barbell requires cols % 128 = 0 for
 * I2_S, so each 32-byte block is 128 consecutive elements of one row, and byte p of a block holds
 * elements p, p+32, p+64, p+96 (bits 7-6 … 1-0); in t2, element e is byte e>>2, bits 2·(e&3).
 */
function repackI2S(bytes: Uint8Array, rows: number, cols: number): TernaryPacked {
  const n = rows * cols;
  const at = n / 4;
  const scale = f32FromBits(
    (bytes[at] ?? 0) | ((bytes[at + 1] ?? 0) << 8) | ((bytes[at + 2] ?? 0) << 16) | ((bytes[at + 3] ?? 0) << 24),
  );
  if (!Number.isFinite(scale)) {
    throw new FormatError("bad-block", `[repack] i2_s tensor scale is ${scale}`);
  }
  // cols % 128 = 0 makes t2 rows exactly cols/4 bytes, the same as I2_S: block b maps to bytes 32b…32b+31.
  // Four source bytes p = 4g … 4g+3 (one little-endian word) fill the same four t2 bytes g, g+8, g+16,
  // g+24 of their block, at shifts 0, 2, 4, 6: a word at a time, field f of every byte is gathered into
  // one byte (pack below).
  const codes = new Uint8Array(at);
  if (loadCodecs()?.transcodeTernary(0, bytes, n, codes) === 0) {
    return { codes, scale };
  }
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice(0, at);
  const words = new Uint32Array(aligned.buffer, aligned.byteOffset, at / 4);
  for (let wi = 0; wi < words.length; wi++) {
    const w = words[wi] ?? 0;
    if ((w & (w >>> 1) & 0x55555555) !== 0) {
      for (let i = 0; i < 4; i++) {
        const q = (w >>> (8 * i)) & 0xff;
        if ((q & (q >> 1) & 0x55) !== 0) {
          const p = ((wi & 7) << 2) + i;
          throw new FormatError("bad-block", `[repack] i2_s block ${wi >> 3} byte ${p} holds the unused code 3`);
        }
      }
    }
    const dst = ((wi >> 3) << 5) + (wi & 7);
    codes[dst] = pack4(w >>> 6);
    codes[dst + 8] = pack4(w >>> 4);
    codes[dst + 16] = pack4(w >>> 2);
    codes[dst + 24] = pack4(w);
  }
  return { codes, scale };
}

/**
 * TQ2_0 → t2 by moving codes: each 256-element block is two 32-byte halves laid out as an I2_S block with
 * the field order reversed (element m at bits 1-0 … m+96 at bits 7-6), its fp16 d after the 64 code bytes.
 * Returns undefined, for the decoding path to handle, unless every block with a non-zero code has the same
 * positive finite d, every all-zero block a finite d, and no byte holds code 3: then decoding would give
 * exactly these codes and γ = d.
 */
function repackTQ2Fast(bytes: Uint8Array, rows: number, cols: number): TernaryPacked | undefined {
  const blocks = (rows * cols) / 256;
  const codes = new Uint8Array(blocks * 64);
  const word = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let scaleBits = -1;
  for (let b = 0; b < blocks; b++) {
    const at = b * 66;
    const d = (bytes[at + 64] ?? 0) | ((bytes[at + 65] ?? 0) << 8);
    let nonZero = 0;
    for (let g = 0; g < 16; g++) {
      const w = word.getUint32(at + 4 * g, true);
      if ((w & (w >>> 1) & 0x55555555) !== 0) {
        return undefined; // code 3
      }
      nonZero |= w ^ 0x55555555;
      const dst = b * 64 + ((g >> 3) << 5) + (g & 7);
      codes[dst] = pack4(w);
      codes[dst + 8] = pack4(w >>> 2);
      codes[dst + 16] = pack4(w >>> 4);
      codes[dst + 24] = pack4(w >>> 6);
    }
    if ((d & 0x7c00) === 0x7c00) {
      return undefined; // a non-finite scale
    }
    if (nonZero !== 0) {
      if (scaleBits === -1) {
        scaleBits = d;
      }
      if (d !== scaleBits || (d & 0x8000) !== 0 || (d & 0x7fff) === 0) {
        return undefined;
      }
    }
  }
  return { codes, scale: scaleBits === -1 ? 0 : halfToF32(scaleBits) };
}

/** The low 2 bits of each byte of t, packed into one byte: byte i's field at bits 2i. */
function pack4(t: number): number {
  let x = t & 0x03030303;
  x = (x | (x >>> 6)) & 0x000f000f;
  return (x | (x >>> 12)) & 0xff;
}

function repackDecoded(format: QuantName, bytes: Uint8Array, rows: number, cols: number): TernaryPacked {
  const traits = QUANT_TRAITS[format];
  const rowBytes = ternaryRowBytes(cols);
  const codes = new Uint8Array(rows * rowBytes).fill(0b01010101);
  // hf_packed interleaves rows r, r+R, r+2R, r+3R in one byte, so it cannot be cut into row chunks.
  const step = format === "hf_packed" ? rows : ROWS_PER_CHUNK;
  const chunkBytes = traits.byteSize(Math.min(step, rows), cols) ?? 0;
  let gamma = 0;
  for (let r0 = 0; r0 < rows; r0 += step) {
    const n = Math.min(step, rows - r0);
    const start = (r0 / step) * chunkBytes;
    const values = traits.decode(bytes.subarray(start, start + (traits.byteSize(n, cols) ?? 0)), n, cols);
    for (let i = 0; i < values.length; i++) {
      const v = values[i] ?? 0;
      if (v === 0) {
        continue;
      }
      if (gamma === 0) {
        gamma = Math.abs(v);
      }
      if (v !== gamma && v !== -gamma) {
        const e = r0 * cols + i;
        throw new FormatError(
          "bad-value",
          `[repack] ${format} element ${e} (row ${Math.floor(e / cols)}) is ${v}, not 0 or ±${gamma}: not a ternary tensor with one scale`,
        );
      }
      const r = r0 + Math.floor(i / cols);
      const c = i % cols;
      const dst = r * rowBytes + (c >> 2);
      const shift = 2 * (c & 3);
      codes[dst] = ((codes[dst] ?? 0) & ~(3 << shift)) | ((v > 0 ? 2 : 0) << shift);
    }
  }
  return { codes, scale: gamma };
}
