/**
 * Seeded random tiny BitNet models as GGUF bytes, for tests and benchmarks. Tensor names, shapes and metadata
 * follow the official 2B-4T GGUF (docs/BITNET.md §1.7, §3.3); the tokenizer is a toy byte-level BPE
 * (256 byte tokens, a few English merges, control specials) in llama.cpp's `gpt2` metadata form.
 */
import { ShapeError } from "../../core/errors.js";
import { gv, writeGguf, type GgufTensorInput, type GgufValue } from "../../formats/gguf/index.js";
import { roundToHalf } from "../../quant/half.js";
import { QUANT_TRAITS } from "../../quant/table.js";
import type { DenseFormat } from "../../quant/dtypes.js";
import type { QuantName } from "../../quant/types.js";
import { Rng } from "../sampling/rng.js";

/** Architecture strings barbell accepts for BitNet GGUF files. */
export type BitnetArch = "bitnet" | "bitnet-25" | "bitnet-b1.58";

/** Storage types for the ternary projection weights (f32/f16 hold γ·trits as plain floats). */
export type FixtureWeightType = "i2_s" | "tq2_0" | "tq1_0" | "f32" | "f16" | "bf16";

/** Storage types for the token embedding (and an untied output head). */
export type FixtureEmbeddingType = DenseFormat;

/** Options of `makeBitnetFixture`; every field has a tiny default. */
export interface BitnetFixtureOptions {
  /** Default `bitnet-b1.58` (ReLU² FFN, GQA); `bitnet` is the older SiLU arch. */
  readonly arch?: BitnetArch;
  /** Hidden size (embedding_length). Default 128 (i2_s needs multiples of 128, tq*_0 of 256). */
  readonly hidden?: number;
  /** Transformer blocks. Default 2. */
  readonly layers?: number;
  /** Query heads. Default 4 (head dim 32). */
  readonly heads?: number;
  /** KV heads; must divide `heads`. Default 2 (`bitnet-b1.58`) or `heads` (`bitnet`). */
  readonly kvHeads?: number;
  /** FFN width. Default 256. */
  readonly ffn?: number;
  /** Vocabulary size ≥ 259 (256 bytes + 3 specials); up to 40 merges, then reserved tokens. Default 300. */
  readonly vocab?: number;
  /** context_length. Default 256. */
  readonly contextLength?: number;
  /** Ternary weight storage. Default `i2_s`. */
  readonly weightType?: FixtureWeightType;
  /** Embedding storage. Default `f16` (as bitnet.cpp keeps it). */
  readonly embeddingType?: FixtureEmbeddingType;
  /** True (default) for a tied head (no `output.weight`), false to write a separate `output.weight`. */
  readonly tied?: boolean;
  /** PRNG seed. Default 1. */
  readonly seed?: number;
}

/** mulberry32 (barbell's one PRNG, src/model/sampling/rng.ts) as a function: test weights, fully deterministic. */
export function mulberry32(seed: number): () => number {
  const rng = new Rng(seed);
  return () => rng.next();
}

/** GPT-2's byte → printable character map (bytes that print as themselves keep their code point). */
function byteToUnicode(): string[] {
  const out: string[] = [];
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    out.push(String.fromCodePoint(printable ? b : next++));
  }
  return out;
}

// Each merge's parts exist before it (a byte token or an earlier merge).
const MERGES = [
  "Ġ t", "Ġ a", "h e", "i n", "r e", "o n", "Ġt he", "e r", "Ġ s", "a t", "Ġ w", "Ġ o", "e n", "Ġ c", "i t",
  "i s", "a n", "o r", "e s", "Ġ b", "e d", "Ġ f", "in g", "Ġ p", "o u", "Ġa n", "a l", "a r", "Ġt o", "Ġ m",
  "Ġo f", "Ġ in", "Ġ d", "Ġ h", "Ġan d", "i c", "a s", "l e", "Ġt h", "i on",
];

const SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"];

function tokenizer(vocab: number): [string, GgufValue][] {
  const base = byteToUnicode();
  const merges = MERGES.slice(0, Math.max(0, vocab - base.length - SPECIALS.length));
  const tokens = [...base, ...merges.map((m) => m.replace(" ", "")), ...SPECIALS];
  const normal = tokens.length - SPECIALS.length;
  for (let i = 0; tokens.length < vocab; i++) {
    tokens.push(`<|reserved_special_token_${i}|>`);
  }
  const bos = normal;
  return [
    ["tokenizer.ggml.model", gv.string("gpt2")],
    ["tokenizer.ggml.tokens", gv.array("string", tokens)],
    ["tokenizer.ggml.scores", gv.array("f32", tokens.map((_, i) => (i < normal ? 0 : -1000)))],
    ["tokenizer.ggml.token_type", gv.array("i32", tokens.map((_, i) => (i < normal ? 1 : 3)))],
    ["tokenizer.ggml.merges", gv.array("string", merges)],
    ["tokenizer.ggml.bos_token_id", gv.u32(bos)],
    ["tokenizer.ggml.eos_token_id", gv.u32(bos + 1)],
    ["tokenizer.ggml.eot_token_id", gv.u32(bos + 2)],
    ["tokenizer.ggml.add_bos_token", gv.bool(true)],
  ];
}

// llama.cpp LLAMA_FTYPE values (bf16 = 32; the TQ and I2_S ones as the 2024 bitnet.cpp fork numbers them).
const FILE_TYPE: Record<FixtureWeightType, number> = { f32: 0, f16: 1, bf16: 32, tq1_0: 36, tq2_0: 37, i2_s: 40 };

function encodeTensor(name: string, type: QuantName, dims: readonly number[], values: Float32Array): GgufTensorInput {
  const traits = QUANT_TRAITS[type];
  const cols = dims[0] ?? 1;
  const rows = values.length / cols;
  if (traits.byteSize(rows, cols) === undefined || traits.ggmlType === undefined) {
    throw new ShapeError("size", `[fixture] ${name} [${dims.join(", ")}] cannot be stored as ${type}`);
  }
  return { name, dims, typeId: traits.ggmlType, data: traits.encode(values, rows, cols) };
}

/** Returns GGUF bytes of a seeded random tiny BitNet model; the same options always give the same bytes. */
export function makeBitnetFixture(opts: BitnetFixtureOptions = {}): Uint8Array {
  const arch = opts.arch ?? "bitnet-b1.58";
  const hidden = opts.hidden ?? 128;
  const layers = opts.layers ?? 2;
  const heads = opts.heads ?? 4;
  const kvHeads = opts.kvHeads ?? (arch === "bitnet" ? heads : 2);
  const ffn = opts.ffn ?? 256;
  const vocab = opts.vocab ?? 300;
  const weightType = opts.weightType ?? "i2_s";
  const embType = opts.embeddingType ?? "f16";
  const rand = mulberry32(opts.seed ?? 1);
  const sizes = { hidden, layers, heads, kvHeads, ffn, vocab };
  for (const [key, v] of Object.entries(sizes)) {
    if (!Number.isSafeInteger(v) || v < 1) {
      throw new ShapeError("size", `[fixture] ${key} must be a positive integer, got ${v}`);
    }
  }
  if (hidden % heads !== 0 || heads % kvHeads !== 0 || vocab < 256 + SPECIALS.length) {
    throw new ShapeError("size", `[fixture] need hidden % heads = 0, heads % kvHeads = 0, vocab ≥ 259`);
  }
  const headDim = hidden / heads;
  const kvDim = headDim * kvHeads;

  const floats = (n: number, scale: number, offset = 0): Float32Array =>
    Float32Array.from({ length: n }, () => offset + (rand() * 2 - 1) * scale);
  const ternary = (name: string, dims: readonly number[]): GgufTensorInput => {
    const gamma = roundToHalf(0.01 + rand() * 0.04); // half-exact so every storage type holds γ·t losslessly
    const n = dims.reduce((a, d) => a * d, 1);
    const values = Float32Array.from({ length: n }, () => (Math.floor(rand() * 3) - 1) * gamma);
    values[0] = gamma; // γ is the tensor's absmax, so the quantizers recover it exactly
    return encodeTensor(name, weightType, dims, values);
  };
  const norm = (name: string, n: number): GgufTensorInput => encodeTensor(name, "f32", [n], floats(n, 0.1, 1));

  const embedding = (name: string): GgufTensorInput =>
    encodeTensor(name, embType, [hidden, vocab], floats(hidden * vocab, 0.5));
  const tensors: GgufTensorInput[] = [embedding("token_embd.weight")];
  tensors.push(norm("output_norm.weight", hidden));
  if (opts.tied === false) {
    tensors.push(embedding("output.weight"));
  }
  for (let l = 0; l < layers; l++) {
    const p = `blk.${l}.`;
    tensors.push(
      norm(`${p}attn_norm.weight`, hidden),
      ternary(`${p}attn_q.weight`, [hidden, hidden]),
      ternary(`${p}attn_k.weight`, [hidden, kvDim]),
      ternary(`${p}attn_v.weight`, [hidden, kvDim]),
      ternary(`${p}attn_output.weight`, [hidden, hidden]),
      norm(`${p}attn_sub_norm.weight`, hidden),
      norm(`${p}ffn_norm.weight`, hidden),
      ternary(`${p}ffn_gate.weight`, [hidden, ffn]),
      ternary(`${p}ffn_up.weight`, [hidden, ffn]),
      ternary(`${p}ffn_down.weight`, [ffn, hidden]),
      norm(`${p}ffn_sub_norm.weight`, ffn),
    );
  }
  const metadata: [string, GgufValue][] = [
    ["general.architecture", gv.string(arch)],
    ["general.name", gv.string(`barbell-fixture-${arch}`)],
    ["general.file_type", gv.u32(FILE_TYPE[weightType])],
    ["general.quantization_version", gv.u32(2)],
    [`${arch}.vocab_size`, gv.u32(vocab)],
    [`${arch}.context_length`, gv.u32(opts.contextLength ?? 256)],
    [`${arch}.embedding_length`, gv.u32(hidden)],
    [`${arch}.block_count`, gv.u32(layers)],
    [`${arch}.feed_forward_length`, gv.u32(ffn)],
    [`${arch}.rope.dimension_count`, gv.u32(headDim)],
    [`${arch}.attention.head_count`, gv.u32(heads)],
    [`${arch}.attention.head_count_kv`, gv.u32(kvHeads)],
    [`${arch}.attention.layer_norm_rms_epsilon`, gv.f32(Math.fround(1e-5))],
    [`${arch}.rope.freq_base`, gv.f32(arch === "bitnet" ? 10000 : 500000)],
    ...tokenizer(vocab),
  ];
  return writeGguf({ metadata, tensors });
}
