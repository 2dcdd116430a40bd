/**
 * Argument checks shared by the reference kernels. They run once per call (never per element) and throw
 * `ShapeError` with code "size" or "dim-mismatch", the message prefixed with `[op]`.
 */
import { ShapeError } from "../../../core/errors.js";

/** Throws unless `value` is a non-negative safe integer (a size or an index). */
export function checkSize(op: string, name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new ShapeError("size", `[${op}] ${name} must be a non-negative integer, got ${value}`);
  }
}

/**
 * Throws unless `array` holds at least `needed` elements. Kernels accept longer arrays (pooled buffers,
 * a KV cache with spare capacity) and only touch the leading `needed` elements.
 */
export function checkLength(op: string, name: string, array: { readonly length: number }, needed: number): void {
  if (array.length < needed) {
    throw new ShapeError("size", `[${op}] ${name} holds ${array.length} elements, needs at least ${needed}`);
  }
}

/** Checks every entry of a shape and returns the element count (1 for rank 0). */
export function checkShape(op: string, name: string, shape: readonly number[]): number {
  let count = 1;
  for (let d = 0; d < shape.length; d++) {
    const size = shape[d] ?? 0;
    checkSize(op, `${name}[${d}]`, size);
    count *= size;
  }
  if (!Number.isSafeInteger(count)) {
    throw new ShapeError("size", `[${op}] ${name} has more elements than a safe integer can count`);
  }
  return count;
}

/** Throws "dim-mismatch" unless a strides array has one entry per dimension, each an integer. */
export function checkStrides(op: string, name: string, strides: readonly number[], rank: number): void {
  if (strides.length !== rank) {
    throw new ShapeError("dim-mismatch", `[${op}] ${name} has ${strides.length} entries for a rank-${rank} shape`);
  }
  for (let d = 0; d < rank; d++) {
    if (!Number.isSafeInteger(strides[d])) {
      throw new ShapeError("size", `[${op}] ${name}[${d}] must be an integer, got ${strides[d]}`);
    }
  }
}
