/**
 * The library entry point: `loadModel(path)` → a model that tokenizes, generates, chats and returns
 * logits. One model runs one sequence at a time; concurrent calls queue. The model class is in
 * bitnet-model.ts and loading from GGUF bytes in load-gguf.ts (neither imports Node); this module adds
 * files and folders and the backend registry.
 */
import type { Backend, BackendName } from "../backends/backend.js";
import type { FallbackEvent } from "../backends/dispatch.js";
import { resolveBackend, type ResolveOptions } from "../backends/registry.js";
import { pathKind } from "../core/files.js";
import { openGguf } from "../formats/gguf/index.js";
import { readHfBitnetFolder, readHfTokenizerFiles } from "../model/bitnet/hf.js";
import type { BitnetConfig } from "../model/bitnet/config.js";
import { configFromHf, hfWeightSource } from "../model/bitnet/hf-source.js";
import { loadWeights } from "../model/bitnet/weights.js";
import { tokenizerFromJson } from "../model/tokenizer/hf-json.js";
import type { Tokenizer } from "../model/tokenizer/types.js";
import type { BitnetModel } from "./bitnet-model.js";
import { ggufConfig, ggufHeader, type ModelHeader } from "./header.js";
import { loadedFromGguf, modelFromLoaded, weightOptions, type ModelLoadOptions } from "./load-gguf.js";
import type { LoadedModel } from "./loaded.js";

export { BitnetModel, DEFAULT_CONTEXT, type ChatOptions, type LogitsOptions } from "./bitnet-model.js";
export { loadGgufModel, type GgufModelOptions, type ModelLoadOptions } from "./load-gguf.js";
export { chatPromptIds, toolFormatOf, type ChatHeader, type ChatPrompt, type ChatPromptOptions, type ModelHeader } from "./header.js";

export interface LoadModelOptions extends ModelLoadOptions {
  /**
   * Backend for the weights and compute. Default: the fastest available chain (see `backends`),
   * resolved by the registry, with the JS reference as the last resort.
   */
  readonly backend?: Backend;
  /** Backends to use, preferred first; default the BARBELL_BACKENDS env var, else all available. */
  readonly backends?: readonly BackendName[];
  /** Make any kernel fallback an error. */
  readonly strict?: boolean;
  /** Kernel threads; default one per physical core. */
  readonly threads?: number;
  /** Tune kernels per shape and cache the choices (default true unless BARBELL_AUTOTUNE=0). */
  readonly autotune?: boolean;
  /** Called once per kernel that falls back to a later backend. */
  readonly onFallback?: (event: FallbackEvent) => void;
  /** Called once per process for each backend that cannot run here, with the reason. */
  readonly onUnavailable?: (name: BackendName, reason: string) => void;
}

/**
 * Loads a BitNet model: a GGUF file (I2_S, TQ1_0, TQ2_0 or float ternary weights) or a Hugging Face
 * folder as downloaded (`config.json`, `model.safetensors` or shards, `tokenizer.json`).
 */
export async function loadModel(path: string, options: LoadModelOptions = {}): Promise<BitnetModel> {
  const backend = options.backend ?? (await resolveBackend(resolveOptions(options)));
  const loaded = (await pathKind(path, "[model] model")) === "folder" ? await loadHfFolder(path, backend, options) : await loadGguf(path, backend, options);
  return modelFromLoaded(loaded, options.contextLength, options.kvCacheType);
}

function resolveOptions(options: LoadModelOptions): ResolveOptions {
  return {
    ...(options.backends === undefined ? {} : { backends: options.backends }),
    ...(options.strict === undefined ? {} : { strict: options.strict }),
    ...(options.threads === undefined ? {} : { threads: options.threads }),
    ...(options.autotune === undefined ? {} : { autotune: options.autotune }),
    ...(options.onFallback === undefined ? {} : { onFallback: options.onFallback }),
    ...(options.onUnavailable === undefined ? {} : { onUnavailable: options.onUnavailable }),
  };
}

async function loadGguf(path: string, backend: Backend, options: LoadModelOptions): Promise<LoadedModel> {
  await using file = await openGguf(path);
  return await loadedFromGguf(file, backend, options, path); // awaited: the file closes after loading
}

/** A Hugging Face folder's tokenizer and chat template (tokenizer.json, tokenizer_config.json, chat_template.jinja). */
export async function readHfTokenizer(dir: string): Promise<{ tokenizer: Tokenizer | undefined; chatTemplate: string | undefined }> {
  const files = await readHfTokenizerFiles(dir, "[model]");
  return {
    tokenizer: files.tokenizerJson === undefined ? undefined : tokenizerFromJson(files.tokenizerJson, files.tokenizerConfig),
    chatTemplate: files.chatTemplate,
  };
}

/**
 * A model's header without its weights: a GGUF's metadata or a Hugging Face folder's config and tokenizer files,
 * read as `loadModel` reads them (the server validates requests against it before a worker has loaded the model).
 */
/** A model's config alone, from its GGUF header or config.json: no tokenizer built, no weights read. */
export async function readModelConfig(path: string): Promise<BitnetConfig> {
  if ((await pathKind(path, "[model] model")) === "folder") {
    await using folder = await readHfBitnetFolder(path);
    return configFromHf(folder);
  }
  await using file = await openGguf(path);
  return ggufConfig(file);
}

export async function readModelHeader(path: string): Promise<ModelHeader> {
  if ((await pathKind(path, "[model] model")) === "folder") {
    await using folder = await readHfBitnetFolder(path);
    return { config: configFromHf(folder), ...(await readHfTokenizer(path)) };
  }
  await using file = await openGguf(path);
  return ggufHeader(file);
}

async function loadHfFolder(dir: string, backend: Backend, options: LoadModelOptions): Promise<LoadedModel> {
  await using folder = await readHfBitnetFolder(dir);
  const config = configFromHf(folder);
  const { tokenizer, chatTemplate } = await readHfTokenizer(dir);
  const weights = await loadWeights(hfWeightSource(folder), config, weightOptions(backend, options));
  return {
    config,
    weights,
    tokenizer,
    chatTemplate,
    backend,
    source: dir,
  };
}
