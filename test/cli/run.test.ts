import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildProgram } from "../../src/cli/main.js";
import { MAX_CONSTRAINT_FILE_BYTES } from "../../src/cli/run.js";
import { CliError } from "../../src/cli/errors.js";
import { FileError, FormatError } from "../../src/core/errors.js";
import { GrammarError, GrammarIncompleteError } from "../../src/model/grammar/index.js";
import { createAjv } from "../grammar/validate.js";
import { makeBitnetFixture } from "../../src/model/bitnet/fixture.js";
import { referenceLogits } from "../reference/forward64.js";

let dir = "";
let model = "";
let bytes: Uint8Array = new Uint8Array();
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "barbell-run-"));
  model = path.join(dir, "m.gguf");
  bytes = makeBitnetFixture({ seed: 21 });
  await fs.writeFile(model, bytes);
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

async function run(args: string[], input = ""): Promise<{ out: string; err: string }> {
  let out = "";
  let err = "";
  const io = {
    out: (t: string) => void (out += t),
    err: (t: string) => void (err += t),
    errIsTty: false,
    input: Readable.from([input]),
    signal: new AbortController().signal,
  };
  await buildProgram((l) => void (out += `${l}\n`), io).parseAsync(["node", "barbell", ...args]);
  return { out, err };
}

describe("barbell generate, chat and logits", () => {
  it("should stream generated text to stdout and speeds to stderr", async () => {
    const { out, err } = await run(["generate", "-m", model, "hello", "--temperature", "0", "--max-tokens", "6"]);
    expect(out.length).toBeGreaterThan(0);
    expect(err).toMatch(/^prefill \d+ tokens [\d.]+ t\/s, decode \d+ tokens [\d.]+ t\/s \(\w+\)\n$/);
  });

  it("should print a JSON result with --json, reproducibly with a seed", async () => {
    const args = ["generate", "-m", model, "hi", "--seed", "3", "--temperature", "0.9", "--max-tokens", "5", "--json"];
    const a = JSON.parse((await run(args)).out) as { tokens: number[]; finish_reason: string };
    const b = JSON.parse((await run(args)).out) as { tokens: number[] };
    expect(a.tokens).toEqual(b.tokens);
    expect(["stop", "length"]).toContain(a.finish_reason);
  });

  it("should print the logits of the last or every position as stable JSON", async () => {
    const last = JSON.parse((await run(["logits", "-m", model, "--tokens", "1,17,42", "--json"])).out) as {
      tokens: number[];
      logits: number[][];
    };
    const all = JSON.parse((await run(["logits", "-m", model, "--tokens", "1,17,42", "--all", "--json"])).out) as {
      logits: number[][];
    };
    expect(last.tokens).toEqual([1, 17, 42]);
    expect(last.logits).toHaveLength(1);
    expect(all.logits).toHaveLength(3);
    expect(all.logits[2]).toEqual(last.logits[0]);
    const ref = await referenceLogits(bytes, [1, 17, 42], { quantizeActivations: true });
    const row = last.logits[0] ?? [];
    const refRow = ref[2] ?? [];
    let num = 0;
    let den = 0;
    row.forEach((v, i) => {
      num += (v - (refRow[i] ?? 0)) ** 2;
      den += (refRow[i] ?? 0) ** 2;
    });
    expect(Math.sqrt(num / den)).toBeLessThan(1e-4);
  });

  it("should answer each chat line and keep the history", async () => {
    const { out } = await run(["chat", "-m", model, "--temperature", "0", "--max-tokens", "4", "--json"], "hi\nhow are you\n/exit\nignored\n");
    const lines = out.trim().split("\n");
    expect(lines).toHaveLength(2);
    const second = JSON.parse(lines[1] ?? "{}") as { prompt_tokens: number };
    const first = JSON.parse(lines[0] ?? "{}") as { prompt_tokens: number };
    expect(second.prompt_tokens).toBeGreaterThan(first.prompt_tokens);
  });

  it("should reject malformed token lists", async () => {
    await expect(run(["logits", "-m", model, "--tokens", "1,x"])).rejects.toThrow(/comma-separated token ids/);
  });
});

describe("barbell generate --json-schema and --grammar", () => {
  const kjv = path.resolve(import.meta.dirname, "../../models/barbell-kjv.gguf");
  const base = ["generate", "-m", kjv, "--backend", "native-cpu,js", "--no-autotune", "--temperature", "0", "And God said"];
  const schema = { type: "object", properties: { name: { type: "string", maxLength: 10 }, years: { type: "integer", minimum: 1, maximum: 969 } }, required: ["name", "years"], additionalProperties: false };
  const file = (name: string): string => path.join(dir, name);
  beforeAll(async () => {
    await fs.writeFile(file("schema.json"), JSON.stringify(schema));
    await fs.writeFile(file("answer.gbnf"), 'root ::= ("yea" | "nay") " " [0-9]+\n');
    await fs.writeFile(file("bad.gbnf"), "root ::= (");
    await fs.writeFile(file("array.json"), "[1, 2]");
    await fs.writeFile(file("secret.txt"), "root:x:0:0:secret-line\n");
    await fs.writeFile(file("big.json"), Buffer.alloc(MAX_CONSTRAINT_FILE_BYTES + 1, 0x20));
  });

  it("should print JSON that the schema accepts", async () => {
    const { out, err } = await run([...base, "--json-schema", file("schema.json"), "-n", "60"]);
    const value = JSON.parse(out) as unknown;
    expect(createAjv().compile(schema)(value), out).toBe(true);
    expect(err).toMatch(/decode \d+ tokens/);
  }, 60_000);

  it("should print a sentence of a GBNF grammar, also in --json's result", async () => {
    const { out } = await run([...base, "--grammar", file("answer.gbnf"), "-n", "8"]);
    expect(out).toMatch(/^(yea|nay) [0-9]+\n$/);
    const json = JSON.parse((await run([...base, "--grammar", file("answer.gbnf"), "-n", "8", "--json"])).out) as { text: string };
    expect(json.text).toBe(out.trimEnd());
  }, 60_000);

  it("should fail with GrammarIncompleteError and print nothing when -n cannot fit the schema", async () => {
    let out = "";
    const io = { out: (t: string) => void (out += t), err: () => undefined, errIsTty: false, input: Readable.from([""]), signal: new AbortController().signal };
    await expect(buildProgram(() => undefined, io).parseAsync(["node", "barbell", ...base, "--json-schema", file("schema.json"), "-n", "3"])).rejects.toBeInstanceOf(GrammarIncompleteError);
    expect(out).toBe("");
  }, 60_000);

  it("should refuse flags that do not go together", async () => {
    await expect(run([...base, "--json-schema", file("schema.json"), "--grammar", file("answer.gbnf")])).rejects.toBeInstanceOf(CliError);
    await expect(run([...base, "--json-schema", file("schema.json"), "--stop", "}"])).rejects.toThrow(/--stop does not go with --json-schema/);
  });

  it("should refuse bad files with typed errors that name only the path given, before loading a model", async () => {
    const missing = run([...base.slice(0, 2), "/nonexistent/m.gguf", "hi", "--grammar", file("nope.gbnf")]);
    await expect(missing).rejects.toBeInstanceOf(FileError);
    await expect(missing).rejects.toThrow(`--grammar file ${file("nope.gbnf")} does not exist`);
    await expect(run([...base, "--grammar", dir])).rejects.toThrow(/is a folder/);
    await expect(run([...base, "--json-schema", file("big.json")])).rejects.toThrow(/more than the 1048576 allowed/);
    // A grammar that does not parse fails before the (missing) model is opened.
    await expect(run(["generate", "-m", "/nonexistent/m.gguf", "hi", "--grammar", file("bad.gbnf")])).rejects.toBeInstanceOf(GrammarError);
    const notJson = await run([...base, "--json-schema", file("secret.txt")]).catch((e: unknown) => e);
    expect(notJson).toBeInstanceOf(FormatError);
    expect(String(notJson)).not.toContain("secret-line");
    await expect(run([...base, "--json-schema", file("array.json")])).rejects.toThrow(/holds no JSON object/);
    await expect(run([...base, "--json-schema", file("array.json")])).rejects.toBeInstanceOf(CliError);
  });
});
