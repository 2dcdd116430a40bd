/** Payload sizes and element alignment of the BAREWire dtypes. */
import type { StorageDType } from "../../backends/backend.js";
import { storageBytes } from "../../backends/storage.js";
import { dtypeElementBytes, dtypeTraits, isStorageDTypeName } from "../../quant/dtypes.js";
import { WIRE_DTYPES, type WireDType } from "./message.js";

/** The wire dtypes that are also barbell storage dtypes (a decoded payload can become a `Tensor`), in wire order. */
export const STORAGE_WIRE_DTYPES: readonly (WireDType & StorageDType)[] = WIRE_DTYPES.filter(
  (d): d is WireDType & StorageDType => isStorageDTypeName(d),
);

/** True when a wire dtype is a barbell storage dtype. */
export function isStorageDType(dtype: WireDType): dtype is WireDType & StorageDType {
  return isStorageDTypeName(dtype);
}

/** True for a string that names a wire dtype. */
export function isWireDType(name: string): name is WireDType {
  return (WIRE_DTYPES as readonly string[]).includes(name);
}

/** Dtypes whose header carries exactly one scale (the per-tensor γ or β); all others carry none. */
export function scaleCount(dtype: WireDType): number {
  return dtype === "ternary" || dtype === "binary" ? 1 : 0;
}

/**
 * Payload bytes of a tensor of this dtype and shape, or undefined when the shape cannot be stored in it
 * (the last dimension is not a whole number of blocks) or the size is not a safe integer.
 */
export function payloadBytes(dtype: WireDType, shape: readonly number[]): number | undefined {
  const cols = shape.length === 0 ? 1 : (shape[shape.length - 1] ?? 1);
  let count = 1;
  for (const s of shape) {
    count *= s;
  }
  const rows = count / cols;
  // The block formats (dense, and the file formats i2_s, tq1_0, tq2_0, q1_0) are sized by their codec; f32, i8, i32
  // and the runtime's packed ternary/binary (no codec) by the storage layer, f32 too (no block-shape check).
  const codec = dtype === "f32" ? undefined : dtypeTraits(dtype).codec;
  const bytes =
    codec !== undefined ? codec.byteSize(rows, cols) : isStorageDTypeName(dtype) ? storageBytes(dtype, shape) : undefined;
  return bytes !== undefined && Number.isSafeInteger(bytes) && bytes >= 0 ? bytes : undefined;
}

/** Typed array a payload is viewed as, per dtype. */
export type PayloadArray<DT extends WireDType> = DT extends "f32"
  ? Float32Array
  : DT extends "i32"
    ? Int32Array
    : DT extends "i8"
      ? Int8Array
      : DT extends "f16" | "bf16"
        ? Uint16Array
        : DT extends "binary"
          ? Uint32Array
          : Uint8Array;

/** Bytes per element of the payload's typed array (its required alignment), from the dtype table. */
export function elementBytes(dtype: WireDType): 1 | 2 | 4 {
  return dtypeElementBytes(dtype);
}

/** Views payload bytes as the dtype's typed array; copies only when the bytes are misaligned for it. */
export function viewPayload<DT extends WireDType>(
  dtype: DT,
  bytes: Uint8Array,
): { readonly array: PayloadArray<DT>; readonly copied: boolean } {
  const size = elementBytes(dtype);
  const copied = bytes.byteOffset % size !== 0;
  const src = copied ? bytes.slice() : bytes;
  const n = src.byteLength / size;
  let array: Float32Array | Int32Array | Int8Array | Uint16Array | Uint32Array | Uint8Array;
  switch (dtype) {
    case "f32":
      array = new Float32Array(src.buffer, src.byteOffset, n);
      break;
    case "i32":
      array = new Int32Array(src.buffer, src.byteOffset, n);
      break;
    case "i8":
      array = new Int8Array(src.buffer, src.byteOffset, n);
      break;
    case "f16":
    case "bf16":
      array = new Uint16Array(src.buffer, src.byteOffset, n);
      break;
    case "binary":
      array = new Uint32Array(src.buffer, src.byteOffset, n);
      break;
    default:
      array = src;
  }
  return { array: array as PayloadArray<DT>, copied };
}
