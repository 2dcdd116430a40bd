/**
 * `barbell generate`, `barbell chat` and `barbell logits`: run a model from the command line.
 * Text goes to stdout; progress and speed go to stderr (a progress bar only when stderr is a TTY).
 */
import readline from "node:readline/promises";
import type { Command} from "commander";
import { InvalidArgumentError, Option } from "commander";
import cliProgress from "cli-progress";
import type { GenerateOptions, GenerationResult } from "../engine/generate.js";
import type { BackendName } from "../backends/backend.js";
import { backendList } from "./args.js";
import { loadModel, type BitnetModel } from "../engine/model.js";
import type { ChatMessage } from "../model/chat/index.js";
import { modelOrDefault } from "./default-model.js";

/** Where a command writes; the tests replace these. */
export interface CliIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly errIsTty: boolean;
  readonly input: NodeJS.ReadableStream;
  /** Aborts a running generation (the CLI wires it to Ctrl-C). */
  readonly signal: AbortSignal;
}

function num(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n)) {
    throw new InvalidArgumentError("expected a number");
  }
  return n;
}

function int(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new InvalidArgumentError("expected a non-negative integer");
  }
  return n;
}

function tokenList(value: string): number[] {
  const ids = value.split(",").map((s) => Number(s.trim()));
  if (ids.length === 0 || ids.some((n) => !Number.isSafeInteger(n) || n < 0)) {
    throw new InvalidArgumentError("expected comma-separated token ids, e.g. 1,17,42");
  }
  return ids;
}

interface ModelFlags {
  /** Undefined on generate and chat without -m: the default model (src/cli/default-model.ts). */
  model?: string;
  ctx?: number;
  allowFloatWeights?: boolean;
  backend?: BackendName[];
  strict?: boolean;
  threads?: number;
  head?: "keep" | "q8_0";
  autotune?: boolean;
}

interface SamplingFlags {
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  repeatPenalty?: number;
  seed?: number;
  maxTokens?: number;
  stop?: string[];
  json?: boolean;
}

function modelOptions(cmd: Command, orDefault = false): Command {
  const described = orDefault
    ? cmd.option("-m, --model <path>", "a BitNet .gguf file (default: the packaged models/barbell-kjv.gguf)")
    : cmd.requiredOption("-m, --model <path>", "a BitNet .gguf file");
  return described
    .option("--ctx <n>", "context (KV cache) length", int)
    .option("--allow-float-weights", "run projections that are not ternary as float matmuls")
    .option("--backend <list>", "backends to use, preferred first (e.g. native-cpu,js); default BARBELL_BACKENDS or all", backendList)
    .option("--strict", "make any kernel fallback to a later backend an error")
    .option("--threads <n>", "kernel threads (default: one per physical core)", int)
    .addOption(new Option("--head <type>", "requantize a float embedding/head at load").choices(["keep", "q8_0"]))
    .option("--no-autotune", "do not time kernel variants per shape (the cached choices are not used either)");
}

function samplingOptions(cmd: Command): Command {
  return cmd
    .option("--temperature <t>", "0 = greedy", num)
    .option("--top-k <k>", "keep the k most likely tokens", int)
    .option("--top-p <p>", "nucleus sampling mass", num)
    .option("--min-p <p>", "drop tokens below p × the best one's probability", num)
    .option("--repeat-penalty <x>", "penalty for recently used tokens (1 = off)", num)
    .option("--seed <n>", "random seed for reproducible sampling", int)
    .option("--max-tokens <n>", "most tokens to generate", int)
    .addOption(new Option("--stop <text...>", "stop strings"))
    .option("--json", "print one JSON object per result instead of streaming text");
}

function generateOptions(f: SamplingFlags, signal: AbortSignal): GenerateOptions {
  return {
    signal,
    ...(f.temperature === undefined ? {} : { temperature: f.temperature }),
    ...(f.topK === undefined ? {} : { topK: f.topK }),
    ...(f.topP === undefined ? {} : { topP: f.topP }),
    ...(f.minP === undefined ? {} : { minP: f.minP }),
    ...(f.repeatPenalty === undefined ? {} : { repetitionPenalty: f.repeatPenalty }),
    ...(f.seed === undefined ? {} : { seed: f.seed }),
    ...(f.maxTokens === undefined ? {} : { maxTokens: f.maxTokens }),
    ...(f.stop === undefined ? {} : { stop: f.stop }),
  };
}

async function open(flags: ModelFlags, io: CliIo): Promise<BitnetModel> {
  const bar = io.errIsTty
    ? new cliProgress.SingleBar(
        { format: "loading [{bar}] {percentage}% {value}/{total} MiB", stream: process.stderr, clearOnComplete: true },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  let started = false;
  try {
    return await loadModel(modelOrDefault(flags.model, io.err), {
      ...(flags.ctx === undefined ? {} : { contextLength: flags.ctx }),
      ...(flags.backend === undefined ? {} : { backends: flags.backend }),
      ...(flags.strict === true ? { strict: true } : {}),
      ...(flags.threads === undefined ? {} : { threads: flags.threads }),
      ...(flags.head === undefined ? {} : { headType: flags.head }),
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

function speed(r: GenerationResult): string {
  const rate = (n: number, ms: number): string => (ms > 0 ? (n / (ms / 1000)).toFixed(2) : "-");
  return (
    `prefill ${r.promptTokens} tokens ${rate(r.promptTokens, r.prefillMs)} t/s, ` +
    `decode ${r.tokens.length} tokens ${rate(r.tokens.length, r.decodeMs)} t/s (${r.finishReason})`
  );
}

function jsonResult(r: GenerationResult): string {
  return JSON.stringify({
    text: r.text,
    tokens: r.tokens,
    finish_reason: r.finishReason,
    prompt_tokens: r.promptTokens,
    prefill_ms: Math.round(r.prefillMs * 1000) / 1000,
    decode_ms: Math.round(r.decodeMs * 1000) / 1000,
  });
}

export function addRunCommands(program: Command, io: CliIo): void {
  samplingOptions(modelOptions(program.command("generate"), true))
    .description("generate text from a prompt, streaming it to stdout")
    .argument("<prompt>", "the prompt text")
    .action(async (prompt: string, flags: ModelFlags & SamplingFlags) => {
      using model = await open(flags, io);
      const gen = model.generate(prompt, generateOptions(flags, io.signal));
      if (flags.json === true) {
        io.out(`${jsonResult(await gen.complete())}\n`);
        return;
      }
      for await (const t of gen) {
        io.out(t.text);
      }
      io.out("\n");
      io.err(`${speed(await gen.complete())}\n`);
    });

  samplingOptions(modelOptions(program.command("chat"), true))
    .description("an interactive chat; /reset clears the history, /exit (or end of input) quits")
    .option("--system <text>", "a system message")
    .action(async (flags: ModelFlags & SamplingFlags & { system?: string }) => {
      using model = await open(flags, io);
      const history: ChatMessage[] = flags.system === undefined ? [] : [{ role: "system", content: flags.system }];
      const rl = readline.createInterface({ input: io.input, terminal: false });
      for await (const line of rl) {
        const text = line.trim();
        if (text === "/exit") {
          break;
        }
        if (text === "/reset" || text.length === 0) {
          history.splice(flags.system === undefined ? 0 : 1);
          continue;
        }
        history.push({ role: "user", content: text });
        const gen = model.chat(history, generateOptions(flags, io.signal));
        if (flags.json !== true) {
          for await (const t of gen) {
            io.out(t.text);
          }
          io.out("\n");
        }
        const result = await gen.complete();
        if (flags.json === true) {
          io.out(`${jsonResult(result)}\n`);
        } else {
          io.err(`${speed(result)}\n`);
        }
        history.push({ role: "assistant", content: result.text });
      }
      rl.close();
    });

  modelOptions(program.command("logits"))
    .description("print the logits a model gives token ids (for parity checks against other engines)")
    .requiredOption("--tokens <ids>", "comma-separated token ids", tokenList)
    .option("--all", "logits of every position, not only the last")
    .option("--json", 'print {"tokens":[…],"logits":[[…]…]}')
    .action(async (flags: ModelFlags & { tokens: number[]; all?: boolean; json?: boolean }) => {
      using model = await open(flags, io);
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
