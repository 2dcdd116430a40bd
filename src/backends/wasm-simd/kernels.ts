/**
 * Glue from the `Kernels` interface to the WASM exports: resolves each tensor to its byte offset in the
 * linear memory, checks that every operand fits its buffer (a wasm kernel must never read or write outside
 * the buffers it was given), and mirrors the argument checks of the JS reference that the typed layer does
 * not already guarantee (vocabulary bounds, GQA head counts, finite activations).
 */
import { FormatError, ShapeError, UsageError, ValueError } from "../../core/errors.js";
import { INTEGER_HEAD_FORMATS } from "../../quant/dtypes.js";
import type { Kernels, StorageDType, TensorRef } from "../backend.js";
import { subOpsWhere, type Capabilities } from "../capabilities.js";
import { binaryCode, BINARY_OPS, unaryCode, UNARY_OPS } from "../ops.js";
import { elementCount, storageBytes } from "../storage.js";
import { SPLIT_CONTIGUOUS, SPLIT_STRIDED } from "./control.js";
import { EXPORT_NAMES, WASM_UNKNOWN_OP, WASM_UNSUPPORTED_OP, type KernelExports } from "./loader.js";
import type { WasmBufferMemory } from "./memory.js";
import type { KernelThreads } from "./threads.js";

/** Largest K of the integer kernels (as the reference): 128 · K stays below 2^31. */
export const MAX_DOT_K = 2 ** 24 - 1;

/**
 * Runs the module's element-wise `unary` (or, with `shapeAndStrides`, `binary`) export on an op code of
 * the op table. A code the module does not know (UNKNOWN_OP), or a table op it has no case for
 * (UNSUPPORTED_OP; the dispatcher does not route one here), is UsageError "unsupported": never a result.
 */
export function wasmElementwise(
  wasm: KernelExports,
  kind: "unary" | "binary",
  code: number,
  x: number,
  y: number,
  out: number,
  size: number,
  shapeAndStrides: readonly number[] = [],
): void {
  if (!Number.isSafeInteger(code)) {
    // The module takes i32 codes; a fractional or NaN code would be truncated into a valid one.
    throw new UsageError("unsupported", `[wasm-simd] ${kind}: unknown op ${opName(kind, code)}`);
  }
  let status: number;
  try {
    status = kind === "unary" ? wasm.unary(code, x, size, out) : wasm.binary(code, x, y, out, ...shapeAndStrides);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new UsageError("unsupported", `[wasm-simd] ${kind} op ${opName(kind, code)} is not implemented by the module (${why})`);
  }
  if (status === WASM_UNKNOWN_OP) {
    throw new UsageError("unsupported", `[wasm-simd] ${kind}: unknown op ${opName(kind, code)}`);
  }
  if (status === WASM_UNSUPPORTED_OP) {
    throw new UsageError("unsupported", `[wasm-simd] ${kind} op ${opName(kind, code)} is not implemented by the module`);
  }
}

/** The table's name of an element-wise op code, for messages. */
function opName(kind: "unary" | "binary", code: number): string {
  const ops: Readonly<Record<string, { readonly code: number }>> = kind === "unary" ? UNARY_OPS : BINARY_OPS;
  const name = Object.keys(ops).find((k) => ops[k]?.code === code);
  return name === undefined ? `code ${code} (the op table has ${Object.keys(ops).length} ${kind} ops)` : `"${name}" (code ${code})`;
}

/** Row formats of the dense kernels. */
const DENSE_FORMATS: Partial<Record<StorageDType, number>> = { f32: 0, f16: 1, bf16: 2 };

/**
 * Weight formats of the integer head (matmulHeadI8's format codes) and the activation block each quantizes
 * x in: 32 for Q8_0, one 256-element super-block for the k-quants (the JS reference's matmulQ8I8 / matmulKI8).
 */
const HEAD_FORMATS: Partial<Record<StorageDType, { readonly code: number; readonly block: number }>> = {
  q8_0: { code: 0, block: 32 },
  q4_k: { code: 1, block: 256 },
  q5_k: { code: 2, block: 256 },
  q6_k: { code: 3, block: 256 },
};

/** Highest rank the strided binary kernel takes. */
export const BINARY_MAX_RANK = 4;

const dim = (t: TensorRef, i: number): number => t.shape[i] ?? 1;

/**
 * What the wasm kernels take, as data over the op table (checked against it by the dispatcher). Buffers must
 * be live buffers of this backend's linear memory (the kernels read it directly): the dispatcher checks that
 * with `WasmBufferMemory.holds`. No copyStrided or concat: those calls go to the next backend.
 * The element-wise ops of `unary` and `binary` are the ones the module's switches have a case for
 * ({@link wasmCapabilities}).
 */
const FIXED_CAPABILITIES = {
  matmulF32: true,
  matmulDense: { dtypes: { w: ["f32", "f16", "bf16"] } },
  matmulQ8I8: true, // every integer-head format: q8_0, q4_k, q5_k, q6_k (HEAD_FORMATS)
  embedding: { dtypes: { table: ["f32", "f16", "bf16", "q8_0", "q4_k", "q5_k", "q6_k"] } },
  writeRows: true,
  matmulTernaryI8: { maxK: MAX_DOT_K },
  matmulBinaryI8: { maxK: MAX_DOT_K },
  matmulBinaryBinary: { maxK: MAX_DOT_K },
  quantizeActivations: true,
  rmsNorm: true,
  rope: true,
  softmax: true,
  attention: { dtypes: { k: ["f32"], v: ["f32"] } }, // f16 / q8_0 KV caches: native-cpu or the JS reference
  scale: true,
} as const satisfies Capabilities;

/**
 * The capabilities of a module instance: the fixed ones, and the unary / binary ops its switches implement,
 * found by calling `unary` and `binary` on nothing (size 0, an empty shape) for every code of the op table:
 * 0 means a case ran, WASM_UNSUPPORTED_OP that the module has none (nothing is read or written either way).
 */
export function wasmCapabilities(wasm: Pick<KernelExports, "unary" | "binary">): Capabilities {
  const empty = new Array<number>(3 * BINARY_MAX_RANK).fill(0);
  return {
    ...FIXED_CAPABILITIES,
    unary: { ops: subOpsWhere("unary", (code) => wasm.unary(code, 0, 0, 0) === 0) },
    binary: { maxRank: BINARY_MAX_RANK, ops: subOpsWhere("binary", (code) => wasm.binary(code, 0, 0, 0, ...empty) === 0) },
  };
}

/**
 * Default smallest call, in multiply-adds (or score/value products for attention), that is split across
 * threads: below it, waking the workers costs more than it saves.
 */
export const MIN_PARALLEL_WORK = 1 << 18;

/** Output columns per unit of a row split: 16 f32 outputs fill one 64-byte cache line. */
const COLUMN_ALIGN = 16;

/**
 * Chunks per thread of a split call: threads claim chunks one at a time, so a thread the OS deschedules
 * delays the call by one chunk at most; more chunks cost more calls (and x-row preparation) per kernel.
 */
const CHUNKS_PER_THREAD = 3;

const align64 = (n: number): number => Math.ceil(n / 64) * 64;

type ExportName = (typeof EXPORT_NAMES)[number];

/** How the kernels may use threads. */
export interface KernelThreading {
  readonly threads: KernelThreads;
  /** Smallest call that is split ({@link MIN_PARALLEL_WORK} by default). */
  readonly minWork: number;
}

/** A growable scratch block inside the linear memory, for kernels that need working space. */
class Scratch {
  #offset = -1;
  #size = 0;

  constructor(readonly memory: WasmBufferMemory) {}

  /** Offset of a block of at least `bytes` bytes (contents unspecified). */
  get(bytes: number): number {
    if (bytes > this.#size) {
      this.release();
      const size = Math.max(bytes, Math.ceil(this.#size * 1.5), 4096);
      this.#offset = this.memory.reserveBlock(size);
      this.#size = size;
    }
    return this.#offset;
  }

  release(): void {
    if (this.#offset >= 0) {
      this.memory.releaseBlock(this.#offset, Math.ceil(this.#size / 64) * 64);
      this.#offset = -1;
      this.#size = 0;
    }
  }
}

/** The kernels, bound to one instance and its memory. `dispose` frees their scratch space. */
export function createWasmKernels(
  wasm: KernelExports,
  memory: WasmBufferMemory,
  threading?: KernelThreading,
): { kernels: Partial<Kernels>; dispose(): void } {
  const scratch = new Scratch(memory);
  /** The integer head's quantized activations (shared by the threads of one call). */
  const headActivations = new Scratch(memory);

  /**
   * Calls export `name` with `args` plus a range pair: one call over the whole range, or cut into chunks
   * for the threads when there are any and `work` reaches the threshold. `scratchBytes` > 0: the argument
   * at `scratchArg` is set to a scratch block of that many bytes per thread.
   */
  const split = (
    name: ExportName,
    args: number[],
    range: { readonly mode: number; readonly total: number; readonly work: number },
    scratchArg = -1,
    scratchBytes = 0,
  ): void => {
    const align = range.mode === SPLIT_STRIDED ? 1 : COLUMN_ALIGN;
    const units = Math.ceil(range.total / align);
    const pool = threading?.threads;
    const parallel = pool !== undefined && threading !== undefined && range.work >= threading.minWork;
    const chunks = parallel ? Math.min(pool.threads * CHUNKS_PER_THREAD, units) : 1;
    const stride = align64(scratchBytes);
    if (scratchArg >= 0) {
      args[scratchArg] = scratch.get(stride * (chunks > 1 && pool !== undefined ? pool.threads : 1));
    }
    if (chunks <= 1 || pool === undefined) {
      const fn: (...a: number[]) => void = wasm[name];
      fn(...args, ...(range.mode === SPLIT_STRIDED ? [0, 1] : [0, range.total]));
      return;
    }
    pool.run({
      op: EXPORT_NAMES.indexOf(name),
      args,
      chunks,
      mode: range.mode,
      total: range.total,
      align,
      scratchArg,
      scratchStride: stride,
    });
  };
  const rows = (total: number, work: number) => ({ mode: SPLIT_CONTIGUOUS, total, work });

  /** Byte offset of t's buffer after checking that `bytes` bytes fit in it. */
  const at = (op: string, name: string, t: TensorRef, bytes: number): number => {
    const own = memory.own(t.buffer);
    if (own === undefined) {
      throw new UsageError("backend-mismatch", `[wasm-simd] ${op}: ${name} (buffer ${t.buffer.id}) is not in wasm memory`);
    }
    if (!Number.isSafeInteger(bytes) || bytes < 0 || bytes > own.bytes) {
      throw new ShapeError("size", `[wasm-simd] ${op}: ${name} needs ${bytes} bytes, its buffer holds ${own.bytes}`);
    }
    return own.offset;
  };
  const f32Bytes = (n: number): number => n * 4;

  const nonFinite = (xo: number, count: number): void => {
    const bad = wasm.firstNonFinite(xo, count);
    if (bad >= 0) {
      const v = new Float32Array(memory.memory.buffer, xo + bad * 4, 1)[0] ?? Number.NaN;
      throw new ValueError("non-finite", `[quantizeActivations] index ${bad} holds ${v}`, bad, v);
    }
  };

  const checkIntK = (op: string, k: number): void => {
    if (k > MAX_DOT_K) {
      throw new ShapeError("size", `[wasm-simd] ${op}: k = ${k} exceeds MAX_DOT_K = ${MAX_DOT_K}`);
    }
  };

  const dense = (op: string, x: TensorRef, w: TensorRef, out: TensorRef): void => {
    const m = dim(x, 0);
    const k = dim(x, 1);
    const n = dim(w, 0);
    const format = DENSE_FORMATS[w.dtype];
    if (format === undefined) {
      throw new UsageError("dtype", `[wasm-simd] ${op} does not take ${w.dtype} weights`);
    }
    const xo = at(op, "x", x, f32Bytes(m * k));
    const wo = at(op, "w", w, storageBytes(w.dtype, [n, k]));
    const oo = at(op, "out", out, f32Bytes(m * n));
    const name = format === 0 ? "matmulF32" : format === 1 ? "matmulF16" : "matmulBF16";
    split(name, [xo, wo, m, k, n, oo], rows(n, m * n * k));
  };

  const kernels: Partial<Kernels> = {
    matmulF32: (x, w, out) => dense("matmulF32", x, w, out),
    matmulDense: (x, w, out) => dense("matmulDense", x, w, out),

    matmulQ8I8: (x, w, out) => {
      const head = HEAD_FORMATS[w.dtype];
      if (head === undefined) {
        throw new UsageError("unsupported", `[matmulQ8I8] takes ${INTEGER_HEAD_FORMATS.join(", ")} weights, got ${w.dtype}`);
      }
      const op = w.dtype === "q8_0" ? "matmulQ8I8" : `matmulQ8I8 ${w.dtype}`;
      const m = dim(x, 0);
      const k = dim(x, 1);
      const n = dim(w, 0);
      if (k % head.block !== 0) {
        throw new ShapeError("size", `[${op}] k = ${k} is not a multiple of ${head.block}`);
      }
      checkIntK(op, k);
      const xo = at(op, "x", x, f32Bytes(m * k));
      const wo = at(op, "w", w, storageBytes(w.dtype, [n, k]));
      const oo = at(op, "out", out, f32Bytes(m * n));
      nonFinite(xo, m * k);
      // q (m·k int8), inv (one f32 per block), bsum (one int32 per 32 elements, k-quants only).
      const blocks = (m * k) / head.block;
      const qBytes = align64(m * k);
      const invBytes = align64(blocks * 4);
      const qo = headActivations.get(qBytes + invBytes + (head.block === 32 ? 0 : (m * k) / 8));
      wasm.quantizeHeadActivations(xo, m, k, head.block, qo, qo + qBytes, qo + qBytes + invBytes);
      const args = [qo, qo + qBytes, qo + qBytes + invBytes, wo, head.code, m, k, n, oo, 0];
      split("matmulHeadI8", args, rows(n, m * n * k), 9, wasm.headScratchBytes());
    },

    embedding: (ids, table, out) => {
      const op = "embedding";
      const seq = dim(ids, 0);
      const vocab = dim(table, 0);
      const embed = dim(table, 1);
      const format = DENSE_FORMATS[table.dtype];
      const blocks = HEAD_FORMATS[table.dtype];
      if (format === undefined && blocks === undefined) {
        throw new UsageError("dtype", `[wasm-simd] ${op} does not take ${table.dtype} tables`);
      }
      if (blocks !== undefined && embed % blocks.block !== 0) {
        throw new ShapeError("size", `[dense] ${table.dtype} cannot hold rows of ${embed}`);
      }
      const io = at(op, "ids", ids, seq * 4);
      const to = at(op, "table", table, storageBytes(table.dtype, [vocab, embed]));
      const oo = at(op, "out", out, f32Bytes(seq * embed));
      const idView = new Int32Array(memory.memory.buffer, io, seq);
      for (let s = 0; s < seq; s++) {
        const id = idView[s] ?? -1;
        if (id < 0 || id >= vocab) {
          throw new ShapeError("bounds", `[embedding] token id ${id} at position ${s} is outside the vocabulary of ${vocab}`);
        }
      }
      if (format !== undefined) {
        wasm.embedding(io, seq, to, format, embed, oo);
        return;
      }
      const bad = wasm.embeddingBlocks(io, seq, to, blocks?.code ?? -1, embed, scratch.get(wasm.headScratchBytes()), oo);
      if (bad >= 0) {
        throw new FormatError("bad-block", `[quant:${table.dtype}] block ${bad} has a non-finite scale`);
      }
    },

    writeRows: (src, dst, row) => {
      const rows = dim(dst, 0);
      const rowBytes = storageBytes(dst.dtype, dst.shape) / Math.max(rows, 1);
      const bytes = storageBytes(src.dtype, src.shape);
      const srcRowBytes = storageBytes(src.dtype, [1, ...src.shape.slice(1)]);
      if (!Number.isInteger(row) || row < 0 || row + dim(src, 0) > rows || srcRowBytes !== rowBytes) {
        throw new UsageError("unsupported", `[wasm-simd] cannot write ${dim(src, 0)} rows at ${row} of ${rows}`);
      }
      const so = at("writeRows", "src", src, bytes);
      const dOff = at("writeRows", "dst", dst, storageBytes(dst.dtype, dst.shape));
      new Uint8Array(memory.memory.buffer).copyWithin(dOff + row * rowBytes, so, so + bytes);
    },

    matmulTernaryI8: (x, xScales, w, out) => {
      const op = "matmulTernaryI8";
      const m = dim(x, 0);
      const k = dim(x, 1);
      const n = dim(w, 0);
      checkIntK(op, k);
      const xo = at(op, "x", x, m * k);
      const so = at(op, "xScales", xScales, f32Bytes(m));
      const wo = at(op, "w", w, storageBytes("ternary", [n, k]));
      const oo = at(op, "out", out, f32Bytes(m * n));
      split("matmulTernaryI8", [xo, so, wo, w.scale ?? 1, m, k, n, oo, 0], rows(n, m * n * k), 8, wasm.ternaryScratchBytes(k));
    },

    matmulBinaryI8: (x, xScales, w, out) => {
      const op = "matmulBinaryI8";
      const m = dim(x, 0);
      const k = dim(x, 1);
      const n = dim(w, 0);
      checkIntK(op, k);
      const xo = at(op, "x", x, m * k);
      const so = at(op, "xScales", xScales, f32Bytes(m));
      const wo = at(op, "w", w, storageBytes("binary", [n, k]));
      const oo = at(op, "out", out, f32Bytes(m * n));
      split("matmulBinaryI8", [xo, so, wo, w.scale ?? 1, m, k, n, oo], rows(n, m * n * k));
    },

    matmulBinaryBinary: (x, w, out) => {
      const op = "matmulBinaryBinary";
      const m = dim(x, 0);
      const k = dim(x, 1);
      const n = dim(w, 0);
      checkIntK(op, k);
      const xo = at(op, "x", x, storageBytes("binary", [m, k]));
      const wo = at(op, "w", w, storageBytes("binary", [n, k]));
      const oo = at(op, "out", out, m * n * 4);
      split("matmulBinaryBinary", [xo, wo, m, k, n, oo], rows(n, (m * n * k) / 8));
    },

    quantizeActivations: (x, q, scales) => {
      const op = "quantizeActivations";
      const m = dim(x, 0);
      const k = dim(x, 1);
      const xo = at(op, "x", x, f32Bytes(m * k));
      const qo = at(op, "q", q, m * k);
      const so = at(op, "scales", scales, f32Bytes(m));
      nonFinite(xo, m * k);
      wasm.quantizeActivations(xo, m, k, qo, so);
    },

    rmsNorm: (x, weight, eps, out) => {
      const op = "rmsNorm";
      const rows = dim(x, 0);
      const cols = dim(x, 1);
      const xo = at(op, "x", x, f32Bytes(rows * cols));
      const wo = weight === undefined ? 0 : at(op, "weight", weight, f32Bytes(cols));
      const oo = at(op, "out", out, f32Bytes(rows * cols));
      wasm.rmsNorm(xo, wo, weight === undefined ? 0 : 1, rows, cols, eps, oo);
    },

    rope: (x, positions, theta, mode, out) => {
      const op = "rope";
      const seq = dim(x, 0);
      const heads = dim(x, 1);
      const headDim = dim(x, 2);
      if (headDim % 2 !== 0) {
        throw new ShapeError("size", `[rope] headDim must be even, got ${headDim}`);
      }
      const count = seq * heads * headDim;
      const xo = at(op, "x", x, f32Bytes(count));
      const po = at(op, "positions", positions, seq * 4);
      const oo = at(op, "out", out, f32Bytes(count));
      wasm.rope(xo, seq, heads, headDim, po, theta, mode === "adjacent" ? 1 : 0, oo);
    },

    softmax: (x, out) => {
      const rows = dim(x, 0);
      const cols = dim(x, 1);
      const xo = at("softmax", "x", x, f32Bytes(rows * cols));
      const oo = at("softmax", "out", out, f32Bytes(rows * cols));
      wasm.softmax(xo, rows, cols, oo);
    },

    attention: (q, k, v, pos0, scale, out) => {
      const op = "attention";
      const seqQ = dim(q, 0);
      const nHead = dim(q, 1);
      const headDim = dim(q, 2);
      const seqKV = dim(k, 0);
      const nKv = dim(k, 1);
      if (!Number.isSafeInteger(pos0) || pos0 < 0) {
        throw new ShapeError("size", `[attention] pos0 must be a non-negative integer, got ${pos0}`);
      }
      if (nKv === 0 || nHead % nKv !== 0) {
        throw new ShapeError("dim-mismatch", `[attention] nHead = ${nHead} is not a multiple of nKvHead = ${nKv}`);
      }
      if (pos0 + seqQ > seqKV) {
        throw new ShapeError("bounds", `[attention] pos0 + seqQ = ${pos0 + seqQ} exceeds seqKV = ${seqKV}`);
      }
      const qo = at(op, "q", q, f32Bytes(seqQ * nHead * headDim));
      const ko = at(op, "k", k, f32Bytes((pos0 + seqQ) * nKv * headDim));
      const vo = at(op, "v", v, f32Bytes((pos0 + seqQ) * nKv * headDim));
      const oo = at(op, "out", out, f32Bytes(seqQ * nHead * headDim));
      // Work: each (row, head) pair reads pos0 + row + 1 keys and values; about (pos0 + seqQ/2) on average.
      const work = 2 * seqQ * nHead * headDim * (pos0 + (seqQ + 1) / 2);
      split(
        "attention",
        [qo, ko, vo, seqQ, nHead, nKv, headDim, pos0, scale, oo, 0],
        { mode: SPLIT_STRIDED, total: seqQ * nHead, work },
        10,
        (pos0 + seqQ) * 8 + headDim * 4,
      );
    },

    unary: (op, x, out) => {
      const size = elementCount(x.shape);
      const xo = at(op, "x", x, f32Bytes(size));
      const oo = at(op, "out", out, f32Bytes(size));
      wasmElementwise(wasm, "unary", unaryCode(op), xo, 0, oo, size);
    },

    binary: (op, a, aStrides, b, bStrides, out) => {
      const shape = out.shape;
      const rank = shape.length;
      if (rank > BINARY_MAX_RANK || aStrides.length !== rank || bStrides.length !== rank) {
        throw new ShapeError("dim-mismatch", `[wasm-simd] ${op}: rank ${rank} with strides of ${aStrides.length} and ${bStrides.length}`);
      }
      const total = elementCount(shape);
      const oo = at(op, "out", out, f32Bytes(total));
      if (total === 0) {
        return;
      }
      const reach = (name: string, strides: readonly number[]): number => {
        let last = 0;
        for (let d = 0; d < rank; d++) {
          const stride = strides[d] ?? 0;
          if (!Number.isSafeInteger(stride) || stride < 0) {
            throw new ShapeError("size", `[${op}] ${name}Strides[${d}] must be a non-negative integer, got ${stride}`);
          }
          last += ((shape[d] ?? 0) - 1) * stride;
        }
        return last + 1;
      };
      const ao = at(op, "a", a, f32Bytes(reach("a", aStrides)));
      const bo = at(op, "b", b, f32Bytes(reach("b", bStrides)));
      const pad = BINARY_MAX_RANK - rank;
      const n = [...new Array<number>(pad).fill(1), ...shape];
      const as = [...new Array<number>(pad).fill(0), ...aStrides];
      const bs = [...new Array<number>(pad).fill(0), ...bStrides];
      wasmElementwise(wasm, "binary", binaryCode(op), ao, bo, oo, 0, [...n, ...as, ...bs]);
    },

    scale: (x, factor, out) => {
      const size = elementCount(x.shape);
      const xo = at("scale", "x", x, f32Bytes(size));
      const oo = at("scale", "out", out, f32Bytes(size));
      wasm.scale(xo, factor, size, oo);
    },
  };
  return {
    kernels,
    dispose: () => {
      scratch.release();
      headActivations.release();
    },
  };
}
