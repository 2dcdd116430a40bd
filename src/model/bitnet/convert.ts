/**
 * Hugging Face BitNet folder → GGUF (`barbell convert`, issue 14 point 7; docs/convert.md).
 *
 * The folder is read through the loader's own pieces (`readHfBitnetFolder`, `configFromHf`): packed uint8 +
 * `weight_scale` projections, or bf16/f16/f32 master weights ternarized by absmean exactly as loading them does.
 * Each projection becomes γ·trits and goes through the project's encoder of the chosen type:
 *
 * - I2_S: bitnet.cpp's layout and quantizer (codes + one f32 γ per tensor): the loader reads back the same trits
 *   and the same γ, so logits equal the folder's bit for bit.
 * - TQ2_0 / TQ1_0: ggml's `quantize_row_tq*_0_ref` layouts, one fp16 d per 256 weights; every block that holds a
 *   nonzero weight gets d = γ (an all-zero block gets d = 0, as ggml writes it). γ is rounded to fp16: exact for a
 *   bf16 `weight_scale` (2B-4T), within 2^-11 relative for an f32 γ (master weights, bitlinear 1/scale).
 *
 * The embedding (and an untied head) become F16, Q8_0 or Q6_K, row block by row block; norms F32. The file is
 * arch `bitnet` (SiLU, 1bitLLM; what mainline llama.cpp runs) or `bitnet-b1.58` (ReLU², 2B-4T; bitnet.cpp), with
 * llama.cpp's metadata keys and the folder's tokenizer and chat template. Tensors are produced one at a time, so
 * memory holds one tensor (and one embedding row block), never the model twice.
 */
import { basename, resolve } from "node:path";
import { gv, layoutGguf, type GgufLayout, type GgufValue } from "../../formats/gguf/index.js";
import { f32ToHalf, halfToF32 } from "../../quant/half.js";
import { QUANT_TRAITS } from "../../quant/table.js";
import type { QuantTraits } from "../../quant/types.js";
import { tokenizerTablesFromJson } from "../tokenizer/hf-json.js";
import type { BitnetConfig } from "./config.js";
import { ConvertError } from "./convert-error.js";
import { ggufTokenizerMetadata } from "./convert-tokenizer.js";
import { readHfBitnetFolder, readHfTokenizerFiles, type HfBitnetFolder, type HfBitnetTensor } from "./hf.js";
import { configFromHf } from "./hf-source.js";

export { ConvertError, type ConvertErrorCode } from "./convert-error.js";

/** Storage types of the ternary projections. */
export const CONVERT_WEIGHT_TYPES = ["i2_s", "tq2_0", "tq1_0"] as const;
export type ConvertWeightType = (typeof CONVERT_WEIGHT_TYPES)[number];

/** Storage types of the embedding and an untied output head. */
export const CONVERT_HEAD_TYPES = ["f16", "q8_0", "q6_k"] as const;
export type ConvertHeadType = (typeof CONVERT_HEAD_TYPES)[number];

/** Longest `general.name` written (a GGUF string may be longer; a name never needs to be). */
export const MAX_MODEL_NAME_CHARS = 256;

/**
 * Mainline llama.cpp's arch `bitnet` has no `output.weight`: it always multiplies by `token_embd` for the logits and
 * refuses a file with a separate head ("done_getting_tensors: wrong number of tensors", checked at commit 34af94cd).
 */
export const UNTIED_BITNET_WARNING =
  "the folder has a separate output head (lm_head): mainline llama.cpp's arch bitnet reuses the embedding as the head " +
  "and refuses this file (\"wrong number of tensors\"); barbell runs it";

/** Float values decoded at once while re-encoding an embedding or head: bounds the scratch memory (16 MiB of f32). */
const HEAD_CHUNK_VALUES = 1 << 22;

/** The tensors that hold the token embedding and, in an untied model, the output head. */
export const HEAD_TENSORS: readonly string[] = ["token_embd.weight", "output.weight"];

/**
 * llama.cpp `LLAMA_FTYPE` of each projection type: TQ1_0 36 and TQ2_0 37 (mainline), I2_S 40 (bitnet.cpp's fork;
 * as the fixtures and the trainer's export write it).
 */
const FILE_TYPE: Record<ConvertWeightType, number> = { tq1_0: 36, tq2_0: 37, i2_s: 40 };

type Projection = "attn_q" | "attn_k" | "attn_v" | "attn_output" | "ffn_gate" | "ffn_up" | "ffn_down";

export interface ConvertOptions {
  /** Projection storage. Default `i2_s`. */
  readonly weightType?: ConvertWeightType;
  /** Embedding / head storage. Default `f16` (as bitnet.cpp keeps it). */
  readonly headType?: ConvertHeadType;
  /** `general.name`. Default: the folder's name. */
  readonly name?: string;
  /** Checked between tensors: an aborted signal stops the conversion with ConvertError `aborted`. */
  readonly signal?: AbortSignal;
  /** Called after each tensor's bytes were taken by the consumer. */
  readonly onTensor?: (progress: ConvertProgress) => void;
}

/** One tensor of the output file. */
export interface ConvertTensorPlan {
  /** GGUF name, e.g. `blk.0.attn_q.weight`. */
  readonly name: string;
  /** GGUF dims, ne0 (the contiguous one) first. */
  readonly dims: readonly number[];
  /** Storage type name (`tq2_0`, `f16`, `f32` …). */
  readonly type: string;
  readonly byteSize: number;
}

/** What a conversion will write, known before any tensor data is read. */
export interface ConvertPlan {
  readonly config: BitnetConfig;
  /** `general.architecture`. */
  readonly arch: string;
  readonly weightType: ConvertWeightType;
  readonly headType: ConvertHeadType;
  readonly tied: boolean;
  /** Projections stored as packed uint8 + weight_scale, or as master weights (ternarized here). */
  readonly storage: "packed" | "master";
  readonly tensors: readonly ConvertTensorPlan[];
  /** Metadata keys in file order. */
  readonly metadataKeys: readonly string[];
  /** Tokenizer kind written, or undefined when the folder has no tokenizer.json. */
  readonly tokenizer: "byte-bpe" | "spm" | undefined;
  readonly chatTemplate: boolean;
  /** Bytes of the whole file. */
  readonly fileBytes: number;
  /** Things the user should know (no tokenizer, ignored checkpoint tensors). */
  readonly warnings: readonly string[];
}

export interface ConvertProgress {
  /** 1-based index of the tensor just written. */
  readonly index: number;
  readonly count: number;
  readonly tensor: ConvertTensorPlan;
  /** File bytes produced so far (header included). */
  readonly bytesDone: number;
  readonly bytesTotal: number;
}

/** Counts gathered while converting, complete once `bytes()` has been iterated to the end. */
export interface ConvertStats {
  /** Projections whose γ changed when stored as fp16 (TQ types only; 0 for I2_S). */
  readonly roundedScales: number;
  /** Largest relative change of a γ stored as fp16. */
  readonly maxScaleError: number;
}

/** An opened conversion: the plan, then the file's bytes in order. Close it (or `await using`) when done. */
export interface HfConversion extends AsyncDisposable {
  readonly plan: ConvertPlan;
  readonly stats: ConvertStats;
  /** The GGUF file: header first, then every tensor (read, converted and released one at a time) with padding. */
  bytes(): AsyncGenerator<Uint8Array, void, undefined>;
  close(): Promise<void>;
}

function checkOptions(o: ConvertOptions): { weightType: ConvertWeightType; headType: ConvertHeadType } {
  const weightType = o.weightType ?? "i2_s";
  const headType = o.headType ?? "f16";
  if (!(CONVERT_WEIGHT_TYPES as readonly string[]).includes(weightType)) {
    throw new ConvertError("bad-option", `[convert] weight type ${JSON.stringify(String(weightType))} is not one of ${CONVERT_WEIGHT_TYPES.join(", ")}`);
  }
  if (!(CONVERT_HEAD_TYPES as readonly string[]).includes(headType)) {
    throw new ConvertError("bad-option", `[convert] head type ${JSON.stringify(String(headType))} is not one of ${CONVERT_HEAD_TYPES.join(", ")}`);
  }
  if (o.name !== undefined && (typeof o.name !== "string" || o.name.length === 0 || o.name.length > MAX_MODEL_NAME_CHARS)) {
    throw new ConvertError("bad-option", `[convert] the model name must be 1 to ${MAX_MODEL_NAME_CHARS} characters`);
  }
  return { weightType, headType };
}

/** Why a row length does not fit a block type, for the error message. */
function blockNeed(type: string): string {
  const block = QUANT_TRAITS[type as keyof typeof QUANT_TRAITS].blockSize;
  return `${type} needs rows of a multiple of ${block} values`;
}

interface TensorJob {
  readonly plan: ConvertTensorPlan;
  readonly source: HfBitnetTensor;
  readonly kind: "projection" | "dense" | "norm";
}

function job(folder: HfBitnetFolder, name: string, kind: TensorJob["kind"], type: string, dims: number[]): TensorJob {
  const source = folder.tensors.get(name);
  if (source === undefined) {
    throw new ConvertError("unsupported", `[convert] the folder has no tensor for ${name}`); // readHfBitnetFolder checks this first
  }
  const traits = QUANT_TRAITS[type as keyof typeof QUANT_TRAITS];
  const [cols = 1, rows = 1] = dims;
  const byteSize = traits.byteSize(rows, cols);
  if (byteSize === undefined) {
    throw new ConvertError(
      "unsupported",
      `[convert] ${name} (${source.hfName}, rows of ${cols}) cannot be stored as ${type}: ${blockNeed(type)}` +
        (kind === "projection" ? "; choose another --type" : "; choose another --head"),
    );
  }
  return { plan: { name, dims, type, byteSize }, source, kind };
}

function tensorJobs(folder: HfBitnetFolder, c: BitnetConfig, weightType: ConvertWeightType, headType: ConvertHeadType): TensorJob[] {
  const q = c.heads * c.headDim;
  const kv = c.kvHeads * c.headDim;
  const shapes: Record<Projection, [inp: number, out: number]> = {
    attn_q: [c.hidden, q],
    attn_k: [c.hidden, kv],
    attn_v: [c.hidden, kv],
    attn_output: [q, c.hidden],
    ffn_gate: [c.hidden, c.ffn],
    ffn_up: [c.hidden, c.ffn],
    ffn_down: [c.ffn, c.hidden],
  };
  const jobs = [job(folder, "token_embd.weight", "dense", headType, [c.hidden, c.vocabSize])];
  if (!folder.tiedOutput) {
    jobs.push(job(folder, "output.weight", "dense", headType, [c.hidden, c.vocabSize]));
  }
  jobs.push(job(folder, "output_norm.weight", "norm", "f32", [c.hidden]));
  for (let l = 0; l < c.layers; l++) {
    const b = `blk.${l}`;
    const proj = (p: Projection): TensorJob => job(folder, `${b}.${p}.weight`, "projection", weightType, shapes[p]);
    jobs.push(
      job(folder, `${b}.attn_norm.weight`, "norm", "f32", [c.hidden]),
      proj("attn_q"),
      proj("attn_k"),
      proj("attn_v"),
      proj("attn_output"),
      job(folder, `${b}.attn_sub_norm.weight`, "norm", "f32", [q]),
      job(folder, `${b}.ffn_norm.weight`, "norm", "f32", [c.hidden]),
      proj("ffn_gate"),
      proj("ffn_up"),
      proj("ffn_down"),
      job(folder, `${b}.ffn_sub_norm.weight`, "norm", "f32", [c.ffn]),
    );
  }
  return jobs;
}

interface TokenizerFiles {
  readonly entries: [string, GgufValue][];
  readonly kind: "byte-bpe" | "spm" | undefined;
  readonly chatTemplate: boolean;
  readonly warnings: string[];
}

async function tokenizerFiles(dir: string, vocabRows: number): Promise<TokenizerFiles> {
  const { tokenizerJson: json, tokenizerConfig: config, chatTemplate } = await readHfTokenizerFiles(dir, "[convert]");
  const template = chatTemplate === undefined ? [] : ([["tokenizer.chat_template", gv.string(chatTemplate)]] as [string, GgufValue][]);
  if (json === undefined) {
    const warning = "the folder has no tokenizer.json: the GGUF carries no tokenizer (barbell runs it on token ids; llama.cpp needs one)";
    return { entries: template, kind: undefined, chatTemplate: chatTemplate !== undefined, warnings: [warning] };
  }
  const tables = tokenizerTablesFromJson(json, config);
  const addEos = typeof config === "object" && config !== null && "add_eos_token" in config ? config.add_eos_token : undefined;
  const entries = ggufTokenizerMetadata(tables, {
    vocabRows,
    ...(typeof addEos === "boolean" ? { addEos } : {}),
    ...(chatTemplate === undefined ? {} : { chatTemplate }),
  });
  return { entries, kind: tables.kind, chatTemplate: chatTemplate !== undefined, warnings: [] };
}

function metadataOf(c: BitnetConfig, name: string, weightType: ConvertWeightType, tokenizer: [string, GgufValue][]): [string, GgufValue][] {
  const a = c.arch;
  return [
    ["general.architecture", gv.string(a)],
    ["general.type", gv.string("model")],
    ["general.name", gv.string(name)],
    ["general.file_type", gv.u32(FILE_TYPE[weightType])],
    ["general.quantization_version", gv.u32(2)],
    [`${a}.vocab_size`, gv.u32(c.vocabSize)],
    [`${a}.context_length`, gv.u32(c.contextLength)],
    [`${a}.embedding_length`, gv.u32(c.hidden)],
    [`${a}.block_count`, gv.u32(c.layers)],
    [`${a}.feed_forward_length`, gv.u32(c.ffn)],
    [`${a}.rope.dimension_count`, gv.u32(c.headDim)],
    [`${a}.attention.head_count`, gv.u32(c.heads)],
    [`${a}.attention.head_count_kv`, gv.u32(c.kvHeads)],
    [`${a}.attention.layer_norm_rms_epsilon`, gv.f32(c.rmsEps)],
    [`${a}.rope.freq_base`, gv.f32(c.ropeTheta)],
    ...tokenizer,
  ];
}

const FLOAT_DECODE: Record<string, QuantTraits | undefined> = { BF16: QUANT_TRAITS.bf16, F16: QUANT_TRAITS.f16, F32: QUANT_TRAITS.f32 };

/**
 * Opens a Hugging Face BitNet folder for conversion: checks the options, reads config.json and the weight files'
 * headers (through `readHfBitnetFolder`, with its FileError / FormatError for a missing, broken or mismatched
 * folder), the tokenizer files, and plans every tensor of the output, so that any shape the chosen types cannot
 * hold is a ConvertError before a byte is produced. No tensor data is read yet.
 */
export async function openHfConversion(dir: string, options: ConvertOptions = {}): Promise<HfConversion> {
  const { weightType, headType } = checkOptions(options);
  const folder = await readHfBitnetFolder(dir);
  try {
    const config = configFromHf(folder);
    const jobs = tensorJobs(folder, config, weightType, headType);
    const tok = await tokenizerFiles(dir, config.vocabSize);
    const name = options.name ?? (basename(resolve(dir)) || "bitnet");
    const metadata = metadataOf(config, name.slice(0, MAX_MODEL_NAME_CHARS), weightType, tok.entries);
    const layout = layoutGguf(metadata, jobs.map((j) => ({ name: j.plan.name, dims: j.plan.dims, typeId: typeIdOf(j.plan.type) })));
    const storage = [...folder.tensors.values()].some((t) => t.kind === "ternary" && t.storage === "master") ? "master" : "packed";
    const warnings = [...tok.warnings];
    if (config.arch === "bitnet" && !folder.tiedOutput) {
      warnings.push(UNTIED_BITNET_WARNING);
    }
    if (folder.unused.length > 0) {
      const shown = folder.unused.slice(0, 3).join(", ");
      warnings.push(`checkpoint tensors not used: ${shown}${folder.unused.length > 3 ? ` and ${folder.unused.length - 3} more` : ""}`);
    }
    const plan: ConvertPlan = {
      config,
      arch: config.arch,
      weightType,
      headType,
      tied: folder.tiedOutput,
      storage,
      tensors: jobs.map((j) => j.plan),
      metadataKeys: metadata.map(([k]) => k),
      tokenizer: tok.kind,
      chatTemplate: tok.chatTemplate,
      fileBytes: layout.header.length + layout.dataBytes,
      warnings,
    };
    return conversion(folder, plan, jobs, layout, options);
  } catch (e) {
    await folder.close();
    throw e;
  }
}

function typeIdOf(type: string): number {
  const id = QUANT_TRAITS[type as keyof typeof QUANT_TRAITS].ggmlType;
  if (id === undefined) {
    throw new ConvertError("unsupported", `[convert] ${type} has no GGUF type id`);
  }
  return id;
}

function conversion(folder: HfBitnetFolder, plan: ConvertPlan, jobs: readonly TensorJob[], layout: GgufLayout, options: ConvertOptions): HfConversion {
  const stats = { roundedScales: 0, maxScaleError: 0 };
  let started = false;
  const close = (): Promise<void> => folder.close();

  async function* tensorBytes(j: TensorJob): AsyncGenerator<Uint8Array> {
    const { source, plan: p } = j;
    if (j.kind === "projection") {
      if (source.kind !== "ternary") {
        throw new ConvertError("unsupported", `[convert] ${p.name} is not a ternary projection`);
      }
      const { trits, scale } = await source.load();
      if (p.type !== "i2_s") {
        checkHalfScale(p.name, scale, stats);
      }
      const values = new Float32Array(trits.length);
      for (let i = 0; i < trits.length; i++) {
        values[i] = (trits[i] ?? 0) * scale;
      }
      const [cols = 1, rows = 1] = p.dims;
      yield QUANT_TRAITS[p.type as ConvertWeightType].encode(values, rows, cols);
      return;
    }
    if (j.kind === "norm") {
      if (source.kind !== "float") {
        throw new ConvertError("unsupported", `[convert] ${p.name} is not a float tensor`);
      }
      const v = await source.load();
      yield QUANT_TRAITS.f32.encode(v, 1, v.length);
      return;
    }
    yield* denseRows(folder, source, p);
  }

  async function* bytes(): AsyncGenerator<Uint8Array, void, undefined> {
    if (started) {
      throw new ConvertError("bad-option", "[convert] a conversion's bytes can be taken once");
    }
    started = true;
    yield* streamGguf(layout, jobs, (j) => j.plan, tensorBytes, options);
  }

  return { plan, stats, bytes, close, [Symbol.asyncDispose]: close };
}

/**
 * A planned GGUF file's bytes: the header, then each job's tensor bytes padded to the alignment, each checked
 * against its planned size, progress after each tensor; ConvertError "aborted" between tensors once `signal` fires.
 * Shared by the folder conversion and the GGUF head conversion (convert-gguf.ts).
 */
export async function* streamGguf<J>(
  layout: GgufLayout,
  jobs: readonly J[],
  planOf: (job: J) => ConvertTensorPlan,
  tensorBytes: (job: J) => AsyncIterable<Uint8Array>,
  options: { readonly signal?: AbortSignal; readonly onTensor?: (progress: ConvertProgress) => void },
): AsyncGenerator<Uint8Array, void, undefined> {
  const total = layout.header.length + layout.dataBytes;
  let done = layout.header.length;
  yield layout.header;
  for (const [i, j] of jobs.entries()) {
    if (options.signal?.aborted === true) {
      throw new ConvertError("aborted", "[convert] interrupted; no file was written");
    }
    const at = layout.tensors[i];
    const tensor = planOf(j);
    let written = 0;
    for await (const chunk of tensorBytes(j)) {
      written += chunk.length;
      yield chunk;
    }
    if (at === undefined || written !== at.byteSize) {
      throw new ConvertError("unsupported", `[convert] ${tensor.name}: ${written} bytes produced, ${at?.byteSize ?? 0} planned`);
    }
    const end = Math.ceil(written / layout.alignment) * layout.alignment;
    if (end > written) {
      yield new Uint8Array(end - written);
    }
    done += end;
    options.onTensor?.({ index: i + 1, count: jobs.length, tensor, bytesDone: done, bytesTotal: total });
  }
}

/** fp16 must hold γ: finite, and nonzero when γ is. Counts γ that fp16 rounds. */
function checkHalfScale(name: string, scale: number, stats: { roundedScales: number; maxScaleError: number }): void {
  const stored = halfToF32(f32ToHalf(scale));
  if (!Number.isFinite(stored) || (scale !== 0 && stored === 0)) {
    throw new ConvertError("unsupported", `[convert] ${name}: its scale ${scale} does not fit the fp16 scale of a TQ block; use --type i2_s`);
  }
  if (stored !== scale) {
    stats.roundedScales++;
    stats.maxScaleError = Math.max(stats.maxScaleError, Math.abs(stored - scale) / Math.abs(scale));
  }
}

/** An embedding or head of a folder, re-encoded a block of rows at a time. */
async function* denseRows(folder: HfBitnetFolder, source: HfBitnetTensor, p: ConvertTensorPlan): AsyncGenerator<Uint8Array> {
  const [cols = 1, rows = 1] = p.dims;
  const from = FLOAT_DECODE[source.dtype];
  if (from?.byteSize(1, cols) === undefined) {
    throw new ConvertError("unsupported", `[convert] ${source.hfName} is ${source.dtype}; expected BF16, F16 or F32`);
  }
  yield* reencodeRows(from, QUANT_TRAITS[p.type as ConvertHeadType], rows, cols, (offset, length) => folder.store.tensorData(source.hfName, { offset, length }));
}

/**
 * A rows × cols tensor stored as `from`, re-encoded as `to` a block of whole rows at a time (at most
 * HEAD_CHUNK_VALUES values decoded at once); `read(offset, length)` gives the stored bytes of that block.
 * ConvertError "aborted" between blocks once `signal` fires. Shared by the folder and the GGUF head conversions.
 */
export async function* reencodeRows(
  from: QuantTraits,
  to: QuantTraits,
  rows: number,
  cols: number,
  read: (offset: number, length: number) => Uint8Array | Promise<Uint8Array>,
  signal?: AbortSignal,
): AsyncGenerator<Uint8Array> {
  const inRow = from.byteSize(1, cols);
  if (inRow === undefined) {
    throw new ConvertError("unsupported", `[convert] rows of ${cols} values do not fit ${from.name}`);
  }
  const step = Math.max(1, Math.floor(HEAD_CHUNK_VALUES / cols));
  for (let r = 0; r < rows; r += step) {
    if (signal?.aborted === true) {
      throw new ConvertError("aborted", "[convert] interrupted; no file was written");
    }
    const n = Math.min(step, rows - r);
    yield to.encode(from.decode(await read(r * inRow, n * inRow), n, cols), n, cols);
  }
}
