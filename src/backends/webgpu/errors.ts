/** The WebGPU layer's own error class (the project's classes are in src/core/errors.ts). */
import { BarbellError } from "../../core/errors.js";

export type WebGpuErrorCode =
  | "no-runtime" // neither navigator.gpu nor the `webgpu` package (Dawn for Node) is there
  | "no-adapter" // the runtime is there but offers no adapter (no GPU and no usable software Vulkan)
  | "missing-feature" // the adapter lacks something the kernels need (the message says what)
  | "device-failed" // requestDevice refused or the device was lost
  | "limit" // a buffer or dispatch exceeds a device limit or a named limit of this layer
  | "gpu-error"; // the device reported a validation, out-of-memory or internal error

export class WebGpuError extends BarbellError {
  constructor(
    readonly code: WebGpuErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "WebGpuError";
  }
}
