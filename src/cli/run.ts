/**
 * `barbell generate` and `barbell logits` (and `barbell chat`, src/cli/chat.ts): run a model from the command line.
 * Text goes to stdout; progress and speed go to stderr (a progress bar only when stderr is a TTY).
 * Flags, their llama.cpp aliases and the checks before a model loads: src/cli/flags.ts.
 */
import type { Command } from "commander";
import cliProgress from "cli-progress";
import { FileError } from "../core/errors.js";
import { parseJsonFile, readRegularFile } from "../core/files.js";
import type { Generation, GenerationResult } from "../engine/generate.js";
import { compileOptions, type StructuredOptions } from "../engine/structured.js";
import { loadModel, type BitnetModel } from "../engine/model.js";
import { ContextFullError } from "../model/bitnet/kv-cache.js";
import { tokenIds } from "./args.js";
import { addChatCommand } from "./chat.js";
import { modelOrDefault } from "./default-model.js";
import { CliError } from "./errors.js";
import { checkModel, contextFullError, generateOptions, modelOptions, samplingOptions, type ModelFlags, type SamplingFlags } from "./flags.js";

/** Where a command writes; the tests replace these. */
export interface CliIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly errIsTty: boolean;
  readonly input: NodeJS.ReadableStream;
  /** Aborts a running generation (the CLI wires it to Ctrl-C). */
  readonly signal: AbortSignal;
}

/** Largest prompt read from `-f FILE` or stdin, in bytes (the server's longest prompt is 4 Mi characters). */
export const MAX_PROMPT_FILE_BYTES = 4 * 1024 * 1024;

/** Largest --json-schema or --grammar file, in bytes (the grammar engine takes GBNF up to 1 Mi characters). */
export const MAX_CONSTRAINT_FILE_BYTES = 1024 * 1024;

/**
 * The structured-output option of `--json-schema FILE` or `--grammar FILE` (at most one), read as regular files
 * of at most MAX_CONSTRAINT_FILE_BYTES. Errors name the path only as the user typed it.
 */
export async function readConstraint(flags: { jsonSchema?: string; grammar?: string; stop?: string[] }): Promise<StructuredOptions> {
  if (flags.jsonSchema !== undefined && flags.grammar !== undefined) {
    throw new CliError("bad-flag", "[cli] --json-schema and --grammar do not go together; give one of them");
  }
  if ((flags.jsonSchema !== undefined || flags.grammar !== undefined) && flags.stop !== undefined) {
    throw new CliError("bad-flag", `[cli] --stop does not go with ${flags.grammar === undefined ? "--json-schema" : "--grammar"}: the grammar decides where the output ends`);
  }
  if (flags.jsonSchema !== undefined) {
    const what = "[cli] --json-schema file";
    const text = (await readRegularFile(flags.jsonSchema, MAX_CONSTRAINT_FILE_BYTES, what)).toString("utf8");
    const schema = parseJsonFile(text, flags.jsonSchema, what);
    if (typeof schema !== "object" || schema === null || Array.isArray(schema)) {
      throw new CliError("bad-flag", `${what} ${flags.jsonSchema} holds no JSON object; a JSON Schema is an object such as {"type": "object", "properties": {…}}`);
    }
    return { jsonSchema: schema };
  }
  if (flags.grammar !== undefined) {
    return { grammar: (await readRegularFile(flags.grammar, MAX_CONSTRAINT_FILE_BYTES, "[cli] --grammar file")).toString("utf8") };
  }
  return {};
}

/** Drops one trailing newline, as llama.cpp does for `-f` (a file's last line ends with one). */
const withoutFinalNewline = (text: string): string => text.replace(/\r?\n$/, "");

async function readStdin(input: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of input) {
    const bytes = typeof chunk === "string" ? Buffer.from(chunk) : Buffer.from(chunk as Uint8Array);
    size += bytes.length;
    if (size > MAX_PROMPT_FILE_BYTES) {
      throw new CliError("prompt", `[cli] the prompt on stdin is longer than ${MAX_PROMPT_FILE_BYTES} bytes (MAX_PROMPT_FILE_BYTES); pass a shorter one`);
    }
    chunks.push(bytes);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** The prompt from exactly one of: the argument, `-p TEXT`, `-f FILE`; `-` (as the argument or the file) reads stdin. */
async function readPrompt(positional: string | undefined, flags: { prompt?: string; file?: string }, io: CliIo): Promise<string> {
  const given = [positional, flags.prompt, flags.file].filter((p) => p !== undefined);
  if (given.length !== 1) {
    throw new CliError(
      "prompt",
      given.length === 0
        ? '[cli] no prompt; give it as an argument, with -p TEXT, with -f FILE, or as - to read stdin (barbell generate "And God said")'
        : "[cli] the prompt is given more than once; give one of: an argument, -p TEXT or -f FILE",
    );
  }
  const file = flags.file ?? (positional === "-" ? "-" : undefined);
  if (file === undefined) {
    return (positional ?? flags.prompt) as string;
  }
  if (file === "-") {
    return withoutFinalNewline(await readStdin(io.input));
  }
  try {
    return withoutFinalNewline((await readRegularFile(file, MAX_PROMPT_FILE_BYTES, "[cli] prompt file -f")).toString("utf8"));
  } catch (error) {
    if (error instanceof FileError && error.code === "missing") {
      throw new FileError("missing", `${error.message}; -f takes a text file, or - to read stdin`);
    }
    throw error;
  }
}

/** Loads the model the flags name (or the default one), with a progress bar on a terminal. */
export async function open(flags: ModelFlags, io: CliIo): Promise<BitnetModel> {
  const file = modelOrDefault(flags.model, io.err);
  await checkModel(file, flags.ctx);
  const bar = io.errIsTty
    ? new cliProgress.SingleBar(
        { format: "loading [{bar}] {percentage}% {value}/{total} MiB", stream: process.stderr, clearOnComplete: true },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  let started = false;
  try {
    return await loadModel(file, {
      ...(flags.ctx === undefined ? {} : { contextLength: flags.ctx }),
      ...(flags.backend === undefined ? {} : { backends: flags.backend }),
      ...(flags.strict === true ? { strict: true } : {}),
      ...(flags.threads === undefined ? {} : { threads: flags.threads }),
      ...(flags.head === undefined ? {} : { headType: flags.head }),
      ...(flags.kvType === undefined ? {} : { kvCacheType: flags.kvType }),
      ...(flags.autotune === false ? { autotune: false } : {}),
      onFallback: (e) => io.err(`barbell: ${e.kernel} runs on ${e.to} instead of ${e.from} (${e.reason})\n`),
      onUnavailable: (name, reason) => io.err(`barbell: ${name} backend unavailable: ${reason}\n`),
      ...(flags.allowFloatWeights === true ? { allowFloatWeights: true } : {}),
      onProgress: (done, total) => {
        const mib = (n: number): number => Math.round(n / 2 ** 20);
        if (!started) {
          bar?.start(mib(total), 0);
          started = true;
        }
        bar?.update(mib(done));
      },
    });
  } finally {
    bar?.stop();
  }
}

/** The stderr line after a generation: tokens prefilled (and reused from the KV cache) and decoded, with speeds. */
export function speed(r: GenerationResult): string {
  const rate = (n: number, ms: number): string => (ms > 0 ? (n / (ms / 1000)).toFixed(2) : "-");
  const run = r.promptTokens - r.cachedTokens;
  return (
    `prefill ${run} tokens${r.cachedTokens > 0 ? ` (+${r.cachedTokens} cached)` : ""} ${rate(run, r.prefillMs)} t/s, ` +
    `decode ${r.tokens.length} tokens ${rate(r.tokens.length, r.decodeMs)} t/s (${r.finishReason})`
  );
}

export function jsonResult(r: GenerationResult): string {
  return JSON.stringify({
    text: r.text,
    tokens: r.tokens,
    finish_reason: r.finishReason,
    prompt_tokens: r.promptTokens,
    cached_tokens: r.cachedTokens,
    prefill_ms: Math.round(r.prefillMs * 1000) / 1000,
    decode_ms: Math.round(r.decodeMs * 1000) / 1000,
  });
}

/** Streams a generation to stdout (or prints its JSON); a context-full error says how to make it fit. */
async function emit(model: BitnetModel, start: () => Generation, flags: SamplingFlags, io: CliIo, constrained = false): Promise<GenerationResult> {
  try {
    const gen = start();
    if (flags.json === true) {
      const result = await gen.complete();
      io.out(`${jsonResult(result)}\n`);
      return result;
    }
    if (constrained) {
      // Printed whole once the grammar is complete: a generation that fails never leaves half a document on stdout.
      const result = await gen.complete();
      io.out(`${result.text}\n`);
      io.err(`${speed(result)}\n`);
      return result;
    }
    for await (const t of gen) {
      io.out(t.text);
    }
    io.out("\n");
    const result = await gen.complete();
    io.err(`${speed(result)}\n`);
    return result;
  } catch (error) {
    throw error instanceof ContextFullError ? contextFullError(error, flags, model.config.contextLength) : error;
  }
}

export function addRunCommands(program: Command, io: CliIo): void {
  samplingOptions(modelOptions(program.command("generate"), true))
    .description("generate text from a prompt, streaming it to stdout (sampling defaults as llama.cpp's)")
    .argument("[prompt]", "the prompt text; - reads it from stdin (or give -p TEXT or -f FILE)")
    .option("-p, --prompt <text>", "the prompt text (default: the argument)")
    .option("-f, --file <file>", "read the prompt from a file (- for stdin; one final newline is dropped) (default: none)")
    .option("--json-schema <file>", "constrain the output to JSON that this JSON Schema file accepts (default: free text)")
    .option("--grammar <file>", "constrain the output to this GBNF grammar file, as llama.cpp's --grammar-file (default: free text)")
    .action(async (positional: string | undefined, flags: ModelFlags & SamplingFlags & { prompt?: string; file?: string; jsonSchema?: string; grammar?: string }) => {
      // Compiled before the model loads, so a bad grammar or schema fails at once.
      const constraint = compileOptions(await readConstraint(flags));
      const prompt = await readPrompt(positional, flags, io);
      using model = await open(flags, io);
      await emit(model, () => model.generate(prompt, { ...generateOptions(flags, io.signal), ...constraint }), flags, io, constraint.grammar !== undefined);
    });

  addChatCommand(program, io); // src/cli/chat.ts

  modelOptions(program.command("logits"))
    .description("print the logits a model gives token ids (for parity checks against other engines)")
    .requiredOption("--tokens <ids>", "comma-separated token ids, each below the vocabulary size (required)", tokenIds)
    .option("--all", "logits of every position (default: only the last)")
    .option("--json", 'print {"tokens":[…],"logits":[[…]…]} (default: the top 5 per position as text)')
    .action(async (flags: ModelFlags & { tokens: number[]; all?: boolean; json?: boolean }) => {
      using model = await open(flags, io);
      const vocab = model.config.vocabSize;
      const bad = flags.tokens.findIndex((id) => id >= vocab);
      if (bad >= 0) {
        throw new CliError("bad-flag", `[cli] --tokens: id ${flags.tokens[bad]} (position ${bad}) is not below the vocabulary size ${vocab}; pass ids 0..${vocab - 1}`);
      }
      if (flags.tokens.length > model.contextLength) {
        throw new CliError("context-full", `[cli] --tokens has ${flags.tokens.length} ids, but the context holds ${model.contextLength}; pass fewer ids or a larger -c (up to the model's ${model.config.contextLength})`);
      }
      const logits = await model.logits(flags.tokens, { all: flags.all === true });
      if (flags.json === true) {
        io.out(`${JSON.stringify({ tokens: flags.tokens, logits: logits.map((row) => Array.from(row)) })}\n`);
        return;
      }
      const first = flags.all === true ? 0 : flags.tokens.length - 1;
      for (const [i, row] of logits.entries()) {
        const top = Array.from(row.keys())
          .sort((a, b) => (row[b] ?? 0) - (row[a] ?? 0))
          .slice(0, 5)
          .map((id) => `${id}:${(row[id] ?? 0).toFixed(3)}`);
        io.out(`position ${first + i} (token ${flags.tokens[first + i]}): top ${top.join(" ")}\n`);
      }
    });
}
