/**
 * The flags `generate`, `chat` and `logits` share, with llama.cpp's names as aliases (`-c/--ctx-size`, `-t`,
 * `-n/--n-predict`, `--temp`, `-s`), and the checks that run before a model loads: every number's range at
 * parse time, the model path, and `--ctx` against the model's own context (read from its header).
 *
 * Sampling defaults are llama.cpp's (common_params_sampling: temperature 0.8, top-k 40, top-p 0.95, min-p 0.05,
 * repeat penalty 1.0): the library's own defaults are neutral (plain softmax at temperature 1, every filter off),
 * which is right for an API that states what it does, but gives noisy text from a command line.
 */
import fs from "node:fs/promises";
import path from "node:path";
import { type Command, InvalidArgumentError, Option } from "commander";
import type { BackendName } from "../backends/backend.js";
import { FileError } from "../core/errors.js";
import { pathKind } from "../core/files.js";
import { DEFAULT_MAX_TOKENS, MAX_GENERATE_TOKENS, type GenerateOptions } from "../engine/generate.js";
import { readModelConfig } from "../engine/model.js";
import { HEAD_POLICIES, type HeadPolicy } from "../model/bitnet/weights.js";
import { KV_CACHE_DTYPES, parseKvCacheDType, type ContextFullError, type KvCacheDType } from "../model/bitnet/kv-cache.js";
import { aliasOption, backendList, collect, intAtLeast, intInRange, numberIn, threadCount } from "./args.js";
import { CliError } from "./errors.js";

/** `--head`'s help, for every command that loads a model (docs/heads.md). */
export const HEAD_HELP =
  "a float embedding/head: q6_k or q8_0 requantizes it on first use, keep runs the file's; auto: q6_k for large heads (q8_0 where the native addon is not loaded)";

/** The command line's sampling defaults: llama.cpp's (see the file comment). */
export const CLI_SAMPLING_DEFAULTS = Object.freeze({ temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05, repeatPenalty: 1 });
/** Largest seed (llama.cpp's and the server's seeds are 32-bit). */
export const MAX_SEED = 2 ** 32 - 1;

export interface ModelFlags {
  /** Undefined on generate and chat without -m: the default model (src/cli/default-model.ts). */
  model?: string;
  ctx?: number;
  allowFloatWeights?: boolean;
  backend?: BackendName[];
  strict?: boolean;
  threads?: number;
  head?: HeadPolicy;
  autotune?: boolean;
  kvType?: KvCacheDType;
}

export interface SamplingFlags {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  repeatPenalty: number;
  seed?: number;
  maxTokens?: number;
  stop?: string[];
  contextOverflow: "error" | "truncate";
  json?: boolean;
}

/** Adds an option and its hidden llama.cpp spellings. */
function withAliases(cmd: Command, option: Option, ...aliases: string[]): Command {
  cmd.addOption(option);
  for (const flags of aliases) {
    cmd.addOption(aliasOption(flags, option));
  }
  return cmd;
}

/** `-c/--ctx`: a positive integer now; against the model's own context once its header is read ({@link checkModel}). */
export const contextFlag = (): Option =>
  new Option("-c, --ctx <n>", "context (KV cache) length, at most the model's own; also --ctx-size (default: min(model's context, 4096))").argParser(intAtLeast(1));

/** `--kv-type`: the KV cache element type (llama.cpp's `-ctk/-ctv`); a bad value is commander's InvalidArgumentError. */
export const kvTypeFlag = (): Option =>
  new Option("--kv-type <type>", `KV cache element type: ${KV_CACHE_DTYPES.join(", ")} (f16: half the cache memory and attention reads, q8_0: 34/128 of them; CPU backends only; docs/kv-cache.md) (default: f32)`).argParser(
    (value: string): KvCacheDType => {
      try {
        return parseKvCacheDType(value);
      } catch {
        throw new InvalidArgumentError(`expected one of ${KV_CACHE_DTYPES.join(", ")}, got '${value.slice(0, 32)}'`);
      }
    },
  );

/** `-t/--threads`: 1 to the logical CPUs of this machine. */
export const threadsFlag = (what = "kernel threads"): Option =>
  new Option("-t, --threads <n>", `${what}, 1 to this machine's logical CPUs (default: one per physical core)`).argParser(threadCount);

export function modelOptions(cmd: Command, orDefault = false): Command {
  const described = orDefault
    ? cmd.option("-m, --model <path>", "a BitNet .gguf file or Hugging Face model folder (default: the packaged models/barbell-kjv.gguf)")
    : cmd.requiredOption("-m, --model <path>", "a BitNet .gguf file or Hugging Face model folder (required)");
  withAliases(described, contextFlag(), "--ctx-size <n>");
  return described
    .option("--allow-float-weights", "run projections that are not ternary as float matmuls (default: refuse them)")
    .option("--backend <list>", "backends to use, preferred first (e.g. native-cpu,js) (default: BARBELL_BACKENDS, else every one that works here)", backendList)
    .option("--strict", "make any kernel fallback to a later backend an error (default: fall back, said on stderr)")
    .addOption(threadsFlag())
    .addOption(kvTypeFlag())
    .addOption(new Option("--head <type>", HEAD_HELP).choices(HEAD_POLICIES).default("auto"))
    .option("--no-autotune", "do not time kernel variants per shape (default: timed once, cached in ~/.cache/barbell)");
}

export function samplingOptions(cmd: Command): Command {
  const d = CLI_SAMPLING_DEFAULTS;
  const temperature = new Option("--temperature <t>", "softmax temperature, >= 0; 0 = greedy; also --temp")
    .argParser(numberIn(">= 0", (n) => n >= 0, " (0 = greedy)"))
    .default(d.temperature);
  const maxTokens = new Option("-n, --max-tokens <n>", `most tokens to generate; also --n-predict (default: ${DEFAULT_MAX_TOKENS}, or until the context ends)`).argParser(
    intInRange(1, MAX_GENERATE_TOKENS),
  );
  withAliases(cmd, temperature, "--temp <t>");
  withAliases(cmd, maxTokens, "--n-predict <n>");
  return cmd
    .addOption(new Option("--top-k <k>", "keep the k most likely tokens; 0 = off").argParser(intAtLeast(0)).default(d.topK))
    .addOption(new Option("--top-p <p>", "nucleus sampling: keep the most likely tokens up to this mass; 1 = off").argParser(numberIn("in (0, 1]", (n) => n > 0 && n <= 1)).default(d.topP))
    .addOption(new Option("--min-p <p>", "drop tokens below p × the best one's probability; 0 = off").argParser(numberIn("in [0, 1]", (n) => n >= 0 && n <= 1)).default(d.minP))
    .addOption(new Option("--repeat-penalty <x>", "penalty for the last 64 tokens; 1 = off").argParser(numberIn("> 0", (n) => n > 0, " (1 = off)")).default(d.repeatPenalty))
    .addOption(new Option("-s, --seed <n>", `random seed for reproducible sampling, 0..${MAX_SEED} (default: random)`).argParser(intInRange(0, MAX_SEED)))
    .addOption(new Option("--stop <text>", "stop when the text contains this (repeatable: --stop a --stop b) (default: none)").argParser(collect))
    .addOption(
      new Option("--context-overflow <mode>", "prompt + --max-tokens longer than the context: refuse, or drop the oldest prompt tokens (BOS kept)")
        .choices(["error", "truncate"])
        .default("error"),
    )
    .option("--json", "print one JSON object per result instead of streaming text (default: text)");
}

/** The library's options for the flags (every sampling value is set: the CLI's defaults are not the library's). */
export function generateOptions(f: SamplingFlags, signal: AbortSignal): GenerateOptions {
  return {
    signal,
    temperature: f.temperature,
    topK: f.topK,
    topP: f.topP,
    minP: f.minP,
    repetitionPenalty: f.repeatPenalty,
    contextOverflow: f.contextOverflow,
    logprobs: false, // the CLI prints text only: skip the per-token softmax normalizer over the vocabulary
    ...(f.seed === undefined ? {} : { seed: f.seed }),
    ...(f.maxTokens === undefined ? {} : { maxTokens: f.maxTokens }),
    ...(f.stop === undefined ? {} : { stop: f.stop }),
  };
}

/** The context length a model was trained for, from its GGUF header or config.json (no weights read). */
export async function modelContextLength(model: string): Promise<number> {
  return (await readModelConfig(model)).contextLength;
}

/**
 * Checks `-m` and `--ctx` before a model loads: a missing path or a folder that is not a model says what -m
 * takes; a --ctx above the model's own context names both.
 */
export async function checkModel(model: string, ctx: number | undefined): Promise<void> {
  let folder: boolean;
  try {
    folder = (await pathKind(model, "-m")) === "folder";
  } catch (error) {
    if (error instanceof FileError && error.code === "missing") {
      throw new FileError("missing", `[model] -m ${model}: no such file or folder; give a .gguf file or a Hugging Face model folder (barbell pull <org>/<repo> downloads one)`);
    }
    throw error;
  }
  if (folder) {
    try {
      await fs.access(path.join(model, "config.json"));
    } catch {
      throw new FileError("not-a-file", `[model] -m ${model} is a folder without config.json; give a .gguf file or a Hugging Face model folder (config.json, model.safetensors, tokenizer.json)`);
    }
  }
  if (ctx !== undefined) {
    const own = await modelContextLength(model);
    if (ctx > own) {
      throw new CliError("bad-flag", `[cli] -c/--ctx ${ctx} is more than the model's context of ${own} tokens; pass -c ${own} or less`);
    }
  }
}

/**
 * The context-full error of the library as a user can act on it: the prompt's length, the room --max-tokens
 * asks for, the context, and the flags that fix it.
 */
export function contextFullError(e: ContextFullError, flags: { maxTokens?: number | undefined; contextOverflow: "error" | "truncate" }, modelContext: number): CliError {
  const room = flags.maxTokens ?? 1;
  if (flags.maxTokens !== undefined && flags.maxTokens >= e.capacity - 1) {
    return new CliError("context-full", `[cli] -n/--max-tokens ${flags.maxTokens} leaves no room for the prompt in a context of ${e.capacity} tokens; pass a smaller -n or a larger -c (up to the model's ${modelContext})`);
  }
  const asked = flags.maxTokens === undefined ? "leaves no room to generate" : `and -n/--max-tokens ${flags.maxTokens} do not fit`;
  const larger = e.capacity < modelContext ? `-c ${modelContext} (the model's context), ` : "";
  return new CliError(
    "context-full",
    `[cli] the prompt of ${e.needed - room} tokens ${asked} in a context of ${e.capacity}; pass ${larger}a shorter prompt${flags.maxTokens === undefined ? "" : ", a smaller -n"} or --context-overflow truncate (drops the oldest prompt tokens)`,
  );
}
