/**
 * Seeded tiny Hugging Face BitNet folders (config.json + safetensors, single or sharded), for tests. The
 * weights are drawn from the same PRNG in the same order as `makeBitnetFixture`, so one seed and one set of
 * sizes give the same trits in both fixtures, and the same γ up to the rounding of the stored scale (exact with
 * `scaleDtype: "F32"`). No tokenizer files are written.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ShapeError } from "../../core/errors.js";
import {
  SAFETENSORS_INDEX_FILE,
  SAFETENSORS_SINGLE_FILE,
  writeSafetensors,
  type SafetensorsTensorInput,
} from "../../formats/safetensors/index.js";
import { roundToHalf } from "../../quant/half.js";
import { QUANT_TRAITS } from "../../quant/table.js";
import { mulberry32, type BitnetFixtureOptions } from "./fixture.js";
import type { HfLinearClass } from "./hf.js";

/** Float dtypes a fixture can store norms, embeddings and master weights in. */
export type HfFixtureFloatDtype = "BF16" | "F16" | "F32";

/** Options of `writeHfBitnetFixture`: the sizes of `makeBitnetFixture` plus the HF storage choices. */
export interface HfBitnetFixtureOptions extends Omit<BitnetFixtureOptions, "weightType" | "embeddingType"> {
  /**
   * `packed` (default): uint8 [out/4, in] + `weight_scale`, with a quantization_config (2B-4T);
   * `master`: full-precision projections whose absmean ternarization gives the fixture's trits (2B-4T-bf16).
   */
  readonly layout?: "packed" | "master";
  /** Number of weight files; 1 (default) writes `model.safetensors`, more write shards plus an index. */
  readonly shards?: number;
  /** `quantization_config.linear_class` for packed layouts; `bitlinear` stores 1/γ. Default `autobitlinear`. */
  readonly linearClass?: HfLinearClass;
  /** dtype of `weight_scale`. Default `BF16` (as HF-tf's buffer); `F32` keeps γ exact. */
  readonly scaleDtype?: "BF16" | "F32";
  /** dtype of norms, embeddings and master weights. Default `BF16` (torch_dtype bfloat16). */
  readonly floatDtype?: HfFixtureFloatDtype;
}

/** What `writeHfBitnetFixture` wrote, as file names inside the folder. */
export interface HfBitnetFixtureFiles {
  /** `config.json`, the weight file(s) and, when sharded, the index. */
  readonly files: readonly string[];
}

const ENCODE = { BF16: QUANT_TRAITS.bf16, F16: QUANT_TRAITS.f16, F32: QUANT_TRAITS.f32 } as const;

function floatTensor(
  name: string,
  dtype: HfFixtureFloatDtype,
  shape: number[],
  v: Float32Array,
): SafetensorsTensorInput {
  return { name, dtype, shape, data: ENCODE[dtype].encode(v, 1, v.length) };
}

/**
 * Writes a seeded tiny HF BitNet folder into `dir` (which must exist). The same options always give the same
 * files. ShapeError `size` for sizes a packed layout or GQA cannot hold.
 */
export async function writeHfBitnetFixture(
  dir: string,
  opts: HfBitnetFixtureOptions = {},
): Promise<HfBitnetFixtureFiles> {
  const arch = opts.arch ?? "bitnet-b1.58";
  const old = arch === "bitnet"; // 1bitLLM-style: llama model_type, SiLU, inner_attn_ln / ffn_layernorm names
  const hidden = opts.hidden ?? 128;
  const layers = opts.layers ?? 2;
  const heads = opts.heads ?? 4;
  const kvHeads = opts.kvHeads ?? (old ? heads : 2);
  const ffn = opts.ffn ?? 256;
  const vocab = opts.vocab ?? 300;
  const layout = opts.layout ?? "packed";
  const floatDtype = opts.floatDtype ?? "BF16";
  const scaleDtype = opts.scaleDtype ?? "BF16";
  const linearClass = opts.linearClass ?? "autobitlinear";
  const shards = opts.shards ?? 1;
  const tied = opts.tied !== false;
  const sizes = { hidden, layers, heads, kvHeads, ffn, vocab, shards };
  for (const [key, v] of Object.entries(sizes)) {
    if (!Number.isSafeInteger(v) || v < 1) {
      throw new ShapeError("size", `[hf-fixture] ${key} must be a positive integer, got ${v}`);
    }
  }
  const kvDim = (hidden / heads) * kvHeads;
  if (hidden % heads !== 0 || heads % kvHeads !== 0 || [hidden, kvDim, ffn].some((n) => n % 4 !== 0)) {
    throw new ShapeError("size", "[hf-fixture] need hidden % heads = 0, heads % kvHeads = 0, hidden/kv/ffn % 4 = 0");
  }

  const rand = mulberry32(opts.seed ?? 1);
  // Master-weight jitter has its own stream so the main one stays in step with makeBitnetFixture.
  const jitter = mulberry32(((opts.seed ?? 1) ^ 0x9e3779b9) >>> 0);
  const floats = (n: number, scale: number, offset = 0): Float32Array =>
    Float32Array.from({ length: n }, () => offset + (rand() * 2 - 1) * scale);
  const tensors: SafetensorsTensorInput[] = [];
  const float = (name: string, shape: number[], v: Float32Array): void => {
    tensors.push(floatTensor(name, floatDtype, shape, v));
  };
  const ternary = (name: string, out: number, inF: number): void => {
    const gamma = roundToHalf(0.01 + rand() * 0.04);
    const n = out * inF;
    const trits = Float32Array.from({ length: n }, () => Math.floor(rand() * 3) - 1);
    trits[0] = 1; // makeBitnetFixture sets element 0 to +γ
    if (layout === "master") {
      // Nonzeros at ±γ·n/nnz and zeros within ±γ/4 give mean|W| ≈ γ and round(W/mean|W|) = the trits.
      const nnz = trits.reduce((a, t) => a + (t === 0 ? 0 : 1), 0);
      const m = (gamma * n) / nnz;
      const w = trits.map((t) => (t === 0 ? (jitter() * 2 - 1) * 0.25 * gamma : t * m));
      float(name, [out, inF], w);
      return;
    }
    const scale = linearClass === "autobitlinear" ? gamma : 1 / gamma;
    tensors.push({ name, dtype: "U8", shape: [out / 4, inF], data: QUANT_TRAITS.hf_packed.encode(trits, out, inF) });
    tensors.push(floatTensor(`${name}_scale`, scaleDtype, [1], Float32Array.of(scale)));
  };
  const norm = (name: string, n: number): void => float(name, [n], floats(n, 0.1, 1));

  float("model.embed_tokens.weight", [vocab, hidden], floats(hidden * vocab, 0.5));
  norm("model.norm.weight", hidden);
  if (!tied) {
    float("lm_head.weight", [vocab, hidden], floats(hidden * vocab, 0.5));
  }
  for (let l = 0; l < layers; l++) {
    const p = `model.layers.${l}.`;
    norm(`${p}input_layernorm.weight`, hidden);
    ternary(`${p}self_attn.q_proj.weight`, hidden, hidden);
    ternary(`${p}self_attn.k_proj.weight`, kvDim, hidden);
    ternary(`${p}self_attn.v_proj.weight`, kvDim, hidden);
    ternary(`${p}self_attn.o_proj.weight`, hidden, hidden);
    norm(`${p}self_attn.${old ? "inner_attn_ln" : "attn_sub_norm"}.weight`, hidden);
    norm(`${p}post_attention_layernorm.weight`, hidden);
    ternary(`${p}mlp.gate_proj.weight`, ffn, hidden);
    ternary(`${p}mlp.up_proj.weight`, ffn, hidden);
    ternary(`${p}mlp.down_proj.weight`, hidden, ffn);
    norm(`${p}mlp.${old ? "ffn_layernorm" : "ffn_sub_norm"}.weight`, ffn);
  }

  const config: Record<string, unknown> = {
    architectures: [old ? "BitnetForCausalLM" : "BitNetForCausalLM"],
    model_type: old ? "llama" : "bitnet",
    hidden_size: hidden,
    intermediate_size: ffn,
    num_hidden_layers: layers,
    num_attention_heads: heads,
    num_key_value_heads: kvHeads,
    vocab_size: vocab,
    max_position_embeddings: opts.contextLength ?? 256,
    rms_norm_eps: 1e-5,
    rope_theta: old ? 10000 : 500000,
    hidden_act: old ? "silu" : "relu2",
    tie_word_embeddings: tied,
    torch_dtype: "bfloat16",
    ...(layout === "packed"
      ? { quantization_config: { quant_method: "bitnet", linear_class: linearClass, quantization_mode: "offline" } }
      : {}),
  };
  const files = ["config.json"];
  await writeFile(join(dir, "config.json"), `${JSON.stringify(config, null, 2)}\n`);
  const meta = { format: "pt" };
  if (shards === 1) {
    await writeFile(join(dir, SAFETENSORS_SINGLE_FILE), writeSafetensors({ tensors, metadata: meta }));
    return { files: [...files, SAFETENSORS_SINGLE_FILE] };
  }
  const weightMap: Record<string, string> = {};
  const per = Math.ceil(tensors.length / shards);
  let totalSize = 0;
  for (let s = 0; s < shards; s++) {
    const name = `model-${String(s + 1).padStart(5, "0")}-of-${String(shards).padStart(5, "0")}.safetensors`;
    const part = tensors.slice(s * per, (s + 1) * per);
    for (const t of part) {
      weightMap[t.name] = name;
      totalSize += t.data.length;
    }
    await writeFile(join(dir, name), writeSafetensors({ tensors: part, metadata: meta }));
    files.push(name);
  }
  const index = { metadata: { total_size: totalSize }, weight_map: weightMap };
  await writeFile(join(dir, SAFETENSORS_INDEX_FILE), `${JSON.stringify(index, null, 2)}\n`);
  return { files: [...files, SAFETENSORS_INDEX_FILE] };
}
