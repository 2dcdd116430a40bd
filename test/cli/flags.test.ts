/**
 * llama.cpp's flag names and habits on barbell's commands: short forms and aliases, the prompt from -p, -f FILE
 * or stdin, a repeatable --stop that leaves the prompt alone, --version, llama.cpp's sampling defaults, every
 * default in --help, and --context-overflow.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Command } from "commander";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateOptions } from "../../src/cli/flags.js";
import { buildProgram } from "../../src/cli/main.js";
import { loadModel } from "../../src/engine/model.js";
import { makeBitnetFixture } from "../../src/model/bitnet/fixture.js";
import { mainCli, runCli } from "./helpers.js";

let dir = "";
let model = "";
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "barbell-flags-"));
  model = path.join(dir, "m.gguf");
  await fs.writeFile(model, makeBitnetFixture({ hidden: 128, layers: 1, ffn: 256, vocab: 300, contextLength: 64, seed: 9 }));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

interface JsonResult {
  text: string;
  tokens: number[];
  finish_reason: string;
  prompt_tokens: number;
}

/** `generate --json` with the fixture model and the js backend; the parsed result. */
async function generate(args: string[], input?: string): Promise<JsonResult> {
  const { out } = await runCli(["generate", "-m", model, "--backend", "js", "--no-autotune", "--json", ...args], input === undefined ? {} : { input });
  const { text, tokens, finish_reason, prompt_tokens } = JSON.parse(out) as JsonResult; // without the timings
  return { text, tokens, finish_reason, prompt_tokens };
}

describe("llama.cpp's flags", () => {
  it("should take the short forms and llama.cpp's names as the long flags", async () => {
    const long = await generate(["--prompt", "hello there", "--temperature", "0.7", "--max-tokens", "6", "--seed", "3", "--ctx", "32", "--threads", "1"]);
    const short = await generate(["-p", "hello there", "--temp", "0.7", "-n", "6", "-s", "3", "-c", "32", "-t", "1"]);
    const llama = await generate(["hello there", "--temp", "0.7", "--n-predict", "6", "-s", "3", "--ctx-size", "32"]);
    expect(long.tokens).toHaveLength(6);
    expect(short).toEqual(long);
    expect(llama).toEqual(long);
    // -c / --ctx-size reach the model: a prompt that does not fit 4 positions is refused under either name.
    for (const flag of ["-c", "--ctx-size"]) {
      await expect(generate(["hello there", flag, "4"])).rejects.toThrow(/in a context of 4;/);
    }
  });

  it("should keep the prompt after a --stop, and take --stop more than once (was variadic: 'missing prompt')", async () => {
    const plain = await generate(["And God said", "--temp", "0", "-n", "8"]);
    const stopped = await generate(["--stop", "zzz-never", "--stop", "qqq-never", "And God said", "--temp", "0", "-n", "8"]);
    expect(stopped).toEqual(plain);
    const stop = plain.text.trim().slice(0, 1);
    const cut = await generate(["--stop", "zzz-never", "--stop", stop, "And God said", "--temp", "0", "-n", "8"]);
    expect(cut.finish_reason).toBe("stop");
    expect(cut.text.length).toBeLessThan(plain.text.length);
  });

  it("should read the prompt from -f FILE, from -f - and from - (stdin), dropping one final newline", async () => {
    const args = ["--temp", "0", "-n", "5"];
    const inline = await generate(["In the beginning", ...args]);
    const file = path.join(dir, "prompt.txt");
    await fs.writeFile(file, "In the beginning\n");
    expect(await generate(["-f", file, ...args])).toEqual(inline);
    expect(await generate(["-f", "-", ...args], "In the beginning\n")).toEqual(inline);
    expect(await generate(["-", ...args], "In the beginning\n")).toEqual(inline);
    expect((await generate(["-", ...args], "In the beginning\n\n")).prompt_tokens).toBeGreaterThan(inline.prompt_tokens);
  });

  it("should sample with llama.cpp's defaults: temperature 0.8, top-k 40, top-p 0.95, min-p 0.05, no repeat penalty", async () => {
    const cli = await generate(["And God said", "-n", "12", "-s", "7"]);
    using m = await loadModel(model, { backends: ["js"], autotune: false });
    const llama = await m.generate("And God said", { maxTokens: 12, seed: 7, temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05, repetitionPenalty: 1 }).complete();
    expect(cli.tokens).toEqual(llama.tokens);
  });

  it("should not compute log-probabilities it never prints (no softmax normalizer per token), same tokens", async () => {
    const options = generateOptions({ temperature: 0, topK: 40, topP: 0.95, minP: 0.05, repeatPenalty: 1, contextOverflow: "error", seed: 3, maxTokens: 6 }, new AbortController().signal);
    expect(options.logprobs).toBe(false);
    using m = await loadModel(model, { backends: ["js"], autotune: false });
    const quiet: number[] = [];
    for await (const t of m.generate("And God said", options)) {
      expect(t.token === null || Number.isNaN(t.logprob)).toBe(true);
      if (t.token !== null) {quiet.push(t.token);}
    }
    const reported = await m.generate("And God said", { ...options, logprobs: true }).complete();
    expect(quiet).toEqual(reported.tokens);
  });
  it("should print its version with --version (and -v), exit status 0", async () => {
    const pkg = JSON.parse(await fs.readFile(path.resolve(import.meta.dirname, "..", "..", "package.json"), "utf8")) as { version: string };
    for (const flag of ["--version", "-v"]) {
      const r = await mainCli([flag]);
      expect(r.code).toBe(0);
      expect(r.out).toBe(`barbell ${pkg.version} (Node ${process.version})\n`);
    }
  });

  it("should show every value flag's default (or that it is required) in --help", () => {
    const program = buildProgram(() => undefined, { out: () => undefined, err: () => undefined, errIsTty: false, input: process.stdin, signal: new AbortController().signal });
    // The hub commands (pull, models) and convert are another area's; --help of every other command is checked.
    const ours = ["inspect", "fixture", "demo", "generate", "chat", "logits", "backends", "dump", "diff", "serve", "train"];
    const missing: string[] = [];
    for (const cmd of program.commands as Command[]) {
      if (!ours.includes(cmd.name())) {
        continue;
      }
      const help = cmd.helpInformation().replace(/\s+/g, " ");
      for (const o of cmd.options) {
        const takesValue = o.required || o.optional;
        if (takesValue && !o.hidden && o.defaultValue === undefined && !/\(default|\(required\)|default:/.test(o.description)) {
          missing.push(`${cmd.name()} ${o.flags}`);
        }
        if (o.defaultValue !== undefined && !o.hidden) {
          expect(help).toContain(`default: ${JSON.stringify(o.defaultValue)})`);
        }
      }
    }
    expect(missing).toEqual([]);
    const generateHelp = ((program.commands as Command[]).find((c) => c.name() === "generate")?.helpInformation() ?? "").replace(/\s+/g, " ");
    for (const shown of ["--temperature <t>", "(default: 0.8)", "(default: 40)", "(default: 0.95)", "(default: 0.05)", "-c, --ctx <n>", "-n, --max-tokens <n>", "-t, --threads <n>", "-s, --seed <n>", "-p, --prompt <text>", "-f, --file <file>"]) {
      expect(generateHelp).toContain(shown);
    }
  });

  it("should drop the oldest prompt tokens with --context-overflow truncate, keeping BOS", async () => {
    const long = "the quick brown fox jumps over the lazy dog and then some more words follow";
    await expect(generate([long, "-c", "16", "-n", "4", "--temp", "0"])).rejects.toThrow(/--context-overflow truncate/);
    const r = await generate([long, "-c", "16", "-n", "4", "--temp", "0", "--context-overflow", "truncate"]);
    expect(r.prompt_tokens).toBe(12);
    expect(r.tokens).toHaveLength(4);
    using m = await loadModel(model, { backends: ["js"], autotune: false, contextLength: 16 });
    const ids = m.tokenize(long);
    const kept = [ids[0] ?? 0, ...ids.slice(ids.length - 11)];
    expect(r.tokens).toEqual((await m.generate(kept, { maxTokens: 4, temperature: 0 }).complete()).tokens);
  });
});

describe("barbell chat when the conversation outgrows the context", () => {
  it("should say how to fit it and keep the session (the line that did not fit is dropped)", async () => {
    const long = Array.from({ length: 20 }, () => "the quick brown fox").join(" ");
    const { out, err } = await runCli(["chat", "-m", model, "--backend", "js", "--no-autotune", "--json", "-c", "24", "-n", "2", "--temp", "0"], { input: `${long}\nhi\n` });
    // The chat's own notice (src/cli/chat.ts): the line is not sent, the chat goes on.
    expect(err).toMatch(/^barbell chat: this message and -n 2 needs \d+ tokens of a context of 24, even without the earlier turns; it was not sent \(send a shorter one, or a smaller -n, or start the chat with a larger -c\)\n/m);
    const answers = out.trim().split("\n").map((l) => JSON.parse(l) as JsonResult);
    expect(answers).toHaveLength(1); // "hi" was answered, without the long line in its history
    expect(answers[0]?.tokens).toHaveLength(2);
  });
});
