/** The CUDA layer's own error class (the project's classes are in src/core/errors.ts). */
import { BarbellError } from "../../core/errors.js";

export type CudaErrorCode =
  | "not-built" // barbell_cuda.node is missing, stale or failed to load (the message says why)
  | "no-driver" // the CUDA runtime found no driver (cudaErrorInsufficientDriver) or no device
  | "cuda-error" // any other CUDA runtime error
  | "bad-argument"; // the addon refused a size or pointer

export class CudaError extends BarbellError {
  constructor(
    readonly code: CudaErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "CudaError";
  }
}

/** Maps an error thrown by the addon (its `code`: ENODRIVER, ECUDA, EARG, EDATA) to a CudaError. */
export function fromAddonError(error: unknown, what: string): Error {
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  switch (code) {
    case "ENODRIVER":
      return new CudaError("no-driver", `[cuda ${what}] ${message}`);
    case "EARG":
      return new CudaError("bad-argument", `[cuda ${what}] ${message}`);
    default:
      return new CudaError("cuda-error", `[cuda ${what}] ${message}`);
  }
}
