import { describe, expect, it } from "vitest";
import {
  allGgmlTypes,
  ggmlTensorBytes,
  ggmlTypeById,
  quantTraitsFor,
  resolveGgmlType,
} from "../../src/formats/gguf/index.js";
import { QUANT_TRAITS } from "../../src/quant/table.js";

describe("ggml type table", () => {
  it("should size every decodable type exactly as the quant table does", () => {
    for (const traits of Object.values(QUANT_TRAITS)) {
      if (traits.ggmlType === undefined) {
        continue;
      }
      const info = ggmlTypeById(traits.ggmlType);
      expect(info?.name, traits.name).toBe(traits.name);
      for (const [rows, cols] of [[1, 256], [3, 512], [7, 2560]] as const) {
        if (info !== undefined) {
          expect(ggmlTensorBytes(info, [cols, rows]), traits.name).toBe(traits.byteSize(rows, cols));
        }
      }
    }
  });

  it("should size i2_s as elements / 4 + 32 and tl2 with bitnet.cpp's formula", () => {
    const i2s = resolveGgmlType(36, { architecture: "bitnet-b1.58" });
    expect(i2s?.info.name).toBe("i2_s");
    expect(i2s && ggmlTensorBytes(i2s.info, [2560, 6912])).toBe(4_423_680 + 32);
    const tl2 = resolveGgmlType(39, { architecture: "bitnet" });
    expect(tl2?.info.name).toBe("tl2");
    expect(tl2?.info.portable).toBe(false);
    // ((1536 − 256) · 4096 / 3 · 5 / 8 + 64 · 4096) rounded up to 32, + 32
    expect(tl2 && ggmlTensorBytes(tl2.info, [1536, 4096])).toBe(1_354_432 + 32);
  });

  it("should read id 39 as MXFP4 unless the architecture is a BitNet one, and say why", () => {
    const mx = resolveGgmlType(39, { architecture: "llama" });
    expect(mx?.info.name).toBe("mxfp4");
    expect(mx?.interpretation).toMatch(/llama/);
    expect(resolveGgmlType(39, { architecture: undefined })?.info.name).toBe("mxfp4");
    expect(resolveGgmlType(39, { architecture: "bitnet-25" })?.interpretation).toMatch(/TL2.*bitnet-25/);
  });

  it("should not know ids 4, 5, 37 or 43", () => {
    for (const id of [4, 5, 37, 43, 1000]) {
      expect(resolveGgmlType(id, { architecture: "bitnet" })).toBeUndefined();
    }
  });

  it("should give a decoder only for types barbell can decode", () => {
    expect(quantTraitsFor({ typeId: 36, typeName: "i2_s" })?.name).toBe("i2_s");
    expect(quantTraitsFor({ typeId: 12, typeName: "q4_k" })?.name).toBe("q4_k");
    expect(quantTraitsFor({ typeId: 11, typeName: "q3_k" })).toBeUndefined();
    expect(quantTraitsFor({ typeId: 39, typeName: "tl2" })).toBeUndefined();
    expect(new Set(allGgmlTypes().map((t) => `${t.id}:${t.name}`)).size).toBe(allGgmlTypes().length);
  });
});
