/**
 * The backend contract: what a compute backend (the JS reference, and later WASM SIMD, native CPU,
 * WebGPU, CUDA) provides to barbell's tensors.
 *
 * Backends never see dimension names or typed tensors: at this boundary everything is erased to
 * {@link TensorRef} (a buffer, a dtype and a runtime shape). The typed layer in `src/tensor` checks
 * names and sizes before it calls a kernel, so kernels may assume their inputs are consistent.
 */
import type { Capabilities } from "./capabilities.js";
import type { BinaryOp, BitnetBlockWeights, FusedKernels, KernelName, Kernels, UnaryOp } from "./ops.js";
import type { DenseBlockFormat, DenseFormat, StorageDTypeName } from "../quant/dtypes.js";

/**
 * How elements are stored. The typed layer's dtypes map one to one onto these. The dtypes with `storage: true` in the
 * dtype table (src/quant/dtypes.ts): f32, i8, i32, "ternary" (packed 2-bit trits, "t2" layout of src/quant/layouts.ts
 * along the last dim, plus one scale), "binary" (packed sign bits, "b1" layout, plus one scale) and the
 * {@link DenseBlockDType} formats.
 */
export type StorageDType = StorageDTypeName;

/**
 * Dense float weights kept in their file format (embeddings, the output head): the block layouts of
 * src/quant, rows along the last dim. Kernels decode them on the fly, so a 650 MB F16 head stays 650 MB.
 */
export type DenseBlockDType = DenseBlockFormat;

/** Weight dtypes a dense (float) matmul and an embedding lookup accept (src/quant/dtypes.ts DENSE_FORMATS). */
export type DenseDType = DenseFormat;

/** An opaque handle to memory owned by one backend. */
export interface BufferHandle {
  /** Unique per backend instance, for diagnostics. */
  readonly id: number;
  readonly bytes: number;
}

/** An erased tensor: contiguous row-major storage of `shape` in `buffer`. */
export interface TensorRef {
  readonly buffer: BufferHandle;
  readonly dtype: StorageDType;
  readonly shape: readonly number[];
  /** For ternary and binary weights: the per-tensor float multiplier (γ or β). Absent otherwise. */
  readonly scale?: number;
}

/** The element-wise ops of `unary` and `binary`: the keys of the op table (ops.ts), which gives their codes. */
export type { BinaryOp, UnaryOp };
/**
 * The kernels a backend runs ({@link Kernels}), the fused steps it may run ({@link FusedKernels}), a block's
 * weights: derived from the op table (ops.ts), where each kernel's signature and documentation are written once.
 */
export type { BitnetBlockWeights, FusedKernels, KernelName, Kernels };
/**
 * Which dimensions rotate together:
 * - "neox": (j, j + headDim/2), rotate_half style (HF Llama, GGUF BitNet, llama.cpp NEOX rope type);
 * - "adjacent": (2j, 2j + 1), interleaved pairs (original RoPE, llama.cpp NORM rope type, xformers).
 */
export type RopeMode = "neox" | "adjacent";

export interface BitnetBlockParams {
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly eps: number;
  readonly ropeTheta: number;
  readonly attnScale: number;
  readonly activation: "relu2" | "silu";
}

/**
 * Every BitNet block of a model in one backend call (optional; native-cpu has it): `prepare` binds the layers'
 * weights once and returns a handle; its `run` / `runBatch` compute what `bitnetBlock` / `bitnetBlockBatch`
 * compute layer after layer (the same bits), so a decode step makes one call instead of one per layer.
 */
export interface BitnetLayersStep {
  /** Throws UsageError "dtype" when a projection is not ternary; the handle keeps the weights' bytes reachable. */
  prepare(layers: readonly BitnetBlockWeights[], params: BitnetBlockParams): BitnetLayers;
}

/** Prepared layers ({@link BitnetLayersStep}); every method but `dispose` throws UsageError "disposed" after it. */
export interface BitnetLayers {
  /** One sequence: h[S,E] at positions[S] (pos0 …) through every layer into out[S,E]; kCaches[l] / vCaches[l] are layer l's. */
  run(h: TensorRef, positions: TensorRef, kCaches: readonly TensorRef[], vCaches: readonly TensorRef[], pos0: number, out: TensorRef): void;
  /** A batch, one token per sequence: row b continues kCaches[b][l] / vCaches[b][l] at positions[b]. */
  runBatch(h: TensorRef, positions: TensorRef, kCaches: readonly (readonly TensorRef[])[], vCaches: readonly (readonly TensorRef[])[], out: TensorRef): void;
  dispose(): void;
}

/**
 * Where a backend keeps its buffers:
 * - "host": JS-visible bytes (a {@link HostBuffer} of host-memory.ts); `read` works synchronously and any
 *   host kernel that reads foreign buffers (the JS reference, native CPU) can run on them in place;
 * - "device": opaque buffers (a GPU's); written synchronously (a queued upload), read back only with
 *   `readAsync`, after the work queued on them has run.
 */
export type MemoryKind = "host" | "device";

/**
 * A compute backend instance. Memory is released deterministically: every `alloc` is matched by a
 * `free`, and `liveAllocations()` lets tests assert that nothing leaked.
 */
export interface Backend {
  readonly name: string;
  readonly kernels: Kernels;
  /** Fused multi-kernel steps this backend runs natively, if any (see {@link FusedKernels}). */
  readonly fused?: Partial<FusedKernels> | undefined;
  /** Every block in one call ({@link BitnetLayersStep}), when the head member offers it and no decorator needs each block's call. */
  readonly layers?: BitnetLayersStep | undefined;
  /** Where `alloc` puts buffers (see {@link MemoryKind}); `read` works only for "host". */
  readonly memoryKind: MemoryKind;
  /** Allocates zeroed memory. */
  alloc(bytes: number): BufferHandle;
  /**
   * Allocates zeroed buffers of `sizes` bytes back to back in one allocation, each freed on its own (a KV
   * cache's layers: in one range, the native backend backs them with transparent huge pages). Absent: callers
   * `alloc` each.
   */
  allocGroup?(sizes: readonly number[]): BufferHandle[];
  /**
   * Takes ownership of host bytes without copying where the backend can (weights read from a file);
   * the caller must not use `bytes` afterwards. Absent: callers use alloc() + write().
   */
  adopt?(bytes: Uint8Array): BufferHandle;
  /**
   * Where the weights stay host bytes read in place (ArrayBufferMemory): a buffer of `size` bytes that
   * `materialize` makes when first read, adopted then (weights converted on first use, not at load). Its errors
   * are thrown by that read. Absent: callers materialize now and `adopt`.
   */
  adoptLazy?(size: number, materialize: () => Uint8Array): BufferHandle;
  /** Releases memory; freeing twice is a no-op that returns false. */
  free(buffer: BufferHandle): boolean;
  /** Copies bytes into a buffer at a byte offset. */
  write(buffer: BufferHandle, src: Uint8Array, byteOffset?: number): void;
  /**
   * Copies bytes out of a buffer synchronously: host memory only (device memory throws UsageError
   * "unsupported"). The engine reads at its edges with {@link readAsync}; synchronous reads are for host-only
   * code (training, tests, the CLI's demos).
   */
  read(buffer: BufferHandle, byteOffset?: number, length?: number): Uint8Array;
  /** Copies bytes out of a buffer, on any memory (a device finishes the work queued on it first). */
  readAsync(buffer: BufferHandle, byteOffset?: number, length?: number): Promise<Uint8Array>;
  /** Number of buffers allocated and not yet freed. */
  liveAllocations(): number;
  /** Bytes held by live buffers. */
  liveBytes(): number;
}

// ---- providers, probing, and partial backends (composed into a complete Backend by the chain) ----

/** Names of the built-in backends. */
export type BackendName = "js" | "wasm-simd" | "native-cpu" | "webgpu" | "cuda";

/** A backend's buffers: what the dispatcher (backends/dispatch.ts) allocates, copies and reads through. */
export interface BufferMemory {
  readonly kind: MemoryKind;
  alloc(bytes: number): BufferHandle;
  /** Host memory: zeroed buffers back to back in one allocation (see Backend.allocGroup). */
  allocGroup?(sizes: readonly number[]): BufferHandle[];
  /** Takes host bytes (weights from a file): without a copy in host memory, as an upload on a device. */
  adopt(bytes: Uint8Array): BufferHandle;
  /** Host memory read in place only: bytes made on first read (see Backend.adoptLazy). */
  adoptLazy?(size: number, materialize: () => Uint8Array): BufferHandle;
  free(buffer: BufferHandle): boolean;
  /** Host memory: copies now. Device memory: queues an upload (visible to kernels recorded later). */
  write(buffer: BufferHandle, src: Uint8Array, byteOffset?: number): void;
  /** Synchronous copy out: host memory only; a device memory throws UsageError "unsupported". */
  read(buffer: BufferHandle, byteOffset?: number, length?: number): Uint8Array;
  readAsync(buffer: BufferHandle, byteOffset?: number, length?: number): Promise<Uint8Array>;
  /** Whether `buffer` is a live buffer of this memory (its kernels can use it in place). */
  holds(buffer: BufferHandle): boolean;
  liveAllocations(): number;
  liveBytes(): number;
}

/**
 * What a provider creates: a set of kernels, possibly incomplete, and what they accept as data. The
 * dispatcher (backends/dispatch.ts) runs each op on the first backend of the user's list that is capable
 * of the call and can reach its operands, ending with the JS reference, which has every kernel.
 */
export interface PartialBackend {
  readonly name: BackendName;
  readonly kernels: Partial<Kernels>;
  /** Fused multi-kernel steps (see {@link FusedKernels}); the dispatcher offers the first member's. */
  readonly fused?: Partial<FusedKernels>;
  /** Every block in one call (see {@link BitnetLayersStep}). */
  readonly layers?: BitnetLayersStep;
  /**
   * What each kernel and fused step accepts, as data over the op table's operands (backends/capabilities.ts):
   * dtypes per operand and limits. Absent: every kernel it has takes what the op table allows.
   */
  readonly capabilities?: Capabilities;
  /**
   * What the capabilities cannot say: whether this backend accepts this particular call; a string says why
   * not. Absent: the capabilities decide.
   */
  supports?(kernel: KernelName, refs: readonly TensorRef[]): true | string;
  /**
   * Its own buffer memory (a WASM linear memory, a GPU's memory): its kernels read only buffers this memory
   * holds. Absent: plain host ArrayBuffers, and its kernels read any host buffer.
   */
  readonly memory?: BufferMemory;
  /** Facts for `barbell backends`: ISA features, thread count, variant. */
  readonly info: BackendInfo;
  /** Releases threads and native resources. */
  dispose(): void;
}

export interface BackendInfo {
  /** CPU or runtime features in use (e.g. "avx512vnni", "avx2", "simd128", "threads"). */
  readonly features: readonly string[];
  readonly threads: number;
  /** Free text: build variant, library version; part of the autotuner's cache key, so a rebuild retunes. */
  readonly detail?: string;
}

/** The outcome of probing a provider. */
export type Probe =
  | { readonly available: true; readonly score: number; readonly features: readonly string[] }
  | { readonly available: false; readonly reason: string };

export interface BackendOptions {
  /** Worker threads for kernels that parallelize; default: one per physical core. */
  readonly threads?: number;
}

/** A backend kind: how to probe for it and how to create it. Listed once in backends/providers.ts. */
export interface BackendProvider {
  readonly name: BackendName;
  /** Higher runs first; a negative priority is never chosen automatically, only when named. */
  readonly basePriority: number;
  probe(): Promise<Probe>;
  create(options: BackendOptions): Promise<PartialBackend>;
}
