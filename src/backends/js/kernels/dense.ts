/**
 * Reference kernels over dense weights kept in a block format (F16, BF16, Q8_0, Q6_K, F32):
 * the output head and the token embedding. Rows are decoded one at a time with the format's
 * reference decoder, so the weights never exist as a whole float32 copy.
 */
import { ShapeError } from "../../../core/errors.js";
import { QUANT_TRAITS } from "../../../quant/table.js";
import type { QuantName } from "../../../quant/types.js";

/** Decodes row `r` of a rows×cols block-format tensor into `out` (length cols). */
export function decodeRow(format: QuantName, bytes: Uint8Array, r: number, cols: number, out: Float32Array): void {
  const traits = QUANT_TRAITS[format];
  const rowBytes = traits.byteSize(1, cols);
  if (rowBytes === undefined) {
    throw new ShapeError("size", `[dense] ${format} cannot hold rows of ${cols}`);
  }
  out.set(traits.decode(bytes.subarray(r * rowBytes, (r + 1) * rowBytes), 1, cols));
}

/**
 * out[M,N] = x[M,K] · decode(w)[N,K]ᵀ. Each product and the running sum are float64 in ascending k,
 * rounded to float32 once per output (the same semantics as matmulF32).
 */
export function matmulDense(
  x: Float32Array,
  format: QuantName,
  w: Uint8Array,
  m: number,
  k: number,
  n: number,
  out: Float32Array,
): void {
  const row = new Float32Array(k);
  for (let j = 0; j < n; j++) {
    decodeRow(format, w, j, k, row);
    for (let i = 0; i < m; i++) {
      let sum = 0;
      for (let c = 0; c < k; c++) {
        sum += (x[i * k + c] ?? 0) * (row[c] ?? 0);
      }
      out[i * n + j] = sum;
    }
  }
}

/** out[S,E] = decode(table)[ids[s], :]; every id must be in [0, vocab). */
export function embedding(
  ids: Int32Array,
  seq: number,
  format: QuantName,
  table: Uint8Array,
  vocab: number,
  embed: number,
  out: Float32Array,
): void {
  const row = new Float32Array(embed);
  for (let s = 0; s < seq; s++) {
    const id = ids[s] ?? -1;
    if (!Number.isInteger(id) || id < 0 || id >= vocab) {
      throw new ShapeError("bounds", `[embedding] token id ${id} at position ${s} is outside the vocabulary of ${vocab}`);
    }
    decodeRow(format, table, id, embed, row);
    out.set(row, s * embed);
  }
}
