import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatInspectReport, inspectFile } from "../../src/cli/inspect.js";
import { makeBitnetFixture } from "../../src/model/bitnet/fixture.js";

let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "barbell-inspect-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("inspect", () => {
  it("should report architecture, hyperparameters, tokenizer, sizes and memory of a fixture", async () => {
    const path = join(dir, "fixture.gguf");
    await writeFile(path, makeBitnetFixture({ contextLength: 1024 }));
    const r = await inspectFile(path);
    expect(r.architecture).toBe("bitnet-b1.58");
    expect(r.hyperparameters["block_count"]).toBe(2);
    expect(r.hyperparameters["attention.head_count_kv"]).toBe(2);
    expect(r.tokenizer).toEqual({
      model: "gpt2",
      vocabSize: 300,
      mergesCount: 40,
      bosTokenId: 296,
      eosTokenId: 297,
      hasChatTemplate: false,
    });
    expect(r.tensors).toHaveLength(24);
    const projections = 2 * (128 * 128 * 2 + 128 * 64 * 2 + 3 * 128 * 256);
    expect(r.ternaryParameterCount).toBe(projections);
    expect(r.ternaryBitsPerWeight).toBeCloseTo(2 + (14 * 32 * 8) / projections, 6);
    expect(r.parameterCount).toBe(projections + 128 * 300 + 128 + 2 * (3 * 128 + 256));
    // 2 · layers · ctx · kvHeads · headDim · 4 bytes
    expect(r.memory.kvCacheBytes).toBe(2 * 2 * 1024 * 2 * 32 * 4);
    expect(r.memory.totalBytes).toBe(r.memory.weightBytes + 2 * 2 * 1024 * 2 * 32 * 4);
    expect(JSON.parse(JSON.stringify(r))).toEqual(r);
    const text = formatInspectReport(r);
    expect(text).toContain("bitnet-b1.58");
    expect(text).toContain("blk.1.ffn_down.weight");
    expect(text).toMatch(/i2_s\s+\[256, 128\]/);
  });
});
