import { describe, expect, it } from "vitest";
import { FormatError } from "../../src/index.js";
import { gv, readGgufBytes, writeGguf } from "../../src/formats/gguf/index.js";

/** A file with one [256, 4] tensor written as `typeId`, whose stored type id is then patched to 36. */
function fileWithId36(arch: string, writtenAs: number, bytes: number): Uint8Array {
  const file = writeGguf({
    metadata: [["general.architecture", gv.string(arch)]],
    tensors: [{ name: "w", dims: [256, 4], typeId: writtenAs, data: new Uint8Array(bytes) }],
  });
  // Tensor info: name "w" (u64 length 1 + 'w'), n_dims u32, 2 × u64 dims, then the u32 type id.
  const view = new DataView(file.buffer, file.byteOffset);
  for (let at = 0; at + 4 < file.length; at++) {
    if (view.getBigUint64(at, true) === 1n && file[at + 8] === 0x77 && view.getUint32(at + 9, true) === 2) {
      view.setUint32(at + 9 + 4 + 16, 36, true);
      return file;
    }
  }
  throw new Error("tensor info not found");
}

describe("type id 36", () => {
  it("should read id 36 as I2_S when the bytes fit I2_S", () => {
    const t = readGgufBytes(fileWithId36("bitnet-b1.58", 36, (256 * 4) / 4 + 32)).tensor("w");
    expect(t?.typeName).toBe("i2_s");
    expect(t?.typeInterpretation).toContain("bitnet.cpp I2_S");
  });

  it("should read id 36 as mainline IQ4_NL_4_4 when the bytes fit only that, and say why", () => {
    const t = readGgufBytes(fileWithId36("llama", 2, (256 * 4 * 18) / 32)).tensor("w");
    expect(t?.typeName).toBe("iq4_nl_4_4");
    expect(t?.byteSize).toBe(576);
    expect(t?.typeInterpretation).toContain("not I2_S (288 bytes)");
  });

  it("should refuse an id 36 tensor whose bytes fit neither layout", () => {
    expect(() => readGgufBytes(fileWithId36("llama", 0, 256 * 4 * 4))).toThrow(FormatError);
    expect(() => readGgufBytes(fileWithId36("llama", 0, 256 * 4 * 4))).toThrow(/fit neither I2_S \(288 bytes\) nor IQ4_NL_4_4 \(576 bytes\)/);
  });
});
