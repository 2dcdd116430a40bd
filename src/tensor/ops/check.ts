/** Runtime checks shared by the typed ops; every message starts with `[op]`. */
import { ShapeError, UsageError } from "../../core/errors.js";
import type { Backend, TensorRef } from "../../backends/backend.js";
import type { DType, Tensor } from "../tensor.js";

/** The one backend all operands live on. */
export function commonBackend(op: string, ...tensors: readonly Tensor[]): Backend {
  const first = tensors[0];
  if (first === undefined) {
    throw new UsageError("unsupported", `[${op}] no operands`);
  }
  for (const t of tensors) {
    if (t.backend !== first.backend) {
      throw new UsageError(
        "backend-mismatch",
        `[${op}] operands live on different backends (${first.backend.name}, ${t.backend.name})`,
      );
    }
    t.ref(); // throws when disposed
  }
  return first.backend;
}

export function requireDtype(op: string, what: string, t: Tensor, ...allowed: readonly DType[]): void {
  if (!allowed.includes(t.dtype)) {
    throw new UsageError("dtype", `[${op}] ${what} must be ${allowed.join(" or ")}, got ${t.describe()}`);
  }
}

/** Size of a named dim, or a ShapeError naming the op and the tensor. */
export function sizeOf(op: string, t: Tensor, name: string): number {
  const i = t.dims.indexOf(name);
  const size = t.shape[i];
  if (i < 0 || size === undefined) {
    throw new ShapeError("dim-names", `[${op}] no dimension "${name}" in ${t.describe()}`);
  }
  return size;
}

/** Throws `[op] name: a vs b` when two sizes of the same named dimension differ. */
export function requireSameSize(op: string, name: string, a: number, b: number): void {
  if (a !== b) {
    throw new ShapeError("dim-mismatch", `[${op}] ${name}: ${a} vs ${b}`);
  }
}

export function requireDimNames(op: string, what: string, t: Tensor, expected: readonly string[]): void {
  if (t.dims.length !== expected.length || t.dims.some((d, i) => d !== expected[i])) {
    throw new ShapeError("dim-names", `[${op}] ${what} must have dims [${expected.join(", ")}], got ${t.describe()}`);
  }
}

/** The tensor as a 2-D [rows, lastDim] ref (contiguous storage makes this free). */
export function asMatrix(t: Tensor): TensorRef {
  const ref = t.ref();
  const cols = ref.shape[ref.shape.length - 1] ?? 1;
  return { ...ref, shape: [t.size / cols, cols] };
}
