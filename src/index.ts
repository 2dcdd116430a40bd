/**
 * barbell: a TypeScript runtime for 1-bit and 1.58-bit (BitNet) language models.
 * This file is the public surface (`barbell`); the subpaths named at its end hold the rest a user may want.
 */
/** Typed tensors: `tensor`, the dtypes, and every op with its compile-time dimension checks (docs/architecture.md). */
export * from "./tensor/index.js";
/** The error classes every API throws (each with a `code`). */
export { BarbellError, ShapeError, ValueError, UsageError, FormatError, BackendError, FileError, type FileErrorCode } from "./core/errors.js";
/** A value or a typed error, for APIs whose failure is an expected outcome. */
export { ok, err, unwrap, type Result, type Ok, type Err } from "./core/result.js";
/** The backend interface a tensor's kernels run on (for writing or inspecting a backend). */
export type { Backend, BackendName, Kernels, TensorRef, BufferHandle, DenseDType } from "./backends/backend.js";
/** The JS reference backend, which every other backend is tested against. */
export { createJsBackend } from "./backends/js/index.js";
/** The backends barbell knows, and a probe of which of them run here. */
export { BACKEND_NAMES, probeAll, type ProbeReport } from "./backends/registry.js";

/** Models: load a GGUF file or Hugging Face folder, then tokenize, generate, chat, or read logits. */
export {
  loadModel,
  loadGgufModel,
  BitnetModel,
  DEFAULT_CONTEXT,
  type LoadModelOptions,
  type GgufModelOptions,
  type ChatOptions,
  type LogitsOptions,
} from "./engine/model.js";
/** KV cache element types (`kvCacheType` of LoadModelOptions; docs/kv-cache.md). */
export { KV_CACHE_DTYPES, parseKvCacheDType, type KvCacheDType } from "./model/bitnet/kv-cache.js";
/** Generation options, the streamed tokens and the final result. */
export type {
  GenerateOptions,
  Generation,
  GeneratedToken,
  GenerationResult,
  FinishReason,
} from "./engine/generate.js";
/** Structured output: the grammar / jsonSchema / json options of generate and chat (docs/grammar.md). */
export {
  GRAMMAR_CACHE_SIZE,
  type StructuredOptions,
  type StructuredGeneration,
  type StructuredResult,
  type SchemaValue,
  type JsonObject,
} from "./engine/structured.js";
/** Grammars: compile GBNF or a JSON Schema once and pass it to generate or chat. */
export {
  Grammar,
  GrammarError,
  GrammarIncompleteError,
  compileGbnf,
  compileJsonSchema,
  jsonSchemaToGbnf,
  type GrammarErrorCode,
  type GrammarIncompleteReason,
} from "./model/grammar/index.js";
/** The JSON Schema type and the type a schema describes (from json-schema-to-ts), for typed parsed results. */
export type { FromSchema, JSONSchema } from "json-schema-to-ts";
/** A model's hyperparameters, as read from its header. */
export type { BitnetConfig, BitnetArch } from "./model/bitnet/config.js";
/** Thrown when a sequence would outgrow its KV cache's context. */
export { ContextFullError } from "./model/bitnet/kv-cache.js";
/** The small model barbell ships (models/barbell-kjv.gguf): `loadModel(defaultModelPath())` runs with nothing downloaded. */
export { defaultModelPath, DefaultModelError } from "./cli/default-model.js";
/** A chat turn and its role. */
export type { ChatMessage, ChatRole } from "./model/chat/index.js";
/** Temperature, top-k/top-p/min-p, penalties and seed. */
export type { SamplingOptions } from "./model/sampling/index.js";
/** The tokenizer a model carries (model.tokenizer), and its streaming decoder. */
export type { Tokenizer, StreamDecoder, EncodeOptions, DecodeOptions } from "./model/tokenizer/types.js";
/** A tokenizer on its own, from a GGUF file or a Hugging Face tokenizer.json. */
export { tokenizerFromGguf, tokenizerFromJson } from "./model/tokenizer/index.js";

/** GGUF: open (lazy, by offset), read, read from bytes, and write GGUF files. */
export { openGguf, readGguf, readGgufBytes, writeGguf, type GgufFile, type GgufTensorInfo } from "./formats/gguf/index.js";
/** safetensors: open, read from bytes, and write. */
export { openSafetensors, readSafetensorsBytes, writeSafetensors } from "./formats/safetensors/index.js";
/** BAREWire, barbell's typed binary format for tensors and messages (docs/barewire.md), as one namespace. */
export * as barewire from "./formats/barewire/index.js";

/** Continuous batching: many generations sharing decode steps (model.batcher()). */
export { Batcher, type BatcherOptions, type BatcherStats } from "./engine/batch.js";
/** Multi-turn chat keeping its KV cache (model.chatSession()), and how it trims old turns. */
export { ChatSession, CHAT_REPLY_ROOM, CHAT_TRIM_TARGET, type ChatSessionOptions, type ChatTrim } from "./engine/chat-session.js";
/** Exact reuse of prompt prefixes' KV rows across requests, within a byte budget. */
export { PromptCache, DEFAULT_PROMPT_CACHE_MIB, type PromptCacheStats } from "./engine/prompt-cache.js";

/** Training: a reverse-mode autograd tape over the typed ops (docs/training.md; in progress). */
export * as train from "./train/autograd.js";

// Elsewhere: the actor runtime is `barbell/actors` (docs/actors.md), serving (the model actor, its host,
// fault injection, the cascade router) is `barbell/serve`, fixture writers are `barbell/testing`, and the
// browser's WASM SIMD backend is `barbell/wasm-simd`.
