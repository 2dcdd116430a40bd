/**
 * `barbell export --onnx <form> [-m model] -o out.onnx` or `barbell export --hf <dir> [-m model]`: any model barbell
 * loads (GGUF, Hugging Face folder, training checkpoint) written in another format. Each target is one flag, and
 * exactly one is given. docs/onnx.md describes the ONNX forms and their measured agreement; docs/convert.md the
 * Hugging Face folder (Microsoft's BitNet layout).
 */
import { Option, type Command } from "commander";
import { UsageError } from "../core/errors.js";
import { checkOutputFile } from "../core/files.js";
import { exportHfFolder } from "../export/hf.js";
import { exportOnnx, MAX_ONNX_POSITIONS, ONNX_FORMS, type OnnxExportResult, type OnnxForm } from "../export/onnx/export.js";
import { CHECKPOINT_CONTEXT, openExportSource } from "../export/onnx/sources.js";
import { intInRange } from "./args.js";
import { modelOrDefault } from "./default-model.js";
import type { CliIo } from "./run.js";

export interface ExportFlags {
  readonly model?: string;
  readonly onnx?: OnnxForm;
  readonly hf?: string;
  readonly scaleDtype?: "f32" | "bf16";
  readonly out?: string;
  readonly positions?: number;
  readonly ctx?: number;
  readonly float64?: boolean;
}

function mib(n: number): string {
  return `${(n / 2 ** 20).toFixed(2)} MiB`;
}

/** Exports `model` as ONNX in `form` to `out` (and `out`.data). */
export async function exportOnnxFile(model: string, form: OnnxForm, out: string, flags: Pick<ExportFlags, "positions" | "ctx" | "float64"> = {}): Promise<OnnxExportResult & { kind: string; seconds: number }> {
  await checkOutputFile(out, "[export]", "the .onnx file");
  const start = performance.now();
  await using source = await openExportSource(model, flags.ctx === undefined ? {} : { contextLength: flags.ctx });
  const result = await exportOnnx(source.config, source.weights, out, {
    form,
    precision: flags.float64 === true ? "f64" : "f32",
    ...(flags.positions === undefined ? {} : { positions: flags.positions }),
  });
  return { ...result, kind: source.kind, seconds: (performance.now() - start) / 1000 };
}

export function addExportCommand(program: Command, io: CliIo): void {
  program
    .command("export")
    .description("write a model (GGUF, Hugging Face folder or training checkpoint) in another format: --onnx <form> (docs/onnx.md)")
    .option("-m, --model <path>", "the model: a .gguf file, a Hugging Face folder or a barbell training checkpoint (default: the packaged KJV model)")
    .addOption(new Option("--onnx <form>", "ONNX decoder with KV cache: int2 (INT2 + DequantizeLinear, opset 25), matmulnbits (com.microsoft.MatMulNBits bits=2), bf16 (bf16 trits + MatMul)").choices(ONNX_FORMS))
    .option("--hf <dir>", "a Hugging Face folder in Microsoft's BitNet layout (packed uint8 + weight_scale safetensors, config.json, tokenizer.json); the folder must not exist or be empty")
    .addOption(new Option("--scale-dtype <dtype>", "--hf: dtype of each weight_scale: f32 keeps γ exact; bf16 is Microsoft's (γ rounded)").choices(["f32", "bf16"]).default("f32"))
    .option("-o, --out <file>", "the .onnx file to write (weights go to <file>.data beside it)")
    .option("--positions <n>", `positions the graph accepts (RoPE table length; default the model's context, at most ${MAX_ONNX_POSITIONS})`, intInRange(1, MAX_ONNX_POSITIONS))
    .option("--float64", "compute RMSNorm, RoPE and attention in float64 as barbell's reference does (closest agreement; not for accelerators)")
    .option("--ctx <n>", `context length of a training checkpoint's model (default ${CHECKPOINT_CONTEXT})`, intInRange(1, MAX_ONNX_POSITIONS))
    .action(async (flags: ExportFlags) => {
      if ((flags.onnx === undefined) === (flags.hf === undefined)) {
        throw new UsageError("unsupported", "[export] say what to write, one of: --onnx <form> (int2, matmulnbits, bf16), --hf <dir>");
      }
      if (flags.hf !== undefined) {
        const model = modelOrDefault(flags.model, (line) => io.err(`${line}\n`));
        const start = performance.now();
        const r = await exportHfFolder(model, flags.hf, {
          scaleDtype: flags.scaleDtype === "bf16" ? "BF16" : "F32",
          ...(flags.ctx === undefined ? {} : { contextLength: flags.ctx }),
        });
        io.out(`wrote ${flags.hf}/ (${r.files.join(", ")}; ${mib(r.weightBytes)} of weights) from ${model}; ${((performance.now() - start) / 1000).toFixed(2)} s\n`);
        return;
      }
      if (flags.onnx === undefined || flags.out === undefined) {
        throw new UsageError("unsupported", "[export] -o <file.onnx> is required");
      }
      const model = modelOrDefault(flags.model, (line) => io.err(`${line}\n`));
      const r = await exportOnnxFile(model, flags.onnx, flags.out, flags);
      io.out(
        `wrote ${r.onnxPath} (graph ${mib(r.graphBytes)}, opset ${r.opset}, IR ${r.irVersion}) and ${r.dataPath} ` +
          `(${r.tensors} tensors, ${mib(r.dataBytes)}) from the ${r.kind} ${model} as ${flags.onnx}; ${r.positions} positions${flags.float64 === true ? ", float64 norms/RoPE/attention" : ""}; ${r.seconds.toFixed(2)} s\n`,
      );
    });
}
