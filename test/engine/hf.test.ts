import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FormatError } from "../../src/index.js";
import { loadModel } from "../../src/engine/model.js";
import { makeBitnetFixture } from "../../src/model/bitnet/fixture.js";
import { writeHfBitnetFixture, type HfBitnetFixtureOptions } from "../../src/model/bitnet/hf-fixture.js";

let dir = "";
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "barbell-hf-"));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += ((a[i] ?? 0) - (b[i] ?? 0)) ** 2;
    den += (b[i] ?? 0) ** 2;
  }
  return Math.sqrt(num / den);
}

describe("Hugging Face folders", () => {
  const layouts: [string, HfBitnetFixtureOptions][] = [
    ["packed", { layout: "packed", scaleDtype: "F32", floatDtype: "F32" }],
    ["packed, sharded", { layout: "packed", scaleDtype: "F32", floatDtype: "F32", shards: 3 }],
    ["packed, bitlinear scales", { layout: "packed", scaleDtype: "F32", floatDtype: "F32", linearClass: "bitlinear" }],
  ];
  it.each(layouts)("should give the logits of the GGUF with the same seed (%s)", async (name, opts) => {
    const folder = path.join(dir, name.replace(/[^a-z]+/g, "-"));
    await fs.mkdir(folder);
    await writeHfBitnetFixture(folder, { ...opts, seed: 31 });
    const gguf = path.join(dir, `${name.replace(/[^a-z]+/g, "-")}.gguf`);
    await fs.writeFile(gguf, makeBitnetFixture({ seed: 31, embeddingType: "f32" }));
    using hf = await loadModel(folder);
    using ref = await loadModel(gguf);
    expect(hf.config.arch).toBe("bitnet-b1.58");
    expect(hf.tokenizer).toBeUndefined();
    const a = await hf.logits([1, 2, 3], { all: true });
    const b = await ref.logits([1, 2, 3], { all: true });
    for (let p = 0; p < 3; p++) {
      expect(relL2(a[p] ?? [], b[p] ?? [])).toBeLessThan(1e-3);
    }
  });

  it("should load bf16 master weights by ternarizing them", async () => {
    const folder = path.join(dir, "master");
    await fs.mkdir(folder);
    await writeHfBitnetFixture(folder, { layout: "master", seed: 32 });
    using model = await loadModel(folder);
    const [logits] = await model.logits([5]);
    expect(logits?.every(Number.isFinite)).toBe(true);
  });

  it("should refuse a folder whose config.json is broken, naming the field", async () => {
    const folder = path.join(dir, "broken");
    await fs.mkdir(folder);
    await writeHfBitnetFixture(folder, { seed: 33 });
    const config = JSON.parse(await fs.readFile(path.join(folder, "config.json"), "utf8")) as Record<string, unknown>;
    await fs.writeFile(path.join(folder, "config.json"), JSON.stringify({ ...config, hidden_act: "gelu" }));
    await expect(loadModel(folder)).rejects.toThrow(FormatError);
    await expect(loadModel(folder)).rejects.toThrow(/hidden_act/);
  });
});
