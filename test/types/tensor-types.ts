/**
 * Compile-time tests: every `@ts-expect-error` line must fail to type-check, or tsc reports the
 * directive as unused and `npm test` fails. Lines without the directive must compile.
 * This file is type-checked only; it is never run.
 */
import type { Tensor } from "../../src/index.js";
import {
  add,
  attention,
  concat,
  linear,
  matmul,
  matmulBinary,
  merge,
  mul,
  rename,
  reshape,
  rmsNorm,
  rope,
  slice,
  softmax,
  split,
  tensor,
  toTernary,
  transpose,
  zeros,
} from "../../src/index.js";

declare function t<const DT extends Tensor["dtype"], const D extends readonly string[]>(): Tensor<DT, D>;

const x = t<"f32", ["seq", "embed"]>();
const wUp = t<"f32", ["ffn", "embed"]>();
const wDown = t<"f32", ["embed", "ffn"]>();
const tern = t<"ternary", ["ffn", "embed"]>();
const bin = t<"binary", ["ffn", "embed"]>();
const xb = t<"binary", ["seq", "embed"]>();

// ---- matmul / linear: contraction over the same name ----
const h: Tensor<"f32", ["seq", "ffn"]> = matmul(x, wUp);
const back: Tensor<"f32", ["seq", "embed"]> = matmul(h, wDown);
const lt: Tensor<"f32", ["seq", "ffn"]> = linear(x, tern);
const lb: Tensor<"f32", ["seq", "ffn"]> = linear(x, bin);
const xor: Tensor<"i32", ["seq", "ffn"]> = matmulBinary(xb, bin);
// @ts-expect-error contraction mismatch: x ends in "embed", w ends in "ffn"
matmul(x, wDown);
// @ts-expect-error the result keeps [seq, ffn], not [seq, embed]
const wrongOut: Tensor<"f32", ["seq", "embed"]> = matmul(x, wUp);
// @ts-expect-error output dim "seq" would repeat
matmul(x, t<"f32", ["seq", "embed"]>());
// @ts-expect-error weights must have two dims
matmul(x, t<"f32", ["embed"]>());
// @ts-expect-error float matmul refuses ternary weights (use linear)
matmul(x, tern);
// @ts-expect-error a ternary kernel cannot be handed unchecked floats as x
matmulBinary(x, bin);
// @ts-expect-error linear needs float activations, not packed ones
linear(xb, tern);
// @ts-expect-error x must be f32
linear(t<"i8", ["seq", "embed"]>(), tern);
// A ternary weight cannot be made by assertion of a float tensor's type.
// @ts-expect-error f32 is not ternary
const fake: Tensor<"ternary", ["ffn", "embed"]> = wUp;

// ---- elementwise broadcast by name ----
const bias = t<"f32", ["embed"]>();
const y1: Tensor<"f32", ["seq", "embed"]> = add(x, bias);
const y2: Tensor<"f32", ["seq", "embed"]> = mul(x, t<"f32", ["seq"]>());
// @ts-expect-error b has dim "vocab" that a lacks
add(x, t<"f32", ["vocab"]>());
// @ts-expect-error dims of b appear in a different order
add(x, t<"f32", ["embed", "seq"]>());
// @ts-expect-error a broadcast can only grow b, so a cannot be the smaller one
add(bias, x);

// ---- rename / split / merge / reshape / transpose / slice / concat ----
const r: Tensor<"f32", ["seq", "hidden"]> = rename(x, "embed", "hidden");
// @ts-expect-error "seq" is already a dim
rename(x, "embed", "seq");
// @ts-expect-error no dim "vocab" to rename
rename(x, "vocab", "v");
const s: Tensor<"f32", ["seq", "head", "headDim"]> = split(x, "embed", ["head", "headDim"], [4, 16]);
// @ts-expect-error "seq" would appear twice
split(x, "embed", ["seq", "headDim"], [4, 16]);
// @ts-expect-error no dim "ffn" to split
split(x, "ffn", ["a", "b"], [1, 1]);
const m: Tensor<"f32", ["seq", "embed"]> = merge(s, ["head", "headDim"], "embed");
// @ts-expect-error "seq" is not directly followed by "headDim"
merge(s, ["seq", "headDim"], "x");
// @ts-expect-error merged name "seq" would repeat
merge(s, ["head", "headDim"], "seq");
const rs: Tensor<"f32", ["embed"]> = reshape(x, ["embed"], [64]);
// @ts-expect-error reshape to a repeated name
reshape(x, ["a", "a"], [1, 1]);
const tr: Tensor<"f32", ["embed", "seq"]> = transpose(x, ["embed", "seq"]);
// @ts-expect-error not a permutation: "vocab" is not a dim
transpose(x, ["embed", "vocab"]);
// @ts-expect-error not a permutation: a dim is missing
transpose(s, ["head", "seq"]);
// @ts-expect-error packed ternary rows cannot be transposed
transpose(tern, ["embed", "ffn"]);
const sl: Tensor<"f32", ["seq", "embed"]> = slice(x, "seq", 0, 1);
// @ts-expect-error no dim "ctx"
slice(x, "ctx", 0, 1);
const c: Tensor<"f32", ["seq", "embed"]> = concat(x, x, "seq");
// @ts-expect-error dims differ
concat(x, t<"f32", ["seq", "ffn"]>(), "seq");

// ---- nn ----
const n1: Tensor<"f32", ["seq", "embed"]> = rmsNorm(x, bias);
const n2 = rmsNorm(x, undefined);
// @ts-expect-error the norm weight must be over the last dim
rmsNorm(x, t<"f32", ["seq"]>());
const p = t<"i32", ["seq"]>();
const q = t<"f32", ["seq", "head", "headDim"]>();
const rq = rope(q, p, { theta: 500000, mode: "neox" });
// @ts-expect-error positions must be over the same dim as x's first
rope(q, t<"i32", ["ctx"]>(), { theta: 500000, mode: "neox" });
// @ts-expect-error positions must be int32
rope(q, t<"f32", ["seq"]>(), { theta: 500000, mode: "neox" });
const k = t<"f32", ["ctx", "kvHead", "headDim"]>();
const a: Tensor<"f32", readonly ["seq", "head", "headDim"]> = attention(q, k, k);
// @ts-expect-error head widths must share a name
attention(q, t<"f32", ["ctx", "kvHead", "embed"]>(), k);
// @ts-expect-error k and v must have the same dims
attention(q, k, t<"f32", ["seq", "kvHead", "headDim"]>());
const sm = softmax(t<"f32", ["seq", "vocab"]>(), "vocab");
// @ts-expect-error softmax runs over the last dim only
softmax(t<"f32", ["seq", "vocab"]>(), "seq");

// ---- constructors ----
export function constructors(): void {
  const z = zeros(["seq", "embed"], [1, 2]);
  // @ts-expect-error one size per dim
  zeros(["seq", "embed"], [1]);
  // @ts-expect-error a dim name is used twice
  tensor([1, 2], ["seq", "seq"], [1, 2]);
  const tt = toTernary([1, 0, -1], ["embed"], [3]);
  if (tt.ok) {
    const w: Tensor<"ternary", ["embed"]> = tt.value;
    w.dispose();
  }
  z.dispose();
}
