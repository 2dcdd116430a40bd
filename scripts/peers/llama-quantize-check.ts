/**
 * Does barbell read llama.cpp's `llama-quantize` output, and do barbell's encoders write llama-quantize's bytes?
 * Not run in CI (llama.cpp is not built there); docs/convert.md reports the figures.
 *
 *   npx tsx scripts/gen-model.ts 700m F16.gguf f16 && npx tsx scripts/gen-model.ts 700m BB.gguf tq2_0
 *   llama-quantize F16.gguf LQ.gguf TQ2_0 2        # tied F16 embedding → Q6_K, projections → TQ2_0
 *   npx tsx scripts/peers/llama-quantize-check.ts F16.gguf LQ.gguf [BB.gguf]
 *
 * For every tensor llama-quantize converted to a type barbell encodes (TQ1_0, TQ2_0, Q6_K, Q8_0), barbell's encoder
 * is run on the F16 source values and the bytes compared block by block (for Q6_K: which fields differ, and the
 * RMS error of each side against the source). Then LQ.gguf is loaded with barbell and, given BB.gguf (barbell's
 * own file with the same weights), the logits of one token sequence are compared.
 */
import { FormatError } from "../../src/core/errors.js";
import { loadModel } from "../../src/engine/model.js";
import { openGguf, type GgufFile } from "../../src/formats/gguf/index.js";
import { QUANT_TRAITS } from "../../src/quant/table.js";

const ENCODED = ["tq1_0", "tq2_0", "q6_k", "q8_0"] as const;
type Encoded = (typeof ENCODED)[number];
const isEncoded = (t: string): t is Encoded => (ENCODED as readonly string[]).includes(t);

/** Rows compared at once (bounds the f32 scratch memory). */
const ROW_CHUNK = 1024;

/** Q6_K block fields: ql (low 4 bits), qh (high 2 bits), scales (int8 per 16), d (fp16). */
const Q6K_FIELDS: [string, number, number][] = [["ql", 0, 128], ["qh", 128, 192], ["scales", 192, 208], ["d", 208, 210]];

interface TensorReport {
  blocks: number;
  differing: number;
  fields: Map<string, number>;
  sqErrTheirs: number;
  sqErrOurs: number;
  values: number;
}

async function compareTensor(src: GgufFile, lq: GgufFile, name: string, type: Encoded): Promise<TensorReport> {
  const from = src.tensor(name);
  const to = lq.tensor(name);
  if (from === undefined || to === undefined || from.typeName !== "f16") {
    throw new FormatError("type-mismatch", `${name}: not an f16 tensor of the source`);
  }
  const [cols = 1, rows = 1] = to.dims;
  const traits = QUANT_TRAITS[type];
  const blockBytes = traits.blockBytes;
  const r: TensorReport = { blocks: 0, differing: 0, fields: new Map(), sqErrTheirs: 0, sqErrOurs: 0, values: 0 };
  for (let row = 0; row < rows; row += ROW_CHUNK) {
    const n = Math.min(ROW_CHUNK, rows - row);
    const inRow = QUANT_TRAITS.f16.byteSize(1, cols) ?? 0;
    const outRow = traits.byteSize(1, cols) ?? 0;
    const values = QUANT_TRAITS.f16.decode(await src.tensorData(from, { offset: row * inRow, length: n * inRow }), n, cols);
    const theirs = await lq.tensorData(to, { offset: row * outRow, length: n * outRow });
    const ours = traits.encode(values, n, cols);
    for (let b = 0; b < theirs.length / blockBytes; b++) {
      r.blocks++;
      const a = theirs.subarray(b * blockBytes, (b + 1) * blockBytes);
      const o = ours.subarray(b * blockBytes, (b + 1) * blockBytes);
      if (Buffer.from(a).equals(Buffer.from(o))) {
        continue;
      }
      r.differing++;
      for (const [field, lo, hi] of type === "q6_k" ? Q6K_FIELDS : []) {
        if (!Buffer.from(a.subarray(lo, hi)).equals(Buffer.from(o.subarray(lo, hi)))) {
          r.fields.set(field, (r.fields.get(field) ?? 0) + 1);
        }
      }
    }
    const dt = traits.decode(theirs, n, cols);
    const dOurs = traits.decode(ours, n, cols);
    for (let i = 0; i < values.length; i++) {
      const v = values[i] ?? 0;
      r.sqErrTheirs += ((dt[i] ?? 0) - v) ** 2;
      r.sqErrOurs += ((dOurs[i] ?? 0) - v) ** 2;
    }
    r.values += values.length;
  }
  return r;
}

async function main(): Promise<number> {
  const [f16Path = "", lqPath = "", bbPath] = process.argv.slice(2);
  if (f16Path === "" || lqPath === "") {
    console.error("usage: llama-quantize-check.ts F16.gguf LQ.gguf [BB.gguf]");
    return 2;
  }
  {
    await using src = await openGguf(f16Path);
    await using lq = await openGguf(lqPath);
    const byType = new Map<string, TensorReport[]>();
    for (const t of lq.tensors) {
      if (!isEncoded(t.typeName)) {
        continue;
      }
      const r = await compareTensor(src, lq, t.name, t.typeName);
      byType.set(t.typeName, [...(byType.get(t.typeName) ?? []), r]);
      if (t.typeName === "q6_k") {
        const fields = [...r.fields].map(([f, c]) => `${f} ${c}`).join(", ");
        const rms = (x: number): string => Math.sqrt(x / r.values).toExponential(4);
        console.log(
          `${t.name} q6_k: ${r.differing}/${r.blocks} blocks differ from barbell's encoder (blocks with a differing field: ${fields || "none"}); ` +
            `RMS error vs the f16 source: llama-quantize ${rms(r.sqErrTheirs)}, barbell ${rms(r.sqErrOurs)}`,
        );
      }
    }
    for (const [type, reports] of byType) {
      const blocks = reports.reduce((a, r) => a + r.blocks, 0);
      const differing = reports.reduce((a, r) => a + r.differing, 0);
      console.log(`${type}: ${reports.length} tensors, ${blocks} blocks, ${differing} differ from barbell's encoder on the same f16 values`);
    }
  }
  using model = await loadModel(lqPath, { autotune: false });
  const ids = Array.from({ length: 24 }, (_, i) => (i * 997 + 1) % model.config.vocabSize);
  const [got] = await model.logits(ids);
  console.log(`barbell loaded ${lqPath} (${model.backend}); last-position logits finite: ${got?.every(Number.isFinite) === true}`);
  if (bbPath !== undefined && got !== undefined) {
    using bb = await loadModel(bbPath, { autotune: false });
    const [want = new Float32Array()] = await bb.logits(ids);
    let num = 0;
    let den = 0;
    let best = 0;
    let bestWant = 0;
    for (let i = 0; i < want.length; i++) {
      num += ((got[i] ?? 0) - (want[i] ?? 0)) ** 2;
      den += (want[i] ?? 0) ** 2;
      best = (got[i] ?? 0) > (got[best] ?? 0) ? i : best;
      bestWant = (want[i] ?? 0) > (want[bestWant] ?? 0) ? i : bestWant;
    }
    console.log(`vs ${bbPath}: rel L2 ${Math.sqrt(num / den).toExponential(3)}, argmax ${best} vs ${bestWant}`);
  }
  return 0;
}

process.exitCode = await main();
