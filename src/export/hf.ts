/**
 * `barbell export --hf`: writes a model barbell loads (a GGUF file, a Hugging Face folder or a training
 * checkpoint) as a Hugging Face
 * folder in Microsoft's BitNet layout (microsoft/bitnet-b1.58-2B-4T): `config.json` with a bitnet
 * `quantization_config`, projections as packed uint8 [out/4, in] plus a `weight_scale` per projection, norms and
 * embeddings as floats, `tokenizer.json` / `tokenizer_config.json` (with the chat template) and
 * `generation_config.json`. barbell's own HF loader reads the folder back to the same logits (tested); the
 * Python side (transformers) cannot be run here, so the layout follows the published files field by field.
 *
 * Exactness: trits and γ are kept exactly (γ as F32 by default; Microsoft's files store it as BF16, which
 * `scaleDtype: "BF16"` reproduces at the cost of rounding γ). F16, BF16 and F32 embeddings keep their dtype;
 * quantized ones (Q8_0, Q6_K, …) are written decoded to F32, so a reader computes the head in floats.
 *
 * Nothing partial is left: the folder is written under a temporary name beside `dir` and renamed at the end.
 */
import { mkdir, readdir, rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { DenseDType } from "../backends/backend.js";
import { FormatError } from "../core/errors.js";
import { pathKind } from "../core/files.js";
import {
  SAFETENSORS_INDEX_FILE,
  SAFETENSORS_SINGLE_FILE,
  writeSafetensors,
  type SafetensorsDtype,
  type SafetensorsTensorInput,
} from "../formats/safetensors/index.js";
import { unpackTernary } from "../quant/layouts.js";
import { QUANT_TRAITS } from "../quant/table.js";
import type { QuantName } from "../quant/types.js";
import { tokenizerJsonFiles } from "../model/tokenizer/hf-json-write.js";
import type { TokenizerTables } from "../model/tokenizer/types.js";
import type { BitnetConfig } from "../model/bitnet/config.js";
import type { WeightSource } from "../model/bitnet/weights.js";
import { ExportError } from "../train/export.js";
import { openExportSource } from "./onnx/sources.js";

/** Weight bytes per safetensors shard; a model above it is written as shards plus an index, as HF does. */
export const HF_EXPORT_SHARD_BYTES = 2 * 1024 * 1024 * 1024;

/** What is exported: the model's config and weights, and its tokenizer and chat template when it has them. */
export interface HfExportModel {
  readonly config: BitnetConfig;
  readonly source: WeightSource;
  readonly tokenizer?: TokenizerTables | undefined;
  readonly chatTemplate?: string | undefined;
}

export interface HfExportOptions {
  /** dtype of each `weight_scale`: F32 (default, γ exact) or BF16 (as Microsoft's files, γ rounded). */
  readonly scaleDtype?: "F32" | "BF16";
  /** Weight bytes per shard (default HF_EXPORT_SHARD_BYTES). */
  readonly shardBytes?: number;
  /** Called after each tensor with tensors done and the total. */
  readonly onProgress?: (done: number, total: number) => void;
  /** Context length of a training checkpoint's model (checkpoints have none; default CHECKPOINT_CONTEXT). */
  readonly contextLength?: number;
}

/** What `writeHfFolder` wrote. */
export interface HfExportResult {
  /** File names inside the folder. */
  readonly files: readonly string[];
  /** Bytes of tensor data written. */
  readonly weightBytes: number;
}

const STORED: Record<"f32" | "f16" | "bf16", SafetensorsDtype> = { f32: "F32", f16: "F16", bf16: "BF16" };

function floatBytes(dtype: "F32" | "BF16", v: Float32Array): Uint8Array {
  return (dtype === "F32" ? QUANT_TRAITS.f32 : QUANT_TRAITS.bf16).encode(v, 1, v.length);
}

/** An embedding or head as safetensors input: float dtypes as stored, quantized ones decoded to F32. */
function denseTensor(name: string, dense: { dtype: DenseDType; bytes: Uint8Array }, rows: number, cols: number): SafetensorsTensorInput {
  const stored = (STORED as Record<string, SafetensorsDtype | undefined>)[dense.dtype];
  if (stored !== undefined) {
    return { name, dtype: stored, shape: [rows, cols], data: dense.bytes };
  }
  const values = QUANT_TRAITS[dense.dtype as QuantName].decode(dense.bytes, rows, cols);
  return { name, dtype: "F32", shape: [rows, cols], data: floatBytes("F32", values) };
}

/** The tensors of the folder, HF names, in the order Microsoft's file lists them per layer. */
async function tensors(model: HfExportModel, options: HfExportOptions): Promise<SafetensorsTensorInput[]> {
  const { config: c, source } = model;
  const old = c.arch === "bitnet"; // 1bitLLM naming: inner_attn_ln / ffn_layernorm
  const scaleDtype = options.scaleDtype ?? "F32";
  const out: SafetensorsTensorInput[] = [];
  const q = c.heads * c.headDim;
  const kv = c.kvHeads * c.headDim;
  const total = 3 + c.layers * 11;
  const push = (t: SafetensorsTensorInput): void => {
    out.push(t);
    options.onProgress?.(Math.min(out.length, total), total);
  };
  const norm = async (hf: string, name: string, n: number): Promise<void> => {
    push({ name: hf, dtype: "F32", shape: [n], data: floatBytes("F32", await source.floats(name, n)) });
  };
  const projection = async (hf: string, name: string, rows: number, cols: number): Promise<void> => {
    if (rows % 4 !== 0) {
      throw new ExportError("unsupported", `[export] ${name} has ${rows} rows; the packed layout needs a multiple of 4`);
    }
    let packed;
    try {
      packed = await source.ternary(name, rows, cols);
    } catch (e) {
      if (e instanceof FormatError && e.code === "bad-value") {
        throw new ExportError("unsupported", `[export] ${name} is not ternary; only ternary projections can be exported`);
      }
      throw e;
    }
    const trits = Float32Array.from(unpackTernary(packed.codes, rows, cols));
    push({ name: hf, dtype: "U8", shape: [rows / 4, cols], data: QUANT_TRAITS.hf_packed.encode(trits, rows, cols) });
    push({ name: `${hf}_scale`, dtype: scaleDtype, shape: [1], data: floatBytes(scaleDtype, Float32Array.of(packed.scale)) });
  };

  push(denseTensor("model.embed_tokens.weight", await source.dense("token_embd.weight", c.vocabSize, c.hidden), c.vocabSize, c.hidden));
  if (source.has("output.weight")) {
    push(denseTensor("lm_head.weight", await source.dense("output.weight", c.vocabSize, c.hidden), c.vocabSize, c.hidden));
  }
  await norm("model.norm.weight", "output_norm.weight", c.hidden);
  for (let l = 0; l < c.layers; l++) {
    const p = `model.layers.${l}.`;
    const b = `blk.${l}.`;
    await norm(`${p}input_layernorm.weight`, `${b}attn_norm.weight`, c.hidden);
    await projection(`${p}self_attn.q_proj.weight`, `${b}attn_q.weight`, q, c.hidden);
    await projection(`${p}self_attn.k_proj.weight`, `${b}attn_k.weight`, kv, c.hidden);
    await projection(`${p}self_attn.v_proj.weight`, `${b}attn_v.weight`, kv, c.hidden);
    await projection(`${p}self_attn.o_proj.weight`, `${b}attn_output.weight`, c.hidden, q);
    await norm(`${p}self_attn.${old ? "inner_attn_ln" : "attn_sub_norm"}.weight`, `${b}attn_sub_norm.weight`, q);
    await norm(`${p}post_attention_layernorm.weight`, `${b}ffn_norm.weight`, c.hidden);
    await projection(`${p}mlp.gate_proj.weight`, `${b}ffn_gate.weight`, c.ffn, c.hidden);
    await projection(`${p}mlp.up_proj.weight`, `${b}ffn_up.weight`, c.ffn, c.hidden);
    await projection(`${p}mlp.down_proj.weight`, `${b}ffn_down.weight`, c.hidden, c.ffn);
    await norm(`${p}mlp.${old ? "ffn_layernorm" : "ffn_sub_norm"}.weight`, `${b}ffn_sub_norm.weight`, c.ffn);
  }
  return out;
}

/** config.json in Microsoft's field names (1bitLLM's `llama` model type for the `bitnet` arch). */
export function hfConfigJson(model: HfExportModel): Record<string, unknown> {
  const c = model.config;
  const old = c.arch === "bitnet";
  const t = model.tokenizer?.tables;
  return {
    architectures: [old ? "BitnetForCausalLM" : "BitNetForCausalLM"],
    model_type: old ? "llama" : "bitnet",
    ...(t?.bos === undefined ? {} : { bos_token_id: t.bos }),
    ...(t?.eos === undefined ? {} : { eos_token_id: t.eos }),
    hidden_act: c.activation,
    hidden_size: c.hidden,
    intermediate_size: c.ffn,
    max_position_embeddings: c.contextLength,
    num_attention_heads: c.heads,
    num_hidden_layers: c.layers,
    num_key_value_heads: c.kvHeads,
    rms_norm_eps: c.rmsEps,
    rope_theta: c.ropeTheta,
    tie_word_embeddings: !model.source.has("output.weight"),
    torch_dtype: "bfloat16",
    vocab_size: c.vocabSize,
    quantization_config: { quant_method: "bitnet", linear_class: "autobitlinear", quantization_mode: "offline" },
  };
}

function generationConfig(model: HfExportModel): Record<string, unknown> | undefined {
  const t = model.tokenizer?.tables;
  if (t === undefined) {
    return undefined;
  }
  const eos = [...new Set([t.eos, t.eot].filter((v): v is number => v !== undefined))];
  return {
    ...(t.bos === undefined ? {} : { bos_token_id: t.bos }),
    ...(eos.length === 0 ? {} : { eos_token_id: eos.length === 1 ? eos[0] : eos }),
  };
}

const json = (v: unknown): string => `${JSON.stringify(v, null, 2)}\n`;

/**
 * Writes `model` as a Hugging Face BitNet folder at `dir`, which must not exist (or be an empty folder).
 * ExportError `exists` when it holds files, `unsupported` for weights the layout cannot hold; the folder is
 * created only when everything was written.
 */
export async function writeHfFolder(model: HfExportModel, dir: string, options: HfExportOptions = {}): Promise<HfExportResult> {
  const kind = await pathKind(dir, "[export] output folder").catch(() => "missing" as const);
  if (kind === "file" || (kind === "folder" && (await readdir(dir)).length > 0)) {
    throw new ExportError("exists", `[export] ${basename(dir)} already exists and is not an empty folder`);
  }
  const shardBytes = options.shardBytes ?? HF_EXPORT_SHARD_BYTES;
  const list = await tensors(model, options);
  const temp = join(dirname(dir), `.${basename(dir)}.partial-${process.pid}`);
  await rm(temp, { recursive: true, force: true });
  await mkdir(temp, { recursive: true });
  try {
    const files: string[] = [];
    const write = async (name: string, data: string | Uint8Array): Promise<void> => {
      await writeFile(join(temp, name), data);
      files.push(name);
    };
    await write("config.json", json(hfConfigJson(model)));
    const gen = generationConfig(model);
    if (gen !== undefined) {
      await write("generation_config.json", json(gen));
    }
    if (model.tokenizer !== undefined) {
      const tok = tokenizerJsonFiles(model.tokenizer, model.chatTemplate);
      await write("tokenizer.json", JSON.stringify(tok.tokenizer));
      await write("tokenizer_config.json", json(tok.config));
    }
    const weightBytes = list.reduce((n, t) => n + t.data.length, 0);
    const meta = { format: "pt" };
    if (weightBytes <= shardBytes) {
      await write(SAFETENSORS_SINGLE_FILE, writeSafetensors({ tensors: list, metadata: meta }));
    } else {
      const shards: SafetensorsTensorInput[][] = [[]];
      let size = 0;
      for (const t of list) {
        const last = shards[shards.length - 1] ?? [];
        if (size > 0 && size + t.data.length > shardBytes) {
          shards.push([t]);
          size = t.data.length;
        } else {
          last.push(t);
          size += t.data.length;
        }
      }
      const weightMap: Record<string, string> = {};
      for (const [s, part] of shards.entries()) {
        const name = `model-${String(s + 1).padStart(5, "0")}-of-${String(shards.length).padStart(5, "0")}.safetensors`;
        part.forEach((t) => (weightMap[t.name] = name));
        await write(name, writeSafetensors({ tensors: part, metadata: meta }));
      }
      await write(SAFETENSORS_INDEX_FILE, json({ metadata: { total_size: weightBytes }, weight_map: weightMap }));
    }
    if (kind === "folder") {
      await rm(dir, { recursive: true });
    }
    await rename(temp, dir);
    return { files, weightBytes };
  } catch (e) {
    await rm(temp, { recursive: true, force: true });
    throw e;
  }
}

/**
 * Writes the model at `path` (a GGUF file, a Hugging Face folder or a training checkpoint) as a Hugging Face
 * folder at `dir`; see `writeHfFolder`.
 */
export async function exportHfFolder(path: string, dir: string, options: HfExportOptions = {}): Promise<HfExportResult> {
  await using source = await openExportSource(path, options.contextLength === undefined ? {} : { contextLength: options.contextLength });
  return await writeHfFolder({ config: source.config, source: source.weights, ...(await source.readTokenizer()) }, dir, options);
}
