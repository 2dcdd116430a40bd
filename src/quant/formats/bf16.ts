/**
 * BF16 (ggml type 30): bfloat16, the upper half of a binary32, little-endian.
 *
 *   byte:   0              1
 *           e[0] m[6:0]    s e[7:1]
 *   16 bits per weight, block = 1 element / 2 bytes
 */
import { f32BitsToBf16Bits } from "../half.js";
import type { QuantTraits } from "../types.js";
import { blockedByteSize, checkDecode, checkEncode } from "./common.js";

function byteSize(rows: number, cols: number): number | undefined {
  return blockedByteSize(rows, cols, 1, 2);
}

/** bfloat16 storage; decode is exact (`bits << 16`), encode rounds to nearest even, NaN stays NaN. */
export const BF16: QuantTraits = {
  name: "bf16",
  ggmlType: 30,
  blockSize: 1,
  blockBytes: 2,
  bitsPerWeight: 16,
  ternary: false,
  byteSize,
  decode(bytes, rows, cols) {
    checkDecode("bf16", byteSize, bytes, rows, cols);
    const out = new Float32Array(rows * cols);
    // Int32 views keep V8 on its integer fast path (uint32 values above 2^31 leave it).
    const outBits = new Int32Array(out.buffer);
    for (let i = 0, at = 0; i < outBits.length; i++, at += 2) {
      outBits[i] = ((bytes[at] ?? 0) << 16) | ((bytes[at + 1] ?? 0) << 24);
    }
    return out;
  },
  encode(values, rows, cols) {
    const size = checkEncode("bf16", byteSize, values, rows, cols);
    const out = new Uint8Array(size);
    const bits = new Int32Array(values.buffer, values.byteOffset, values.length);
    for (let i = 0, at = 0; i < bits.length; i++, at += 2) {
      const b = f32BitsToBf16Bits(bits[i] ?? 0);
      out[at] = b & 0xff;
      out[at + 1] = b >>> 8;
    }
    return out;
  },
};
