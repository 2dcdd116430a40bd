/**
 * barbell: a TypeScript runtime for 1-bit and 1.58-bit (BitNet) language models.
 * This file is the public surface; everything else is internal.
 */
export * from "./tensor/index.js";
export { BarbellError, ShapeError, ValueError, UsageError, FormatError } from "./core/errors.js";
export { ok, err, unwrap, type Result, type Ok, type Err } from "./core/result.js";
export type { Backend, Kernels, TensorRef, BufferHandle } from "./backends/backend.js";
export { createJsBackend } from "./backends/js/index.js";
