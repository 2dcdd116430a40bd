/**
 * `barbell convert` end to end on seeded HF folders: the GGUF's logits against loading the folder itself, the TQ
 * tensors' bytes against the project's llama.cpp-layout encoders, llama.cpp's metadata keys and tensor names for
 * arch bitnet, and the tokenizer and chat template carried over.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { convertFolder, type ConvertFlags } from "../../src/cli/convert.js";
import { loadModel, type BitnetModel } from "../../src/engine/model.js";
import { openGguf } from "../../src/formats/gguf/index.js";
import { openHfConversion, UNTIED_BITNET_WARNING } from "../../src/model/bitnet/convert.js";
import { readHfBitnetFolder } from "../../src/model/bitnet/hf.js";
import { tokenizerFromGguf, tokenizerFromJson } from "../../src/model/tokenizer/index.js";
import { f32ToHalf, halfToF32 } from "../../src/quant/half.js";
import { packTernary } from "../../src/quant/layouts.js";
import { repackTernary } from "../../src/quant/repack.js";
import { QUANT_TRAITS } from "../../src/quant/table.js";
import { CHAT_TEMPLATE, SAMPLE_TEXTS, relL2, writeFolder } from "./helpers.js";

let root = "";
beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), "barbell-convert-"));
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

const PROMPT = "And God said, Let there be light";
const load = (p: string, headType?: "q8_0" | "q6_k"): Promise<BitnetModel> =>
  loadModel(p, { autotune: false, ...(headType === undefined ? {} : { headType }) });

async function logitsOf(model: BitnetModel): Promise<Float32Array[]> {
  return model.logits(model.tokenize(PROMPT), { all: true });
}

async function convert(folder: string, name: string, flags: Omit<ConvertFlags, "out">): Promise<string> {
  const out = path.join(root, `${name}.gguf`);
  await convertFolder(folder, { out, ...flags });
  return out;
}

/** Every logit of every position bit-identical. */
function expectSame(a: Float32Array[], b: Float32Array[]): void {
  expect(a.length).toBe(b.length);
  a.forEach((row, p) => expect(Array.from(row)).toEqual(Array.from(b[p] ?? [])));
}

describe("barbell convert: logits", () => {
  // Norms and embeddings in F16 so that an f16 head holds them exactly; weight_scale in BF16 as HF-tf stores it
  // (bf16 values are exact in fp16, so TQ blocks hold γ exactly too).
  let packed = "";
  beforeAll(async () => {
    packed = await writeFolder(root, "packed", { hidden: 256, layout: "packed", floatDtype: "F16", seed: 7 });
  });

  it.each(["i2_s", "tq2_0", "tq1_0"] as const)(
    "should give the folder's logits bit for bit with %s projections and an f16 head (packed uint8 + bf16 weight_scale)",
    async (type) => {
      const out = await convert(packed, `packed-${type}`, { type, head: "f16" });
      using hf = await load(packed);
      using gguf = await load(out);
      expectSame(await logitsOf(gguf), await logitsOf(hf));
    },
  );

  it("should agree with a BF16 checkpoint (2B-4T's dtype) to 1e-5 rel L2 with an f16 head", async () => {
    const bf16 = await writeFolder(root, "bf16", { hidden: 256, layout: "packed", seed: 14 });
    const out = await convert(bf16, "bf16", { type: "i2_s", head: "f16" });
    using hf = await load(bf16);
    using gguf = await load(out);
    const a = await logitsOf(gguf);
    const b = await logitsOf(hf);
    // bf16 values are f16 values (but for |x| < 2^-17); only f16 vs bf16 dot-product rounding differs (~1e-7 measured).
    a.forEach((row, p) => expect(relL2(row, b[p] ?? [])).toBeLessThan(1e-5));
  });

  it.each(["q8_0", "q6_k"] as const)(
    "should give the logits of the folder loaded with --head %s for a head stored so (the same encoder on the same floats)",
    async (head) => {
      const out = await convert(packed, `packed-${head}`, { type: "tq2_0", head });
      using hf = await load(packed, head);
      using gguf = await load(out);
      expectSame(await logitsOf(gguf), await logitsOf(hf));
    },
  );

  it("should store a q6_k head as the project's Q6_K encoder writes the folder's embedding, within 0.1 rel L2 of the f16 logits", async () => {
    const out = await convert(packed, "packed-q6", { type: "i2_s", head: "q6_k" });
    await using folder = await readHfBitnetFolder(packed);
    const embd = folder.tensors.get("token_embd.weight");
    const floats = embd?.kind === "float" ? await embd.load() : new Float32Array();
    await using file = await openGguf(out);
    const info = file.tensor("token_embd.weight");
    expect(info?.typeName).toBe("q6_k");
    const bytes = info === undefined ? new Uint8Array() : await file.tensorData(info);
    expect(Buffer.from(bytes).equals(Buffer.from(QUANT_TRAITS.q6_k.encode(floats, 300, 256)))).toBe(true);
    using hf = await load(packed);
    using gguf = await load(out);
    const a = await logitsOf(gguf);
    const b = await logitsOf(hf);
    // Q6_K itself moves these random ±0.5 weights by 1.4 % (rel L2); the logits moved by 3.8 % when measured.
    a.forEach((row, p) => expect(relL2(row, b[p] ?? [])).toBeLessThan(0.1));
  });

  it("should give the folder's logits bit for bit for bf16 master weights in i2_s (absmean γ kept as f32)", async () => {
    const master = await writeFolder(root, "master", { hidden: 256, layout: "master", floatDtype: "F16", seed: 8 });
    const out = await convert(master, "master-i2s", { type: "i2_s", head: "f16" });
    using hf = await load(master);
    using gguf = await load(out);
    expectSame(await logitsOf(gguf), await logitsOf(hf));
  });

  it("should keep master weights' trits in tq2_0 and change only γ, to its fp16 value", async () => {
    const master = await writeFolder(root, "master-tq", { hidden: 256, layout: "master", floatDtype: "F16", seed: 9 });
    const out = path.join(root, "master-tq.gguf");
    const result = await convertFolder(master, { out, type: "tq2_0", head: "f16" });
    expect(result.stats.roundedScales).toBeGreaterThan(0);
    expect(result.stats.maxScaleError).toBeLessThan(2 ** -11);
    await using folder = await readHfBitnetFolder(master);
    await using file = await openGguf(out);
    for (const t of folder.tensors.values()) {
      if (t.kind !== "ternary") {
        continue;
      }
      const [rows, cols] = t.shape;
      const { trits, scale } = await t.load();
      const info = file.tensor(t.name);
      const got = repackTernary("tq2_0", info === undefined ? new Uint8Array() : await file.tensorData(info), rows, cols);
      expect(Buffer.from(got.codes).equals(Buffer.from(packTernary(trits, rows, cols)))).toBe(true);
      expect(got.scale).toBe(halfToF32(f32ToHalf(scale)));
    }
    using hf = await load(master);
    using gguf = await load(out);
    const a = await logitsOf(gguf);
    const b = await logitsOf(hf);
    // γ moves by < 2^-11; int8 activation rounding amplifies it in this random 2-layer model (2.3 % measured).
    a.forEach((row, p) => expect(relL2(row, b[p] ?? [])).toBeLessThan(0.1));
  });

  it("should convert an untied, sharded checkpoint with bitlinear (1/γ) scales", async () => {
    const dir = await writeFolder(root, "untied", {
      hidden: 256,
      tied: false,
      shards: 3,
      linearClass: "bitlinear",
      scaleDtype: "F32",
      floatDtype: "F16",
      seed: 10,
    });
    const out = await convert(dir, "untied", { type: "i2_s", head: "f16" });
    await using file = await openGguf(out);
    expect(file.tensor("output.weight")?.typeName).toBe("f16");
    using hf = await load(dir);
    using gguf = await load(out);
    expectSame(await logitsOf(gguf), await logitsOf(hf));
  });
});

describe("barbell convert: llama.cpp's layouts and keys", () => {
  it.each(["tq2_0", "tq1_0"] as const)(
    "should write each %s projection as the project's ggml-layout encoder writes γ·trits, every nonzero block's d = γ",
    async (type) => {
      const dir = await writeFolder(root, `bytes-${type}`, { hidden: 256, seed: 11 });
      const out = await convert(dir, `bytes-${type}`, { type, head: "f16" });
      await using folder = await readHfBitnetFolder(dir);
      await using file = await openGguf(out);
      const blockBytes = QUANT_TRAITS[type].blockBytes;
      const scaleAt = type === "tq2_0" ? 64 : 52;
      let checked = 0;
      for (const t of folder.tensors.values()) {
        if (t.kind !== "ternary") {
          continue;
        }
        const [rows, cols] = t.shape;
        const { trits, scale } = await t.load();
        const info = file.tensor(t.name);
        expect(info?.typeName).toBe(type);
        expect(info?.dims).toEqual([cols, rows]);
        const bytes = info === undefined ? new Uint8Array() : await file.tensorData(info);
        const want = QUANT_TRAITS[type].encode(Float32Array.from(trits, (v) => v * scale), rows, cols);
        expect(Buffer.from(bytes).equals(Buffer.from(want))).toBe(true);
        for (let b = 0; b < bytes.length / blockBytes; b++) {
          const nonzero = trits.subarray(256 * b, 256 * (b + 1)).some((v) => v !== 0);
          const d = (bytes[b * blockBytes + scaleAt] ?? 0) | ((bytes[b * blockBytes + scaleAt + 1] ?? 0) << 8);
          expect(halfToF32(d)).toBe(nonzero ? scale : 0);
        }
        checked++;
      }
      expect(checked).toBe(14);
    },
  );

  it("should write arch bitnet with llama.cpp's keys and tensor names for a 1bitLLM-style (SiLU) folder", async () => {
    const dir = await writeFolder(root, "old", { arch: "bitnet", hidden: 256, layers: 1, seed: 12 });
    const out = await convert(dir, "old", { type: "tq2_0", head: "q8_0" });
    await using file = await openGguf(out);
    const keys = [...file.metadata.keys()];
    expect(keys).toEqual([
      "general.architecture",
      "general.type",
      "general.name",
      "general.file_type",
      "general.quantization_version",
      "bitnet.vocab_size",
      "bitnet.context_length",
      "bitnet.embedding_length",
      "bitnet.block_count",
      "bitnet.feed_forward_length",
      "bitnet.rope.dimension_count",
      "bitnet.attention.head_count",
      "bitnet.attention.head_count_kv",
      "bitnet.attention.layer_norm_rms_epsilon",
      "bitnet.rope.freq_base",
      "tokenizer.ggml.model",
      "tokenizer.ggml.pre",
      "tokenizer.ggml.tokens",
      "tokenizer.ggml.token_type",
      "tokenizer.ggml.merges",
      "tokenizer.ggml.bos_token_id",
      "tokenizer.ggml.eos_token_id",
      "tokenizer.ggml.eot_token_id",
      "tokenizer.ggml.add_bos_token",
      "tokenizer.ggml.add_eos_token",
      "tokenizer.chat_template",
    ]);
    expect(file.metadata.getString("general.architecture")).toBe("bitnet");
    expect(file.metadata.getString("general.name")).toBe("old");
    expect(file.metadata.getNumber("general.file_type")).toBe(37); // LLAMA_FTYPE_MOSTLY_TQ2_0
    expect(file.metadata.getNumber("bitnet.rope.freq_base")).toBe(10000);
    expect(file.tensors.map((t) => t.name)).toEqual([
      "token_embd.weight",
      "output_norm.weight",
      ...[
        "attn_norm",
        "attn_q",
        "attn_k",
        "attn_v",
        "attn_output",
        "attn_sub_norm",
        "ffn_norm",
        "ffn_gate",
        "ffn_up",
        "ffn_down",
        "ffn_sub_norm",
      ].map((n) => `blk.0.${n}.weight`),
    ]);
    expect(file.tensor("blk.0.attn_norm.weight")?.typeName).toBe("f32");
    using hf = await load(dir, "q8_0");
    using gguf = await load(out);
    expect(gguf.config.activation).toBe("silu");
    expectSame(await logitsOf(gguf), await logitsOf(hf));
  });

  // Found by scripts/peers/check-llama-cpp.sh: llama.cpp's arch bitnet always uses token_embd as the head, so a file
  // with output.weight fails there with "wrong number of tensors"; barbell says so instead of leaving it to llama.cpp.
  it("should warn that llama.cpp refuses an untied arch-bitnet file, and only then", async () => {
    const warningsOf = async (name: string, arch: "bitnet" | "bitnet-b1.58", tied: boolean): Promise<readonly string[]> => {
      const dir = await writeFolder(root, name, { arch, hidden: 256, layers: 1, tied, seed: 15, tokenizer: tied });
      await using c = await openHfConversion(dir, { weightType: "tq2_0" });
      expect(c.plan.tied).toBe(tied);
      return c.plan.warnings;
    };
    expect(await warningsOf("untied-old", "bitnet", false)).toContain(UNTIED_BITNET_WARNING);
    expect(await warningsOf("tied-old", "bitnet", true)).toEqual([]);
    expect(await warningsOf("untied-new", "bitnet-b1.58", false)).not.toContain(UNTIED_BITNET_WARNING);
  });

  it("should carry the tokenizer and chat template over so that the GGUF tokenizes like the folder", async () => {
    const dir = await writeFolder(root, "tok", { hidden: 256, layers: 1, seed: 13 });
    const out = await convert(dir, "tok", { type: "i2_s", head: "f16" });
    const json: unknown = JSON.parse(await fs.readFile(path.join(dir, "tokenizer.json"), "utf8"));
    const config: unknown = JSON.parse(await fs.readFile(path.join(dir, "tokenizer_config.json"), "utf8"));
    const fromJson = tokenizerFromJson(json, config);
    await using file = await openGguf(out);
    const fromGguf = tokenizerFromGguf(file.metadata);
    expect(file.metadata.getString("tokenizer.ggml.pre")).toBe("llama-bpe");
    expect(file.metadata.getString("tokenizer.chat_template")).toBe(CHAT_TEMPLATE);
    for (const text of SAMPLE_TEXTS) {
      expect(Array.from(fromGguf.encode(text))).toEqual(Array.from(fromJson.encode(text)));
    }
  });
});
