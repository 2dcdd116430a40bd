/**
 * Q4_K (ggml type 12): 256 elements per 144-byte block, 4.5 bits per weight.
 *
 *   offset 0        2           4            16        144
 *          | d fp16 | dmin fp16 | scales[12] | qs[128] |
 *   value = (d · sc) · q − (dmin · m), q the 4-bit code, sc and m the sub-block's 6-bit scale and min
 *   (layout and packing: k-affine.ts).
 */
import type { QuantTraits } from "../types.js";
import { affineKFormat } from "./k-affine.js";

/**
 * Q4_K codec. Decode matches ggml's `dequantize_row_q4_K` bit for bit. Encode is barbell's own quantizer
 * (per-32 min and max, 6-bit scales and mins rounded up so nothing clips); coarser than ggml's iterative
 * `quantize_row_q4_K_ref`, good enough for tests and conversion.
 */
export const Q4_K: QuantTraits = affineKFormat({ name: "q4_k", ggmlType: 12, bits: 4 });
