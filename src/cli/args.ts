/**
 * Command-line argument parsers and option helpers shared by the commands. A parser throws commander's
 * InvalidArgumentError, which commander prints as `error: option '<flags>' argument '<value>' is invalid. <message>`,
 * so every message here says what was expected (the range) and, where it is not obvious, what to do.
 */
import os from "node:os";
import { InvalidArgumentError, Option } from "commander";
import type { BackendName } from "../backends/backend.js";
import { parseBackendList } from "../backends/registry.js";

/** `--backend native-cpu,js`: known backend names, preferred first. */
export function backendList(value: string): BackendName[] {
  try {
    return parseBackendList(value);
  } catch (e) {
    throw new InvalidArgumentError(e instanceof Error ? e.message : String(e));
  }
}

/** An integer option of at least `min`. */
export function intAtLeast(min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === "" || !Number.isSafeInteger(n) || n < min) {
      throw new InvalidArgumentError(`expected an integer >= ${min}, got '${value}'`);
    }
    return n;
  };
}

/** An integer option in [min, max] (the range is named in the error, with `hint` after it). */
export function intInRange(min: number, max: number, hint = "") {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === "" || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected an integer in ${min}..${max}${hint}, got '${value}'`);
    }
    return n;
  };
}

/** A finite number option in a range; `range` is how the range is written in the error, e.g. "(0, 1]". */
export function numberIn(range: string, ok: (n: number) => boolean, hint = "") {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === "" || !Number.isFinite(n) || !ok(n)) {
      throw new InvalidArgumentError(`expected a number ${range}${hint}, got '${value}'`);
    }
    return n;
  };
}

/** Most token ids `--tokens` takes (`logits`, `dump`; the context bounds it further once the model is open). */
export const MAX_TOKEN_IDS = 1 << 20;

/** `--tokens 1,17,42`: non-empty, comma-separated non-negative integers (the vocabulary bound is the model's). */
export function tokenIds(value: string): number[] {
  const parts = value.split(",").map((s) => s.trim());
  const ids = parts.map(Number);
  if (parts.some((s) => s === "") || ids.some((n) => !Number.isSafeInteger(n) || n < 0) || ids.length > MAX_TOKEN_IDS) {
    const shown = value.length > 40 ? `${value.slice(0, 40)}…` : value;
    throw new InvalidArgumentError(`expected 1..${MAX_TOKEN_IDS} comma-separated token ids, e.g. 1,17,42, got '${shown}'`);
  }
  return ids;
}

/** Most kernel threads `--threads` accepts: the logical CPUs of this machine (more only contend for them). */
export function maxThreads(): number {
  return Math.max(1, os.availableParallelism());
}

/** `--threads n`: 1 to the logical CPUs here. */
export function threadCount(value: string): number {
  const most = maxThreads();
  return intInRange(1, most, ` (this machine has ${most} logical CPUs; leave --threads out for one per physical core)`)(value);
}

/** A repeatable option: `--stop a --stop b` collects ["a", "b"] (one value per flag, so it never swallows a positional argument). */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/**
 * Another spelling of an option (llama.cpp's names: `--ctx-size` for `--ctx`, `--temp` for `--temperature`): it
 * parses like `target` and stores its value under the same name, and is left out of --help (the target's
 * description names it). `flags` is the alias's own flags, e.g. "--ctx-size <n>".
 */
export function aliasOption(flags: string, target: Option): Option {
  const alias = new (class extends Option {
    override attributeName(): string {
      return target.attributeName();
    }
  })(flags, `same as ${target.long ?? target.flags}`);
  if (target.parseArg !== undefined) {
    alias.argParser(target.parseArg);
  }
  return alias.hideHelp();
}
