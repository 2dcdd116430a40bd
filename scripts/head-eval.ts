/**
 * What an integer output head does to a trained model (issue 15 point 4; docs/architecture.md, "The output head").
 *
 *   npx tsx scripts/head-eval.ts                       # models/barbell-kjv.gguf on its card's held-out tokens
 *   npx tsx scripts/head-eval.ts --json head-eval.json # also the numbers as JSON
 *   npx tsx scripts/head-eval.ts --tokens 2048         # fewer held-out tokens (the card's count by default)
 *
 * Writes variants of the model whose tied embedding/head (`token_embd.weight`, and `output.weight` when the
 * model has one) is re-encoded by barbell's own encoders (src/quant: F16, Q8_0, Q6_K; barbell has no Q4_K/Q5_K
 * encoder) with every other tensor and all metadata unchanged, and scores each with the `barbell train`
 * validation code (src/cli/train.ts validationLoss) on the card's split, tokenizer, window length and token
 * count: loss, perplexity, and the logits' difference from the file's own head on the same windows (max and
 * mean |Δ|, relative L2, top-1 agreement, mean KL). The load-time paths (`headType: "q8_0"`, `"q6_k"`) are scored too.
 * Needs the corpus: scripts/fetch-corpus.sh (data/kjv.txt, checked against the card's SHA-256).
 */
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { FormatError, ShapeError, ValueError } from "../src/core/errors.js";
import { readRegularFile } from "../src/core/files.js";
import { openGguf, quantTraitsFor, writeGguf, type GgufTensorInput } from "../src/formats/gguf/index.js";
import { HEAD_TENSORS } from "../src/model/bitnet/convert.js";
import { QUANT_TRAITS } from "../src/quant/table.js";
import { logSumExp, MAX_CORPUS_BYTES, parseCard, splitCorpus, tokenizerEntries, tokenizerFromEntries, validationLoss } from "../src/cli/train.js";

/** Storage types the variants use: barbell's float and integer encoders for embeddings/heads. */
export const HEAD_STORAGE = ["f32", "f16", "q8_0", "q6_k", "q4_k", "q5_k"] as const;
export type HeadStorage = (typeof HEAD_STORAGE)[number];

/** Largest model file `headVariant` reads whole into memory (the KJV model is 5.1 MB). */
export const MAX_HEAD_EVAL_FILE_BYTES = 512 * 1024 * 1024;

/** Largest card read (the KJV card is 5 KB). */
const MAX_CARD_BYTES = 1024 * 1024;

/**
 * The GGUF bytes of `file` with its embedding/head tensors decoded and re-encoded as `to`; every other tensor's
 * bytes, their order, and all metadata stay as they were. FormatError when a head tensor's type has no codec.
 */
export async function headVariant(file: string, to: HeadStorage): Promise<Uint8Array> {
  await using src = await openGguf(file);
  if (src.fileSize > MAX_HEAD_EVAL_FILE_BYTES) {
    throw new FormatError("limit", `[head-eval] the model is ${src.fileSize} bytes; this script reads at most ${MAX_HEAD_EVAL_FILE_BYTES}`);
  }
  const target = QUANT_TRAITS[to];
  const tensors: GgufTensorInput[] = [];
  for (const t of src.tensors) {
    const data = await src.tensorData(t);
    if (!HEAD_TENSORS.includes(t.name)) {
      tensors.push({ name: t.name, dims: t.dims, typeId: t.typeId, data });
      continue;
    }
    const from = quantTraitsFor(t);
    const cols = t.dims[0] ?? 0;
    const rows = cols > 0 ? t.elementCount / cols : 0;
    if (from === undefined || target.ggmlType === undefined || target.byteSize(rows, cols) === undefined) {
      throw new FormatError("bad-tensor-type", `[head-eval] ${t.name} (${t.typeName}, ${t.dims.join("×")}) cannot be re-encoded as ${to}`);
    }
    tensors.push({ name: t.name, dims: t.dims, typeId: target.ggmlType, data: target.encode(from.decode(data, rows, cols), rows, cols) });
  }
  return writeGguf({ metadata: src.metadata, tensors });
}

/** How far one head's logits are from the reference head's on the same rows. */
export interface LogitsDiff {
  readonly rows: number;
  readonly maxAbs: number;
  readonly meanAbs: number;
  /** ‖x − ref‖₂ / ‖ref‖₂ over all rows. */
  readonly relL2: number;
  /** Share of rows (0..1) whose arg-max token is the reference's. */
  readonly top1: number;
  /** Mean KL(softmax(ref) ‖ softmax(x)) per row, nats. */
  readonly meanKl: number;
}

function argMax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) {
    if ((row[i] ?? -Infinity) > (row[best] ?? -Infinity)) {
      best = i;
    }
  }
  return best;
}

/** Accumulates `LogitsDiff` row by row (float64 sums). */
export class LogitsComparer {
  #rows = 0;
  #n = 0;
  #maxAbs = 0;
  #sumAbs = 0;
  #sumSqDiff = 0;
  #sumSqRef = 0;
  #agree = 0;
  #kl = 0;

  add(ref: Float32Array, x: Float32Array): void {
    if (ref.length !== x.length) {
      throw new ShapeError("size", `[head-eval] logits rows of ${ref.length} and ${x.length} entries cannot be compared`);
    }
    const lzRef = logSumExp(ref);
    const lzX = logSumExp(x);
    let kl = 0;
    for (let i = 0; i < ref.length; i++) {
      const r = ref[i] ?? 0;
      const v = x[i] ?? 0;
      const d = Math.abs(v - r);
      this.#maxAbs = Math.max(this.#maxAbs, d);
      this.#sumAbs += d;
      this.#sumSqDiff += d * d;
      this.#sumSqRef += r * r;
      const lpRef = r - lzRef;
      kl += Math.exp(lpRef) * (lpRef - (v - lzX));
    }
    this.#kl += kl;
    this.#n += ref.length;
    this.#rows++;
    if (argMax(ref) === argMax(x)) {
      this.#agree++;
    }
  }

  result(): LogitsDiff {
    return {
      rows: this.#rows,
      maxAbs: this.#maxAbs,
      meanAbs: this.#n > 0 ? this.#sumAbs / this.#n : Number.NaN,
      relL2: this.#sumSqRef > 0 ? Math.sqrt(this.#sumSqDiff / this.#sumSqRef) : Number.NaN,
      top1: this.#rows > 0 ? this.#agree / this.#rows : Number.NaN,
      meanKl: this.#rows > 0 ? this.#kl / this.#rows : Number.NaN,
    };
  }
}

/** One head to score: a file and the load-time head policy. */
export interface HeadCase {
  readonly name: string;
  readonly file: string;
  readonly headType?: "keep" | "q8_0" | "q6_k";
  /** Bytes of the embedding/head tensors as stored in the file (before any load-time requantization). */
  readonly headBytes: number;
}

export interface HeadResult {
  readonly name: string;
  readonly headBytes: number;
  readonly loss: number;
  readonly tokens: number;
  readonly diff: LogitsDiff;
}

/**
 * Scores `cases` on `val` (windows of `seqLen`, at most `maxTokens`) with train's validationLoss; the first case
 * is the reference whose logits the others are compared with (its own diff is all zero).
 */
export async function scoreHeads(cases: readonly HeadCase[], val: Uint32Array, seqLen: number, maxTokens: number): Promise<HeadResult[]> {
  const [first, ...rest] = cases;
  if (first === undefined) {
    return [];
  }
  const ref = new Map<number, readonly Float32Array[]>();
  const score = async (c: HeadCase, onRows: (start: number, rows: readonly Float32Array[]) => void): Promise<{ loss: number; tokens: number }> =>
    validationLoss(c.file, val, seqLen, maxTokens, { ...(c.headType === undefined ? {} : { headType: c.headType }), onWindow: onRows });
  const self = new LogitsComparer();
  const refScore = await score(first, (start, rows) => {
    ref.set(start, rows);
    for (const r of rows) {
      self.add(r, r);
    }
  });
  const out: HeadResult[] = [{ name: first.name, headBytes: first.headBytes, ...refScore, diff: self.result() }];
  for (const c of rest) {
    const cmp = new LogitsComparer();
    const s = await score(c, (start, rows) => {
      const want = ref.get(start);
      if (want === undefined || want.length !== rows.length) {
        throw new ShapeError("size", `[head-eval] ${c.name}: window at ${start} does not match the reference's`);
      }
      rows.forEach((r, i) => cmp.add(want[i] ?? new Float32Array(0), r));
    });
    out.push({ name: c.name, headBytes: c.headBytes, ...s, diff: cmp.result() });
  }
  return out;
}

/** Bytes of the embedding/head tensors of a GGUF file. */
export async function headBytes(file: string): Promise<number> {
  await using g = await openGguf(file);
  return g.tensors.filter((t) => HEAD_TENSORS.includes(t.name)).reduce((n, t) => n + t.byteSize, 0);
}

const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

/** The card's record fields this script relies on, checked. */
interface CardFacts {
  readonly corpusSha: string;
  readonly tokenizerSha: string;
  readonly valFraction: number;
  readonly valTokensInSplit: number;
  readonly seqLen: number;
  readonly evalTokens: number;
  readonly valLoss: number;
}

function cardFacts(record: Record<string, unknown>): CardFacts {
  const obj = (v: unknown): Record<string, unknown> => (typeof v === "object" && v !== null ? (v as Record<string, unknown>) : {});
  const num = (v: unknown, what: string): number => {
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw new FormatError("bad-value", `[head-eval] the card's record has no number ${what}`);
    }
    return v;
  };
  const str = (v: unknown, what: string): string => {
    if (typeof v !== "string") {
      throw new FormatError("bad-value", `[head-eval] the card's record has no string ${what}`);
    }
    return v;
  };
  return {
    corpusSha: str(obj(record.corpus).sha256, "corpus.sha256"),
    tokenizerSha: str(obj(record.tokenizer).sha256, "tokenizer.sha256"),
    valFraction: num(obj(record.split).valFraction, "split.valFraction"),
    valTokensInSplit: num(obj(record.split).valTokens, "split.valTokens"),
    seqLen: num(obj(record.options).seqLen, "options.seqLen"),
    evalTokens: num(record.valTokens, "valTokens"),
    valLoss: num(record.valLoss, "valLoss"),
  };
}

const f = (x: number, digits: number): string => (Number.isFinite(x) ? x.toFixed(digits) : "–");

function table(results: readonly HeadResult[]): string {
  const base = results[0];
  const lines = [
    "| head | head bytes | val loss | Δ loss | perplexity | max abs Δ logit | mean abs Δ | rel. L2 | top-1 agree | mean KL (nats) |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const r of results) {
    const d = r.diff;
    lines.push(
      `| ${r.name} | ${r.headBytes} | ${f(r.loss, 4)} | ${r === base ? "–" : `${r.loss - (base?.loss ?? 0) >= 0 ? "+" : ""}${f(r.loss - (base?.loss ?? 0), 4)}`} | ${f(Math.exp(r.loss), 2)} | ` +
        `${f(d.maxAbs, 4)} | ${f(d.meanAbs, 5)} | ${f(d.relL2, 5)} | ${f(100 * d.top1, 2)} % | ${d.meanKl.toExponential(2)} |`,
    );
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: "string", default: "models/barbell-kjv.gguf" },
      card: { type: "string" },
      corpus: { type: "string", default: "data/kjv.txt" },
      tokens: { type: "string" },
      json: { type: "string" },
    },
  });
  const model = values.model;
  const cardFile = values.card ?? model.replace(/\.gguf$/i, ".md");
  const card = cardFacts(parseCard((await readRegularFile(cardFile, MAX_CARD_BYTES, "[head-eval] card")).toString("utf8")));
  const corpus = await readRegularFile(values.corpus, MAX_CORPUS_BYTES, "[head-eval] corpus (scripts/fetch-corpus.sh writes data/kjv.txt)");
  if (sha256(corpus) !== card.corpusSha) {
    throw new FormatError("bad-value", `[head-eval] ${values.corpus} is not the corpus of ${cardFile} (sha256 differs)`);
  }
  const entries = await tokenizerEntries(model);
  if (sha256(writeGguf({ metadata: entries })) !== card.tokenizerSha) {
    throw new FormatError("bad-value", `[head-eval] the tokenizer of ${model} is not the one its card records (sha256 differs)`);
  }
  const { valTokens } = splitCorpus(corpus, card.valFraction, tokenizerFromEntries(entries));
  if (valTokens.length !== card.valTokensInSplit) {
    throw new FormatError("bad-value", `[head-eval] the split gives ${valTokens.length} validation tokens; the card says ${card.valTokensInSplit}`);
  }
  const tokens = values.tokens === undefined ? card.evalTokens : Number(values.tokens);
  if (!Number.isInteger(tokens) || tokens < 1 || tokens > valTokens.length) {
    throw new ValueError("out-of-range", `[head-eval] --tokens must be an integer in 1..${valTokens.length}`);
  }

  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "barbell-head-eval-"));
  try {
    const files: Partial<Record<HeadStorage, string>> = { f32: model };
    for (const to of ["f16", "q8_0", "q6_k", "q4_k", "q5_k"] as const) {
      const file = path.join(dir, `${to}.gguf`);
      await fs.writeFile(file, await headVariant(model, to));
      files[to] = file;
    }
    const c = async (name: string, storage: HeadStorage, headType?: "q8_0" | "q6_k"): Promise<HeadCase> => {
      const file = files[storage] ?? model;
      return { name, file, headBytes: await headBytes(file), ...(headType === undefined ? {} : { headType }) };
    };
    const cases = [
      await c("F32 (the file's)", "f32"),
      await c("F16", "f16"),
      await c("Q8_0 in the file", "q8_0"),
      await c("Q6_K in the file", "q6_k"),
      await c("Q5_K in the file", "q5_k"),
      await c("Q4_K in the file", "q4_k"),
      await c("F32 + `--head q8_0`", "f32", "q8_0"),
      await c("F16 + `--head q8_0`", "f16", "q8_0"),
      await c("F16 + `--head q6_k`", "f16", "q6_k"),
    ];
    const started = performance.now();
    const results = await scoreHeads(cases, valTokens, card.seqLen, tokens);
    const cpu = (os.cpus()[0]?.model ?? "unknown CPU").trim();
    process.stdout.write(
      `${model}: ${tokens} held-out tokens (windows of ${card.seqLen}; card's validation loss ${card.valLoss.toFixed(4)}), ` +
        `${cpu}, ${new Date().toISOString().slice(0, 10)}, ${((performance.now() - started) / 1000).toFixed(1)} s\n\n${table(results)}\n`,
    );
    if (values.json !== undefined) {
      await fs.writeFile(values.json, `${JSON.stringify({ model, tokens, seqLen: card.seqLen, cpu, results }, null, 2)}\n`);
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e: unknown) => {
    process.stderr.write(`head-eval: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  });
}
