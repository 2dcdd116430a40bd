/** safetensors: read, write and shard Hugging Face tensor files. */
export * from "./types.js";
export * from "./limits.js";
export * from "./json.js";
export * from "./reader.js";
export * from "./sharded.js";
export * from "./writer.js";
