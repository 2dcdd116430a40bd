/** `barbell train`: a tiny run end to end, exact resume (after --until and after Ctrl-C), flag errors. */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { buildProgram, main } from "../../src/cli/main.js";
import { parseCard } from "../../src/cli/train.js";
import { loadModel } from "../../src/engine/model.js";

let dir = "";
let corpus = "";

/** A small corpus of "chapters" (blank-line-separated documents) from a fixed word list, seeded. */
function makeCorpus(): string {
  const words = "and the lord said unto moses god light darkness earth heaven waters was good day night behold".split(" ");
  let s = 7;
  const next = (n: number): number => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s % n;
  };
  const chapters: string[] = [];
  for (let c = 0; c < 6; c++) {
    const verses = Array.from({ length: 10 }, () => {
      const line = Array.from({ length: 8 }, () => words[next(words.length)]).join(" ");
      return `${line.charAt(0).toUpperCase()}${line.slice(1)}.`;
    });
    chapters.push(verses.join("\n"));
  }
  return `${chapters.join("\n\n")}\n`;
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "barbell-train-cli-"));
  corpus = path.join(dir, "corpus.txt");
  await fs.writeFile(corpus, makeCorpus());
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** A tiny config: 1 block of width 32, vocabulary 300, 6 steps of 2 × 16 tokens. */
const TINY = ["--vocab", "300", "--hidden", "32", "--layers", "1", "--heads", "2", "--kv-heads", "1", "--ffn", "64"];
const SCHEDULE = ["--seq-len", "16", "--batch", "2", "--steps", "6", "--checkpoint-every", "2", "--log-every", "1", "--name", "tiny"];

async function train(args: string[], onErr?: (text: string) => void, signal = new AbortController().signal): Promise<{ out: string; err: string }> {
  let out = "";
  let err = "";
  const io = {
    out: (t: string) => void (out += t),
    err: (t: string) => {
      err += t;
      onErr?.(t);
    },
    errIsTty: false,
    input: Readable.from([""]),
    signal,
  };
  await buildProgram((l) => void (out += `${l}\n`), io).parseAsync(["node", "barbell", "train", ...args]);
  return { out, err };
}

describe("barbell train", () => {
  it("should train, export a GGUF that loads and generates, and write a card with the run's record", async () => {
    const out = path.join(dir, "a.gguf");
    const r = await train([corpus, "--out", out, ...TINY, ...SCHEDULE, "--runtime", "reference", "--eval-every", "3", "--sample", "And the", "--sample-tokens", "4", "--corpus-license", "test text"]);
    expect(r.err).toContain("step 6/6 loss");
    expect(r.err).toMatch(/step 3: validation loss [\d.]+, perplexity [\d.]+/);
    expect(r.out).toMatch(/trained tiny: 6 steps, 192 tokens .*validation loss [\d.]+ \(perplexity [\d.]+\)/);

    using model = await loadModel(out, { backends: ["js"], autotune: false });
    expect(model.config.vocabSize).toBe(300);
    const ids = model.tokenize("And the lord");
    expect(model.detokenize(ids, { skipSpecial: true })).toBe("And the lord");
    const [last] = await model.logits(ids);
    expect(last?.length).toBe(300);
    expect(last?.every(Number.isFinite)).toBe(true);
    const gen = await model.generate("And the lord", { seed: 1, maxTokens: 4 }).complete();
    expect(["stop", "length"]).toContain(gen.finishReason);
    expect(gen.tokens.every((t) => t >= 0 && t < 300)).toBe(true);

    const card = await fs.readFile(path.join(dir, "a.md"), "utf8");
    expect(card).toContain("| corpus license | test text |");
    expect(card).toContain("| runtime | reference |");
    expect(card).toContain("## Samples");
    const record = parseCard(card);
    expect(record["command"]).toBe(`barbell train ${corpus} --out ${out} ${[...TINY, ...SCHEDULE].join(" ")} --runtime reference --eval-every 3 --sample 'And the' --sample-tokens 4 --corpus-license 'test text'`);
    expect(record["seeds"]).toEqual({ init: 1, data: 2 });
    expect(record["steps"]).toBe(6);
    expect(record["tokensSeen"]).toBe(192);
    const valLoss = record["valLoss"] as number;
    expect(valLoss).toBeGreaterThan(0);
    expect(valLoss).toBeLessThan(Math.log(300) + 1);
    expect(record["valPerplexity"]).toBeCloseTo(Math.exp(valLoss), 6);
    expect((record["evals"] as { step: number }[]).map((e) => e.step)).toEqual([3, 6]);
    expect(record["config"]).toMatchObject({ vocabSize: 300, hidden: 32, layers: 1, heads: 2, kvHeads: 1, ffn: 64, tied: true });
  });

  it("should resume exactly: --until then --resume, and Ctrl-C then --resume, give the uninterrupted run's file", async () => {
    const whole = path.join(dir, "whole.gguf");
    await train([corpus, "--out", whole, ...TINY, ...SCHEDULE, "--sample-tokens", "0"]);

    const split = path.join(dir, "split.gguf");
    const first = await train([corpus, "--out", split, ...TINY, ...SCHEDULE, "--sample-tokens", "0", "--until", "3"]);
    expect(first.err).toContain("stopped at step 3/6 (--until)");
    await expect(fs.stat(split)).rejects.toThrow();
    const ckpt = path.join(dir, "split.run", "checkpoint.safetensors");
    const second = await train(["--resume", ckpt, "--log-every", "1"]);
    expect(second.err).toContain("resuming");
    expect(second.err).toContain("at step 3/6");
    expect(second.err).not.toContain("step 3/6 loss");
    expect(second.err).toContain("step 4/6");

    const controller = new AbortController();
    const stopped = path.join(dir, "stopped.gguf");
    const interrupted = train([corpus, "--out", stopped, ...TINY, ...SCHEDULE, "--sample-tokens", "0"], (t) => {
      if (t.includes("step 2/6")) {
        controller.abort(); // what Ctrl-C does in main()
      }
    }, controller.signal);
    await expect(interrupted).rejects.toThrow(/interrupted at step 2\/6; checkpoint .*stopped\.run\/checkpoint\.safetensors/);
    await train(["--resume", path.join(dir, "stopped.run", "checkpoint.safetensors")]);

    const bytes = await fs.readFile(whole);
    expect(Buffer.compare(await fs.readFile(split), bytes)).toBe(0);
    expect(Buffer.compare(await fs.readFile(stopped), bytes)).toBe(0);
    const loss = async (file: string): Promise<[unknown, unknown]> => {
      const r = parseCard(await fs.readFile(file, "utf8"));
      return [r["trainLoss"], r["valLoss"]];
    };
    expect(await loss(path.join(dir, "split.md"))).toEqual(await loss(path.join(dir, "whole.md")));
    expect(await loss(path.join(dir, "stopped.md"))).toEqual(await loss(path.join(dir, "whole.md")));
    const record = parseCard(await fs.readFile(path.join(dir, "split.md"), "utf8"));
    expect(record["resumes"]).toEqual([`barbell train --resume ${ckpt} --log-every 1`]);
  });

  it("should take the tokenizer of a GGUF with --tokenizer", async () => {
    const out = path.join(dir, "tok.gguf");
    const source = path.join(dir, "a.gguf"); // the first test's model
    const r = await train([corpus, "--out", out, "--tokenizer", source, ...TINY, "--seq-len", "8", "--batch", "1", "--steps", "2", "--sample-tokens", "0"]);
    expect(r.err).not.toContain("training a byte-level BPE tokenizer");
    const record = parseCard(await fs.readFile(path.join(dir, "tok.md"), "utf8"));
    expect(record["tokenizer"]).toMatchObject({ source: `tokenizer.* of ${source}`, vocabSize: 300 });
    using a = await loadModel(source, { backends: ["js"], autotune: false });
    using b = await loadModel(out, { backends: ["js"], autotune: false });
    expect(b.tokenize("And the lord said")).toEqual(a.tokenize("And the lord said"));
    await expect(train([corpus, "--out", path.join(dir, "tok2.gguf"), "--tokenizer", corpus])).rejects.toThrow(/not "GGUF"/);
    // A new run never overwrites another run's checkpoint.
    await expect(train([corpus, "--out", out])).rejects.toThrow(/tok\.run already holds the checkpoint of a run \(continue it: barbell train --resume .*tok\.run\/checkpoint\.safetensors; start over: remove/);
  });

  it("should refuse bad flags with one clear line", async () => {
    const stderr = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    const written = (): string => stderr.mock.calls.map((c) => String(c[0])).join("");
    try {
      expect(await main(["node", "barbell", "train", corpus, "--hidden", "abc"])).not.toBe(0);
      expect(written()).toContain("option '--hidden <n>' argument 'abc' is invalid. expected an integer >= 2, got 'abc'");
      stderr.mockClear();
      expect(await main(["node", "barbell", "train", corpus, "--val-fraction", "0.9"])).not.toBe(0);
      expect(written()).toContain("expected a fraction in (0, 0.5], got '0.9'");
      stderr.mockClear();
      expect(await main(["node", "barbell", "train", corpus, "--lr", "-1"])).not.toBe(0);
      expect(written()).toContain("expected a positive number, got '-1'");
      stderr.mockClear();
      expect(await main(["node", "barbell", "train", corpus, "--activation", "gelu"])).not.toBe(0);
      expect(written()).toContain("Allowed choices are relu2, silu");
    } finally {
      stderr.mockRestore();
    }
    const out = path.join(dir, "bad.gguf");
    await expect(train([corpus, "--out", out, "--hidden", "48", "--heads", "5"])).rejects.toThrow(/--hidden 48 must be a multiple of --heads 5/);
    await expect(train([corpus, "--out", out, "--heads", "4", "--kv-heads", "3"])).rejects.toThrow(/--heads 4 must be a multiple of --kv-heads 3/);
    await expect(train([corpus, "--out", out, "--hidden", "96", "--weights", "i2_s"])).rejects.toThrow(/--weights i2_s needs --hidden and --ffn multiples of 128/);
    await expect(train([corpus, "--out", out, "--steps", "10", "--warmup", "20"])).rejects.toThrow(/--warmup 20 is more than --steps 10/);
    await expect(train([path.join(dir, "missing.txt"), "--out", out])).rejects.toThrow(/^\[train\] corpus .*missing\.txt does not exist; give a UTF-8 text file$/);
    await expect(train(["--resume", path.join(dir, "nowhere", "checkpoint.safetensors")])).rejects.toThrow(/cannot read the run file/);
    await expect(train(["--resume", path.join(dir, "whole.run", "checkpoint.safetensors"), "--hidden", "64", "--lr", "1"])).rejects.toThrow(
      /only --until, --max-minutes and --log-every may be given \(got --hidden, --lr\)/,
    );
    await expect(train([corpus, "--resume", path.join(dir, "whole.run", "checkpoint.safetensors")])).rejects.toThrow(/\(got a corpus\)/);
  });
});
