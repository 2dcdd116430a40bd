/**
 * Layout ops by name: rename, split, merge, reshape, transpose, slice, concat. Each returns a new
 * tensor (tensors are immutable); names are checked at compile time and sizes at runtime.
 */
import { isHostBuffer } from "../../backends/host-memory.js";
import { contiguousStrides } from "../../backends/storage.js";
import { ShapeError, UsageError } from "../../core/errors.js";
import { dtypeElementBytes } from "../../quant/dtypes.js";
import type { Dims, Duplicate, IsPermutation, MergePair, Replace, Show, ShapeOf } from "../dims.js";
import { allocTensor, checkShape, dimsArg, fill, tensorArg, type DType, type Tensor } from "../tensor.js";
import { commonBackend, sizeOf } from "./check.js";

type WholeElement = "f32" | "i8" | "i32";

/**
 * A tensor's storage bytes viewed in place when they are in host memory (the CPU backends: the layout ops
 * below then copy memory, no kernel), else undefined: device memory cannot be read synchronously, so the
 * layout ops copy with a kernel (writeRows, copyStrided) that the device runs.
 */
function hostStorage(t: Tensor): Uint8Array | undefined {
  const buffer = t.ref().buffer;
  return isHostBuffer(buffer) ? buffer.view().subarray(0, buffer.bytes) : undefined;
}

function requireWholeElements(op: string, t: Tensor): void {
  if (t.dtype === "ternary" || t.dtype === "binary") {
    throw new UsageError("dtype", `[${op}] ${t.describe()} is bit-packed; decode it to f32 first`);
  }
}

/** Copies t's storage unchanged into a tensor with new names/shape of the same element count. */
function relabel<DT extends DType, D extends Dims>(op: string, t: Tensor<DT, Dims>, dims: D, shape: readonly number[]): Tensor<DT, D> {
  const backend = commonBackend(op, t);
  checkShape(op, dims, shape);
  const out = allocTensor(backend, t.dtype, dims, shape as ShapeOf<D>, t.scale);
  const bytes = hostStorage(t);
  if (bytes !== undefined) {
    // Same bytes, new names: a memory copy, no kernel (so no host backend ever needs one for it).
    return fill(out, () => backend.write(out.ref().buffer, bytes));
  }
  // Device memory: one row copy of the whole storage (packed dtypes keep their shape: same rows, same padding).
  const src = t.ref();
  const rows = t.dtype === "ternary" || t.dtype === "binary" ? [...src.shape] : [1, t.size];
  return fill(out, () => backend.kernels.writeRows({ ...src, shape: rows }, { ...out.ref(), shape: rows }, 0));
}

/** Renames one dimension. */
export function rename<DT extends DType, D extends Dims, From extends D[number], const To extends string>(
  t: Tensor<DT, D>,
  from: From,
  to: To extends Exclude<D[number], From> ? `[rename] '${To}' is already a dim of ${Show<D>}` : To,
): Tensor<DT, Replace<D, From, [To]>> {
  const i = t.dims.indexOf(from);
  if (i < 0) {
    throw new ShapeError("dim-names", `[rename] no dimension "${from}" in ${t.describe()}`);
  }
  const dims = dimsArg<Replace<D, From, [To]>>("rename", t.dims.map((d, j) => (j === i ? to : d)));
  return relabel("rename", t, dims, t.shape as readonly number[]);
}

/** true, or the message when the split would repeat a name (also the tape's `split`). */
export type SplitCheck<D extends Dims, N extends string, A extends string, B extends string> = [
  Duplicate<Replace<D, N, [A, B]>>,
] extends [never]
  ? true
  : `[split] '${Duplicate<Replace<D, N, [A, B]>> & string}' would appear twice in the result`;

/** Splits one dimension into two adjacent ones: [seq, embed] → [seq, head, headDim]. */
export function split<DT extends WholeElement, D extends Dims, N extends D[number], const A extends string, const B extends string>(
  t: Tensor<DT, D>,
  dim: N,
  into: SplitCheck<D, N, A, B> extends true ? readonly [A, B] : SplitCheck<D, N, A, B>,
  sizes: readonly [number, number],
): Tensor<DT, Replace<D, N, [A, B]>> {
  requireWholeElements("split", t);
  const [a, b] = into as readonly [A, B];
  const size = sizeOf("split", t, dim);
  if (sizes[0] * sizes[1] !== size) {
    throw new ShapeError("size", `[split] ${dim}: ${size} is not ${a}=${sizes[0]} × ${b}=${sizes[1]}`);
  }
  const i = t.dims.indexOf(dim);
  const dims = dimsArg<Replace<D, N, [A, B]>>("split", [...t.dims.slice(0, i), a, b, ...t.dims.slice(i + 1)]);
  const shape = [...t.shape.slice(0, i), sizes[0], sizes[1], ...t.shape.slice(i + 1)];
  return relabel("split", t, dims, shape);
}

/** true, or the message when the merge is impossible or would repeat a name (also the tape's `merge`). */
export type MergeCheck<D extends Dims, A extends string, B extends string, M extends string> = [MergePair<D, A, B, M>] extends [never]
  ? `[merge] '${A}' is not directly followed by '${B}' in ${Show<D>}`
  : [Duplicate<MergePair<D, A, B, M>>] extends [never]
    ? true
    : `[merge] '${M}' would appear twice in the result`;

/** Merges two adjacent dimensions into one: [seq, head, headDim] → [seq, embed]. */
export function merge<DT extends WholeElement, D extends Dims, const A extends string, const B extends string, const M extends string>(
  t: Tensor<DT, D>,
  pair: readonly [A, B],
  into: MergeCheck<D, A, B, M> extends true ? M : MergeCheck<D, A, B, M>,
): Tensor<DT, MergePair<D, A, B, M>> {
  requireWholeElements("merge", t);
  const [a, b] = pair;
  const i = t.dims.indexOf(a);
  if (i < 0 || t.dims[i + 1] !== b) {
    throw new ShapeError("dim-names", `[merge] "${a}" is not directly followed by "${b}" in ${t.describe()}`);
  }
  const dims = dimsArg<MergePair<D, A, B, M>>("merge", [...t.dims.slice(0, i), into, ...t.dims.slice(i + 2)]);
  const shape = [...t.shape.slice(0, i), (t.shape[i] ?? 0) * (t.shape[i + 1] ?? 0), ...t.shape.slice(i + 2)];
  return relabel("merge", t, dims, shape);
}

/** General reshape to new names and sizes with the same element count (prefer split/merge). */
export function reshape<DT extends WholeElement, const E extends Dims>(
  t: Tensor<DT, Dims>,
  dims: [Duplicate<E>] extends [never] ? E : `[reshape] '${Duplicate<E> & string}' is used twice`,
  shape: ShapeOf<E>,
): Tensor<DT, E> {
  requireWholeElements("reshape", t);
  const names = dims as E;
  const count = checkShape("reshape", names, shape as readonly number[]);
  if (count !== t.size) {
    throw new ShapeError("size", `[reshape] ${t.describe()} has ${t.size} elements, [${(shape as readonly number[]).join(", ")}] needs ${count}`);
  }
  return relabel("reshape", t, names, shape as readonly number[]);
}

/** Reorders dimensions by name: transpose(t /* [seq, head, headDim] *\/, ["head", "seq", "headDim"]). */
export function transpose<DT extends WholeElement, D extends Dims, const P extends Dims>(
  t: Tensor<DT, D>,
  order: IsPermutation<D, P> extends true ? P : `[transpose] ${Show<P>} is not a permutation of ${Show<D>}`,
): Tensor<DT, P> {
  requireWholeElements("transpose", t);
  const names = order as P;
  const src = contiguousStrides(t.shape);
  const axes = names.map((n) => t.dims.indexOf(n));
  if (names.length !== t.rank || axes.some((a, i) => a < 0 || axes.indexOf(a) !== i)) {
    throw new ShapeError("dim-names", `[transpose] [${names.join(", ")}] is not a permutation of ${t.describe()}`);
  }
  const backend = commonBackend("transpose", t);
  const shape = axes.map((a) => t.shape[a] ?? 0);
  const out = allocTensor(backend, t.dtype, names, shape as ShapeOf<P>);
  return fill(out, () => backend.kernels.copyStrided(t.ref(), 0, axes.map((a) => src[a] ?? 0), out.ref()));
}

/** Elements [start, end) of one dimension. */
export function slice<DT extends WholeElement, D extends Dims>(t: Tensor<DT, D>, dim: D[number], start: number, end: number): Tensor<DT, D> {
  requireWholeElements("slice", t);
  const size = sizeOf("slice", t, dim);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end > size || start >= end) {
    throw new ShapeError("bounds", `[slice] ${dim}: [${start}, ${end}) is not a non-empty range within ${size}`);
  }
  const i = t.dims.indexOf(dim);
  const strides = contiguousStrides(t.shape);
  const shape = t.shape.map((s, j) => (j === i ? end - start : s));
  const backend = commonBackend("slice", t);
  const out = allocTensor(backend, t.dtype, t.dims, shape as ShapeOf<D>);
  const bytes = hostStorage(t);
  if (bytes !== undefined && t.shape.slice(0, i).every((s) => s === 1)) {
    // A slice of the outermost non-unit dim is one contiguous byte range: a memory copy, no kernel.
    const bytesPer = dtypeElementBytes(t.dtype);
    const from = start * (strides[i] ?? 0) * bytesPer;
    return fill(out, () => backend.write(out.ref().buffer, bytes.subarray(from, from + out.size * bytesPer)));
  }
  return fill(out, () => backend.kernels.copyStrided(t.ref(), start * (strides[i] ?? 0), strides, out.ref()));
}

/** Joins two tensors with the same dims along one of them; the other sizes must agree. */
export function concat<DT extends WholeElement, const A extends Dims, const B extends Dims>(
  a: Tensor<DT, A>,
  b: [A] extends [B] ? ([B] extends [A] ? Tensor<DT, B> : `[concat] dims differ: ${Show<A>} vs ${Show<B>}`) : `[concat] dims differ: ${Show<A>} vs ${Show<B>}`,
  dim: A[number],
): Tensor<DT, A> {
  const other = tensorArg<Tensor<DT, A>>("concat", "b", b);
  requireWholeElements("concat", a);
  const backend = commonBackend("concat", a, other);
  if (a.dtype !== other.dtype || a.dims.some((d, i) => other.dims[i] !== d) || a.rank !== other.rank) {
    throw new ShapeError("dim-names", `[concat] ${a.describe()} and ${other.describe()} differ in dims or dtype`);
  }
  const axis = a.dims.indexOf(dim);
  if (axis < 0) {
    throw new ShapeError("dim-names", `[concat] no dimension "${dim}" in ${a.describe()}`);
  }
  for (const [i, name] of a.dims.entries()) {
    if (i !== axis && a.shape[i] !== other.shape[i]) {
      throw new ShapeError("dim-mismatch", `[concat] ${name}: ${a.shape[i] ?? 0} vs ${other.shape[i] ?? 0}`);
    }
  }
  const shape = a.shape.map((s, i) => (i === axis ? s + (other.shape[i] ?? 0) : s));
  const out = allocTensor(backend, a.dtype, a.dims, shape as ShapeOf<A>);
  return fill(out, () => backend.kernels.concat([a.ref(), other.ref()], axis, out.ref()));
}
