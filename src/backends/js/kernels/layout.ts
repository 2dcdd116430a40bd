/**
 * Reference data-movement kernels: strided gather (transpose, slice, broadcast to memory) and concatenation.
 * They copy values unchanged (no float rounding happens).
 */
import { ShapeError } from "../../../core/errors.js";
import { checkLength, checkShape, checkSize, checkStrides } from "./check.js";

/** Typed arrays the layout kernels move (element types other than bigint). */
export type NumericArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array;

/**
 * Gathers a strided view of `src` into contiguous row-major `dst`:
 *   dst[row-major offset of i] = src[srcOffset + Σ_d i_d · srcStrides[d]]  for every index i of `shape`.
 * Strides are in elements and may be 0 (repeat) or negative (reverse); every index read must lie inside
 * `src`. A transpose is a permutation of the strides, a slice an offset plus a smaller shape.
 * `dst` must not overlap `src` unless the view is the identity.
 *
 * Allocation: one counter array of rank − 1 entries per call.
 */
export function copyStrided<T extends NumericArray>(
  src: T,
  srcOffset: number,
  srcStrides: readonly number[],
  shape: readonly number[],
  dst: T,
): void {
  const op = "copyStrided";
  const total = checkShape(op, "shape", shape);
  checkStrides(op, "srcStrides", srcStrides, shape.length);
  checkSize(op, "srcOffset", srcOffset);
  checkLength(op, "dst", dst, total);
  if (total === 0) {
    return;
  }
  let lowest = srcOffset;
  let highest = srcOffset;
  for (let d = 0; d < shape.length; d++) {
    const reach = ((shape[d] ?? 0) - 1) * (srcStrides[d] ?? 0);
    if (reach < 0) {
      lowest += reach;
    } else {
      highest += reach;
    }
  }
  if (lowest < 0 || highest >= src.length) {
    const range = `${lowest}…${highest}`;
    throw new ShapeError("bounds", `[${op}] the view reads indices ${range} of a ${src.length}-element src`);
  }

  const rank = shape.length;
  const inner = rank === 0 ? 1 : (shape[rank - 1] ?? 1);
  const innerStride = rank === 0 ? 0 : (srcStrides[rank - 1] ?? 0);
  const index = new Array<number>(Math.max(rank - 1, 0)).fill(0);
  let base = srcOffset;
  for (let o = 0; o < total; o += inner) {
    for (let t = 0; t < inner; t++) {
      dst[o + t] = src[base + t * innerStride] ?? 0;
    }
    for (let d = rank - 2; d >= 0; d--) {
      const size = shape[d] ?? 1;
      const next = (index[d] ?? 0) + 1;
      base += srcStrides[d] ?? 0;
      if (next < size) {
        index[d] = next;
        break;
      }
      index[d] = 0;
      base -= size * (srcStrides[d] ?? 0);
    }
  }
}

/**
 * Concatenates contiguous row-major tensors along `axis`: parts[p] has shape shapes[p]; all shapes share
 * their rank and every size except the one at `axis`; `out` is contiguous with the summed size at `axis`.
 * Viewing each part as [outer, size_p, inner], out row o is the parts' rows o laid end to end.
 */
export function concat<T extends NumericArray>(
  parts: readonly T[],
  shapes: readonly (readonly number[])[],
  axis: number,
  out: T,
): void {
  const op = "concat";
  if (parts.length !== shapes.length || parts.length === 0) {
    throw new ShapeError("dim-mismatch", `[${op}] needs one shape per part and at least one part`);
  }
  const first = shapes[0] ?? [];
  const rank = first.length;
  checkSize(op, "axis", axis);
  if (axis >= rank) {
    throw new ShapeError("rank", `[${op}] axis ${axis} is out of range for rank ${rank}`);
  }
  let outer = 1;
  let inner = 1;
  for (let d = 0; d < rank; d++) {
    if (d < axis) {
      outer *= first[d] ?? 0;
    } else if (d > axis) {
      inner *= first[d] ?? 0;
    }
  }
  let axisTotal = 0;
  for (let p = 0; p < parts.length; p++) {
    const shape = shapes[p] ?? [];
    const count = checkShape(op, `shapes[${p}]`, shape);
    if (shape.length !== rank || shape.some((size, d) => d !== axis && size !== first[d])) {
      const message = `[${op}] shapes[${p}] = [${shape.join(", ")}] does not match [${first.join(", ")}]`;
      throw new ShapeError("dim-mismatch", message);
    }
    checkLength(op, `parts[${p}]`, parts[p] ?? [], count);
    axisTotal += shape[axis] ?? 0;
  }
  checkLength(op, "out", out, outer * axisTotal * inner);

  const outRow = axisTotal * inner;
  let column = 0;
  for (let p = 0; p < parts.length; p++) {
    const part = parts[p];
    const partRow = ((shapes[p] ?? [])[axis] ?? 0) * inner;
    if (part === undefined) {
      continue;
    }
    for (let o = 0; o < outer; o++) {
      for (let e = 0; e < partRow; e++) {
        out[o * outRow + column + e] = part[o * partRow + e] ?? 0;
      }
    }
    column += partRow;
  }
}
