/**
 * Golden greedy token ids, one fixture per arch and weight type. Each golden list was checked against
 * the independent float64 reference when it was recorded, and the test re-checks that agreement, so a
 * change in the engine or in the reference shows up as a failure here.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadModel } from "../../src/engine/model.js";
import { makeBitnetFixture, type BitnetFixtureOptions } from "../../src/model/bitnet/fixture.js";
import { referenceLogits } from "../reference/forward64.js";

const PROMPT = [1, 2, 3, 4];

const GOLDEN: [BitnetFixtureOptions, number[]][] = [
  [{ arch: "bitnet-b1.58", weightType: "i2_s", tied: false, seed: 101 }, [291, 89, 284, 14, 191, 50, 71, 113, 146, 14, 191, 50]],
  [
    { arch: "bitnet-b1.58", weightType: "tq2_0", hidden: 256, embeddingType: "q6_k", tied: false, seed: 102 },
    [155, 139, 138, 90, 235, 170, 65, 19, 136, 196, 136, 90],
  ],
  [
    { arch: "bitnet-b1.58", weightType: "tq1_0", hidden: 256, embeddingType: "q8_0", tied: false, seed: 103 },
    [251, 271, 246, 228, 31, 123, 291, 103, 143, 67, 1, 291],
  ],
  [{ arch: "bitnet-25", weightType: "f16", tied: false, seed: 104 }, [226, 64, 244, 155, 22, 244, 155, 22, 150, 31, 64, 244]],
  [{ arch: "bitnet", weightType: "i2_s", tied: false, seed: 107 }, [50, 150, 240, 244, 192, 224, 159, 250, 159, 262, 159, 262]],
  [
    { arch: "bitnet", weightType: "f32", embeddingType: "f32", tied: false, seed: 106 },
    [190, 179, 255, 89, 203, 31, 262, 167, 227, 167, 84, 46],
  ],
];

let dir = "";
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "barbell-golden-"));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) {
    if ((values[i] ?? -Infinity) > (values[best] ?? -Infinity)) {
      best = i;
    }
  }
  return best;
}

describe("golden greedy decoding", () => {
  it.each(GOLDEN)("should decode %o into its golden ids, as the float64 reference does", async (opts, golden) => {
    const bytes = makeBitnetFixture(opts);
    const file = path.join(dir, `${opts.seed ?? 0}.gguf`);
    await fs.writeFile(file, bytes);
    using model = await loadModel(file);
    const result = await model.generate(PROMPT, { temperature: 0, maxTokens: golden.length }).complete();
    expect(result.tokens).toEqual(golden);
    const logits = await referenceLogits(bytes, [...PROMPT, ...golden.slice(0, -1)], { quantizeActivations: true });
    const referenceIds = logits.slice(PROMPT.length - 1).map(argmax);
    expect(referenceIds).toEqual(golden);
  });
});
