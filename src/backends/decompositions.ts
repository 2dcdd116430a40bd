/**
 * Decompositions of the composite ops of the op table (ops.ts): what `attention`, `bitnetBlock` and
 * `bitnetBlockBatch` compute, written with other kernels of the contract. They are specifications, not
 * fast paths: conformance (test/conformance/fused.test.ts) runs every backend's fused kernel against its
 * decomposition executed on the same backend's kernels.
 *
 * The block decompositions call the kernels that src/model/bitnet/forward.ts composes, in the same order,
 * so a fused block that runs the same kernels in the same order (native/cpu/block.cc) matches them bit
 * for bit.
 */
import { ShapeError } from "../core/errors.js";
import type { Backend, BitnetBlockParams, BitnetBlockWeights, Kernels, StorageDType, TensorRef } from "./backend.js";
import { QUANT_TRAITS } from "../quant/table.js";
import { storageBytes } from "./storage.js";

/** What a decomposition runs on: a complete backend's kernels, scratch tensors and host reads. */
export interface OpRunner {
  readonly kernels: Kernels;
  /** A scratch tensor on the backend (zeroed, or holding `data`), freed when the decomposition returns. */
  temp(dtype: StorageDType, shape: readonly number[], data?: Uint8Array): TensorRef;
  /**
   * The values of a small i32 tensor (a batch's positions), read back to the host synchronously: host memory
   * only (the batched block's decomposition is a specification run on CPU backends; a device runs its own).
   */
  int32s(t: TensorRef): Int32Array;
}

/** Runs a decomposition on `backend`, freeing its scratch tensors afterwards (also when it throws). */
export function runDecomposition<A extends unknown[]>(backend: Backend, run: (runner: OpRunner, ...args: A) => void, ...args: A): void {
  const temps: TensorRef[] = [];
  const runner: OpRunner = {
    kernels: backend.kernels,
    temp: (dtype, shape, data) => {
      const ref: TensorRef = { buffer: backend.alloc(storageBytes(dtype, shape)), dtype, shape: [...shape] };
      temps.push(ref);
      if (data !== undefined) {
        backend.write(ref.buffer, data);
      }
      return ref;
    },
    int32s: (t) => {
      const bytes = backend.read(t.buffer, 0, (t.shape[0] ?? 0) * 4);
      return new Int32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    },
  };
  try {
    run(runner, ...args);
  } finally {
    temps.forEach((t) => backend.free(t.buffer));
  }
}

const dim = (t: TensorRef, i: number): number => t.shape[i] ?? 1;
const as = (t: TensorRef, shape: readonly number[]): TensorRef => ({ ...t, shape });

/**
 * Causal attention, one query row and head at a time: gather the head's visible keys [t, D] and
 * transposed values [D, t], scores = q·kᵀ (matmulF32), scaled, softmax, times v, written to the head's
 * row of out. Every intermediate is rounded to f32, so it agrees with the kernel's float64 accumulation
 * within the op table's tolerance, not bit for bit. An f16 / q8_0 cache is decoded to f32 first (exactly), as
 * the rows of an embedding table; over a q8_0 K cache the query is rounded through q8_0 first (integer K·q).
 */
export function decomposeAttention(
  r: OpRunner,
  q: TensorRef,
  k: TensorRef,
  v: TensorRef,
  pos0: number,
  scale: number,
  out: TensorRef,
): void {
  const K = r.kernels;
  const [seq, heads, headDim] = [dim(q, 0), dim(q, 1), dim(q, 2)];
  if (k.dtype !== "f32") {
    const rows = dim(k, 0) * dim(k, 1);
    const ids = r.temp("i32", [rows], new Uint8Array(Int32Array.from({ length: rows }, (_, i) => i).buffer));
    const [kf, vf] = [r.temp("f32", k.shape), r.temp("f32", v.shape)];
    K.embedding(ids, as(k, [rows, headDim]), as(kf, [rows, headDim]));
    K.embedding(ids, as(v, [rows, headDim]), as(vf, [rows, headDim]));
    let qf = q;
    if (k.dtype === "q8_0") {
      // A q8_0 K cache multiplies the query rounded through q8_0 (llama.cpp's integer K·q): its rows encoded on the
      // host (read back as raw 32-bit words), then decoded like the cache.
      const n = seq * heads;
      const bits = r.int32s(as({ ...q, dtype: "i32" }, [n * headDim]));
      const encoded = QUANT_TRAITS.q8_0.encode(new Float32Array(bits.buffer, bits.byteOffset, n * headDim), n, headDim);
      const qIds = r.temp("i32", [n], new Uint8Array(Int32Array.from({ length: n }, (_, i) => i).buffer));
      qf = r.temp("f32", q.shape);
      K.embedding(qIds, r.temp("q8_0", [n, headDim], encoded), as(qf, [n, headDim]));
    }
    decomposeAttention(r, qf, kf, vf, pos0, scale, out);
    return;
  }
  const kvHeads = dim(k, 1);
  if (kvHeads === 0 || heads % kvHeads !== 0 || pos0 + seq > dim(k, 0)) {
    throw new ShapeError("size", `[attention] ${heads} heads over ${kvHeads} KV heads, queries at ${pos0}+${seq} of ${dim(k, 0)}`);
  }
  const group = heads / kvHeads;
  const kvRow = kvHeads * headDim;
  const longest = pos0 + seq;
  const qi = r.temp("f32", [1, headDim]);
  const keys = r.temp("f32", [longest, headDim]);
  const valuesT = r.temp("f32", [headDim, longest]);
  const scores = r.temp("f32", [1, longest]);
  const probs = r.temp("f32", [1, longest]);
  const o = r.temp("f32", [1, headDim]);
  const rows = as(out, [seq * heads, headDim]);
  for (let i = 0; i < seq; i++) {
    const t = pos0 + i + 1;
    for (let h = 0; h < heads; h++) {
      const kvHead = Math.floor(h / group);
      K.copyStrided(q, (i * heads + h) * headDim, [headDim, 1], qi);
      K.copyStrided(k, kvHead * headDim, [kvRow, 1], as(keys, [t, headDim]));
      K.copyStrided(v, kvHead * headDim, [1, kvRow], as(valuesT, [headDim, t]));
      K.matmulF32(qi, as(keys, [t, headDim]), as(scores, [1, t]));
      K.scale(as(scores, [1, t]), scale, as(scores, [1, t]));
      K.softmax(as(scores, [1, t]), as(probs, [1, t]));
      K.matmulF32(as(probs, [1, t]), as(valuesT, [headDim, t]), o);
      K.writeRows(o, rows, i * heads + h);
    }
  }
}

/** Stores a layer's new K/V rows and attends: qr [S,H,D], kr and v [S,KV,D] → att [S,H,D]. */
type Attend = (qr: TensorRef, kr: TensorRef, v: TensorRef, att: TensorRef) => void;

/** The block around the attention step (src/model/bitnet/forward.ts `block`, kernel by kernel). */
function block(r: OpRunner, h: TensorRef, positions: TensorRef, w: BitnetBlockWeights, p: BitnetBlockParams, out: TensorRef, attend: Attend): void {
  const K = r.kernels;
  const [seq, embed] = [dim(h, 0), dim(h, 1)];
  const qWidth = p.heads * p.headDim;
  const kvWidth = p.kvHeads * p.headDim;
  const ffn = dim(w.wGate, 0);
  const norm = (x: TensorRef, weight: TensorRef, cols: number): TensorRef => {
    const o = r.temp("f32", [seq, cols]);
    K.rmsNorm(as(x, [seq, cols]), weight, p.eps, o);
    return o;
  };
  const quantize = (x: TensorRef, cols: number): [TensorRef, TensorRef] => {
    const q = r.temp("i8", [seq, cols]);
    const s = r.temp("f32", [seq]);
    K.quantizeActivations(x, q, s);
    return [q, s];
  };
  const project = ([xq, xs]: [TensorRef, TensorRef], weight: TensorRef, rows: number): TensorRef => {
    const o = r.temp("f32", [seq, rows]);
    K.matmulTernaryI8(xq, xs, weight, o);
    return o;
  };
  const add = (a: TensorRef, b: TensorRef, into: TensorRef): void => K.binary("add", a, [embed, 1], b, [embed, 1], as(into, [seq, embed]));

  // Attention branch.
  const xq = quantize(norm(h, w.attnNorm, embed), embed);
  const q = project(xq, w.wq, qWidth);
  const k = project(xq, w.wk, kvWidth);
  const v = project(xq, w.wv, kvWidth);
  const qr = r.temp("f32", [seq, p.heads, p.headDim]);
  const kr = r.temp("f32", [seq, p.kvHeads, p.headDim]);
  K.rope(as(q, qr.shape), positions, p.ropeTheta, "neox", qr);
  K.rope(as(k, kr.shape), positions, p.ropeTheta, "neox", kr);
  const att = r.temp("f32", [seq, p.heads, p.headDim]);
  attend(qr, kr, as(v, kr.shape), att);
  const o = project(quantize(norm(att, w.attnSubNorm, qWidth), qWidth), w.wo, embed);
  const h1 = r.temp("f32", [seq, embed]);
  add(h, o, h1);
  // Feed-forward branch.
  const yq = quantize(norm(h1, w.ffnNorm, embed), embed);
  const g = project(yq, w.wGate, ffn);
  const u = project(yq, w.wUp, ffn);
  const act = r.temp("f32", [seq, ffn]);
  K.unary(p.activation, g, act);
  const m = r.temp("f32", [seq, ffn]);
  K.binary("mul", act, [ffn, 1], u, [ffn, 1], m);
  const d = project(quantize(norm(m, w.ffnSubNorm, ffn), ffn), w.wDown, embed);
  add(h1, d, out);
}

/** FusedKernels.bitnetBlock as kernels: K/V rows to pos0…pos0+S−1 of the caches, attention over 0…pos0+S−1. */
export function decomposeBitnetBlock(
  r: OpRunner,
  h: TensorRef,
  positions: TensorRef,
  kCache: TensorRef,
  vCache: TensorRef,
  pos0: number,
  w: BitnetBlockWeights,
  p: BitnetBlockParams,
  out: TensorRef,
): void {
  block(r, h, positions, w, p, out, (qr, kr, v, att) => {
    r.kernels.writeRows(kr, kCache, pos0);
    r.kernels.writeRows(v, vCache, pos0);
    const visible = [pos0 + dim(h, 0), p.kvHeads, p.headDim];
    r.kernels.attention(qr, as(kCache, visible), as(vCache, visible), pos0, p.attnScale, att);
  });
}

/** FusedKernels.bitnetBlockBatch as kernels: row b continues caches b at positions[b]. */
export function decomposeBitnetBlockBatch(
  r: OpRunner,
  h: TensorRef,
  positions: TensorRef,
  kCaches: readonly TensorRef[],
  vCaches: readonly TensorRef[],
  w: BitnetBlockWeights,
  p: BitnetBlockParams,
  out: TensorRef,
): void {
  const batch = dim(h, 0);
  if (kCaches.length !== batch || vCaches.length !== batch) {
    throw new ShapeError("size", `[bitnetBlockBatch] ${batch} rows need as many K and V caches`);
  }
  const pos = r.int32s(positions);
  block(r, h, positions, w, p, out, (qr, kr, v, att) => {
    const K = r.kernels;
    const qRow = p.heads * p.headDim;
    const kvRow = p.kvHeads * p.headDim;
    const qb = r.temp("f32", [1, p.heads, p.headDim]);
    const kb = r.temp("f32", [1, p.kvHeads, p.headDim]);
    const vb = r.temp("f32", [1, p.kvHeads, p.headDim]);
    const ab = r.temp("f32", [1, p.heads, p.headDim]);
    for (let b = 0; b < batch; b++) {
      const kCache = kCaches[b] as TensorRef;
      const vCache = vCaches[b] as TensorRef;
      const at = pos[b] ?? 0;
      K.copyStrided(qr, b * qRow, [qRow, p.headDim, 1], qb);
      K.copyStrided(kr, b * kvRow, [kvRow, p.headDim, 1], kb);
      K.copyStrided(v, b * kvRow, [kvRow, p.headDim, 1], vb);
      K.writeRows(kb, kCache, at);
      K.writeRows(vb, vCache, at);
      const visible = [at + 1, p.kvHeads, p.headDim];
      K.attention(qb, as(kCache, visible), as(vCache, visible), at, p.attnScale, ab);
      K.writeRows(ab, att, b);
    }
  });
}
