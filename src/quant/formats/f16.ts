/**
 * F16 (ggml type 1): IEEE-754 binary16, little-endian, one element per "block".
 *
 *   byte:   0          1
 *           m[7:0]     s e[4:0] m[9:8]
 *   16 bits per weight, block = 1 element / 2 bytes
 */
import { HALF_TO_F32_BITS, f32BitsToHalfBits } from "../half.js";

const HALF_TO_F32_INT_BITS = new Int32Array(HALF_TO_F32_BITS.buffer);
import type { QuantTraits } from "../types.js";
import { blockedByteSize, checkDecode, checkEncode } from "./common.js";

function byteSize(rows: number, cols: number): number | undefined {
  return blockedByteSize(rows, cols, 1, 2);
}

/** binary16 storage; decode is exact (NaN bits kept), encode rounds to nearest even. */
export const F16: QuantTraits = {
  name: "f16",
  ggmlType: 1,
  blockSize: 1,
  blockBytes: 2,
  bitsPerWeight: 16,
  ternary: false,
  byteSize,
  decode(bytes, rows, cols) {
    checkDecode("f16", byteSize, bytes, rows, cols);
    const out = new Float32Array(rows * cols);
    // Int32 views: uint32 reads above 2^31 leave V8's integer fast path, and a data-dependent check
    // for that made this loop several times slower on real data.
    const outBits = new Int32Array(out.buffer);
    for (let i = 0, at = 0; i < outBits.length; i++, at += 2) {
      outBits[i] = HALF_TO_F32_INT_BITS[(bytes[at] ?? 0) | ((bytes[at + 1] ?? 0) << 8)] ?? 0;
    }
    return out;
  },
  encode(values, rows, cols) {
    const size = checkEncode("f16", byteSize, values, rows, cols);
    const out = new Uint8Array(size);
    const bits = new Int32Array(values.buffer, values.byteOffset, values.length);
    for (let i = 0, at = 0; i < bits.length; i++, at += 2) {
      const h = f32BitsToHalfBits(bits[i] ?? 0);
      out[at] = h & 0xff;
      out[at + 1] = h >>> 8;
    }
    return out;
  },
};
