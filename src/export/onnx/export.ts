/**
 * `barbell export --onnx <form>`: a BitNet model (any WeightSource: GGUF, Hugging Face folder, training checkpoint)
 * as an ONNX decoder with a KV cache, in one of three forms (docs/onnx.md):
 *
 * - `int2`: ternary projections as ONNX INT2 initializers [in, out] with DequantizeLinear (scale 1), opset 25 / IR 12;
 * - `matmulnbits`: `com.microsoft.MatMulNBits` with bits = 2, block 32, scales 1 (opset 21 / IR 10);
 * - `bf16`: trits as BF16 [in, out] (exact), Cast to float and a standard MatMul (opset 21 / IR 10);
 * each then divides by the activation scale and multiplies by the tensor's γ (`scaled`).
 *
 * Every form quantizes activations as BitNet does (graph.ts). Weights go, one tensor at a time, to an external data
 * file `<out>.data` (the graph stays small, and models past protobuf's 2 GB limit export too); both files are
 * written under temporary names and renamed at the end, so a failed export leaves nothing.
 */
import { open, rename, rm } from "node:fs/promises";
import path from "node:path";
import { BarbellError } from "../../core/errors.js";
import { writeAtomically } from "../../core/files.js";
import type { BitnetConfig } from "../../model/bitnet/config.js";
import type { WeightSource } from "../../model/bitnet/weights.js";
import { NBITS_BLOCK, bf16TritsTransposed, denseInitializer, f32Bytes, int2Transposed, nbits2 } from "./encode-weights.js";
import { GraphBuilder, buildDecoder, ropeTables, type FloatPrecision, type LayerNames, type Projection } from "./graph.js";
import { DT, encodeModel, type DataType } from "./proto.js";

export const ONNX_FORMS = ["int2", "matmulnbits", "bf16"] as const;
export type OnnxForm = (typeof ONNX_FORMS)[number];

/** Most positions the RoPE tables are written for (a table is positions · headDim · 4 bytes). */
export const MAX_ONNX_POSITIONS = 1 << 16;

export type OnnxExportErrorCode =
  /** The model has something a form cannot hold (float projections). */
  | "unsupported"
  /** A size past a named limit. */
  | "limit";

export class OnnxExportError extends BarbellError {
  constructor(
    readonly code: OnnxExportErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "OnnxExportError";
  }
}

/** Opset and IR version by form: INT2 needs ONNX 1.20 (opset 25, IR 12); the others stay at opset 21 / IR 10. */
const VERSIONS: Record<OnnxForm, { opset: number; ir: number }> = {
  int2: { opset: 25, ir: 12 },
  matmulnbits: { opset: 21, ir: 10 },
  bf16: { opset: 21, ir: 10 },
};

export interface OnnxExportOptions {
  readonly form: OnnxForm;
  /** Positions the graph accepts (the RoPE table length); default min(context length, MAX_ONNX_POSITIONS). */
  readonly positions?: number;
  /**
   * Precision of RMSNorm, RoPE and attention: `f32` (default; what compilers and accelerators take) or `f64`, as
   * barbell's reference computes them, which removes the f32 roundings that move int8 activations across rounding
   * boundaries on larger models (docs/onnx.md, "Agreement"). The projections are exact either way.
   */
  readonly precision?: FloatPrecision;
  /** `general.name`-like model name stored in the metadata. */
  readonly name?: string;
  /** Called after each stored tensor. */
  readonly onTensor?: (name: string, bytes: number) => void;
}

export interface OnnxExportResult {
  readonly onnxPath: string;
  readonly dataPath: string;
  readonly graphBytes: number;
  readonly dataBytes: number;
  readonly tensors: number;
  readonly positions: number;
  readonly opset: number;
  readonly irVersion: number;
}

/**
 * (x_q · T) / s · γ, in barbell's order (fround(fround(acc / s) · γ)): the integer products are exact in f32, so the
 * projection's output is barbell's bit for bit. Folding γ into the weights' scale instead (DequantizeLinear's or
 * MatMulNBits' scales) saves one element-wise op but changes the last bit, and on larger models those bits move
 * values across int8 rounding boundaries downstream (docs/onnx.md, "Agreement").
 */
function scaled(b: GraphBuilder, acc: string, s: string, gamma: string): string {
  return b.op("Mul", [b.op("Div", [acc, s]), gamma]);
}

/** Alignment of each tensor in the data file (lets runtimes map it without copying). */
const DATA_ALIGN = 64;

/** Writes the model to `out` (the .onnx file) and `out`.data. */
export async function exportOnnx(config: BitnetConfig, source: WeightSource, out: string, options: OnnxExportOptions): Promise<OnnxExportResult> {
  const form = options.form;
  if (!(ONNX_FORMS as readonly string[]).includes(form)) {
    throw new OnnxExportError("unsupported", `[onnx] unknown form "${String(form)}" (${ONNX_FORMS.join(", ")})`);
  }
  const positions = options.positions ?? Math.min(config.contextLength, MAX_ONNX_POSITIONS);
  if (!Number.isSafeInteger(positions) || positions < 1 || positions > MAX_ONNX_POSITIONS) {
    throw new OnnxExportError("limit", `[onnx] positions ${positions} is not in 1..${MAX_ONNX_POSITIONS}`);
  }
  const dataPath = `${out}.data`;
  const location = path.basename(dataPath);
  const temp = `${dataPath}.tmp-${process.pid}`;
  const handle = await open(temp, "w");
  let offset = 0;
  let tensors = 0;
  const g = new GraphBuilder();
  if (form === "int2") {
    g.f32("/c/one", [1]);
  }
  const writeAll = async (bytes: Uint8Array): Promise<void> => {
    for (let at = 0; at < bytes.length; ) {
      at += (await handle.write(bytes, at, bytes.length - at)).bytesWritten;
    }
  };

  /** Appends a tensor to the data file and declares it as an initializer. */
  const store = async (name: string, dataType: DataType, dims: readonly number[], bytes: Uint8Array): Promise<string> => {
    const pad = (DATA_ALIGN - (offset % DATA_ALIGN)) % DATA_ALIGN;
    if (pad > 0) {
      await writeAll(new Uint8Array(pad));
      offset += pad;
    }
    await writeAll(bytes);
    g.initializers.push({ name, dataType, dims, data: { location, offset, length: bytes.length } });
    offset += bytes.length;
    tensors++;
    options.onTensor?.(name, bytes.length);
    return name;
  };

  const projection = async (name: string, outDim: number, inDim: number): Promise<Projection> => {
    let packed;
    try {
      packed = await source.ternary(name, outDim, inDim);
    } catch (e) {
      if (e instanceof BarbellError && e.code === "bad-value") {
        throw new OnnxExportError("unsupported", `[onnx] ${name} cannot be read as ternary; the ONNX forms hold ternary projections only (${e.message})`, { cause: e });
      }
      throw e;
    }
    const gamma_ = g.f32(`${name}_scale`, [packed.scale]);
    if (form === "int2") {
      const w = await store(name, DT.INT2, [inDim, outDim], int2Transposed(packed.codes, outDim, inDim));
      return (b, xq, s) => scaled(b, b.op("MatMul", [xq, b.op("DequantizeLinear", [w, "/c/one"])]), s, gamma_);
    }
    if (form === "matmulnbits") {
      const blocks = Math.ceil(inDim / NBITS_BLOCK);
      const w = await store(name, DT.UINT8, [outDim, blocks, NBITS_BLOCK / 4], nbits2(packed.codes, outDim, inDim));
      const scales = await store(`${name}_scales`, DT.FLOAT, [outDim, blocks], f32Bytes(new Float32Array(outDim * blocks).fill(1)));
      const attrs = { K: { i: inDim }, N: { i: outDim }, bits: { i: 2 }, block_size: { i: NBITS_BLOCK } };
      return (b, xq, s) => scaled(b, b.op("MatMulNBits", [xq, w, scales], attrs, "com.microsoft"), s, gamma_);
    }
    const w = await store(name, DT.BFLOAT16, [inDim, outDim], bf16TritsTransposed(packed.codes, outDim, inDim));
    return (b, xq, s) => scaled(b, b.op("MatMul", [xq, b.op("Cast", [w], { to: { i: DT.FLOAT } })]), s, gamma_);
  };
  const norm = async (name: string, count: number): Promise<string> => store(name, DT.FLOAT, [count], f32Bytes(await source.floats(name, count)));
  const dense = async (name: string): Promise<{ name: string; type: DataType }> => {
    const { dtype, bytes } = await source.dense(name, config.vocabSize, config.hidden);
    const init = denseInitializer(dtype, bytes, config.vocabSize, config.hidden);
    return { name: await store(name, init.dataType, [config.vocabSize, config.hidden], init.bytes), type: init.dataType };
  };

  try {
    const c = config;
    const embedding = await dense("token_embd.weight");
    const head = source.has("output.weight") ? await dense("output.weight") : embedding;
    const outputNorm = await norm("output_norm.weight", c.hidden);
    const q = c.heads * c.headDim;
    const kv = c.kvHeads * c.headDim;
    const layers: LayerNames[] = [];
    for (let l = 0; l < c.layers; l++) {
      const b = `blk.${l}`;
      layers.push({
        attnNorm: await norm(`${b}.attn_norm.weight`, c.hidden),
        wq: await projection(`${b}.attn_q.weight`, q, c.hidden),
        wk: await projection(`${b}.attn_k.weight`, kv, c.hidden),
        wv: await projection(`${b}.attn_v.weight`, kv, c.hidden),
        attnSubNorm: await norm(`${b}.attn_sub_norm.weight`, q),
        wo: await projection(`${b}.attn_output.weight`, c.hidden, q),
        ffnNorm: await norm(`${b}.ffn_norm.weight`, c.hidden),
        wGate: await projection(`${b}.ffn_gate.weight`, c.ffn, c.hidden),
        wUp: await projection(`${b}.ffn_up.weight`, c.ffn, c.hidden),
        ffnSubNorm: await norm(`${b}.ffn_sub_norm.weight`, c.ffn),
        wDown: await projection(`${b}.ffn_down.weight`, c.hidden, c.ffn),
      });
    }
    const precision = options.precision ?? "f32";
    const tables = ropeTables(c, positions);
    const table = (v: Float64Array): Uint8Array => (precision === "f64" ? new Uint8Array(v.buffer) : f32Bytes(Float32Array.from(v)));
    const tableType = precision === "f64" ? DT.DOUBLE : DT.FLOAT;
    await store("/rope/cos", tableType, [positions, c.headDim / 2], table(tables.cos));
    await store("/rope/sin", tableType, [positions, c.headDim / 2], table(tables.sin));
    const { inputs, outputs } = buildDecoder(g, c, {
      embedding: embedding.name,
      embeddingType: embedding.type,
      head: head.name,
      headType: head.type,
      outputNorm,
      layers,
    }, precision);
    await handle.close();
    const { opset, ir } = VERSIONS[form];
    const bytes = encodeModel({
      irVersion: ir,
      opsets: [
        { domain: "", version: opset },
        ...(form === "matmulnbits" ? [{ domain: "com.microsoft", version: 1 }] : []),
      ],
      producer: "barbell",
      producerVersion: "1",
      docString: `BitNet b1.58 decoder exported by barbell (form ${form}); docs/onnx.md`,
      metadata: [
        ["barbell.form", form],
        ["barbell.arch", c.arch],
        ["barbell.name", options.name ?? c.name ?? ""],
        ["barbell.positions", String(positions)],
        ["barbell.precision", precision],
      ],
      graph: { name: "barbell_bitnet", nodes: g.nodes, initializers: g.initializers, inputs, outputs },
    });
    await writeAtomically(out, bytes);
    await rename(temp, dataPath);
    return { onnxPath: out, dataPath, graphBytes: bytes.length, dataBytes: offset, tensors, positions, opset, irVersion: ir };
  } catch (e) {
    await handle.close().catch(() => undefined);
    await rm(temp, { force: true });
    throw e;
  }
}
