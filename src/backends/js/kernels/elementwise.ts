/**
 * Reference element-wise kernels: unary activations and binary arithmetic with stride broadcasting.
 */
import { ShapeError, UsageError } from "../../../core/errors.js";
import type { BinaryOp, UnaryOp } from "../../backend.js";
import { checkLength, checkShape, checkSize, checkStrides } from "./check.js";

export type { BinaryOp, UnaryOp };

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/**
 * Scalar definitions, evaluated in float64 on f32 inputs. relu(−0) = +0; NaN propagates through every op.
 * gelu is the tanh approximation (PyTorch `gelu(approximate="tanh")`, ggml `gelu`).
 */
export const UNARY_SCALAR = {
  relu: (x) => Math.max(x, 0),
  relu2: (x) => {
    const r = Math.max(x, 0);
    return r * r;
  },
  silu: (x) => x / (1 + Math.exp(-x)),
  gelu: (x) => 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x))),
  sigmoid: (x) => 1 / (1 + Math.exp(-x)),
  tanh: (x) => Math.tanh(x),
  neg: (x) => -x,
  exp: (x) => Math.exp(x),
  abs: (x) => Math.abs(x),
} as const satisfies Record<UnaryOp, (x: number) => number>;

/**
 * Scalar definitions of the binary ops, evaluated in float64 on f32 inputs. max/min propagate NaN (like
 * PyTorch `maximum`/`minimum`, unlike IEEE maxNum) and order −0 below +0.
 */
export const BINARY_SCALAR = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  max: (a, b) => Math.max(a, b),
  min: (a, b) => Math.min(a, b),
} as const satisfies Record<BinaryOp, (a: number, b: number) => number>;

/**
 * out[i] = op(x[i]) for i < size. x, out: [size] f32; `out` may be the same array as `x`.
 *
 * Float semantics: the scalar function of UNARY_SCALAR in float64, rounded to f32 once. For relu, relu2,
 * neg and abs that equals the exact f32 result; exp, silu, gelu, sigmoid and tanh depend on the float64
 * libm, and other backends match them within a few ulp.
 */
export function unary(op: UnaryOp, x: Float32Array, size: number, out: Float32Array): void {
  const f = scalarOf(UNARY_SCALAR, "unary", op);
  checkSize(op, "size", size);
  checkLength(op, "x", x, size);
  checkLength(op, "out", out, size);
  for (let i = 0; i < size; i++) {
    out[i] = Math.fround(f(x[i] ?? 0));
  }
}

/** The scalar function of an op; an op the table (src/backends/ops.ts) does not name is UsageError "unsupported". */
function scalarOf<F>(table: Readonly<Record<string, F>>, kind: string, op: string): F {
  if (!Object.hasOwn(table, op)) {
    throw new UsageError("unsupported", `[${kind}] unknown op ${JSON.stringify(op)}`);
  }
  return table[op] as F;
}

/** Checks a strided operand of a broadcast: non-negative strides that stay inside the array. */
function checkOperand(
  op: string,
  name: string,
  array: Float32Array,
  strides: readonly number[],
  shape: readonly number[],
): void {
  checkStrides(op, `${name}Strides`, strides, shape.length);
  let last = 0;
  for (let d = 0; d < shape.length; d++) {
    const stride = strides[d] ?? 0;
    if (stride < 0) {
      throw new ShapeError("size", `[${op}] ${name}Strides[${d}] must not be negative, got ${stride}`);
    }
    last += ((shape[d] ?? 0) - 1) * stride;
  }
  checkLength(op, name, array, last + 1);
}

/**
 * Binary op with broadcasting by strides: for every index (i_0, …, i_{r−1}) of `shape`,
 *   out[row-major offset of i] = op(a[Σ_d i_d·aStrides[d]], b[Σ_d i_d·bStrides[d]]).
 * A stride of 0 repeats that operand along the dimension (broadcasting); a rank-0 shape is one element.
 * a, b: f32, read through their strides (in elements, non-negative); out: contiguous row-major `shape`.
 * `out` may be the same array as an operand only when that operand's strides are the contiguous ones.
 *
 * Float semantics: the scalar op in float64 on the f32 operands, rounded to f32 once, which for add, sub,
 * mul and div is exactly the IEEE f32 operation; max and min are exact.
 *
 * Allocation: one counter array of rank − 1 entries per call.
 */
export function binaryBroadcast(
  op: BinaryOp,
  a: Float32Array,
  aStrides: readonly number[],
  b: Float32Array,
  bStrides: readonly number[],
  shape: readonly number[],
  out: Float32Array,
): void {
  const f = scalarOf(BINARY_SCALAR, "binary", op);
  const total = checkShape(op, "shape", shape);
  checkLength(op, "out", out, total);
  if (total === 0) {
    return;
  }
  checkOperand(op, "a", a, aStrides, shape);
  checkOperand(op, "b", b, bStrides, shape);
  const rank = shape.length;
  const inner = rank === 0 ? 1 : (shape[rank - 1] ?? 1);
  const aInner = rank === 0 ? 0 : (aStrides[rank - 1] ?? 0);
  const bInner = rank === 0 ? 0 : (bStrides[rank - 1] ?? 0);
  const index = new Array<number>(Math.max(rank - 1, 0)).fill(0);
  let aBase = 0;
  let bBase = 0;
  for (let o = 0; o < total; o += inner) {
    for (let t = 0; t < inner; t++) {
      out[o + t] = Math.fround(f(a[aBase + t * aInner] ?? 0, b[bBase + t * bInner] ?? 0));
    }
    // Advance the outer dimensions like an odometer, last outer dimension fastest.
    for (let d = rank - 2; d >= 0; d--) {
      const size = shape[d] ?? 1;
      const next = (index[d] ?? 0) + 1;
      aBase += aStrides[d] ?? 0;
      bBase += bStrides[d] ?? 0;
      if (next < size) {
        index[d] = next;
        break;
      }
      index[d] = 0;
      aBase -= size * (aStrides[d] ?? 0);
      bBase -= size * (bStrides[d] ?? 0);
    }
  }
}

/**
 * out[i] = x[i] · factor for i < size. x, out: [size] f32; `out` may be the same array as `x`.
 *
 * Float semantics: factor is rounded to f32 once, then each product is the exact IEEE f32 multiplication
 * (float64 product of two f32 values, rounded to f32 once).
 */
export function scale(x: Float32Array, factor: number, size: number, out: Float32Array): void {
  const op = "scale";
  checkSize(op, "size", size);
  checkLength(op, "x", x, size);
  checkLength(op, "out", out, size);
  const f = Math.fround(factor);
  for (let i = 0; i < size; i++) {
    out[i] = Math.fround((x[i] ?? 0) * f);
  }
}
