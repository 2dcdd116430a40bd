/**
 * Value-level quantization: checks and quantizers for binary, ternary and int8 values.
 * The arithmetic is float32 at every step (Math.fround) so other backends can match it bit for bit.
 */
import { ValueError } from "../core/errors.js";
import { err, ok, type Result } from "../core/result.js";

/** Smallest absmax/absmean used as a divisor (as PyTorch BitNet code and bitnet.cpp clamp). */
export const QUANT_EPS = 1e-5;

/** Rounds to the nearest integer, ties to even (PyTorch `round`, ggml `nearest_int`). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  // Math.round rounds ties toward +∞; pull a tie that landed on an odd integer back down.
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function describe(v: number): string {
  return Object.is(v, -0) ? "-0" : String(v);
}

/** Checks every value is −1 or +1 and returns them as int8 signs. */
export function checkBinary(values: ArrayLike<number>): Result<Int8Array, ValueError> {
  const out = new Int8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i] ?? Number.NaN;
    if (v !== 1 && v !== -1) {
      return err(new ValueError("not-binary", `[toBinary] index ${i} holds ${describe(v)}, not ±1`, i, v));
    }
    out[i] = v;
  }
  return ok(out);
}

/** Checks every value is −1, 0 or +1 and returns them as int8 trits. */
export function checkTernary(values: ArrayLike<number>): Result<Int8Array, ValueError> {
  const out = new Int8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i] ?? Number.NaN;
    if (v !== 1 && v !== -1 && v !== 0) {
      return err(new ValueError("not-ternary", `[toTernary] index ${i} holds ${describe(v)}, not -1, 0 or +1`, i, v));
    }
    out[i] = v === 0 ? 0 : v; // folds −0 into 0
  }
  return ok(out);
}

function checkFinite(op: string, values: ArrayLike<number>): ValueError | undefined {
  for (let i = 0; i < values.length; i++) {
    const v = values[i] ?? Number.NaN;
    if (!Number.isFinite(v)) {
      return new ValueError("non-finite", `[${op}] index ${i} holds ${v}`, i, v);
    }
  }
  return undefined;
}

export interface Quantized<T> {
  readonly values: T;
  /** Multiply a quantized value by `scale` to get back the float it stands for. */
  readonly scale: number;
}

/**
 * BitNet b1.58 absmean ternarization, one scale for the whole tensor:
 * γ = max(mean|W|, eps), W_t = clamp(round(W/γ), −1, 1).
 */
export function absmeanTernarize(values: ArrayLike<number>): Result<Quantized<Int8Array>, ValueError> {
  const bad = checkFinite("ternarize", values);
  if (bad) {
    return err(bad);
  }
  let sum = 0;
  for (let i = 0; i < values.length; i++) {
    sum += Math.abs(values[i] ?? 0);
  }
  const gamma = Math.fround(Math.max(values.length === 0 ? 0 : sum / values.length, QUANT_EPS));
  const trits = new Int8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const q = roundHalfEven(Math.fround((values[i] ?? 0) / gamma));
    trits[i] = q > 1 ? 1 : q < -1 ? -1 : q === 0 ? 0 : q;
  }
  return ok({ values: trits, scale: gamma });
}

/**
 * Sign binarization (BitNet, 2023): signs of W − mean(W), scale β = mean|W|.
 * Zero maps to +1 so every output is ±1.
 */
export function signBinarize(values: ArrayLike<number>): Result<Quantized<Int8Array>, ValueError> {
  const bad = checkFinite("binarize", values);
  if (bad) {
    return err(bad);
  }
  let sum = 0;
  let absSum = 0;
  for (let i = 0; i < values.length; i++) {
    sum += values[i] ?? 0;
    absSum += Math.abs(values[i] ?? 0);
  }
  const n = Math.max(values.length, 1);
  const mean = sum / n;
  const signs = new Int8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    signs[i] = (values[i] ?? 0) - mean >= 0 ? 1 : -1;
  }
  return ok({ values: signs, scale: Math.fround(absSum / n) });
}

export interface QuantizedActivations {
  /** int8 values, row-major rows×cols. */
  readonly values: Int8Array;
  /** Per row: s_x = 127 / max(|x|, eps). A value x ≈ q / s_x. */
  readonly scales: Float32Array;
  /** Per row: Σ q, used by kernels that multiply unsigned (w+1) codes. */
  readonly sums: Int32Array;
}

/**
 * Per-token absmax int8 quantization (BitNet b1.58 activations):
 * s = fround(127 / max|x|), q = clamp(roundHalfEven(fround(x·s)), −128, 127).
 */
export function quantizeActivations(
  x: ArrayLike<number>,
  rows: number,
  cols: number,
): Result<QuantizedActivations, ValueError> {
  const bad = checkFinite("quantizeActivations", x);
  if (bad) {
    return err(bad);
  }
  const values = new Int8Array(rows * cols);
  const scales = new Float32Array(rows);
  const sums = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let absmax = 0;
    for (let c = 0; c < cols; c++) {
      absmax = Math.max(absmax, Math.abs(x[r * cols + c] ?? 0));
    }
    const s = Math.fround(127 / Math.fround(Math.max(absmax, QUANT_EPS)));
    scales[r] = s;
    let sum = 0;
    for (let c = 0; c < cols; c++) {
      const q = roundHalfEven(Math.fround((x[r * cols + c] ?? 0) * s));
      const clamped = q > 127 ? 127 : q < -128 ? -128 : q;
      values[r * cols + c] = clamped;
      sum += clamped;
    }
    sums[r] = sum;
  }
  return ok({ values, scales, sums });
}
