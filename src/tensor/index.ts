/** Typed tensors with named dimensions and the ops over them. */
export type { Dims, KnownDim, ShapeOf } from "./dims.js";
export { DIM_VOCABULARY } from "./dims.js";
export { Tensor, tensor, zeros, int32Tensor, denseWeights, type DType, type TensorOptions, type WeightOptions } from "./tensor.js";
export { defaultBackend, setDefaultBackend } from "./context.js";
export { matmul, linear, linearQuantized, matmulBinary, embedding } from "./ops/matmul.js";
export { add, sub, mul, div, maximum, minimum, neg, abs, exp, relu, relu2, silu, gelu, scale } from "./ops/elementwise.js";
export { rename, split, merge, reshape, transpose, slice, concat } from "./ops/shape.js";
export { rmsNorm, rope, softmax, attention, type RopeOptions, type AttentionOptions } from "./ops/nn.js";
export {
  toTernary,
  toBinary,
  ternarize,
  ternaryFromCodes,
  binarize,
  quantizeActivations,
  type QuantizedActivations,
  type PackedOptions,
} from "./ops/quant.js";
