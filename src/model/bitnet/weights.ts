/**
 * BitNet weights in barbell's compute layout: ternary projections as packed `ternary` tensors,
 * norms as f32, the embedding and head in their file format (decoded row by row when used).
 * Loading reads each tensor once, converts it, and lets the file bytes go.
 */
import type { Backend, DenseDType } from "../../backends/backend.js";
import { FormatError } from "../../core/errors.js";
import type { GgufFile, GgufTensorInfo } from "../../formats/gguf/index.js";
import { QUANT_TRAITS } from "../../quant/table.js";
import type { QuantName } from "../../quant/types.js";
import { denseWeights, tensor, type Tensor } from "../../tensor/tensor.js";
import type { BitnetConfig } from "./config.js";
import { readTernaryWeight } from "./ternary-weights.js";

/** A projection: packed ternary, or dense float when the model is run in float mode. */
export type Projection<Out extends string, In extends string> = Tensor<"ternary" | DenseDType, [Out, In]>;

/** One transformer block. `q` = heads·headDim, `kv` = kvHeads·headDim (BITNET.md §1.2). */
export interface LayerWeights {
  readonly attnNorm: Tensor<"f32", ["embed"]>;
  readonly wq: Projection<"q", "embed">;
  readonly wk: Projection<"kv", "embed">;
  readonly wv: Projection<"kv", "embed">;
  readonly attnSubNorm: Tensor<"f32", ["q"]>;
  readonly wo: Projection<"embed", "q">;
  readonly ffnNorm: Tensor<"f32", ["embed"]>;
  readonly wGate: Projection<"ffn", "embed">;
  readonly wUp: Projection<"ffn", "embed">;
  readonly ffnSubNorm: Tensor<"f32", ["ffn"]>;
  readonly wDown: Projection<"embed", "ffn">;
}

export interface BitnetWeights extends Disposable {
  readonly tokenEmbd: Tensor<DenseDType, ["vocab", "embed"]>;
  readonly outputNorm: Tensor<"f32", ["embed"]>;
  /** The output head; the same tensor as `tokenEmbd` when the head is tied. */
  readonly output: Tensor<DenseDType, ["vocab", "embed"]>;
  readonly tied: boolean;
  readonly layers: readonly LayerWeights[];
  /** True when projections run as float matmuls (the file held non-ternary floats and the user asked for it). */
  readonly floatProjections: boolean;
  dispose(): void;
}

export interface LoadWeightsOptions {
  readonly backend: Backend;
  /** Run projections that are not ternary as float matmuls instead of refusing the file. */
  readonly allowFloatWeights?: boolean;
  /** Called after each tensor with bytes read so far and the total. */
  readonly onProgress?: (done: number, total: number) => void;
}

const DENSE_FILE_TYPES: readonly string[] = ["f32", "f16", "bf16", "q8_0", "q6_k"];
const TERNARY_FILE_TYPES: readonly string[] = ["i2_s", "tq1_0", "tq2_0", "f32", "f16", "bf16"];

/** Loads every weight of a BitNet GGUF whose config has been read. Frees what it loaded if it fails. */
export async function loadGgufWeights(file: GgufFile, config: BitnetConfig, options: LoadWeightsOptions): Promise<BitnetWeights> {
  const owned: Tensor[] = [];
  const total = file.tensors.reduce((n, t) => n + t.byteSize, 0);
  let done = 0;
  const keep = <T extends Tensor>(t: T, info: GgufTensorInfo): T => {
    owned.push(t);
    done += info.byteSize;
    options.onProgress?.(done, total);
    return t;
  };
  const need = (name: string, dims: readonly number[]): GgufTensorInfo => {
    const info = file.tensor(name);
    if (info === undefined) {
      throw new FormatError("bad-value", `[bitnet] tensor ${name} is missing`);
    }
    if (info.dims.length !== dims.length || info.dims.some((d, i) => d !== dims[i])) {
      throw new FormatError("bad-dims", `[bitnet] ${name} has dims [${info.dims.join(", ")}], the config needs [${dims.join(", ")}]`);
    }
    return info;
  };
  const { backend } = options;
  const c = config;

  const norm = async <D extends string>(name: string, dim: D, size: number): Promise<Tensor<"f32", [D]>> => {
    const info = need(name, [size]);
    const values = decodeFloat(info, await file.tensorData(info), 1, size);
    return keep(tensor(values, [dim], [size], { backend }), info);
  };
  const dense = async (name: string): Promise<Tensor<DenseDType, ["vocab", "embed"]>> => {
    const info = need(name, [c.hidden, c.vocabSize]);
    if (!DENSE_FILE_TYPES.includes(info.typeName)) {
      throw new FormatError(
        "bad-tensor-type",
        `[bitnet] ${name} is ${info.typeName}; barbell runs embeddings/heads in f32, f16, bf16, q8_0 or q6_k ` +
          `(convert with llama-quantize --token-embedding-type q8_0, or re-export as f16)`,
      );
    }
    const bytes = await file.tensorData(info);
    if (info.typeName === "f32") {
      const values = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
      return keep(tensor(values, ["vocab", "embed"], [c.vocabSize, c.hidden], { backend }), info);
    }
    const dtype = info.typeName as Exclude<DenseDType, "f32">;
    return keep(denseWeights(dtype, bytes, ["vocab", "embed"], [c.vocabSize, c.hidden], { backend, adopt: true }), info);
  };
  const projection = async <O extends string, I extends string>(
    layer: number,
    short: string,
    dims: readonly [O, I],
    out: number,
    inp: number,
  ): Promise<Projection<O, I>> => {
    const name = `blk.${layer}.${short}.weight`;
    const info = need(name, [inp, out]);
    const extra = await scaleTensor(file, `blk.${layer}.${short}.scale`);
    if (!TERNARY_FILE_TYPES.includes(info.typeName)) {
      throw new FormatError(
        "bad-tensor-type",
        `[bitnet] ${name} is ${info.typeName}; barbell runs BitNet projections stored as i2_s, tq1_0, tq2_0 ` +
          `or as floats holding ternary values (convert with llama-quantize to TQ2_0, or bitnet.cpp to I2_S)`,
      );
    }
    const t = await readTernaryWeight(file, info, dims, { backend, multiplier: extra });
    if (t.ok) {
      return keep(t.value, info);
    }
    if (t.error.code !== "bad-value") {
      throw t.error;
    }
    if (options.allowFloatWeights !== true) {
      throw new FormatError("bad-value", `[bitnet] ${t.error.message}; load with allowFloatWeights to run it as floats`);
    }
    const values = QUANT_TRAITS[info.typeName as QuantName].decode(await file.tensorData(info), out, inp);
    const scaled = values.map((v) => v * extra);
    return keep(tensor(scaled, dims as never, [out, inp] as never, { backend }) as Projection<O, I>, info);
  };

  try {
    const tokenEmbd = await dense("token_embd.weight");
    const tied = file.tensor("output.weight") === undefined;
    const output = tied ? tokenEmbd : await dense("output.weight");
    const outputNorm = await norm("output_norm.weight", "embed", c.hidden);
    const q = c.heads * c.headDim;
    const kv = c.kvHeads * c.headDim;
    const layers: LayerWeights[] = [];
    for (let l = 0; l < c.layers; l++) {
      layers.push({
        attnNorm: await norm(`blk.${l}.attn_norm.weight`, "embed", c.hidden),
        wq: await projection(l, "attn_q", ["q", "embed"], q, c.hidden),
        wk: await projection(l, "attn_k", ["kv", "embed"], kv, c.hidden),
        wv: await projection(l, "attn_v", ["kv", "embed"], kv, c.hidden),
        attnSubNorm: await norm(`blk.${l}.attn_sub_norm.weight`, "q", q),
        wo: await projection(l, "attn_output", ["embed", "q"], c.hidden, q),
        ffnNorm: await norm(`blk.${l}.ffn_norm.weight`, "embed", c.hidden),
        wGate: await projection(l, "ffn_gate", ["ffn", "embed"], c.ffn, c.hidden),
        wUp: await projection(l, "ffn_up", ["ffn", "embed"], c.ffn, c.hidden),
        ffnSubNorm: await norm(`blk.${l}.ffn_sub_norm.weight`, "ffn", c.ffn),
        wDown: await projection(l, "ffn_down", ["embed", "ffn"], c.hidden, c.ffn),
      });
    }
    const floatProjections = layers.some((l) => l.wq.dtype !== "ternary");
    const dispose = (): void => owned.forEach((t) => t.dispose());
    return { tokenEmbd, output, outputNorm, tied, layers, floatProjections, dispose, [Symbol.dispose]: dispose };
  } catch (e) {
    owned.forEach((t) => t.dispose());
    throw e;
  }

  async function scaleTensor(f: GgufFile, name: string): Promise<number> {
    const info = f.tensor(name);
    if (info === undefined) {
      return 1;
    }
    if (info.elementCount !== 1) {
      throw new FormatError("bad-dims", `[bitnet] ${name} must hold one value, has ${info.elementCount}`);
    }
    const v = decodeFloat(info, await f.tensorData(info), 1, 1)[0] ?? Number.NaN;
    if (!Number.isFinite(v)) {
      throw new FormatError("bad-value", `[bitnet] ${name} is ${v}`);
    }
    return v;
  }
}

function decodeFloat(info: GgufTensorInfo, bytes: Uint8Array, rows: number, cols: number): Float32Array {
  if (info.typeName !== "f32" && info.typeName !== "f16" && info.typeName !== "bf16") {
    throw new FormatError("bad-tensor-type", `[bitnet] ${info.name} is ${info.typeName}; expected f32, f16 or bf16`);
  }
  return QUANT_TRAITS[info.typeName].decode(bytes, rows, cols);
}
