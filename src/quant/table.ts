/**
 * The table of weight storage formats, by name and by GGUF type id.
 */
import { BF16 } from "./formats/bf16.js";
import { F16 } from "./formats/f16.js";
import { F32 } from "./formats/f32.js";
import { HF_PACKED } from "./formats/hf-packed.js";
import { I2_S } from "./formats/i2-s.js";
import { Q1_0 } from "./formats/q1-0.js";
import { Q4_K } from "./formats/q4-k.js";
import { Q5_K } from "./formats/q5-k.js";
import { Q6_K } from "./formats/q6-k.js";
import { Q8_0 } from "./formats/q8-0.js";
import { TQ1_0 } from "./formats/tq1-0.js";
import { TQ2_0 } from "./formats/tq2-0.js";
import type { QuantName, QuantTraits } from "./types.js";

/** Every block format barbell knows, keyed by its name. */
export const QUANT_TRAITS = {
  f32: F32,
  f16: F16,
  bf16: BF16,
  q8_0: Q8_0,
  q4_k: Q4_K,
  q5_k: Q5_K,
  q6_k: Q6_K,
  q1_0: Q1_0,
  tq1_0: TQ1_0,
  tq2_0: TQ2_0,
  i2_s: I2_S,
  hf_packed: HF_PACKED,
} as const satisfies Record<QuantName, QuantTraits>;

const BY_GGML_TYPE: ReadonlyMap<number, QuantTraits> = new Map(
  Object.values(QUANT_TRAITS).flatMap((t): [number, QuantTraits][] =>
    t.ggmlType === undefined ? [] : [[t.ggmlType, t]],
  ),
);

/**
 * The format of a GGUF tensor type id, or undefined for ids barbell cannot decode. Id 36 is
 * bitnet.cpp's I2_S (mainline ggml has no type 36); 39 (MXFP4 / TL2) is not supported.
 */
export function quantByGgmlType(id: number): QuantTraits | undefined {
  return BY_GGML_TYPE.get(id);
}
