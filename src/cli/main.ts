/** The `barbell` command line. */
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { BarbellError } from "../core/errors.js";
import { makeBitnetFixture, type BitnetFixtureOptions } from "../model/bitnet/fixture.js";
import { runDemo } from "./demo.js";
import { addBackendsCommand } from "./backends.js";
import { addConvertCommand } from "./convert.js";
import { addDumpCommands } from "./dump.js";
import { addRunCommands, type CliIo } from "./run.js";
import { addServeCommand } from "./serve.js";
import { addHfModelSupport, addHubCommands } from "./pull.js";
import { writeAtomically } from "../core/files.js";
import { addTrainCommand } from "./train.js";
import { formatInspectReport, inspectFile } from "./inspect.js";

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new InvalidArgumentError("expected a positive integer");
  }
  return n;
}


function processIo(signal: AbortSignal = new AbortController().signal): CliIo {
  return {
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
    errIsTty: process.stderr.isTTY,
    input: process.stdin,
    signal,
  };
}

export function buildProgram(print: (line: string) => void, io: CliIo = processIo()): Command {
  // exitOverride: commander throws instead of calling process.exit, so main() decides the exit code.
  const program = new Command("barbell")
    .description("A TypeScript runtime for 1-bit and 1.58-bit (BitNet) models")
    .exitOverride();

  program
    .command("inspect")
    .description("show a GGUF file's architecture, hyperparameters, tokenizer and tensors")
    .argument("<file>", "a .gguf file")
    .option("--json", "print the report as JSON")
    .action(async (file: string, opts: { json?: boolean }) => {
      const report = await inspectFile(file);
      print(opts.json === true ? JSON.stringify(report, null, 2) : formatInspectReport(report));
    });

  program
    .command("fixture")
    .description("write a seeded random tiny BitNet model as GGUF (for tests and experiments)")
    .argument("<out>", "output .gguf path")
    .addOption(new Option("--arch <arch>", "architecture").choices(["bitnet", "bitnet-25", "bitnet-b1.58"]).default("bitnet-b1.58"))
    .addOption(new Option("--weights <type>", "ternary weight storage").choices(["i2_s", "tq2_0", "tq1_0", "f32", "f16", "bf16"]).default("i2_s"))
    .addOption(new Option("--embeddings <type>", "embedding storage").choices(["f32", "f16", "bf16", "q8_0", "q6_k"]).default("f16"))
    .option("--hidden <n>", "hidden size", positiveInt)
    .option("--layers <n>", "transformer blocks", positiveInt)
    .option("--heads <n>", "attention heads", positiveInt)
    .option("--kv-heads <n>", "key/value heads", positiveInt)
    .option("--ffn <n>", "feed-forward width", positiveInt)
    .option("--vocab <n>", "vocabulary size", positiveInt)
    .option("--ctx <n>", "context length", positiveInt)
    .option("--untied", "write a separate output.weight")
    .option("--seed <n>", "random seed", positiveInt, 1)
    .action(async (out: string, o: Record<string, unknown>) => {
      const pick = <K extends keyof BitnetFixtureOptions>(key: K, value: unknown): Partial<BitnetFixtureOptions> =>
        value === undefined ? {} : { [key]: value };
      const options: BitnetFixtureOptions = {
        ...pick("arch", o["arch"]),
        ...pick("weightType", o["weights"]),
        ...pick("embeddingType", o["embeddings"]),
        ...pick("hidden", o["hidden"]),
        ...pick("layers", o["layers"]),
        ...pick("heads", o["heads"]),
        ...pick("kvHeads", o["kvHeads"]),
        ...pick("ffn", o["ffn"]),
        ...pick("vocab", o["vocab"]),
        ...pick("contextLength", o["ctx"]),
        ...pick("seed", o["seed"]),
        tied: o["untied"] !== true,
      };
      const bytes = makeBitnetFixture(options);
      await writeAtomically(out, bytes);
      print(`wrote ${out} (${bytes.length} bytes)`);
    });

  program
    .command("demo")
    .description("generate a tiny BitNet model, inspect it and run one BitLinear layer from it")
    .option("--out <file>", "keep the generated model at this path")
    .option("--seed <n>", "random seed", positiveInt, 1)
    .action(async (o: { out?: string; seed: number }) => {
      await runDemo(o.out === undefined ? { seed: o.seed } : { out: o.out, seed: o.seed }, print);
    });

  addRunCommands(program, io);
  addBackendsCommand(program, io);
  addDumpCommands(program, io);
  addServeCommand(program, io);
  addTrainCommand(program, io);
  addConvertCommand(program, io);
  addHubCommands(program, io);
  addHfModelSupport(program, io); // after every command with -m: adds --pull and resolves -m hf:…
  return program;
}

/** Runs the CLI; known errors print one line and exit with status 1, without a stack trace. */
export async function main(argv: readonly string[]): Promise<number> {
  // The first Ctrl-C ends a running generation (its text so far is kept); a second one exits.
  const controller = new AbortController();
  process.once("SIGINT", () => controller.abort());
  const program = buildProgram((line) => process.stdout.write(`${line}\n`), processIo(controller.signal));
  try {
    await program.parseAsync([...argv]);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      return e.exitCode; // commander has already printed its message (or the help)
    }
    if (e instanceof BarbellError) {
      process.stderr.write(`barbell: ${e.name} (${e.code}): ${e.message}\n`);
      return 1;
    }
    if (e instanceof Error && "code" in e && typeof e.code === "string" && e.code.startsWith("E")) {
      process.stderr.write(`barbell: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
