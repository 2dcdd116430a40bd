/**
 * `barbell train`: trains a BitNet b1.58 model with quantization-aware training (src/train) on a text corpus
 * and exports it as a GGUF that every other command loads (docs/training.md, "Training from the command line").
 *
 * A run: read the corpus, hold out its last lines for validation, train a byte-level BPE tokenizer on the rest
 * (or take one from a GGUF), turn each blank-line-separated document into BOS + tokens + EOS, then train with a
 * progress bar (loss, tokens/s) on a terminal or plain log lines elsewhere. Checkpoints go to a run folder every
 * `--checkpoint-every` steps and on Ctrl-C; `--resume <checkpoint>` continues bit for bit (the run's settings,
 * corpus hash and tokenizer are kept next to the checkpoint). At the end: validation loss and perplexity of the
 * exported (ternary) model, the GGUF, and a Markdown card with the command, seeds, config and results.
 */
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { setImmediate as nextTurn } from "node:timers/promises";
import { type Command, InvalidArgumentError, Option } from "commander";
import cliProgress from "cli-progress";
import { BarbellError, FileError } from "../core/errors.js";
import { loadModel } from "../engine/model.js";
import { parseGguf, writeGguf, type GgufValue } from "../formats/gguf/index.js";
import { tokenizerFromGguf, type Tokenizer } from "../model/tokenizer/index.js";
import { loadCheckpointFile, saveCheckpoint } from "../train/checkpoint.js";
import { exportGguf, type ExportWeightType } from "../train/export.js";
import type { QatConfig } from "../train/model.js";
import { createNativeTrainRuntime, nativeTrainUnavailable, REFERENCE_RUNTIME, type TrainRuntime } from "../train/fast.js";
import { initTrainState, stateFrom, trainStep, type StepReport, type TrainOptions, type TrainState } from "../train/qat.js";
import { toGgufTokenizerMetadata, trainByteBpe } from "../train/tokenizer.js";
import { intAtLeast } from "./args.js";
import { readRegularFile, writeAtomically } from "../core/files.js";
import type { CliIo } from "./run.js";
import type { HeadPolicy } from "../model/bitnet/weights.js";
import { cardMarkdown, fmtDuration, openInit, readRunFile, RUN_FORMAT, RUN_VERSION, tokenizerEntries, TrainCliError, type InitModel, type RunFile } from "./train-run.js";

export { parseCard, RUN_FORMAT, RUN_VERSION, tokenizerEntries, TrainCliError } from "./train-run.js";

/** Peak learning rate of a fine-tuning run (`--init`) when --lr is not given: a third of the from-scratch default. */
export const INIT_PEAK_LR = 1e-3;

/** Flags that describe the model's shape; `--init` takes them from the model, so they may not be given with it. */
const SHAPE_FLAGS = ["vocab", "hidden", "layers", "heads", "kvHeads", "ffn", "activation", "untied"];

/** The flags as commander parses them. */
interface TrainFlags {
  out: string;
  runDir?: string;
  tokenizer?: string;
  vocab: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  ffn: number;
  activation: "relu2" | "silu";
  untied?: boolean;
  init?: string;
  seqLen: number;
  batch: number;
  steps: number;
  warmup?: number;
  lr: number;
  minLr?: number;
  weightDecay: number;
  clip: number;
  seed: number;
  dataSeed: number;
  valFraction: number;
  evalEvery: number;
  evalTokens: number;
  checkpointEvery: number;
  ctx: number;
  weights: "auto" | ExportWeightType;
  name?: string;
  corpusLicense: string;
  sample?: string[];
  sampleTokens: number;
  logEvery: number;
  resume?: string;
  until?: number;
  maxMinutes?: number;
  runtime: "auto" | "native" | "reference";
  threads: number;
}

/** Flags that may be given with `--resume` (everything else comes from the run file). */
const RESUME_FLAGS = new Set(["resume", "until", "maxMinutes", "logEvery"]);

function positiveNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n <= 0) {
    throw new InvalidArgumentError(`expected a positive number, got '${value}'`);
  }
  return n;
}

function nonNegativeNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < 0) {
    throw new InvalidArgumentError(`expected a number >= 0, got '${value}'`);
  }
  return n;
}

function fraction(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n <= 0 || n > 0.5) {
    throw new InvalidArgumentError(`expected a fraction in (0, 0.5], got '${value}'`);
  }
  return n;
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}


/** The command line as a shell would take it back. */
function shellLine(args: readonly string[]): string {
  return args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`)).join(" ");
}

/** Lines of the corpus: CRLF normalized, trailing blank lines dropped. */
function corpusLines(text: string): string[] {
  const lines = text.replace(/\r\n?/g, "\n").split("\n");
  while (lines.length > 0 && lines[lines.length - 1]?.trim() === "") {
    lines.pop();
  }
  return lines;
}

/** Documents: runs of non-blank lines (chapters of the KJV corpus), each with its lines joined by "\n". */
function documents(lines: readonly string[]): string[] {
  const docs: string[] = [];
  let current: string[] = [];
  for (const line of lines) {
    if (line.trim() === "") {
      if (current.length > 0) {
        docs.push(current.join("\n"));
      }
      current = [];
    } else {
      current.push(line);
    }
  }
  if (current.length > 0) {
    docs.push(current.join("\n"));
  }
  return docs;
}

/** The token stream of a split: BOS, the document's tokens, "\n" and EOS, for each document. */
function encodeDocs(tok: Tokenizer, docs: readonly string[]): Uint32Array {
  const parts: Int32Array[] = [];
  let total = 0;
  for (const d of docs) {
    const ids = tok.encode(`${d}\n`, { addBos: false });
    parts.push(ids);
    total += ids.length + 2;
  }
  const out = new Uint32Array(total);
  let at = 0;
  for (const ids of parts) {
    out[at++] = tok.bos ?? 0;
    out.set(ids, at);
    at += ids.length;
    out[at++] = tok.eos ?? 0;
  }
  return out;
}

/** What `validationLoss` may do besides scoring (scripts/head-eval.ts compares heads with it). */
export interface ValidationOptions {
  /** Loads the model with this head policy (LoadModelOptions.headType). Default "auto". */
  readonly headType?: HeadPolicy;
  /** Called with each window's logits (row i predicts `val[start + i + 1]`) before they are scored. */
  readonly onWindow?: (start: number, logits: readonly Float32Array[]) => void;
}

/** Mean cross-entropy (nats/token) of the exported model on the validation tokens, in windows of seqLen. */
export async function validationLoss(
  modelFile: string,
  val: Uint32Array,
  seqLen: number,
  maxTokens: number,
  options: ValidationOptions = {},
): Promise<{ loss: number; tokens: number }> {
  using model = await loadModel(modelFile, {
    autotune: false,
    contextLength: seqLen + 1,
    ...(options.headType === undefined ? {} : { headType: options.headType }),
  });
  let sum = 0;
  let n = 0;
  for (let start = 0; start + 1 < val.length && n < maxTokens; start += seqLen) {
    const window = Array.from(val.subarray(start, Math.min(start + seqLen + 1, val.length)));
    const take = Math.min(window.length - 1, maxTokens - n);
    const logits = await model.logits(window.slice(0, take), { all: true });
    options.onWindow?.(start, logits);
    for (let i = 0; i < take; i++) {
      const row = logits[i] ?? new Float32Array(0);
      sum += logSumExp(row) - (row[window[i + 1] ?? 0] ?? 0);
      n++;
    }
  }
  return { loss: n > 0 ? sum / n : Number.NaN, tokens: n };
}

/** log Σ exp(row), shifted by the row's maximum (the cross-entropy's normalizer). */
export function logSumExp(row: Float32Array): number {
  let max = -Infinity;
  for (const x of row) {
    max = Math.max(max, x);
  }
  let z = 0;
  for (const x of row) {
    z += Math.exp(x - max);
  }
  return Math.log(z) + max;
}

export function addTrainCommand(program: Command, io: CliIo): void {
  program
    .command("train")
    .description("train a BitNet b1.58 model on a text corpus (QAT) and export it as GGUF with a model card")
    .argument("[corpus]", "UTF-8 text, documents separated by blank lines (default data/kjv.txt from scripts/fetch-corpus.sh)", "data/kjv.txt")
    .option("-o, --out <file>", "the GGUF to write; the card goes next to it (.md)", "barbell-model.gguf")
    .option("--run-dir <dir>", "checkpoints, run settings and tokenizer of this run (default: <out>.run/)")
    .option("--tokenizer <gguf>", "take the tokenizer.* metadata of this GGUF instead of training one (default: train one on the corpus)")
    .option("--vocab <n>", "vocabulary of the tokenizer trained on the training split", intAtLeast(259), 4096)
    .option("--hidden <n>", "hidden size", intAtLeast(2), 128)
    .option("--layers <n>", "transformer blocks", intAtLeast(1), 2)
    .option("--heads <n>", "attention heads", intAtLeast(1), 4)
    .option("--kv-heads <n>", "key/value heads", intAtLeast(1), 2)
    .option("--ffn <n>", "feed-forward width", intAtLeast(1), 256)
    .addOption(new Option("--activation <fn>", "FFN gate activation").choices(["relu2", "silu"]).default("relu2"))
    .option("--untied", "train a separate output head (default: tied to the embedding)")
    .option("--init <model>", `fine-tune: start from this model's weights, shape and tokenizer (a GGUF, a Hugging Face folder or a training checkpoint) instead of random weights; --lr defaults to ${INIT_PEAK_LR} (default: random weights)`)
    .option("--seq-len <n>", "tokens predicted per window", intAtLeast(1), 64)
    .option("--batch <n>", "windows per step", intAtLeast(1), 4)
    .option("--steps <n>", "steps of the whole schedule", intAtLeast(1), 300)
    .option("--warmup <n>", "linear warmup steps (default: steps/10, at most 200)", intAtLeast(0))
    .option("--lr <x>", "peak learning rate", positiveNumber, 3e-3)
    .option("--min-lr <x>", "final learning rate of the cosine (default lr/10)", nonNegativeNumber)
    .option("--weight-decay <x>", "AdamW decoupled weight decay (matrices)", nonNegativeNumber, 0.1)
    .option("--clip <x>", "global gradient-norm clip", positiveNumber, 1)
    .option("--seed <n>", "weight initialization seed", intAtLeast(0), 1)
    .option("--data-seed <n>", "data order seed", intAtLeast(0), 2)
    .option("--val-fraction <x>", "last fraction of the corpus lines held out for validation", fraction, 0.05)
    .option("--eval-every <n>", "validation loss every n steps (0: only at the end)", intAtLeast(0), 0)
    .option("--eval-tokens <n>", "most validation tokens evaluated", intAtLeast(1), 16_384)
    .option("--checkpoint-every <n>", "checkpoint every n steps (and on Ctrl-C)", intAtLeast(1), 100)
    .option("--ctx <n>", "context length written into the GGUF", intAtLeast(1), 2048)
    .addOption(new Option("--weights <type>", "projection storage (auto: i2_s when hidden and ffn are multiples of 128)").choices(["auto", "i2_s", "f32"]).default("auto"))
    .option("--name <id>", "general.name of the model (default: the file name)")
    .option("--corpus-license <text>", "the corpus's license, for the card", "not stated (pass --corpus-license)")
    .addOption(new Option("--sample <prompt...>", "prompts sampled into the card (default: the first words of the corpus)"))
    .option("--sample-tokens <n>", "tokens per card sample (0: no samples)", intAtLeast(0), 48)
    .option("--log-every <n>", "log line every n steps when stderr is not a terminal", intAtLeast(1), 10)
    .option("--resume <checkpoint>", "continue a run from its checkpoint (settings, corpus and tokenizer are the run's) (default: a new run)")
    .option("--until <step>", "stop (with a checkpoint) after this step (default: the last step)", intAtLeast(1))
    .option("--max-minutes <m>", "stop (with a checkpoint) after this much training time (default: no limit)", positiveNumber)
    .addOption(new Option("--runtime <kind>", "where steps run: native (addon forward and backward products), reference (JS, float64 backward), auto").choices(["auto", "native", "reference"]).default("auto"))
    .option("--threads <n>", "native runtime threads (0: one per physical core); kept for --resume", intAtLeast(0), 0)
    .action(async (corpusArg: string, flags: TrainFlags, cmd: Command) => {
      const given = (key: string): boolean => cmd.getOptionValueSource(key) === "cli";
      await runTrain(corpusArg, cmd.args.length > 0, flags, given, shellLine(["barbell", "train", ...rawTrainArgs(cmd)]), io);
    });
}

/** The train command's own arguments as typed (commander keeps the whole argv on the root command). */
function rawTrainArgs(cmd: Command): string[] {
  let root: Command = cmd;
  while (root.parent !== null) {
    root = root.parent;
  }
  // commander keeps the argv it parsed as `rawArgs`, which its types leave out: read it as unknown and check it.
  const held: unknown = Reflect.get(root, "rawArgs");
  const raw = Array.isArray(held) ? held.filter((a): a is string => typeof a === "string") : [];
  const at = raw.indexOf("train");
  return at < 0 ? [] : raw.slice(at + 1);
}

async function runTrain(
  corpusArg: string,
  corpusGiven: boolean,
  flags: TrainFlags,
  given: (key: string) => boolean,
  commandLine: string,
  io: CliIo,
): Promise<void> {
  let run: RunFile;
  let state: TrainState;
  let runDir: string;
  let tokenizerMeta: [string, GgufValue][];
  let trainTokens: Uint32Array;
  let valTokens: Uint32Array;
  const say = (line: string): void => io.err(`barbell train: ${line}\n`);

  if (flags.resume !== undefined) {
    const changed = Object.keys(flags)
      .filter((k) => !RESUME_FLAGS.has(k) && given(k))
      .map((k) => `--${k.replace(/[A-Z]/g, (ch) => `-${ch.toLowerCase()}`)}`);
    if (corpusGiven) {
      changed.unshift("a corpus");
    }
    if (changed.length > 0) {
      throw new TrainCliError(
        "bad-flags",
        `[train] --resume continues the run with its own settings, corpus and runtime (exact only so); only --until, --max-minutes and --log-every may be given (got ${changed.join(", ")})`,
      );
    }
    const ckpt = flags.resume;
    runDir = path.dirname(ckpt);
    run = await readRunFile(path.join(runDir, "run.json"));
    const loaded = await loadCheckpointFile(ckpt, { config: run.config, options: run.options }).catch((e: unknown) => {
      if (e instanceof BarbellError) {
        throw e;
      }
      throw new TrainCliError("resume", `[train] cannot read checkpoint ${ckpt}: ${(e as Error).message}`);
    });
    state = loaded.state;
    run.resumes.push(commandLine);
    const corpusBytes = await readCorpus(run.corpus.path);
    if (sha256(corpusBytes) !== run.corpus.sha256) {
      throw new TrainCliError("resume", `[train] ${run.corpus.path} changed since the run started (sha256 differs); resuming would not continue the same run`);
    }
    const tokFile = path.join(runDir, run.tokenizer.file);
    const tokBytes = await fs.readFile(tokFile);
    if (sha256(tokBytes) !== run.tokenizer.sha256) {
      throw new TrainCliError("resume", `[train] ${tokFile} changed since the run started (sha256 differs)`);
    }
    tokenizerMeta = await tokenizerEntries(tokFile);
    ({ trainTokens, valTokens } = splitCorpus(corpusBytes, run.split.valFraction, tokenizerFromEntries(tokenizerMeta)));
    say(`resuming ${ckpt} at step ${state.step}/${run.options.totalSteps}`);
  } else {
    const corpusBytes = await readCorpus(corpusArg);
    const text = new TextDecoder().decode(corpusBytes);
    const lines = corpusLines(text);
    const valLines = Math.max(1, Math.round(lines.length * flags.valFraction));
    if (lines.length - valLines < 1) {
      throw new TrainCliError("corpus", `[train] ${corpusArg} has ${lines.length} lines: too few to hold out ${valLines} for validation and train on the rest`);
    }
    let init: InitModel | undefined;
    if (flags.init !== undefined) {
      const shapeGiven = SHAPE_FLAGS.filter((k) => given(k)).map((k) => `--${k.replace(/[A-Z]/g, (ch) => `-${ch.toLowerCase()}`)}`);
      if (shapeGiven.length > 0) {
        throw new TrainCliError("bad-flags", `[train] --init takes the model's shape and tokenizer; ${shapeGiven.join(", ")} cannot be given with it`);
      }
      init = await openInit(flags.init);
      if (init.tokenizer === undefined && flags.tokenizer === undefined) {
        throw new TrainCliError("bad-flags", `[train] ${flags.init} has no tokenizer (no tokenizer.gguf beside the checkpoint); give --tokenizer`);
      }
      flags.lr = given("lr") ? flags.lr : INIT_PEAK_LR;
      flags.ctx = given("ctx") ? flags.ctx : init.contextLength;
      say(`fine-tuning ${flags.init} (${init.kind}: hidden ${init.config.hidden}, ${init.config.layers} layers, vocabulary ${init.config.vocabSize}); peak lr ${flags.lr}`);
    }
    checkFlags(init?.config ?? shapeOf(flags, 259), flags);
    runDir = flags.runDir ?? `${flags.out.replace(/\.gguf$/i, "")}.run`;
    const previous = path.join(runDir, "checkpoint.safetensors");
    if (await fs.stat(previous).then(() => true, () => false)) {
      throw new TrainCliError(
        "bad-flags",
        `[train] ${runDir} already holds the checkpoint of a run (continue it: barbell train --resume ${previous}; start over: remove ${runDir} or give another --run-dir)`,
      );
    }
    await fs.mkdir(runDir, { recursive: true });
    let tokenizerSource: string;
    if (flags.tokenizer !== undefined) {
      tokenizerMeta = await tokenizerEntries(flags.tokenizer);
      tokenizerSource = `tokenizer.* of ${flags.tokenizer}`;
    } else if (init?.tokenizer !== undefined) {
      tokenizerMeta = init.tokenizer;
      tokenizerSource = `the tokenizer of ${flags.init ?? ""}`;
    } else {
      const started = performance.now();
      say(`training a byte-level BPE tokenizer of ${flags.vocab} tokens on the ${lines.length - valLines} training lines`);
      const trained = trainByteBpe(lines.slice(0, lines.length - valLines), { vocabSize: flags.vocab });
      say(`tokenizer: ${trained.stats.learnedTokens} merges learned in ${((performance.now() - started) / 1000).toFixed(1)} s (stopped by ${trained.stats.stoppedBy})`);
      tokenizerMeta = toGgufTokenizerMetadata(trained);
      tokenizerSource = `byte-level BPE trained by barbell on the training split (Llama-3 split regex)`;
    }
    const tokBytes = writeGguf({ metadata: tokenizerMeta });
    await writeAtomically(path.join(runDir, "tokenizer.gguf"), tokBytes);
    const tok = tokenizerFromEntries(tokenizerMeta);
    ({ trainTokens, valTokens } = splitCorpus(corpusBytes, flags.valFraction, tok));
    const config = init?.config ?? shapeOf(flags, tok.vocabSize);
    if (tok.vocabSize > config.vocabSize) {
      throw new TrainCliError("bad-flags", `[train] the tokenizer has ${tok.vocabSize} tokens but the model's embedding only ${config.vocabSize} rows`);
    }
    const options: TrainOptions = {
      totalSteps: flags.steps,
      warmupSteps: flags.warmup ?? Math.min(200, Math.floor(flags.steps / 10)),
      peakLr: flags.lr,
      minLr: flags.minLr ?? flags.lr / 10,
      weightDecay: flags.weightDecay,
      beta1: 0.9,
      beta2: 0.95,
      eps: 1e-8,
      clipNorm: flags.clip,
      batchSize: flags.batch,
      seqLen: flags.seqLen,
    };
    if (trainTokens.length < options.seqLen + 1) {
      throw new TrainCliError("corpus", `[train] the training split has ${trainTokens.length} tokens, fewer than one window of --seq-len ${options.seqLen} + 1`);
    }
    const weights: ExportWeightType = flags.weights === "auto" ? (config.hidden % 128 === 0 && config.ffn % 128 === 0 ? "i2_s" : "f32") : flags.weights;
    const unavailable = nativeTrainUnavailable();
    if (flags.runtime === "native" && unavailable !== undefined) {
      throw new TrainCliError("bad-flags", `[train] --runtime native: ${unavailable}`);
    }
    const runtimeKind = flags.runtime === "reference" || (flags.runtime === "auto" && unavailable !== undefined) ? "reference" : "native";
    if (flags.runtime === "auto" && unavailable !== undefined) {
      say(`the native runtime is unavailable (${unavailable}); training on the reference runtime (slow)`);
    }
    const firstWords = lines.find((l) => l.trim() !== "")?.trim().split(/\s+/).slice(0, 3).join(" ") ?? "";
    run = {
      format: RUN_FORMAT,
      version: RUN_VERSION,
      command: commandLine,
      resumes: [],
      corpus: { path: corpusArg, sha256: sha256(corpusBytes), bytes: corpusBytes.length, lines: lines.length, license: flags.corpusLicense },
      split: { valFraction: flags.valFraction, trainLines: lines.length - valLines, valLines, trainTokens: trainTokens.length, valTokens: valTokens.length },
      tokenizer: { file: "tokenizer.gguf", sha256: sha256(tokBytes), source: tokenizerSource },
      config,
      options,
      seeds: { init: flags.seed, data: flags.dataSeed },
      export: { out: flags.out, name: flags.name ?? path.basename(flags.out).replace(/\.gguf$/i, ""), contextLength: flags.ctx, weights },
      eval: { every: flags.evalEvery, tokens: flags.evalTokens },
      checkpointEvery: flags.checkpointEvery,
      samples: { prompts: flags.sample ?? (firstWords === "" ? [] : [firstWords]), tokens: flags.sampleTokens },
      runtime: { kind: runtimeKind, threads: flags.threads },
      ...(init === undefined || flags.init === undefined ? {} : { init: { path: flags.init, kind: init.kind, contextLength: init.contextLength } }),
      trainSeconds: 0,
      evals: [],
      recentLoss: [],
    };
    state = init === undefined ? initTrainState(config, flags.seed, flags.dataSeed) : stateFrom(config, init.params, flags.dataSeed);
    say(
      `${trainTokens.length} train / ${valTokens.length} validation tokens; model ${paramCount(state)} parameters; ` +
        `${options.totalSteps} steps × ${options.batchSize} × ${options.seqLen} tokens; run folder ${runDir}`,
    );
  }

  const options = run.options;
  using runtime = openRuntime(run.runtime);
  say(`steps run on ${runtime.name}`);
  const until = Math.min(flags.until ?? options.totalSteps, options.totalSteps);
  const deadline = flags.maxMinutes === undefined ? Infinity : performance.now() + flags.maxMinutes * 60_000;
  const ckptFile = path.join(runDir, "checkpoint.safetensors");
  const save = async (): Promise<void> => {
    await writeAtomically(ckptFile, saveCheckpoint(state, options));
    await writeAtomically(path.join(runDir, "run.json"), `${JSON.stringify(run, null, 2)}\n`);
  };
  const evalFile = path.join(runDir, "eval.gguf");
  const evaluate = async (): Promise<{ loss: number; tokens: number }> => {
    await writeAtomically(evalFile, exportGguf(run.config, state.params, { name: run.export.name, contextLength: run.export.contextLength, weightType: run.export.weights, tokenizer: tokenizerMeta }));
    try {
      return await validationLoss(evalFile, valTokens, options.seqLen, run.eval.tokens);
    } finally {
      await fs.rm(evalFile, { force: true });
    }
  };

  const bar = io.errIsTty
    ? new cliProgress.SingleBar(
        {
          format: "train [{bar}] {value}/{total} steps | loss {loss} | val {val} | {tps} tok/s | {elapsed} elapsed, ETA {left}",
          stream: process.stderr,
          hideCursor: true,
        },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  if (run.init !== undefined && state.step === 0 && run.evals.length === 0) {
    const before = await evaluate(); // the starting model on this corpus's held-out split: the card's "before"
    run.evals.push({ step: 0, valLoss: before.loss });
    say(`starting model: validation loss ${before.loss.toFixed(4)}, perplexity ${Math.exp(before.loss).toFixed(2)} over ${before.tokens} tokens`);
  }
  const sessionStart = performance.now();
  const stepsAtStart = state.step;
  let lastVal = run.evals[run.evals.length - 1]?.valLoss;
  let stepSeconds = 0;
  const fields = (r: StepReport | undefined): Record<string, string> => {
    const stepsDone = state.step - stepsAtStart;
    const sessionSeconds = (performance.now() - sessionStart) / 1000;
    const perStep = stepsDone > 0 ? sessionSeconds / stepsDone : Number.NaN;
    return {
      loss: r === undefined ? "-" : r.loss.toFixed(4),
      val: lastVal === undefined ? "-" : lastVal.toFixed(4),
      // Mean over this session's steps: one step's own rate is noisy on a shared machine.
      tps: stepSeconds > 0 ? ((stepsDone * options.batchSize * options.seqLen) / stepSeconds).toFixed(0) : "-",
      elapsed: fmtDuration(run.trainSeconds),
      left: Number.isFinite(perStep) ? fmtDuration(perStep * (until - state.step)) : "-",
    };
  };
  bar?.start(options.totalSteps, state.step, fields(undefined));
  let last: StepReport | undefined;
  try {
    while (state.step < until) {
      await nextTurn(); // lets Ctrl-C (io.signal) through between the synchronous steps
      if (io.signal.aborted || performance.now() > deadline) {
        await save();
        bar?.stop();
        const why = io.signal.aborted ? "interrupted" : `--max-minutes ${flags.maxMinutes} reached`;
        if (io.signal.aborted) {
          throw new TrainCliError("interrupted", `[train] ${why} at step ${state.step}/${options.totalSteps}; checkpoint ${ckptFile} (continue: barbell train --resume ${ckptFile})`);
        }
        say(`${why} at step ${state.step}/${options.totalSteps}; checkpoint ${ckptFile} (continue: barbell train --resume ${ckptFile})`);
        return;
      }
      const t0 = performance.now();
      last = trainStep(state, trainTokens, options, runtime);
      const seconds = (performance.now() - t0) / 1000;
      run.trainSeconds += seconds;
      stepSeconds += seconds;
      run.recentLoss.push(last.loss);
      if (run.recentLoss.length > 20) {
        run.recentLoss.shift();
      }
      if (!Number.isFinite(last.loss)) {
        await save();
        throw new TrainCliError("interrupted", `[train] the loss became ${last.loss} at step ${state.step}; try a lower --lr (checkpoint ${ckptFile})`);
      }
      if (run.eval.every > 0 && state.step % run.eval.every === 0 && state.step < options.totalSteps) {
        lastVal = (await evaluate()).loss;
        run.evals.push({ step: state.step, valLoss: lastVal });
        if (bar === undefined) {
          say(`step ${state.step}: validation loss ${lastVal.toFixed(4)}, perplexity ${Math.exp(lastVal).toFixed(2)}`);
        }
      }
      if (state.step % run.checkpointEvery === 0 || state.step === until) {
        await save();
      }
      if (bar !== undefined) {
        bar.update(state.step, fields(last));
      } else if (state.step % flags.logEvery === 0 || state.step === until) {
        const f = fields(last);
        say(`step ${state.step}/${options.totalSteps} loss ${f["loss"]} lr ${last.lr.toExponential(2)} ${f["tps"]} tok/s, ${f["elapsed"]} elapsed, ETA ${f["left"]}`);
      }
    }
  } finally {
    bar?.stop();
  }
  if (state.step < options.totalSteps) {
    say(`stopped at step ${state.step}/${options.totalSteps} (--until); checkpoint ${ckptFile} (continue: barbell train --resume ${ckptFile})`);
    return;
  }

  const val = await evaluate();
  run.evals.push({ step: state.step, valLoss: val.loss });
  await save();
  const out = run.export.out;
  await fs.mkdir(path.dirname(path.resolve(out)), { recursive: true });
  const gguf = exportGguf(run.config, state.params, { name: run.export.name, contextLength: run.export.contextLength, weightType: run.export.weights, tokenizer: tokenizerMeta });
  await writeAtomically(out, gguf);
  const samples: { prompt: string; text: string }[] = [];
  if (run.samples.tokens > 0 && run.samples.prompts.length > 0) {
    using model = await loadModel(out, { autotune: false });
    for (const prompt of run.samples.prompts) {
      const r = await model.generate(prompt, { temperature: 0.8, topK: 40, seed: 1, maxTokens: run.samples.tokens }).complete();
      samples.push({ prompt, text: r.text });
    }
  }
  const trainLoss = run.recentLoss.reduce((a, b) => a + b, 0) / Math.max(1, run.recentLoss.length);
  const card = cardMarkdown(run, { valLoss: val.loss, valTokens: val.tokens, trainLoss, samples, date: new Date().toISOString().slice(0, 10), bytes: gguf.length });
  const cardFile = out.replace(/\.gguf$/i, "") + ".md";
  await writeAtomically(cardFile, card);
  io.out(
    `trained ${run.export.name}: ${options.totalSteps} steps, ${options.totalSteps * options.batchSize * options.seqLen} tokens in ${fmtDuration(run.trainSeconds)}; ` +
      `train loss ${trainLoss.toFixed(4)}, validation loss ${val.loss.toFixed(4)} (perplexity ${Math.exp(val.loss).toFixed(2)}) over ${val.tokens} tokens\n`,
  );
  io.out(`wrote ${out} (${gguf.length} bytes) and ${cardFile}\n`);
  for (const s of samples) {
    io.out(`sample: ${JSON.stringify(s.prompt + s.text)}\n`);
  }
}

/** The run's training runtime, disposable (a no-op for the reference). */
function openRuntime(r: RunFile["runtime"]): TrainRuntime & Disposable {
  if (r.kind === "reference") {
    return { ...REFERENCE_RUNTIME, [Symbol.dispose]: () => undefined };
  }
  return createNativeTrainRuntime({ threads: r.threads });
}

/** The model config the flags ask for. */
function shapeOf(flags: TrainFlags, vocabSize: number): QatConfig {
  return {
    vocabSize,
    hidden: flags.hidden,
    layers: flags.layers,
    heads: flags.heads,
    kvHeads: flags.kvHeads,
    ffn: flags.ffn,
    rmsEps: 1e-5,
    ropeTheta: 10_000,
    activation: flags.activation,
    tied: flags.untied !== true,
  };
}

function paramCount(state: TrainState): number {
  return state.params.reduce((n, p) => n + p.data.length, 0);
}

/** Largest corpus read (bytes): the KJV is 4.1 MB; training in this process on more than this is not realistic. */
export const MAX_CORPUS_BYTES = 1024 * 1024 * 1024;

async function readCorpus(file: string): Promise<Uint8Array> {
  try {
    return await readRegularFile(file, MAX_CORPUS_BYTES, "[train] corpus");
  } catch (e) {
    if (!(e instanceof FileError)) {
      throw e;
    }
    const hint = file === "data/kjv.txt" ? "run scripts/fetch-corpus.sh first, or give a corpus file" : "give a UTF-8 text file";
    throw new FileError(e.code, `${e.message}; ${hint}`);
  }
}

/** The tokenizer of `tokenizer.*` entries, through a GGUF round trip: the same metadata the model loader reads. */
export function tokenizerFromEntries(entries: readonly [string, GgufValue][]): Tokenizer {
  return tokenizerFromGguf(parseGguf(writeGguf({ metadata: entries })).metadata);
}

/** The run's token streams: the last `valFraction` of the corpus lines held out (the card's "split"). */
export function splitCorpus(bytes: Uint8Array, valFraction: number, tok: Tokenizer): { trainTokens: Uint32Array; valTokens: Uint32Array } {
  const lines = corpusLines(new TextDecoder().decode(bytes));
  const valLines = Math.max(1, Math.round(lines.length * valFraction));
  return {
    trainTokens: encodeDocs(tok, documents(lines.slice(0, lines.length - valLines))),
    valTokens: encodeDocs(tok, documents(lines.slice(lines.length - valLines))),
  };
}

function checkFlags(c: QatConfig, f: TrainFlags): void {
  if (c.hidden % c.heads !== 0 || (c.hidden / c.heads) % 2 !== 0) {
    throw new TrainCliError("bad-flags", `[train] --hidden ${c.hidden} must be a multiple of --heads ${c.heads} with an even head width (hidden/heads = ${c.hidden / c.heads})`);
  }
  if (c.heads % c.kvHeads !== 0) {
    throw new TrainCliError("bad-flags", `[train] --heads ${c.heads} must be a multiple of --kv-heads ${c.kvHeads}`);
  }
  if (f.warmup !== undefined && f.warmup > f.steps) {
    throw new TrainCliError("bad-flags", `[train] --warmup ${f.warmup} is more than --steps ${f.steps}`);
  }
  if (f.minLr !== undefined && f.minLr > f.lr) {
    throw new TrainCliError("bad-flags", `[train] --min-lr ${f.minLr} is above --lr ${f.lr}`);
  }
  if (f.seqLen + 1 > f.ctx) {
    throw new TrainCliError("bad-flags", `[train] --ctx ${f.ctx} is shorter than a training window (--seq-len ${f.seqLen} + 1)`);
  }
  if (f.weights === "i2_s" && (c.hidden % 128 !== 0 || c.ffn % 128 !== 0)) {
    throw new TrainCliError("bad-flags", `[train] --weights i2_s needs --hidden and --ffn multiples of 128 (got ${c.hidden} and ${c.ffn}); use --weights f32 or auto`);
  }
}
