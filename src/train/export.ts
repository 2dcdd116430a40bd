/**
 * Export of a QAT-trained model as a BitNet GGUF (issue 8, point 5; docs/training.md "Export"): the file
 * `loadModel` reads like any other BitNet model, with no special case.
 *
 * Each projection's latent f32 weights are ternarized by absmean (`absmeanTernarize`, the quantizer the
 * trainer's `bitLinear` forward runs through `ternarize`) and stored as I2_S: 2-bit codes plus one f32 γ per
 * tensor, so the trits and γ the trainer multiplied by are what the loader reads back, bit for bit. The
 * embedding, head and norm weights are stored as F32 (exact). Widths that I2_S cannot hold (a row length
 * not a multiple of 128) can be written as F32 γ·trits instead (`weightType: "f32"`), which the loader
 * also repacks as ternary with the same γ.
 */
import { writeFile } from "node:fs/promises";
import { BarbellError } from "../core/errors.js";
import { gv, writeGguf, type GgufTensorInput, type GgufValue } from "../formats/gguf/index.js";
import { QUANT_TRAITS } from "../quant/table.js";
import type { QuantName } from "../quant/types.js";
import { absmeanTernarize } from "../quant/values.js";
import { checkQatConfig, paramLayout, type Param, type QatConfig } from "./model.js";

export type ExportErrorCode =
  /** The config fails its checks, or the parameters are not the ones it lays out (names, shapes, lengths). */
  | "mismatch"
  /** A projection's row length cannot be stored in the chosen weight type. */
  | "unsupported"
  /** A weight is NaN or infinite. */
  | "non-finite"
  /** The tokenizer metadata does not fit the model (vocabulary size, missing entries). */
  | "tokenizer"
  /** The output (`barbell export --hf`'s folder) already exists and holds files. */
  | "exists";

/** Parameters, a config or tokenizer metadata that cannot be exported as a loadable GGUF. */
export class ExportError extends BarbellError {
  constructor(
    readonly code: ExportErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "ExportError";
  }
}

/** Storage of the ternary projections: I2_S (2 bits/weight + one f32 γ) or F32 γ·trits (any width). */
export type ExportWeightType = "i2_s" | "f32";

export interface ExportOptions {
  /** `general.name`. Default "barbell-qat". */
  readonly name?: string;
  /** `context_length` written into the file (the positions a KV cache may be sized for). Default 2048. */
  readonly contextLength?: number;
  /** Projection storage. Default "i2_s" (needs hidden and ffn multiples of 128). */
  readonly weightType?: ExportWeightType;
  /** `tokenizer.*` entries (e.g. from `toGgufTokenizerMetadata`); without them the model loads for id-only use. */
  readonly tokenizer?: Iterable<readonly [string, GgufValue]>;
}

/** Arch string by FFN activation: barbell's config reader gives ReLU² to `bitnet-b1.58` and SiLU to `bitnet`. */
function archOf(c: QatConfig): "bitnet-b1.58" | "bitnet" {
  return c.activation === "relu2" ? "bitnet-b1.58" : "bitnet";
}

// llama.cpp LLAMA_FTYPE values as the 2024 bitnet.cpp fork numbers them (as src/model/bitnet/fixture.ts writes).
const FILE_TYPE: Record<ExportWeightType, number> = { f32: 0, i2_s: 40 };

const PROJECTION = /^blk\.\d+\.(attn_q|attn_k|attn_v|attn_output|ffn_gate|ffn_up|ffn_down)\.weight$/;

function checkParams(c: QatConfig, params: readonly Param[]): void {
  try {
    checkQatConfig(c);
  } catch (e) {
    throw new ExportError("mismatch", `[export] ${(e as Error).message}`, { cause: e });
  }
  const layout = paramLayout(c);
  if (params.length !== layout.length) {
    throw new ExportError("mismatch", `[export] the config lays out ${layout.length} parameters, got ${params.length}`);
  }
  for (const [i, want] of layout.entries()) {
    const p = params[i];
    if (p === undefined || p.name !== want.name) {
      throw new ExportError("mismatch", `[export] parameter ${i} should be ${want.name}, got ${p?.name ?? "nothing"}`);
    }
    const size = want.shape.reduce((n, s) => n * s, 1);
    if (p.shape.length !== want.shape.length || p.shape.some((s, j) => s !== want.shape[j]) || p.data.length !== size) {
      throw new ExportError(
        "mismatch",
        `[export] ${p.name} should be [${want.shape.join(", ")}] (${size} values), got [${p.shape.join(", ")}] with ${p.data.length} values`,
      );
    }
    if (!p.data.every(Number.isFinite)) {
      throw new ExportError("non-finite", `[export] ${p.name} holds a NaN or infinite value`);
    }
  }
}

function encode(name: string, type: QuantName, shape: readonly number[], values: Float32Array): GgufTensorInput {
  const traits = QUANT_TRAITS[type];
  // GGUF dims run innermost first: a row-major [out, in] matrix is ne0 = in, ne1 = out.
  const dims = [...shape].reverse();
  const cols = dims[0] ?? 1;
  const rows = values.length / cols;
  if (traits.byteSize(rows, cols) === undefined || traits.ggmlType === undefined) {
    throw new ExportError("unsupported", `[export] ${name} (${rows}×${cols}) cannot be stored as ${type}; rows of a multiple of 128 are needed for i2_s (use weightType "f32")`);
  }
  return { name, dims, typeId: traits.ggmlType, data: traits.encode(values, rows, cols) };
}

/** γ·W_t of one projection: absmean ternarization of the latent weights, as the trainer's forward sees them. */
function ternaryValues(p: Param): Float32Array {
  const q = absmeanTernarize(p.data);
  if (!q.ok) {
    throw new ExportError("non-finite", `[export] ${p.name}: ${q.error.message}`, { cause: q.error });
  }
  const { values, scale } = q.value;
  // γ·(±1) and 0 are exact in f32, so I2_S's encoder recovers γ as the absmax and each trit as a sign.
  return Float32Array.from(values, (t) => t * scale);
}

function checkTokenizer(c: QatConfig, entries: readonly (readonly [string, GgufValue])[]): void {
  const model = entries.find(([k]) => k === "tokenizer.ggml.model");
  const tokens = entries.find(([k]) => k === "tokenizer.ggml.tokens")?.[1];
  if (model === undefined || tokens === undefined || tokens.type !== "array") {
    throw new ExportError("tokenizer", "[export] tokenizer metadata needs tokenizer.ggml.model and a tokenizer.ggml.tokens array");
  }
  if (tokens.items.length !== c.vocabSize) {
    throw new ExportError("tokenizer", `[export] the tokenizer has ${tokens.items.length} tokens, the model a vocabulary of ${c.vocabSize}`);
  }
  for (const [k] of entries) {
    if (!k.startsWith("tokenizer.")) {
      throw new ExportError("tokenizer", `[export] tokenizer metadata holds a non-tokenizer key ${k}`);
    }
  }
}

/**
 * GGUF bytes of a trained model: arch `bitnet-b1.58` (ReLU²) or `bitnet` (SiLU), projections absmean-ternary
 * in I2_S (or F32 γ·trits), embedding/head/norms in F32, the hyperparameters barbell's config reader needs,
 * and the tokenizer entries when given. Throws ExportError for parameters that do not match the config.
 */
export function exportGguf(config: QatConfig, params: readonly Param[], options: ExportOptions = {}): Uint8Array {
  const c = config;
  checkParams(c, params);
  const weightType = options.weightType ?? "i2_s";
  if (weightType !== "i2_s" && weightType !== "f32") {
    throw new ExportError("unsupported", `[export] weightType ${String(weightType)} is not i2_s or f32`);
  }
  const contextLength = options.contextLength ?? 2048;
  if (!Number.isSafeInteger(contextLength) || contextLength < 1) {
    throw new ExportError("mismatch", `[export] contextLength ${contextLength} is not a positive integer`);
  }
  const tokenizer = options.tokenizer === undefined ? [] : [...options.tokenizer];
  if (options.tokenizer !== undefined) {
    checkTokenizer(c, tokenizer);
  }
  const tensors = params.map((p) =>
    PROJECTION.test(p.name) ? encode(p.name, weightType, p.shape, ternaryValues(p)) : encode(p.name, "f32", p.shape, p.data),
  );
  const arch = archOf(c);
  const headDim = c.hidden / c.heads;
  const metadata: [string, GgufValue][] = [
    ["general.architecture", gv.string(arch)],
    ["general.name", gv.string(options.name ?? "barbell-qat")],
    ["general.file_type", gv.u32(FILE_TYPE[weightType])],
    ["general.quantization_version", gv.u32(2)],
    [`${arch}.vocab_size`, gv.u32(c.vocabSize)],
    [`${arch}.context_length`, gv.u32(contextLength)],
    [`${arch}.embedding_length`, gv.u32(c.hidden)],
    [`${arch}.block_count`, gv.u32(c.layers)],
    [`${arch}.feed_forward_length`, gv.u32(c.ffn)],
    [`${arch}.rope.dimension_count`, gv.u32(headDim)],
    [`${arch}.attention.head_count`, gv.u32(c.heads)],
    [`${arch}.attention.head_count_kv`, gv.u32(c.kvHeads)],
    // f32 metadata: the trainer's eps and theta go through Math.fround too when they become kernel arguments.
    [`${arch}.attention.layer_norm_rms_epsilon`, gv.f32(c.rmsEps)],
    [`${arch}.rope.freq_base`, gv.f32(c.ropeTheta)],
    ...tokenizer.map(([k, v]): [string, GgufValue] => [k, v]),
  ];
  return writeGguf({ metadata, tensors });
}

/** `exportGguf` written to `path`. */
export async function exportGgufFile(path: string, config: QatConfig, params: readonly Param[], options: ExportOptions = {}): Promise<void> {
  await writeFile(path, exportGguf(config, params, options));
}
