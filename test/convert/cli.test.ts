/**
 * `barbell convert` as a command: flags checked before anything is read, one progress line per tensor, and typed
 * errors for hostile folders that leave no output file behind (not even the temp file), including a failure in
 * the middle of the stream.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Command, CommanderError } from "commander";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addConvertCommand } from "../../src/cli/convert.js";
import { buildProgram } from "../../src/cli/main.js";
import type { CliIo } from "../../src/cli/run.js";
import { FileError, FormatError } from "../../src/core/errors.js";
import { loadModel } from "../../src/engine/model.js";
import { ConvertError } from "../../src/model/bitnet/convert.js";
import { makeBitnetFixture } from "../../src/model/bitnet/fixture.js";
import { headVariant } from "../../scripts/head-eval.js";
import { listing, writeFolder } from "./helpers.js";

let root = "";
let good = "";
beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), "barbell-convert-cli-"));
  good = await writeFolder(root, "good", { hidden: 256, seed: 21 });
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

interface Run {
  readonly out: string;
  readonly err: string;
}

async function run(args: string[], signal?: AbortSignal): Promise<Run> {
  let out = "";
  let err = "";
  const io: CliIo = {
    out: (t) => (out += t),
    err: (t) => (err += t),
    errIsTty: false,
    input: process.stdin,
    signal: signal ?? new AbortController().signal,
  };
  const program = new Command("barbell").exitOverride().configureOutput({ writeErr: (t) => (err += t), writeOut: (t) => (out += t) });
  addConvertCommand(program, io);
  await program.parseAsync(["node", "barbell", "convert", ...args]);
  return { out, err };
}

/** A fresh empty output folder, so that a failed run can be checked to leave it empty. */
async function outDir(name: string): Promise<string> {
  const dir = path.join(root, `out-${name}`);
  await fs.mkdir(dir);
  return dir;
}

describe("barbell convert (command)", () => {
  it("should be a barbell command", () => {
    const names = buildProgram(() => undefined).commands.map((c) => c.name());
    expect(names).toContain("convert");
  });

  it("should print the plan, one line per tensor, and the result, and write a GGUF that loads", async () => {
    const dir = await outDir("ok");
    const out = path.join(dir, "model.gguf");
    const r = await run([good, "-o", out, "--type", "tq1_0", "--head", "q8_0", "--name", "tiny"]);
    expect(r.out).toMatch(/^converting .*good -> .*model\.gguf: bitnet-b1\.58, 2 layers, hidden 256, ffn 256, vocab 300; projections tq1_0 from packed weights, embedding q8_0 \(tied\); tokenizer byte-bpe, chat template; 24 tensors, /);
    expect(r.out).toMatch(/\nwrote .*model\.gguf: 24 tensors, \d+ bytes in \d+\.\d s\n$/);
    const lines = r.err.trim().split("\n");
    expect(lines).toHaveLength(24);
    expect(lines[0]).toBe("[ 1/24] token_embd.weight q8_0 [256, 300] 79.7 KiB");
    expect(lines[3]).toMatch(/^\[ 4\/24\] blk\.0\.attn_q\.weight tq1_0 \[256, 256\] /);
    expect(await listing(dir)).toEqual(["model.gguf"]);
    using model = await loadModel(out, { autotune: false });
    expect(model.config.layers).toBe(2);
  });

  it("should check the flags before reading anything", async () => {
    const dir = await outDir("flags");
    const missing = path.join(root, "does-not-exist");
    await expect(run([missing, "-o", path.join(dir, "x.gguf"), "--type", "q4_0"])).rejects.toThrow(CommanderError);
    await expect(run([missing, "-o", path.join(dir, "x.gguf"), "--head", "bf16"])).rejects.toThrow(CommanderError);
    await expect(run([good])).rejects.toThrow(/required option '-o, --out <file>'/);
    expect(await listing(dir)).toEqual([]);
  });

  it("should warn and still convert a folder without tokenizer.json", async () => {
    const folder = await writeFolder(root, "no-tokenizer", { hidden: 256, seed: 22, tokenizer: false });
    const dir = await outDir("no-tok");
    const r = await run([folder, "-o", path.join(dir, "m.gguf")]);
    expect(r.err).toMatch(/warning: the folder has no tokenizer\.json/);
    expect(r.out).toMatch(/projections i2_s from packed weights, embedding f16 \(tied\); no tokenizer;/);
  });

  const hostile: [string, () => Promise<string>, new (...a: never[]) => Error, RegExp][] = [
    ["a missing folder", async () => path.join(root, "nothing-here"), FileError, /does not exist/],
    ["a file with --type (GGUF input takes --head only)", async () => path.join(good, "config.json"), ConvertError, /--type applies to a Hugging Face folder/],
    [
      "a folder without config.json",
      async () => {
        const f = await writeFolder(root, "no-config", { hidden: 256, seed: 23 });
        await fs.rm(path.join(f, "config.json"));
        return f;
      },
      FileError,
      /config\.json does not exist/,
    ],
    [
      "a folder whose tensors do not match config.json",
      async () => {
        const f = await writeFolder(root, "mismatch", { hidden: 256, seed: 24 });
        const config = JSON.parse(await fs.readFile(path.join(f, "config.json"), "utf8")) as Record<string, unknown>;
        await fs.writeFile(path.join(f, "config.json"), JSON.stringify({ ...config, intermediate_size: 512 }));
        return f;
      },
      FormatError,
      /\(blk\.0\.ffn_sub_norm\.weight\) has shape \[256\]; config\.json implies \[512\]/,
    ],
    [
      "rows TQ2_0 cannot hold (hidden 128)",
      async () => writeFolder(root, "narrow", { hidden: 128, seed: 25 }),
      ConvertError,
      /blk\.0\.attn_q\.weight \(model\.layers\.0\.self_attn\.q_proj\.weight, rows of 128\) cannot be stored as tq2_0: tq2_0 needs rows of a multiple of 256/,
    ],
    [
      "a vocabulary larger than the embedding",
      async () => {
        const f = await writeFolder(root, "big-vocab", { hidden: 256, seed: 26 });
        const big = await writeFolder(root, "big-vocab-src", { hidden: 256, vocab: 400, seed: 26 });
        await fs.copyFile(path.join(big, "tokenizer.json"), path.join(f, "tokenizer.json"));
        return f;
      },
      ConvertError,
      /the tokenizer has 400 tokens but the embedding only 300 rows/,
    ],
    [
      "a NaN in the last master-weight projection (fails mid-stream)",
      async () => {
        const f = await writeFolder(root, "nan", { hidden: 256, layout: "master", floatDtype: "F32", seed: 27 });
        const file = path.join(f, "model.safetensors");
        const bytes = await fs.readFile(file);
        const n = Number(bytes.readBigUInt64LE(0));
        const header = JSON.parse(bytes.subarray(8, 8 + n).toString("utf8")) as Record<string, { data_offsets: number[] }>;
        const begin = header["model.layers.1.mlp.down_proj.weight"]?.data_offsets[0] ?? 0;
        bytes.writeFloatLE(Number.NaN, 8 + n + begin);
        await fs.writeFile(file, bytes);
        return f;
      },
      FormatError,
      /model\.layers\.1\.mlp\.down_proj\.weight/,
    ],
  ];
  it.each(hostile)("should answer %s with a typed error and leave no output", async (name, make, type, message) => {
    const folder = await make();
    const dir = await outDir(name.replace(/[^a-z0-9]+/gi, "-"));
    const out = path.join(dir, "m.gguf");
    const attempt = run([folder, "-o", out, "--type", "tq2_0"]);
    await expect(attempt).rejects.toThrow(type);
    await expect(attempt).rejects.toThrow(message);
    expect(await listing(dir)).toEqual([]);
  });

  it("should refuse an output that is a folder or in a missing folder, before reading the model", async () => {
    const dir = await outDir("targets");
    await expect(run([good, "-o", dir])).rejects.toThrow(/is a folder; name the \.gguf file to write/);
    await expect(run([good, "-o", path.join(dir, "no", "m.gguf")])).rejects.toThrow(FileError);
    expect(await listing(dir)).toEqual([]);
  });

  it("should stop at Ctrl-C (the signal) between tensors and leave no output", async () => {
    const dir = await outDir("abort");
    const controller = new AbortController();
    controller.abort();
    const attempt = run([good, "-o", path.join(dir, "m.gguf")], controller.signal);
    await expect(attempt).rejects.toThrow(ConvertError);
    await expect(attempt).rejects.toThrow(/interrupted; no file was written/);
    expect(await listing(dir)).toEqual([]);
  });
});

describe("barbell convert on a GGUF file (the embedding / head re-encoded)", () => {
  const fixture = async (name: string, options: Parameters<typeof makeBitnetFixture>[0]): Promise<string> => {
    const file = path.join(root, name);
    await fs.writeFile(file, makeBitnetFixture(options));
    return file;
  };

  it("should re-encode a tied F16 head as Q6_K, every other byte as headVariant writes it, and load", async () => {
    const src = await fixture("tied.gguf", { weightType: "i2_s", embeddingType: "f16", hidden: 256, ffn: 512, seed: 41 });
    const dir = await outDir("gguf-q6k");
    const out = path.join(dir, "m.gguf");
    const r = await run([src, "-o", out, "--head", "q6_k"]);
    expect(r.out).toMatch(/^re-encoding .*tied\.gguf -> .*m\.gguf: bitnet-b1\.58; token_embd\.weight f16 -> q6_k; other tensors and metadata as they are; \d+ tensors, /);
    expect(r.out).toMatch(/\nwrote .*m\.gguf: \d+ tensors, \d+ bytes in \d+\.\d s\n$/);
    expect(r.err.trim().split("\n")[0]).toMatch(/^\[1\/\d+\] token_embd\.weight q6_k /);
    expect(new Uint8Array(await fs.readFile(out))).toEqual(await headVariant(src, "q6_k"));
    expect(await listing(dir)).toEqual(["m.gguf"]);
    using model = await loadModel(out, { autotune: false });
    expect((await model.logits([1, 2, 3])).every((row) => row.every(Number.isFinite))).toBe(true);
  });

  it("should re-encode both tensors of an untied file, and copy a head already of the type byte for byte", async () => {
    const src = await fixture("untied.gguf", { weightType: "tq2_0", embeddingType: "q6_k", tied: false, hidden: 256, ffn: 512, seed: 42 });
    const dir = await outDir("gguf-untied");
    const r = await run([src, "-o", path.join(dir, "q8.gguf"), "--head", "q8_0"]);
    expect(r.out).toMatch(/token_embd\.weight q6_k -> q8_0, output\.weight q6_k -> q8_0;/);
    expect(new Uint8Array(await fs.readFile(path.join(dir, "q8.gguf")))).toEqual(await headVariant(src, "q8_0"));
    const same = await run([src, "-o", path.join(dir, "same.gguf"), "--head", "q6_k"]);
    expect(same.out).toMatch(/the head is q6_k already: a copy;/);
    expect(new Uint8Array(await fs.readFile(path.join(dir, "same.gguf")))).toEqual(new Uint8Array(await fs.readFile(src)));
  });

  const refused: [string, () => Promise<string>, string[], new (...a: never[]) => Error, RegExp][] = [
    ["rows Q6_K cannot hold (hidden 128)", () => fixture("narrow.gguf", { embeddingType: "f16", hidden: 128, seed: 43 }), ["--head", "q6_k"], ConvertError, /token_embd\.weight has rows of 128 values; q6_k needs a multiple of 256/],
    ["--name with a GGUF file", () => fixture("named.gguf", { embeddingType: "f16", hidden: 256, seed: 44 }), ["--name", "x"], ConvertError, /--name applies to a Hugging Face folder/],
    ["a GGUF file without --head", () => fixture("no-head.gguf", { embeddingType: "q6_k", hidden: 256, seed: 45 }), [], ConvertError, /name the head type to write with --head/],
    ["a file that is not GGUF", async () => path.join(good, "config.json"), ["--head", "q8_0"], FormatError, /not "GGUF"/],
  ];
  it.each(refused)("should refuse %s with a typed error and leave no output", async (name, make, flags, type, message) => {
    const src = await make();
    const dir = await outDir(name.replace(/[^a-z0-9]+/gi, "-"));
    const attempt = run([src, "-o", path.join(dir, "m.gguf"), ...flags]);
    await expect(attempt).rejects.toThrow(type);
    await expect(attempt).rejects.toThrow(message);
    expect(await listing(dir)).toEqual([]);
  });
});
