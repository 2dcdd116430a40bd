/**
 * Hugging Face BitNet model folders (docs/BITNET.md §1.1, §1.5, §2.4, §2.5): `config.json` plus
 * `model.safetensors` or shards, read lazily and mapped to barbell's GGUF-style tensor names.
 *
 * Projections come in two layouts: packed uint8 [out/4, in] with a `weight_scale` companion (2B-4T), whose
 * meaning depends on `quantization_config.linear_class` (autobitlinear: γ = weight_scale; bitlinear:
 * γ = 1/weight_scale), or full-precision master weights (2B-4T-bf16, 1bitLLM) ternarized at load by absmean.
 */
import { join } from "node:path";
import { FileError, FormatError } from "../../core/errors.js";
import { readOptionalJson, readRegularFile } from "../../core/files.js";
import {
  describeJson,
  isJsonObject,
  JsonNumber,
  jsonSafeInteger,
  openSafetensorsFolder,
  parseJson,
  type JsonObject,
  type JsonValue,
  type SafetensorsDtype,
  type SafetensorsTensorInfo,
  type SafetensorsTensorStore,
} from "../../formats/safetensors/index.js";
import { QUANT_TRAITS } from "../../quant/table.js";
import { absmeanTernarize } from "../../quant/values.js";
import { CONFIG_LIMITS } from "./config.js";

/** Largest `config.json` read (BitNet configs are about 1 KB): bounds the one read and the JSON parse. */
export const MAX_HF_CONFIG_BYTES = 1 << 20;

/** Largest tokenizer.json / tokenizer_config.json / chat_template.jinja read from a folder (big vocabularies: ~10-20 MB). */
export const MAX_HF_TOKENIZER_BYTES = 64 * 1024 * 1024;

/** Nesting depth of `config.json` (`quantization_config` is depth 2; `rope_scaling` and the like fit easily). */
const MAX_HF_CONFIG_DEPTH = 16;

/**
 * The largest value of each size in `config.json`: the limits the GGUF loader applies (CONFIG_LIMITS), checked
 * when the config is parsed, before anything (tensor name lists, shapes, buffers) is sized from them.
 */
export const HF_CONFIG_LIMITS = {
  hidden_size: CONFIG_LIMITS.hidden,
  intermediate_size: CONFIG_LIMITS.ffn,
  num_hidden_layers: CONFIG_LIMITS.layers,
  num_attention_heads: CONFIG_LIMITS.heads,
  num_key_value_heads: CONFIG_LIMITS.heads,
  vocab_size: CONFIG_LIMITS.vocab,
  max_position_embeddings: CONFIG_LIMITS.context,
} as const;

/** FFN activation named by `hidden_act`. */
export type HfHiddenAct = "relu2" | "silu";

/** `quantization_config.linear_class`: how `weight_scale` enters the output (multiply or divide). */
export type HfLinearClass = "autobitlinear" | "bitlinear";

/** `quantization_config` of a packed checkpoint. */
export interface HfQuantizationConfig {
  /** `quant_method`; always `bitnet`. */
  readonly quantMethod: "bitnet";
  /** autobitlinear: γ = weight_scale; bitlinear: γ = 1 / weight_scale. */
  readonly linearClass: HfLinearClass;
  /** `quantization_mode` as written (`offline` for 2B-4T). */
  readonly quantizationMode: string;
}

/** The `config.json` fields barbell needs, checked. */
export interface HfBitnetConfig {
  /** `architectures`: contains `BitNetForCausalLM` (2B-4T) or `BitnetForCausalLM` (1bitLLM). */
  readonly architectures: readonly string[];
  /** `model_type`: `bitnet` or `llama` (1bitLLM). */
  readonly modelType: "bitnet" | "llama";
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  readonly numHiddenLayers: number;
  readonly numAttentionHeads: number;
  /** Defaults to `numAttentionHeads` when absent (transformers' default); must divide it. */
  readonly numKeyValueHeads: number;
  readonly vocabSize: number;
  readonly maxPositionEmbeddings: number;
  readonly rmsNormEps: number;
  readonly ropeTheta: number;
  readonly hiddenAct: HfHiddenAct;
  /** As written; undefined when absent (then the head is tied exactly when `lm_head.weight` is missing). */
  readonly tieWordEmbeddings: boolean | undefined;
  /** Present for packed checkpoints; required when any projection is packed uint8. */
  readonly quantization: HfQuantizationConfig | undefined;
}

/** Trits of a projection, row-major [out, in], and its scale: weight ≈ scale · trits. */
export interface HfTernaryValues {
  readonly trits: Int8Array;
  readonly scale: number;
}

interface HfTensorBase {
  /** barbell (GGUF-style) name, e.g. `blk.0.attn_q.weight`. */
  readonly name: string;
  /** Name in the checkpoint, e.g. `model.layers.0.self_attn.q_proj.weight`. */
  readonly hfName: string;
  /** Logical shape, PyTorch order: [out, in] for projections, [vocab, hidden] for embeddings, [n] for norms. */
  readonly shape: readonly number[];
  /** Stored dtype. */
  readonly dtype: SafetensorsDtype;
}

/** A ternary projection; `load` reads and decodes it (one tensor at a time, nothing cached). */
export interface HfTernaryTensor extends HfTensorBase {
  readonly kind: "ternary";
  /** `packed`: uint8 [out/4, in] + weight_scale; `master`: full-precision weights ternarized by absmean. */
  readonly storage: "packed" | "master";
  readonly shape: readonly [outFeatures: number, inFeatures: number];
  load(): Promise<HfTernaryValues>;
}

/** A float tensor (embedding, head, norm); `load` decodes it to float32. */
export interface HfFloatTensor extends HfTensorBase {
  readonly kind: "float";
  load(): Promise<Float32Array>;
}

/** One tensor barbell uses. */
export type HfBitnetTensor = HfTernaryTensor | HfFloatTensor;

/** An opened Hugging Face BitNet folder. Close it (or `await using` it) to release the weight files. */
export interface HfBitnetFolder extends AsyncDisposable {
  readonly config: HfBitnetConfig;
  /** True when the output head reuses `token_embd.weight` (no `output.weight` entry). */
  readonly tiedOutput: boolean;
  /** Tensors by barbell name. */
  readonly tensors: ReadonlyMap<string, HfBitnetTensor>;
  /**
   * Checkpoint tensors barbell does not use (e.g. `rotary_emb.inv_freq`, an `lm_head` ignored by tying); the
   * `weight_scale` of a packed projection counts as used.
   */
  readonly unused: readonly string[];
  /** The weight files, for raw access. */
  readonly store: SafetensorsTensorStore;
  close(): Promise<void>;
}

const ARCHITECTURES = ["BitNetForCausalLM", "BitnetForCausalLM"];
const FLOAT_DTYPES = new Set<SafetensorsDtype>(["BF16", "F16", "F32"]);
const DECODE = { BF16: QUANT_TRAITS.bf16, F16: QUANT_TRAITS.f16, F32: QUANT_TRAITS.f32 } as const;
const PROJECTIONS = new Set(["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"]);

const LAYER_NAMES: Record<string, string> = {
  "input_layernorm.weight": "attn_norm.weight",
  "post_attention_layernorm.weight": "ffn_norm.weight",
  "self_attn.q_proj.weight": "attn_q.weight",
  "self_attn.k_proj.weight": "attn_k.weight",
  "self_attn.v_proj.weight": "attn_v.weight",
  "self_attn.o_proj.weight": "attn_output.weight",
  "self_attn.attn_sub_norm.weight": "attn_sub_norm.weight",
  "self_attn.inner_attn_ln.weight": "attn_sub_norm.weight",
  "mlp.gate_proj.weight": "ffn_gate.weight",
  "mlp.up_proj.weight": "ffn_up.weight",
  "mlp.down_proj.weight": "ffn_down.weight",
  "mlp.ffn_sub_norm.weight": "ffn_sub_norm.weight",
  "mlp.ffn_layernorm.weight": "ffn_sub_norm.weight",
};
const GLOBAL_NAMES: Record<string, string> = {
  "model.embed_tokens.weight": "token_embd.weight",
  "model.norm.weight": "output_norm.weight",
  "lm_head.weight": "output.weight",
};

function fail(code: ConstructorParameters<typeof FormatError>[0], message: string): never {
  throw new FormatError(code, `[hf-bitnet] ${message}`);
}

/** barbell's name for a Hugging Face BitNet tensor name, or undefined for names barbell does not use. */
export function hfToBarbellName(hfName: string): string | undefined {
  const global = Object.hasOwn(GLOBAL_NAMES, hfName) ? GLOBAL_NAMES[hfName] : undefined;
  if (global !== undefined) {
    return global;
  }
  const m = /^model\.layers\.(0|[1-9][0-9]{0,5})\.(.+)$/.exec(hfName);
  const suffix = m?.[2];
  const mapped = suffix !== undefined && Object.hasOwn(LAYER_NAMES, suffix) ? LAYER_NAMES[suffix] : undefined;
  return mapped === undefined ? undefined : `blk.${m?.[1] ?? ""}.${mapped}`;
}

function field(cfg: JsonObject, key: string): JsonValue {
  const v = cfg.get(key);
  if (v === undefined) {
    fail("bad-value", `config.json has no "${key}"`);
  }
  return v;
}

/** A size field: a positive integer up to its HF_CONFIG_LIMITS entry (FormatError `limit` above it). */
function size(cfg: JsonObject, key: keyof typeof HF_CONFIG_LIMITS): number {
  const v = field(cfg, key);
  const max = HF_CONFIG_LIMITS[key];
  const n = jsonSafeInteger(v);
  if (n === undefined && v instanceof JsonNumber && /^[1-9][0-9]*$/.test(v.text)) {
    fail("limit", `config.json "${key}" is ${describeJson(v)}; barbell's limit is ${max}`); // past 2^53
  }
  if (n === undefined || n < 1) {
    fail("bad-value", `config.json "${key}" is ${describeJson(v)}, not a positive integer`);
  }
  if (n > max) {
    fail("limit", `config.json "${key}" is ${n}; barbell's limit is ${max}`);
  }
  return n;
}

function positiveNumber(cfg: JsonObject, key: string): number {
  const v = field(cfg, key);
  const n = v instanceof JsonNumber ? v.value : Number.NaN;
  if (!Number.isFinite(n) || n <= 0) {
    fail("bad-value", `config.json "${key}" is ${describeJson(v)}, not a positive number`);
  }
  return n;
}

function oneOf<const T extends string>(cfg: JsonObject, key: string, allowed: readonly T[], where = "config.json"): T {
  const v = field(cfg, key);
  const found = allowed.find((a) => a === v);
  if (found === undefined) {
    fail("bad-value", `${where} "${key}" is ${describeJson(v)}; barbell supports ${allowed.join(", ")}`);
  }
  return found;
}

function quantization(cfg: JsonObject): HfQuantizationConfig | undefined {
  const q = cfg.get("quantization_config");
  if (q === undefined) {
    return undefined;
  }
  if (!isJsonObject(q)) {
    fail("bad-value", `config.json "quantization_config" is ${describeJson(q)}, not an object`);
  }
  const where = "quantization_config";
  const quantMethod = oneOf(q, "quant_method", ["bitnet"], where);
  const linearClass = oneOf(q, "linear_class", ["autobitlinear", "bitlinear"], where);
  const mode = q.get("quantization_mode") ?? "offline";
  if (typeof mode !== "string") {
    fail("bad-value", `quantization_config "quantization_mode" is ${describeJson(mode)}, not a string`);
  }
  return { quantMethod, linearClass, quantizationMode: mode };
}

/**
 * Parses and checks the text of a BitNet `config.json`: every size against HF_CONFIG_LIMITS, the head layout
 * (heads divide the width and are an even number of dimensions wide, KV heads divide the heads). FormatError
 * `bad-value` names the first bad field, `limit` the first size past its limit.
 */
export function parseHfBitnetConfig(text: string): HfBitnetConfig {
  const cfg = parseJson(text, { maxDepth: MAX_HF_CONFIG_DEPTH, label: "hf-bitnet" });
  if (!isJsonObject(cfg)) {
    fail("bad-value", `config.json is ${describeJson(cfg)}, not an object`);
  }
  const archs = field(cfg, "architectures");
  const architectures = Array.isArray(archs) ? archs.filter((a): a is string => typeof a === "string") : [];
  if (!architectures.some((a) => ARCHITECTURES.includes(a))) {
    fail("bad-value", `config.json "architectures" must name ${ARCHITECTURES.join(" or ")}`);
  }
  const heads = size(cfg, "num_attention_heads");
  const kvHeads = cfg.has("num_key_value_heads") ? size(cfg, "num_key_value_heads") : heads;
  const hiddenSize = size(cfg, "hidden_size");
  if (hiddenSize % heads !== 0 || heads % kvHeads !== 0) {
    fail("bad-value", `hidden_size ${hiddenSize}, ${heads} heads and ${kvHeads} KV heads do not divide evenly`);
  }
  if ((hiddenSize / heads) % 2 !== 0) {
    fail("bad-value", `${hiddenSize} wide with ${heads} heads gives heads ${hiddenSize / heads} wide; rotary embedding needs pairs`);
  }
  const tie = cfg.get("tie_word_embeddings");
  if (tie !== undefined && typeof tie !== "boolean") {
    fail("bad-value", `config.json "tie_word_embeddings" is ${describeJson(tie)}, not a boolean`);
  }
  return {
    architectures,
    modelType: oneOf(cfg, "model_type", ["bitnet", "llama"]),
    hiddenSize,
    intermediateSize: size(cfg, "intermediate_size"),
    numHiddenLayers: size(cfg, "num_hidden_layers"),
    numAttentionHeads: heads,
    numKeyValueHeads: kvHeads,
    vocabSize: size(cfg, "vocab_size"),
    maxPositionEmbeddings: size(cfg, "max_position_embeddings"),
    rmsNormEps: positiveNumber(cfg, "rms_norm_eps"),
    ropeTheta: positiveNumber(cfg, "rope_theta"),
    hiddenAct: oneOf(cfg, "hidden_act", ["relu2", "silu"]),
    tieWordEmbeddings: tie,
    quantization: quantization(cfg),
  };
}

/** Logical shape barbell expects for a tensor (PyTorch order), from the config. */
function expectedShape(name: string, c: HfBitnetConfig): readonly number[] {
  const kvDim = (c.hiddenSize / c.numAttentionHeads) * c.numKeyValueHeads;
  const base = name.replace(/^blk\.[0-9]+\./, "").replace(/\.weight$/, "");
  const shapes: Record<string, readonly number[]> = {
    token_embd: [c.vocabSize, c.hiddenSize],
    output: [c.vocabSize, c.hiddenSize],
    output_norm: [c.hiddenSize],
    attn_norm: [c.hiddenSize],
    ffn_norm: [c.hiddenSize],
    attn_sub_norm: [c.hiddenSize],
    ffn_sub_norm: [c.intermediateSize],
    attn_q: [c.hiddenSize, c.hiddenSize],
    attn_k: [kvDim, c.hiddenSize],
    attn_v: [kvDim, c.hiddenSize],
    attn_output: [c.hiddenSize, c.hiddenSize],
    ffn_gate: [c.intermediateSize, c.hiddenSize],
    ffn_up: [c.intermediateSize, c.hiddenSize],
    ffn_down: [c.hiddenSize, c.intermediateSize],
  };
  return shapes[base] ?? [];
}

const same = (a: readonly number[], b: readonly number[]): boolean =>
  a.length === b.length && a.every((d, i) => d === b[i]);

function describeShapes(info: SafetensorsTensorInfo, name: string, want: readonly number[]): string {
  const has = info.shape.join(", ");
  return `tensor "${info.name}" (${name}) has shape [${has}]; config.json implies [${want.join(", ")}]`;
}

async function decodeFloats(store: SafetensorsTensorStore, info: SafetensorsTensorInfo): Promise<Float32Array> {
  if (!FLOAT_DTYPES.has(info.dtype) || info.elementCount === 0) {
    fail("bad-tensor-type", `tensor "${info.name}" is ${info.dtype} with ${info.elementCount} elements`);
  }
  return DECODE[info.dtype as keyof typeof DECODE].decode(await store.tensorData(info), 1, info.elementCount);
}

function ternaryTensor(
  store: SafetensorsTensorStore,
  info: SafetensorsTensorInfo,
  name: string,
  shape: readonly [number, number],
  config: HfBitnetConfig,
): HfTernaryTensor {
  const [out, inF] = shape;
  const base = { kind: "ternary" as const, name, hfName: info.name, shape, dtype: info.dtype };
  if (FLOAT_DTYPES.has(info.dtype)) {
    if (!same(info.shape, shape)) {
      fail("bad-dims", describeShapes(info, name, shape));
    }
    const load = async (): Promise<HfTernaryValues> => {
      const q = absmeanTernarize(await decodeFloats(store, info));
      if (!q.ok) {
        fail("bad-value", `tensor "${info.name}": ${q.error.message}`);
      }
      return { trits: q.value.values, scale: q.value.scale };
    };
    return { ...base, storage: "master", load };
  }
  if (info.dtype !== "U8") {
    fail("bad-tensor-type", `projection "${info.name}" is ${info.dtype}; barbell reads U8 (packed), BF16, F16, F32`);
  }
  const packedShape = [out / 4, inF];
  if (out % 4 !== 0 || !same(info.shape, packedShape)) {
    fail("bad-dims", `${describeShapes(info, name, packedShape)} (packed uint8: [out/4, in])`);
  }
  const scaleInfo = store.tensor(info.name.replace(/weight$/, "weight_scale"));
  if (scaleInfo === undefined) {
    fail("bad-value", `packed tensor "${info.name}" has no "${info.name}_scale" tensor`);
  }
  if (scaleInfo.elementCount !== 1 || scaleInfo.shape.length > 1) {
    fail("bad-dims", `"${scaleInfo.name}" has shape [${scaleInfo.shape.join(", ")}]; a per-tensor scale is [1] or []`);
  }
  const linearClass = config.quantization?.linearClass;
  if (linearClass === undefined) {
    fail("bad-value", `packed tensor "${info.name}" needs config.json quantization_config.linear_class`);
  }
  const load = async (): Promise<HfTernaryValues> => {
    const [ws = Number.NaN] = await decodeFloats(store, scaleInfo);
    if (!Number.isFinite(ws) || ws <= 0) {
      fail("bad-value", `"${scaleInfo.name}" is ${ws}; a weight scale must be positive and finite`);
    }
    const values = QUANT_TRAITS.hf_packed.decode(await store.tensorData(info), out, inF);
    const trits = Int8Array.from(values);
    return { trits, scale: linearClass === "autobitlinear" ? ws : Math.fround(1 / ws) };
  };
  return { ...base, storage: "packed", load };
}

/** Maps the checkpoint's tensors to barbell names and checks shapes, dtypes and completeness against `config`. */
export function describeHfBitnetTensors(
  store: SafetensorsTensorStore,
  config: HfBitnetConfig,
): { tensors: Map<string, HfBitnetTensor>; unused: string[]; tiedOutput: boolean } {
  const tensors = new Map<string, HfBitnetTensor>();
  const unused: string[] = [];
  const hasHead = store.tensor("lm_head.weight") !== undefined;
  const tiedOutput = config.tieWordEmbeddings ?? !hasHead;
  for (const info of store.tensors) {
    const name = hfToBarbellName(info.name);
    const layer = Number(/^blk\.([0-9]+)\./.exec(name ?? "")?.[1] ?? 0);
    if (name === undefined || (name === "output.weight" && tiedOutput)) {
      const scaleOf = info.name.endsWith(".weight_scale") ? store.tensor(info.name.replace(/_scale$/, "")) : undefined;
      if (scaleOf?.dtype !== "U8") {
        unused.push(info.name);
      }
      continue;
    }
    if (layer >= config.numHiddenLayers) {
      fail("bad-value", `tensor "${info.name}" is for layer ${layer}; config.json has ${config.numHiddenLayers}`);
    }
    const prior = tensors.get(name);
    if (prior !== undefined) {
      fail("duplicate", `tensors "${prior.hfName}" and "${info.name}" both map to ${name}`);
    }
    const shape = expectedShape(name, config);
    const [out = 0, inF = 0] = shape;
    if (PROJECTIONS.has(name.replace(/^blk\.[0-9]+\./, "").replace(/\.weight$/, ""))) {
      tensors.set(name, ternaryTensor(store, info, name, [out, inF], config));
      continue;
    }
    if (!FLOAT_DTYPES.has(info.dtype)) {
      fail("bad-tensor-type", `tensor "${info.name}" is ${info.dtype}; barbell reads BF16, F16 and F32 here`);
    }
    if (!same(info.shape, shape)) {
      fail("bad-dims", describeShapes(info, name, shape));
    }
    const load = (): Promise<Float32Array> => decodeFloats(store, info);
    tensors.set(name, { kind: "float", name, hfName: info.name, shape, dtype: info.dtype, load });
  }
  const required = ["token_embd.weight", "output_norm.weight", ...(tiedOutput ? [] : ["output.weight"])];
  const perLayer = [...new Set(Object.values(LAYER_NAMES))];
  for (let l = 0; l < config.numHiddenLayers; l++) {
    required.push(...perLayer.map((n) => `blk.${l}.${n}`));
  }
  const missing = required.filter((n) => !tensors.has(n));
  if (missing.length > 0) {
    const more = missing.length > 5 ? ` and ${missing.length - 5} more` : "";
    fail("bad-value", `the checkpoint lacks ${missing.slice(0, 5).join(", ")}${more}`);
  }
  return { tensors, unused, tiedOutput };
}

/** The bytes of a `config.json` checked and parsed: at most MAX_HF_CONFIG_BYTES of UTF-8, then parseHfBitnetConfig. */
export function hfBitnetConfigFromBytes(bytes: Uint8Array): HfBitnetConfig {
  if (bytes.length > MAX_HF_CONFIG_BYTES) {
    fail("limit", `config.json is ${bytes.length} bytes; the limit is ${MAX_HF_CONFIG_BYTES}`);
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    fail("bad-utf8", "config.json is not valid UTF-8");
  }
  return parseHfBitnetConfig(text);
}

/**
 * A BitNet model over an opened tensor store (a folder's weights, or safetensors bytes in memory) and its checked
 * config: describes every tensor barbell needs without reading tensor data. The folder owns `store` from here
 * on: closing it closes the store, and a failure closes the store before it is thrown.
 */
export async function hfBitnetFromStore(config: HfBitnetConfig, store: SafetensorsTensorStore): Promise<HfBitnetFolder> {
  try {
    const { tensors, unused, tiedOutput } = describeHfBitnetTensors(store, config);
    const close = (): Promise<void> => store.close();
    return { config, tiedOutput, tensors, unused, store, close, [Symbol.asyncDispose]: close };
  } catch (e) {
    await store.close();
    throw e;
  }
}

/**
 * Opens a Hugging Face BitNet folder: checks `config.json` (a regular file of at most MAX_HF_CONFIG_BYTES), opens
 * `model.safetensors` (or the shards of `model.safetensors.index.json`), and describes every tensor barbell needs
 * without reading tensor data. Throws FormatError naming the field, tensor or shapes for anything barbell cannot
 * run, FileError for a config.json that is missing, not a regular file or too large.
 */
export async function readHfBitnetFolder(dir: string): Promise<HfBitnetFolder> {
  const raw = await readRegularFile(join(dir, "config.json"), MAX_HF_CONFIG_BYTES, "[hf-bitnet] model config");
  const config = hfBitnetConfigFromBytes(raw);
  return hfBitnetFromStore(config, await openSafetensorsFolder(dir));
}

/** A folder's tokenizer files as parsed JSON (each undefined when absent) and its chat template. */
export interface HfTokenizerFiles {
  readonly tokenizerJson: unknown;
  readonly tokenizerConfig: unknown;
  readonly chatTemplate: string | undefined;
}

/**
 * Reads a Hugging Face folder's tokenizer.json and tokenizer_config.json (each at most MAX_HF_TOKENIZER_BYTES) and
 * its chat template: tokenizer_config.json's `chat_template` (a string, or HF's list of named templates: the
 * "default" one), else a `chat_template.jinja` file. The one reader of these files (loading, convert, export).
 */
export async function readHfTokenizerFiles(dir: string, label: string): Promise<HfTokenizerFiles> {
  const tokenizerJson = await readOptionalJson(join(dir, "tokenizer.json"), MAX_HF_TOKENIZER_BYTES, `${label} tokenizer file`);
  const tokenizerConfig = await readOptionalJson(join(dir, "tokenizer_config.json"), MAX_HF_TOKENIZER_BYTES, `${label} tokenizer config`);
  const t = typeof tokenizerConfig === "object" && tokenizerConfig !== null && "chat_template" in tokenizerConfig ? tokenizerConfig.chat_template : undefined;
  if (typeof t === "string") {
    return { tokenizerJson, tokenizerConfig, chatTemplate: t };
  }
  if (Array.isArray(t)) {
    const named = t.find((x: unknown) => typeof x === "object" && x !== null && "name" in x && x.name === "default");
    const template = typeof named === "object" && named !== null && "template" in named ? named.template : undefined;
    if (typeof template === "string") {
      return { tokenizerJson, tokenizerConfig, chatTemplate: template };
    }
  }
  try {
    const bytes = await readRegularFile(join(dir, "chat_template.jinja"), MAX_HF_TOKENIZER_BYTES, `${label} chat template`);
    return { tokenizerJson, tokenizerConfig, chatTemplate: bytes.toString("utf8") };
  } catch (e) {
    if (e instanceof FileError && e.code === "missing") {
      return { tokenizerJson, tokenizerConfig, chatTemplate: undefined };
    }
    throw e;
  }
}

