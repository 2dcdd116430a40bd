/**
 * Limits on what one BAREWire frame may declare (docs/barewire.md §Limits). Every byte is hostile: each
 * limit names the threat it blocks. Encoders check the same limits, so a frame barbell writes always decodes.
 *
 * Lengths that the generated codec writes (strings, lists) stay below 16384: @bare-ts/lib 0.4 writes
 * `uint` lengths of 16384 or more wrongly in its u8/f32/u32 array and string writers, so barbell's own
 * code writes the two fields that can be large (`pad` is at most 63, `payload` is written by hand).
 */

/** Payload alignment in bytes, from the first byte of the frame — lets a decoder view the payload as a typed array. */
export const PAYLOAD_ALIGNMENT = 64;

/** Largest frame of any kind (1 GiB) — bounds the one buffer an encoder allocates and a reader must hold. */
export const MAX_FRAME_BYTES = 2 ** 30;

/** Largest header of a tensor or chunk message before its payload — bounds the objects the header decoder allocates. */
export const MAX_HEADER_BYTES = 64 * 1024;

/** Largest dump manifest frame — bounds the token and entry lists a manifest decoder allocates. */
export const MAX_MANIFEST_BYTES = 1024 * 1024;

/** UTF-8 bytes of a tensor, model or backend name — stops names used as memory bombs in maps and messages. */
export const MAX_NAME_BYTES = 1024;

/** UTF-8 bytes of one dimension name — bounds the name comparisons of typed decode. */
export const MAX_DIM_NAME_BYTES = 64;

/** Dimensions per tensor — bounds the shape array and the element-count product loop. */
export const MAX_RANK = 8;

/** Per-tensor scales — bounds the scale array (in-block scales travel inside the payload, not here). */
export const MAX_SCALES = 4096;

/** Tokens recorded in a dump manifest — bounds that list (a dump is a debugging tool, not a corpus). */
export const MAX_DUMP_TOKENS = 8192;

/** Entries of a dump manifest — bounds the entry list and the files a diff opens. */
export const MAX_DUMP_ENTRIES = 8192;

/** Total payload of one chunked tensor (4 GiB) — bounds the one buffer a chunk assembler allocates. */
export const MAX_CHUNKED_TENSOR_BYTES = 2 ** 32;

/** Smallest chunk size other than the last chunk's — stops a sender from splitting a tensor into millions of frames. */
export const MIN_CHUNK_BYTES = 4096;

/** Largest elements count of a tensor — the same ceiling as barbell's own tensors (index arithmetic stays small). */
export const MAX_WIRE_ELEMENTS = 2 ** 31 - 1;
