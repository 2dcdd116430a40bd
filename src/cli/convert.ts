/**
 * `barbell convert <hf-folder> -o out.gguf [--type i2_s|tq2_0|tq1_0] [--head f16|q8_0|q6_k]`: a Hugging Face BitNet
 * folder to GGUF (src/model/bitnet/convert.ts, docs/convert.md); `barbell convert model.gguf -o out.gguf --head
 * q6_k`: a GGUF's embedding / head re-encoded, the rest copied (src/model/bitnet/convert-gguf.ts). Flags are checked
 * by commander and the paths before anything is read; the file is written through a temp file and a rename, so a
 * failure leaves nothing. The plan and the result go to stdout; per-tensor progress (a bar on a terminal) and
 * warnings to stderr.
 */
import cliProgress from "cli-progress";
import { Option, type Command } from "commander";
import { FileError } from "../core/errors.js";
import { checkOutputFile, pathKind, writeAtomically } from "../core/files.js";
import {
  CONVERT_HEAD_TYPES,
  CONVERT_WEIGHT_TYPES,
  ConvertError,
  openHfConversion,
  type ConvertHeadType,
  type ConvertPlan,
  type ConvertProgress,
  type ConvertStats,
  type ConvertWeightType,
} from "../model/bitnet/convert.js";
import { openGgufHeadConversion, type GgufHeadPlan } from "../model/bitnet/convert-gguf.js";
import type { CliIo } from "./run.js";

export interface ConvertFlags {
  readonly out: string;
  readonly type: ConvertWeightType;
  readonly head: ConvertHeadType;
  readonly name?: string;
}

/** What a finished conversion reports. */
export interface ConvertResult {
  readonly plan: ConvertPlan;
  readonly stats: ConvertStats;
  readonly seconds: number;
}

function kib(n: number): string {
  return n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 2 ** 20).toFixed(1)} MiB`;
}

function describePlan(folder: string, out: string, p: ConvertPlan): string {
  const c = p.config;
  const head = `${p.headType}${p.tied ? " (tied)" : ", separate output head"}`;
  const tok = p.tokenizer === undefined ? "no tokenizer" : `tokenizer ${p.tokenizer}`;
  return (
    `converting ${folder} -> ${out}: ${p.arch}, ${c.layers} layers, hidden ${c.hidden}, ffn ${c.ffn}, vocab ${c.vocabSize}; ` +
    `projections ${p.weightType} from ${p.storage} weights, embedding ${head}; ${tok}` +
    `${p.chatTemplate ? ", chat template" : ""}; ${p.tensors.length} tensors, ${kib(p.fileBytes)}`
  );
}

/**
 * Converts `folder` to the GGUF `flags.out`; progress through `onTensor`. Throws the typed errors of the folder
 * readers (FileError, FormatError) and ConvertError; on any failure no output file exists afterwards.
 */
export async function convertFolder(
  folder: string,
  flags: ConvertFlags,
  onPlan: (plan: ConvertPlan) => void = () => undefined,
  onTensor: (p: ConvertProgress) => void = () => undefined,
  signal?: AbortSignal,
): Promise<ConvertResult> {
  await checkOutputFile(flags.out, "[convert]", "the .gguf file");
  if ((await pathKind(folder, "[convert] model folder")) !== "folder") {
    throw new FileError("not-a-file", `[convert] ${folder} is a file; give the Hugging Face model folder (config.json, *.safetensors)`);
  }
  const start = performance.now();
  await using conversion = await openHfConversion(folder, {
    weightType: flags.type,
    headType: flags.head,
    ...(flags.name === undefined ? {} : { name: flags.name }),
    ...(signal === undefined ? {} : { signal }),
    onTensor,
  });
  onPlan(conversion.plan);
  await writeAtomically(flags.out, conversion.bytes());
  return { plan: conversion.plan, stats: conversion.stats, seconds: (performance.now() - start) / 1000 };
}

/**
 * Re-encodes the embedding / head of the GGUF `file` as `flags.head` into `flags.out`, every other tensor and the
 * metadata as they are. Throws the reader's FormatError / FileError and ConvertError; on failure no output exists.
 */
export async function convertGgufHead(
  file: string,
  flags: Pick<ConvertFlags, "out" | "head">,
  onPlan: (plan: GgufHeadPlan) => void = () => undefined,
  onTensor: (p: ConvertProgress) => void = () => undefined,
  signal?: AbortSignal,
): Promise<{ plan: GgufHeadPlan; seconds: number }> {
  await checkOutputFile(flags.out, "[convert]", "the .gguf file");
  const start = performance.now();
  await using conversion = await openGgufHeadConversion(file, { headType: flags.head, ...(signal === undefined ? {} : { signal }), onTensor });
  onPlan(conversion.plan);
  await writeAtomically(flags.out, conversion.bytes());
  return { plan: conversion.plan, seconds: (performance.now() - start) / 1000 };
}

function describeHeadPlan(file: string, out: string, p: GgufHeadPlan): string {
  const heads = p.heads.length === 0 ? `the head is ${p.headType} already: a copy` : p.heads.map((h) => `${h.name} ${h.from} -> ${h.type}`).join(", ");
  return `re-encoding ${file} -> ${out}: ${p.arch || "no architecture"}; ${heads}; other tensors and metadata as they are; ${p.tensors.length} tensors, ${kib(p.fileBytes)}`;
}

export function addConvertCommand(program: Command, io: CliIo): void {
  program
    .command("convert")
    .description(
      "convert a Hugging Face BitNet folder (packed uint8 + weight_scale, or bf16 master weights) to GGUF, " +
        "or re-encode a GGUF file's embedding / output head (--head)",
    )
    .argument("<hf-folder>", "the model folder (config.json, model.safetensors or shards, tokenizer.json), or a .gguf file")
    .requiredOption("-o, --out <file>", "the GGUF file to write")
    .addOption(new Option("--type <type>", "ternary projection storage").choices(CONVERT_WEIGHT_TYPES).default("i2_s"))
    .addOption(new Option("--head <type>", "embedding / output head storage").choices(CONVERT_HEAD_TYPES).default("f16"))
    .option("--name <name>", "general.name (default: the folder's name)")
    .action(async (folder: string, flags: ConvertFlags, command: Command) => {
      if ((await pathKind(folder, "[convert] model folder or GGUF file")) === "file") {
        for (const option of ["type", "name"]) {
          if (command.getOptionValueSource(option) === "cli") {
            throw new ConvertError("bad-option", `[convert] --${option} applies to a Hugging Face folder; a GGUF file's projections and metadata are copied as stored`);
          }
        }
        // No default for a file: re-encoding a k-quant head to the folder default (f16) would only grow it.
        if (command.getOptionValueSource("head") !== "cli") {
          throw new ConvertError("bad-option", `[convert] name the head type to write with --head (${CONVERT_HEAD_TYPES.join(", ")}) for a GGUF file`);
        }
        const { plan, seconds } = await convertGgufHead(
          folder,
          flags,
          (p) => io.out(`${describeHeadPlan(folder, flags.out, p)}\n`),
          (p) => io.err(`[${p.index}/${p.count}] ${p.tensor.name} ${p.tensor.type} ${kib(p.tensor.byteSize)}\n`),
          io.signal,
        );
        io.out(`wrote ${flags.out}: ${plan.tensors.length} tensors, ${plan.fileBytes} bytes in ${seconds.toFixed(1)} s\n`);
        return;
      }
      const bar = io.errIsTty
        ? new cliProgress.SingleBar(
            { format: "converting [{bar}] {value}/{total} tensors {tensor}", stream: process.stderr, clearOnComplete: true },
            cliProgress.Presets.shades_classic,
          )
        : undefined;
      try {
        const result = await convertFolder(
          folder,
          flags,
          (plan) => {
            io.out(`${describePlan(folder, flags.out, plan)}\n`);
            plan.warnings.forEach((w) => io.err(`barbell convert: warning: ${w}\n`));
            bar?.start(plan.tensors.length, 0, { tensor: "" });
          },
          (p) => {
            if (bar !== undefined) {
              bar.update(p.index, { tensor: p.tensor.name });
              return;
            }
            const width = String(p.count).length;
            const t = p.tensor;
            io.err(`[${String(p.index).padStart(width)}/${p.count}] ${t.name} ${t.type} [${t.dims.join(", ")}] ${kib(t.byteSize)}\n`);
          },
          io.signal,
        );
        bar?.stop();
        const { plan, stats } = result;
        if (stats.roundedScales > 0) {
          io.err(
            `barbell convert: note: ${stats.roundedScales} projection scales were rounded to fp16 by ${plan.weightType} ` +
              `(largest relative change ${stats.maxScaleError.toExponential(2)}); --type i2_s keeps them exact\n`,
          );
        }
        io.out(`wrote ${flags.out}: ${plan.tensors.length} tensors, ${plan.fileBytes} bytes in ${result.seconds.toFixed(1)} s\n`);
      } finally {
        bar?.stop();
      }
    });
}
