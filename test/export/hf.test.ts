/**
 * `barbell export --hf` (src/export/hf.ts): a model written as a Hugging Face folder in Microsoft's BitNet layout
 * loads back in barbell with the same logits bit for bit, the same tokenizer and chat template; the folder's
 * files have the published field names, dtypes and shapes; bad requests fail typed and leave nothing behind.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli, type CliRun } from "../cli/helpers.js";
import { loadModel, type BitnetModel } from "../../src/engine/model.js";
import { FormatError } from "../../src/core/errors.js";
import { exportHfFolder, writeHfFolder } from "../../src/export/hf.js";
import { openGguf } from "../../src/formats/gguf/index.js";
import { openSafetensors } from "../../src/formats/safetensors/index.js";
import { configFromGguf } from "../../src/model/bitnet/config.js";
import { makeBitnetFixture } from "../../src/model/bitnet/fixture.js";
import { ggufWeightSource } from "../../src/model/bitnet/gguf-source.js";
import type { WeightSource } from "../../src/model/bitnet/weights.js";
import { ExportError } from "../../src/train/export.js";

let root = "";
beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), "barbell-hf-export-"));
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

const PROMPT = "And God said, Let there be light";
const load = (p: string): Promise<BitnetModel> => loadModel(p, { autotune: false });

async function expectSameModel(a: BitnetModel, b: BitnetModel): Promise<void> {
  const ids = a.tokenize(PROMPT);
  expect(Array.from(b.tokenize(PROMPT))).toEqual(Array.from(ids));
  const la = await a.logits(ids, { all: true });
  const lb = await b.logits(ids, { all: true });
  expect(lb.length).toBe(la.length);
  la.forEach((row, p) => expect(Array.from(lb[p] ?? []), `position ${p}`).toEqual(Array.from(row)));
}

async function readJson(file: string): Promise<Record<string, unknown>> {
  return JSON.parse(await fs.readFile(file, "utf8")) as Record<string, unknown>;
}

describe("barbell export --hf", () => {
  it("writes the packaged KJV model so that barbell loads it back with identical logits, tokenizer and chat template", async () => {
    const out = path.join(root, "kjv");
    const result = await exportHfFolder("models/barbell-kjv.gguf", out);
    expect([...result.files].sort()).toEqual(
      ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"].sort(),
    );
    using gguf = await load("models/barbell-kjv.gguf");
    using hf = await load(out);
    await expectSameModel(gguf, hf);
    const messages = [{ role: "user" as const, content: "Who said it?" }];
    expect(hf.chatPrompt(messages)).toEqual(gguf.chatPrompt(messages));
    const specials = (m: BitnetModel): unknown[] => [m.tokenizer?.bos, m.tokenizer?.eos, m.tokenizer?.eot];
    expect(specials(hf)).toEqual(specials(gguf));
    const greedy = { maxTokens: 12, temperature: 0, seed: 1 } as const;
    const text = async (m: BitnetModel): Promise<string> => (await m.generate("In the beginning", greedy).complete()).text;
    expect(await text(hf)).toBe(await text(gguf));
  }, 120_000);

  it("uses Microsoft's names, dtypes and shapes: packed U8 [out/4, in], an F32 weight_scale [1], a bitnet quantization_config", async () => {
    const src = path.join(root, "fixture-25.gguf");
    await fs.writeFile(src, makeBitnetFixture({ arch: "bitnet-b1.58", seed: 5, layers: 2, hidden: 128, heads: 4, kvHeads: 2, ffn: 256 }));
    const out = path.join(root, "fixture-25");
    await exportHfFolder(src, out);
    const config = await readJson(path.join(out, "config.json"));
    expect(config).toMatchObject({
      architectures: ["BitNetForCausalLM"],
      model_type: "bitnet",
      hidden_act: "relu2",
      hidden_size: 128,
      intermediate_size: 256,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      tie_word_embeddings: true,
      quantization_config: { quant_method: "bitnet", linear_class: "autobitlinear", quantization_mode: "offline" },
    });
    await using st = await openSafetensors(path.join(out, "model.safetensors"));
    expect(st.tensor("model.layers.1.mlp.down_proj.weight")).toMatchObject({ dtype: "U8", shape: [32, 256] });
    expect(st.tensor("model.layers.0.self_attn.k_proj.weight")).toMatchObject({ dtype: "U8", shape: [16, 128] });
    expect(st.tensor("model.layers.0.self_attn.k_proj.weight_scale")).toMatchObject({ dtype: "F32", shape: [1] });
    expect(st.tensor("model.layers.0.self_attn.attn_sub_norm.weight")).toMatchObject({ dtype: "F32", shape: [128] });
    expect(st.tensor("lm_head.weight")).toBeUndefined();
    using a = await load(src);
    using b = await load(out);
    await expectSameModel(a, b);
  }, 120_000);

  it("writes a 1bitLLM-style (arch bitnet, SiLU, untied) model with llama's names and the same logits", async () => {
    const src = path.join(root, "fixture-old.gguf");
    await fs.writeFile(src, makeBitnetFixture({ arch: "bitnet", seed: 9, layers: 2, hidden: 256, heads: 4, ffn: 512, tied: false, weightType: "tq2_0", embeddingType: "f32" }));
    const out = path.join(root, "fixture-old");
    await exportHfFolder(src, out);
    const config = await readJson(path.join(out, "config.json"));
    expect(config).toMatchObject({ architectures: ["BitnetForCausalLM"], model_type: "llama", hidden_act: "silu", tie_word_embeddings: false });
    await using st = await openSafetensors(path.join(out, "model.safetensors"));
    expect(st.tensor("lm_head.weight")?.dtype).toBe("F32");
    expect(st.tensor("model.layers.0.self_attn.inner_attn_ln.weight")).toBeDefined();
    expect(st.tensor("model.layers.0.mlp.ffn_layernorm.weight")).toBeDefined();
    using a = await load(src);
    using b = await load(out);
    await expectSameModel(a, b);
  }, 120_000);

  it("writes weight_scale as BF16 when asked (Microsoft's dtype) and shards above the shard size with an index", async () => {
    const src = path.join(root, "fixture-shards.gguf");
    await fs.writeFile(src, makeBitnetFixture({ arch: "bitnet-b1.58", seed: 6, layers: 2 }));
    const out = path.join(root, "fixture-shards");
    const result = await exportHfFolder(src, out, { scaleDtype: "BF16", shardBytes: 40_000 });
    const shards = result.files.filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f));
    expect(shards.length).toBeGreaterThan(1);
    const index = await readJson(path.join(out, "model.safetensors.index.json"));
    const map = index.weight_map as Record<string, string>;
    expect(map["model.layers.0.self_attn.q_proj.weight_scale"]).toMatch(/^model-/);
    const file = map["model.layers.0.self_attn.q_proj.weight_scale"] ?? "";
    await using st = await openSafetensors(path.join(out, file));
    expect(st.tensor("model.layers.0.self_attn.q_proj.weight_scale")?.dtype).toBe("BF16");
    using b = await load(out);
    expect(b.config.layers).toBe(2);
  }, 120_000);

  it("refuses a folder that already holds files, and leaves it as it was", async () => {
    const out = path.join(root, "taken");
    await fs.mkdir(out);
    await fs.writeFile(path.join(out, "keep.txt"), "mine");
    const err = await exportHfFolder("models/barbell-kjv.gguf", out).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExportError);
    expect((err as ExportError).code).toBe("exists");
    expect((err as Error).message).not.toContain(root);
    expect(await fs.readdir(out)).toEqual(["keep.txt"]);
  });

  it("refuses projections that are not ternary with ExportError unsupported, writing nothing", async () => {
    const src = path.join(root, "float.gguf");
    await fs.writeFile(src, makeBitnetFixture({ arch: "bitnet-b1.58", seed: 7, layers: 1 }));
    await using file = await openGguf(src);
    const source = ggufWeightSource(file);
    const notTernary: WeightSource = {
      ...source,
      ternary: async (name, out, inp) => {
        if (name === "blk.0.ffn_up.weight") {
          throw new FormatError("bad-value", "[bitnet] values are not ternary");
        }
        return source.ternary(name, out, inp);
      },
    };
    const config = configFromGguf(file.metadata, file.tensor("token_embd.weight")?.dims[1]);
    const out = path.join(root, "float-out");
    const err = await writeHfFolder({ config, source: notTernary }, out).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExportError);
    expect((err as ExportError).code).toBe("unsupported");
    expect((err as Error).message).toContain("blk.0.ffn_up.weight");
    await expect(fs.stat(out)).rejects.toThrow();
    expect((await fs.readdir(root)).filter((f) => f.includes("partial"))).toEqual([]);
  });

  it("runs as `barbell export --hf DIR -m MODEL`, and refuses --hf together with --onnx", async () => {
    const run = (args: string[]): Promise<CliRun> => runCli(["export", ...args]);
    const dir = path.join(root, "cli-out");
    const { out } = await run(["--hf", dir, "-m", "models/barbell-kjv.gguf", "--scale-dtype", "bf16"]);
    expect(out).toMatch(/^wrote .*cli-out\/ \(config\.json, generation_config\.json, tokenizer\.json, tokenizer_config\.json, model\.safetensors; [\d.]+ MiB of weights\)/);
    await using st = await openSafetensors(path.join(dir, "model.safetensors"));
    expect(st.tensor("model.layers.0.mlp.up_proj.weight_scale")?.dtype).toBe("BF16");
    await expect(run(["--hf", path.join(root, "x"), "--onnx", "bf16", "-o", path.join(root, "x.onnx")])).rejects.toThrow(/one of: --onnx <form>/);
  }, 60_000);
});
