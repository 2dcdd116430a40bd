/**
 * barbell's WASM SIMD128 kernels (AssemblyScript). Every export takes byte offsets into the imported linear
 * memory, which the JS side allocates and grows; nothing here allocates. See src/backends/wasm-simd.
 */
import { OP_TABLE_HASH } from "./ops.generated";

export { matmulTernaryI8, ternaryScratchBytes } from "./ternary";
export { matmulBinaryI8, matmulBinaryBinary } from "./binary";
export { matmulF32, matmulF16, matmulBF16, embedding } from "./dense";
export { embeddingBlocks, headScratchBytes, matmulHeadI8, quantizeHeadActivations } from "./head";
export { firstNonFinite, quantizeActivations, rmsNorm, rope, softmax, attention, unary, binary, scale } from "./float";

/** The op table fingerprint these kernels were generated from (OP_TABLE_HASH in src/backends/ops.ts). */
export function opTableHash(): u32 {
  return OP_TABLE_HASH;
}

/** First byte past the module's static data: the JS allocator starts at or above it. */
export function heapBase(): usize {
  return __heap_base;
}
