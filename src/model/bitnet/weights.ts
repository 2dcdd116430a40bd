/**
 * BitNet weights in barbell's compute layout: ternary projections as packed `ternary` tensors,
 * norms as f32, the embedding and head in their file format (decoded row by row when used).
 * Loading reads each tensor once from a {@link WeightSource}, converts it, and lets the file bytes go.
 */
import type { Backend, DenseDType } from "../../backends/backend.js";
import { FormatError } from "../../core/errors.js";
import { shrankError } from "../../formats/gguf/source.js";
import type { TernaryPacked } from "../../quant/repack.js";
import { loadCodecs } from "../../quant/load-codecs.js";
import { QUANT_TRAITS } from "../../quant/table.js";
import { ternaryFromCodes, ternaryFromLazyCodes } from "../../tensor/ops/quant.js";
import type { ShapeOf } from "../../tensor/dims.js";
import { denseWeights, lazyDenseWeights, tensor, type Tensor, type UniqueDims } from "../../tensor/tensor.js";
import type { BitnetConfig } from "./config.js";
import type { BlockWeights, ModelWeights, ProjectionOf } from "./graph.js";

/** A projection: packed ternary, or dense float when the model is run in float mode. */
export type Projection<Out extends string, In extends string> = ProjectionOf<"inference", Out, In>;

/** One transformer block (the graph's BlockWeights, as loaded for inference). */
export type LayerWeights = BlockWeights<"inference">;

/** The model's weights as loaded (the graph's ModelWeights): `output` is `tokenEmbd` when the head is tied. */
export interface BitnetWeights extends ModelWeights<"inference">, Disposable {
  readonly tied: boolean;
  /** True when projections run as float matmuls (the file held non-ternary floats and the user asked for it). */
  readonly floatProjections: boolean;
  dispose(): void;
}

/**
 * Where weights come from (a GGUF file, a Hugging Face folder). Names are barbell's GGUF-style
 * names; shapes are [rows, cols] with cols contiguous ([out, in] for projections). Every method
 * checks the stored shape against the one asked for and throws FormatError on a mismatch.
 */
export interface WeightSource {
  /** True when the tensor exists (used for the optional `output.weight`). */
  has(name: string): boolean;
  /** Stored bytes of a tensor, for progress. */
  bytesOf(name: string): number;
  /** An embedding or head [rows, cols] as bytes in a dtype barbell computes with directly. */
  dense(name: string, rows: number, cols: number): Promise<{ dtype: DenseDType; bytes: Uint8Array }>;
  /** Float values of a norm weight [count]. */
  floats(name: string, count: number): Promise<Float32Array>;
  /** A projection [out, in] as t2 codes and γ; FormatError "bad-value" when its values are not ternary. */
  ternary(name: string, out: number, inp: number): Promise<TernaryPacked>;
  /** A projection [out, in] decoded to floats, for float execution of non-ternary files. */
  projectionFloats(name: string, out: number, inp: number): Promise<Float32Array>;
  /**
   * A projection [out, in] converted to t2 codes when first used: γ now (checked, with any multiplier), the codes
   * from `materialize` (which checks every byte as `ternary` does, throws its FormatErrors, and then drops the
   * stored bytes). Undefined where the source cannot know γ without converting (the caller calls `ternary`).
   * Only for files whose ternary values are not run as floats.
   */
  lazyTernary?(name: string, out: number, inp: number): Promise<{ scale: number; materialize: () => Uint8Array } | undefined>;
  /** The stored bytes of a tensor will not be read again (it was converted): a mapped file drops its pages. */
  release?(name: string, from?: number, length?: number): void;
  /**
   * Where a tensor's stored bytes are a view of a file mapping: a copier of [from, from + dst.length) of them into
   * `dst` that checks the file first (FormatError "truncated" when it became shorter, instead of the SIGBUS reading
   * the view would end the process with). Undefined where the bytes are not mapped (nothing to guard).
   */
  mappedCopy?(name: string): ((from: number, dst: Uint8Array) => void) | undefined;
}

export interface LoadWeightsOptions {
  readonly backend: Backend;
  /**
   * What to do with a float (f32/f16/bf16) embedding and head (docs/heads.md). "q6_k" / "q8_0": requantize it to
   * that format (on first use where `lazy` holds, else at load; natively where the addon is loaded): a Q6_K head
   * is 41 % of F16's bytes, Q8_0 53 % (the tied F16 head is the largest single read of BitNet 2B-4T per decoded
   * token), at a small cost in logit accuracy. "keep": the file's head. "auto" (the default): requantize where it
   * costs nothing at load — a head of at least AUTO_HEAD_WEIGHTS weights on a backend that makes bytes on first use
   * (host memory) — to Q6_K where the native encoder is loaded and rows are whole 256-blocks, else to Q8_0;
   * otherwise "keep".
   */
  readonly headType?: HeadPolicy;
  /** Run projections that are not ternary as float matmuls instead of refusing the file. */
  readonly allowFloatWeights?: boolean;
  /**
   * Convert ternary projections (and a head requantized by `headType`) when first used rather than at load
   * (default true, where the source and the
   * backend can: a mapped GGUF on host memory read in place). Load then reads no projection bytes; the first
   * forward pass converts them, checking every byte as loading does.
   */
  readonly lazy?: boolean;
  /** Called after each tensor with bytes read so far and the total. */
  readonly onProgress?: (done: number, total: number) => void;
}

/** What loading does with a float embedding/head (LoadWeightsOptions.headType). */
export const HEAD_POLICIES = ["auto", "keep", "q8_0", "q6_k"] as const;
export type HeadPolicy = (typeof HEAD_POLICIES)[number];

/** The formats a float head is requantized to. */
export type HeadTarget = "q8_0" | "q6_k";

/**
 * Weights (vocab × hidden) from which "auto" requantizes a float head: 2^24, so BitNet 700M's (49M) and 2B-4T's
 * (328M) heads are requantized and small models' (barbell's KJV model: 1M) keep theirs, where the head is a
 * small share of a token's reads and the change in logits would buy nothing (docs/heads.md has the figures).
 */
export const AUTO_HEAD_WEIGHTS = 2 ** 24;

/**
 * Stored bytes of a head requantized or copied per piece (a piece's pages dropped once done; threads split a
 * requantized piece).
 */
const REQUANTIZE_PIECE_BYTES = 32 * 2 ** 20;

/**
 * What a float head of rows × cols weights becomes under the options' head policy: the format it is requantized
 * to, or undefined (the file's head). An explicit format whose blocks do not divide the row width is refused later
 * (FormatError "bad-dims"); "auto" then falls back (Q6_K → Q8_0 → the file's).
 */
export function headTarget(options: Pick<LoadWeightsOptions, "headType" | "lazy" | "backend">, rows: number, cols: number): HeadTarget | undefined {
  const policy = options.headType ?? "auto";
  if (policy === "q8_0" || policy === "q6_k") {
    return policy;
  }
  if (policy === "keep" || rows * cols < AUTO_HEAD_WEIGHTS || options.lazy === false || options.backend.adoptLazy === undefined) {
    return undefined;
  }
  // Q6_K needs the native encoder: the JS one would take tens of seconds on a 2B head at the first token.
  if (cols % QUANT_TRAITS.q6_k.blockSize === 0 && loadCodecs()?.encodeQ6_K !== undefined) {
    return "q6_k";
  }
  return cols % QUANT_TRAITS.q8_0.blockSize === 0 ? "q8_0" : undefined;
}

/** Names of every tensor a config needs, in load order. */
function requiredNames(c: BitnetConfig, tied: boolean): string[] {
  const perLayer = ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_sub_norm", "attn_output"];
  const ffn = ["ffn_norm", "ffn_gate", "ffn_up", "ffn_sub_norm", "ffn_down"];
  const names = ["token_embd.weight", ...(tied ? [] : ["output.weight"]), "output_norm.weight"];
  for (let l = 0; l < c.layers; l++) {
    names.push(...[...perLayer, ...ffn].map((n) => `blk.${l}.${n}.weight`));
  }
  return names;
}

/** Loads every weight a config needs. Frees what it loaded if anything fails. */
export async function loadWeights(source: WeightSource, config: BitnetConfig, options: LoadWeightsOptions): Promise<BitnetWeights> {
  const { backend } = options;
  const c = config;
  const tied = !source.has("output.weight");
  const total = requiredNames(c, tied).reduce((n, name) => n + (source.has(name) ? source.bytesOf(name) : 0), 0);
  const owned: Tensor[] = [];
  let done = 0;
  const keep = <T extends Tensor>(t: T, name: string, converted = true): T => {
    if (converted) {
      source.release?.(name);
    }
    owned.push(t);
    done += source.bytesOf(name);
    options.onProgress?.(done, total);
    return t;
  };

  const norm = async <D extends string>(name: string, dim: D, size: number): Promise<Tensor<"f32", [D]>> =>
    keep(tensor(await source.floats(name, size), [dim], [size], { backend }), name);

  // Only the head is requantized; a tied head is the embedding too, so its one copy serves both.
  // The bytes as read are adopted unless requantized: only then are the stored bytes released.
  const dense = async (name: string, isHead: boolean): Promise<Tensor<DenseDType, ["vocab", "embed"]>> => {
    const loaded = await source.dense(name, c.vocabSize, c.hidden);
    const from = loaded.dtype;
    const float = from === "f32" || from === "f16" || from === "bf16" ? from : undefined;
    const target = isHead && float !== undefined ? headTarget(options, c.vocabSize, c.hidden) : undefined;
    const requantize = target !== undefined;
    const shape = [c.vocabSize, c.hidden] as const;
    if (target !== undefined && float !== undefined && options.lazy !== false) {
      // Requantized when first read (the first token), so loading reads none of the head's bytes; the stored
      // bytes are dropped once converted. The row width is checked now, so the conversion itself cannot fail.
      const outRow = requantizedRow(target, c.hidden);
      let stored: Uint8Array | undefined = loaded.bytes;
      const make = (): Uint8Array => {
        // In pieces, each piece's stored pages dropped once encoded: the float head and its requantized copy are
        // never both resident (the peak stays ≤ 1.1 × file; the 2B's F16 head alone is 657 MB).
        const bytes = stored ?? new Uint8Array();
        const inRow = QUANT_TRAITS[float].byteSize(1, c.hidden) ?? 0;
        const out = new Uint8Array(c.vocabSize * outRow);
        const step = Math.max(1, Math.floor(REQUANTIZE_PIECE_BYTES / inRow));
        for (let r = 0; r < c.vocabSize; r += step) {
          const n = Math.min(step, c.vocabSize - r);
          requantizeRows(float, target, bytes.subarray(r * inRow, (r + n) * inRow), n, c.hidden, out.subarray(r * outRow, (r + n) * outRow));
          source.release?.(name, r * inRow, n * inRow);
        }
        stored = undefined;
        source.release?.(name);
        return out;
      };
      const t = lazyDenseWeights(target, make, ["vocab", "embed"], shape, { backend });
      if (t !== undefined) {
        return keep(t, name, false);
      }
    }
    const copy = !requantize && isHead && options.lazy !== false ? source.mappedCopy?.(name) : undefined;
    if (copy !== undefined && from !== "f32") {
      // A head kept as stored (a k-quant or Q8_0 head, or `headType: "keep"`) is read by every token: it is copied
      // from the file mapping on first use, in pieces whose mapped pages are dropped once copied (the peak grows by at
      // most a piece), instead of read in place, where a file truncated on disk would end the process at the next token.
      const size = loaded.bytes.byteLength;
      const make = (): Uint8Array => {
        const out = new Uint8Array(size);
        for (let at = 0; at < size; at += REQUANTIZE_PIECE_BYTES) {
          const n = Math.min(REQUANTIZE_PIECE_BYTES, size - at);
          copy(at, out.subarray(at, at + n));
          source.release?.(name, at, n);
        }
        source.release?.(name);
        return out;
      };
      const t = lazyDenseWeights(from, make, ["vocab", "embed"], shape, { backend });
      if (t !== undefined) {
        return keep(t, name, false);
      }
    }
    const { dtype, bytes } =
      target !== undefined && float !== undefined
        ? { dtype: target, bytes: requantizeRows(float, target, loaded.bytes, c.vocabSize, c.hidden) }
        : loaded;
    if (dtype === "f32") {
      const values = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
      return keep(tensor(values, ["vocab", "embed"], shape, { backend }), name, false);
    }
    return keep(denseWeights(dtype, bytes, ["vocab", "embed"], shape, { backend, adopt: true }), name, requantize);
  };

  const projection = async <O extends string, I extends string>(
    name: string,
    dims: UniqueDims<[O, I]>,
    out: number,
    inp: number,
  ): Promise<Projection<O, I>> => {
    const shape: ShapeOf<[O, I]> = [out, inp];
    if (options.lazy !== false && options.allowFloatWeights !== true && source.lazyTernary !== undefined && backend.adoptLazy !== undefined) {
      const lazy = await source.lazyTernary(name, out, inp);
      const materialize = (): Uint8Array => {
        try {
          return lazy?.materialize() ?? new Uint8Array();
        } catch (e) {
          throw e instanceof FormatError && e.code === "bad-value" ? floatHint(name, e) : e;
        }
      };
      const t = lazy && ternaryFromLazyCodes(materialize, dims, shape, { backend, scale: lazy.scale });
      if (t !== undefined) {
        return keep(t as Projection<O, I>, name, false);
      }
    }
    let packed: TernaryPacked;
    try {
      packed = await source.ternary(name, out, inp);
    } catch (e) {
      if (!(e instanceof FormatError && e.code === "bad-value")) {
        throw e;
      }
      if (options.allowFloatWeights !== true) {
        throw floatHint(name, e);
      }
      const values = await source.projectionFloats(name, out, inp);
      return keep(tensor(values, dims, shape, { backend }) as Projection<O, I>, name);
    }
    const t = ternaryFromCodes(packed.codes, dims, shape, { backend, adopt: true, scale: packed.scale });
    if (!t.ok) {
      throw new FormatError("bad-value", `[bitnet] ${name}: ${t.error.message}`);
    }
    return keep(t.value as Projection<O, I>, name);
  };

  try {
    const tokenEmbd = await dense("token_embd.weight", tied);
    const output = tied ? tokenEmbd : await dense("output.weight", true);
    const outputNorm = await norm("output_norm.weight", "embed", c.hidden);
    const q = c.heads * c.headDim;
    const kv = c.kvHeads * c.headDim;
    const layers: LayerWeights[] = [];
    for (let l = 0; l < c.layers; l++) {
      const b = `blk.${l}`;
      layers.push({
        attnNorm: await norm(`${b}.attn_norm.weight`, "embed", c.hidden),
        wq: await projection(`${b}.attn_q.weight`, ["q", "embed"], q, c.hidden),
        wk: await projection(`${b}.attn_k.weight`, ["kv", "embed"], kv, c.hidden),
        wv: await projection(`${b}.attn_v.weight`, ["kv", "embed"], kv, c.hidden),
        attnSubNorm: await norm(`${b}.attn_sub_norm.weight`, "q", q),
        wo: await projection(`${b}.attn_output.weight`, ["embed", "q"], c.hidden, q),
        ffnNorm: await norm(`${b}.ffn_norm.weight`, "embed", c.hidden),
        wGate: await projection(`${b}.ffn_gate.weight`, ["ffn", "embed"], c.ffn, c.hidden),
        wUp: await projection(`${b}.ffn_up.weight`, ["ffn", "embed"], c.ffn, c.hidden),
        ffnSubNorm: await norm(`${b}.ffn_sub_norm.weight`, "ffn", c.ffn),
        wDown: await projection(`${b}.ffn_down.weight`, ["embed", "ffn"], c.hidden, c.ffn),
      });
    }
    const floatProjections = layers.some((l) => l.wq.dtype !== "ternary");
    const dispose = (): void => owned.forEach((t) => t.dispose());
    return { tokenEmbd, output, outputNorm, tied, layers, floatProjections, dispose, [Symbol.dispose]: dispose };
  } catch (e) {
    owned.forEach((t) => t.dispose());
    throw e;
  }
}

/** A projection's values are not ternary: the error, with what would run it anyway. */
function floatHint(name: string, e: FormatError): FormatError {
  return new FormatError("bad-value", `[bitnet] ${name}: ${e.message}; load with allowFloatWeights to run it as floats`);
}

/** The source format codes of the native encoders (native/cpu/load.cc). */
const NATIVE_SOURCE = { f32: 0, f16: 1, bf16: 2 } as const;

/** Bytes of one `target` row of `cols` values; FormatError "bad-dims" unless its blocks divide cols. */
function requantizedRow(target: HeadTarget, cols: number): number {
  const bytes = QUANT_TRAITS[target].byteSize(1, cols);
  if (bytes === undefined) {
    throw new FormatError("bad-dims", `[bitnet] rows of ${cols} cannot be requantized to ${target} (needs a multiple of ${QUANT_TRAITS[target].blockSize})`);
  }
  return bytes;
}

/**
 * Re-encodes rows × cols float values of `format` as `target` rows into `out` (made when not given): natively where
 * the addon is loaded (the JS codec's bytes), else a block of rows at a time (bounded scratch memory).
 */
function requantizeRows(
  format: "f32" | "f16" | "bf16",
  target: HeadTarget,
  bytes: Uint8Array,
  rows: number,
  cols: number,
  out = new Uint8Array(rows * requantizedRow(target, cols)),
): Uint8Array {
  const from = QUANT_TRAITS[format];
  const to = QUANT_TRAITS[target];
  const outRow = requantizedRow(target, cols);
  const inRow = from.byteSize(1, cols) ?? 0;
  const native = loadCodecs();
  const encode = target === "q8_0" ? native?.encodeQ8_0 : native?.encodeQ6_K;
  if (encode !== undefined) {
    if (!encode(NATIVE_SOURCE[format], bytes, rows, cols, out)) {
      throw shrankError();
    }
    return out;
  }
  const step = 256;
  for (let r = 0; r < rows; r += step) {
    const n = Math.min(step, rows - r);
    const values = from.decode(bytes.subarray(r * inRow, (r + n) * inRow), n, cols);
    out.set(to.encode(values, n, cols), r * outRow);
  }
  return out;
}
