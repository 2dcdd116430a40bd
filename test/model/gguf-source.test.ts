import { describe, expect, it } from "vitest";
import { FormatError } from "../../src/index.js";
import { gv, readGgufBytes, writeGguf } from "../../src/formats/gguf/index.js";
import { makeBitnetFixture, type FixtureWeightType } from "../../src/model/bitnet/fixture.js";
import { ggufWeightSource } from "../../src/model/bitnet/gguf-source.js";
import { unpackTernary } from "../../src/quant/layouts.js";
import { QUANT_TRAITS } from "../../src/quant/table.js";

describe("GGUF weight source", () => {
  const types: FixtureWeightType[] = ["i2_s", "tq2_0", "tq1_0", "f32", "f16"];
  it.each(types)("should repack %s projections into the same trits and one scale", async (weightType) => {
    const source = ggufWeightSource(readGgufBytes(makeBitnetFixture({ weightType, hidden: 256, ffn: 512, seed: 9 })));
    const reference = ggufWeightSource(readGgufBytes(makeBitnetFixture({ weightType: "f32", hidden: 256, ffn: 512, seed: 9 })));
    const got = await source.ternary("blk.1.ffn_down.weight", 256, 512);
    const want = await reference.ternary("blk.1.ffn_down.weight", 256, 512);
    expect(Array.from(unpackTernary(got.codes, 256, 512))).toEqual(Array.from(unpackTernary(want.codes, 256, 512)));
    expect(got.scale).toBeCloseTo(want.scale, 3);
  });

  it("should refuse a float tensor that is not ternary, naming the element, and still decode it as floats", async () => {
    const values = Float32Array.from([0.5, -0.5, 0, 0.25]);
    const bytes = writeGguf({
      metadata: [["general.architecture", gv.string("bitnet-b1.58")]],
      tensors: [{ name: "w", dims: [2, 2], typeId: 0, data: QUANT_TRAITS.f32.encode(values, 2, 2) }],
    });
    const source = ggufWeightSource(readGgufBytes(bytes));
    const error = await source.ternary("w", 2, 2).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FormatError);
    expect((error as FormatError).code).toBe("bad-value");
    expect((error as FormatError).message).toContain("element 3 (row 1) is 0.25, not 0 or ±0.5");
    expect(Array.from(await source.projectionFloats("w", 2, 2))).toEqual(Array.from(values));
  });

  it("should name the tensor and both shapes when the config disagrees with the file", async () => {
    const source = ggufWeightSource(readGgufBytes(makeBitnetFixture({ seed: 1 })));
    await expect(source.ternary("blk.0.attn_q.weight", 64, 128)).rejects.toThrow(
      "[bitnet] blk.0.attn_q.weight has dims [128, 128], the config needs [128, 64]",
    );
    await expect(source.floats("blk.9.attn_norm.weight", 128)).rejects.toThrow("tensor blk.9.attn_norm.weight is missing");
  });
});
