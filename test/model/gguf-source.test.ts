import { describe, expect, it } from "vitest";
import { FormatError } from "../../src/index.js";
import { gv, readGgufBytes, writeGguf } from "../../src/formats/gguf/index.js";
import { makeBitnetFixture, type FixtureWeightType } from "../../src/model/bitnet/fixture.js";
import { readTernaryWeight } from "../../src/model/bitnet/ternary-weights.js";
import { QUANT_TRAITS } from "../../src/quant/table.js";

describe("ternary weights from GGUF", () => {
  const types: FixtureWeightType[] = ["i2_s", "tq2_0", "tq1_0", "f32", "f16"];
  it.each(types)("should load %s projections as the same trits and one scale", async (weightType) => {
    const gguf = readGgufBytes(makeBitnetFixture({ weightType, hidden: 256, ffn: 512, seed: 9 }));
    const reference = readGgufBytes(makeBitnetFixture({ weightType: "f32", hidden: 256, ffn: 512, seed: 9 }));
    const info = gguf.tensor("blk.1.ffn_down.weight");
    const refInfo = reference.tensor("blk.1.ffn_down.weight");
    expect(info?.typeName).toBe(weightType);
    if (!info || !refInfo) {
      throw new Error("fixture lacks blk.1.ffn_down.weight");
    }
    const loaded = await readTernaryWeight(gguf, info, ["embed", "ffn"]);
    const expected = await readTernaryWeight(reference, refInfo, ["embed", "ffn"]);
    if (!loaded.ok || !expected.ok) {
      throw new Error("load failed");
    }
    using w = loaded.value;
    using e = expected.value;
    expect(w.shape).toEqual([256, 512]);
    expect(Array.from(w.toInt32())).toEqual(Array.from(e.toInt32()));
    expect(w.scale).toBeCloseTo(e.scale ?? 0, 3);
  });

  it("should refuse a float tensor that is not ternary, naming the element", async () => {
    const values = Float32Array.from([0.5, -0.5, 0, 0.25]);
    const bytes = writeGguf({
      metadata: [["general.architecture", gv.string("bitnet-b1.58")]],
      tensors: [{ name: "w", dims: [2, 2], typeId: 0, data: QUANT_TRAITS.f32.encode(values, 2, 2) }],
    });
    const gguf = readGgufBytes(bytes);
    const info = gguf.tensor("w");
    if (!info) {
      throw new Error("no tensor");
    }
    const r = await readTernaryWeight(gguf, info, ["ffn", "embed"]);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error).toBeInstanceOf(FormatError);
      expect(r.error.code).toBe("bad-value");
      expect(r.error.message).toContain("element 3 (row 1) is 0.25, not 0 or ±0.5");
    }
  });
});
