/**
 * The `Kernels` / `FusedKernels` contract is derived from the op table (src/backends/ops.ts): an entry's
 * `params` are the kernel's signature. These checks run in `tsc` (npm run typecheck): each `@ts-expect-error`
 * fails the typecheck when the misuse below it stops being an error, so call sites keep precise types — a
 * wrong operand, attribute, sub-op name or arity is reported at the argument. The runtime part checks that
 * the derived contract and the table list the same kernels in the same order.
 */
import { describe, expect, expectTypeOf, it } from "vitest";
import type { BitnetBlockParams, BitnetBlockWeights, FusedKernels, Kernels, RopeMode, TensorRef } from "../../src/backends/backend.js";
import { createJsBackend } from "../../src/backends/js/index.js";
import { FUSED_OPS, KERNEL_OPS, type BinaryOp, type UnaryOp } from "../../src/backends/ops.js";

/** Never called: its body only has to typecheck. */
function misuse(k: Kernels, f: FusedKernels, t: TensorRef, w: BitnetBlockWeights, p: BitnetBlockParams): void {
  k.matmulF32(t, t, t);
  // @ts-expect-error an attribute where a tensor goes
  k.matmulF32(t, t, 3);
  // @ts-expect-error a sub-op the table does not have
  k.unary("softplus", t, t);
  // @ts-expect-error a binary op given to unary
  k.unary("add", t, t);
  // @ts-expect-error too many arguments
  k.binary("add", t, [1], t, [1], t, t);
  // @ts-expect-error too few
  k.rope(t, t, 10000, "neox");
  // @ts-expect-error not a RopeMode
  k.rope(t, t, 10000, "rotate", t);
  k.rmsNorm(t, undefined, 1e-5, t); // an optional tensor is `TensorRef | undefined`, in place
  k.concat([t, t], 0, t);
  // @ts-expect-error a list where one tensor goes
  k.copyStrided([t], 0, [1], t);
  f.bitnetBlock(t, t, t, t, 0, w, p, t);
  // @ts-expect-error a block's weights miss wq
  f.bitnetBlock(t, t, t, t, 0, { ...w, wq: undefined }, p, t);
  const impl: Partial<Kernels> = {
    // Implementations get their parameter types from the table (no annotations needed).
    // @ts-expect-error factor is a number
    scale: (x, factor: string, out) => void [x, factor, out],
  };
  void impl;
}
void misuse;

describe("kernel signatures derived from the op table", () => {
  it("should type each parameter from the entry's params", () => {
    expectTypeOf<Parameters<Kernels["unary"]>>().toEqualTypeOf<[UnaryOp, TensorRef, TensorRef]>();
    expectTypeOf<Parameters<Kernels["binary"]>>().toEqualTypeOf<[BinaryOp, TensorRef, readonly number[], TensorRef, readonly number[], TensorRef]>();
    expectTypeOf<Parameters<Kernels["rope"]>>().toEqualTypeOf<[TensorRef, TensorRef, number, RopeMode, TensorRef]>();
    expectTypeOf<Parameters<Kernels["rmsNorm"]>[1]>().toEqualTypeOf<TensorRef | undefined>();
    expectTypeOf<Parameters<FusedKernels["bitnetBlockBatch"]>[2]>().toEqualTypeOf<readonly TensorRef[]>();
    expectTypeOf<BitnetBlockWeights["wDown"]>().toEqualTypeOf<TensorRef>();
  });

  it("should list the table's kernels, in its order, in the reference backend", () => {
    expect(Object.keys(createJsBackend().kernels).sort()).toEqual(Object.keys(KERNEL_OPS).sort());
    expect(Object.keys(FUSED_OPS)).toEqual(["bitnetBlock", "bitnetBlockBatch"]);
  });
});
