/**
 * `barbell train --init MODEL`: the starting point of a fine-tuning run, from a model barbell loads — a training
 * checkpoint (its latent weights, exactly), a Hugging Face folder (bf16 master weights when it has them, else the
 * packed trits times γ) or a GGUF (float projections as stored, ternary ones as trits times γ).
 *
 * What a ternary start loses: the latent weights behind the trits. Every weight starts at −s, 0 or +s, with s chosen
 * so that the absmean requantization gives back the file's trits and γ (`ternaryLatent`; the model starts where it
 * was, to float rounding of γ), but no weight sits near a rounding boundary any more: a trit flips only once the
 * updates have moved its latent value by about half of s, so adaptation starts slower than from the master
 * weights the file was exported from. Adam's
 * moments start at zero in every case (a checkpoint's moments belong to its own schedule).
 */
import { FormatError } from "../core/errors.js";
import type { BitnetConfig } from "../model/bitnet/config.js";
import type { WeightSource } from "../model/bitnet/weights.js";
import { QUANT_TRAITS } from "../quant/table.js";
import type { QuantName } from "../quant/types.js";
import { paramLayout, type Param, type QatConfig } from "./model.js";

/** Where a fine-tuning run's weights came from, for run.json and the card. */
export type InitKind = "gguf" | "hf-folder" | "checkpoint";

/**
 * The training config of a loaded model. FormatError `bad-value` for a model the trainer cannot represent (head
 * width other than hidden/heads).
 */
export function qatConfigOf(c: BitnetConfig, tied: boolean): QatConfig {
  if (c.headDim * c.heads !== c.hidden) {
    throw new FormatError("bad-value", `[train] the model's heads are ${c.headDim} wide × ${c.heads}, not hidden ${c.hidden}; the trainer needs hidden = heads × head width`);
  }
  return {
    vocabSize: c.vocabSize,
    hidden: c.hidden,
    layers: c.layers,
    heads: c.heads,
    kvHeads: c.kvHeads,
    ffn: c.ffn,
    rmsEps: c.rmsEps,
    ropeTheta: c.ropeTheta,
    activation: c.activation,
    tied,
  };
}

/**
 * The latent form of a projection whose values are γ·trits (every ternary file): the trits times γ·n/nnz, so that
 * the trainer's absmean ternarization (scale = mean |W|) gives back γ and the same trits, and step 0 computes
 * what the file computes. Other floats (master weights) are returned as they are.
 */
export function ternaryLatent(w: Float32Array): Float32Array {
  let a = 0;
  let nnz = 0;
  for (const v of w) {
    if (v !== 0) {
      const m = Math.abs(v);
      if (a === 0) {
        a = m;
      } else if (m !== a) {
        return w; // more than three values: master weights
      }
      nnz++;
    }
  }
  if (nnz === 0) {
    return w;
  }
  const scaled = Math.fround((a * w.length) / nnz);
  return w.map((v) => (v > 0 ? scaled : v < 0 ? -scaled : 0));
}

/** Latent weights read from a model's tensors, in `paramLayout` order (see the module comment for each source). */
export async function paramsFromSource(config: QatConfig, source: WeightSource): Promise<Param[]> {
  const params: Param[] = [];
  for (const { name, dims, shape } of paramLayout(config)) {
    const [rows = 1, cols = 1] = shape;
    let data: Float32Array;
    if (shape.length === 1) {
      data = await source.floats(name, rows);
    } else if (name === "token_embd.weight" || name === "output.weight") {
      const dense = await source.dense(name, rows, cols);
      data = QUANT_TRAITS[dense.dtype as QuantName].decode(dense.bytes, rows, cols);
    } else {
      data = ternaryLatent(await source.projectionFloats(name, rows, cols));
    }
    if (data.length !== rows * cols) {
      throw new FormatError("bad-dims", `[train] ${name} holds ${data.length} values, the model needs ${rows * cols}`);
    }
    if (!data.every(Number.isFinite)) {
      throw new FormatError("bad-value", `[train] ${name} holds a value that is not finite`);
    }
    // A copy the run owns: sources may return views of file bytes, and training writes these arrays.
    params.push({ name, dims, shape, matrix: shape.length === 2, data: Float32Array.from(data) });
  }
  return params;
}
