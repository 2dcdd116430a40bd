/** GGUF: read, write and inspect ggml model files. */
export * from "./types.js";
export * from "./limits.js";
export * from "./ggml-types.js";
export * from "./metadata.js";
export * from "./source.js";
export * from "./file-source.js";
export * from "./reader.js";
export * from "./writer.js";
