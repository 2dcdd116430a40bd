import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildProgram } from "../../src/cli/main.js";
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
