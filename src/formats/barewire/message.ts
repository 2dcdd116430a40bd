/**
 * The BAREWire message types as TypeScript sees them (docs/barewire.md, schema/barewire.bare). The
 * tables here are checked against the schema by test/barewire/schema.test.ts.
 */
import { WIRE_DTYPE_ORDER, type WireDTypeName } from "../../quant/dtypes.js";

/** ASCII "BWIR": the first four bytes of every frame. */
export const MAGIC: Uint8Array = Uint8Array.of(0x42, 0x57, 0x49, 0x52);

/** The format version this module reads and writes (u16, little-endian, after the magic). */
export const VERSION = 1;

/** Bytes before the message union: magic (4) and version (2). */
export const PREAMBLE_BYTES = 6;

/** Union tags of `Message`, by variant name. */
export const MESSAGE_TAGS = {
  TensorFrame: 0,
  TensorBegin: 1,
  TensorChunk: 2,
  DumpManifest: 3,
} as const;

/**
 * Element types of a tensor payload, in the order of the schema's `DType` enum (index = wire value): the dtypes with a
 * `wire` value in the dtype table (src/quant/dtypes.ts). schema/barewire.bare and its generated codec keep their own
 * copy of the enum (a schema is the wire's contract; test/barewire/schema.test.ts checks the two agree).
 */
export const WIRE_DTYPES: readonly WireDType[] = WIRE_DTYPE_ORDER;

/** A payload element type: barbell's storage dtypes plus the file block formats i2_s, tq1_0, tq2_0 and q1_0. */
export type WireDType = WireDTypeName;

/** Bits of `TensorHeader.flags`; every other bit must be zero. */
export const FLAGS = {
  /** The tensor is a traced activation (a dump entry), not a weight. */
  activation: 1,
} as const;

/** The mask of all defined flag bits. */
export const KNOWN_FLAGS: number = Object.values(FLAGS).reduce((a, b) => a | b, 0);

/** One named dimension. */
export interface WireDim {
  readonly name: string;
  readonly size: number;
}

/** Everything about a tensor except its bytes. */
export interface WireTensorHeader {
  readonly name: string;
  readonly dtype: WireDType;
  /** Outermost first. */
  readonly dims: readonly WireDim[];
  /** Per-tensor scales: one for ternary and binary, none for the other dtypes. */
  readonly scales: readonly number[];
  readonly flags: number;
}

/** A tensor to encode, or one decoded: its header and its payload bytes in the dtype's layout. */
export interface WireTensor extends WireTensorHeader {
  readonly payload: Uint8Array;
}

/** A decoded message (the schema's `Message` union). Payloads are views into the decoded bytes. */
export type WireMessage =
  | { readonly kind: "tensor"; readonly tensor: WireTensor }
  | {
      readonly kind: "tensor-begin";
      readonly stream: number;
      readonly header: WireTensorHeader;
      readonly totalBytes: number;
      readonly chunkBytes: number;
    }
  | { readonly kind: "tensor-chunk"; readonly stream: number; readonly index: number; readonly payload: Uint8Array }
  | { readonly kind: "dump-manifest"; readonly manifest: DumpManifest };

/** The index of a per-layer activation dump. */
export interface DumpManifest {
  readonly model: string;
  readonly backend: string;
  readonly tokens: readonly number[];
  /** Traced tensor names in forward order; entry i is stored in file `<i>.bw`. */
  readonly entries: readonly string[];
}
