/**
 * F32 (ggml type 0): IEEE-754 binary32, little-endian, one element per "block".
 *
 *   byte:   0        1        2        3
 *           m[7:0]   m[15:8]  e[0]m[22:16]  s e[7:1]
 *   32 bits per weight, block = 1 element / 4 bytes
 */
import type { QuantTraits } from "../types.js";
import { HOST_LITTLE_ENDIAN, blockedByteSize, checkDecode, checkEncode } from "./common.js";

function byteSize(rows: number, cols: number): number | undefined {
  return blockedByteSize(rows, cols, 1, 4);
}

/** Plain float32 storage; decode and encode are bit-exact copies. */
export const F32: QuantTraits = {
  name: "f32",
  ggmlType: 0,
  blockSize: 1,
  blockBytes: 4,
  bitsPerWeight: 32,
  ternary: false,
  byteSize,
  decode(bytes, rows, cols) {
    const size = checkDecode("f32", byteSize, bytes, rows, cols);
    const out = new Float32Array(rows * cols);
    if (HOST_LITTLE_ENDIAN) {
      new Uint8Array(out.buffer).set(bytes.subarray(0, size));
      return out;
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset, size);
    for (let i = 0; i < out.length; i++) {
      out[i] = view.getFloat32(4 * i, true);
    }
    return out;
  },
  encode(values, rows, cols) {
    const size = checkEncode("f32", byteSize, values, rows, cols);
    if (HOST_LITTLE_ENDIAN) {
      return new Uint8Array(values.buffer, values.byteOffset, size).slice();
    }
    const out = new Uint8Array(size);
    const view = new DataView(out.buffer);
    for (let i = 0; i < values.length; i++) {
      view.setFloat32(4 * i, values[i] ?? 0, true);
    }
    return out;
  },
};
