/**
 * A model from GGUF bytes, without the file system: what `loadModel` does for a GGUF file (config, tokenizer,
 * chat template, weights on a backend, then a `BitnetModel`), over any `ByteSource` (a browser `File` through
 * `BlobSource`, bytes in memory through `MemorySource`). Imports nothing from Node, so pages can bundle it
 * (the demo page, src/ui); `loadModel` (model.ts) opens the file and calls `loadedFromGguf` here.
 */
import type { Backend } from "../backends/backend.js";
import { UsageError } from "../core/errors.js";
import { readGguf, type GgufFile } from "../formats/gguf/reader.js";
import { BlobSource, MemorySource, type BlobLike, type ByteSource } from "../formats/gguf/source.js";
import { ggufWeightSource } from "../model/bitnet/gguf-source.js";
import type { KvCacheDType } from "../model/bitnet/kv-cache.js";
import { loadWeights, type HeadPolicy, type LoadWeightsOptions } from "../model/bitnet/weights.js";
import { BitnetModel, DEFAULT_CONTEXT } from "./bitnet-model.js";
import { ggufHeader } from "./header.js";
import type { LoadedModel } from "./loaded.js";

/** How the weights are loaded and how large the KV cache is; `loadModel` takes these too. */
export interface ModelLoadOptions {
  /** KV-cache capacity in positions; default min(model context, 4096). */
  readonly contextLength?: number;
  /**
   * Element type of the KV cache (llama.cpp's `-ctk/-ctv`): "f32" (default), "f16" or "q8_0" (needs a CPU backend;
   * q8_0 a head dim that is a multiple of 32). docs/kv-cache.md gives each one's cost and accuracy.
   */
  readonly kvCacheType?: KvCacheDType;
  /** Run projections that are not ternary as float matmuls instead of refusing the file. */
  readonly allowFloatWeights?: boolean;
  /** A float embedding/head: "auto" (default), "keep", "q8_0" or "q6_k" (LoadWeightsOptions.headType; docs/heads.md). */
  readonly headType?: HeadPolicy;
  /** Loading progress in bytes of tensor data. */
  readonly onProgress?: (done: number, total: number) => void;
}

export interface GgufModelOptions extends ModelLoadOptions {
  /** The backend the weights go to and the model runs on (a dispatcher; no registry lookup here). */
  readonly backend: Backend;
  /** The model's name in messages (a file name); default "the GGUF bytes". */
  readonly name?: string;
}

/** The weight-loading options of `options`, for `backend`. */
export function weightOptions(backend: Backend, options: ModelLoadOptions): LoadWeightsOptions {
  return {
    backend,
    ...(options.allowFloatWeights === undefined ? {} : { allowFloatWeights: options.allowFloatWeights }),
    ...(options.headType === undefined ? {} : { headType: options.headType }),
    ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
  };
}

/** A parsed GGUF's config, tokenizer (when the file has one), chat template and weights (loaded onto `backend`). */
export async function loadedFromGguf(file: GgufFile, backend: Backend, options: ModelLoadOptions, source: string): Promise<LoadedModel> {
  const { config, tokenizer, chatTemplate } = ggufHeader(file);
  const weights = await loadWeights(ggufWeightSource(file), config, weightOptions(backend, options));
  return { config, weights, tokenizer, chatTemplate, backend, source };
}

/** A model over a loaded file, with its KV cache (`contextLength`, default min(model context, 4096)). */
export function modelFromLoaded(loaded: LoadedModel, contextLength: number | undefined, kvCacheType?: KvCacheDType): BitnetModel {
  try {
    return new BitnetModel(loaded, contextLength ?? Math.min(loaded.config.contextLength, DEFAULT_CONTEXT), kvCacheType);
  } catch (e) {
    loaded.weights.dispose();
    throw e;
  }
}

/**
 * Loads a BitNet model from GGUF bytes: a `ByteSource`, a Blob (a browser `File`; read range by range) or a
 * Uint8Array. The same model `loadModel` makes from a file, on the backend given. A source passed in stays the
 * caller's (not closed here).
 */
export async function loadGgufModel(bytes: ByteSource | BlobLike | Uint8Array, options: GgufModelOptions): Promise<BitnetModel> {
  if (options.backend === undefined) {
    throw new UsageError("unsupported", "[model] loadGgufModel needs a backend (loadModel resolves one from the registry)");
  }
  const source: ByteSource = bytes instanceof Uint8Array ? new MemorySource(bytes) : "read" in bytes ? bytes : new BlobSource(bytes);
  const file = await readGguf(source);
  const loaded = await loadedFromGguf(file, options.backend, options, options.name ?? "the GGUF bytes");
  return modelFromLoaded(loaded, options.contextLength, options.kvCacheType);
}
