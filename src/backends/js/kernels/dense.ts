/**
 * Reference kernels over dense weights kept in a block format (F16, BF16, Q8_0, Q6_K, F32):
 * the output head and the token embedding. Rows are decoded one at a time with the format's
 * reference decoder, so the weights never exist as a whole float32 copy.
 */
import { ShapeError } from "../../../core/errors.js";
import { QUANT_TRAITS } from "../../../quant/table.js";
import type { QuantName } from "../../../quant/types.js";
import { halfToF32 } from "../../../quant/half.js";
import { quantizeActivations } from "../../../quant/values.js";

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

/** Elements per block of the integer head's activations (and of Q8_0 weights). */
export const Q8_BLOCK = 32;

/**
 * The integer output head: out[M,N] = x[M,K] · w[N,K]ᵀ with w in Q8_0 (blocks of 32: an f16 scale d and
 * 32 int8 q) and x quantized per 32-element block, as llama.cpp computes a Q8_0 matmul, so that every
 * product is an integer one.
 *
 * Activations: each block of 32 is quantized like one row of BitNet's per-token quantizer
 * (`quantizeActivations`: s = fround(127 / fround(max(absmax, 1e-5))), q = clamp(roundHalfEven(fround(x·s)))),
 * and inv = fround(1 / s).
 * Then, for each output, with idot the exact int32 Σ w·q of block b and d its weight scale (exact in f32):
 *   acc = 0;  acc = fround(acc + fround(fround(idot · inv) · d))   for b = 0, 1, … in order.
 * Every backend computes exactly this, so results are bit-identical (the native kernel vectorizes over
 * 16 weight rows at a time, never across blocks).
 *
 * @throws ValueError code "non-finite" for a NaN or infinite x.
 */
export function matmulQ8I8(x: Float32Array, w: Uint8Array, m: number, k: number, n: number, out: Float32Array): void {
  if (k % Q8_BLOCK !== 0) {
    throw new ShapeError("size", `[matmulQ8I8] k = ${k} is not a multiple of ${Q8_BLOCK}`);
  }
  const blocks = k / Q8_BLOCK;
  const rowBytes = blocks * 34;
  if (x.length < m * k || w.length < n * rowBytes || out.length < m * n) {
    throw new ShapeError("size", `[matmulQ8I8] operands too small for [${m}, ${k}] · [${n}, ${k}]ᵀ`);
  }
  const quantized = quantizeActivations(x.subarray(0, m * k), m * blocks, Q8_BLOCK);
  if (!quantized.ok) {
    throw quantized.error;
  }
  const { values: q, scales } = quantized.value;
  const inv = scales.map((s) => Math.fround(1 / s));
  const view = new DataView(w.buffer, w.byteOffset, w.byteLength);
  const d = new Float32Array(blocks);
  for (let j = 0; j < n; j++) {
    const row = j * rowBytes;
    for (let b = 0; b < blocks; b++) {
      d[b] = halfToF32(view.getUint16(row + b * 34, true));
    }
    for (let i = 0; i < m; i++) {
      let acc = 0;
      for (let b = 0; b < blocks; b++) {
        const qw = row + b * 34 + 2;
        const qx = (i * blocks + b) * Q8_BLOCK;
        let idot = 0;
        for (let c = 0; c < Q8_BLOCK; c++) {
          idot += ((w[qw + c] ?? 0) << 24 >> 24) * (q[qx + c] ?? 0);
        }
        acc = Math.fround(acc + Math.fround(Math.fround(idot * (inv[i * blocks + b] ?? 0)) * (d[b] ?? 0)));
      }
      out[i * n + j] = acc;
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
