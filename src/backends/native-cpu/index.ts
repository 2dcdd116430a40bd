/**
 * The native CPU backend ("native-cpu"): kernels in C++ (native/cpu) through an N-API addon, with
 * AVX-512 VNNI, AVX-512BW, AVX2, NEON (arm64 only) and scalar paths chosen at load time from CPUID and
 * XGETBV, and a persistent thread pool (one thread per physical core by default).
 *
 * Kernels: matmulTernaryI8, matmulBinaryI8, matmulBinaryBinary (bit-exact with the JS reference),
 * quantizeActivations (bit-exact), matmulF32 / matmulDense (f32 and f16 weights), embedding (f32 and f16;
 * exact), rmsNorm, rope, softmax, attention, unary (all ops), binary (any non-negative strides), scale,
 * writeRows; matmulDense also takes q8_0, q4_k, q5_k and q6_k weights, embedding tables in those formats (rows
 * decoded exactly as the reference; native/cpu/kquant.cc); matmulQ8I8 (the integer Q8_0 head, bit-exact: AVX-512 VNNI over 16
 * weight rows per tile, scalar elsewhere; and the integer Q4_K / Q5_K / Q6_K head, bit-exact: AVX-512 VNNI, AVX2, scalar). copyStrided and concat, and dense weights in bf16, fall back to
 * the next backend.
 *
 * Float kernels: attention and SiLU run in f32 SIMD on x86 (NMSE vs the float64 reference ~1e-14, bound
 * 1e-10 in the tests); matmulDense streams f32 / f16 / Q8_0 rows with f32 FMA partial sums added in
 * double; quantizeActivations and rmsNorm stay bit-exact / float64.
 *
 * The ternary kernel reads the t2 weights as stored (no repacked copy): the activations (K bytes per row)
 * are rearranged once per call instead, to match the order in which SIMD registers decode packed weight
 * bytes (native/cpu/kernels.h). BARBELL_NATIVE_ISA=scalar|avx2|avx512bw|avx512vnni|avx512 forces a lower
 * path.
 */
import { ShapeError, UsageError, ValueError } from "../../core/errors.js";
import { binaryRowWords, ternaryRowBytes } from "../../quant/layouts.js";
import type {
  BackendOptions,
  BitnetBlockParams,
  BitnetBlockWeights,
  FusedKernels,
  BackendProvider,
  Kernels,
  PartialBackend,
  Probe,
  TensorRef,
} from "../backend.js";
import { subOpsWhere, type Capabilities } from "../capabilities.js";
import { views } from "../host-memory.js";
import { binaryCode, unaryCode } from "../ops.js";
import { elementCount, storageBytes } from "../storage.js";
import { nativeAddon, probeNativeCpu, requestedIsa, type NativeAddon, type NativeContext } from "./addon.js";
import { checkBlockWeights, dim, kvTypeCode, makeLayers, nonFinite, same } from "./layers.js";

export { probeNativeCpu } from "./addon.js";

/**
 * Block formats the addon decodes (denseBlocks, embeddingBlocks): its format code (native/cpu/kquant.h
 * BlockCode), elements and bytes per block (src/quant/formats).
 */
const BLOCK_FORMATS = {
  q8_0: { code: 0, elems: 32, bytes: 34 },
  q6_k: { code: 1, elems: 256, bytes: 210 },
  q4_k: { code: 2, elems: 256, bytes: 144 },
  q5_k: { code: 3, elems: 256, bytes: 176 },
} as const;

/** The addon's block format of a dtype, or undefined for plain float rows. */
function blockFormat(dtype: string): (typeof BLOCK_FORMATS)[keyof typeof BLOCK_FORMATS] | undefined {
  return (BLOCK_FORMATS as Record<string, (typeof BLOCK_FORMATS)[keyof typeof BLOCK_FORMATS] | undefined>)[dtype];
}

/** Largest K of the integer kernels here: |Σ (trit + 1)·x| ≤ 2·128·K must fit an int32. */
export const NATIVE_MAX_K = 2 ** 22;

/**
 * The addon's error for an op code it does not know, or for a table op it has no case for, becomes
 * UsageError "unsupported"; others pass.
 */
function typedOpError(error: unknown): unknown {
  return error instanceof RangeError && (error.message.includes("unknown op code") || error.message.includes("is not implemented by this build"))
    ? new UsageError("unsupported", error.message)
    : error;
}

/**
 * The addon's element-wise entry points with an op-table code (ops.ts): a code the build does not know, or
 * one it has no case for (it is not in the addon's unaryOps / binaryOps, so the dispatcher never routes it
 * here), is UsageError "unsupported", never a default op.
 */
export const nativeElementwise = {
  unary(ctx: NativeContext, code: number, x: Float32Array, n: number, out: Float32Array): void {
    try {
      ctx.unary(code, x, n, out);
    } catch (error) {
      throw typedOpError(error);
    }
  },
  binaryFlat(ctx: NativeContext, code: number, a: Float32Array, b: Float32Array, n: number, out: Float32Array): void {
    try {
      ctx.binaryFlat(code, a, b, n, out);
    } catch (error) {
      throw typedOpError(error);
    }
  },
  binary(
    ctx: NativeContext,
    code: number,
    a: Float32Array,
    aStrides: Float64Array,
    b: Float32Array,
    bStrides: Float64Array,
    shape: Float64Array,
    out: Float32Array,
  ): void {
    try {
      ctx.binary(code, a, aStrides, b, bStrides, shape, out);
    } catch (error) {
      throw typedOpError(error);
    }
  },
};

/** Options of {@link createNativeCpuBackend}; `isa` overrides BARBELL_NATIVE_ISA (tests use it). */
export interface NativeCpuOptions extends BackendOptions {
  readonly isa?: string;
}

function need(op: string, name: string, array: { readonly length: number }, needed: number): void {
  if (array.length < needed) {
    throw new ShapeError("size", `[${op}] ${name} holds ${array.length} elements, needs at least ${needed}`);
  }
}

function u16(t: TensorRef): Uint16Array {
  const b = views.u8(t);
  return new Uint16Array(b.buffer, b.byteOffset, b.byteLength >> 1);
}

/** f32 or f16 weights as the typed array the addon expects. */
function denseWeights(op: string, t: TensorRef): Float32Array | Uint16Array {
  if (t.dtype === "f32") {
    return views.f32(t);
  }
  if (t.dtype === "f16") {
    return u16(t);
  }
  throw new UsageError("dtype", `[${op}] native-cpu has no ${t.dtype} kernel`);
}

function checkInt(op: string, name: string, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new ShapeError("size", `[${op}] ${name} must be a non-negative integer, got ${v}`);
  }
}

/** True when `strides` are the row-major strides of `shape` (dimensions of size 1 may hold any stride). */
function contiguous(strides: readonly number[], shape: readonly number[]): boolean {
  if (strides.length !== shape.length) {
    return false;
  }
  let expect = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    const size = shape[d] ?? 0;
    if (size !== 1 && strides[d] !== expect) {
      return false;
    }
    expect *= size;
  }
  return true;
}

/** Checks one strided operand of `binary` the way the JS reference does; returns the strides as f64. */
function stridedOperand(
  op: string,
  name: string,
  array: Float32Array,
  strides: readonly number[],
  shape: readonly number[],
): Float64Array {
  if (strides.length !== shape.length) {
    throw new ShapeError(
      "dim-mismatch",
      `[${op}] ${name}Strides has ${strides.length} entries for a rank-${shape.length} shape`,
    );
  }
  let last = 0;
  for (let d = 0; d < shape.length; d++) {
    const stride = strides[d] ?? 0;
    if (!Number.isSafeInteger(stride) || stride < 0) {
      throw new ShapeError("size", `[${op}] ${name}Strides[${d}] must be a non-negative integer, got ${stride}`);
    }
    last += ((shape[d] ?? 0) - 1) * stride;
  }
  need(op, name, array, last + 1);
  return Float64Array.from(strides);
}

function makeKernels(ctx: NativeContext): Partial<Kernels> {
  const { f32, i8, i32, u8, u32 } = views;

  const dense = (op: string, x: TensorRef, w: TensorRef, out: TensorRef): void => {
    const m = dim(x, 0);
    const k = dim(x, 1);
    const n = dim(w, 0);
    same(op, "x and w columns", k, dim(w, 1));
    same(op, "out shape", dim(out, 0) * dim(out, 1), m * n);
    const xa = f32(x);
    const oa = f32(out);
    const kquant = w.dtype === "q8_0" ? undefined : blockFormat(w.dtype);
    if (kquant !== undefined) {
      if (k % kquant.elems !== 0) {
        throw new ShapeError("size", `[${op}] ${w.dtype} rows need k a multiple of ${kquant.elems}, got ${k}`);
      }
      const wb = u8(w);
      need(op, "x", xa, m * k);
      need(op, "w", wb, n * (k / kquant.elems) * kquant.bytes);
      need(op, "out", oa, m * n);
      ctx.denseBlocks(kquant.code, xa, wb, m, k, n, oa);
      return;
    }
    if (w.dtype === "q8_0") {
      if (k % 32 !== 0) {
        throw new ShapeError("size", `[${op}] q8_0 rows need k a multiple of 32, got ${k}`);
      }
      const wb = u8(w);
      need(op, "x", xa, m * k);
      need(op, "w", wb, n * (k / 32) * 34);
      need(op, "out", oa, m * n);
      ctx.denseQ8(xa, wb, m, k, n, oa);
      return;
    }
    const wa = denseWeights(op, w);
    need(op, "x", xa, m * k);
    need(op, "w", wa, n * k);
    need(op, "out", oa, m * n);
    ctx.dense(xa, wa, m, k, n, oa);
  };

  const scaledInt = (
    op: string,
    x: TensorRef,
    s: TensorRef,
    w: TensorRef,
    out: TensorRef,
  ): [number, number, number] => {
    const m = dim(x, 0);
    const k = dim(x, 1);
    const n = dim(w, 0);
    same(op, "x and w columns", k, dim(w, 1));
    same(op, "out shape", dim(out, 0) * dim(out, 1), m * n);
    if (k > NATIVE_MAX_K) {
      throw new ShapeError("size", `[${op}] k = ${k} exceeds ${NATIVE_MAX_K}`);
    }
    need(op, "x", i8(x), m * k);
    need(op, "xScales", f32(s), m);
    need(op, "out", f32(out), m * n);
    return [m, k, n];
  };

  return {
    matmulF32: (x, w, out) => dense("matmulF32", x, w, out),
    matmulDense: (x, w, out) => dense("matmulDense", x, w, out),
    matmulQ8I8: (x, w, out) => {
      const op = "matmulQ8I8";
      const m = dim(x, 0);
      const k = dim(x, 1);
      const n = dim(w, 0);
      same(op, "x and w columns", k, dim(w, 1));
      same(op, "out shape", dim(out, 0) * dim(out, 1), m * n);
      const format = blockFormat(w.dtype);
      if (format === undefined) {
        throw new UsageError("dtype", `[${op}] needs q8_0, q4_k, q5_k or q6_k weights, got ${w.dtype}`);
      }
      if (k % format.elems !== 0) {
        throw new ShapeError("size", `[${op}] ${w.dtype} rows are whole blocks: k = ${k} is not a multiple of ${format.elems}`);
      }
      const xa = f32(x);
      const wb = u8(w);
      const oa = f32(out);
      need(op, "x", xa, m * k);
      need(op, "w", wb, n * (k / format.elems) * format.bytes);
      need(op, "out", oa, m * n);
      // Q8_0: per-32 activations (q8i8); the k-quants: per-256 with 16-element sums (kquant.h, KI8Args).
      const bad = w.dtype === "q8_0" ? ctx.q8i8(xa, wb, m, k, n, oa) : ctx.denseBlocks(format.code, xa, wb, m, k, n, oa, true);
      if (bad >= 0) {
        const v = xa[bad] ?? Number.NaN;
        throw new ValueError("non-finite", `[${op}] x index ${bad} holds ${v}`, bad, v);
      }
    },
    matmulTernaryI8: (x, s, w, out) => {
      const op = "matmulTernaryI8";
      const [m, k, n] = scaledInt(op, x, s, w, out);
      const wa = u8(w);
      need(op, "w", wa, n * ternaryRowBytes(k));
      ctx.ternary(i8(x), f32(s), wa, w.scale ?? 1, m, k, n, f32(out));
    },
    matmulBinaryI8: (x, s, w, out) => {
      const op = "matmulBinaryI8";
      const [m, k, n] = scaledInt(op, x, s, w, out);
      const wa = u32(w);
      need(op, "w", wa, n * binaryRowWords(k));
      ctx.binaryI8(i8(x), f32(s), wa, w.scale ?? 1, m, k, n, f32(out));
    },
    matmulBinaryBinary: (x, w, out) => {
      const op = "matmulBinaryBinary";
      const m = dim(x, 0);
      const k = dim(x, 1);
      const n = dim(w, 0);
      same(op, "x and w columns", k, dim(w, 1));
      if (k > NATIVE_MAX_K) {
        throw new ShapeError("size", `[${op}] k = ${k} exceeds ${NATIVE_MAX_K}`);
      }
      const xa = u32(x);
      const wa = u32(w);
      const oa = i32(out);
      need(op, "x", xa, m * binaryRowWords(k));
      need(op, "w", wa, n * binaryRowWords(k));
      need(op, "out", oa, m * n);
      ctx.binaryBinary(xa, wa, m, k, n, oa);
    },
    quantizeActivations: (x, q, scales) => {
      const op = "quantizeActivations";
      const m = dim(x, 0);
      const k = dim(x, 1);
      const xa = f32(x);
      const qa = i8(q);
      const sa = f32(scales);
      need(op, "x", xa, m * k);
      need(op, "q", qa, m * k);
      need(op, "scales", sa, m);
      const bad = ctx.quantize(xa, m, k, qa, sa);
      if (bad >= 0) {
        const v = xa[bad] ?? Number.NaN;
        throw new ValueError("non-finite", `[${op}] index ${bad} holds ${v}`, bad, v);
      }
    },
    embedding: (ids, table, out) => {
      const op = "embedding";
      const seq = dim(ids, 0);
      const vocab = dim(table, 0);
      const embed = dim(table, 1);
      const ia = i32(ids);
      const oa = f32(out);
      need(op, "ids", ia, seq);
      need(op, "out", oa, seq * embed);
      let bad: number;
      const blocks = blockFormat(table.dtype);
      if (blocks !== undefined) {
        if (embed % blocks.elems !== 0) {
          throw new ShapeError("size", `[${op}] ${table.dtype} rows need a length that is a multiple of ${blocks.elems}, got ${embed}`);
        }
        const tb = u8(table);
        need(op, "table", tb, vocab * (embed / blocks.elems) * blocks.bytes);
        bad = ctx.embeddingBlocks(blocks.code, ia, seq, tb, vocab, embed, oa);
      } else {
        const ta = denseWeights(op, table);
        need(op, "table", ta, vocab * embed);
        bad = ctx.embedding(ia, seq, ta, vocab, embed, oa);
      }
      if (bad >= 0) {
        const id = ia[bad] ?? -1;
        throw new ShapeError(
          "bounds",
          `[${op}] token id ${id} at position ${bad} is outside the vocabulary of ${vocab}`,
        );
      }
    },
    writeRows: (src, dst, row) => {
      const rows = dim(dst, 0);
      const rowBytes = rows === 0 ? 0 : storageBytes(dst.dtype, dst.shape) / rows;
      const n = dim(src, 0);
      if (
        !Number.isSafeInteger(row) ||
        row < 0 ||
        row + n > rows ||
        storageBytes(src.dtype, [1, ...src.shape.slice(1)]) !== rowBytes
      ) {
        throw new ShapeError("bounds", `[writeRows] cannot write ${n} rows at ${row} of ${rows}`);
      }
      const bytes = storageBytes(src.dtype, src.shape);
      const from = u8(src);
      need("writeRows", "src", from, bytes);
      u8(dst).set(from.subarray(0, bytes), row * rowBytes);
    },
    rmsNorm: (x, w, eps, out) => {
      const op = "rmsNorm";
      const rows = dim(x, 0);
      const cols = dim(x, 1);
      const xa = f32(x);
      const oa = f32(out);
      need(op, "x", xa, rows * cols);
      need(op, "out", oa, rows * cols);
      const wa = w === undefined ? null : f32(w);
      if (wa !== null) {
        need(op, "weight", wa, cols);
      }
      ctx.rmsNorm(xa, wa, rows, cols, eps, oa);
    },
    rope: (x, pos, theta, mode, out) => {
      const op = "rope";
      const [seq, heads, headDim] = [dim(x, 0), dim(x, 1), dim(x, 2)];
      if (headDim % 2 !== 0) {
        throw new ShapeError("size", `[${op}] headDim must be even, got ${headDim}`);
      }
      const xa = f32(x);
      const pa = i32(pos);
      const oa = f32(out);
      need(op, "x", xa, seq * heads * headDim);
      need(op, "positions", pa, seq);
      need(op, "out", oa, seq * heads * headDim);
      ctx.rope(xa, seq, heads, headDim, pa, theta, mode === "neox", oa);
    },
    softmax: (x, out) => {
      const rows = dim(x, 0);
      const cols = dim(x, 1);
      const xa = f32(x);
      const oa = f32(out);
      need("softmax", "x", xa, rows * cols);
      need("softmax", "out", oa, rows * cols);
      ctx.softmax(xa, rows, cols, oa);
    },
    attention: (q, k, v, pos0, scale, out) => {
      const op = "attention";
      const [seqQ, nHead, headDim] = [dim(q, 0), dim(q, 1), dim(q, 2)];
      const [seqKV, nKvHead] = [dim(k, 0), dim(k, 1)];
      checkInt(op, "pos0", pos0);
      same(op, "k and q head size", dim(k, 2), headDim);
      same(op, "v and k shapes", elementCount(v.shape), elementCount(k.shape));
      if (nKvHead === 0 || nHead % nKvHead !== 0) {
        throw new ShapeError("dim-mismatch", `[${op}] nHead = ${nHead} is not a multiple of nKvHead = ${nKvHead}`);
      }
      if (pos0 + seqQ > seqKV) {
        throw new ShapeError("bounds", `[${op}] pos0 + seqQ = ${pos0 + seqQ} exceeds seqKV = ${seqKV}`);
      }
      const kvType = kvTypeCode(op, k, v);
      const [qa, oa] = [f32(q), f32(out)];
      const [ka, va] = kvType === 0 ? [f32(k), f32(v)] : [u8(k), u8(v)];
      need(op, "q", qa, seqQ * nHead * headDim);
      need(op, "k", ka, kvType === 0 ? seqKV * nKvHead * headDim : storageBytes(k.dtype, [seqKV, nKvHead, headDim]));
      need(op, "v", va, ka.length);
      need(op, "out", oa, seqQ * nHead * headDim);
      ctx.attention(qa, ka, va, seqQ, seqKV, nHead, nKvHead, headDim, pos0, scale, oa, kvType);
    },
    unary: (op, x, out) => {
      const n = elementCount(x.shape);
      const xa = f32(x);
      const oa = f32(out);
      need(op, "x", xa, n);
      need(op, "out", oa, n);
      nativeElementwise.unary(ctx, unaryCode(op), xa, n, oa);
    },
    binary: (op, a, aStrides, b, bStrides, out) => {
      const shape = out.shape;
      const total = elementCount(shape);
      for (let d = 0; d < shape.length; d++) {
        checkInt(op, `shape[${d}]`, shape[d] ?? 0);
      }
      const oa = f32(out);
      need(op, "out", oa, total);
      if (total === 0) {
        return;
      }
      const aa = f32(a);
      const ba = f32(b);
      if (contiguous(aStrides, shape) && contiguous(bStrides, shape)) {
        // The common case (residual add, gate · up): one flat loop, no stride arrays.
        need(op, "a", aa, total);
        need(op, "b", ba, total);
        nativeElementwise.binaryFlat(ctx, binaryCode(op), aa, ba, total, oa);
        return;
      }
      const as = stridedOperand(op, "a", aa, aStrides, shape);
      const bs = stridedOperand(op, "b", ba, bStrides, shape);
      nativeElementwise.binary(ctx, binaryCode(op), aa, as, ba, bs, Float64Array.from(shape), oa);
    },
    scale: (x, factor, out) => {
      const n = elementCount(x.shape);
      const xa = f32(x);
      const oa = f32(out);
      need("scale", "x", xa, n);
      need("scale", "out", oa, n);
      ctx.scale(xa, factor, n, oa);
    },
  };
}

/**
 * What the native kernels take, as data over the op table (checked against it by the dispatcher). Dense
 * weights in bf16, copyStrided and concat are not here: those calls go to the next backend. The
 * element-wise ops of `unary` and `binary` are the codes the addon reports (the cases of
 * native/cpu/elementwise.h): an op without a case there goes to the next backend too.
 */
const FIXED_CAPABILITIES = {
  matmulF32: true,
  matmulDense: { dtypes: { w: ["f32", "f16", "q8_0", "q4_k", "q5_k", "q6_k"] } },
  matmulQ8I8: true,
  embedding: { dtypes: { table: ["f32", "f16", "q8_0", "q4_k", "q5_k", "q6_k"] } },
  writeRows: true,
  matmulTernaryI8: { maxK: NATIVE_MAX_K },
  matmulBinaryI8: { maxK: NATIVE_MAX_K },
  matmulBinaryBinary: { maxK: NATIVE_MAX_K },
  quantizeActivations: true,
  rmsNorm: true,
  rope: true,
  softmax: true,
  attention: true,
  scale: true,
  bitnetBlock: true,
  bitnetBlockBatch: true,
} as const satisfies Capabilities;

/** The capabilities of this addon build: the fixed ones and the element-wise ops it reports. */
export function nativeCapabilities(addon: Pick<NativeAddon, "unaryOps" | "binaryOps">): Capabilities {
  const has = (codes: readonly number[] | undefined) => (code: number) => codes?.includes(code) === true;
  return {
    ...FIXED_CAPABILITIES,
    unary: { ops: subOpsWhere("unary", has(addon.unaryOps)) },
    binary: { ops: subOpsWhere("binary", has(addon.binaryOps)) },
  };
}

/**
 * Creates a native CPU backend (throws when the addon is unavailable). `threads` defaults to one per
 * physical core; `isa` (or BARBELL_NATIVE_ISA) may force a lower ISA path.
 */
/** The fused BitNet block (native/cpu/block.cc): one addon call per layer and step. */
function makeFused(ctx: NativeContext): Partial<FusedKernels> {
  const { f32, i32, u8 } = views;
  /** Checks shapes and runs the block; `batch` holds one K and one V cache per row (batch mode). */
  const run = (
    op: string,
    h: TensorRef,
    positions: TensorRef,
    kCache: TensorRef,
    vCache: TensorRef,
    pos0: number,
    w: BitnetBlockWeights,
    p: BitnetBlockParams,
    out: TensorRef,
    batch?: { k: readonly TensorRef[]; v: readonly TensorRef[] },
  ): void => {
    const [seq, embed] = [dim(h, 0), dim(h, 1)];
    const capacity = dim(kCache, 0);
    const ffn = dim(w.wGate, 0);
    // f16 / q8_0 caches go as their bytes (the block rounds K and V into them; kv_cache.h).
    const kvType = kvTypeCode(op, kCache, vCache);
    const cacheView = (t: TensorRef): Float32Array | Uint8Array => (kvTypeCode(op, t, kCache) === 0 ? f32(t) : u8(t));
    for (const c of batch === undefined ? [kCache, vCache] : [...batch.k, ...batch.v]) {
      same(op, "cache kv heads", dim(c, 1), p.kvHeads);
      same(op, "cache head size", dim(c, 2), p.headDim);
    }
    same(op, "vCache and kCache sizes", elementCount(vCache.shape), elementCount(kCache.shape));
    same(op, "out and h sizes", elementCount(out.shape), seq * embed);
    same(op, "positions", dim(positions, 0), seq);
    checkInt(op, "pos0", pos0);
    const { projections } = checkBlockWeights(op, w, p, embed);
    const ha = f32(h);
    const oa = f32(out);
    if (ha.buffer === oa.buffer && ha.byteOffset === oa.byteOffset) {
      throw new UsageError("unsupported", `[${op}] out may not alias h`);
    }
    const bad = ctx.block(
      ha,
      oa,
      i32(positions),
      cacheView(kCache),
      cacheView(vCache),
      [w.attnNorm, w.attnSubNorm, w.ffnNorm, w.ffnSubNorm].map((t) => f32(t)),
      projections.map((t) => u8(t)),
      Float64Array.from(projections, (t) => t.scale ?? 1),
      Float64Array.of(seq, embed, p.heads, p.kvHeads, p.headDim, ffn, pos0, capacity),
      Float64Array.of(p.eps, p.ropeTheta, p.attnScale, p.activation === "relu2" ? 1 : 0, kvType),
      ...(batch === undefined ? [] : [batch.k.map(cacheView), batch.v.map(cacheView)]),
    );
    if (bad >= 0) {
      throw nonFinite(op, bad, false);
    }
  };
  return {
    bitnetBlock: (h, positions, kCache, vCache, pos0, w, p, out) => run("bitnetBlock", h, positions, kCache, vCache, pos0, w, p, out),
    bitnetBlockBatch: (h, positions, kCaches, vCaches, w, p, out) => {
      const first = kCaches[0];
      const firstV = vCaches[0];
      if (first === undefined || firstV === undefined || kCaches.length !== dim(h, 0) || vCaches.length !== dim(h, 0)) {
        throw new ShapeError("size", `[bitnetBlockBatch] ${dim(h, 0)} rows need as many K and V caches`);
      }
      run("bitnetBlockBatch", h, positions, first, firstV, 0, w, p, out, { k: kCaches, v: vCaches });
    },
  };
}

export function createNativeCpuBackend(options: NativeCpuOptions = {}): PartialBackend {
  const probe = probeNativeCpu();
  const addon = nativeAddon();
  if (!probe.available || addon === undefined) {
    throw new UsageError("unsupported", `[native-cpu] ${probe.available ? "addon not loaded" : probe.reason}`);
  }
  const threads = options.threads ?? 0;
  if (!Number.isSafeInteger(threads) || threads < 0 || threads > 1024) {
    throw new UsageError("unsupported", `[native-cpu] threads must be an integer in 0…1024, got ${threads}`);
  }
  const ctx = new addon.Context(threads, options.isa ?? requestedIsa());
  const features = addon.features();
  const layers = makeLayers(ctx, addon);
  let disposed = false;
  return {
    name: "native-cpu",
    kernels: makeKernels(ctx),
    fused: makeFused(ctx),
    ...(layers === undefined ? {} : { layers }),
    capabilities: nativeCapabilities(addon),
    info: {
      features: [ctx.isa, ...features.flags, "threads"],
      threads: ctx.threads,
      detail:
        `barbell_native.node, ISA path ${ctx.isa} (best here: ${features.best}), ` +
        `${features.physicalCores} physical cores`,
    },
    dispose: () => {
      if (!disposed) {
        disposed = true;
        ctx.dispose();
      }
    },
  };
}

/** The "native-cpu" provider: probes the addon in a child process first (see addon.ts). */
export const nativeCpuProvider: BackendProvider = {
  name: "native-cpu",
  basePriority: 30,
  probe: (): Promise<Probe> => Promise.resolve(probeNativeCpu()),
  create: (options: BackendOptions): Promise<PartialBackend> =>
    Promise.resolve().then(() => createNativeCpuBackend(options)),
};

/**
 * Memory read bandwidth in bytes/s with `threads` threads, from summing a `bytes`-sized buffer in
 * native code (best of 3 after a warm-up): the ceiling the benchmark holds decode speed against.
 * Undefined when the addon is unavailable.
 */
export function measureReadBandwidth(threads: number, bytes = 512 * 2 ** 20): number | undefined {
  const addon = probeNativeCpu().available ? nativeAddon() : undefined;
  if (addon === undefined) {
    return undefined;
  }
  const context = new addon.Context(threads, "scalar");
  try {
    const data = new Uint8Array(bytes).fill(1);
    const words = Math.floor(bytes / 8);
    context.readSum(data, words);
    let best = 0;
    for (let r = 0; r < 3; r++) {
      const t0 = performance.now();
      context.readSum(data, words);
      best = Math.max(best, (words * 8) / ((performance.now() - t0) / 1000));
    }
    return best;
  } finally {
    context.dispose();
  }
}
