/**
 * Limits on what a safetensors header or shard index may declare. Every byte is hostile: each limit names the
 * threat it blocks. They are generous for real checkpoints (the 2B-4T header is about 40 KB, 542 tensors).
 */

/** Largest JSON header: the reference implementation's `MAX_HEADER_SIZE` — bounds the one header allocation. */
export const MAX_HEADER_BYTES = 100_000_000;

/** Tensors in one file — bounds the validation loop and the name map (CWE-770). */
export const MAX_TENSOR_COUNT = 1 << 20;

/** Dimensions per tensor (PyTorch allows 64 at most) — bounds the shape array and its product loop. */
export const MAX_DIMS = 64;

/** UTF-8 bytes in a tensor name — stops names used as memory bombs in maps and error messages. */
export const MAX_TENSOR_NAME_BYTES = 4096;

/** Entries in `__metadata__` — bounds the metadata map (CWE-770). */
export const MAX_METADATA_ENTRIES = 1 << 16;

/**
 * JSON nesting depth. A valid header needs 3 (object → tensor entry → `data_offsets`); the parser recurses, so
 * this bounds stack use (CWE-674) for `[[[[…` bombs.
 */
export const MAX_HEADER_JSON_DEPTH = 4;

/** Largest `model.safetensors.index.json` read into memory — bounds that allocation. */
export const MAX_INDEX_BYTES = 64 * 1024 * 1024;

/** Nesting depth of the shard index JSON (needs 2: object → `weight_map` / `metadata`, plus one spare). */
export const MAX_INDEX_JSON_DEPTH = 4;

/** Distinct shard files one index may name — bounds how many files are opened at once (file handles). */
export const MAX_SHARD_COUNT = 4096;
