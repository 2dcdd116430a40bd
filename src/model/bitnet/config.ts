/**
 * BitNet hyperparameters, read from GGUF metadata (`{arch}.*` keys) and checked before anything is
 * allocated from them: hostile metadata cannot make barbell reserve a terabyte of KV cache.
 */
import { FormatError } from "../../core/errors.js";
import type { GgufMetadata } from "../../formats/gguf/index.js";

/** Architecture strings of BitNet GGUF files (BITNET.md §1.6). */
export const BITNET_ARCHS = ["bitnet", "bitnet-25", "bitnet-b1.58"] as const;
export type BitnetArch = (typeof BITNET_ARCHS)[number];

/** Upper bounds on hyperparameters; each guards an allocation sized by them. */
export const CONFIG_LIMITS = {
  /** Model width; 2B-4T uses 2560, 100B-class models ~8k. */
  hidden: 65_536,
  ffn: 262_144,
  layers: 1_024,
  heads: 1_024,
  /** Vocabulary rows of the embedding/head. */
  vocab: 1 << 22,
  /** Context positions a KV cache may be sized for. */
  context: 1 << 20,
} as const;

export interface BitnetConfig {
  readonly arch: BitnetArch;
  /** `general.name`, when present. */
  readonly name: string | undefined;
  readonly vocabSize: number;
  /** Positions the model was trained for (`context_length`). */
  readonly contextLength: number;
  readonly hidden: number;
  readonly layers: number;
  readonly ffn: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly rmsEps: number;
  readonly ropeTheta: number;
  /** FFN gate activation: SiLU for `bitnet` (1bitLLM), squared ReLU for `bitnet-25` / `bitnet-b1.58`. */
  readonly activation: "silu" | "relu2";
}

export function isBitnetArch(arch: string): arch is BitnetArch {
  return (BITNET_ARCHS as readonly string[]).includes(arch);
}

/** Reads and validates the hyperparameters of a BitNet GGUF. */
export function configFromGguf(meta: GgufMetadata, vocabRows?: number): BitnetConfig {
  const arch = meta.getString("general.architecture");
  if (arch === undefined) {
    throw new FormatError("bad-value", "[bitnet] general.architecture is missing");
  }
  if (!isBitnetArch(arch)) {
    throw new FormatError(
      "bad-value",
      `[bitnet] architecture "${arch}" is not a BitNet one (${BITNET_ARCHS.join(", ")}); barbell cannot run it`,
    );
  }
  const int = (key: string, max: number, fallback?: number): number => {
    const v = meta.getNumber(`${arch}.${key}`) ?? fallback;
    if (v === undefined) {
      throw new FormatError("bad-value", `[bitnet] ${arch}.${key} is missing`);
    }
    if (!Number.isSafeInteger(v) || v < 1 || v > max) {
      throw new FormatError("bad-value", `[bitnet] ${arch}.${key} = ${v} is not an integer in 1..${max}`);
    }
    return v;
  };
  const positive = (key: string, fallback: number): number => {
    const v = meta.getNumber(`${arch}.${key}`) ?? fallback;
    if (!Number.isFinite(v) || v <= 0) {
      throw new FormatError("bad-value", `[bitnet] ${arch}.${key} = ${v} must be a positive number`);
    }
    return v;
  };
  const hidden = int("embedding_length", CONFIG_LIMITS.hidden);
  const heads = int("attention.head_count", CONFIG_LIMITS.heads);
  const kvHeads = int("attention.head_count_kv", CONFIG_LIMITS.heads, heads);
  if (hidden % heads !== 0 || heads % kvHeads !== 0) {
    throw new FormatError("bad-value", `[bitnet] ${hidden} wide with ${heads} heads / ${kvHeads} KV heads does not divide`);
  }
  const headDim = hidden / heads;
  const rot = meta.getNumber(`${arch}.rope.dimension_count`);
  if (rot !== undefined && rot !== headDim) {
    throw new FormatError("bad-value", `[bitnet] rope.dimension_count = ${rot}, but barbell rotates whole heads of ${headDim}`);
  }
  if (headDim % 2 !== 0) {
    throw new FormatError("bad-value", `[bitnet] head width ${headDim} is odd; rotary embedding needs pairs`);
  }
  return {
    arch,
    name: meta.getString("general.name"),
    vocabSize: int("vocab_size", CONFIG_LIMITS.vocab, vocabRows),
    contextLength: int("context_length", CONFIG_LIMITS.context),
    hidden,
    layers: int("block_count", CONFIG_LIMITS.layers),
    ffn: int("feed_forward_length", CONFIG_LIMITS.ffn),
    heads,
    kvHeads,
    headDim,
    rmsEps: positive("attention.layer_norm_rms_epsilon", 1e-5),
    ropeTheta: positive("rope.freq_base", arch === "bitnet" ? 10_000 : 500_000),
    activation: arch === "bitnet" ? "silu" : "relu2",
  };
}
