/**
 * barbell: a TypeScript runtime for 1-bit and 1.58-bit (BitNet) language models.
 * This file is the public surface; everything else is internal.
 */
export * from "./tensor/index.js";
export { BarbellError, ShapeError, ValueError, UsageError, FormatError, BackendError, FileError, type FileErrorCode } from "./core/errors.js";
export { ok, err, unwrap, type Result, type Ok, type Err } from "./core/result.js";
export type { Backend, Kernels, TensorRef, BufferHandle, DenseDType } from "./backends/backend.js";
export { createJsBackend } from "./backends/js/index.js";

// Models: load, tokenize, generate, chat, logits.
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
export type {
  GenerateOptions,
  Generation,
  GeneratedToken,
  GenerationResult,
  FinishReason,
} from "./engine/generate.js";
// Structured output: grammar / jsonSchema / json options of generate and chat (docs/grammar.md).
export {
  GRAMMAR_CACHE_SIZE,
  type StructuredOptions,
  type StructuredGeneration,
  type StructuredResult,
  type SchemaValue,
  type JsonObject,
} from "./engine/structured.js";
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
export type { FromSchema, JSONSchema } from "json-schema-to-ts";
export type { BitnetConfig, BitnetArch } from "./model/bitnet/config.js";
export { ContextFullError } from "./model/bitnet/kv-cache.js";
// The small model barbell ships (models/barbell-kjv.gguf): `loadModel(defaultModelPath())` runs with nothing downloaded.
export { defaultModelPath, DefaultModelError } from "./cli/default-model.js";
export type { ChatMessage, ChatRole } from "./model/chat/index.js";
export type { SamplingOptions } from "./model/sampling/index.js";
export type { Tokenizer, StreamDecoder, EncodeOptions, DecodeOptions } from "./model/tokenizer/types.js";
export { tokenizerFromGguf, tokenizerFromJson } from "./model/tokenizer/index.js";

// Files: GGUF and safetensors readers/writers, fixtures.
export { openGguf, readGguf, readGgufBytes, writeGguf, type GgufFile, type GgufTensorInfo } from "./formats/gguf/index.js";
export { openSafetensors, readSafetensorsBytes, writeSafetensors } from "./formats/safetensors/index.js";
export { makeBitnetFixture, type BitnetFixtureOptions } from "./model/bitnet/fixture.js";
export { writeHfBitnetFixture, type HfBitnetFixtureOptions } from "./model/bitnet/hf-fixture.js";

// Actors: typed actor runtime with supervision and worker/process isolation (docs/actors.md).
export * as actors from "./actors/index.js";
export { ActorError, createActorSystem, defineActor, type ActorRef, type ActorSystem } from "./actors/index.js";

// Serving: the model actor (a supervised worker, in-process or in a child process), fault injection, the cascade router.
export * as serve from "./serve/index.js";
export { modelActor, cascadeRouter, ServeError, type ModelMsg, type ModelRequest, type ModelOutput, type ModelStatus } from "./serve/index.js";

// Continuous batching: many generations sharing decode steps (model.batcher()).
export { Batcher, type BatcherOptions, type BatcherStats } from "./engine/batch.js";
// Multi-turn chat keeping its KV cache (model.chatSession()); exact reuse of prompt prefixes across requests.
export { ChatSession, CHAT_REPLY_ROOM, CHAT_TRIM_TARGET, type ChatSessionOptions, type ChatTrim } from "./engine/chat-session.js";
export { PromptCache, DEFAULT_PROMPT_CACHE_MIB, type PromptCacheStats } from "./engine/prompt-cache.js";

// Training: a reverse-mode autograd tape over the typed ops (docs/training.md; in progress).
export * as train from "./train/autograd.js";
