/**
 * Contractions over a named dimension. Weights are [out, in] as in a linear layer; the input's
 * last dimension must carry the same *name* as the weights' `in` dimension, or the call does not
 * compile. Runtime checks compare the sizes: `[matmul] embed: 2560 vs 2048`.
 */
import { ShapeError } from "../../core/errors.js";
import type { Dims, Init, Last, Show } from "../dims.js";
import { allocTensor, fill, layoutArg, tensorArg, type Tensor } from "../tensor.js";
import { asMatrix, commonBackend, requireDtype, requireSameSize } from "./check.js";
import type { Backend, DenseDType, TensorRef } from "../../backends/backend.js";
import { quantizeActivations, type QuantizedActivations } from "./quant.js";
import { DENSE_FORMATS, INTEGER_HEAD_FORMATS, type IntegerHeadFormat } from "../../quant/dtypes.js";

/** true when x[..., K] can be contracted with w[N, K] into [..., N]; else a readable error. */
export type ContractionCheck<Op extends string, X extends Dims, W extends Dims> = W extends readonly [
  string,
  string,
]
  ? [Last<X>] extends [W[1]]
    ? [W[1]] extends [Last<X>]
      ? W[0] extends Init<X>[number]
        ? `[${Op}] output dim '${W[0]}' of w ${Show<W>} is already a dim of x ${Show<X>}`
        : true
      : `[${Op}] contraction mismatch: x ${Show<X>} ends in '${Last<X>}', w ${Show<W>} ends in '${W[1]}'`
    : `[${Op}] contraction mismatch: x ${Show<X>} ends in '${Last<X>}', w ${Show<W>} ends in '${W[1]}'`
  : `[${Op}] weights need two dims [out, in], got ${Show<W>}`;

/** The parameter type of `w`: the tensor itself when the contraction is valid, else the message. */
export type Weights<Op extends string, DT extends string, X extends Dims, W extends Dims> =
  ContractionCheck<Op, X, W> extends true ? Tensor<DT & Tensor["dtype"], W> : ContractionCheck<Op, X, W>;

export type Contracted<X extends Dims, W extends Dims> = [...Init<X>, W[0]];

function contractionShape(op: string, x: Tensor, w: Tensor): { rows: number; n: number; shape: number[] } {
  if (x.rank === 0) {
    throw new ShapeError("rank", `[${op}] x needs at least one dimension`);
  }
  const k = x.shape[x.rank - 1] ?? 0;
  const [n = 0, wk = 0] = w.shape;
  requireSameSize(op, String(x.dims[x.rank - 1]), k, wk);
  return { rows: x.size / k, n, shape: [...x.shape.slice(0, -1), n] };
}

const DENSE: readonly DenseDType[] = DENSE_FORMATS;

/**
 * x[..., K] against w[N, K] into a fresh [..., N] tensor of `outDtype`, filled by `kernel` with x viewed as a
 * matrix [rows, K] and out as [rows, N]; the operands' dtypes and the contracted sizes are checked first.
 */
function contract<X extends Dims, W extends Dims, O extends "f32" | "i32">(
  op: string,
  x: Tensor<Tensor["dtype"], X>,
  weights: Tensor<Tensor["dtype"], W>,
  dtypes: { readonly x: readonly Tensor["dtype"][]; readonly w: readonly Tensor["dtype"][]; readonly out: O },
  kernel: (kernels: Backend["kernels"], x: TensorRef, w: TensorRef, out: TensorRef) => void,
): Tensor<O, Contracted<X, W>> {
  const backend = commonBackend(op, x, weights);
  requireDtype(op, "x", x, ...dtypes.x);
  requireDtype(op, "w", weights, ...dtypes.w);
  const { rows, n, shape } = contractionShape(op, x, weights);
  const layout = layoutArg<Contracted<X, W>>(op, [...x.dims.slice(0, -1), weights.dims[0]], shape);
  const out = allocTensor(backend, dtypes.out, layout.dims, layout.shape);
  return fill(out, () => kernel(backend.kernels, asMatrix(x), weights.ref(), { ...out.ref(), shape: [rows, n] }));
}

/**
 * Float matmul: x[..., K] · w[N, K]ᵀ → [..., N] (dense layers, the output head). `w` may be f32 or
 * dense weights kept in a block format (f16, bf16, q8_0, q6_k), decoded row by row.
 */
export function matmul<const X extends Dims, const W extends Dims>(
  x: Tensor<"f32", X>,
  w: Weights<"matmul", DenseDType, X, W>,
): Tensor<"f32", Contracted<X, W>> {
  return contractDense(x, tensorArg<Tensor<DenseDType, W>>("matmul", "w", w));
}

/**
 * @internal `matmul` after its compile-time check: for `linear` and the training tape, whose own signatures
 * checked the names (the runtime checks all run here).
 */
export function contractDense<X extends Dims, W extends Dims>(
  x: Tensor<"f32", X>,
  weights: Tensor<DenseDType, W>,
): Tensor<"f32", Contracted<X, W>> {
  return contract("matmul", x, weights, { x: ["f32"], w: DENSE, out: "f32" }, (k, xm, wr, out) => k.matmulDense(xm, wr, out));
}

/** The weight formats of the integer head (`matmulQ8I8`). */
export type IntegerHeadDType = IntegerHeadFormat;
const INTEGER_HEAD: readonly IntegerHeadDType[] = INTEGER_HEAD_FORMATS;

/**
 * The integer output head: x[..., K] · w[N, K]ᵀ → [..., N] for Q8_0 weights (x quantized per 32-element block,
 * llama.cpp's Q8_0 matmul) or Q4_K / Q5_K / Q6_K weights (x quantized per 256-element block with 16-element
 * sums, llama.cpp's k-quant × Q8_K products), so that every product is an integer one. Bit-identical on every
 * backend that has it (kernel `matmulQ8I8`); logits move by about 0.5 % (rel L2) against `matmul` on the same
 * weights.
 */
export function matmulQ8I8<const X extends Dims, const W extends Dims>(
  x: Tensor<"f32", X>,
  w: Weights<"matmulQ8I8", IntegerHeadDType, X, W>,
): Tensor<"f32", Contracted<X, W>> {
  const weights = tensorArg<Tensor<IntegerHeadDType, W>>("matmulQ8I8", "w", w);
  return contract("matmulQ8I8", x, weights, { x: ["f32"], w: INTEGER_HEAD, out: "f32" }, (k, xm, wr, out) => k.matmulQ8I8(xm, wr, out));
}

/**
 * A linear layer over any weight type: f32 weights run a float matmul; ternary and binary weights
 * quantize x per token to int8 (absmax, round-half-even), accumulate exactly in int32 and scale
 * once per output (BitNet's BitLinear without its norm).
 */
export function linear<const X extends Dims, const W extends Dims>(
  x: Tensor<"f32", X>,
  w: Weights<"linear", DenseDType | "ternary" | "binary", X, W>,
): Tensor<"f32", Contracted<X, W>> {
  const weights = tensorArg<Tensor<DenseDType | "ternary" | "binary", W>>("linear", "w", w);
  commonBackend("linear", x, weights);
  requireDtype("linear", "x", x, "f32");
  requireDtype("linear", "w", weights, ...DENSE, "ternary", "binary");
  contractionShape("linear", x, weights);
  if (weights.dtype !== "ternary" && weights.dtype !== "binary") {
    return contractDense(x, weights as Tensor<DenseDType, W>);
  }
  using q = quantizeActivations(x);
  return contractPacked(q, weights as Tensor<"ternary" | "binary", W>);
}

/**
 * A BitLinear over activations already quantized by `quantizeActivations` — lets q, k and v (or gate
 * and up) share one quantization of the same input, as BitNet does.
 */
export function linearQuantized<const X extends Dims, const W extends Dims>(
  x: QuantizedActivations<X>,
  w: Weights<"linearQuantized", "ternary" | "binary", X, W>,
): Tensor<"f32", Contracted<X, W>> {
  return contractPacked(x, tensorArg<Tensor<"ternary" | "binary", W>>("linearQuantized", "w", w));
}

/** @internal `linearQuantized` after its compile-time check (as {@link contractDense}). */
export function contractPacked<X extends Dims, W extends Dims>(
  x: QuantizedActivations<X>,
  weights: Tensor<"ternary" | "binary", W>,
): Tensor<"f32", Contracted<X, W>> {
  const backend = commonBackend("linearQuantized", x.values, x.scales, weights);
  requireDtype("linearQuantized", "w", weights, "ternary", "binary");
  const { rows, n, shape } = contractionShape("linearQuantized", x.values, weights);
  const layout = layoutArg<Contracted<X, W>>("linearQuantized", [...x.values.dims.slice(0, -1), weights.dims[0]], shape);
  const out = allocTensor(backend, "f32", layout.dims, layout.shape);
  const outRef = { ...out.ref(), shape: [rows, n] };
  const scales = { ...x.scales.ref(), shape: [rows] };
  const kernel = weights.dtype === "ternary" ? backend.kernels.matmulTernaryI8 : backend.kernels.matmulBinaryI8;
  return fill(out, () => kernel(asMatrix(x.values), scales, weights.ref(), outRef));
}

/** Rows of an embedding table: ids[S] (i32) → [S, E]. Ids outside the vocabulary are a ShapeError. */
export function embedding<const S extends string, const V extends string, const E extends string>(
  ids: Tensor<"i32", readonly [S]>,
  table: Tensor<DenseDType, readonly [V, E]>,
): Tensor<"f32", [S, E]> {
  const backend = commonBackend("embedding", ids, table);
  requireDtype("embedding", "ids", ids, "i32");
  requireDtype("embedding", "table", table, ...DENSE);
  if (ids.rank !== 1 || table.rank !== 2) {
    throw new ShapeError("rank", `[embedding] needs ids [seq] and a table [vocab, embed], got ${ids.describe()}, ${table.describe()}`);
  }
  const out = allocTensor(backend, "f32", [ids.dims[0], table.dims[1]] as [S, E], [ids.shape[0], table.shape[1]]);
  return fill(out, () => backend.kernels.embedding(ids.ref(), table.ref(), out.ref()));
}

/**
 * Binary × binary by XNOR-popcount: signs(x)[..., K] · signs(w)[N, K]ᵀ → exact int32 [..., N]
 * (scales are not applied; multiply by x.scale · w.scale for the float result).
 */
export function matmulBinary<const X extends Dims, const W extends Dims>(
  x: Tensor<"binary", X>,
  w: Weights<"matmulBinary", "binary", X, W>,
): Tensor<"i32", Contracted<X, W>> {
  const weights = tensorArg<Tensor<"binary", W>>("matmulBinary", "w", w);
  return contract("matmulBinary", x, weights, { x: ["binary"], w: ["binary"], out: "i32" }, (k, xm, wr, out) => k.matmulBinaryBinary(xm, wr, out));
}
