/** The `barbell` command line. */
import fs from "node:fs";
import path from "node:path";
import { Command, CommanderError, Option } from "commander";
import { BarbellError, FileError } from "../core/errors.js";
import { fileError } from "../core/files.js";
import { intInRange } from "./args.js";
import { packageRoot } from "./default-model.js";
import { MAX_SEED } from "./flags.js";
import { makeBitnetFixture, type BitnetFixtureOptions } from "../model/bitnet/fixture.js";
import { runDemo } from "./demo.js";
import { addBackendsCommand } from "./backends.js";
import { addBenchCommand } from "./bench.js";
import { addConvertCommand } from "./convert.js";
import { addExportCommand } from "./export.js";
import { addDumpCommands } from "./dump.js";
import { addRunCommands, type CliIo } from "./run.js";
import { addServeCommand } from "./serve.js";
import { addWorkerCommand } from "./worker.js";
import { addHfModelSupport, addHubCommands } from "./pull.js";
import { writeAtomically } from "../core/files.js";
import { addTrainCommand } from "./train.js";
import { formatInspectReport, inspectFile } from "./inspect.js";
import { DENSE_FORMATS } from "../quant/dtypes.js";

/**
 * Largest sizes `barbell fixture` writes: fixtures are small test models (the real shapes come from
 * scripts/gen-model.ts), and each flag is checked against its bound before anything is sized from it.
 */
export const FIXTURE_LIMITS = { hidden: 8192, layers: 64, heads: 128, ffn: 32_768, vocab: 262_144, ctx: 1 << 20 } as const;

/** A fixture size flag: 1..its limit. */
const fixtureSize = (max: number): ((value: string) => number) => intInRange(1, max);


/** `barbell --version`: the package's version and the Node running it. */
export function versionLine(): string {
  let version = "unknown";
  try {
    version = String((JSON.parse(fs.readFileSync(path.join(packageRoot(), "package.json"), "utf8")) as { version?: unknown }).version ?? "unknown");
  } catch {
    // outside the package (bundled): the version is unknown, said so
  }
  return `barbell ${version} (Node ${process.version})`;
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
    .exitOverride()
    // Help, --version and usage errors go where the command's other output goes (the tests read them there).
    // Usage errors start with "barbell: " like every other error line.
    .configureOutput({ writeOut: (text) => io.out(text), writeErr: (text) => io.err(text), outputError: (text, write) => write(`barbell: ${text}`) })
    .showHelpAfterError("(add --help for the flags and their defaults)")
    .version(versionLine(), "-v, --version", "print barbell's version and exit");

  program
    .command("inspect")
    .description("show a GGUF file's architecture, hyperparameters, tokenizer and tensors")
    .argument("<file>", "a .gguf file")
    .option("--json", "print the report as JSON (default: text)")
    .action(async (file: string, opts: { json?: boolean }) => {
      const report = await inspectFile(file).catch((e: unknown) => {
        throw e instanceof FileError ? new FileError(e.code, `${e.message}; inspect reads a .gguf file${e.code === "missing" ? " (check the path)" : ""}`) : e;
      });
      print(opts.json === true ? JSON.stringify(report, null, 2) : formatInspectReport(report));
    });

  program
    .command("fixture")
    .description("write a seeded random tiny BitNet model as GGUF (for tests and experiments)")
    .argument("<out>", "output .gguf path")
    .addOption(new Option("--arch <arch>", "architecture").choices(["bitnet", "bitnet-25", "bitnet-b1.58"]).default("bitnet-b1.58"))
    .addOption(new Option("--weights <type>", "ternary weight storage").choices(["i2_s", "tq2_0", "tq1_0", "f32", "f16", "bf16"]).default("i2_s"))
    .addOption(new Option("--embeddings <type>", "embedding storage").choices(DENSE_FORMATS).default("f16"))
    .option("--hidden <n>", "hidden size (default: 128)", fixtureSize(FIXTURE_LIMITS.hidden))
    .option("--layers <n>", "transformer blocks (default: 2)", fixtureSize(FIXTURE_LIMITS.layers))
    .option("--heads <n>", "attention heads, dividing --hidden (default: 4)", fixtureSize(FIXTURE_LIMITS.heads))
    .option("--kv-heads <n>", "key/value heads, dividing --heads (default: 2; --arch bitnet: --heads)", fixtureSize(FIXTURE_LIMITS.heads))
    .option("--ffn <n>", "feed-forward width (default: 256)", fixtureSize(FIXTURE_LIMITS.ffn))
    .option("--vocab <n>", "vocabulary size, at least 259 (default: 300)", intInRange(259, FIXTURE_LIMITS.vocab))
    .option("-c, --ctx <n>", "context length written into the file (default: 256)", fixtureSize(FIXTURE_LIMITS.ctx))
    .option("--untied", "write a separate output.weight (default: tied to the embedding)")
    .option("-s, --seed <n>", "random seed", intInRange(0, MAX_SEED), 1)
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
    .option("--out <file>", "keep the generated model at this path (default: a temporary file, removed)")
    .option("-s, --seed <n>", "random seed", intInRange(0, MAX_SEED), 1)
    .action(async (o: { out?: string; seed: number }) => {
      await runDemo(o.out === undefined ? { seed: o.seed } : { out: o.out, seed: o.seed }, print);
    });

  addRunCommands(program, io);
  addBackendsCommand(program, io);
  addDumpCommands(program, io);
  addServeCommand(program, io);
  addWorkerCommand(program, io);
  addTrainCommand(program, io);
  addConvertCommand(program, io);
  addExportCommand(program, io);
  addBenchCommand(program, io);
  addHubCommands(program, io);
  addHfModelSupport(program, io); // after every command with -m: adds --pull and resolves -m hf:…
  return program;
}

/** Runs the CLI; known errors print one line and exit with status 1, without a stack trace. */
export async function main(argv: readonly string[]): Promise<number> {
  // The first Ctrl-C ends a running generation (its text so far is kept); a second one exits.
  const controller = new AbortController();
  const interrupt = (): void => controller.abort();
  process.once("SIGINT", interrupt);
  const program = buildProgram((line) => process.stdout.write(`${line}\n`), processIo(controller.signal));
  try {
    // llama-bench spells the pp+tg pair `-pg`, which commander would read as `-p g`.
    const bench = argv.indexOf("bench");
    await program.parseAsync(bench < 0 ? [...argv] : argv.map((a, i) => (i > bench && a === "-pg" ? "--pg" : a)));
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      return e.exitCode; // commander has already printed its message (or the help)
    }
    if (e instanceof BarbellError) {
      process.stderr.write(`barbell: ${e.name} (${e.code}): ${e.message}\n`);
      return 1;
    }
    // A file error that no command turned into a FileError: in the same words (never errno's "ENOENT: ... stat").
    if (e instanceof Error && "code" in e && typeof e.code === "string" && e.code.startsWith("E")) {
      const file = "path" in e && typeof e.path === "string" ? e.path : undefined;
      const typed = file === undefined ? undefined : fileError(e, file, "[cli] file");
      process.stderr.write(typed === undefined ? `barbell: ${e.message}\n` : `barbell: ${typed.name} (${typed.code}): ${typed.message}\n`);
      return 1;
    }
    throw e;
  } finally {
    process.off("SIGINT", interrupt);
  }
}
