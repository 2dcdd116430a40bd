/**
 * Checked constructors for binary and ternary tensors, and int8 activation quantization.
 *
 * `Tensor<"ternary", D>` and `Tensor<"binary", D>` can only come from here (or from a model loader
 * that goes through here), so a kernel that takes them is never handed unchecked floats.
 */
import { ShapeError, ValueError } from "../../core/errors.js";
import { storageBytes } from "../../backends/storage.js";
import { err, ok, type Result } from "../../core/result.js";
import { packBinary, packTernary } from "../../quant/layouts.js";
import { loadCodecs } from "../../quant/load-codecs.js";
import { absmeanTernarize, checkBinary, checkTernary, signBinarize } from "../../quant/values.js";
import { defaultBackend } from "../context.js";
import type { Dims, Init, ShapeOf } from "../dims.js";
import { INTERNAL, Tensor, allocTensor, checkShape, dimsArg, tensorFromBytes, type UniqueDims, type WeightOptions } from "../tensor.js";
import { asMatrix, commonBackend, requireDtype } from "./check.js";

export interface PackedOptions extends WeightOptions {
  /** The float each ±1 stands for (γ or β); default 1. */
  readonly scale?: number;
}

function lastDim(shape: readonly number[]): number {
  return shape.length === 0 ? 1 : (shape[shape.length - 1] ?? 1);
}

function checkScale(op: string, scale: number): void {
  if (!Number.isFinite(scale)) {
    throw new ShapeError("size", `[${op}] scale ${scale} is not finite`);
  }
}

function packedTensor<DT extends "ternary" | "binary", D extends Dims>(
  dtype: DT,
  values: Int8Array,
  dims: D,
  shape: ShapeOf<D>,
  options: PackedOptions,
): Tensor<DT, D> {
  const cols = lastDim(shape as readonly number[]);
  const rows = values.length / cols;
  const bytes =
    dtype === "ternary" ? packTernary(values, rows, cols) : new Uint8Array(packBinary(values, rows, cols).buffer);
  const scale = Math.fround(options.scale ?? 1);
  return tensorFromBytes(options.backend ?? defaultBackend(), dtype, dims, shape, bytes, scale);
}

function checkCount(op: string, values: ArrayLike<number>, dims: Dims, shape: readonly number[]): void {
  const count = checkShape(op, dims, shape);
  if (values.length !== count) {
    throw new ShapeError("size", `[${op}] ${values.length} values for shape [${dims.join(", ")}] of ${count}`);
  }
}

/** Checks that every value is −1, 0 or +1; the error names the first bad index and value. */
export function toTernary<const D extends Dims>(
  values: ArrayLike<number>,
  dims: UniqueDims<D>,
  shape: ShapeOf<D>,
  options: PackedOptions = {},
): Result<Tensor<"ternary", [...D]>, ValueError> {
  const names = dimsArg<[...D]>("toTernary", dims);
  checkCount("toTernary", values, names, shape as readonly number[]);
  checkScale("toTernary", options.scale ?? 1);
  const trits = checkTernary(values);
  return trits.ok ? ok(packedTensor("ternary", trits.value, names, shape as ShapeOf<[...D]>, options)) : trits;
}

/** Checks that every value is −1 or +1; the error names the first bad index and value. */
export function toBinary<const D extends Dims>(
  values: ArrayLike<number>,
  dims: UniqueDims<D>,
  shape: ShapeOf<D>,
  options: PackedOptions = {},
): Result<Tensor<"binary", [...D]>, ValueError> {
  const names = dimsArg<[...D]>("toBinary", dims);
  checkCount("toBinary", values, names, shape as readonly number[]);
  checkScale("toBinary", options.scale ?? 1);
  const signs = checkBinary(values);
  return signs.ok ? ok(packedTensor("binary", signs.value, names, shape as ShapeOf<[...D]>, options)) : signs;
}

/**
 * A ternary tensor from codes already in the t2 compute layout (src/quant/layouts.ts) and a scale,
 * as a model loader produces them with `repackTernary`. Checks the byte count and that no code is 3.
 */
export function ternaryFromCodes<const D extends Dims>(
  codes: Uint8Array,
  dims: UniqueDims<D>,
  shape: ShapeOf<D>,
  options: PackedOptions = {},
): Result<Tensor<"ternary", [...D]>, ValueError> {
  const names = dimsArg<[...D]>("ternaryFromCodes", dims);
  checkShape("ternaryFromCodes", names, shape as readonly number[]);
  checkScale("ternaryFromCodes", options.scale ?? 1);
  const expected = storageBytes("ternary", shape as readonly number[]);
  if (codes.length !== expected) {
    throw new ShapeError("size", `[ternaryFromCodes] [${names.join(", ")}] needs ${expected} bytes, got ${codes.length}`);
  }
  const bad = loadCodecs()?.firstCode3?.(codes) ?? firstCode3(codes);
  if (bad >= 0) {
    return err(new ValueError("not-ternary", `[ternaryFromCodes] byte ${bad} holds the invalid code 3`, bad, codes[bad]));
  }
  const scale = Math.fround(options.scale ?? 1);
  const backend = options.backend ?? defaultBackend();
  if (options.adopt === true && backend.adopt) {
    return ok(new Tensor(INTERNAL, backend, backend.adopt(codes), "ternary", names, shape as ShapeOf<[...D]>, scale));
  }
  return ok(tensorFromBytes(backend, "ternary", names, shape as ShapeOf<[...D]>, codes, scale));
}

/**
 * A ternary tensor whose t2 codes are made on first use: `materialize` runs when a kernel first reads the
 * tensor, and its codes get `ternaryFromCodes`' checks then (byte count, no code 3), a failure thrown as
 * ValueError "not-ternary" from that read (the materializer's own errors as they are). For loaders that map
 * a file and convert each projection when it is first used. Undefined when the backend cannot hold lazily
 * made bytes (`Backend.adoptLazy` absent): the caller converts now and uses `ternaryFromCodes`.
 */
export function ternaryFromLazyCodes<const D extends Dims>(
  materialize: () => Uint8Array,
  dims: UniqueDims<D>,
  shape: ShapeOf<D>,
  options: PackedOptions = {},
): Tensor<"ternary", [...D]> | undefined {
  const names = dimsArg<[...D]>("ternaryFromLazyCodes", dims);
  checkShape("ternaryFromLazyCodes", names, shape as readonly number[]);
  checkScale("ternaryFromLazyCodes", options.scale ?? 1);
  const backend = options.backend ?? defaultBackend();
  if (backend.adoptLazy === undefined) {
    return undefined;
  }
  const expected = storageBytes("ternary", shape as readonly number[]);
  const checked = (): Uint8Array => {
    const codes = materialize();
    if (codes.length !== expected) {
      throw new ShapeError("size", `[ternaryFromLazyCodes] [${names.join(", ")}] needs ${expected} bytes, got ${codes.length}`);
    }
    const bad = loadCodecs()?.firstCode3?.(codes) ?? firstCode3(codes);
    if (bad >= 0) {
      throw new ValueError("not-ternary", `[ternaryFromLazyCodes] byte ${bad} holds the invalid code 3`, bad, codes[bad]);
    }
    return codes;
  };
  const buffer = backend.adoptLazy(expected, checked);
  return new Tensor(INTERNAL, backend, buffer, "ternary", names, shape as ShapeOf<[...D]>, Math.fround(options.scale ?? 1));
}

/** Index of the first byte holding the 2-bit code 3, or −1; scans 32-bit words where aligned (load-time hot loop). */
function firstCode3(codes: Uint8Array): number {
  let i = 0;
  if (codes.byteOffset % 4 === 0) {
    const words = new Uint32Array(codes.buffer, codes.byteOffset, codes.length >> 2);
    for (let w = 0; w < words.length; w++) {
      const v = words[w] ?? 0;
      if ((v & (v >>> 1) & 0x55555555) !== 0) {
        i = w * 4;
        break;
      }
      i = (w + 1) * 4;
    }
  }
  for (; i < codes.length; i++) {
    const b = codes[i] ?? 0;
    if ((b & (b >> 1) & 0x55) !== 0) {
      return i;
    }
  }
  return -1;
}

/** BitNet b1.58 absmean ternarization with one scale per tensor (γ = mean|W|). Fails on NaN/∞. */
export function ternarize<D extends Dims>(t: Tensor<"f32", D>): Result<Tensor<"ternary", D>, ValueError> {
  const backend = commonBackend("ternarize", t);
  requireDtype("ternarize", "input", t, "f32");
  const q = absmeanTernarize(t.toFloat32());
  if (!q.ok) {
    return err(q.error);
  }
  return ok(packedTensor("ternary", q.value.values, t.dims, t.shape, { backend, scale: q.value.scale }));
}

/** Sign binarization (BitNet 2023): signs of W − mean(W), scale β = mean|W|. Fails on NaN/∞. */
export function binarize<D extends Dims>(t: Tensor<"f32", D>): Result<Tensor<"binary", D>, ValueError> {
  const backend = commonBackend("binarize", t);
  requireDtype("binarize", "input", t, "f32");
  const q = signBinarize(t.toFloat32());
  if (!q.ok) {
    return err(q.error);
  }
  return ok(packedTensor("binary", q.value.values, t.dims, t.shape, { backend, scale: q.value.scale }));
}

/** int8 activations with one scale per row of the last dim. Dispose both tensors (or the pair). */
export interface QuantizedActivations<D extends Dims> extends Disposable {
  readonly values: Tensor<"i8", D>;
  /** s_x = 127 / absmax per row; a value x ≈ q / s_x. */
  readonly scales: Tensor<"f32", Init<D>>;
  dispose(): void;
}

/**
 * Per-token absmax int8 quantization with round-half-to-even (as PyTorch and ggml round):
 * s = 127 / max|x| per row of the last dimension, q = clamp(round(x·s), −128, 127).
 */
export function quantizeActivations<D extends Dims>(x: Tensor<"f32", D>): QuantizedActivations<D> {
  const backend = commonBackend("quantizeActivations", x);
  requireDtype("quantizeActivations", "x", x, "f32");
  if (x.rank === 0) {
    throw new ShapeError("rank", "[quantizeActivations] x needs at least one dimension");
  }
  const matrix = asMatrix(x);
  const values = allocTensor(backend, "i8", x.dims, x.shape);
  let scales: Tensor<"f32", Init<D>>;
  try {
    scales = allocTensor(backend, "f32", dimsArg<Init<D>>("quantizeActivations", x.dims.slice(0, -1)), x.shape.slice(0, -1) as ShapeOf<Init<D>>);
  } catch (e) {
    values.dispose();
    throw e;
  }
  const dispose = (): void => {
    values.dispose();
    scales.dispose();
  };
  try {
    backend.kernels.quantizeActivations(matrix, { ...values.ref(), shape: matrix.shape }, {
      ...scales.ref(),
      shape: [matrix.shape[0] ?? 1],
    });
  } catch (e) {
    dispose();
    throw e;
  }
  return { values, scales, dispose, [Symbol.dispose]: dispose };
}

