/**
 * Q5_K (ggml type 13): 256 elements per 176-byte block, 5.5 bits per weight.
 *
 *   offset 0        2           4            16       48        176
 *          | d fp16 | dmin fp16 | scales[12] | qh[32] | qs[128] |
 *   value = (d · sc) · q − (dmin · m), q the 5-bit code (4 bits in qs, the fifth in qh), sc and m the
 *   sub-block's 6-bit scale and min (layout and packing: k-affine.ts).
 */
import type { QuantTraits } from "../types.js";
import { affineKFormat } from "./k-affine.js";

/**
 * Q5_K codec. Decode matches ggml's `dequantize_row_q5_K` bit for bit. Encode is barbell's own quantizer
 * (per-32 min and max, 6-bit scales and mins rounded up so nothing clips); coarser than ggml's iterative
 * `quantize_row_q5_K_ref`, good enough for tests and conversion.
 */
export const Q5_K: QuantTraits = affineKFormat({ name: "q5_k", ggmlType: 13, bits: 5 });
