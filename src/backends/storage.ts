/** Byte sizes of erased tensors, shared by every backend and the typed layer. */
import { binaryRowWords, ternaryRowBytes } from "../quant/layouts.js";
import { QUANT_TRAITS } from "../quant/table.js";
import { dtypeElementBytes, isDenseBlockFormat } from "../quant/dtypes.js";
import type { StorageDType } from "./backend.js";

/** Largest element count of one tensor: keeps every index a small integer and typed arrays allocatable. */
export const MAX_TENSOR_ELEMENTS = 2 ** 31 - 1;

export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const s of shape) {
    n *= s;
  }
  return n;
}

/** Bytes a contiguous tensor of this dtype and shape occupies. Packed dtypes pad each row of the last dim. */
export function storageBytes(dtype: StorageDType, shape: readonly number[]): number {
  const cols = shape.length === 0 ? 1 : (shape[shape.length - 1] ?? 1);
  const rows = elementCount(shape) / cols;
  if (isDenseBlockFormat(dtype)) {
    // Undefined when the last dim is not a whole number of blocks; callers check shapes first.
    return QUANT_TRAITS[dtype].byteSize(rows, cols) ?? Number.NaN;
  }
  switch (dtype) {
    case "f32":
    case "i32":
    case "i8":
      return elementCount(shape) * dtypeElementBytes(dtype);
    case "ternary":
      return rows * ternaryRowBytes(cols);
    case "binary":
      return rows * binaryRowWords(cols) * 4;
  }
}

/** Row-major strides (in elements) of a contiguous shape. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) {
    strides[i] = (strides[i + 1] ?? 1) * (shape[i + 1] ?? 1);
  }
  return strides;
}
