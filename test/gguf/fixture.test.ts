import { describe, expect, it } from "vitest";
import { quantTraitsFor, readGgufBytes } from "../../src/formats/gguf/index.js";
import { makeBitnetFixture } from "../../src/model/bitnet/fixture.js";

describe("BitNet fixture generator", () => {
  it("should write the 2B-4T tensor inventory with the right shapes and types", () => {
    const file = readGgufBytes(makeBitnetFixture());
    expect(file.tensors).toHaveLength(2 + 11 * 2);
    const shape = (name: string) => {
      const t = file.tensor(name);
      return t && [t.dims, t.typeName];
    };
    expect(shape("token_embd.weight")).toEqual([[128, 300], "f16"]);
    expect(shape("output_norm.weight")).toEqual([[128], "f32"]);
    expect(shape("output.weight")).toBeUndefined();
    expect(shape("blk.1.attn_q.weight")).toEqual([[128, 128], "i2_s"]);
    expect(shape("blk.1.attn_k.weight")).toEqual([[128, 64], "i2_s"]);
    expect(shape("blk.1.ffn_down.weight")).toEqual([[256, 128], "i2_s"]);
    expect(shape("blk.0.ffn_sub_norm.weight")).toEqual([[256], "f32"]);
  });

  it("should write the hyperparameters and a byte-level tokenizer in metadata", () => {
    const m = readGgufBytes(makeBitnetFixture({ arch: "bitnet", contextLength: 512 })).metadata;
    expect(m.getString("general.architecture")).toBe("bitnet");
    expect(m.getNumber("bitnet.context_length")).toBe(512);
    expect(m.getNumber("bitnet.attention.head_count_kv")).toBe(4);
    expect(m.getNumber("bitnet.rope.freq_base")).toBe(10000);
    const tokens = m.getStringArray("tokenizer.ggml.tokens") ?? [];
    expect(tokens).toHaveLength(300);
    expect(tokens[32]).toBe("Ġ");
    expect(tokens[m.getCount("tokenizer.ggml.bos_token_id") ?? -1]).toBe("<|begin_of_text|>");
    expect(tokens[m.getCount("tokenizer.ggml.eos_token_id") ?? -1]).toBe("<|end_of_text|>");
    const merges = m.getStringArray("tokenizer.ggml.merges") ?? [];
    expect(merges.length).toBe(40);
    expect(tokens[299]).toBe("<|reserved_special_token_0|>");
    for (const merge of merges) {
      expect(tokens).toContain(merge.replace(" ", ""));
    }
    expect(m.getString("tokenizer.ggml.model")).toBe("gpt2");
  });

  it("should be deterministic for a seed and differ between seeds", () => {
    expect(makeBitnetFixture({ seed: 7 })).toEqual(makeBitnetFixture({ seed: 7 }));
    expect(makeBitnetFixture({ seed: 7 })).not.toEqual(makeBitnetFixture({ seed: 8 }));
  });

  it("should store ternary weights that decode to γ·trits in every weight type", async () => {
    for (const weightType of ["i2_s", "tq2_0", "tq1_0", "f32", "f16"] as const) {
      const file = readGgufBytes(makeBitnetFixture({ weightType, hidden: 256, ffn: 512, embeddingType: "q6_k" }));
      const info = file.tensor("blk.0.attn_v.weight");
      const traits = info && quantTraitsFor(info);
      expect(traits?.name).toBe(weightType);
      if (info === undefined || traits === undefined) {
        continue;
      }
      const values = traits.decode(await file.tensorData(info), info.dims[1] ?? 1, info.dims[0] ?? 1);
      const gamma = values[0] ?? 0;
      expect(gamma).toBeGreaterThan(0);
      expect(values.every((v) => v === 0 || Math.abs(v) === gamma)).toBe(true);
      expect(file.tensor("token_embd.weight")?.typeName).toBe("q6_k");
    }
  });

  it("should write a separate output head when untied", () => {
    const file = readGgufBytes(makeBitnetFixture({ tied: false, embeddingType: "q8_0" }));
    expect(file.tensor("output.weight")?.typeName).toBe("q8_0");
  });

  it("should reject shapes its weight type cannot store", () => {
    expect(() => makeBitnetFixture({ hidden: 64 })).toThrow(/cannot be stored as i2_s/);
    expect(() => makeBitnetFixture({ heads: 3 })).toThrow(expect.objectContaining({ code: "size" }));
  });
});
