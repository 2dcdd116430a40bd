/**
 * Reference row-wise softmax.
 */
import { checkLength, checkSize } from "./check.js";

/**
 * out[r, c] = exp(x[r, c] − max_r) / Σ_c' exp(x[r, c'] − max_r), per row.
 * x, out: [rows, cols] f32. `out` may be the same array as `x` (in-place is allowed).
 *
 * Masking: −Infinity entries get probability exactly 0. A row whose entries are all −Infinity (fully
 * masked) outputs all zeros, not NaN. A NaN anywhere in a row, or a +Infinity, makes the whole row NaN.
 *
 * Float semantics: max, exp(x − max), the sum (ascending c) and each quotient are float64; each output is
 * rounded to f32 once. exp is evaluated twice per element (for the sum, then for the output) so that no
 * scratch memory is needed; both evaluations give the same value.
 */
export function softmax(x: Float32Array, rows: number, cols: number, out: Float32Array): void {
  const op = "softmax";
  checkSize(op, "rows", rows);
  checkSize(op, "cols", cols);
  checkLength(op, "x", x, rows * cols);
  checkLength(op, "out", out, rows * cols);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    let max = -Infinity;
    for (let c = 0; c < cols; c++) {
      const v = x[base + c] ?? 0;
      if (v > max) {
        max = v;
      }
    }
    if (max === -Infinity) {
      // Fully masked (or only NaN, which the sum below would have turned into NaN anyway).
      const isNaNRow = hasNaN(x, base, cols);
      out.fill(isNaNRow ? Number.NaN : 0, base, base + cols);
      continue;
    }
    let sum = 0;
    for (let c = 0; c < cols; c++) {
      sum += Math.exp((x[base + c] ?? 0) - max);
    }
    for (let c = 0; c < cols; c++) {
      out[base + c] = Math.fround(Math.exp((x[base + c] ?? 0) - max) / sum);
    }
  }
}

function hasNaN(x: Float32Array, base: number, cols: number): boolean {
  for (let c = 0; c < cols; c++) {
    if (Number.isNaN(x[base + c])) {
      return true;
    }
  }
  return false;
}
