/**
 * I2_S (bitnet.cpp type 36): 2-bit codes in 128-element / 32-byte blocks, 2 bits per weight,
 * then one float32 scale γ for the whole tensor and 28 zero bytes.
 *
 *   tensor:  | block 0 (32 B) | block 1 | … | block n/128 − 1 | γ f32 LE | 28 × 0x00 |
 *   byte p of block b:
 *     bits  7..6        5..4          3..2          1..0
 *           128b + p    128b + p+32   128b + p+64   128b + p+96
 *   code: −1 → 0, 0 → 1, +1 → 2 (3 is never written and is rejected); value = γ · (code − 1)
 *
 * This is the layout of the official 2B-4T GGUF (x86 ACT_PARALLEL build); the ARM 64-element and
 * "1×4 rows" layouts of newer bitnet.cpp builds are not handled. barbell requires cols % 128 = 0
 * so blocks never straddle rows (true of every 2B-4T tensor).
 */
import { FormatError } from "../../core/errors.js";
import { f32Bits, f32FromBits } from "../half.js";
import type { QuantTraits } from "../types.js";
import { absMax, blockedByteSize, checkDecode, checkEncode } from "./common.js";

const QK = 128;
const BLOCK_BYTES = 32;
const TRAILER = 32;
const F32_MAX = 3.4028234663852886e38;

function byteSize(rows: number, cols: number): number | undefined {
  const codes = blockedByteSize(rows, cols, QK, BLOCK_BYTES);
  return codes === undefined || !Number.isSafeInteger(codes + TRAILER) ? undefined : codes + TRAILER;
}

function decode(bytes: Uint8Array, rows: number, cols: number): Float32Array {
  const size = checkDecode("i2_s", byteSize, bytes, rows, cols);
  const at = size - TRAILER;
  const gamma = f32FromBits(
    (bytes[at] ?? 0) | ((bytes[at + 1] ?? 0) << 8) | ((bytes[at + 2] ?? 0) << 16) | ((bytes[at + 3] ?? 0) << 24),
  );
  if (!Number.isFinite(gamma)) {
    throw new FormatError("bad-block", `[quant:i2_s] tensor scale is ${gamma}`);
  }
  const out = new Float32Array(rows * cols);
  const blocks = out.length / QK;
  for (let b = 0; b < blocks; b++) {
    const from = b * BLOCK_BYTES;
    const y = b * QK;
    for (let p = 0; p < 32; p++) {
      const q = bytes[from + p] ?? 0;
      if ((q & (q >> 1) & 0x55) !== 0) {
        throw new FormatError("bad-block", `[quant:i2_s] block ${b} byte ${p} holds the unused code 3`);
      }
      out[y + p] = ((q >> 6) - 1) * gamma;
      out[y + p + 32] = (((q >> 4) & 3) - 1) * gamma;
      out[y + p + 64] = (((q >> 2) & 3) - 1) * gamma;
      out[y + p + 96] = ((q & 3) - 1) * gamma;
    }
  }
  return out;
}

/** Code of one value as bitnet.cpp's `quantize_i2_s`: |x| < 1e-6 → 1, else 2 if x·γ > 0, else 0. */
function code(x: number, gamma: number): number {
  if (Math.abs(x) < 1e-6) {
    return 1;
  }
  return x * gamma > 0 ? 2 : 0;
}

function encode(values: Float32Array, rows: number, cols: number): Uint8Array {
  const size = checkEncode("i2_s", byteSize, values, rows, cols);
  const out = new Uint8Array(size);
  // Clamped so an infinite input still writes a scale the decoder accepts.
  const gamma = Math.min(absMax(values, 0, values.length), F32_MAX);
  const blocks = values.length / QK;
  for (let b = 0; b < blocks; b++) {
    const x = b * QK;
    const to = b * BLOCK_BYTES;
    for (let p = 0; p < 32; p++) {
      out[to + p] =
        (code(values[x + p] ?? 0, gamma) << 6) |
        (code(values[x + p + 32] ?? 0, gamma) << 4) |
        (code(values[x + p + 64] ?? 0, gamma) << 2) |
        code(values[x + p + 96] ?? 0, gamma);
    }
  }
  const bits = f32Bits(gamma);
  const at = size - TRAILER;
  out[at] = bits & 0xff;
  out[at + 1] = (bits >>> 8) & 0xff;
  out[at + 2] = (bits >>> 16) & 0xff;
  out[at + 3] = bits >>> 24;
  return out;
}

/**
 * I2_S codec. byteSize = rows·cols/4 + 32 and needs cols % 128 = 0. Encode mirrors bitnet.cpp's
 * `quantize_i2_s`: γ = max|x| of the whole tensor and each code is only the sign of x (|x| < 1e-6
 * → 0), so it assumes already-ternary-valued input γ·W_t (absmean-ternarize first); other input
 * loses its magnitudes. NaN inputs get code 0 (−γ), as in bitnet.cpp.
 */
export const I2_S: QuantTraits = {
  name: "i2_s",
  ggmlType: 36,
  blockSize: QK,
  blockBytes: BLOCK_BYTES,
  bitsPerWeight: (8 * BLOCK_BYTES) / QK,
  ternary: true,
  byteSize,
  decode,
  encode,
};
