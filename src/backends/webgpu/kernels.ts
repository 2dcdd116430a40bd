/**
 * The WebGPU kernels: the host side of the WGSL in ./shaders. Each method checks its operands (the same
 * shapes as the `Kernels` contract in backend.ts, with device buffers), picks a tile shape, and records a
 * dispatch; nothing runs until the recorder submits (at a readback, a queue write or a flush). Results are
 * read asynchronously (WebGpuContext.read).
 *
 * Exactness: the integer kernels (ternary, binary, Q8_0 head) and the activation quantizer match the JS
 * reference bit for bit, because their float steps use the soft-float functions of
 * shaders/softfloat.wgsl.ts. Embedding lookups are exact. RMSNorm, softmax, RoPE, attention and the
 * float head compute in f32 (the reference in float64) and match within the tolerances stated in
 * test/backends/webgpu.test.ts.
 */
import { ShapeError, UsageError } from "../../core/errors.js";
import { binaryRowWords, ternaryRowBytes } from "../../quant/layouts.js";
import { QUANT_EPS } from "../../quant/values.js";
import type { BinaryOp, RopeMode, TensorRef, UnaryOp } from "../backend.js";
import { binaryCode, unaryCode } from "../ops.js";
import { elementCount, storageBytes } from "../storage.js";
import type { DeviceMemory } from "./buffers.js";
import { WebGpuError } from "./errors.js";
import { BUFFER_USAGE, type GpuBufferLike } from "./gpu-types.js";
import type { PipelineCache, Recorder } from "./pipelines.js";
import { bitMatmulShader, elementsPerWord, type BitEpilogue, type BitWeights } from "./shaders/bitmatmul.wgsl.js";
import { denseShader, embeddingShader, EMBEDDING_THREADS, q8i8Shader, Q8_0_BLOCK_BYTES, type DenseFormat } from "./shaders/dense.wgsl.js";
import { COPY_BYTES_WGSL, GATHER_WGSL, LAYOUT_THREADS, MAX_GATHER_RANK, XNOR_WGSL } from "./shaders/layout.wgsl.js";
import { ATTENTION_WGSL, MAX_ATTENTION_HEAD_DIM, ROPE_STEP, ROPE_THREADS, rmsNormShader, ropeShader, softmaxShader } from "./shaders/float.wgsl.js";
import { BINARY_WGSL, ELEMENTWISE_THREADS, MAX_BINARY_RANK, UNARY_WGSL } from "./shaders/elementwise.wgsl.js";
import { QUANT_VALUES_THREADS, QUANT_VALUES_WGSL, quantScalesShader } from "./shaders/quantize.wgsl.js";

/** Largest K of the int8 kernels (as the reference's MAX_DOT_K): 128 · K < 2^31, so int32 sums cannot overflow. */
export const MAX_DOT_K = 2 ** 24 - 1;
/** Most positions a RoPE table may hold (its size is positions · headDim · 4 bytes). */
export const MAX_ROPE_POSITIONS = 1 << 20;
/** Q8_0 block length. */
const Q8_BLOCK = 32;
/** Largest element index or stride the layout shaders address (i32 arithmetic on the device). */
const MAX_INDEX = 2 ** 31 - 1;
/** Weight formats the dense shaders decode (declared as the matmulDense and embedding capabilities). */
export const DENSE_FORMATS: readonly DenseFormat[] = ["f32", "f16", "bf16", "q8_0", "q6_k"];

/** Bytes of one row of `cols` elements in a dense format; ShapeError when cols is not whole blocks. */
function denseRowBytes(op: string, format: DenseFormat, cols: number): number {
  const bytes = storageBytes(format, [1, cols]);
  if (!Number.isSafeInteger(bytes)) {
    throw new ShapeError("size", `[webgpu ${op}] ${format} rows of ${cols} elements are not whole blocks`);
  }
  return bytes;
}

/** Tile shapes (activation rows × weight rows per workgroup): decode (one row) and longer inputs. */
const TILES = {
  ternary: { one: [1, 8], many: [4, 8] },
  binary: { one: [1, 8], many: [4, 4] },
  q8i8: { one: [1, 32], many: [4, 8] },
  dense: { one: [1, 8], many: [4, 4] },
} as const;

function tileFor(kind: keyof typeof TILES, m: number): readonly [number, number] {
  return m === 1 ? TILES[kind].one : TILES[kind].many;
}

const f32Bits = (() => {
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  return (x: number): number => {
    f[0] = x;
    return u[0] ?? 0;
  };
})();

function dim(t: TensorRef, i: number): number {
  return t.shape[i] ?? 1;
}

function requireDtype(op: string, name: string, t: TensorRef, ...dtypes: TensorRef["dtype"][]): void {
  if (!dtypes.includes(t.dtype)) {
    throw new UsageError("dtype", `[webgpu ${op}] ${name} must be ${dtypes.join(" or ")}, got ${t.dtype}`);
  }
}

function requireRank(op: string, name: string, t: TensorRef, rank: number): void {
  if (t.shape.length !== rank || !t.shape.every((s) => Number.isSafeInteger(s) && s >= 0)) {
    throw new ShapeError("rank", `[webgpu ${op}] ${name} must have ${rank} non-negative integer dims, got [${t.shape.join(", ")}]`);
  }
}

function requireEqual(op: string, what: string, a: number, b: number): void {
  if (a !== b) {
    throw new ShapeError("dim-mismatch", `[webgpu ${op}] ${what}: ${a} vs ${b}`);
  }
}

/** Params as 32-bit words: integers as u32, `{ f: x }` as f32 bits. */
function params(...values: (number | { f: number })[]): Uint32Array {
  return Uint32Array.from(values, (v) => (typeof v === "number" ? v >>> 0 : f32Bits(v.f)));
}

/**
 * A cos/sin table for RoPE on the device (the factored layout of ropeShader), computed in float64 like the
 * reference. Its buffer is the kernels' own, not a tensor's: it is not counted among live allocations.
 */
export class RopeTable {
  constructor(
    readonly buffer: GpuBufferLike,
    readonly theta: number,
    readonly headDim: number,
    readonly positions: number,
    /** Rows of the low part (see ropeShader): min(positions, ROPE_STEP). */
    readonly lowRows: number,
  ) {}

  dispose(): void {
    this.buffer.destroy();
  }
}

export class WebGpuKernels {
  constructor(
    private readonly memory: DeviceMemory,
    private readonly pipelines: PipelineCache,
    private readonly recorder: Recorder,
  ) {}

  /** The GPU buffer of an operand, checking it holds at least the bytes its dtype and shape need. */
  #buf(op: string, name: string, t: TensorRef, bytes = storageBytes(t.dtype, t.shape)): GpuBufferLike {
    const own = this.memory.resolve(t.buffer, op);
    if (!Number.isSafeInteger(bytes) || own.bytes < bytes) {
      throw new ShapeError("size", `[webgpu ${op}] ${name} holds ${own.bytes} bytes, needs ${bytes}`);
    }
    return own.gpu;
  }

  #dispatch(label: string, code: string, p: Uint32Array | undefined, buffers: readonly GpuBufferLike[], workgroups: number): void {
    this.recorder.dispatch(this.pipelines.get(label, code), p, buffers, workgroups);
  }

  #scratch(name: string, bytes: number): GpuBufferLike {
    if (bytes > this.memory.maxBufferBytes) {
      throw new WebGpuError("limit", `[webgpu] scratch ${name} of ${bytes} bytes exceeds the device's binding limit`);
    }
    return this.recorder.scratch(name, bytes);
  }

  /** Per-row absmax int8 quantization of x[M,K] into q[M,K] i8 and scales[M] f32 (exact). */
  quantizeActivations(x: TensorRef, q: TensorRef, scales: TensorRef): void {
    const op = "quantizeActivations";
    requireRank(op, "x", x, 2);
    requireDtype(op, "x", x, "f32");
    requireDtype(op, "q", q, "i8");
    requireDtype(op, "scales", scales, "f32");
    const [m, k] = [dim(x, 0), dim(x, 1)];
    this.#quantize(this.#buf(op, "x", x), m, k, this.#buf(op, "q", q, m * k), this.#buf(op, "scales", scales, m * 4), undefined);
  }

  #quantize(x: GpuBufferLike, rows: number, cols: number, q: GpuBufferLike, scales: GpuBufferLike, inverses: GpuBufferLike | undefined): void {
    const scaleBuffers = inverses === undefined ? [x, scales, this.recorder.status] : [x, scales, inverses, this.recorder.status];
    this.#dispatch("quant-scales", quantScalesShader(inverses !== undefined), params(rows, cols, f32Bits(Math.fround(QUANT_EPS)), 0), scaleBuffers, rows);
    const words = Math.ceil((rows * cols) / 4);
    this.#dispatch("quant-values", QUANT_VALUES_WGSL, params(rows, cols, words, 0), [x, scales, q], Math.ceil(words / QUANT_VALUES_THREADS));
  }

  /** out[M,N] f32 = (x_q[M,K] i8 · trits(w)[N,K]ᵀ) / xScales[M] · w.scale (exact). */
  matmulTernaryI8(x: TensorRef, xScales: TensorRef, w: TensorRef, out: TensorRef): void {
    this.#bitMatmul("ternary", x, xScales, w, out);
  }

  /** out[M,N] f32 = (x_q[M,K] i8 · signs(w)[N,K]ᵀ) / xScales[M] · w.scale (exact). */
  matmulBinaryI8(x: TensorRef, xScales: TensorRef, w: TensorRef, out: TensorRef): void {
    this.#bitMatmul("binary", x, xScales, w, out);
  }

  /**
   * matmulTernaryI8 with the fused block's epilogue (exact, see BitEpilogue): out = res + y (the residual
   * add), or out = act(y) · (x · up) with `up` a second ternary weight of w's shape (the gated FFN).
   */
  matmulTernaryI8Epilogue(x: TensorRef, xScales: TensorRef, w: TensorRef, out: TensorRef, epilogue: { residual: TensorRef } | { up: TensorRef; act: UnaryOp }): void {
    this.#bitMatmul("ternary", x, xScales, w, out, epilogue);
  }

  #bitMatmul(kind: BitWeights, x: TensorRef, xScales: TensorRef, w: TensorRef, out: TensorRef, epilogue?: { residual: TensorRef } | { up: TensorRef; act: UnaryOp }): void {
    const op = kind === "ternary" ? "matmulTernaryI8" : "matmulBinaryI8";
    requireRank(op, "x", x, 2);
    requireRank(op, "w", w, 2);
    requireDtype(op, "x", x, "i8");
    requireDtype(op, "xScales", xScales, "f32");
    requireDtype(op, "w", w, kind);
    requireDtype(op, "out", out, "f32");
    const [m, k, n] = [dim(x, 0), dim(x, 1), dim(w, 0)];
    requireEqual(op, "contraction (x cols vs w cols)", k, dim(w, 1));
    if (k > MAX_DOT_K) {
      throw new ShapeError("size", `[webgpu ${op}] k = ${k} exceeds MAX_DOT_K = ${MAX_DOT_K}`);
    }
    const rowBytes = kind === "ternary" ? ternaryRowBytes(k) : binaryRowWords(k) * 4;
    const words = Math.ceil(k / elementsPerWord(kind));
    const mode: BitEpilogue = epilogue === undefined ? "plain" : "residual" in epilogue ? "residual" : "gated";
    // The gated tile holds two sums per output: 4×4 instead of 4×8 keeps its workgroup memory the same.
    const [tm, tn] = mode === "gated" && m > 1 ? [4, 4] : tileFor(kind, m);
    const buffers = [this.#buf(op, "x", x, m * k), this.#buf(op, "xScales", xScales, m * 4), this.#buf(op, "w", w, n * rowBytes), this.#buf(op, "out", out, m * n * 4)];
    const p = params(m, k, n, rowBytes, words, f32Bits(Math.fround(w.scale ?? 1)), 0, 0);
    if (epilogue !== undefined && "residual" in epilogue) {
      requireDtype(op, "residual", epilogue.residual, "f32");
      buffers.push(this.#buf(op, "residual", epilogue.residual, m * n * 4));
    } else if (epilogue !== undefined) {
      requireDtype(op, "up", epilogue.up, kind);
      if (epilogue.up.shape.join("x") !== w.shape.join("x")) {
        throw new ShapeError("dim-mismatch", `[webgpu ${op}] up [${epilogue.up.shape.join(", ")}] and w [${w.shape.join(", ")}] differ`);
      }
      buffers.push(this.#buf(op, "up", epilogue.up, n * rowBytes));
      p[6] = f32Bits(Math.fround(epilogue.up.scale ?? 1));
      p[7] = unaryCode(epilogue.act);
    }
    if (buffers.slice(4).includes(buffers[3] as GpuBufferLike)) {
      throw new UsageError("unsupported", `[webgpu ${op}] out must not alias the epilogue's operand`);
    }
    const tiles = Math.ceil(m / tm) * Math.ceil(n / tn);
    // k = 0 needs no special case: the sums are 0 and the scaling still runs, as in the reference.
    this.#dispatch(`${kind}-i8 ${tm}x${tn} ${mode}`, bitMatmulShader(kind, tm, tn, mode), p, buffers, tiles);
  }

  /** The integer Q8_0 head: out[M,N] = x[M,K] · w[N,K]ᵀ with x quantized per 32-block (exact). */
  matmulQ8I8(x: TensorRef, w: TensorRef, out: TensorRef): void {
    const op = "matmulQ8I8";
    requireRank(op, "x", x, 2);
    requireRank(op, "w", w, 2);
    requireDtype(op, "x", x, "f32");
    requireDtype(op, "w", w, "q8_0");
    requireDtype(op, "out", out, "f32");
    const [m, k, n] = [dim(x, 0), dim(x, 1), dim(w, 0)];
    requireEqual(op, "contraction (x cols vs w cols)", k, dim(w, 1));
    if (k % Q8_BLOCK !== 0 || k === 0) {
      throw new ShapeError("size", `[webgpu ${op}] k = ${k} is not a positive multiple of ${Q8_BLOCK}`);
    }
    const blocks = k / Q8_BLOCK;
    const rowBytes = blocks * Q8_0_BLOCK_BYTES;
    const xb = this.#buf(op, "x", x, m * k * 4);
    const wb = this.#buf(op, "w", w, n * rowBytes);
    const ob = this.#buf(op, "out", out, m * n * 4);
    if (m === 0 || n === 0) {
      return;
    }
    const xq = this.#scratch("q8i8-x", m * k);
    const scales = this.#scratch("q8i8-scales", m * blocks * 4);
    const inverses = this.#scratch("q8i8-inverses", m * blocks * 4);
    this.#quantize(xb, m * blocks, Q8_BLOCK, xq, scales, inverses);
    const [tm, tn] = tileFor("q8i8", m);
    const tiles = Math.ceil(m / tm) * Math.ceil(n / tn);
    this.#dispatch(`q8i8 ${tm}x${tn}`, q8i8Shader(tm, tn), params(m, blocks, n, rowBytes), [xq, inverses, wb, ob], tiles);
  }

  /** out[M,N] = x[M,K] · w[N,K]ᵀ in f32 (the dense shader over f32 weights). */
  matmulF32(x: TensorRef, w: TensorRef, out: TensorRef): void {
    requireDtype("matmulF32", "w", w, "f32");
    this.#dense("matmulF32", x, w, out);
  }

  /** The float head: out[M,N] = x[M,K] f32 · decode(w)[N,K]ᵀ for f32, f16, bf16, q8_0 and q6_k weights. */
  matmulDense(x: TensorRef, w: TensorRef, out: TensorRef): void {
    this.#dense("matmulDense", x, w, out);
  }

  #dense(op: string, x: TensorRef, w: TensorRef, out: TensorRef): void {
    requireRank(op, "x", x, 2);
    requireRank(op, "w", w, 2);
    requireDtype(op, "x", x, "f32");
    requireDtype(op, "w", w, ...DENSE_FORMATS);
    requireDtype(op, "out", out, "f32");
    const [m, k, n] = [dim(x, 0), dim(x, 1), dim(w, 0)];
    requireEqual(op, "contraction (x cols vs w cols)", k, dim(w, 1));
    const format = w.dtype as DenseFormat;
    const rowBytes = denseRowBytes(op, format, k);
    const buffers = [this.#buf(op, "x", x, m * k * 4), this.#buf(op, "w", w, n * rowBytes), this.#buf(op, "out", out, m * n * 4)];
    const [tm, tn] = tileFor("dense", m);
    const tiles = Math.ceil(m / tm) * Math.ceil(n / tn);
    // Binding order of the shader: x = 1, w = 2, out = 3.
    this.#dispatch(`dense-${format} ${tm}x${tn}`, denseShader(format, tm, tn), params(m, k, n, rowBytes), buffers, tiles);
  }

  /** out[S,E] f32 = rows ids[S] of table[V,E] (any dense format); an id outside [0, V) is reported by checkStatus. */
  embedding(ids: TensorRef, table: TensorRef, out: TensorRef): void {
    const op = "embedding";
    requireRank(op, "table", table, 2);
    requireDtype(op, "ids", ids, "i32");
    requireDtype(op, "table", table, ...DENSE_FORMATS);
    requireDtype(op, "out", out, "f32");
    const [seq, vocab, embed] = [dim(ids, 0), dim(table, 0), dim(table, 1)];
    const format = table.dtype as DenseFormat;
    const rowBytes = denseRowBytes(op, format, embed);
    const buffers = [this.#buf(op, "ids", ids, seq * 4), this.#buf(op, "table", table, vocab * rowBytes), this.#buf(op, "out", out, seq * embed * 4), this.recorder.status];
    this.#dispatch(`embedding-${format}`, embeddingShader(format), params(seq, embed, vocab, rowBytes), buffers, Math.ceil((seq * embed) / EMBEDDING_THREADS));
  }

  /** Copies src [n, …] into rows [row, row + n) of dst [R, …] (a KV cache append); any dtype, any row length. */
  writeRows(src: TensorRef, dst: TensorRef, row: number): void {
    const op = "writeRows";
    if (src.dtype !== dst.dtype) {
      throw new UsageError("dtype", `[webgpu ${op}] src is ${src.dtype}, dst is ${dst.dtype}`);
    }
    const rows = dim(dst, 0);
    const rowBytes = storageBytes(dst.dtype, [1, ...dst.shape.slice(1)]);
    const count = dim(src, 0);
    if (!Number.isSafeInteger(row) || row < 0 || row + count > rows || storageBytes(src.dtype, [1, ...src.shape.slice(1)]) !== rowBytes) {
      throw new ShapeError("bounds", `[webgpu ${op}] cannot write ${count} rows at ${row} of ${rows}`);
    }
    const bytes = count * rowBytes;
    const s = this.#buf(op, "src", src, bytes);
    const d = this.#buf(op, "dst", dst, rows * rowBytes);
    this.copyBytes(s, 0, d, row * rowBytes, bytes);
  }

  /**
   * Copies `bytes` bytes from src at `srcOffset` to dst at `dstOffset` (any offsets): one buffer copy when
   * everything is whole words, else the byte-merging copy shader.
   */
  copyBytes(src: GpuBufferLike, srcOffset: number, dst: GpuBufferLike, dstOffset: number, bytes: number): void {
    this.#copyRows(src, srcOffset, bytes, dst, dstOffset, bytes, 1, bytes);
  }

  /** Copies `rows` rows of `rowBytes` bytes between strided places of two buffers (one row: a plain copy). */
  #copyRows(src: GpuBufferLike, srcOffset: number, srcStride: number, dst: GpuBufferLike, dstOffset: number, dstStride: number, rows: number, rowBytes: number): void {
    if (rows === 0 || rowBytes === 0) {
      return;
    }
    if (rows === 1 && srcOffset % 4 === 0 && dstOffset % 4 === 0 && rowBytes % 4 === 0 && src !== dst) {
      this.recorder.copy(src, srcOffset, dst, dstOffset, rowBytes);
      return;
    }
    // WebGPU cannot bind one buffer as read and read_write: an overlapping source is read from a scratch copy.
    let from = src;
    if (src === dst) {
      from = this.#scratch("copy-source", src.size);
      this.recorder.copy(src, 0, from, 0, src.size);
    }
    const end = dstOffset + (rows - 1) * dstStride + rowBytes;
    const firstWord = Math.floor(dstOffset / 4);
    const words = Math.ceil(end / 4) - firstWord;
    const p = params(rows, rowBytes, srcOffset, srcStride, dstOffset, dstStride, firstWord, words);
    this.#dispatch("copy-bytes", COPY_BYTES_WGSL, p, [from, dst], Math.ceil(words / LAYOUT_THREADS));
  }

  /** Strided gather of f32 / i32 / i8 elements into contiguous out (semantics of the reference's copyStrided). */
  copyStrided(src: TensorRef, srcOffset: number, srcStrides: readonly number[], out: TensorRef): void {
    const op = "copyStrided";
    requireDtype(op, "src", src, "f32", "i32", "i8");
    if (out.dtype !== src.dtype) {
      throw new UsageError("dtype", `[webgpu ${op}] src is ${src.dtype}, out is ${out.dtype}`);
    }
    const shape = out.shape;
    const rank = shape.length;
    if (rank > MAX_GATHER_RANK || srcStrides.length !== rank) {
      throw new ShapeError("rank", `[webgpu ${op}] ${rank} dims (at most ${MAX_GATHER_RANK}) with ${srcStrides.length} strides`);
    }
    const elem = src.dtype === "i8" ? 1 : 4;
    const count = elementCount(shape);
    const own = this.memory.resolve(src.buffer, op);
    let lowest = srcOffset;
    let highest = srcOffset;
    srcStrides.forEach((stride, d) => {
      if (!Number.isSafeInteger(stride) || Math.abs(stride) > MAX_INDEX) {
        throw new ShapeError("size", `[webgpu ${op}] stride ${stride} is not an integer of at most ${MAX_INDEX}`);
      }
      const reach = ((shape[d] ?? 0) - 1) * stride;
      lowest += Math.min(reach, 0);
      highest += Math.max(reach, 0);
    });
    if (!Number.isSafeInteger(srcOffset) || srcOffset < 0 || (count > 0 && (lowest < 0 || highest >= Math.floor(own.bytes / elem)))) {
      throw new ShapeError("bounds", `[webgpu ${op}] the view reads indices ${lowest}…${highest} of a ${Math.floor(own.bytes / elem)}-element src`);
    }
    if (count === 0) {
      return;
    }
    const words = Math.ceil((count * elem) / 4);
    const p = new Uint32Array(8 + 4 * MAX_GATHER_RANK);
    p.set([count, elem, srcOffset, rank, words]);
    shape.forEach((size, d) => p.set([size, (srcStrides[d] ?? 0) >>> 0], 8 + 4 * d));
    const ob = this.#buf(op, "out", out, count * elem);
    let sb = own.gpu;
    if (sb === ob) {
      sb = this.#scratch("gather-source", sb.size);
      this.recorder.copy(own.gpu, 0, sb, 0, sb.size);
    }
    this.#dispatch("gather", GATHER_WGSL, p, [sb, ob], Math.ceil(words / LAYOUT_THREADS));
  }

  /** Concatenates contiguous f32 / i32 / i8 parts along `axis` into out (each part: a strided row copy). */
  concat(parts: readonly TensorRef[], axis: number, out: TensorRef): void {
    const op = "concat";
    const first = parts[0];
    if (first === undefined) {
      throw new ShapeError("dim-mismatch", `[webgpu ${op}] needs at least one part`);
    }
    requireDtype(op, "out", out, "f32", "i32", "i8");
    const rank = first.shape.length;
    if (!Number.isSafeInteger(axis) || axis < 0 || axis >= rank) {
      throw new ShapeError("rank", `[webgpu ${op}] axis ${axis} is out of range for rank ${rank}`);
    }
    const elem = out.dtype === "i8" ? 1 : 4;
    const outer = elementCount(first.shape.slice(0, axis));
    const inner = elementCount(first.shape.slice(axis + 1));
    let total = 0;
    for (const [i, part] of parts.entries()) {
      if (part.dtype !== out.dtype || part.shape.length !== rank || part.shape.some((s, d) => d !== axis && s !== first.shape[d])) {
        throw new ShapeError("dim-mismatch", `[webgpu ${op}] part ${i} ${part.dtype}[${part.shape.join(", ")}] does not match ${out.dtype}[${first.shape.join(", ")}]`);
      }
      total += dim(part, axis);
    }
    const outRow = total * inner * elem;
    const ob = this.#buf(op, "out", out, outer * outRow);
    let column = 0;
    for (const part of parts) {
      const partRow = dim(part, axis) * inner * elem;
      this.#copyRows(this.#buf(op, "part", part, outer * partRow), 0, partRow, ob, column, outRow, outer, partRow);
      column += partRow;
    }
  }

  /** out[M,N] i32 = signs(x)[M,K] · signs(w)[N,K]ᵀ by XNOR-popcount (exact). */
  matmulBinaryBinary(x: TensorRef, w: TensorRef, out: TensorRef): void {
    const op = "matmulBinaryBinary";
    requireRank(op, "x", x, 2);
    requireRank(op, "w", w, 2);
    requireDtype(op, "x", x, "binary");
    requireDtype(op, "w", w, "binary");
    requireDtype(op, "out", out, "i32");
    const [m, k, n] = [dim(x, 0), dim(x, 1), dim(w, 0)];
    requireEqual(op, "contraction (x cols vs w cols)", k, dim(w, 1));
    const rowWords = binaryRowWords(k);
    const used = k & 31;
    const p = params(m, k, n, rowWords, used === 0 ? 0xffffffff : (1 << used) - 1, 0, 0, 0);
    const buffers = [this.#buf(op, "x", x, m * rowWords * 4), this.#buf(op, "w", w, n * rowWords * 4), this.#buf(op, "out", out, m * n * 4)];
    this.#dispatch("xnor", XNOR_WGSL, p, buffers, Math.ceil((m * n) / LAYOUT_THREADS));
  }

  /** RMSNorm over the last dim of x[M,K], times weight[K] when given; out may be x. */
  rmsNorm(x: TensorRef, weight: TensorRef | undefined, eps: number, out: TensorRef): void {
    const op = "rmsNorm";
    requireRank(op, "x", x, 2);
    requireDtype(op, "x", x, "f32");
    requireDtype(op, "out", out, "f32");
    const [rows, cols] = [dim(x, 0), dim(x, 1)];
    const inPlace = x.buffer === out.buffer;
    const xb = this.#buf(op, "x", x, rows * cols * 4);
    const ob = this.#buf(op, "out", out, rows * cols * 4);
    const wb = weight === undefined ? this.#scratch("no-weight", 4) : this.#buf(op, "weight", weight, cols * 4);
    if (weight !== undefined) {
      requireDtype(op, "weight", weight, "f32");
    }
    const p = params(rows, cols, { f: eps }, weight === undefined ? 0 : 1);
    this.#dispatch(`rmsNorm${inPlace ? " in place" : ""}`, rmsNormShader(inPlace), p, inPlace ? [xb, wb] : [xb, ob, wb], rows);
  }

  /**
   * rmsNorm(x, weight, eps, out) then quantizeActivations(out, q, scales) in two dispatches instead of three
   * (the fused block): the norm also computes the quantizer's per-row scales (rmsNormShader withScales), the
   * same bits as the separate kernels.
   */
  rmsNormQuantize(x: TensorRef, weight: TensorRef, eps: number, out: TensorRef, q: TensorRef, scales: TensorRef): void {
    const op = "rmsNorm";
    requireRank(op, "x", x, 2);
    requireDtype(op, "x", x, "f32");
    requireDtype(op, "out", out, "f32");
    requireDtype(op, "weight", weight, "f32");
    requireDtype("quantizeActivations", "q", q, "i8");
    requireDtype("quantizeActivations", "scales", scales, "f32");
    const [rows, cols] = [dim(x, 0), dim(x, 1)];
    if (x.buffer === out.buffer) {
      throw new UsageError("unsupported", `[webgpu ${op}] the fused norm does not run in place`);
    }
    const ob = this.#buf(op, "out", out, rows * cols * 4);
    const sb = this.#buf(op, "scales", scales, rows * 4);
    const buffers = [this.#buf(op, "x", x, rows * cols * 4), ob, this.#buf(op, "weight", weight, cols * 4), sb, this.recorder.status];
    const p = params(rows, cols, { f: eps }, 1, f32Bits(Math.fround(QUANT_EPS)), 0, 0, 0);
    this.#dispatch("rmsNorm+scales", rmsNormShader(false, true), p, buffers, rows);
    const words = Math.ceil((rows * cols) / 4);
    this.#dispatch("quant-values", QUANT_VALUES_WGSL, params(rows, cols, words, 0), [ob, sb, this.#buf(op, "q", q, rows * cols)], Math.ceil(words / QUANT_VALUES_THREADS));
  }

  /** Softmax over the last dim of x[M,N]; out may be x. */
  softmax(x: TensorRef, out: TensorRef): void {
    const op = "softmax";
    requireDtype(op, "x", x, "f32");
    requireDtype(op, "out", out, "f32");
    const cols = x.shape.length === 0 ? 1 : dim(x, x.shape.length - 1);
    const rows = cols === 0 ? 0 : x.shape.reduce((a, b) => a * b, 1) / cols;
    const inPlace = x.buffer === out.buffer;
    const xb = this.#buf(op, "x", x, rows * cols * 4);
    const ob = this.#buf(op, "out", out, rows * cols * 4);
    this.#dispatch(`softmax${inPlace ? " in place" : ""}`, softmaxShader(inPlace), params(rows, cols, 0x7fc00000, 0), inPlace ? [xb] : [xb, ob], rows);
  }

  /**
   * A RoPE cos/sin table for positions [0, positions), uploaded once: (min(positions, ROPE_STEP) +
   * ceil(positions / ROPE_STEP)) · headDim · 4 bytes (1 MB for a million positions at headDim 128).
   */
  createRopeTable(theta: number, headDim: number, positions: number): RopeTable {
    if (!Number.isSafeInteger(headDim) || headDim <= 0 || headDim % 2 !== 0) {
      throw new ShapeError("size", `[webgpu rope] headDim must be a positive even integer, got ${headDim}`);
    }
    if (!Number.isSafeInteger(positions) || positions <= 0 || positions > MAX_ROPE_POSITIONS) {
      throw new ShapeError("size", `[webgpu rope] a table holds 1 … ${MAX_ROPE_POSITIONS} positions, got ${positions}`);
    }
    if (!(theta > 0) || !Number.isFinite(theta)) {
      throw new ShapeError("size", `[webgpu rope] theta must be positive and finite, got ${theta}`);
    }
    const half = headDim / 2;
    const inv = Float64Array.from({ length: half }, (_, j) => Math.pow(theta, (-2 * j) / headDim));
    // The factored table of ropeShader: low rows for positions 0 … ROPE_STEP − 1, high rows for multiples of ROPE_STEP.
    const lowRows = Math.min(positions, ROPE_STEP);
    const highRows = Math.ceil(positions / ROPE_STEP);
    const table = new Float32Array((lowRows + highRows) * half * 2);
    const put = (row: number, pos: number): void => {
      for (let j = 0; j < half; j++) {
        const angle = pos * (inv[j] ?? 0);
        table[(row * half + j) * 2] = Math.cos(angle);
        table[(row * half + j) * 2 + 1] = Math.sin(angle);
      }
    };
    for (let lo = 0; lo < lowRows; lo++) {
      put(lo, lo);
    }
    for (let hi = 0; hi < highRows; hi++) {
      put(lowRows + hi, hi * ROPE_STEP);
    }
    const device = this.memory.gpu.device;
    const buffer = device.createBuffer({ size: table.byteLength, usage: BUFFER_USAGE.STORAGE | BUFFER_USAGE.COPY_DST, label: "rope-table" });
    device.queue.writeBuffer(buffer, 0, table);
    return new RopeTable(buffer, theta, headDim, positions, lowRows);
  }

  /** Rotary embedding of x[S,H,D] at positions[S] (i32) from `table` (same headDim); out may be x. */
  rope(x: TensorRef, positions: TensorRef, table: RopeTable, mode: RopeMode, out: TensorRef): void {
    const op = "rope";
    requireRank(op, "x", x, 3);
    requireDtype(op, "x", x, "f32");
    requireDtype(op, "positions", positions, "i32");
    requireDtype(op, "out", out, "f32");
    const [seq, heads, headDim] = [dim(x, 0), dim(x, 1), dim(x, 2)];
    requireEqual(op, "headDim (x vs table)", headDim, table.headDim);
    const inPlace = x.buffer === out.buffer;
    const n = seq * heads * headDim;
    const xb = this.#buf(op, "x", x, n * 4);
    const ob = this.#buf(op, "out", out, n * 4);
    const pb = this.#buf(op, "positions", positions, seq * 4);
    this.memory.gpu.assertAlive();
    const tb = table.buffer;
    const p = params(seq, heads, headDim, table.positions, mode === "neox" ? 1 : 0, table.lowRows, 0, 0);
    const io = inPlace ? [xb] : [xb, ob];
    this.#dispatch(`rope${inPlace ? " in place" : ""}`, ropeShader(inPlace), p, [...io, pb, tb, this.recorder.status], Math.ceil(n / 2 / ROPE_THREADS));
  }

  /** Causal attention: q[S,H,D], k and v [C,KV,D] with C ≥ pos0 + S; out[S,H,D] (must not alias). */
  attention(q: TensorRef, k: TensorRef, v: TensorRef, pos0: number, scale: number, out: TensorRef): void {
    const op = "attention";
    for (const [name, t] of [["q", q], ["k", k], ["v", v], ["out", out]] as const) {
      requireRank(op, name, t, 3);
      requireDtype(op, name, t, "f32");
    }
    const [seq, heads, headDim] = [dim(q, 0), dim(q, 1), dim(q, 2)];
    const [capacity, kvHeads] = [dim(k, 0), dim(k, 1)];
    requireEqual(op, "headDim (q vs k)", headDim, dim(k, 2));
    if (k.shape.join("x") !== v.shape.join("x")) {
      throw new ShapeError("dim-mismatch", `[webgpu ${op}] k [${k.shape.join(", ")}] and v [${v.shape.join(", ")}] differ`);
    }
    if (kvHeads === 0 || heads % kvHeads !== 0) {
      throw new ShapeError("dim-mismatch", `[webgpu ${op}] heads = ${heads} is not a multiple of kvHeads = ${kvHeads}`);
    }
    if (headDim > MAX_ATTENTION_HEAD_DIM) {
      throw new ShapeError("size", `[webgpu ${op}] headDim = ${headDim} exceeds ${MAX_ATTENTION_HEAD_DIM}`);
    }
    if (!Number.isSafeInteger(pos0) || pos0 < 0 || pos0 + seq > capacity) {
      throw new ShapeError("bounds", `[webgpu ${op}] pos0 + seqQ = ${pos0 + seq} exceeds the cache's ${capacity} rows`);
    }
    if (q.buffer === out.buffer || k.buffer === out.buffer || v.buffer === out.buffer) {
      throw new UsageError("unsupported", `[webgpu ${op}] out must not alias q, k or v`);
    }
    const kvBytes = capacity * kvHeads * headDim * 4;
    const buffers = [
      this.#buf(op, "q", q, seq * heads * headDim * 4),
      this.#buf(op, "k", k, kvBytes),
      this.#buf(op, "v", v, kvBytes),
      this.#buf(op, "out", out, seq * heads * headDim * 4),
    ];
    const p = params(seq, heads, kvHeads, headDim, pos0, { f: scale }, 0, 0);
    this.#dispatch("attention", ATTENTION_WGSL, p, buffers, headDim === 0 ? 0 : seq * heads);
  }

  /** out = op(x) element-wise over f32 (out may be x). */
  unary(op: UnaryOp, x: TensorRef, out: TensorRef): void {
    this.#elementwise("unary", x, out, params(0, unaryCode(op), 0, 0));
  }

  /** out = x · factor element-wise over f32, the IEEE f32 product (out may be x). */
  scale(x: TensorRef, factor: number, out: TensorRef): void {
    this.#elementwise("scale", x, out, params(0, 0, f32Bits(Math.fround(factor)), 1));
  }

  #elementwise(op: string, x: TensorRef, out: TensorRef, p: Uint32Array): void {
    requireDtype(op, "x", x, "f32");
    requireDtype(op, "out", out, "f32");
    const count = x.shape.reduce((a, b) => a * b, 1);
    p[0] = count;
    const xb = this.#buf(op, "x", x, count * 4);
    const ob = x.buffer === out.buffer ? xb : this.#buf(op, "out", out, count * 4);
    if (xb === ob) {
      // WebGPU cannot bind one buffer as read and read_write in one dispatch: go through scratch.
      const tmp = this.#scratch("elementwise-in-place", count * 4);
      this.recorder.copy(xb, 0, tmp, 0, count * 4);
      this.#dispatch(op, UNARY_WGSL, p, [tmp, ob], Math.ceil(count / ELEMENTWISE_THREADS));
      return;
    }
    this.#dispatch(op, UNARY_WGSL, p, [xb, ob], Math.ceil(count / ELEMENTWISE_THREADS));
  }

  /** out[shape] = a ∘ b, each operand read through its own element strides (0 broadcasts); up to MAX_BINARY_RANK dims. */
  binary(op: BinaryOp, a: TensorRef, aStrides: readonly number[], b: TensorRef, bStrides: readonly number[], out: TensorRef): void {
    const name = "binary";
    requireDtype(name, "a", a, "f32");
    requireDtype(name, "b", b, "f32");
    requireDtype(name, "out", out, "f32");
    const shape = out.shape;
    const rank = shape.length;
    if (rank > MAX_BINARY_RANK) {
      throw new ShapeError("rank", `[webgpu ${name}] at most ${MAX_BINARY_RANK} dims, got ${rank}`);
    }
    if (aStrides.length !== rank || bStrides.length !== rank) {
      throw new ShapeError("dim-mismatch", `[webgpu ${name}] strides need ${rank} entries, got ${aStrides.length} and ${bStrides.length}`);
    }
    const count = shape.reduce((x, y) => x * y, 1);
    const extent = (strides: readonly number[]): number => {
      let last = 0;
      strides.forEach((s, d) => {
        if (!Number.isSafeInteger(s) || s < 0) {
          throw new ShapeError("size", `[webgpu ${name}] strides must be non-negative integers, got ${s}`);
        }
        last += ((shape[d] ?? 1) - 1) * s;
      });
      return count === 0 ? 0 : last + 1;
    };
    const words = new Uint32Array(4 + 4 * MAX_BINARY_RANK);
    words.set([count, binaryCode(op), rank, 0]);
    shape.forEach((size, d) => words.set([size, aStrides[d] ?? 0, bStrides[d] ?? 0, 0], 4 + 4 * d));
    let ab = this.#buf(name, "a", a, extent(aStrides) * 4);
    let bb = this.#buf(name, "b", b, extent(bStrides) * 4);
    const ob = this.#buf(name, "out", out, count * 4);
    // An operand that is also the output is read from a scratch copy (no read/read_write aliasing in WebGPU).
    if (ab === ob) {
      const tmp = this.#scratch("binary-a", ob.size);
      this.recorder.copy(ab, 0, tmp, 0, ob.size);
      ab = tmp;
    }
    if (bb === ob) {
      const tmp = this.#scratch("binary-b", ob.size);
      this.recorder.copy(bb, 0, tmp, 0, ob.size);
      bb = tmp;
    }
    this.#dispatch(name, BINARY_WGSL, words, [ab, bb, ob], Math.ceil(count / ELEMENTWISE_THREADS));
  }
}
