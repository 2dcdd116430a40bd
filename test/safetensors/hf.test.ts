import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FormatError } from "../../src/core/errors.js";
import { readGgufBytes } from "../../src/formats/gguf/index.js";
import { readSafetensorsBytes, writeSafetensors } from "../../src/formats/safetensors/index.js";
import { makeBitnetFixture, type BitnetFixtureOptions } from "../../src/model/bitnet/fixture.js";
import { writeHfBitnetFixture, type HfBitnetFixtureOptions } from "../../src/model/bitnet/hf-fixture.js";
import { hfToBarbellName, MAX_HF_CONFIG_BYTES, readHfBitnetFolder, type HfBitnetFolder } from "../../src/model/bitnet/hf.js";
import { bf16ToF32, f32ToBf16 } from "../../src/quant/half.js";
import { QUANT_TRAITS } from "../../src/quant/table.js";
import { absmeanTernarize } from "../../src/quant/values.js";

const SIZES = { hidden: 64, layers: 2, heads: 4, ffn: 96, vocab: 260, seed: 7 } as const;

/** Trits and γ of every projection of the GGUF fixture with the same sizes and seed (f32 storage: exact). */
async function ggufTernaries(opts: BitnetFixtureOptions): Promise<Map<string, { trits: number[]; scale: number }>> {
  const file = readGgufBytes(makeBitnetFixture({ ...opts, weightType: "f32" }));
  const out = new Map<string, { trits: number[]; scale: number }>();
  for (const t of file.tensors) {
    if (/attn_[qkv]|attn_output|ffn_(gate|up|down)/.test(t.name)) {
      const [cols = 0, rows = 0] = t.dims;
      // The fixture stores γ·t in f32, and element 0 is +γ, so γ is the absmax and t = sign.
      const values = QUANT_TRAITS.f32.decode(await file.tensorData(t), rows, cols);
      const scale = values.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      expect(values.every((v) => v === 0 || Math.abs(v) === scale)).toBe(true);
      out.set(t.name, { trits: [...values].map((v) => Math.sign(v)), scale });
    }
  }
  return out;
}

describe("Hugging Face BitNet folders", () => {
  let dir = "";
  const open: HfBitnetFolder[] = [];
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "barbell-hf-"));
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((f) => f.close()));
    await rm(dir, { recursive: true, force: true });
  });

  async function fixture(opts: HfBitnetFixtureOptions = {}): Promise<HfBitnetFolder> {
    await writeHfBitnetFixture(dir, { ...SIZES, ...opts });
    const folder = await readHfBitnetFolder(dir);
    open.push(folder);
    return folder;
  }

  async function editConfig(edit: (c: Record<string, unknown>) => void): Promise<void> {
    const c = JSON.parse(await readFile(join(dir, "config.json"), "utf8")) as Record<string, unknown>;
    edit(c);
    await writeFile(join(dir, "config.json"), JSON.stringify(c));
  }

  it("should map Hugging Face names (2B-4T and 1bitLLM) to barbell names", () => {
    expect(hfToBarbellName("model.embed_tokens.weight")).toBe("token_embd.weight");
    expect(hfToBarbellName("lm_head.weight")).toBe("output.weight");
    expect(hfToBarbellName("model.norm.weight")).toBe("output_norm.weight");
    expect(hfToBarbellName("model.layers.12.self_attn.q_proj.weight")).toBe("blk.12.attn_q.weight");
    expect(hfToBarbellName("model.layers.0.self_attn.inner_attn_ln.weight")).toBe("blk.0.attn_sub_norm.weight");
    expect(hfToBarbellName("model.layers.0.mlp.ffn_layernorm.weight")).toBe("blk.0.ffn_sub_norm.weight");
    expect(hfToBarbellName("model.layers.3.mlp.down_proj.weight")).toBe("blk.3.ffn_down.weight");
    expect(hfToBarbellName("model.layers.01.mlp.down_proj.weight")).toBeUndefined();
    expect(hfToBarbellName("model.layers.0.self_attn.rotary_emb.inv_freq")).toBeUndefined();
  });

  it("should read a packed fixture back with the config values and every tensor barbell needs", async () => {
    const f = await fixture();
    expect(f.config).toMatchObject({ hiddenSize: 64, intermediateSize: 96, numHiddenLayers: 2, numKeyValueHeads: 2 });
    expect(f.config).toMatchObject({ hiddenAct: "relu2", ropeTheta: 500000, modelType: "bitnet", vocabSize: 260 });
    const quantization = { quantMethod: "bitnet", linearClass: "autobitlinear", quantizationMode: "offline" };
    expect(f.config.quantization).toEqual(quantization);
    expect(f.tiedOutput).toBe(true);
    expect(f.tensors.size).toBe(2 + 2 * 11);
    expect(f.unused).toEqual([]);
    const k = f.tensors.get("blk.1.attn_k.weight");
    expect(k).toMatchObject({ kind: "ternary", storage: "packed", shape: [32, 64], dtype: "U8" });
    const emb = f.tensors.get("token_embd.weight");
    expect(emb?.kind === "float" ? (await emb.load()).length : 0).toBe(260 * 64);
  });

  it("should give the GGUF fixture's trits, and its γ rounded to bf16, for the same seed", async () => {
    const f = await fixture();
    const expected = await ggufTernaries(SIZES);
    expect(expected.size).toBe(14);
    for (const [name, want] of expected) {
      const t = f.tensors.get(name);
      const got = t?.kind === "ternary" ? await t.load() : undefined;
      expect([...(got?.trits ?? [])], name).toEqual(want.trits);
      expect(got?.scale, name).toBe(bf16ToF32(f32ToBf16(want.scale)));
    }
  });

  it("should give the GGUF fixture's exact γ with an f32 weight_scale", async () => {
    const f = await fixture({ scaleDtype: "F32" });
    for (const [name, want] of await ggufTernaries(SIZES)) {
      const t = f.tensors.get(name);
      expect(t?.kind === "ternary" ? (await t.load()).scale : 0, name).toBe(want.scale);
    }
  });

  it("should invert weight_scale when linear_class is bitlinear", async () => {
    const f = await fixture({ scaleDtype: "F32", linearClass: "bitlinear" });
    for (const [name, want] of await ggufTernaries(SIZES)) {
      const t = f.tensors.get(name);
      const got = t?.kind === "ternary" ? await t.load() : undefined;
      expect(got?.scale ?? 0, name).toBeCloseTo(want.scale, 6);
      expect([...(got?.trits ?? [])]).toEqual(want.trits);
    }
  });

  it("should ternarize bf16 master weights at load to the GGUF fixture's trits", async () => {
    const f = await fixture({ layout: "master" });
    expect(f.config.quantization).toBeUndefined();
    const raw = await readSafetensorsBytes(await readFile(join(dir, "model.safetensors")));
    for (const [name, want] of await ggufTernaries(SIZES)) {
      const t = f.tensors.get(name);
      expect(t).toMatchObject({ kind: "ternary", storage: "master", dtype: "BF16" });
      const got = t?.kind === "ternary" ? await t.load() : undefined;
      expect([...(got?.trits ?? [])], name).toEqual(want.trits);
      const values = QUANT_TRAITS.bf16.decode(await raw.tensorData(t?.hfName ?? ""), 1, want.trits.length);
      const absmean = absmeanTernarize(values);
      expect(got?.scale).toBe(absmean.ok ? absmean.value.scale : Number.NaN);
      expect(got?.scale ?? 0).toBeGreaterThan(want.scale * 0.95);
      expect(got?.scale ?? 0).toBeLessThan(want.scale * 1.3);
    }
  });

  it("should read the 1bitLLM layout (llama model_type, SiLU, inner_attn_ln, ffn_layernorm)", async () => {
    const f = await fixture({ arch: "bitnet", layout: "master", floatDtype: "F16" });
    expect(f.config).toMatchObject({ modelType: "llama", hiddenAct: "silu", numKeyValueHeads: 4, ropeTheta: 10000 });
    expect(f.tensors.get("blk.0.attn_sub_norm.weight")?.hfName).toBe("model.layers.0.self_attn.inner_attn_ln.weight");
    expect(f.tensors.get("blk.1.ffn_sub_norm.weight")?.shape).toEqual([96]);
  });

  it("should read a sharded checkpoint exactly as the single-file one", async () => {
    const single = await fixture({ tied: false });
    const loaded = new Map<string, unknown>();
    for (const [name, t] of single.tensors) {
      loaded.set(name, await t.load());
    }
    await rm(join(dir, "model.safetensors"));
    const files = await writeHfBitnetFixture(dir, { ...SIZES, tied: false, shards: 3 });
    expect(files.files).toContain("model.safetensors.index.json");
    const sharded = await readHfBitnetFolder(dir);
    open.push(sharded);
    expect(sharded.tiedOutput).toBe(false);
    expect([...sharded.tensors.keys()].sort()).toEqual([...single.tensors.keys()].sort());
    for (const [name, t] of sharded.tensors) {
      expect(await t.load(), name).toEqual(loaded.get(name));
    }
  });

  it.each([
    ["an unknown linear_class", (c: Record<string, unknown>) => {
      c.quantization_config = { quant_method: "bitnet", linear_class: "fancylinear", quantization_mode: "offline" };
    }, /linear_class" is string "fancylinear"/],
    ["an unknown hidden_act", (c: Record<string, unknown>) => {
      c.hidden_act = "gelu";
    }, /hidden_act" is string "gelu"/],
    ["a missing field", (c: Record<string, unknown>) => {
      delete c.rope_theta;
    }, /no "rope_theta"/],
    ["a fractional size", (c: Record<string, unknown>) => {
      c.hidden_size = 64.5;
    }, /hidden_size" is number 64.5/],
    ["heads that do not divide the hidden size", (c: Record<string, unknown>) => {
      c.num_attention_heads = 3;
    }, /do not divide/],
    ["an unknown architecture", (c: Record<string, unknown>) => {
      c.architectures = ["LlamaForCausalLM"];
    }, /architectures/],
    ["packed weights without a quantization_config", (c: Record<string, unknown>) => {
      delete c.quantization_config;
    }, /needs config.json quantization_config.linear_class/],
    ["a config that disagrees with the tensor shapes", (c: Record<string, unknown>) => {
      c.intermediate_size = 128;
    }, /ffn_sub_norm.weight" \(blk.0.ffn_sub_norm.weight\) has shape \[96\]; config.json implies \[128\]/],
    ["a packed projection whose shape disagrees with the config", (c: Record<string, unknown>) => {
      c.num_key_value_heads = 4;
    }, /k_proj.weight" \(blk.0.attn_k.weight\) has shape \[8, 64\]; config.json implies \[16, 64\] \(packed/],
    ["fewer layers than the checkpoint holds", (c: Record<string, unknown>) => {
      c.num_hidden_layers = 1;
    }, /is for layer 1; config.json has 1/],
    ["more layers than the checkpoint holds", (c: Record<string, unknown>) => {
      c.num_hidden_layers = 3;
    }, /lacks blk.2.attn_norm.weight/],
    ["an untied head with no lm_head", (c: Record<string, unknown>) => {
      c.tie_word_embeddings = false;
    }, /lacks output.weight/],
  ])("should reject %s with a FormatError naming it", async (_what, edit, message) => {
    await writeHfBitnetFixture(dir, SIZES);
    await editConfig(edit);
    const error: unknown = await readHfBitnetFolder(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FormatError);
    expect((error as Error).message).toMatch(message);
  });

  // Issue 13 item 2: num_hidden_layers 2^31 built the list of 21 billion required tensor names before any limit
  // was checked (89 s, 5.2 GiB, heap out of memory). Every size is now checked against its limit when parsed.
  it.each([
    ["num_hidden_layers", 2 ** 31, 1024],
    ["num_hidden_layers", 200_000, 1024],
    ["hidden_size", 2 ** 40, 65_536],
    ["intermediate_size", 2 ** 31, 262_144],
    ["num_attention_heads", 4096, 1024],
    ["num_key_value_heads", 2 ** 31, 1024],
    ["vocab_size", 2 ** 31, 1 << 22],
    ["max_position_embeddings", 2 ** 40, 1 << 20],
    ["vocab_size", "123456789012345678901234567890", 1 << 22],
  ] as const)("should refuse %s = %s as past barbell's limit %s before sizing anything from it", async (key, value, max) => {
    await writeHfBitnetFixture(dir, SIZES);
    const text = (await readFile(join(dir, "config.json"), "utf8")).replace(
      new RegExp(`"${key}": [0-9]+`),
      `"${key}": ${String(value)}`,
    );
    await writeFile(join(dir, "config.json"), text);
    const started = performance.now();
    const error: unknown = await readHfBitnetFolder(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FormatError);
    expect((error as FormatError).code).toBe("limit");
    expect((error as Error).message).toContain(`"${key}"`);
    expect((error as Error).message).toContain(`limit is ${max}`);
    expect(performance.now() - started).toBeLessThan(10_000); // the old loader ran out of memory after 89 s
  });

  it("should refuse heads an odd number of dimensions wide when parsing config.json", async () => {
    await writeHfBitnetFixture(dir, SIZES);
    await editConfig((c) => {
      c.hidden_size = 60;
      c.num_attention_heads = 4;
      c.num_key_value_heads = 4;
    });
    await expect(readHfBitnetFolder(dir)).rejects.toThrow(/heads 15 wide; rotary embedding needs pairs/);
  });

  it("should refuse a config.json over MAX_HF_CONFIG_BYTES or missing with a FileError, and bad UTF-8 with a FormatError", async () => {
    await writeHfBitnetFixture(dir, SIZES);
    const config = await readFile(join(dir, "config.json"), "utf8");
    await writeFile(join(dir, "config.json"), config.replace("{", `{"pad": "${"x".repeat(MAX_HF_CONFIG_BYTES)}",`));
    await expect(readHfBitnetFolder(dir)).rejects.toMatchObject({ name: "FileError", code: "too-large" });
    await writeFile(join(dir, "config.json"), Buffer.concat([Buffer.from(config.slice(0, 20)), Buffer.of(0xc3, 0x28)]));
    await expect(readHfBitnetFolder(dir)).rejects.toMatchObject({ name: "FormatError", code: "bad-utf8" });
    await rm(join(dir, "config.json"));
    await expect(readHfBitnetFolder(dir)).rejects.toMatchObject({ name: "FileError", code: "missing" });
  });

  it("should reject a packed projection without weight_scale and a non-positive weight_scale", async () => {
    await writeHfBitnetFixture(dir, SIZES);
    const path = join(dir, "model.safetensors");
    const file = await readSafetensorsBytes(await readFile(path));
    const rewrite = async (edit: (name: string) => Uint8Array | null | undefined): Promise<void> => {
      const tensors = [];
      for (const t of file.tensors) {
        const data = edit(t.name);
        if (data !== null) {
          tensors.push({ name: t.name, dtype: t.dtype, shape: t.shape, data: data ?? (await file.tensorData(t)) });
        }
      }
      await writeFile(path, writeSafetensors({ tensors }));
    };
    const scale = "model.layers.1.mlp.up_proj.weight_scale";
    await rewrite((n) => (n === scale ? null : undefined));
    await expect(readHfBitnetFolder(dir)).rejects.toThrow(/"model.layers.1.mlp.up_proj.weight" has no/);
    await rewrite((n) => (n === scale ? new Uint8Array(2) : undefined));
    const f = await readHfBitnetFolder(dir);
    open.push(f);
    const up = f.tensors.get("blk.1.ffn_up.weight");
    await expect(up?.load()).rejects.toThrow(/weight scale must be positive/);
  });
});
