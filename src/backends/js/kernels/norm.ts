/**
 * Reference RMSNorm (HF LlamaRMSNorm, ggml `rms_norm` followed by a multiply by the weight).
 */
import { checkLength, checkSize } from "./check.js";

/**
 * Row-wise RMS normalisation: out[r, c] = x[r, c] / sqrt(mean_c(x[r, c]²) + eps) · weight[c].
 * x: [rows, cols] f32; weight: [cols] f32, or undefined for no weight (all ones); out: [rows, cols] f32.
 * `out` may be the same array as `x` (in-place is allowed: a row is read in full before it is written).
 *
 * Float semantics: the sum of squares is float64, summed in ascending c; denom = sqrt(sum / cols + eps) in
 * float64; each output is (x / denom) · weight in float64, rounded to f32 once. `eps` is used as given
 * (a float64; BitNet uses 1e-5). Other backends match within a few ulp, not bit for bit.
 */
export function rmsNorm(
  x: Float32Array,
  weight: Float32Array | undefined,
  rows: number,
  cols: number,
  eps: number,
  out: Float32Array,
): void {
  const op = "rmsNorm";
  checkSize(op, "rows", rows);
  checkSize(op, "cols", cols);
  checkLength(op, "x", x, rows * cols);
  checkLength(op, "out", out, rows * cols);
  if (weight !== undefined) {
    checkLength(op, "weight", weight, cols);
  }
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    let sumSquares = 0;
    for (let c = 0; c < cols; c++) {
      const v = x[base + c] ?? 0;
      sumSquares += v * v;
    }
    const denom = Math.sqrt(sumSquares / cols + eps);
    for (let c = 0; c < cols; c++) {
      const scale = weight === undefined ? 1 : (weight[c] ?? 0);
      out[base + c] = Math.fround(((x[base + c] ?? 0) / denom) * scale);
    }
  }
}
