/**
 * Projection and dense weights in the byte layouts of the three ONNX forms (docs/onnx.md). Every function works
 * on one tensor at a time, so an export holds at most one tensor's bytes twice.
 */
import type { DenseDType } from "../../backends/backend.js";
import { ternaryRowBytes } from "../../quant/layouts.js";
import { QUANT_TRAITS } from "../../quant/table.js";
import { DT, type DataType } from "./proto.js";

/** ONNX INT2 codes of the trits −1, 0, +1 (two's complement in two bits), by t2 code (trit + 1). */
const INT2_OF_T2 = [0b11, 0b00, 0b01, 0b00] as const;

/** t2 code (trit + 1) of element c of row r. */
function t2At(codes: Uint8Array, rowBytes: number, r: number, c: number): number {
  return ((codes[r * rowBytes + (c >> 2)] ?? 0) >> (2 * (c & 3))) & 3;
}

/**
 * A projection [out, in] in t2 codes as an ONNX INT2 tensor [in, out] (transposed, so `MatMul(x, W)` needs no
 * Transpose node): element (i, o) at flat index i·out + o, four per byte, the first in the low bits.
 */
export function int2Transposed(codes: Uint8Array, out: number, inp: number): Uint8Array {
  const rowBytes = ternaryRowBytes(inp);
  const bytes = new Uint8Array(Math.ceil((out * inp) / 4));
  for (let o = 0; o < out; o++) {
    for (let i = 0; i < inp; i++) {
      const flat = i * out + o;
      const code = INT2_OF_T2[t2At(codes, rowBytes, o, i)] ?? 0;
      bytes[flat >> 2] = (bytes[flat >> 2] ?? 0) | (code << (2 * (flat & 3)));
    }
  }
  return bytes;
}

/** Block length of the MatMulNBits form (a power of two ≥ 16, as the contrib op requires). */
export const NBITS_BLOCK = 32;

/**
 * A projection [out, in] as `com.microsoft.MatMulNBits` B input with bits = 2: [out, ceil(in/32), 8] bytes of
 * unsigned 2-bit values, four per byte, the first in the low bits, with the op's default zero point 2, so the
 * stored value is trit + 2 and padding past `in` is 2 (value 0).
 */
export function nbits2(codes: Uint8Array, out: number, inp: number): Uint8Array {
  const rowBytes = ternaryRowBytes(inp);
  const blocks = Math.ceil(inp / NBITS_BLOCK);
  const blob = NBITS_BLOCK / 4;
  const bytes = new Uint8Array(out * blocks * blob).fill(0b10101010);
  if (inp % NBITS_BLOCK === 0) {
    // Same element order as t2; each 2-bit field goes up by one (codes 0..2 never carry into the next field).
    const plusOne = Uint8Array.from({ length: 256 }, (_, b) => b + 0b01010101);
    for (let k = 0; k < bytes.length; k++) {
      bytes[k] = plusOne[codes[k] ?? 0] ?? 0;
    }
    return bytes;
  }
  for (let o = 0; o < out; o++) {
    for (let i = 0; i < inp; i++) {
      const at = o * blocks * blob + (i >> 2);
      const shift = 2 * (i & 3);
      bytes[at] = ((bytes[at] ?? 0) & ~(3 << shift)) | ((t2At(codes, rowBytes, o, i) + 1) << shift);
    }
  }
  return bytes;
}

/** A projection [out, in] as bf16 trits [in, out] (−1, 0, +1 are exact in bf16). */
export function bf16TritsTransposed(codes: Uint8Array, out: number, inp: number): Uint8Array {
  const rowBytes = ternaryRowBytes(inp);
  // bf16 bit patterns of −1, 0, +1 by t2 code.
  const bits = [0xbf80, 0x0000, 0x3f80, 0x0000] as const;
  const values = new Uint16Array(out * inp);
  for (let o = 0; o < out; o++) {
    for (let i = 0; i < inp; i++) {
      values[i * out + o] = bits[t2At(codes, rowBytes, o, i)] ?? 0;
    }
  }
  return new Uint8Array(values.buffer);
}

/**
 * An embedding/head matrix as an initializer: F32, F16 and BF16 as stored (exact), block formats (Q8_0, Q6_K)
 * decoded to F32 exactly as barbell decodes them.
 */
export function denseInitializer(dtype: DenseDType, bytes: Uint8Array, rows: number, cols: number): { dataType: DataType; bytes: Uint8Array } {
  if (dtype === "f32") {
    return { dataType: DT.FLOAT, bytes };
  }
  if (dtype === "f16") {
    return { dataType: DT.FLOAT16, bytes };
  }
  if (dtype === "bf16") {
    return { dataType: DT.BFLOAT16, bytes };
  }
  const values = QUANT_TRAITS[dtype].decode(bytes, rows, cols);
  return { dataType: DT.FLOAT, bytes: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
}

/** Little-endian bytes of f32 values. */
export function f32Bytes(values: Float32Array | readonly number[]): Uint8Array {
  const a = values instanceof Float32Array ? values : Float32Array.from(values);
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}
