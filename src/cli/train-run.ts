/**
 * The run file (`run.json`) and card of `barbell train`: what a run records so that `--resume` needs only the
 * checkpoint, and the Markdown card written next to the GGUF (its JSON record is what tests and scripts read).
 */
import fs from "node:fs/promises";
import path from "node:path";
import { BarbellError } from "../core/errors.js";
import { parseJsonFile, readRegularFile } from "../core/files.js";
import { openExportSource } from "../export/onnx/sources.js";
import { openGguf, type GgufValue } from "../formats/gguf/index.js";
import { ggufTokenizerMetadata } from "../model/bitnet/convert-tokenizer.js";
import type { ExportWeightType } from "../train/export.js";
import { paramsFromSource, qatConfigOf, type InitKind } from "../train/init.js";
import type { Param, QatConfig } from "../train/model.js";
import type { TrainOptions } from "../train/qat.js";

/** A problem with the corpus, the flags or the run folder: one line, exit status 1. */
export class TrainCliError extends BarbellError {
  constructor(
    readonly code: "bad-flags" | "corpus" | "resume" | "interrupted",
    message: string,
  ) {
    super(message);
    this.name = "TrainCliError";
  }
}

/** Format tag of the run file (`run.json`) kept next to the checkpoint. */
export const RUN_FORMAT = "barbell.train-run";
export const RUN_VERSION = 1;

/** What `run.json` holds: every setting of the run, so that a resume needs only the checkpoint's path. */
export interface RunFile {
  readonly format: typeof RUN_FORMAT;
  readonly version: typeof RUN_VERSION;
  readonly command: string;
  readonly resumes: string[];
  readonly corpus: { path: string; sha256: string; bytes: number; lines: number; license: string };
  readonly split: { valFraction: number; trainLines: number; valLines: number; trainTokens: number; valTokens: number };
  readonly tokenizer: { file: string; sha256: string; source: string };
  readonly config: QatConfig;
  readonly options: TrainOptions;
  readonly seeds: { init: number; data: number };
  readonly export: { out: string; name: string; contextLength: number; weights: ExportWeightType };
  readonly eval: { every: number; tokens: number };
  readonly checkpointEvery: number;
  readonly samples: { prompts: string[]; tokens: number };
  /** Where the steps run; a resume uses the same (the native runtime rounds differently from the reference). */
  readonly runtime: { kind: "native" | "reference"; threads: number };
  /** A fine-tuning run's starting model (`--init`); absent for a run from random weights. */
  readonly init?: { path: string; kind: InitKind; contextLength: number };
  /** Wall-clock seconds of training steps over all sessions. */
  trainSeconds: number;
  evals: { step: number; valLoss: number }[];
  recentLoss: number[];
}

export function fmtDuration(seconds: number): string {
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h${String(m).padStart(2, "0")}m` : m > 0 ? `${m}m${String(s % 60).padStart(2, "0")}s` : `${s}s`;
}

/** Largest run.json read (bytes; it holds settings and a few command lines). */
const MAX_RUN_FILE_BYTES = 1024 * 1024;

/** Reads and checks a run file. */
export async function readRunFile(file: string): Promise<RunFile> {
  let parsed: unknown;
  try {
    parsed = parseJsonFile((await readRegularFile(file, MAX_RUN_FILE_BYTES, "[train] run file")).toString("utf8"), file, "[train] run file");
  } catch (e) {
    const why = e instanceof BarbellError ? e.message.replace(/^\[train\] run file \S+ /, "") : "cannot be read";
    throw new TrainCliError("resume", `[train] cannot read the run file ${file} (written next to every checkpoint): it ${why}; --resume takes the checkpoint.safetensors of a run folder`);
  }
  const r = parsed as Partial<RunFile> | null;
  if (r === null || typeof r !== "object" || r.format !== RUN_FORMAT || r.version !== RUN_VERSION) {
    throw new TrainCliError("resume", `[train] ${file} is not a ${RUN_FORMAT} v${RUN_VERSION} file`);
  }
  return r as RunFile;
}

export function cardMarkdown(run: RunFile, result: { valLoss: number; valTokens: number; trainLoss: number; samples: { prompt: string; text: string }[]; date: string; bytes: number }): string {
  const c = run.config;
  const o = run.options;
  const params = (c.vocabSize * c.hidden * (c.tied ? 1 : 2)) + c.layers * (c.hidden * c.hidden * 2 + 2 * c.hidden * (c.kvHeads * (c.hidden / c.heads)) + 3 * c.hidden * c.ffn + 3 * c.hidden + c.ffn) + c.hidden;
  const tokensSeen = o.totalSteps * o.batchSize * o.seqLen;
  const record = {
    name: run.export.name,
    date: result.date,
    command: run.command,
    resumes: run.resumes,
    corpus: run.corpus,
    split: run.split,
    tokenizer: { source: run.tokenizer.source, vocabSize: c.vocabSize, sha256: run.tokenizer.sha256 },
    config: c,
    parameters: params,
    options: o,
    seeds: run.seeds,
    runtime: run.runtime,
    ...(run.init === undefined ? {} : { init: run.init }),
    steps: o.totalSteps,
    tokensSeen,
    trainSeconds: Math.round(run.trainSeconds),
    trainLoss: result.trainLoss,
    valLoss: result.valLoss,
    valPerplexity: Math.exp(result.valLoss),
    valTokens: result.valTokens,
    evals: run.evals,
    file: { weights: run.export.weights, contextLength: run.export.contextLength, bytes: result.bytes },
  };
  const f = (x: number, d = 4): string => (Number.isFinite(x) ? x.toFixed(d) : String(x));
  const lines = [
    `# ${run.export.name}`,
    "",
    `A BitNet b1.58 model (ternary projections, ${c.activation === "relu2" ? "ReLU²" : "SiLU"} FFN) ${run.init === undefined ? "trained from scratch" : `fine-tuned from \`${run.init.path}\``} by \`barbell train\``,
    `with quantization-aware training. This card was written by the command itself on ${result.date}.`,
    "",
    "| | |",
    "|---|---|",
    `| command | \`${run.command}\` |`,
    ...run.resumes.map((r, i) => `| resume ${i + 1} | \`${r}\` |`),
    `| corpus | \`${run.corpus.path}\` (${run.corpus.bytes} bytes, ${run.corpus.lines} lines, sha256 \`${run.corpus.sha256.slice(0, 16)}…\`) |`,
    `| corpus license | ${run.corpus.license} |`,
    `| split | last ${run.split.valLines} of ${run.corpus.lines} lines held out (${run.split.valFraction}): ${run.split.trainTokens} train / ${run.split.valTokens} validation tokens |`,
    `| tokenizer | ${run.tokenizer.source}, ${c.vocabSize} tokens |`,
    `| model | hidden ${c.hidden}, ${c.layers} layers, ${c.heads} heads / ${c.kvHeads} KV heads, FFN ${c.ffn}, ${c.tied ? "tied" : "untied"} head, ${params} parameters |`,
    `| training | ${o.totalSteps} steps × ${o.batchSize} windows × ${o.seqLen} tokens = ${tokensSeen} tokens; AdamW lr ${Number(o.peakLr.toPrecision(6))} → ${Number(o.minLr.toPrecision(6))} (warmup ${o.warmupSteps}, cosine), weight decay ${o.weightDecay}, clip ${o.clipNorm} |`,
    `| seeds | init ${run.seeds.init}, data ${run.seeds.data} |`,
    `| runtime | ${run.runtime.kind}${run.runtime.kind === "native" ? `, ${run.runtime.threads === 0 ? "one thread per physical core" : `${run.runtime.threads} threads`}` : ""} |`,
    `| time | ${fmtDuration(run.trainSeconds)} of training steps (${f(tokensSeen / Math.max(run.trainSeconds, 1e-9), 0)} tokens/s) |`,
    `| train loss | ${f(result.trainLoss)} (mean of the last ${run.recentLoss.length} steps, nats/token) |`,
    `| **validation loss** | **${f(result.valLoss)}** nats/token over ${result.valTokens} held-out tokens (windows of ${o.seqLen}) |`,
    `| **validation perplexity** | **${f(Math.exp(result.valLoss), 2)}** |`,
    ...(run.init !== undefined && run.evals[0]?.step === 0
      ? [`| before fine-tuning | validation loss ${f(run.evals[0].valLoss)}, perplexity ${f(Math.exp(run.evals[0].valLoss), 2)} (the starting model on the same tokens) |`]
      : []),
    `| file | ${run.export.weights === "i2_s" ? "I2_S" : "F32 γ·trits"} projections, F32 embedding/norms, context ${run.export.contextLength}, ${result.bytes} bytes |`,
    "",
    "The validation loss is that of the exported file (ternary weights, int8 activations) as `loadModel` runs it.",
    "",
  ];
  if (result.samples.length > 0) {
    lines.push(`## Samples (temperature 0.8, top-k 40, seed 1, ${run.samples.tokens} tokens)`, "");
    for (const s of result.samples) {
      lines.push("```text", `${s.prompt}${s.text}`.trimEnd(), "```", "");
    }
  }
  lines.push("## Record", "", "```json", JSON.stringify(record, null, 2), "```", "");
  return lines.join("\n");
}

/** The JSON record at the end of a card written by `barbell train`. */
export function parseCard(markdown: string): Record<string, unknown> {
  const m = /## Record\n\n```json\n([\s\S]*?)\n```/.exec(markdown);
  if (m?.[1] === undefined) {
    throw new TrainCliError("corpus", "[train] the card has no JSON record");
  }
  return JSON.parse(m[1]) as Record<string, unknown>;
}

/** The `tokenizer.*` metadata entries of a GGUF file (a model, or a tokenizer-only file). */
export async function tokenizerEntries(file: string): Promise<[string, GgufValue][]> {
  await using g = await openGguf(file);
  const entries: [string, GgufValue][] = [];
  for (const key of g.metadata.keys()) {
    const value = g.metadata.get(key);
    if (key.startsWith("tokenizer.") && value !== undefined) {
      entries.push([key, value]);
    }
  }
  if (entries.length === 0) {
    throw new TrainCliError("bad-flags", `[train] ${file} has no tokenizer.* metadata`);
  }
  return entries;
}

/** What `--init` starts a run from (src/train/init.ts says what each kind of model gives). */
export interface InitModel {
  readonly kind: InitKind;
  readonly config: QatConfig;
  readonly params: Param[];
  readonly contextLength: number;
  /** The model's tokenizer as GGUF metadata; undefined for a checkpoint without a tokenizer.gguf beside it. */
  readonly tokenizer: [string, GgufValue][] | undefined;
}

/** Reads the model `--init` names: weights as latent parameters, its config and its tokenizer. */
export async function openInit(model: string): Promise<InitModel> {
  await using source = await openExportSource(model);
  const kind = source.kind;
  if (source.checkpoint !== undefined) {
    const beside = path.join(path.dirname(model), "tokenizer.gguf");
    const hasTokenizer = await fs.stat(beside).then((st) => st.isFile(), () => false);
    const params = source.checkpoint.params.map((p) => ({ ...p, data: Float32Array.from(p.data) }));
    return { kind, config: source.checkpoint.config, params, contextLength: source.config.contextLength, tokenizer: hasTokenizer ? await tokenizerEntries(beside) : undefined };
  }
  const config = qatConfigOf(source.config, !source.weights.has("output.weight"));
  const params = await paramsFromSource(config, source.weights);
  let tokenizer: [string, GgufValue][] | undefined;
  if (kind === "gguf") {
    tokenizer = await tokenizerEntries(model);
  } else {
    const t = await source.readTokenizer();
    tokenizer =
      t.tokenizer === undefined
        ? undefined
        : ggufTokenizerMetadata(t.tokenizer, { vocabRows: config.vocabSize, ...(t.chatTemplate === undefined ? {} : { chatTemplate: t.chatTemplate }) });
  }
  return { kind, config, params, contextLength: source.config.contextLength, tokenizer };
}
