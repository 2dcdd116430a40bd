/**
 * The typed tensor handle: a dtype and dimension names in the type, sizes at runtime, memory owned
 * by one backend and released deterministically (`dispose()` or `using`).
 *
 * Tensors are immutable from the user's side: there is no method that writes into one, and every
 * accessor that returns data returns a copy. Reads are asynchronous (`toFloat32Async`) on any backend;
 * the synchronous ones (`toFloat32`, `toInt32`) work on host memory only.
 */
import { ShapeError, UsageError, ValueError } from "../core/errors.js";
import type { Backend, BufferHandle, DenseBlockDType, StorageDType, TensorRef } from "../backends/backend.js";
import { MAX_TENSOR_ELEMENTS, elementCount, storageBytes } from "../backends/storage.js";
import { hostBytes, isHostBuffer } from "../backends/host-memory.js";
import { unpackBinary, unpackTernary } from "../quant/layouts.js";
import { QUANT_TRAITS } from "../quant/table.js";
import { isDenseBlockFormat } from "../quant/dtypes.js";
import { defaultBackend } from "./context.js";
import type { Dims, Duplicate, ShapeOf } from "./dims.js";

/**
 * Element types of typed tensors:
 * - `f32`: float32 values.
 * - `i8`, `i32`: integers (quantized activations, accumulators).
 * - `ternary`: weights in {−1, 0, +1} times one float scale; only made by checked constructors.
 * - `binary`: weights in {−1, +1} times one float scale; only made by checked constructors.
 * - `f16`, `bf16`, `q8_0`, `q6_k`: dense float weights kept in their file format (embeddings, heads).
 */
export type DType = StorageDType;

/** Options accepted by every function that creates a tensor. */
export interface TensorOptions {
  /** Backend that owns the memory; defaults to `defaultBackend()`. */
  readonly backend?: Backend;
}

/** Gate for the constructor: only barbell's own modules can make tensors, so dtype brands hold. */
export const INTERNAL: unique symbol = Symbol("barbell.tensor.internal");

/** Resolves to D when its names are distinct, otherwise to an error message type. */
export type UniqueDims<D extends Dims> = [Duplicate<D>] extends [never]
  ? D
  : `[tensor] dimension name '${Duplicate<D> & string}' is used twice`;

export class Tensor<DT extends DType = DType, D extends Dims = Dims> implements Disposable {
  readonly dtype: DT;
  /** Dimension names, outermost first. */
  readonly dims: D;
  /** Size of each dimension, in the order of `dims`. */
  readonly shape: ShapeOf<D>;
  /** Per-tensor multiplier of ternary and binary tensors; undefined for other dtypes. */
  readonly scale: number | undefined;
  readonly backend: Backend;
  #buffer: BufferHandle | undefined;

  /** @internal Use the creation functions (`tensor`, `toTernary`, …). */
  constructor(
    token: typeof INTERNAL,
    backend: Backend,
    buffer: BufferHandle,
    dtype: DT,
    dims: D,
    shape: ShapeOf<D>,
    scale?: number,
  ) {
    if (token !== INTERNAL) {
      throw new UsageError("unsupported", "[tensor] tensors are created by barbell's functions, not `new`");
    }
    this.backend = backend;
    this.#buffer = buffer;
    this.dtype = dtype;
    this.dims = Object.freeze([...dims]) as D;
    this.shape = Object.freeze([...shape]) as ShapeOf<D>;
    this.scale = scale;
  }

  /** Number of elements. */
  get size(): number {
    return elementCount(this.shape);
  }

  get rank(): number {
    return this.dims.length;
  }

  get isDisposed(): boolean {
    return this.#buffer === undefined;
  }

  /** Size of the named dimension. */
  sizeOf(name: D[number]): number {
    const i = this.dims.indexOf(name);
    const size = this.shape[i];
    if (size === undefined) {
      throw new ShapeError("dim-names", `[sizeOf] no dimension "${name}" in [${this.dims.join(", ")}]`);
    }
    return size;
  }

  /** @internal The erased view handed to kernels. Throws when disposed. */
  ref(): TensorRef {
    if (this.#buffer === undefined) {
      throw new UsageError("disposed", `[tensor] ${this.describe()} was disposed`);
    }
    const ref = { buffer: this.#buffer, dtype: this.dtype, shape: this.shape as readonly number[] };
    return this.scale === undefined ? ref : { ...ref, scale: this.scale };
  }

  /**
   * A copy of the values as float32 (ternary/binary: trit or sign times scale), read synchronously: host
   * memory only (a device backend throws UsageError "unsupported"; use {@link toFloat32Async}). For host-only
   * code: training, tests, demos. The engine reads at its edges (logits, sampling) with the async form.
   */
  toFloat32(): Float32Array {
    return this.#floats(this.backend.read(this.ref().buffer));
  }

  /**
   * The values as float32 from any memory, a device's included (read back when its queued work has run). With
   * `into` (as many elements as this tensor), they are written there and `into` is returned: a float32 tensor in
   * host memory is copied straight into it, so a caller that reads every step (the engine's logits) reuses one
   * array instead of a fresh allocation per step, whose new pages the OS must fault in and zero each time.
   *
   * @throws ShapeError code "size" when `into` does not have exactly {@link size} elements.
   */
  async toFloat32Async(into?: Float32Array): Promise<Float32Array> {
    if (into === undefined) {
      return this.#floats(await this.backend.readAsync(this.ref().buffer));
    }
    if (into.length !== this.size) {
      throw new ShapeError("size", `[toFloat32Async] ${this.describe()} has ${this.size} elements, the array ${into.length}`);
    }
    const buffer = this.ref().buffer;
    if (this.dtype === "f32" && isHostBuffer(buffer)) {
      const bytes = hostBytes(buffer);
      new Uint8Array(into.buffer, into.byteOffset, into.byteLength).set(bytes.subarray(0, into.byteLength));
      return into;
    }
    into.set(this.#floats(await this.backend.readAsync(buffer)));
    return into;
  }

  /** A copy of the integer values of an i8, i32, ternary (trits) or binary (signs) tensor; host memory only. */
  toInt32(): Int32Array {
    return this.#ints(this.backend.read(this.ref().buffer));
  }

  /** The integer values (as {@link toInt32}) from any memory. */
  async toInt32Async(): Promise<Int32Array> {
    return this.#ints(await this.backend.readAsync(this.ref().buffer));
  }

  /** Decodes this tensor's raw storage (a fresh copy from `read`/`readAsync`) as float32. */
  #floats(raw: Uint8Array): Float32Array {
    const cols = this.shape.length === 0 ? 1 : (this.shape[this.shape.length - 1] ?? 1);
    const rows = this.size / cols;
    switch (this.dtype) {
      case "f32":
        // read returns a fresh copy; view it when aligned instead of copying again.
        return raw.byteOffset % 4 === 0
          ? new Float32Array(raw.buffer, raw.byteOffset, this.size)
          : new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + this.size * 4));
      case "i8":
        return Float32Array.from(new Int8Array(raw.buffer, raw.byteOffset, this.size));
      case "i32":
        return Float32Array.from(new Int32Array(raw.buffer, raw.byteOffset, this.size));
      case "ternary":
        return scaled(unpackTernary(raw, rows, cols), this.scale ?? 1);
      case "binary": {
        const words = new Uint32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
        return scaled(unpackBinary(words, rows, cols), this.scale ?? 1);
      }
      default:
        if (isDenseBlockFormat(this.dtype)) {
          return QUANT_TRAITS[this.dtype].decode(raw, rows, cols);
        }
    }
    throw new UsageError("dtype", `[toFloat32] unknown dtype ${String(this.dtype)}`);
  }

  #ints(raw: Uint8Array): Int32Array {
    const cols = this.shape.length === 0 ? 1 : (this.shape[this.shape.length - 1] ?? 1);
    const rows = this.size / cols;
    switch (this.dtype) {
      case "i8":
        return Int32Array.from(new Int8Array(raw.buffer, raw.byteOffset, this.size));
      case "i32":
        return new Int32Array(raw.buffer, raw.byteOffset, this.size).slice();
      case "ternary":
        return Int32Array.from(unpackTernary(raw, rows, cols));
      case "binary": {
        const words = new Uint32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
        return Int32Array.from(unpackBinary(words, rows, cols));
      }
      default:
        if (this.dtype === "f32" || isDenseBlockFormat(this.dtype)) {
          throw new UsageError("dtype", `[toInt32] ${this.describe()} holds floats`);
        }
    }
    throw new UsageError("dtype", `[toInt32] unknown dtype ${String(this.dtype)}`);
  }

  /** Releases the backend memory. Safe to call twice. */
  dispose(): void {
    if (this.#buffer !== undefined) {
      this.backend.free(this.#buffer);
      this.#buffer = undefined;
    }
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  /** e.g. `Tensor<f32, [seq=4, embed=64]>`. */
  describe(): string {
    const parts = this.dims.map((d, i) => `${d}=${this.shape[i] ?? "?"}`);
    return `Tensor<${this.dtype}, [${parts.join(", ")}]>`;
  }

  toString(): string {
    return this.describe();
  }
}

function scaled(values: Int8Array, scale: number): Float32Array {
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    out[i] = (values[i] ?? 0) * scale;
  }
  return out;
}

/** Validates runtime dims and shape; returns the element count. */
export function checkShape(op: string, dims: Dims, shape: readonly number[]): number {
  if (dims.length !== shape.length) {
    throw new ShapeError("rank", `[${op}] ${dims.length} dimension names for ${shape.length} sizes`);
  }
  const seen = new Set<string>();
  for (const [i, name] of dims.entries()) {
    if (typeof name !== "string" || name.length === 0) {
      throw new ShapeError("dim-names", `[${op}] dimension ${i} has no name`);
    }
    if (seen.has(name)) {
      throw new ShapeError("dim-names", `[${op}] dimension name "${name}" is used twice`);
    }
    seen.add(name);
    const size = shape[i];
    if (size === undefined || !Number.isSafeInteger(size) || size < 1) {
      throw new ShapeError("size", `[${op}] ${name}: size ${String(size)} is not a positive integer`);
    }
  }
  const count = elementCount(shape);
  if (count > MAX_TENSOR_ELEMENTS) {
    throw new ShapeError("size", `[${op}] ${count} elements exceed the limit of ${MAX_TENSOR_ELEMENTS}`);
  }
  return count;
}

/*
 * The boundary between the two checks of the tensor layer. Signatures check dimension names at compile
 * time with conditional types whose failing branch is an error message (`UniqueDims` above, `Weights` in
 * ops/matmul.ts, the checks of ops/shape.ts) or that compute the result's names (`Replace`, `MergePair`,
 * `Contracted`, `Init`). Inside the function TypeScript can neither narrow such a parameter to its passing
 * branch nor follow names built with array operations to the tuple the signature computed. These two
 * helpers (and layoutArg, built on dimsArg) are where such a value takes the type its signature declares, after a runtime check of what the
 * type cannot see; they hold the layer's only type assertions (test/types/tensor-types.ts keeps the
 * compile-time errors they must not weaken).
 */

/**
 * @internal A parameter typed as "the tensor, or the message of a failed compile-time check" as the tensor
 * type T its signature declares. Throws UsageError when the value is no tensor (a caller that got round the
 * types); dtype, sizes and backend are the op's own runtime checks.
 */
export function tensorArg<T extends Tensor>(op: string, what: string, value: unknown): T {
  if (!(value instanceof Tensor)) {
    throw new UsageError("unsupported", `[${op}] ${what} is not a tensor`);
  }
  // The one assertion: a Tensor of any dtype and names as the T the compile-time check admitted.
  return value as T;
}

/**
 * @internal Dimension names (checked at compile time, or computed at runtime by the rule the signature's
 * type computes) as the names D the signature declares. Throws ShapeError when they are no list; each
 * name, their distinctness and the sizes are checked with the shape (`checkShape`, which every tensor
 * made from them passes).
 */
export function dimsArg<D extends Dims>(op: string, names: unknown): D {
  if (!Array.isArray(names)) {
    throw new ShapeError("dim-names", `[${op}] dimension names must be a list`);
  }
  const list: Dims = names;
  // The one assertion: runtime names as the tuple of literals D that the types worked out.
  return list as D;
}

/**
 * @internal Names and sizes computed at runtime (as {@link dimsArg}) as the layout of D, checked whole by
 * `checkShape` (distinct non-empty names, one positive size each, the element limit).
 */
export function layoutArg<D extends Dims>(op: string, names: unknown, shape: readonly number[]): { dims: D; shape: ShapeOf<D> } {
  const dims = dimsArg<D>(op, names);
  checkShape(op, dims, shape);
  return { dims, shape: shape as ShapeOf<D> };
}

/** @internal Allocates an uninitialised (zeroed) tensor on a backend. */
export function allocTensor<DT extends DType, D extends Dims>(
  backend: Backend,
  dtype: DT,
  dims: D,
  shape: ShapeOf<D>,
  scale?: number,
): Tensor<DT, D> {
  checkShape("alloc", dims, shape as readonly number[]);
  const buffer = backend.alloc(storageBytes(dtype, shape as readonly number[]));
  return new Tensor(INTERNAL, backend, buffer, dtype, dims, shape, scale);
}

/**
 * `count` zeroed tensors of one dtype and shape, in one allocation where the backend groups buffers
 * (Backend.allocGroup: a KV cache's layers, which the native backend then backs with huge pages), else one by one.
 */
export function allocTensors<DT extends DType, D extends Dims>(backend: Backend, dtype: DT, dims: D, shape: ShapeOf<D>, count: number): Tensor<DT, D>[] {
  checkShape("alloc", dims, shape as readonly number[]);
  const bytes = storageBytes(dtype, shape as readonly number[]);
  const group = backend.allocGroup?.(Array.from({ length: count }, () => bytes));
  if (group !== undefined) {
    return group.map((buffer) => new Tensor(INTERNAL, backend, buffer, dtype, dims, shape));
  }
  const out: Tensor<DT, D>[] = [];
  try {
    for (let i = 0; i < count; i++) {
      out.push(allocTensor(backend, dtype, dims, shape));
    }
  } catch (e) {
    out.forEach((t) => t.dispose());
    throw e;
  }
  return out;
}

/**
 * @internal Runs the kernel that fills a freshly allocated output; if it throws, the output is
 * disposed before the error propagates, so a failed op never leaks memory.
 */
export function fill<T extends Tensor>(out: T, run: () => void): T {
  try {
    run();
    return out;
  } catch (e) {
    out.dispose();
    throw e;
  }
}

/** @internal Makes a tensor from bytes already in storage layout. */
export function tensorFromBytes<DT extends DType, D extends Dims>(
  backend: Backend,
  dtype: DT,
  dims: D,
  shape: ShapeOf<D>,
  bytes: Uint8Array,
  scale?: number,
): Tensor<DT, D> {
  const t = allocTensor(backend, dtype, dims, shape, scale);
  return fill(t, () => backend.write(t.ref().buffer, bytes));
}

function asBytes(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/**
 * Creates an f32 tensor from values (row-major) with named dimensions:
 * `tensor(values, ["seq", "embed"], [4, 64])`.
 */
export function tensor<const D extends Dims>(
  values: ArrayLike<number>,
  dims: UniqueDims<D>,
  shape: ShapeOf<D>,
  options: TensorOptions = {},
): Tensor<"f32", [...D]> {
  const names = dimsArg<[...D]>("tensor", dims);
  const count = checkShape("tensor", names, shape as readonly number[]);
  if (values.length !== count) {
    throw new ShapeError("size", `[tensor] ${values.length} values for shape [${names.join(", ")}] of ${count}`);
  }
  const data = values instanceof Float32Array ? values : Float32Array.from(values);
  return tensorFromBytes(options.backend ?? defaultBackend(), "f32", names, shape as ShapeOf<[...D]>, asBytes(data));
}

/** Creates an f32 tensor of zeros. */
export function zeros<const D extends Dims>(
  dims: UniqueDims<D>,
  shape: ShapeOf<D>,
  options: TensorOptions = {},
): Tensor<"f32", [...D]> {
  return allocTensor(options.backend ?? defaultBackend(), "f32", dimsArg<[...D]>("zeros", dims), shape as ShapeOf<[...D]>);
}

/** Creates an int32 tensor (positions, token ids). Values must be integers in int32 range. */
export function int32Tensor<const D extends Dims>(
  values: ArrayLike<number>,
  dims: UniqueDims<D>,
  shape: ShapeOf<D>,
  options: TensorOptions = {},
): Tensor<"i32", [...D]> {
  const names = dimsArg<[...D]>("int32Tensor", dims);
  const count = checkShape("int32Tensor", names, shape as readonly number[]);
  if (values.length !== count) {
    throw new ShapeError("size", `[int32Tensor] ${values.length} values for ${count} elements`);
  }
  const data = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const v = values[i] ?? Number.NaN;
    if (!Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31) {
      throw new ValueError("out-of-range", `[int32Tensor] index ${i} holds ${v}, not an int32`, i, v);
    }
    data[i] = v;
  }
  return tensorFromBytes(options.backend ?? defaultBackend(), "i32", names, shape as ShapeOf<[...D]>, asBytes(data));
}

export interface WeightOptions extends TensorOptions {
  /**
   * Hand the bytes to the backend without a copy where it can (weights just read from a file).
   * The caller must not use the bytes afterwards. Default false (the bytes are copied).
   */
  readonly adopt?: boolean;
}

/**
 * Dense weights from bytes in a block format (`f16`, `bf16`, `q8_0`, `q6_k`), rows along the last
 * dimension, e.g. a GGUF token embedding as `denseWeights("f16", bytes, ["vocab", "embed"], [V, E])`.
 * The byte length must match the format exactly; block contents are validated when decoded.
 */
export function denseWeights<const DT extends DenseBlockDType, const D extends Dims>(
  dtype: DT,
  bytes: Uint8Array,
  dims: UniqueDims<D>,
  shape: ShapeOf<D>,
  options: WeightOptions = {},
): Tensor<DT, [...D]> {
  const { names, expected } = denseLayout("denseWeights", dtype, dims, shape);
  if (bytes.byteLength !== expected) {
    throw new ShapeError("size", `[denseWeights] ${dtype} [${names.join(", ")}] needs ${expected} bytes, got ${bytes.byteLength}`);
  }
  const backend = options.backend ?? defaultBackend();
  if (options.adopt === true && backend.adopt) {
    return new Tensor(INTERNAL, backend, backend.adopt(bytes), dtype, names, shape as ShapeOf<[...D]>);
  }
  return tensorFromBytes(backend, dtype, names, shape as ShapeOf<[...D]>, bytes);
}

/** The checked dim names and byte size of dense weights of `dtype` and `shape`. */
function denseLayout<const D extends Dims>(op: string, dtype: DenseBlockDType, dims: UniqueDims<D>, shape: ShapeOf<D>): { names: [...D]; expected: number } {
  const names = dimsArg<[...D]>(op, dims);
  checkShape(op, names, shape as readonly number[]);
  const expected = storageBytes(dtype, shape as readonly number[]);
  if (!Number.isSafeInteger(expected)) {
    throw new ShapeError("size", `[${op}] ${dtype} cannot store rows of ${String(shape[shape.length - 1])}`);
  }
  return { names, expected };
}

/**
 * Dense weights whose bytes `materialize` makes when a kernel first reads them (a head requantized on first
 * use instead of at load); a wrong byte count is thrown as ShapeError "size" from that read. Undefined when the
 * backend cannot hold lazily made bytes (`Backend.adoptLazy` absent): the caller makes them now (`denseWeights`).
 */
export function lazyDenseWeights<const DT extends DenseBlockDType, const D extends Dims>(
  dtype: DT,
  materialize: () => Uint8Array,
  dims: UniqueDims<D>,
  shape: ShapeOf<D>,
  options: TensorOptions = {},
): Tensor<DT, [...D]> | undefined {
  const { names, expected } = denseLayout("lazyDenseWeights", dtype, dims, shape);
  const backend = options.backend ?? defaultBackend();
  if (backend.adoptLazy === undefined) {
    return undefined;
  }
  const checked = (): Uint8Array => {
    const bytes = materialize();
    if (bytes.byteLength !== expected) {
      throw new ShapeError("size", `[lazyDenseWeights] ${dtype} [${names.join(", ")}] needs ${expected} bytes, got ${bytes.byteLength}`);
    }
    return bytes;
  };
  return new Tensor(INTERNAL, backend, backend.adoptLazy(expected, checked), dtype, names, shape as ShapeOf<[...D]>);
}
