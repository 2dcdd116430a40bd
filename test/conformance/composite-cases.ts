/**
 * Inputs for the composite ops of the op table (attention, bitnetBlock, bitnetBlockBatch) at the
 * TensorRef level, allocated on a given backend, so fused.test.ts can run a backend's fused kernel and
 * the table's decomposition of it on the same data.
 */
import type { Backend, BitnetBlockParams, BitnetBlockWeights, BufferHandle, StorageDType, TensorRef } from "../../src/backends/backend.js";
import { storageBytes } from "../../src/backends/storage.js";
import { packTernary } from "../../src/quant/layouts.js";
import { floats, rng } from "./cases.js";

export interface BlockShape {
  readonly name: string;
  /** Rows of h: the step's tokens (bitnetBlock) or the batch's sequences (bitnetBlockBatch). */
  readonly seq: number;
  readonly embed: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly ffn: number;
  readonly activation: "relu2" | "silu";
  /** bitnetBlock: rows already in the cache (pos0). bitnetBlockBatch: one per sequence. */
  readonly filled: readonly number[];
  readonly capacity: number;
  readonly seed: number;
}

export const BLOCK_SHAPES: readonly BlockShape[] = [
  { name: "prefill 4, ReLU², grouped KV", seq: 4, embed: 64, heads: 4, kvHeads: 2, headDim: 16, ffn: 96, activation: "relu2", filled: [0], capacity: 8, seed: 1 },
  { name: "second chunk 3 at 5, SiLU, MHA", seq: 3, embed: 64, heads: 2, kvHeads: 2, headDim: 32, ffn: 160, activation: "silu", filled: [5], capacity: 12, seed: 2 },
  { name: "decode 1 at 9, ReLU²", seq: 1, embed: 96, heads: 3, kvHeads: 1, headDim: 32, ffn: 128, activation: "relu2", filled: [9], capacity: 10, seed: 3 },
];

export const BATCH_SHAPES: readonly BlockShape[] = [
  { name: "3 sequences at 2, 0, 5, SiLU, grouped KV", seq: 3, embed: 64, heads: 4, kvHeads: 2, headDim: 16, ffn: 96, activation: "silu", filled: [2, 0, 5], capacity: 8, seed: 4 },
  { name: "2 sequences at 7, 1, ReLU²", seq: 2, embed: 64, heads: 2, kvHeads: 2, headDim: 32, ffn: 128, activation: "relu2", filled: [7, 1], capacity: 8, seed: 5 },
];

/** One set of block inputs on a backend; `free()` releases every buffer. */
export interface BlockInputs {
  readonly h: TensorRef;
  readonly positions: TensorRef;
  readonly kCaches: readonly TensorRef[];
  readonly vCaches: readonly TensorRef[];
  readonly weights: BitnetBlockWeights;
  readonly params: BitnetBlockParams;
  readonly out: TensorRef;
  free(): void;
}

/**
 * Builds the inputs of one shape on `backend`, from the shape's seed (so two calls give identical data):
 * one cache pair per entry of `filled`, whose first rows hold earlier keys and values.
 */
export function blockInputs(backend: Backend, s: BlockShape): BlockInputs {
  const r = rng(s.seed);
  const buffers: BufferHandle[] = [];
  const ref = (dtype: StorageDType, shape: number[], data?: ArrayBufferView, scale?: number): TensorRef => {
    const buffer = backend.alloc(storageBytes(dtype, shape));
    buffers.push(buffer);
    if (data !== undefined) {
      backend.write(buffer, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    }
    return scale === undefined ? { buffer, dtype, shape } : { buffer, dtype, shape, scale };
  };
  const norm = (n: number): TensorRef => ref("f32", [n], Float32Array.from({ length: n }, () => 1 + (r() - 0.5) * 0.2));
  const ternary = (rows: number, cols: number): TensorRef =>
    ref("ternary", [rows, cols], packTernary(Int8Array.from({ length: rows * cols }, () => Math.floor(r() * 3) - 1), rows, cols), 0.02 + r() * 0.05);
  const q = s.heads * s.headDim;
  const kv = s.kvHeads * s.headDim;
  const weights: BitnetBlockWeights = {
    attnNorm: norm(s.embed),
    attnSubNorm: norm(q),
    ffnNorm: norm(s.embed),
    ffnSubNorm: norm(s.ffn),
    wq: ternary(q, s.embed),
    wk: ternary(kv, s.embed),
    wv: ternary(kv, s.embed),
    wo: ternary(s.embed, q),
    wGate: ternary(s.ffn, s.embed),
    wUp: ternary(s.ffn, s.embed),
    wDown: ternary(s.embed, s.ffn),
  };
  const cache = (filled: number): TensorRef => {
    const data = new Float32Array(s.capacity * kv);
    data.set(floats(r, filled * kv, 2));
    return ref("f32", [s.capacity, s.kvHeads, s.headDim], data);
  };
  // One cache: the rows continue it from pos0. A batch: row b sits at the end of cache b.
  const pos0 = s.filled[0] ?? 0;
  const positions = s.filled.length === 1 ? Int32Array.from({ length: s.seq }, (_, i) => pos0 + i) : Int32Array.from(s.filled);
  return {
    h: ref("f32", [s.seq, s.embed], floats(r, s.seq * s.embed, 3)),
    positions: ref("i32", [s.seq], positions),
    kCaches: s.filled.map(cache),
    vCaches: s.filled.map(cache),
    weights,
    params: {
      heads: s.heads,
      kvHeads: s.kvHeads,
      headDim: s.headDim,
      eps: 1e-5,
      ropeTheta: 10000,
      attnScale: 1 / Math.sqrt(s.headDim),
      activation: s.activation,
    },
    out: ref("f32", [s.seq, s.embed]),
    free: () => buffers.forEach((b) => backend.free(b)),
  };
}

/** The bytes of a tensor as f32 values. */
export function f32Of(backend: Backend, t: TensorRef): Float32Array {
  const bytes = backend.read(t.buffer);
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

/** The bytes of a tensor as f32 values, read back asynchronously (any memory, a device's included). */
export async function f32OfAsync(backend: Backend, t: TensorRef): Promise<Float32Array> {
  const bytes = await backend.readAsync(t.buffer);
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}
