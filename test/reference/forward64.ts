/**
 * An independent float64 reference forward pass for BitNet GGUF models: a test oracle for barbell's real forward
 * pass. Written from docs/BITNET.md alone (§1.2 layer order, §1.3 NeoX RoPE, §1.4 activations, §1.6 archs and
 * `.scale` tensors, §1.7 names, §2.2–2.3 activation quantization, §3.3 metadata). Weights are decoded to dense
 * floats; everything after decoding is float64 with one plain loop per formula. It shares no kernels with
 * barbell: it imports only the GGUF reader and the reference block decoders.
 */
import { readGgufBytes, type GgufFile } from "../../src/formats/gguf/index.js";
import { QUANT_TRAITS } from "../../src/quant/table.js";

/** A dense weight matrix: `rows` outputs × `cols` inputs, row-major (GGUF dims are [cols, rows]). */
interface Matrix {
  readonly rows: number;
  readonly cols: number;
  readonly data: Float64Array;
}

/** One projection: its dense weights (γ·trits as stored) and the optional per-tensor `.scale` multiplier. */
interface Projection {
  readonly weight: Matrix;
  readonly scale: number;
}

/** A BitLinear input: x itself with divisor 1, or the int8 codes q of x with divisor s (x ≈ q / s). */
interface LinearInput {
  readonly values: Float64Array;
  readonly divisor: number;
}

function isQuantName(name: string): name is keyof typeof QUANT_TRAITS {
  return Object.hasOwn(QUANT_TRAITS, name);
}

async function readMatrix(file: GgufFile, name: string): Promise<Matrix | undefined> {
  const info = file.tensor(name);
  if (info === undefined) {
    return undefined;
  }
  if (!isQuantName(info.typeName)) {
    throw new Error(`[forward64] tensor ${name} has type ${info.typeName}, which has no decoder`);
  }
  const cols = info.dims[0] ?? 1;
  const rows = info.elementCount / cols;
  const floats = QUANT_TRAITS[info.typeName].decode(await file.tensorData(info), rows, cols);
  return { rows, cols, data: Float64Array.from(floats) };
}

async function requireMatrix(file: GgufFile, name: string, rows: number, cols: number): Promise<Matrix> {
  const m = await readMatrix(file, name);
  if (m === undefined || m.rows !== rows || m.cols !== cols) {
    const got = m === undefined ? "missing" : `[${m.cols}, ${m.rows}]`;
    throw new Error(`[forward64] tensor ${name} should have GGUF dims [${cols}, ${rows}], got ${got}`);
  }
  return m;
}

async function readProjection(file: GgufFile, prefix: string, outDim: number, inDim: number): Promise<Projection> {
  const weight = await requireMatrix(file, `${prefix}.weight`, outDim, inDim);
  const scale = await readMatrix(file, `${prefix}.scale`);
  if (scale !== undefined && scale.data.length !== 1) {
    throw new Error(`[forward64] ${prefix}.scale should hold one value, has ${scale.data.length}`);
  }
  return { weight, scale: scale?.data[0] ?? 1 };
}

/** Round half to even, as PyTorch and ggml's nearest_int round (JavaScript's Math.round rounds half up). */
export function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const frac = v - f;
  if (frac !== 0.5) {
    return frac < 0.5 ? f : f + 1;
  }
  return f % 2 === 0 ? f : f + 1;
}

/** Per-token absmax int8: s = 127 / max(max|x|, 1e-5), q = clamp(roundHalfEven(x·s), −128, 127). */
export function quantizeActivation(x: Float64Array): LinearInput {
  let absMax = 0;
  for (const v of x) {
    absMax = Math.max(absMax, Math.abs(v));
  }
  const s = 127 / Math.max(absMax, 1e-5);
  const q = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    q[i] = Math.min(127, Math.max(-128, roundHalfEven((x[i] ?? 0) * s)));
  }
  return { values: q, divisor: s };
}

/** y[o] = (Σ_i W[o, i] · input[i]) / divisor · scale. */
function linear(p: Projection, input: LinearInput): Float64Array {
  const { rows, cols, data } = p.weight;
  const y = new Float64Array(rows);
  for (let o = 0; o < rows; o++) {
    let sum = 0;
    for (let i = 0; i < cols; i++) {
      sum += (data[o * cols + i] ?? 0) * (input.values[i] ?? 0);
    }
    y[o] = (sum / input.divisor) * p.scale;
  }
  return y;
}

/** RMSNorm: x / sqrt(mean(x²) + eps) · weight. */
function rmsNorm(x: Float64Array, weight: Matrix, eps: number): Float64Array {
  let sumSq = 0;
  for (const v of x) {
    sumSq += v * v;
  }
  const inv = 1 / Math.sqrt(sumSq / x.length + eps);
  return x.map((v, i) => v * inv * (weight.data[i] ?? 0));
}

/**
 * NeoX ("rotate_half") RoPE on one head in place: dim j pairs with dim j + d/2, angle pos · base^(−2j/d).
 * `offset` is where the head starts in `x`.
 */
export function ropeNeox(x: Float64Array, offset: number, headDim: number, pos: number, base: number): void {
  const half = headDim / 2;
  for (let j = 0; j < half; j++) {
    const angle = pos * Math.pow(base, (-2 * j) / headDim);
    const a = x[offset + j] ?? 0;
    const b = x[offset + j + half] ?? 0;
    x[offset + j] = a * Math.cos(angle) - b * Math.sin(angle);
    x[offset + j + half] = b * Math.cos(angle) + a * Math.sin(angle);
  }
}

function requireNumber(file: GgufFile, key: string): number {
  const v = file.metadata.getNumber(key);
  if (v === undefined) {
    throw new Error(`[forward64] metadata ${key} is missing`);
  }
  return v;
}

/**
 * Computes BitNet logits in float64 for every position of `tokens`, processed as one causal prefill (position p
 * attends to positions 0..p, RoPE positions start at 0). Returns one Float64Array of length vocab per token.
 *
 * Per layer (docs/BITNET.md §1.2): x = RMSNorm_attn(h); q, k, v = BitLinear(x); NeoX RoPE on q and k; softmax
 * attention with scale 1/sqrt(headDim) (max subtracted), query head h reading KV head ⌊h / (heads / kvHeads)⌋;
 * a = RMSNorm_attn_sub(heads concatenated); h += BitLinear_o(a); y = RMSNorm_ffn(h); m = act(BitLinear_gate(y)) ⊙
 * BitLinear_up(y) with act = ReLU² for `bitnet-25` / `bitnet-b1.58` and SiLU for `bitnet`; h +=
 * BitLinear_down(RMSNorm_ffn_sub(m)). Then logits = W_head · RMSNorm_output(h), W_head = `output.weight` if present
 * else `token_embd.weight`, dense; a Q8_0 head with `quantizeActivations` sees its input quantized per 32-element
 * block like a BitLinear input (llama.cpp's Q8_0 matmul), any other head float activations. RMSNorm is x / sqrt(mean(x²) + eps) · w with eps
 * as stored.
 *
 * BitLinear(x) = W · x · scale, where W is the decoded tensor (γ·trits) and scale is `blk.N.<proj>.scale` if
 * present, else 1. With `quantizeActivations`, x is first quantized per token: s = 127 / max(max|x|, 1e-5),
 * q = clamp(roundHalfEven(x·s), −128, 127), and BitLinear(x) = (Σ q·w) / s · scale — q/k/v share one
 * quantization of x, gate/up one of y; o and down quantize their own inputs.
 *
 * Hyperparameters come from `{arch}.*` metadata; `head_count_kv` defaults to `head_count`, `rope.dimension_count`
 * to the head dim (any other value is an error) and `vocab_size` to the embedding's row count.
 */
export async function referenceLogits(
  ggufBytes: Uint8Array,
  tokens: readonly number[],
  options: { quantizeActivations: boolean },
): Promise<Float64Array[]> {
  const file = readGgufBytes(ggufBytes);
  const arch = file.metadata.getString("general.architecture") ?? "";
  if (arch !== "bitnet" && arch !== "bitnet-25" && arch !== "bitnet-b1.58") {
    throw new Error(`[forward64] architecture "${arch}" is not a BitNet arch`);
  }
  const hidden = requireNumber(file, `${arch}.embedding_length`);
  const layers = requireNumber(file, `${arch}.block_count`);
  const ffn = requireNumber(file, `${arch}.feed_forward_length`);
  const heads = requireNumber(file, `${arch}.attention.head_count`);
  const kvHeads = file.metadata.getNumber(`${arch}.attention.head_count_kv`) ?? heads;
  const eps = requireNumber(file, `${arch}.attention.layer_norm_rms_epsilon`);
  const ropeBase = requireNumber(file, `${arch}.rope.freq_base`);
  const headDim = hidden / heads;
  const ropeDims = file.metadata.getNumber(`${arch}.rope.dimension_count`) ?? headDim;
  if (!Number.isInteger(headDim) || heads % kvHeads !== 0 || ropeDims !== headDim) {
    throw new Error(`[forward64] unsupported shape: hidden ${hidden}, heads ${heads}/${kvHeads}, rope ${ropeDims}`);
  }
  const kvDim = kvHeads * headDim;
  const group = heads / kvHeads;
  const embedding = await readMatrix(file, "token_embd.weight");
  const vocab = file.metadata.getNumber(`${arch}.vocab_size`) ?? embedding?.rows ?? 0;
  if (embedding === undefined || embedding.cols !== hidden) {
    throw new Error(`[forward64] token_embd.weight should have GGUF dims [${hidden}, vocab]`);
  }
  const head = (await readMatrix(file, "output.weight")) ?? embedding;
  if (head.rows !== vocab || head.cols !== hidden) {
    throw new Error(`[forward64] output head should have GGUF dims [${hidden}, ${vocab}]`);
  }
  const act = arch === "bitnet" ? (g: number) => g / (1 + Math.exp(-g)) : (g: number) => Math.max(g, 0) ** 2;
  const prepare = (x: Float64Array): LinearInput =>
    options.quantizeActivations ? quantizeActivation(x) : { values: x, divisor: 1 };

  // Embedding lookup: row t of token_embd.
  const h = tokens.map((t) => {
    if (!Number.isInteger(t) || t < 0 || t >= embedding.rows) {
      throw new Error(`[forward64] token ${t} is outside the vocabulary`);
    }
    return embedding.data.slice(t * hidden, (t + 1) * hidden);
  });

  for (let l = 0; l < layers; l++) {
    const p = `blk.${l}`;
    const attnNorm = await requireMatrix(file, `${p}.attn_norm.weight`, 1, hidden);
    const wq = await readProjection(file, `${p}.attn_q`, hidden, hidden);
    const wk = await readProjection(file, `${p}.attn_k`, kvDim, hidden);
    const wv = await readProjection(file, `${p}.attn_v`, kvDim, hidden);
    const wo = await readProjection(file, `${p}.attn_output`, hidden, hidden);
    const attnSubNorm = await requireMatrix(file, `${p}.attn_sub_norm.weight`, 1, hidden);
    const ffnNorm = await requireMatrix(file, `${p}.ffn_norm.weight`, 1, hidden);
    const wGate = await readProjection(file, `${p}.ffn_gate`, ffn, hidden);
    const wUp = await readProjection(file, `${p}.ffn_up`, ffn, hidden);
    const wDown = await readProjection(file, `${p}.ffn_down`, hidden, ffn);
    const ffnSubNorm = await requireMatrix(file, `${p}.ffn_sub_norm.weight`, 1, ffn);

    // Attention branch: q, k, v for every position, RoPE on q and k.
    const xs = h.map((row) => prepare(rmsNorm(row, attnNorm, eps)));
    const q = xs.map((x) => linear(wq, x));
    const k = xs.map((x) => linear(wk, x));
    const v = xs.map((x) => linear(wv, x));
    for (let pos = 0; pos < tokens.length; pos++) {
      for (let hd = 0; hd < heads; hd++) {
        ropeNeox(q[pos] ?? new Float64Array(0), hd * headDim, headDim, pos, ropeBase);
      }
      for (let hd = 0; hd < kvHeads; hd++) {
        ropeNeox(k[pos] ?? new Float64Array(0), hd * headDim, headDim, pos, ropeBase);
      }
    }
    for (let pos = 0; pos < tokens.length; pos++) {
      const qp = q[pos] ?? new Float64Array(0);
      const a = new Float64Array(hidden);
      for (let hd = 0; hd < heads; hd++) {
        const kvOff = Math.floor(hd / group) * headDim;
        const scores = new Float64Array(pos + 1);
        for (let t = 0; t <= pos; t++) {
          const kt = k[t] ?? new Float64Array(0);
          let dot = 0;
          for (let d = 0; d < headDim; d++) {
            dot += (qp[hd * headDim + d] ?? 0) * (kt[kvOff + d] ?? 0);
          }
          scores[t] = dot / Math.sqrt(headDim);
        }
        const max = Math.max(...scores);
        const weights = scores.map((sc) => Math.exp(sc - max));
        const total = weights.reduce((sum, w) => sum + w, 0);
        for (let t = 0; t <= pos; t++) {
          const vt = v[t] ?? new Float64Array(0);
          for (let d = 0; d < headDim; d++) {
            a[hd * headDim + d] = (a[hd * headDim + d] ?? 0) + ((weights[t] ?? 0) / total) * (vt[kvOff + d] ?? 0);
          }
        }
      }
      const o = linear(wo, prepare(rmsNorm(a, attnSubNorm, eps)));
      h[pos] = (h[pos] ?? new Float64Array(hidden)).map((x, i) => x + (o[i] ?? 0));
    }

    // Feed-forward branch: gate and up share one quantization of y.
    for (let pos = 0; pos < tokens.length; pos++) {
      const hp = h[pos] ?? new Float64Array(hidden);
      const y = prepare(rmsNorm(hp, ffnNorm, eps));
      const up = linear(wUp, y);
      const m = linear(wGate, y).map((g, i) => act(g) * (up[i] ?? 0));
      const down = linear(wDown, prepare(rmsNorm(m, ffnSubNorm, eps)));
      h[pos] = hp.map((x, i) => x + (down[i] ?? 0));
    }
  }

  // Final norm and the dense head: float activations, except that a Q8_0 head quantizes them per 32-element
  // block and a Q4_K / Q5_K / Q6_K head per 256-element block (with `quantizeActivations`), as llama.cpp and
  // barbell's host backends compute those matmuls (integer heads: docs/heads.md).
  const outputNorm = await requireMatrix(file, "output_norm.weight", 1, hidden);
  const headType = file.tensor(file.tensor("output.weight") !== undefined ? "output.weight" : "token_embd.weight")?.typeName;
  const headBlock = headType === "q8_0" ? 32 : headType === "q4_k" || headType === "q5_k" || headType === "q6_k" ? 256 : 0;
  const headInput = (x: Float64Array): Float64Array => {
    if (!options.quantizeActivations || headBlock === 0) {
      return x;
    }
    const out = new Float64Array(x.length);
    for (let b = 0; b < x.length; b += headBlock) {
      const { values, divisor } = quantizeActivation(x.slice(b, b + headBlock));
      values.forEach((q, i) => (out[b + i] = q / divisor));
    }
    return out;
  };
  return h.map((row) => linear({ weight: head, scale: 1 }, { values: headInput(rmsNorm(row, outputNorm, eps)), divisor: 1 }));
}
