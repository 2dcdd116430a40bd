/** A {@link WeightSource} and a {@link BitnetConfig} for a Hugging Face BitNet folder. */
import type { DenseDType } from "../../backends/backend.js";
import { FormatError } from "../../core/errors.js";
import { packTernary } from "../../quant/layouts.js";
import { QUANT_TRAITS } from "../../quant/table.js";
import type { TernaryPacked } from "../../quant/repack.js";
import type { BitnetConfig } from "./config.js";
import type { HfBitnetFolder, HfBitnetTensor } from "./hf.js";
import type { WeightSource } from "./weights.js";

/** Storage dtypes of float tensors that barbell keeps as they are for the embedding and head. */
const KEEP_AS_IS = { BF16: "bf16", F16: "f16", F32: "f32" } as const satisfies Record<string, DenseDType>;

/**
 * The BitnetConfig a Hugging Face config describes (2B-4T → `bitnet-b1.58`, 1bitLLM → `bitnet`). Its sizes were
 * checked against CONFIG_LIMITS (HF_CONFIG_LIMITS) and its head layout (even head width) by parseHfBitnetConfig.
 */
export function configFromHf(folder: HfBitnetFolder): BitnetConfig {
  const h = folder.config;
  const headDim = h.hiddenSize / h.numAttentionHeads;
  return {
    arch: h.hiddenAct === "relu2" ? "bitnet-b1.58" : "bitnet",
    name: undefined,
    vocabSize: h.vocabSize,
    contextLength: h.maxPositionEmbeddings,
    hidden: h.hiddenSize,
    layers: h.numHiddenLayers,
    ffn: h.intermediateSize,
    heads: h.numAttentionHeads,
    kvHeads: h.numKeyValueHeads,
    headDim,
    rmsEps: h.rmsNormEps,
    ropeTheta: h.ropeTheta,
    activation: h.hiddenAct,
  };
}

export function hfWeightSource(folder: HfBitnetFolder): WeightSource {
  const get = (name: string): HfBitnetTensor => {
    const t = folder.tensors.get(name);
    if (t === undefined) {
      throw new FormatError("bad-value", `[hf-bitnet] tensor ${name} is missing`);
    }
    return t;
  };
  const check = (t: HfBitnetTensor, shape: readonly number[]): void => {
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new FormatError("bad-dims", `[hf-bitnet] ${t.hfName} has shape [${t.shape.join(", ")}], the config needs [${shape.join(", ")}]`);
    }
  };
  const bytesOf = (name: string): number => {
    const t = folder.tensors.get(name);
    const info = t === undefined ? undefined : folder.store.tensor(t.hfName);
    return info?.byteSize ?? 0;
  };
  return {
    has: (name) => folder.tensors.has(name),
    bytesOf,
    async dense(name, rows, cols) {
      const t = get(name);
      check(t, [rows, cols]);
      const dtype = (KEEP_AS_IS as Record<string, DenseDType | undefined>)[t.dtype];
      if (dtype === undefined) {
        throw new FormatError("bad-tensor-type", `[hf-bitnet] ${t.hfName} is ${t.dtype}; expected BF16, F16 or F32`);
      }
      return { dtype, bytes: await folder.store.tensorData(t.hfName) };
    },
    async floats(name, count) {
      const t = get(name);
      check(t, [count]);
      if (t.kind !== "float") {
        throw new FormatError("bad-tensor-type", `[hf-bitnet] ${t.hfName} is not a float tensor`);
      }
      return t.load();
    },
    async ternary(name, out, inp): Promise<TernaryPacked> {
      const t = get(name);
      check(t, [out, inp]);
      if (t.kind !== "ternary") {
        throw new FormatError("bad-tensor-type", `[hf-bitnet] ${t.hfName} is not a projection`);
      }
      const { trits, scale } = await t.load();
      return { codes: packTernary(trits, out, inp), scale };
    },
    // The float form of a projection: master weights as stored (a 2B-4T-bf16-style folder), else γ·trits. Loading
    // never runs it (HF projections are ternary after loading); `barbell train --init` starts from it.
    async projectionFloats(name, out, inp) {
      const t = get(name);
      check(t, [out, inp]);
      if (t.kind !== "ternary") {
        throw new FormatError("bad-tensor-type", `[hf-bitnet] ${t.hfName} is not a projection`);
      }
      const stored = (KEEP_AS_IS as Record<string, DenseDType | undefined>)[t.dtype];
      if (t.storage === "master" && stored !== undefined) {
        return QUANT_TRAITS[stored as "f32" | "f16" | "bf16"].decode(await folder.store.tensorData(t.hfName), out, inp);
      }
      const { trits, scale } = await t.load();
      return Float32Array.from(trits, (v) => v * scale);
    },
  };
}
