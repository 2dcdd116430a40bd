/**
 * The JS reference backend: plain TypeScript kernels over ArrayBuffers. It is barbell's
 * correctness oracle; every other backend is tested against it.
 */
import { UsageError } from "../../core/errors.js";
import { INTEGER_HEAD_FORMATS, isDenseFormat, isIntegerHeadFormat } from "../../quant/dtypes.js";
import { QUANT_TRAITS } from "../../quant/table.js";
import type { QuantName } from "../../quant/types.js";
import type { Backend, Kernels, TensorRef } from "../backend.js";
import { ArrayBufferMemory, views } from "../host-memory.js";
import { elementCount, storageBytes } from "../storage.js";
import { attention } from "./kernels/attention.js";
import { binaryBroadcast, scale, unary } from "./kernels/elementwise.js";
import { matmulBinaryBinaryAcc, matmulBinaryI8, matmulF32, matmulTernaryI8 } from "./kernels/matmul.js";
import { rmsNorm } from "./kernels/norm.js";
import { rope } from "./kernels/rope.js";
import { softmax } from "./kernels/softmax.js";
import { quantizeActivations } from "../../quant/values.js";
import { concat, copyStrided } from "./kernels/layout.js";
import { embedding, matmulDense, matmulQ8I8 } from "./kernels/dense.js";
import { matmulKI8 } from "./kernels/kquant-head.js";

/** Storage dtypes whose bytes are a block format of src/quant (f32 included). */
function denseFormat(t: TensorRef): QuantName {
  if (!isDenseFormat(t.dtype)) {
    throw new UsageError("dtype", `[js] ${t.dtype} is not a dense float weight type`);
  }
  return t.dtype;
}

/** Creates a fresh JS backend instance with its own allocation accounting. */
export function createJsBackend(): Backend {
  const memory = new ArrayBufferMemory("js");
  const { f32, i32, i8, u8, u32 } = views;
  /** A KV cache operand as f32: an f16 / q8_0 cache decoded (exactly) through its format's reference codec. */
  const kvRows = (t: TensorRef): Float32Array => {
    if (t.dtype === "f32") {
      return f32(t);
    }
    if (t.dtype !== "f16" && t.dtype !== "q8_0") {
      throw new UsageError("dtype", `[js] attention reads f32, f16 or q8_0 KV caches, not ${t.dtype}`);
    }
    const cols = dim(t, 2);
    return QUANT_TRAITS[t.dtype].decode(u8(t).subarray(0, storageBytes(t.dtype, t.shape)), dim(t, 0) * dim(t, 1), cols);
  };
  const dim = (t: TensorRef, i: number): number => t.shape[i] ?? 1;
  /**
   * The query as attention over a q8_0 K cache multiplies it: each head rounded through q8_0 blocks (the codec),
   * so q·k is llama.cpp's integer K·q, Σ_b d_k·d_q·Σ_i k_i·q_i (exact in float64 within a block), the product the
   * native kernels take in int8 (native/cpu/simd_float.inc q8_score).
   */
  const kvQuery = (q: TensorRef, k: TensorRef): Float32Array => {
    const x = f32(q);
    if (k.dtype !== "q8_0") {
      return x;
    }
    const rows = dim(q, 0) * dim(q, 1);
    const cols = dim(q, 2);
    const codec = QUANT_TRAITS.q8_0;
    return codec.decode(codec.encode(x.subarray(0, rows * cols), rows, cols), rows, cols);
  };
  const elements = (t: TensorRef): Float32Array | Int32Array | Int8Array =>
    t.dtype === "f32" ? f32(t) : t.dtype === "i32" ? i32(t) : t.dtype === "i8" ? i8(t) : wholeElementsOnly(t);

  const kernels: Kernels = {
    matmulF32: (x, w, out) => matmulF32(f32(x), f32(w), dim(x, 0), dim(x, 1), dim(w, 0), f32(out)),
    matmulDense: (x, w, out) =>
      w.dtype === "f32"
        ? matmulF32(f32(x), f32(w), dim(x, 0), dim(x, 1), dim(w, 0), f32(out))
        : matmulDense(f32(x), denseFormat(w), u8(w), dim(x, 0), dim(x, 1), dim(w, 0), f32(out)),
    matmulQ8I8: (x, w, out) => {
      if (!isIntegerHeadFormat(w.dtype)) {
        throw new UsageError("unsupported", `[matmulQ8I8] takes ${INTEGER_HEAD_FORMATS.join(", ")} weights, got ${w.dtype}`);
      }
      if (w.dtype === "q8_0") {
        matmulQ8I8(f32(x), u8(w), dim(x, 0), dim(x, 1), dim(w, 0), f32(out));
      } else {
        matmulKI8(f32(x), w.dtype, u8(w), dim(x, 0), dim(x, 1), dim(w, 0), f32(out));
      }
    },
    embedding: (ids, table, out) =>
      embedding(i32(ids), dim(ids, 0), denseFormat(table), u8(table), dim(table, 0), dim(table, 1), f32(out)),
    writeRows: (src, dst, row) => {
      const rowBytes = storageBytes(dst.dtype, dst.shape) / dim(dst, 0);
      const bytes = storageBytes(src.dtype, src.shape);
      if (row < 0 || row + dim(src, 0) > dim(dst, 0) || storageBytes(src.dtype, [1, ...src.shape.slice(1)]) !== rowBytes) {
        throw new UsageError("unsupported", `[js] cannot write ${dim(src, 0)} rows at ${row} of ${dim(dst, 0)}`);
      }
      u8(dst).set(u8(src).subarray(0, bytes), row * rowBytes);
    },
    matmulTernaryI8: (x, s, w, out) =>
      matmulTernaryI8(i8(x), f32(s), u8(w), w.scale ?? 1, dim(x, 0), dim(x, 1), dim(w, 0), f32(out)),
    matmulBinaryI8: (x, s, w, out) =>
      matmulBinaryI8(i8(x), f32(s), u32(w), w.scale ?? 1, dim(x, 0), dim(x, 1), dim(w, 0), f32(out)),
    matmulBinaryBinary: (x, w, out) => matmulBinaryBinaryAcc(u32(x), u32(w), dim(x, 0), dim(x, 1), dim(w, 0), i32(out)),
    quantizeActivations: (x, q, scales) => {
      const rows = dim(x, 0);
      const cols = dim(x, 1);
      const result = quantizeActivations(f32(x).subarray(0, rows * cols), rows, cols);
      if (!result.ok) {
        throw result.error;
      }
      i8(q).set(result.value.values);
      f32(scales).set(result.value.scales);
    },
    rmsNorm: (x, w, eps, out) => rmsNorm(f32(x), w && f32(w), dim(x, 0), dim(x, 1), eps, f32(out)),
    rope: (x, pos, theta, mode, out) =>
      rope(f32(x), dim(x, 0), dim(x, 1), dim(x, 2), i32(pos), theta, mode, f32(out)),
    softmax: (x, out) => softmax(f32(x), dim(x, 0), dim(x, 1), f32(out)),
    attention: (q, k, v, pos0, scale, out) =>
      attention(
        kvQuery(q, k),
        kvRows(k),
        kvRows(v),
        { seqQ: dim(q, 0), seqKV: dim(k, 0), nHead: dim(q, 1), nKvHead: dim(k, 1), headDim: dim(q, 2), pos0, scale },
        f32(out),
      ),
    unary: (op, x, out) => unary(op, f32(x), elementCount(x.shape), f32(out)),
    binary: (op, a, aStrides, b, bStrides, out) => binaryBroadcast(op, f32(a), aStrides, f32(b), bStrides, out.shape, f32(out)),
    scale: (x, factor, out) => scale(f32(x), factor, elementCount(x.shape), f32(out)),
    copyStrided: (src, srcOffset, srcStrides, out) =>
      copyStrided(elements(src), srcOffset, srcStrides, out.shape, elements(out)),
    concat: (parts, axis, out) =>
      concat(
        parts.map((p) => elements(p)),
        parts.map((p) => p.shape),
        axis,
        elements(out),
      ),
  };

  return {
    name: "js",
    kernels,
    memoryKind: "host",
    alloc: (bytes) => memory.alloc(bytes),
    allocGroup: (sizes) => memory.allocGroup(sizes),
    adopt: (bytes) => memory.adopt(bytes),
    adoptLazy: (size, materialize) => memory.adoptLazy(size, materialize),
    free: (buffer) => memory.free(buffer),
    write: (buffer, src, byteOffset) => memory.write(buffer, src, byteOffset),
    read: (buffer, byteOffset, length) => memory.read(buffer, byteOffset, length),
    readAsync: (buffer, byteOffset, length) => memory.readAsync(buffer, byteOffset, length),
    liveAllocations: () => memory.liveAllocations(),
    liveBytes: () => memory.liveBytes(),
  };
}

function wholeElementsOnly(t: TensorRef): never {
  throw new UsageError("dtype", `[js] ${t.dtype} is bit-packed; strided copies need whole elements`);
}
