/**
 * Compile-time tests of the training tape and of the tensor layer's typed boundary (tensorArg, dimsArg,
 * layoutArg in src/tensor/tensor.ts): as tensor-types.ts, every `@ts-expect-error` line must fail to
 * type-check. Type-checked only; never run.
 */
import type { Tensor } from "../../src/index.js";
import { createTape } from "../../src/train/autograd.js";
import { dimsArg, layoutArg, tensorArg } from "../../src/tensor/tensor.js";

declare function t<const DT extends Tensor["dtype"], const D extends readonly string[]>(): Tensor<DT, D>;

const x = t<"f32", ["seq", "embed"]>();
const wUp = t<"f32", ["ffn", "embed"]>();
const wDown = t<"f32", ["embed", "ffn"]>();

// ---- the tape keeps the ops' compile-time checks ----
export function tape(): void {
  const g = createTape();
  const h: Tensor<"f32", ["seq", "ffn"]> = g.matmul(x, wUp);
  const l: Tensor<"f32", ["seq", "ffn"]> = g.linear(x, wUp);
  const b: Tensor<"f32", ["seq", "ffn"]> = g.bitLinear(x, wUp);
  // @ts-expect-error contraction mismatch: x ends in "embed", w ends in "ffn"
  g.matmul(x, wDown);
  // @ts-expect-error contraction mismatch in linear too
  g.linear(x, wDown);
  const s: Tensor<"f32", ["seq", "head", "headDim"]> = g.split(x, "embed", ["head", "headDim"], [4, 16]);
  // @ts-expect-error "seq" would appear twice
  g.split(x, "embed", ["seq", "headDim"], [4, 16]);
  const m: Tensor<"f32", ["seq", "embed"]> = g.merge(s, ["head", "headDim"], "embed");
  // @ts-expect-error "seq" is not directly followed by "headDim"
  g.merge(s, ["seq", "headDim"], "x");
  // @ts-expect-error merged name "seq" would repeat (the check of `merge`, shared)
  g.merge(s, ["head", "headDim"], "seq");
  const tr: Tensor<"f32", ["embed", "seq"]> = g.transpose(x, ["embed", "seq"]);
  // @ts-expect-error not a permutation
  g.transpose(x, ["embed", "vocab"]);
  // @ts-expect-error the norm weight must be over the last dim
  g.rmsNorm(x, t<"f32", ["seq"]>());
  void [h, l, b, m, tr];
  g.dispose();
}

// ---- the boundary: it gives the declared type, and only tensors, names and layouts ----
export function boundary(): void {
  const w: Tensor<"ternary", ["ffn", "embed"]> = tensorArg<Tensor<"ternary", ["ffn", "embed"]>>("op", "w", wUp);
  // @ts-expect-error tensorArg makes tensors only
  tensorArg<string>("op", "w", "x");
  const d: ["seq", "embed"] = dimsArg<["seq", "embed"]>("op", ["seq", "embed"]);
  // @ts-expect-error dimsArg makes dimension names only
  dimsArg<[1, 2]>("op", [1, 2]);
  const layout = layoutArg<["seq", "embed"]>("op", ["seq", "embed"], [1, 2]);
  const sizes: readonly [number, number] = layout.shape;
  // @ts-expect-error the layout has one size per name
  const one: readonly [number] = layout.shape;
  void [w, d, sizes, one];
}
