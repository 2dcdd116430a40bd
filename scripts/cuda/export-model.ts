/**
 * The harness's model check: a small seeded BitNet model (f16 embeddings, a Q8_0 integer head, ternary
 * projections), and the greedy ids the JS reference decodes from a fixed prompt, token by token, with the op
 * table's bitnetBlock decomposition (the kernels src/model/bitnet/forward.ts composes, in its order), a final
 * RMSNorm of the last row and the integer Q8_0 head (matmulQ8I8), as the engine runs a Q8_0-head model.
 */
import type { Backend, BitnetBlockParams, BitnetBlockWeights, TensorRef } from "../../src/backends/backend.js";
import { createJsBackend } from "../../src/backends/js/index.js";
import { storageBytes } from "../../src/backends/storage.js";
import { mulberry32 } from "../../src/model/bitnet/fixture.js";
import { packTernary } from "../../src/quant/layouts.js";
import { QUANT_TRAITS } from "../../src/quant/table.js";
import { tensor, type VectorCase, type VectorTensor } from "./vector-file.js";

/** The model's shape: GQA (4 query heads over 2 KV heads), ReLU², small enough for the JS reference. */
export const MODEL_SHAPE = { vocab: 512, embed: 128, layers: 2, heads: 4, kvHeads: 2, headDim: 32, ffn: 256, ctx: 64 } as const;
export const MODEL_PROMPT = Int32Array.of(1, 17, 300, 42, 7, 511, 0, 99);
export const MODEL_STEPS = 16;

type RunBlock = (js: Backend, h: TensorRef, positions: TensorRef, k: TensorRef, v: TensorRef, pos0: number, w: BitnetBlockWeights, p: BitnetBlockParams, out: TensorRef) => void;

export function exportModelCase({ runBlock }: { runBlock: RunBlock }): VectorCase {
  const { vocab, embed, layers, heads, kvHeads, headDim, ffn, ctx } = MODEL_SHAPE;
  const r = mulberry32(1958);
  const js = createJsBackend();
  const make = (dtype: TensorRef["dtype"], shape: number[], data?: ArrayBufferView, scale?: number): TensorRef => {
    const buffer = js.alloc(storageBytes(dtype, shape));
    if (data !== undefined) {
      js.write(buffer, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    }
    return scale === undefined ? { buffer, dtype, shape } : { buffer, dtype, shape, scale };
  };
  const readF32 = (t: TensorRef): Float32Array => new Float32Array(js.read(t.buffer, 0, storageBytes(t.dtype, t.shape)).slice().buffer);
  const tensors: VectorTensor[] = [];
  const attrs: Record<string, number> = {
    vocab, embed, layers, heads, kvHeads, headDim, ffn, ctx,
    eps: 1e-5, ropeTheta: 500000, activation: 4, embdDtype: 1, headDtype: 3,
  };
  const normWeights = (n: number): Float32Array => Float32Array.from({ length: n }, () => 0.8 + 0.4 * r());
  const embdBytes = QUANT_TRAITS.f16.encode(Float32Array.from({ length: vocab * embed }, () => (r() * 2 - 1)), vocab, embed);
  const headBytes = QUANT_TRAITS.q8_0.encode(Float32Array.from({ length: vocab * embed }, () => (r() * 2 - 1) * 0.2), vocab, embed);
  const outputNorm = normWeights(embed);
  tensors.push(tensor("token_embd", "raw", [embdBytes.byteLength], embdBytes), tensor("output_norm", "f32", [embed], outputNorm), tensor("output", "raw", [headBytes.byteLength], headBytes));
  const blocks: BitnetBlockWeights[] = [];
  for (let l = 0; l < layers; l++) {
    const norms = { attnNorm: normWeights(embed), attnSubNorm: normWeights(heads * headDim), ffnNorm: normWeights(embed), ffnSubNorm: normWeights(ffn) };
    const shapes = { wq: [heads * headDim, embed], wk: [kvHeads * headDim, embed], wv: [kvHeads * headDim, embed], wo: [embed, heads * headDim], wGate: [ffn, embed], wUp: [ffn, embed], wDown: [embed, ffn] } as const;
    const refs: Record<string, TensorRef> = {};
    for (const [name, [n, k]] of Object.entries(shapes)) {
      const packed = packTernary(Int8Array.from({ length: n * k }, () => Math.floor(r() * 3) - 1), n, k);
      const gamma = Math.fround(1.2 / Math.sqrt(k));
      refs[name] = make("ternary", [n, k], packed, gamma);
      const cudaName = { wq: "wq", wk: "wk", wv: "wv", wo: "wo", wGate: "w_gate", wUp: "w_up", wDown: "w_down" }[name] ?? name;
      tensors.push(tensor(`blk.${l}.${cudaName}`, "raw", [packed.byteLength], packed));
      attrs[`blk.${l}.${cudaName}.gamma`] = gamma;
    }
    for (const [name, w] of Object.entries(norms)) {
      refs[name] = make("f32", [w.length], w);
      const cudaName = { attnNorm: "attn_norm", attnSubNorm: "attn_sub_norm", ffnNorm: "ffn_norm", ffnSubNorm: "ffn_sub_norm" }[name] ?? name;
      tensors.push(tensor(`blk.${l}.${cudaName}`, "f32", [w.length], w));
    }
    blocks.push(refs as unknown as BitnetBlockWeights);
  }
  const params: BitnetBlockParams = { heads, kvHeads, headDim, eps: 1e-5, ropeTheta: 500000, attnScale: 1 / Math.sqrt(headDim), activation: "relu2" };
  const table = make("f16", [vocab, embed], embdBytes);
  const head = make("q8_0", [vocab, embed], headBytes);
  const outNorm = make("f32", [embed], outputNorm);
  const caches = blocks.map(() => ({ k: make("f32", [ctx, kvHeads, headDim]), v: make("f32", [ctx, kvHeads, headDim]) }));
  const ids: number[] = [];
  let input = Array.from(MODEL_PROMPT);
  let pos0 = 0;
  for (let step = 0; step < MODEL_STEPS; step++) {
    const seq = input.length;
    let h = make("f32", [seq, embed]);
    js.kernels.embedding(make("i32", [seq], Int32Array.from(input)), table, h);
    const positions = make("i32", [seq], Int32Array.from({ length: seq }, (_, i) => pos0 + i));
    blocks.forEach((w, l) => {
      const out = make("f32", [seq, embed]);
      const cache = caches[l] as { k: TensorRef; v: TensorRef };
      runBlock(js, h, positions, cache.k, cache.v, pos0, w, params, out);
      h = out;
    });
    const last = make("f32", [1, embed], readF32(h).subarray((seq - 1) * embed));
    const normed = make("f32", [1, embed]);
    js.kernels.rmsNorm(last, outNorm, 1e-5, normed);
    const logits = make("f32", [1, vocab]);
    js.kernels.matmulQ8I8(normed, head, logits);
    const l = readF32(logits);
    let best = 0;
    for (let i = 1; i < vocab; i++) {
      if ((l[i] ?? 0) > (l[best] ?? 0)) {
        best = i;
      }
    }
    ids.push(best);
    pos0 += seq;
    input = [best];
  }
  tensors.push(tensor("prompt", "i32", [MODEL_PROMPT.length], MODEL_PROMPT), tensor("ids", "i32", [ids.length], Int32Array.from(ids), "expect"));
  return { name: `bitnet ${layers}L e${embed} greedy`, kernel: "model", attrs, tensors, rtol: 0, atol: 0 };
}
