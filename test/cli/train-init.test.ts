/**
 * `barbell train --init`: fine-tuning from a GGUF, a Hugging Face folder and a training checkpoint. The starting
 * model computes what the file computes (its validation loss on the new corpus equals the file's), the run
 * records where it started, shape flags are refused, and a fine-tuning run resumes exactly.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { INIT_PEAK_LR, parseCard, splitCorpus, tokenizerEntries, tokenizerFromEntries, validationLoss } from "../../src/cli/train.js";
import { exportHfFolder } from "../../src/export/hf.js";
import { loadModel } from "../../src/engine/model.js";
import { absmeanTernarize } from "../../src/quant/values.js";
import { ternaryLatent } from "../../src/train/init.js";
import { runCli, type CliRun } from "./helpers.js";

let dir = "";
let first = "";
let second = "";

/** Blank-line-separated "chapters" of seeded sentences from `words`. */
function makeCorpus(words: string[], seed: number): string {
  let s = seed;
  const next = (n: number): number => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s % n;
  };
  const chapters = Array.from({ length: 6 }, () =>
    Array.from({ length: 10 }, () => Array.from({ length: 8 }, () => words[next(words.length)]).join(" ") + ".").join("\n"),
  );
  return `${chapters.join("\n\n")}\n`;
}

const TINY = ["--vocab", "300", "--hidden", "32", "--layers", "1", "--heads", "2", "--kv-heads", "1", "--ffn", "64"];
const SCHEDULE = ["--seq-len", "16", "--batch", "2", "--checkpoint-every", "2", "--log-every", "1", "--runtime", "reference", "--sample-tokens", "0"];

function train(args: string[]): Promise<CliRun> {
  return runCli(["train", ...args]);
}

/** The validation loss `barbell train` reports for `model` on `corpus`'s held-out split (tokenizer of `model`). */
async function lossOn(model: string, corpus: string): Promise<number> {
  const tok = tokenizerFromEntries(await tokenizerEntries(model));
  const { valTokens } = splitCorpus(await fs.readFile(corpus), 0.05, tok);
  return (await validationLoss(model, valTokens, 16, 16_384)).loss;
}

function startingLoss(err: string): number {
  const m = /starting model: validation loss ([\d.]+)/.exec(err);
  return Number(m?.[1] ?? Number.NaN);
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "barbell-train-init-"));
  first = path.join(dir, "first.txt");
  second = path.join(dir, "second.txt");
  await fs.writeFile(first, makeCorpus("and the lord said unto moses god light darkness earth heaven waters was good".split(" "), 7));
  await fs.writeFile(second, makeCorpus("the mind thought pain follows wheel ox hatred love wise fool path".split(" "), 11));
  await train([first, "--out", path.join(dir, "base.gguf"), ...TINY, ...SCHEDULE, "--steps", "6", "--weights", "f32"]);
}, 120_000);
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe("barbell train --init", () => {
  it("scales ternary latents so that absmean ternarization gives back the trits and γ; master weights stay", () => {
    const gamma = 0.037;
    const w = Float32Array.from([gamma, 0, -gamma, 0, 0, gamma, gamma, -gamma].map(Math.fround));
    const q = absmeanTernarize(ternaryLatent(w));
    expect(q.ok && Array.from(q.value.values)).toEqual([1, 0, -1, 0, 0, 1, 1, -1]);
    expect(q.ok && q.value.scale).toBeCloseTo(gamma, 7);
    const master = Float32Array.from([0.1, -0.02, 0.3]);
    expect(ternaryLatent(master)).toBe(master);
  });

  it("starts from a GGUF's weights and tokenizer: the starting model's loss is the file's, the card records the start", async () => {
    const base = path.join(dir, "base.gguf");
    const out = path.join(dir, "ft.gguf");
    const r = await train([second, "--init", base, "--out", out, ...SCHEDULE, "--steps", "4"]);
    expect(r.err).toMatch(/fine-tuning .*base\.gguf \(gguf: hidden 32, 1 layers, vocabulary 300\); peak lr 0\.001/);
    expect(startingLoss(r.err)).toBeCloseTo(await lossOn(base, second), 3);
    const record = parseCard(await fs.readFile(path.join(dir, "ft.md"), "utf8"));
    expect(record["init"]).toMatchObject({ path: base, kind: "gguf" });
    expect((record["options"] as { peakLr: number }).peakLr).toBe(INIT_PEAK_LR);
    expect((record["evals"] as { step: number }[])[0]?.step).toBe(0);
    using model = await loadModel(out, { backends: ["js"], autotune: false });
    expect(model.config.vocabSize).toBe(300);
    expect(model.config.hidden).toBe(32);
  }, 120_000);

  it("starts from a Hugging Face folder and from a training checkpoint at the same point", async () => {
    const base = path.join(dir, "base.gguf");
    const hf = path.join(dir, "base-hf");
    await exportHfFolder(base, hf);
    const fromHf = await train([second, "--init", hf, "--out", path.join(dir, "ft-hf.gguf"), ...SCHEDULE, "--steps", "2"]);
    expect(fromHf.err).toContain("(hf-folder: hidden 32");
    const ckpt = path.join(dir, "base.run", "checkpoint.safetensors");
    const fromCkpt = await train([second, "--init", ckpt, "--out", path.join(dir, "ft-ckpt.gguf"), ...SCHEDULE, "--steps", "2"]);
    expect(fromCkpt.err).toContain("(checkpoint: hidden 32");
    const expected = await lossOn(base, second);
    expect(startingLoss(fromHf.err)).toBeCloseTo(expected, 3);
    expect(startingLoss(fromCkpt.err)).toBeCloseTo(expected, 3);
  }, 120_000);

  it("resumes a fine-tuning run exactly: --until then --resume gives the uninterrupted run's file", async () => {
    const base = path.join(dir, "base.gguf");
    const whole = path.join(dir, "whole.gguf");
    const split = path.join(dir, "split.gguf");
    await train([second, "--init", base, "--out", whole, ...SCHEDULE, "--steps", "4", "--name", "ft"]);
    await train([second, "--init", base, "--out", split, ...SCHEDULE, "--steps", "4", "--until", "2", "--name", "ft"]);
    await train(["--resume", path.join(dir, "split.run", "checkpoint.safetensors")]);
    expect(Buffer.compare(await fs.readFile(split), await fs.readFile(whole))).toBe(0);
  }, 120_000);

  it("refuses shape flags next to --init, and a model that does not exist, with one-line errors", async () => {
    const base = path.join(dir, "base.gguf");
    await expect(train([second, "--init", base, "--out", path.join(dir, "x.gguf"), "--hidden", "64", "--untied"])).rejects.toThrow(
      /--init takes the model's shape and tokenizer; --hidden, --untied cannot be given with it/,
    );
    await expect(train([second, "--init", path.join(dir, "nope.gguf"), "--out", path.join(dir, "y.gguf")])).rejects.toThrow(/does not exist/);
  });
});
