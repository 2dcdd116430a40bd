/**
 * What `barbell export` reads: any model barbell loads, as a BitnetConfig and a WeightSource read one tensor at a
 * time — a GGUF file, a Hugging Face folder, or a training checkpoint (`barbell.qat-checkpoint` safetensors, whose
 * latent weights are ternarized by absmean exactly as `barbell train` exports them to GGUF).
 */
import { open } from "node:fs/promises";
import { FormatError } from "../../core/errors.js";
import { fileError, pathKind } from "../../core/files.js";
import { openGguf } from "../../formats/gguf/index.js";
import { configFromGguf, type BitnetConfig } from "../../model/bitnet/config.js";
import { ggufWeightSource } from "../../model/bitnet/gguf-source.js";
import { readHfBitnetFolder, readHfTokenizerFiles } from "../../model/bitnet/hf.js";
import { configFromHf, hfWeightSource } from "../../model/bitnet/hf-source.js";
import type { WeightSource } from "../../model/bitnet/weights.js";
import { tokenizerTablesFromGguf } from "../../model/tokenizer/gguf.js";
import { tokenizerTablesFromJson } from "../../model/tokenizer/hf-json.js";
import type { TokenizerTables } from "../../model/tokenizer/types.js";
import { packTernary } from "../../quant/layouts.js";
import { absmeanTernarize } from "../../quant/values.js";
import { loadCheckpointFile } from "../../train/checkpoint.js";
import type { Param, QatConfig } from "../../train/model.js";

/** A model's tokenizer as tables, and its chat template, when it has them. */
export interface ExportTokenizer {
  readonly tokenizer?: TokenizerTables | undefined;
  readonly chatTemplate?: string | undefined;
}

export interface ExportSource extends AsyncDisposable {
  readonly kind: "gguf" | "hf-folder" | "checkpoint";
  readonly config: BitnetConfig;
  readonly weights: WeightSource;
  /**
   * The tokenizer and chat template, read from what is already open (the GGUF's metadata; the folder's
   * tokenizer.json and tokenizer_config.json); none for a training checkpoint, which stores no tokenizer.
   */
  readTokenizer(): Promise<ExportTokenizer>;
  /** A checkpoint's training config and latent weights as loaded (undefined for other kinds). */
  readonly checkpoint?: { readonly config: QatConfig; readonly params: readonly Param[] };
}

/** Context length given to a checkpoint's config (checkpoints have none; `barbell train --ctx` defaults to it too). */
export const CHECKPOINT_CONTEXT = 2048;

const GGUF_MAGIC = "GGUF";

/** Opens `path` as a GGUF file, a Hugging Face folder or a training checkpoint (told apart by content). */
export async function openExportSource(path: string, options: { contextLength?: number } = {}): Promise<ExportSource> {
  if ((await pathKind(path, "[export] model")) === "folder") {
    const folder = await readHfBitnetFolder(path);
    const readTokenizer = async (): Promise<ExportTokenizer> => {
      const files = await readHfTokenizerFiles(path, "[export]");
      const tokenizer = files.tokenizerJson === undefined ? undefined : tokenizerTablesFromJson(files.tokenizerJson, files.tokenizerConfig);
      return { tokenizer, chatTemplate: files.chatTemplate };
    };
    return { kind: "hf-folder", config: configFromHf(folder), weights: hfWeightSource(folder), readTokenizer, [Symbol.asyncDispose]: () => folder[Symbol.asyncDispose]() };
  }
  if ((await magic(path)) === GGUF_MAGIC) {
    const file = await openGguf(path);
    try {
      const config = configFromGguf(file.metadata, file.tensor("token_embd.weight")?.dims[1]);
      const readTokenizer = async (): Promise<ExportTokenizer> => ({
        tokenizer: file.metadata.getStringArray("tokenizer.ggml.tokens") === undefined ? undefined : tokenizerTablesFromGguf(file.metadata),
        chatTemplate: file.metadata.getString("tokenizer.chat_template"),
      });
      return { kind: "gguf", config, weights: ggufWeightSource(file), readTokenizer, [Symbol.asyncDispose]: () => file[Symbol.asyncDispose]() };
    } catch (e) {
      await file[Symbol.asyncDispose]();
      throw e;
    }
  }
  const { state } = await loadCheckpointFile(path);
  const config = checkpointConfig(state.config, options.contextLength ?? CHECKPOINT_CONTEXT);
  return {
    kind: "checkpoint",
    config,
    weights: paramSource(state.params),
    readTokenizer: async () => ({}),
    checkpoint: { config: state.config, params: state.params },
    [Symbol.asyncDispose]: async () => undefined,
  };
}

async function magic(path: string): Promise<string> {
  try {
    const handle = await open(path, "r");
    try {
      const head = new Uint8Array(4);
      const { bytesRead } = await handle.read(head, 0, 4, 0);
      return new TextDecoder().decode(head.subarray(0, bytesRead));
    } finally {
      await handle.close();
    }
  } catch (e) {
    throw fileError(e, path, "[export] model");
  }
}

/** The inference config of a training config (as src/train/export.ts writes it into a GGUF). */
export function checkpointConfig(c: QatConfig, contextLength: number): BitnetConfig {
  return {
    arch: c.activation === "relu2" ? "bitnet-b1.58" : "bitnet",
    name: undefined,
    vocabSize: c.vocabSize,
    contextLength,
    hidden: c.hidden,
    layers: c.layers,
    ffn: c.ffn,
    heads: c.heads,
    kvHeads: c.kvHeads,
    headDim: c.hidden / c.heads,
    rmsEps: c.rmsEps,
    ropeTheta: c.ropeTheta,
    activation: c.activation,
  };
}

/** A WeightSource over latent training parameters: projections ternarized by absmean, the rest as f32. */
export function paramSource(params: readonly Param[]): WeightSource {
  const byName = new Map(params.map((p) => [p.name, p]));
  const get = (name: string, size: number): Param => {
    const p = byName.get(name);
    if (p === undefined) {
      throw new FormatError("bad-value", `[export] the checkpoint has no ${name}`);
    }
    if (p.data.length !== size) {
      throw new FormatError("bad-dims", `[export] ${name} holds ${p.data.length} values, the config needs ${size}`);
    }
    return p;
  };
  return {
    has: (name) => byName.has(name),
    bytesOf: (name) => (byName.get(name)?.data.byteLength ?? 0),
    dense: async (name, rows, cols) => {
      const p = get(name, rows * cols);
      return { dtype: "f32", bytes: new Uint8Array(p.data.buffer, p.data.byteOffset, p.data.byteLength) };
    },
    floats: async (name, count) => get(name, count).data,
    ternary: async (name, out, inp) => {
      const q = absmeanTernarize(get(name, out * inp).data);
      if (!q.ok) {
        throw new FormatError("bad-value", `[export] ${name}: ${q.error.message}`);
      }
      return { codes: packTernary(q.value.values, out, inp), scale: q.value.scale };
    },
    projectionFloats: async (name) => {
      throw new FormatError("bad-value", `[export] ${name}: checkpoint projections are exported ternarized only`);
    },
  };
}
