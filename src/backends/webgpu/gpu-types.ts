/**
 * The part of the WebGPU API this library uses, declared structurally. Barbell does not depend on
 * `@webgpu/types` (its ambient globals would leak into every file of the project); Dawn's `create()` in
 * Node and `navigator.gpu` in browsers both satisfy these shapes.
 */

export interface GpuAdapterInfoLike {
  readonly vendor?: string;
  readonly architecture?: string;
  readonly device?: string;
  readonly description?: string;
}

export interface GpuLimitsLike {
  readonly maxStorageBufferBindingSize: number;
  readonly maxBufferSize: number;
  readonly maxComputeWorkgroupsPerDimension: number;
  readonly maxComputeWorkgroupStorageSize: number;
  readonly maxComputeInvocationsPerWorkgroup: number;
  readonly maxStorageBuffersPerShaderStage: number;
}

export interface GpuAdapterLike {
  readonly info?: GpuAdapterInfoLike;
  readonly limits: GpuLimitsLike;
  readonly features: { has(name: string): boolean };
  requestDevice(descriptor?: {
    requiredFeatures?: string[];
    requiredLimits?: Record<string, number>;
    label?: string;
  }): Promise<GpuDeviceLike>;
}

export interface GpuLike {
  requestAdapter(options?: { powerPreference?: "low-power" | "high-performance"; forceFallbackAdapter?: boolean }): Promise<GpuAdapterLike | null>;
  readonly wgslLanguageFeatures?: { has(name: string): boolean };
}

export interface GpuBufferLike {
  readonly size: number;
  mapAsync(mode: number, offset?: number, size?: number): Promise<void>;
  getMappedRange(offset?: number, size?: number): ArrayBuffer;
  unmap(): void;
  destroy(): void;
}

export interface GpuBindGroupLayoutLike {
  readonly label?: string;
}

export interface GpuBindGroupLike {
  readonly label?: string;
}

export interface GpuComputePipelineLike {
  getBindGroupLayout(index: number): GpuBindGroupLayoutLike;
}

export interface GpuShaderModuleLike {
  getCompilationInfo(): Promise<{ readonly messages: readonly { readonly type: string; readonly message: string; readonly lineNum: number }[] }>;
}

export interface GpuComputePassLike {
  setPipeline(pipeline: GpuComputePipelineLike): void;
  setBindGroup(index: number, group: GpuBindGroupLike): void;
  dispatchWorkgroups(x: number, y?: number, z?: number): void;
  end(): void;
}

export interface GpuCommandEncoderLike {
  beginComputePass(descriptor?: { label?: string }): GpuComputePassLike;
  copyBufferToBuffer(src: GpuBufferLike, srcOffset: number, dst: GpuBufferLike, dstOffset: number, size: number): void;
  clearBuffer(buffer: GpuBufferLike, offset?: number, size?: number): void;
  finish(): unknown;
}

export interface GpuQueueLike {
  submit(commandBuffers: unknown[]): void;
  writeBuffer(buffer: GpuBufferLike, offset: number, data: ArrayBufferView | ArrayBuffer, dataOffset?: number, size?: number): void;
  onSubmittedWorkDone(): Promise<void>;
}

export interface GpuErrorLike {
  readonly message: string;
}

export interface GpuDeviceLike {
  readonly limits: GpuLimitsLike;
  readonly queue: GpuQueueLike;
  readonly lost: Promise<{ readonly reason: string; readonly message: string }>;
  createBuffer(descriptor: { size: number; usage: number; mappedAtCreation?: boolean; label?: string }): GpuBufferLike;
  createShaderModule(descriptor: { code: string; label?: string }): GpuShaderModuleLike;
  createComputePipeline(descriptor: {
    layout: "auto";
    compute: { module: GpuShaderModuleLike; entryPoint: string; constants?: Record<string, number> };
    label?: string;
  }): GpuComputePipelineLike;
  createBindGroup(descriptor: {
    layout: GpuBindGroupLayoutLike;
    entries: { binding: number; resource: { buffer: GpuBufferLike; offset?: number; size?: number } }[];
    label?: string;
  }): GpuBindGroupLike;
  createCommandEncoder(descriptor?: { label?: string }): GpuCommandEncoderLike;
  pushErrorScope(filter: "validation" | "out-of-memory" | "internal"): void;
  popErrorScope(): Promise<GpuErrorLike | null>;
  destroy(): void;
}

/** GPUBufferUsage flags (the WebGPU spec's values; Node has no global for them). */
export const BUFFER_USAGE = {
  MAP_READ: 0x0001,
  MAP_WRITE: 0x0002,
  COPY_SRC: 0x0004,
  COPY_DST: 0x0008,
  UNIFORM: 0x0040,
  STORAGE: 0x0080,
} as const;

/** GPUMapMode.READ. */
export const MAP_READ = 0x0001;
