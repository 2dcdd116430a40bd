/**
 * Every bad input of issue 14, on the command line and over HTTP: the exact message (naming the flag, field or
 * file, what was expected and what to do) and the exit code or status. A usage error is commander's line with
 * "barbell: " in front and the help hint after it; any other error is one line `barbell: Name (code): message`.
 */
import fs from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultModelPath } from "../../src/index.js";
import { makeBitnetFixture } from "../../src/model/bitnet/fixture.js";
import { readModelInfo } from "../../src/serve/http/model-info.js";
import { tokenizerDifference } from "../../src/serve/http/served.js";
import { post, startServer, type Running } from "../serve/http/helpers.js";
import { mainCli } from "./helpers.js";

const HELP_HINT = "(add --help for the flags and their defaults)";
const cpus = os.availableParallelism();

let dir = "";
let model = "";
let bigVocab = "";
let busy: net.Server | undefined;
let busyPort = 0;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "barbell-errors-"));
  model = path.join(dir, "tiny.gguf");
  await fs.writeFile(model, makeBitnetFixture({ hidden: 128, layers: 1, ffn: 256, vocab: 300, contextLength: 64, seed: 5 }));
  bigVocab = path.join(dir, "vocab4096.gguf");
  await fs.writeFile(bigVocab, makeBitnetFixture({ hidden: 128, layers: 1, ffn: 256, vocab: 4096, contextLength: 64, seed: 6 }));
  await fs.writeFile(path.join(dir, "cascade.json"), JSON.stringify({ models: [{ name: "kjv", path: defaultModelPath() }, { name: "tiny", path: "tiny.gguf" }], cascades: [{ name: "c", rungs: ["kjv", "tiny"], threshold: 0.5 }] }));
  busy = net.createServer();
  await new Promise<void>((resolve) => busy?.listen(0, "127.0.0.1", resolve));
  busyPort = (busy.address() as net.AddressInfo).port;
});
afterAll(async () => {
  await new Promise((resolve) => busy?.close(resolve));
  await fs.rm(dir, { recursive: true, force: true });
});

/** What a usage error prints (commander's words for a flag). */
const usage = (line: string): string => `barbell: error: ${line}\n${HELP_HINT}\n`;
/** What any other error prints. */
const one = (line: string): string => `barbell: ${line}\n`;

describe("the command line's errors", () => {
  // [what, args, expected stderr (exact, or a pattern for the line with a token count)]
  const rows: [string, () => string[], () => string | RegExp][] = [
    ["logits --tokens '' (ran token 0)", () => ["logits", "-m", model, "--tokens", ""], () => usage("option '--tokens <ids>' argument '' is invalid. expected 1..1048576 comma-separated token ids, e.g. 1,17,42, got ''")],
    ["logits --tokens with an empty entry", () => ["logits", "-m", model, "--tokens", "1,,2"], () => usage("option '--tokens <ids>' argument '1,,2' is invalid. expected 1..1048576 comma-separated token ids, e.g. 1,17,42, got '1,,2'")],
    ["logits --tokens above the vocabulary", () => ["logits", "-m", model, "--tokens", "1,300"], () => one("CliError (bad-flag): [cli] --tokens: id 300 (position 1) is not below the vocabulary size 300; pass ids 0..299")],
    // A missing -m file shows the flag is checked first: before any model is opened.
    ["--max-tokens 0 (failed after loading)", () => ["generate", "-m", path.join(dir, "none.gguf"), "x", "--max-tokens", "0"], () => usage("option '-n, --max-tokens <n>' argument '0' is invalid. expected an integer in 1..1048576, got '0'")],
    ["-n 1.5", () => ["generate", "-m", model, "x", "-n", "1.5"], () => usage("option '-n, --max-tokens <n>' argument '1.5' is invalid. expected an integer in 1..1048576, got '1.5'")],
    [
      "--threads 0 (accepted silently)",
      () => ["generate", "-m", model, "x", "--threads", "0"],
      () => usage(`option '-t, --threads <n>' argument '0' is invalid. expected an integer in 1..${cpus} (this machine has ${cpus} logical CPUs; leave --threads out for one per physical core), got '0'`),
    ],
    [
      "--threads above the CPUs (999 accepted silently)",
      () => ["generate", "-m", model, "x", "-t", String(cpus + 1)],
      () => usage(`option '-t, --threads <n>' argument '${cpus + 1}' is invalid. expected an integer in 1..${cpus} (this machine has ${cpus} logical CPUs; leave --threads out for one per physical core), got '${cpus + 1}'`),
    ],
    ["--ctx above the model's context (accepted silently)", () => ["generate", "-m", model, "x", "--ctx", "65"], () => one("CliError (bad-flag): [cli] -c/--ctx 65 is more than the model's context of 64 tokens; pass -c 64 or less")],
    ["--ctx-size 0", () => ["generate", "-m", model, "x", "--ctx-size", "0"], () => usage("option '--ctx-size <n>' argument '0' is invalid. expected an integer >= 1, got '0'")],
    ["--top-p 5 (named the library's topP)", () => ["generate", "-m", model, "x", "--top-p", "5"], () => usage("option '--top-p <p>' argument '5' is invalid. expected a number in (0, 1], got '5'")],
    ["--temp -1", () => ["generate", "-m", model, "x", "--temp", "-1"], () => usage("option '--temp <t>' argument '-1' is invalid. expected a number >= 0 (0 = greedy), got '-1'")],
    ["--min-p 2", () => ["generate", "-m", model, "x", "--min-p", "2"], () => usage("option '--min-p <p>' argument '2' is invalid. expected a number in [0, 1], got '2'")],
    ["--repeat-penalty 0", () => ["generate", "-m", model, "x", "--repeat-penalty", "0"], () => usage("option '--repeat-penalty <x>' argument '0' is invalid. expected a number > 0 (1 = off), got '0'")],
    ["--seed beyond 32 bits", () => ["generate", "-m", model, "x", "-s", "4294967296"], () => usage("option '-s, --seed <n>' argument '4294967296' is invalid. expected an integer in 0..4294967295, got '4294967296'")],
    ["--context-overflow other", () => ["generate", "-m", model, "x", "--context-overflow", "wrap"], () => usage("option '--context-overflow <mode>' argument 'wrap' is invalid. Allowed choices are error, truncate.")],
    ["an unknown flag", () => ["generate", "-m", model, "x", "--frobnicate"], () => usage("unknown option '--frobnicate'")],
    [
      "a missing -m file (raw ENOENT ... stat)",
      () => ["generate", "-m", path.join(dir, "none.gguf"), "x"],
      () => one(`FileError (missing): [model] -m ${path.join(dir, "none.gguf")}: no such file or folder; give a .gguf file or a Hugging Face model folder (barbell pull <org>/<repo> downloads one)`),
    ],
    [
      "-m a folder that is not a model (raw EISDIR)",
      () => ["generate", "-m", dir, "x"],
      () => one(`FileError (not-a-file): [model] -m ${dir} is a folder without config.json; give a .gguf file or a Hugging Face model folder (config.json, model.safetensors, tokenizer.json)`),
    ],
    ["inspect a folder", () => ["inspect", dir], () => one(`FileError (not-a-file): [model] file ${dir} is a folder, not a regular file; inspect reads a .gguf file`)],
    ["no prompt", () => ["generate", "-m", model], () => one('CliError (prompt): [cli] no prompt; give it as an argument, with -p TEXT, with -f FILE, or as - to read stdin (barbell generate "And God said")')],
    ["two prompts", () => ["generate", "-m", model, "a", "-p", "b"], () => one("CliError (prompt): [cli] the prompt is given more than once; give one of: an argument, -p TEXT or -f FILE")],
    [
      "a missing -f file",
      () => ["generate", "-m", model, "-f", path.join(dir, "none.txt")],
      () => one(`FileError (missing): [cli] prompt file -f ${path.join(dir, "none.txt")} does not exist; -f takes a text file, or - to read stdin`),
    ],
    [
      "a prompt longer than the context (no length, no fix)",
      () => ["generate", "-m", model, "-c", "8", "the quick brown fox jumps over the lazy dog"],
      () =>
        /^barbell: CliError \(context-full\): \[cli\] the prompt of \d+ tokens leaves no room to generate in a context of 8; pass -c 64 \(the model's context\), a shorter prompt or --context-overflow truncate \(drops the oldest prompt tokens\)\n$/,
    ],
    [
      "a prompt and -n longer than the context",
      () => ["generate", "-m", model, "-c", "16", "-n", "12", "the quick brown fox jumps over"],
      () =>
        /^barbell: CliError \(context-full\): \[cli\] the prompt of \d+ tokens and -n\/--max-tokens 12 do not fit in a context of 16; pass -c 64 \(the model's context\), a shorter prompt, a smaller -n or --context-overflow truncate \(drops the oldest prompt tokens\)\n$/,
    ],
    ["-n as large as the context", () => ["generate", "-m", model, "x", "-c", "16", "-n", "16"], () => one("CliError (context-full): [cli] -n/--max-tokens 16 leaves no room for the prompt in a context of 16 tokens; pass a smaller -n or a larger -c (up to the model's 64)")],
    ["serve --port 70000 (hung)", () => ["serve", "-m", model, "--port", "70000"], () => usage("option '--port <n>' argument '70000' is invalid. expected an integer in 0..65535, got '70000'")],
    [
      "serve on a port in use (hung)",
      () => ["serve", "-m", model, "--port", String(busyPort), "--isolation", "in-process", "--backend", "js"],
      () => one(`CliError (listen): [serve] port ${busyPort} on 127.0.0.1 is in use; pass --port N, or --port 0 for any free port`),
    ],
    [
      "serve --ctx above the model's context",
      () => ["serve", "-m", model, "-c", "65", "--port", "0"],
      () => one("CliError (bad-flag): [serve] model 'tiny': context 65 (-c/--ctx, or contextLength in the config) is more than the model's context of 64 tokens; pass -c 64 or less"),
    ],
    [
      "a cascade whose rungs have different tokenizers (gave wrong text)",
      () => ["serve", "--config", path.join(dir, "cascade.json"), "--port", "0"],
      () => one("ServeError (bad-config): [serve] cascade 'c': models 'kjv' and 'tiny' do not share a tokenizer (vocabulary of 4096 vs 300 tokens); a cascade's rungs must use the same vocabulary"),
    ],
    ["diff of folders that are not dumps", () => ["diff", path.join(dir, "a"), path.join(dir, "b")], () => one(`FileError (missing): [dump] ${path.join(dir, "a")} is not a dump folder (no manifest.bw); write one with barbell dump -m <model> --tokens <ids> --out ${path.join(dir, "a")}`)],
    ["train on a missing corpus (raw ENOENT)", () => ["train", path.join(dir, "none.txt")], () => one(`FileError (missing): [train] corpus ${path.join(dir, "none.txt")} does not exist; give a UTF-8 text file`)],
    ["fixture --hidden 0", () => ["fixture", path.join(dir, "f.gguf"), "--hidden", "0"], () => usage("option '--hidden <n>' argument '0' is invalid. expected an integer in 1..8192, got '0'")],
  ];

  it.each(rows)("%s", async (_what, args, expected) => {
    const r = await mainCli(args());
    expect(r.code).toBe(1);
    const want = expected();
    if (typeof want === "string") {
      expect(r.err).toBe(want);
    } else {
      expect(r.err).toMatch(want);
    }
    expect(r.err).not.toMatch(/\n\s+at |ENOENT|EISDIR|undefined/);
  });

  it("should name both models when the rungs' vocabularies have the same size but different tokens", async () => {
    const [kjv, other] = [await readModelInfo(defaultModelPath()), await readModelInfo(bigVocab)];
    expect(tokenizerDifference(kjv, kjv, "kjv", "kjv")).toBeUndefined();
    expect(tokenizerDifference(kjv, other, "kjv", "fixture")).toMatch(/^(token \d+ is ".*" in 'kjv' and ".*" in 'fixture'|(bos|eos|eot) token \S+ vs \S+)$/);
  });
});

describe("the server's errors", () => {
  let running: Running | undefined;
  beforeAll(async () => {
    running = await startServer(model, { name: "tiny", contextLength: 64 });
  });
  afterAll(async () => {
    await running?.server.shutdown(100);
  });
  const ids = (n: number): number[] => Array.from({ length: n }, (_, i) => 1 + (i % 200));

  // [what, endpoint, body, status, param, message]
  const rows: [string, string, unknown, number, string | null, string][] = [
    ["no model (said 'got undefined undefined')", "completions", { prompt: "x" }, 400, "model", "'model' must be the id of a served model, a string of 1..256 characters (GET /v1/models lists them), got nothing (the field is missing)"],
    ["an empty model", "completions", { model: "", prompt: "x" }, 400, "model", "'model' must be the id of a served model, a string of 1..256 characters (GET /v1/models lists them), got an empty string"],
    ["an unknown model", "completions", { model: "nope", prompt: "x" }, 404, "model", "model 'nope' does not exist (see GET /v1/models)"],
    ["empty messages (said 'got an array')", "chat/completions", { model: "tiny", messages: [] }, 400, "messages", `'messages' must be an array of 1..4096 messages such as [{"role":"user","content":"Hi"}], got an empty array`],
    ["no messages", "chat/completions", { model: "tiny" }, 400, "messages", `'messages' must be an array of 1..4096 messages such as [{"role":"user","content":"Hi"}], got nothing (the field is missing)`],
    ["a temperature out of range", "completions", { model: "tiny", prompt: "x", temperature: 5 }, 400, "temperature", "'temperature' must be a number >= 0 and <= 2, got 5"],
    ["a prompt that fills the context", "completions", { model: "tiny", prompt: ids(64) }, 400, "prompt", "the prompt is 64 tokens; the context holds 64, with at least one for the answer; shorten the prompt"],
    ["prompt + max_tokens over the context", "completions", { model: "tiny", prompt: ids(3), max_tokens: 62 }, 400, "max_tokens", "prompt (3 tokens) + max_tokens (62) exceed the context (64); pass max_tokens 61 or less, or a shorter prompt"],
  ];

  it.each(rows)("%s", async (_what, endpoint, body, status, param, message) => {
    const r = await post(`${running?.url ?? ""}/v1/${endpoint}`, body);
    expect(r.status).toBe(status);
    expect(r.json).toEqual({ error: { message, type: "invalid_request_error", param, code: expect.any(String) as string } });
  });
});
