/** BAREWire: barbell's typed binary wire format (docs/barewire.md). */
export * from "./message.js";
export * from "./limits.js";
export { payloadBytes, elementBytes, viewPayload, isWireDType, isStorageDType, type PayloadArray } from "./dtypes.js";
export {
  decodeMessage,
  encodeTensorFrame,
  encodeTensorFrameParts,
  encodeTensorChunks,
  encodeManifest,
  checkHeader,
  uintBytes,
  DEFAULT_CHUNK_BYTES,
  type FrameParts,
  type ChunkOptions,
} from "./wire.js";
export { ChunkAssembler } from "./chunks.js";
export * from "./typed.js";
