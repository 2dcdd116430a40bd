/**
 * Limits on what a GGUF header may declare. Every GGUF byte is hostile: each limit names the threat it
 * blocks. They are generous for real models (the 2B-4T header is about 8 MB: 128,256 tokens, 280,147 merges).
 */

/** First header window read from a source; doubled as needed. Keeps small files to one read. */
export const INITIAL_HEADER_WINDOW = 1 << 20;

/** Largest header (metadata + tensor infos) held in memory — bounds memory for a file claiming a giant header. */
export const MAX_HEADER_BYTES = 256 * 1024 * 1024;

/** Longest string value (chat templates, embedded tokenizer.json) — bounds a single allocation and decode. */
export const MAX_STRING_BYTES = 64 * 1024 * 1024;

/** Longest metadata key; gguf.md says keys fit in 65,535 bytes — stops key strings used as memory bombs. */
export const MAX_KEY_BYTES = 65_535;

/** Elements in one metadata array (vocabularies reach ~260k, merges ~300k) — bounds array allocation (CWE-789). */
export const MAX_ARRAY_LENGTH = 1 << 24;

/** Nesting depth of arrays inside arrays — the value parser recurses, so this prevents stack exhaustion (CWE-674). */
export const MAX_ARRAY_DEPTH = 4;

/** Metadata key/value pairs in one file — bounds the KV loop and map size (CWE-770). */
export const MAX_KV_COUNT = 1 << 20;

/** Tensors in one file (large MoE models have a few thousand) — bounds the tensor-info loop (CWE-770). */
export const MAX_TENSOR_COUNT = 1 << 20;

/** Dimensions per tensor: GGML_MAX_DIMS — more would index past ggml's fixed ne[4] array. */
export const MAX_DIMS = 4;

/** Bytes in a tensor name: GGML_MAX_NAME (gguf.md: "at most 64 bytes") — consumers copy names into fixed buffers. */
export const MAX_TENSOR_NAME_BYTES = 64;

/** Largest `general.alignment` — a huge alignment pushes the data section (and padding) beyond any real file. */
export const MAX_ALIGNMENT = 1 << 20;

/** Alignment when `general.alignment` is absent (gguf.md `GGUF_DEFAULT_ALIGNMENT`). */
export const DEFAULT_ALIGNMENT = 32;

/** Smallest KV pair: key length u64, value type u32, one value byte — rejects KV counts that cannot fit. */
export const MIN_KV_BYTES = 8 + 4 + 1;

/** Smallest encoding of one tensor info: name length u64, n_dims u32, one dim u64, type u32, offset u64. */
export const MIN_TENSOR_INFO_BYTES = 8 + 4 + 8 + 4 + 8;
