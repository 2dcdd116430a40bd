/**
 * The backend contract: what a compute backend (the JS reference, and later WASM SIMD, native CPU,
 * WebGPU, CUDA) provides to barbell's tensors.
 *
 * Backends never see dimension names or typed tensors: at this boundary everything is erased to
 * {@link TensorRef} (a buffer, a dtype and a runtime shape). The typed layer in `src/tensor` checks
 * names and sizes before it calls a kernel, so kernels may assume their inputs are consistent.
 */
import type { Capabilities } from "./capabilities.js";
import type { BinaryOp, UnaryOp } from "./ops.js";

/** How elements are stored. The typed layer's dtypes map one to one onto these. */
export type StorageDType =
  | "f32" // float32
  | "i8" // int8
  | "i32" // int32
  | "ternary" // packed 2-bit trits, "t2" layout (src/quant/layouts.ts) along the last dim, plus one scale
  | "binary" // packed sign bits, "b1" layout along the last dim, plus one scale
  | DenseBlockDType;

/**
 * Dense float weights kept in their file format (embeddings, the output head): the block layouts of
 * src/quant, rows along the last dim. Kernels decode them on the fly, so a 650 MB F16 head stays 650 MB.
 */
export type DenseBlockDType = "f16" | "bf16" | "q8_0" | "q6_k";

/** Weight dtypes a dense (float) matmul and an embedding lookup accept. */
export type DenseDType = "f32" | DenseBlockDType;

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
 * Which dimensions rotate together:
 * - "neox": (j, j + headDim/2), rotate_half style (HF Llama, GGUF BitNet, llama.cpp NEOX rope type);
 * - "adjacent": (2j, 2j + 1), interleaved pairs (original RoPE, llama.cpp NORM rope type, xformers).
 */
export type RopeMode = "neox" | "adjacent";

/**
 * The kernels a backend runs. Shapes in the comments name the erased dims; the typed layer
 * guarantees them. Every kernel writes into `out`, which the caller allocated with the right size.
 * Float semantics are those of the JS reference kernels (src/backends/js/kernels).
 */
export interface Kernels {
  /** out[M,N] = x[M,K] · w[N,K]ᵀ, f32. */
  matmulF32(x: TensorRef, w: TensorRef, out: TensorRef): void;
  /** out[M,N] = x[M,K] f32 · decode(w)[N,K]ᵀ for w in any DenseDType (the output head). */
  matmulDense(x: TensorRef, w: TensorRef, out: TensorRef): void;
  /**
   * The integer output head: out[M,N] f32 = x[M,K] f32 · w[N,K]ᵀ for q8_0 weights, with x quantized per
   * 32-element block to int8 (llama.cpp's Q8_0 × Q8_0 dot product). Integer block dots, then f32 scaling and
   * accumulation in block order: exact across backends (semantics in src/backends/js/kernels/dense.ts).
   */
  matmulQ8I8(x: TensorRef, w: TensorRef, out: TensorRef): void;
  /** out[S,E] f32 = rows ids[S] (i32) of table[V,E] (any DenseDType). Ids are checked against V. */
  embedding(ids: TensorRef, table: TensorRef, out: TensorRef): void;
  /** Copies contiguous src [n, …] into rows [row, row + n) of dst [R, …] (same dtype and row shape). */
  writeRows(src: TensorRef, dst: TensorRef, row: number): void;
  /** out[M,N] f32 = (x_q[M,K] i8 · trits(w)[N,K]ᵀ) / xScales[M] · w.scale; exact int32 accumulation. */
  matmulTernaryI8(x: TensorRef, xScales: TensorRef, w: TensorRef, out: TensorRef): void;
  /** out[M,N] f32 = (x_q[M,K] i8 · signs(w)[N,K]ᵀ) / xScales[M] · w.scale. */
  matmulBinaryI8(x: TensorRef, xScales: TensorRef, w: TensorRef, out: TensorRef): void;
  /** out[M,N] i32 = signs(x)[M,K] · signs(w)[N,K]ᵀ by XNOR-popcount (scales not applied). */
  matmulBinaryBinary(x: TensorRef, w: TensorRef, out: TensorRef): void;
  /** Per-row absmax int8 quantization of x[M,K] into q[M,K] i8 and scales[M] f32 (s = 127/absmax). */
  quantizeActivations(x: TensorRef, q: TensorRef, scales: TensorRef): void;
  /** RMSNorm over the last dim of x[M,K], times weight[K] when given. */
  rmsNorm(x: TensorRef, weight: TensorRef | undefined, eps: number, out: TensorRef): void;
  /** Rotary embedding of x[S,H,D] at positions[S] (i32). */
  rope(x: TensorRef, positions: TensorRef, theta: number, mode: RopeMode, out: TensorRef): void;
  /** Softmax over the last dim. */
  softmax(x: TensorRef, out: TensorRef): void;
  /**
   * Causal attention: q[S,H,D], k and v [C,KV,D]; query row i sits at position pos0 + i and sees
   * keys 0..pos0+i; head h reads KV head floor(h / (H/KV)). out[S,H,D].
   */
  attention(q: TensorRef, k: TensorRef, v: TensorRef, pos0: number, scale: number, out: TensorRef): void;
  unary(op: UnaryOp, x: TensorRef, out: TensorRef): void;
  /** out[shape] = a ∘ b where each operand is read with its own strides (0 broadcasts). */
  binary(op: BinaryOp, a: TensorRef, aStrides: readonly number[], b: TensorRef, bStrides: readonly number[], out: TensorRef): void;
  /** Multiply every element by a scalar. */
  scale(x: TensorRef, factor: number, out: TensorRef): void;
  /**
   * Strided gather of whole elements (f32, i8, i32) into contiguous `out`: for every index i over
   * out.shape, out[i] = src[srcOffset + Σ i·srcStrides]. Offsets and strides count elements.
   */
  copyStrided(src: TensorRef, srcOffset: number, srcStrides: readonly number[], out: TensorRef): void;
  /** Concatenates contiguous tensors of one dtype along `axis` into `out`. */
  concat(parts: readonly TensorRef[], axis: number, out: TensorRef): void;
}

/** The tensors of one BitNet block for {@link FusedKernels.bitnetBlock}: f32 norms, ternary projections. */
export interface BitnetBlockWeights {
  readonly attnNorm: TensorRef; // [E]
  readonly attnSubNorm: TensorRef; // [H·D]
  readonly ffnNorm: TensorRef; // [E]
  readonly ffnSubNorm: TensorRef; // [F]
  readonly wq: TensorRef; // [H·D, E]
  readonly wk: TensorRef; // [KV·D, E]
  readonly wv: TensorRef; // [KV·D, E]
  readonly wo: TensorRef; // [E, H·D]
  readonly wGate: TensorRef; // [F, E]
  readonly wUp: TensorRef; // [F, E]
  readonly wDown: TensorRef; // [E, F]
}

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
 * Multi-kernel steps a backend may run in one call. They are optional and are not part of the
 * fallback chain: a caller uses one only when the chain's first member offers it, and otherwise
 * composes the plain kernels. A fused step must compute what the composed kernels compute on the
 * same backend (the conformance tests compare them).
 */
export interface FusedKernels {
  /**
   * One BitNet block (BITNET.md §1.2) over h[S,E] at positions[S] (i32): RMSNorm, one int8
   * quantization shared by q/k/v, NeoX RoPE, K/V written to rows pos0 … pos0+S−1 of kCache/vCache
   * [C,KV,D], causal attention over rows 0 … pos0+S−1, sub-norm, output projection, residual, then the
   * gated FFN (ReLU² or SiLU) with its sub-norm and residual, into out[S,E] (which must not alias h).
   * Throws ValueError "non-finite" when an activation to quantize is not finite.
   */
  bitnetBlock(
    h: TensorRef,
    positions: TensorRef,
    kCache: TensorRef,
    vCache: TensorRef,
    pos0: number,
    weights: BitnetBlockWeights,
    params: BitnetBlockParams,
    out: TensorRef,
  ): void;
  /**
   * The same block for a batch of independent sequences, one token each: row b of h[B,E] is the next
   * token of the sequence whose caches are kCaches[b] / vCaches[b] ([C_b,KV,D]), at position
   * positions[b] (= the rows it already holds); K/V go to that row of its caches and row b attends over
   * rows 0 … positions[b] of them. Computes what the composed kernels compute for the batch.
   */
  bitnetBlockBatch(
    h: TensorRef,
    positions: TensorRef,
    kCaches: readonly TensorRef[],
    vCaches: readonly TensorRef[],
    weights: BitnetBlockWeights,
    params: BitnetBlockParams,
    out: TensorRef,
  ): void;
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
  /** Where `alloc` puts buffers (see {@link MemoryKind}); `read` works only for "host". */
  readonly memoryKind: MemoryKind;
  /** Allocates zeroed memory. */
  alloc(bytes: number): BufferHandle;
  /**
   * Takes ownership of host bytes without copying where the backend can (weights read from a file);
   * the caller must not use `bytes` afterwards. Absent: callers use alloc() + write().
   */
  adopt?(bytes: Uint8Array): BufferHandle;
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
export type BackendName = "js" | "wasm-simd" | "native-cpu" | "webgpu";

/** The name of one kernel of {@link Kernels}; the op table (ops.ts) has an entry for each and no other. */
export type KernelName = keyof Kernels;

/** A backend's buffers: what the dispatcher (backends/dispatch.ts) allocates, copies and reads through. */
export interface BufferMemory {
  readonly kind: MemoryKind;
  alloc(bytes: number): BufferHandle;
  /** Takes host bytes (weights from a file): without a copy in host memory, as an upload on a device. */
  adopt(bytes: Uint8Array): BufferHandle;
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
