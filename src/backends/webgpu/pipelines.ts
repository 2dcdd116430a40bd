/**
 * Compute pipelines and command recording.
 *
 * - {@link PipelineCache}: one shader module and pipeline per distinct WGSL source (kernels generate
 *   their source from a few compile-time parameters, so the source is the key).
 * - {@link Recorder}: kernels record dispatches into one command encoder and one compute pass; nothing
 *   is submitted until a readback, a queue write or an explicit flush. A decode step therefore costs one
 *   submission, not one per kernel. Each dispatch gets its parameters in a small uniform buffer, released
 *   after submission. Device errors are captured per submission with an error scope and surface as a
 *   WebGpuError at the next {@link Recorder.settle}.
 * - The status buffer: kernels that can meet bad data (a non-finite activation to quantize, a token id
 *   outside the vocabulary, a position outside the RoPE table) record the first offending index there
 *   instead of trapping; {@link Recorder.checkStatus} reads it with the results.
 */
import { ShapeError, ValueError } from "../../core/errors.js";
import type { WebGpuDevice } from "./device.js";
import { WebGpuError } from "./errors.js";
import {
  BUFFER_USAGE,
  type GpuBufferLike,
  type GpuCommandEncoderLike,
  type GpuComputePassLike,
  type GpuComputePipelineLike,
  type GpuErrorLike,
} from "./gpu-types.js";

/** Entry point every kernel shader uses. */
export const ENTRY_POINT = "main";

export class PipelineCache {
  readonly #pipelines = new Map<string, GpuComputePipelineLike>();

  /** @param track receives the error-scope result of each compilation (the recorder reports it at settle). */
  constructor(
    private readonly gpu: WebGpuDevice,
    private readonly track: (result: Promise<GpuErrorLike | null>) => void,
  ) {}

  get size(): number {
    return this.#pipelines.size;
  }

  /** The pipeline for this WGSL source, compiled on first use. */
  get(label: string, code: string): GpuComputePipelineLike {
    const cached = this.#pipelines.get(code);
    if (cached !== undefined) {
      return cached;
    }
    this.gpu.assertAlive();
    const device = this.gpu.device;
    device.pushErrorScope("validation");
    const module = device.createShaderModule({ code, label });
    const pipeline = device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: ENTRY_POINT }, label });
    this.track(device.popErrorScope());
    this.#pipelines.set(code, pipeline);
    return pipeline;
  }

  /** Compiles a source now and reports its WGSL errors (for tests and load-time checks). */
  async check(label: string, code: string): Promise<void> {
    const device = this.gpu.device;
    device.pushErrorScope("validation");
    const module = device.createShaderModule({ code, label });
    const info = await module.getCompilationInfo();
    const failed = await device.popErrorScope();
    const errors = info.messages.filter((m) => m.type === "error");
    if (errors.length > 0 || failed !== null) {
      const first = errors[0];
      const detail = first === undefined ? (failed?.message ?? "") : `line ${first.lineNum}: ${first.message}`;
      throw new WebGpuError("gpu-error", `[webgpu] shader ${label} does not compile: ${detail.split("\n")[0] ?? ""}`);
    }
    this.get(label, code);
  }
}

/** Status words: the first (lowest) offending index of each kind since the last check; all ones = none. */
export const STATUS = { nonFinite: 0, badId: 1, badPosition: 2 } as const;
const STATUS_WORDS = 4;
const STATUS_CLEAR = new Uint32Array(STATUS_WORDS).fill(0xffffffff);

/** WGSL declaration of the status buffer at a binding. */
export function statusBinding(binding: number): string {
  return `@group(0) @binding(${binding}) var<storage, read_write> status: array<atomic<u32>, ${STATUS_WORDS}>;`;
}

/** Workgroup grid for `count` workgroups within the per-dimension limit; shaders rebuild the flat id. */
export function grid(count: number, maxPerDimension: number): [number, number] {
  if (count <= maxPerDimension) {
    return [Math.max(count, 1), 1];
  }
  const y = Math.ceil(count / maxPerDimension);
  if (y > maxPerDimension) {
    throw new WebGpuError("limit", `[webgpu] ${count} workgroups exceed the dispatch limit`);
  }
  return [maxPerDimension, y];
}

/** WGSL: the flat workgroup index of a 2-D grid made by {@link grid}. */
export const FLAT_WORKGROUP_WGSL = /* wgsl */ `
fn flat_workgroup(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return wid.x + wid.y * nwg.x;
}
`;

export class Recorder {
  #encoder: GpuCommandEncoderLike | undefined;
  #pass: GpuComputePassLike | undefined;
  #transient: GpuBufferLike[] = [];
  #pendingErrors: Promise<GpuErrorLike | null>[] = [];
  #dispatches = 0;
  #recorded = 0;
  #submissions = 0;
  readonly #scratch = new Map<string, GpuBufferLike>();
  readonly status: GpuBufferLike;

  constructor(private readonly gpu: WebGpuDevice) {
    this.status = gpu.device.createBuffer({
      size: STATUS_WORDS * 4,
      usage: BUFFER_USAGE.STORAGE | BUFFER_USAGE.COPY_SRC | BUFFER_USAGE.COPY_DST,
      label: "status",
    });
    gpu.device.queue.writeBuffer(this.status, 0, STATUS_CLEAR);
  }

  /** Adds a device error-scope result to those {@link settle} reports. */
  track(result: Promise<GpuErrorLike | null>): void {
    this.#pendingErrors.push(result);
  }

  /** Command buffers of recorded kernels submitted so far (one per flush that had work). */
  get submissions(): number {
    return this.#submissions;
  }

  /** Dispatches recorded so far (non-empty ones; a debug count for tests and docs). */
  get recorded(): number {
    return this.#recorded;
  }

  /** Dispatches recorded since the last flush. */
  get pending(): number {
    return this.#dispatches;
  }

  /**
   * Records one dispatch: binding 0 is the uniform `params` (when given), then `buffers` in order.
   * `workgroups` is the flat count; the grid is folded into two dimensions when it exceeds the limit.
   */
  dispatch(pipeline: GpuComputePipelineLike, params: Uint32Array | undefined, buffers: readonly GpuBufferLike[], workgroups: number): void {
    if (workgroups === 0) {
      return;
    }
    this.gpu.assertAlive();
    this.#recorded++;
    const device = this.gpu.device;
    const pass = this.#openPass();
    const entries: { binding: number; resource: { buffer: GpuBufferLike } }[] = [];
    if (params !== undefined) {
      const uniform = device.createBuffer({ size: Math.max(16, Math.ceil(params.byteLength / 16) * 16), usage: BUFFER_USAGE.UNIFORM, mappedAtCreation: true, label: "params" });
      new Uint32Array(uniform.getMappedRange()).set(params);
      uniform.unmap();
      this.#transient.push(uniform);
      entries.push({ binding: 0, resource: { buffer: uniform } });
    }
    const first = params === undefined ? 0 : 1;
    buffers.forEach((buffer, i) => entries.push({ binding: first + i, resource: { buffer } }));
    const group = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
    const [x, y] = grid(workgroups, this.gpu.limits.maxComputeWorkgroupsPerDimension);
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(x, y);
    this.#dispatches++;
  }

  /**
   * A device buffer of at least `bytes` for intermediate results, reused by every call with the same
   * `name` (dispatches run in recording order, so a later call may overwrite what an earlier one is done
   * with). A buffer that has to grow is released after the next submission.
   */
  scratch(name: string, bytes: number): GpuBufferLike {
    const size = Math.max(16, Math.ceil(bytes / 16) * 16);
    const existing = this.#scratch.get(name);
    if (existing !== undefined && existing.size >= size) {
      return existing;
    }
    if (existing !== undefined) {
      this.#transient.push(existing);
    }
    const buffer = this.gpu.device.createBuffer({ size, usage: BUFFER_USAGE.STORAGE | BUFFER_USAGE.COPY_SRC | BUFFER_USAGE.COPY_DST, label: name });
    this.#scratch.set(name, buffer);
    return buffer;
  }

  /** Destroys a buffer after the next submission when commands are pending (they may use it), else now. */
  retire(buffer: GpuBufferLike): void {
    if (this.#encoder === undefined) {
      buffer.destroy();
    } else {
      this.#transient.push(buffer);
    }
  }

  /** Records a zero fill of a whole buffer, ordered after earlier dispatches. */
  clear(buffer: GpuBufferLike): void {
    this.#closePass();
    this.#openEncoder().clearBuffer(buffer);
    this.#dispatches++;
  }

  /** Records a buffer-to-buffer copy (offsets and size multiples of 4), ordered after earlier dispatches. */
  copy(src: GpuBufferLike, srcOffset: number, dst: GpuBufferLike, dstOffset: number, size: number): void {
    this.#closePass();
    this.#openEncoder().copyBufferToBuffer(src, srcOffset, dst, dstOffset, size);
    this.#dispatches++;
  }

  /** Submits everything recorded so far (a no-op when nothing is pending). */
  flush(): void {
    if (this.#encoder === undefined) {
      return;
    }
    this.#closePass();
    const encoder = this.#encoder;
    this.#encoder = undefined;
    this.#dispatches = 0;
    const device = this.gpu.device;
    device.queue.submit([encoder.finish()]);
    this.#submissions++;
    this.#pendingErrors.push(device.popErrorScope());
    for (const buffer of this.#transient) {
      buffer.destroy();
    }
    this.#transient = [];
  }

  /** Flushes, waits for the queue and throws the first device error of the submissions since the last settle. */
  async settle(): Promise<void> {
    this.flush();
    const pending = this.#pendingErrors;
    this.#pendingErrors = [];
    await this.gpu.device.queue.onSubmittedWorkDone();
    for (const result of await Promise.all(pending)) {
      if (result !== null) {
        throw new WebGpuError("gpu-error", `[webgpu] the device reported: ${result.message.split("\n")[0] ?? ""}`);
      }
    }
    this.gpu.assertAlive();
  }

  /**
   * Reads and clears the status words; throws ValueError "non-finite" or ShapeError "bounds" for the
   * first problem recorded since the last check.
   */
  async checkStatus(read: (buffer: GpuBufferLike) => Promise<Uint32Array>): Promise<void> {
    await this.settle();
    this.takeStatus(await read(this.status));
  }

  /**
   * Given status words read back (with a result, in the same submission), clears them on the device and
   * throws ValueError "non-finite" or ShapeError "bounds" for the first problem they record.
   */
  takeStatus(words: Uint32Array): void {
    const nonFinite = words[STATUS.nonFinite] ?? 0xffffffff;
    const badId = words[STATUS.badId] ?? 0xffffffff;
    const badPosition = words[STATUS.badPosition] ?? 0xffffffff;
    if (nonFinite === 0xffffffff && badId === 0xffffffff && badPosition === 0xffffffff) {
      return;
    }
    this.gpu.device.queue.writeBuffer(this.status, 0, STATUS_CLEAR);
    if (nonFinite !== 0xffffffff) {
      throw new ValueError("non-finite", `[webgpu quantizeActivations] a non-finite input (first at element ${nonFinite} of a call)`, nonFinite);
    }
    if (badId !== 0xffffffff) {
      throw new ShapeError("bounds", `[webgpu embedding] a token id outside the vocabulary (first at position ${badId} of a call)`);
    }
    throw new ShapeError("bounds", `[webgpu rope] a position outside the RoPE table (first at row ${badPosition} of a call)`);
  }

  #openEncoder(): GpuCommandEncoderLike {
    if (this.#encoder === undefined) {
      this.gpu.device.pushErrorScope("validation");
      this.#encoder = this.gpu.device.createCommandEncoder({ label: "kernels" });
    }
    return this.#encoder;
  }

  #openPass(): GpuComputePassLike {
    if (this.#pass === undefined) {
      this.#pass = this.#openEncoder().beginComputePass({ label: "kernels" });
    }
    return this.#pass;
  }

  #closePass(): void {
    this.#pass?.end();
    this.#pass = undefined;
  }
}
