/**
 * The BitNet decoder as an ONNX graph with a KV cache (inputs and outputs named as onnxruntime-genai's decoder
 * models name them), for the three weight forms of docs/onnx.md. The graph computes what
 * src/model/bitnet/forward.ts computes, op for op:
 *
 *   h = Gather(embedding, input_ids)
 *   per block: x = RMSNorm(h)·attn_norm; x_q, s = ActQuant(x); q, k, v = Proj(x_q, s); RoPE(q, k) (NeoX pairing);
 *     present = Concat(past, k | v); a = softmax(q·kᵀ/√d + mask)·v (grouped KV heads); h += Proj(ActQuant(RMSNorm(a)·sub));
 *     y = RMSNorm(h)·ffn_norm; g, u = Proj(ActQuant(y)); h += Proj(ActQuant(RMSNorm(act(g)·u)·ffn_sub_norm))
 *   logits = RMSNorm(h)·output_norm · headᵀ
 *
 * ActQuant is BitNet's absmax int8 per token: s = 127 / max(max|x|, 1e-5), x_q = clip(round_half_even(x·s), ±127/−128),
 * kept in float (exact integers). Proj(x_q, s) = (x_q · Wᵀ) / s with W = γ·T by form (Projection below).
 */
import type { BitnetConfig } from "../../model/bitnet/config.js";
import { DT, type AttrValue, type DataType, type NodeDef, type TensorDef, type ValueInfoDef } from "./proto.js";
import { f32Bytes } from "./encode-weights.js";

/** The batch and sequence dimension names of the inputs and outputs (onnxruntime-genai's). */
export const DIMS = { batch: "batch_size", seq: "sequence_length", past: "past_sequence_length", total: "total_sequence_length" } as const;

/** Input and output names, as onnxruntime-genai's decoder config expects them by default. */
export const IO_NAMES = {
  inputIds: "input_ids",
  attentionMask: "attention_mask",
  positionIds: "position_ids",
  pastKey: (l: number) => `past_key_values.${l}.key`,
  pastValue: (l: number) => `past_key_values.${l}.value`,
  logits: "logits",
  presentKey: (l: number) => `present.${l}.key`,
  presentValue: (l: number) => `present.${l}.value`,
} as const;

/** Adds nodes and small constants to a graph; weights are added through `addWeight` by the exporter. */
export class GraphBuilder {
  readonly nodes: NodeDef[] = [];
  readonly initializers: TensorDef[] = [];
  #count = 0;

  /** Appends one node with fresh output names and returns them. */
  ops(op: string, inputs: readonly string[], outputs: number, attrs?: Record<string, AttrValue>, domain?: string): string[] {
    const id = this.#count++;
    const names = Array.from({ length: outputs }, (_, i) => `/${op}_${id}${outputs > 1 ? `_${i}` : ""}`);
    this.nodes.push({ op, inputs, outputs: names, name: `${op}_${id}`, ...(attrs === undefined ? {} : { attrs }), ...(domain === undefined ? {} : { domain }) });
    return names;
  }

  op(op: string, inputs: readonly string[], attrs?: Record<string, AttrValue>, domain?: string): string {
    return this.ops(op, inputs, 1, attrs, domain)[0] as string;
  }

  /** A node whose output has a given name (graph outputs). */
  named(op: string, inputs: readonly string[], output: string, attrs?: Record<string, AttrValue>): string {
    this.nodes.push({ op, inputs, outputs: [output], name: `${op}_${output}`, ...(attrs === undefined ? {} : { attrs }) });
    return output;
  }

  /** A small constant stored inside the model. */
  constant(name: string, dataType: DataType, dims: readonly number[], raw: Uint8Array): string {
    this.initializers.push({ name, dataType, dims, data: { raw } });
    return name;
  }

  f32(name: string, values: readonly number[], dims: readonly number[] = []): string {
    return this.constant(name, DT.FLOAT, dims, f32Bytes(values));
  }

  i64(name: string, values: readonly number[], dims: readonly number[] = [values.length]): string {
    return this.constant(name, DT.INT64, dims, new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer));
  }
}

/** Emits Proj(x_q, s) for one projection: the form-specific part of the graph. */
export type Projection = (g: GraphBuilder, xq: string, s: string) => string;

/** The per-layer projections and norms, as initializer names (the exporter has stored them). */
export interface LayerNames {
  readonly attnNorm: string;
  readonly attnSubNorm: string;
  readonly ffnNorm: string;
  readonly ffnSubNorm: string;
  readonly wq: Projection;
  readonly wk: Projection;
  readonly wv: Projection;
  readonly wo: Projection;
  readonly wGate: Projection;
  readonly wUp: Projection;
  readonly wDown: Projection;
}

export interface ModelNames {
  /** [vocab, embed] in float (F32, F16 or BF16). */
  readonly embedding: string;
  readonly embeddingType: DataType;
  /** [vocab, embed]: the embedding itself when tied. */
  readonly head: string;
  readonly headType: DataType;
  readonly outputNorm: string;
  readonly layers: readonly LayerNames[];
}

function toFloat(g: GraphBuilder, name: string, type: DataType): string {
  return type === DT.FLOAT ? name : g.op("Cast", [name], { to: { i: DT.FLOAT } });
}

/**
 * Where the float ops (RMSNorm, RoPE, attention) compute: `f32`, or `f64` as barbell's reference kernels do (float64
 * inside, rounded to f32 once per output), which makes those ops agree with barbell to the last bit nearly always.
 */
export type FloatPrecision = "f32" | "f64";

/** Casts to the compute precision and back (no-ops under f32). */
class Precision {
  constructor(
    private readonly g: GraphBuilder,
    readonly p: FloatPrecision,
  ) {}
  hi(x: string): string {
    return this.p === "f64" ? this.g.op("Cast", [x], { to: { i: DT.DOUBLE } }) : x;
  }
  lo(x: string): string {
    return this.p === "f64" ? this.g.op("Cast", [x], { to: { i: DT.FLOAT } }) : x;
  }
  /** A scalar constant in the compute precision. */
  scalar(name: string, value: number): string {
    return this.p === "f64" ? this.g.constant(`${name}_f64`, DT.DOUBLE, [], new Uint8Array(Float64Array.of(value).buffer)) : this.g.f32(name, [value]);
  }
}

/** x / sqrt(mean(x²) + eps) · w, as barbell's rmsNorm (eps added to the mean, one rounding at the end under f64). */
function rmsNorm(g: GraphBuilder, P: Precision, x: string, weight: string): string {
  const xd = P.hi(x);
  const ms = g.op("ReduceMean", [g.op("Mul", [xd, xd]), "/c/axis_last"], { keepdims: { i: 1 } });
  const denom = g.op("Sqrt", [g.op("Add", [ms, P.p === "f64" ? "/c/rms_eps_f64" : "/c/rms_eps"])]);
  return P.lo(g.op("Mul", [g.op("Div", [xd, denom]), P.hi(weight)]));
}

/** BitNet's per-token absmax int8 quantization; returns [x_q (float integers), s]. */
function actQuant(g: GraphBuilder, x: string): [string, string] {
  const absmax = g.op("ReduceMax", [g.op("Abs", [x]), "/c/axis_last"], { keepdims: { i: 1 } });
  const s = g.op("Div", ["/c/127", g.op("Max", [absmax, "/c/qeps"])]);
  const q = g.op("Clip", [g.op("Round", [g.op("Mul", [x, s])]), "/c/-128", "/c/127"]);
  return [q, s];
}

/** NeoX RoPE on [b, s, heads, d] with cos/sin [b, s, 1, d/2]. */
function rope(g: GraphBuilder, P: Precision, x: string, cos: string, sin: string): string {
  const [x1, x2] = g.ops("Split", [P.hi(x)], 2, { axis: { i: 3 }, num_outputs: { i: 2 } }) as [string, string];
  const o1 = g.op("Sub", [g.op("Mul", [x1, cos]), g.op("Mul", [x2, sin])]);
  const o2 = g.op("Add", [g.op("Mul", [x2, cos]), g.op("Mul", [x1, sin])]);
  return P.lo(g.op("Concat", [o1, o2], { axis: { i: 3 } }));
}

/** The cos/sin table [positions, headDim/2], in float64 as barbell's RoPE computes it (stored as f32 or f64). */
export function ropeTables(c: BitnetConfig, positions: number): { cos: Float64Array; sin: Float64Array } {
  const half = c.headDim / 2;
  const cos = new Float64Array(positions * half);
  const sin = new Float64Array(positions * half);
  for (let p = 0; p < positions; p++) {
    for (let j = 0; j < half; j++) {
      const angle = p * Math.pow(c.ropeTheta, (-2 * j) / c.headDim);
      cos[p * half + j] = Math.cos(angle);
      sin[p * half + j] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

/**
 * Builds the decoder's nodes into `g` (weights already named in `w`; the rope tables as `/rope/cos`, `/rope/sin`)
 * and returns the graph's inputs and outputs.
 */
export function buildDecoder(g: GraphBuilder, c: BitnetConfig, w: ModelNames, precision: FloatPrecision = "f32"): { inputs: ValueInfoDef[]; outputs: ValueInfoDef[] } {
  const { batch, seq, past, total } = DIMS;
  const P = new Precision(g, precision);
  const groups = c.heads / c.kvHeads;
  g.i64("/c/axis_last", [-1]);
  g.f32("/c/127", [127]);
  g.f32("/c/-128", [-128]);
  g.f32("/c/qeps", [1e-5]);
  P.scalar("/c/rms_eps", c.rmsEps); // read by rmsNorm
  const attnScale = P.scalar("/c/attn_scale", 1 / Math.sqrt(c.headDim));
  const zero = P.scalar("/c/zero", 0);
  // A large finite negative, not −∞: a row with every key masked (left padding) then gets finite weights instead of
  // NaN, which would reach the other rows through 0 · NaN in probs · V.
  const masked = P.scalar("/c/masked", -3e38);
  g.i64("/c/axes_2", [2]);
  g.i64("/c/axes_1", [1]);
  g.i64("/c/axes_123", [1, 2, 3]);
  g.i64("/c/0", [0], []);
  g.i64("/c/1", [1], []);
  g.i64("/c/shape_q", [0, 0, c.heads, c.headDim]);
  g.i64("/c/shape_kv", [0, 0, c.kvHeads, c.headDim]);
  g.i64("/c/shape_groups", [0, c.kvHeads, groups, -1, c.headDim]);
  g.i64("/c/shape_heads", [0, c.heads, -1, c.headDim]);
  g.i64("/c/shape_merge", [0, 0, c.heads * c.headDim]);

  // Positions: RoPE by position_ids; the mask by index (query i sits at past + i) and attention_mask.
  const cos = g.op("Unsqueeze", [g.op("Gather", ["/rope/cos", IO_NAMES.positionIds]), "/c/axes_2"]);
  const sin = g.op("Unsqueeze", [g.op("Gather", ["/rope/sin", IO_NAMES.positionIds]), "/c/axes_2"]);
  const totalLen = g.op("Gather", [g.op("Shape", [IO_NAMES.attentionMask]), "/c/1"], { axis: { i: 0 } });
  const seqLen = g.op("Gather", [g.op("Shape", [IO_NAMES.inputIds]), "/c/1"], { axis: { i: 0 } });
  const pastLen = g.op("Sub", [totalLen, seqLen]);
  const keyPos = g.op("Range", ["/c/0", totalLen, "/c/1"]);
  const queryPos = g.op("Unsqueeze", [g.op("Range", [pastLen, totalLen, "/c/1"]), "/c/axes_1"]);
  const causal = g.op("LessOrEqual", [keyPos, queryPos]); // [s, T]
  const keep = g.op("Unsqueeze", [g.op("Cast", [IO_NAMES.attentionMask], { to: { i: DT.BOOL } }), "/c/axes_123"]); // [b, 1, 1, 1, T]
  const bias = g.op("Where", [g.op("And", [causal, keep]), zero, masked]); // [b, 1, 1, s, T]

  let h = toFloat(g, g.op("Gather", [w.embedding, IO_NAMES.inputIds]), w.embeddingType);
  for (const [l, lw] of w.layers.entries()) {
    const x = rmsNorm(g, P, h, lw.attnNorm);
    const [xq, xs] = actQuant(g, x);
    const q = g.op("Reshape", [lw.wq(g, xq, xs), "/c/shape_q"]);
    const k = g.op("Reshape", [lw.wk(g, xq, xs), "/c/shape_kv"]);
    const v = g.op("Reshape", [lw.wv(g, xq, xs), "/c/shape_kv"]);
    const qr = g.op("Transpose", [rope(g, P, q, cos, sin)], { perm: { ints: [0, 2, 1, 3] } });
    const kr = g.op("Transpose", [rope(g, P, k, cos, sin)], { perm: { ints: [0, 2, 1, 3] } });
    const vt = g.op("Transpose", [v], { perm: { ints: [0, 2, 1, 3] } });
    const keys = g.named("Concat", [IO_NAMES.pastKey(l), kr], IO_NAMES.presentKey(l), { axis: { i: 2 } });
    const values = g.named("Concat", [IO_NAMES.pastValue(l), vt], IO_NAMES.presentValue(l), { axis: { i: 2 } });
    // Grouped heads: query head h uses KV head floor(h / groups); [b, kv, groups, s, d] against [b, kv, 1, T, d].
    const q5 = P.hi(g.op("Reshape", [qr, "/c/shape_groups"]));
    const k5 = P.hi(g.op("Unsqueeze", [keys, "/c/axes_2"]));
    const v5 = P.hi(g.op("Unsqueeze", [values, "/c/axes_2"]));
    const scores = g.op("Mul", [g.op("MatMul", [q5, g.op("Transpose", [k5], { perm: { ints: [0, 1, 2, 4, 3] } })]), attnScale]);
    const probs = g.op("Softmax", [g.op("Add", [scores, bias])], { axis: { i: -1 } });
    const heads = P.lo(g.op("Reshape", [g.op("MatMul", [probs, v5]), "/c/shape_heads"]));
    const a = g.op("Reshape", [g.op("Transpose", [heads], { perm: { ints: [0, 2, 1, 3] } }), "/c/shape_merge"]);
    const [aq, as] = actQuant(g, rmsNorm(g, P, a, lw.attnSubNorm));
    const h1 = g.op("Add", [h, lw.wo(g, aq, as)]);
    const y = rmsNorm(g, P, h1, lw.ffnNorm);
    const [yq, ys] = actQuant(g, y);
    const gate = lw.wGate(g, yq, ys);
    const act = c.activation === "relu2" ? g.op("Mul", [g.op("Relu", [gate]), g.op("Relu", [gate])]) : g.op("Mul", [gate, g.op("Sigmoid", [gate])]);
    const m = g.op("Mul", [act, lw.wUp(g, yq, ys)]);
    const [mq, ms] = actQuant(g, rmsNorm(g, P, m, lw.ffnSubNorm));
    h = g.op("Add", [h1, lw.wDown(g, mq, ms)]);
  }
  const normed = rmsNorm(g, P, h, w.outputNorm);
  const headT = g.op("Transpose", [toFloat(g, w.head, w.headType)], { perm: { ints: [1, 0] } });
  g.named("MatMul", [normed, headT], IO_NAMES.logits);

  const kvShape = (len: string): (string | number)[] => [batch, c.kvHeads, len, c.headDim];
  const inputs: ValueInfoDef[] = [
    { name: IO_NAMES.inputIds, dataType: DT.INT64, shape: [batch, seq] },
    { name: IO_NAMES.attentionMask, dataType: DT.INT64, shape: [batch, total] },
    { name: IO_NAMES.positionIds, dataType: DT.INT64, shape: [batch, seq] },
  ];
  const outputs: ValueInfoDef[] = [{ name: IO_NAMES.logits, dataType: DT.FLOAT, shape: [batch, seq, c.vocabSize] }];
  for (let l = 0; l < c.layers; l++) {
    inputs.push({ name: IO_NAMES.pastKey(l), dataType: DT.FLOAT, shape: kvShape(past) });
    inputs.push({ name: IO_NAMES.pastValue(l), dataType: DT.FLOAT, shape: kvShape(past) });
    outputs.push({ name: IO_NAMES.presentKey(l), dataType: DT.FLOAT, shape: kvShape(total) });
    outputs.push({ name: IO_NAMES.presentValue(l), dataType: DT.FLOAT, shape: kvShape(total) });
  }
  return { inputs, outputs };
}
