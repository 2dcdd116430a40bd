/** The OpenAI-compatible HTTP server over model actors (docs/serving.md). */
export { createServer, type BarbellServer, type ServerOptions } from "./server.js";
export { spawnServed, type ServedModelConfig, type CascadeConfig, type Served, type Readiness } from "./served.js";
export { Admission } from "./admission.js";
export { ApiError, type ApiErrorBody, type ApiErrorType } from "./errors.js";
export { readModelInfo, chatTokens, type ModelInfo } from "./model-info.js";
export { MAX_N, MAX_STOP, MAX_STOP_LENGTH, MAX_TOP_LOGPROBS, MAX_COMPLETION_LOGPROBS, type ChatParams, type CompletionParams } from "./validate.js";
export { DEFAULT_MAX_TOKENS } from "../../engine/generate.js";
