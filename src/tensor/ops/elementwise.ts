/**
 * Elementwise ops. Binary ops broadcast **by name**: `b`'s dimensions must all occur in `a`, in the
 * same order; a dimension of `a` that `b` lacks is broadcast. The result has `a`'s dimensions.
 * `add(x /* [seq, embed] *\/, bias /* [embed] *\/)` compiles; `add(x, t /* [vocab] *\/)` does not.
 */
import type { BinaryOp, UnaryOp } from "../../backends/backend.js";
import { contiguousStrides } from "../../backends/storage.js";
import { ShapeError } from "../../core/errors.js";
import type { Dims, IsOrderedSubset, Missing, Show } from "../dims.js";
import { allocTensor, fill, tensorArg, type Tensor } from "../tensor.js";
import { commonBackend, requireDtype, requireSameSize } from "./check.js";

/** true when b broadcasts onto a by name; else a readable error. */
export type BroadcastCheck<Op extends string, A extends Dims, B extends Dims> = [Missing<A, B>] extends [never]
  ? IsOrderedSubset<A, B> extends true
    ? true
    : `[${Op}] dims of b ${Show<B>} appear in a different order in a ${Show<A>}`
  : `[${Op}] b has dim '${Missing<A, B> & string}' that a ${Show<A>} lacks`;

export type Broadcastable<Op extends string, A extends Dims, B extends Dims> =
  BroadcastCheck<Op, A, B> extends true ? Tensor<"f32", B> : BroadcastCheck<Op, A, B>;

/** Strides that read b over a's shape: b's stride for a dim b has, 0 for a dim it broadcasts. */
function broadcastStrides(op: string, a: Tensor, b: Tensor): number[] {
  const bStrides = contiguousStrides(b.shape);
  let last = -1;
  const strides = new Array<number>(a.rank).fill(0);
  for (const [j, name] of b.dims.entries()) {
    const i = a.dims.indexOf(name);
    if (i < 0) {
      throw new ShapeError("dim-names", `[${op}] b has dim "${name}" that a [${a.dims.join(", ")}] lacks`);
    }
    if (i <= last) {
      throw new ShapeError("dim-names", `[${op}] dims of b [${b.dims.join(", ")}] are in a different order in a`);
    }
    last = i;
    requireSameSize(op, name, a.shape[i] ?? 0, b.shape[j] ?? 0);
    strides[i] = bStrides[j] ?? 0;
  }
  return strides;
}

/** @internal add, sub, mul, … after their compile-time check (also the training tape's); bIn is b. */
export function binary<const A extends Dims>(name: string, kernel: BinaryOp, a: Tensor<"f32", A>, bIn: unknown): Tensor<"f32", A> {
  const op = name;
  const b = tensorArg<Tensor<"f32", Dims>>(op, "b", bIn);
  const backend = commonBackend(op, a, b);
  requireDtype(op, "a", a, "f32");
  requireDtype(op, "b", b, "f32");
  const bStrides = broadcastStrides(op, a, b);
  const out = allocTensor(backend, "f32", a.dims, a.shape);
  return fill(out, () => backend.kernels.binary(kernel, a.ref(), contiguousStrides(a.shape), b.ref(), bStrides, out.ref()));
}

/** a + b, broadcasting b by name. */
export function add<const A extends Dims, const B extends Dims>(
  a: Tensor<"f32", A>,
  b: Broadcastable<"add", A, B>,
): Tensor<"f32", A> {
  return binary("add", "add", a, b);
}

/** a − b, broadcasting b by name. */
export function sub<const A extends Dims, const B extends Dims>(
  a: Tensor<"f32", A>,
  b: Broadcastable<"sub", A, B>,
): Tensor<"f32", A> {
  return binary("sub", "sub", a, b);
}

/** a · b elementwise, broadcasting b by name. */
export function mul<const A extends Dims, const B extends Dims>(
  a: Tensor<"f32", A>,
  b: Broadcastable<"mul", A, B>,
): Tensor<"f32", A> {
  return binary("mul", "mul", a, b);
}

/** a / b elementwise, broadcasting b by name. */
export function div<const A extends Dims, const B extends Dims>(
  a: Tensor<"f32", A>,
  b: Broadcastable<"div", A, B>,
): Tensor<"f32", A> {
  return binary("div", "div", a, b);
}

/** max(a, b) elementwise, broadcasting b by name. */
export function maximum<const A extends Dims, const B extends Dims>(
  a: Tensor<"f32", A>,
  b: Broadcastable<"maximum", A, B>,
): Tensor<"f32", A> {
  return binary("maximum", "max", a, b);
}

/** min(a, b) elementwise, broadcasting b by name. */
export function minimum<const A extends Dims, const B extends Dims>(
  a: Tensor<"f32", A>,
  b: Broadcastable<"minimum", A, B>,
): Tensor<"f32", A> {
  return binary("minimum", "min", a, b);
}

function unary<D extends Dims>(op: UnaryOp, x: Tensor<"f32", D>): Tensor<"f32", D> {
  const backend = commonBackend(op, x);
  requireDtype(op, "x", x, "f32");
  const out = allocTensor(backend, "f32", x.dims, x.shape);
  return fill(out, () => backend.kernels.unary(op, x.ref(), out.ref()));
}

export const neg = <D extends Dims>(x: Tensor<"f32", D>): Tensor<"f32", D> => unary("neg", x);
export const abs = <D extends Dims>(x: Tensor<"f32", D>): Tensor<"f32", D> => unary("abs", x);
export const exp = <D extends Dims>(x: Tensor<"f32", D>): Tensor<"f32", D> => unary("exp", x);
export const relu = <D extends Dims>(x: Tensor<"f32", D>): Tensor<"f32", D> => unary("relu", x);
/** Squared ReLU, the FFN activation of BitNet b1.58 2B-4T. */
export const relu2 = <D extends Dims>(x: Tensor<"f32", D>): Tensor<"f32", D> => unary("relu2", x);
/** x · sigmoid(x), the FFN gate activation of Llama-style models and 1bitLLM BitNet. */
export const silu = <D extends Dims>(x: Tensor<"f32", D>): Tensor<"f32", D> => unary("silu", x);
export const gelu = <D extends Dims>(x: Tensor<"f32", D>): Tensor<"f32", D> => unary("gelu", x);

/** x · factor. */
export function scale<D extends Dims>(x: Tensor<"f32", D>, factor: number): Tensor<"f32", D> {
  const backend = commonBackend("scale", x);
  requireDtype("scale", "x", x, "f32");
  const out = allocTensor(backend, "f32", x.dims, x.shape);
  return fill(out, () => backend.kernels.scale(x.ref(), factor, out.ref()));
}
