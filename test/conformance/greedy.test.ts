/**
 * End-to-end conformance: every available backend decodes the golden fixtures into the same greedy
 * token ids as the JS reference (test/engine/golden.test.ts holds the ids, checked against the
 * float64 oracle). Unavailable backends are skipped with their probe reason.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROVIDERS } from "../../src/backends/providers.js";
import { probeOnce } from "../../src/backends/registry.js";
import { loadModel } from "../../src/engine/model.js";
import { makeBitnetFixture, type BitnetFixtureOptions } from "../../src/model/bitnet/fixture.js";

const FIXTURES: [BitnetFixtureOptions, number[]][] = [
  [{ arch: "bitnet-b1.58", weightType: "i2_s", tied: false, seed: 101 }, [291, 89, 284, 14, 191, 50, 71, 113, 146, 14, 191, 50]],
  [{ arch: "bitnet", weightType: "i2_s", tied: false, seed: 107 }, [50, 150, 240, 244, 192, 224, 159, 250, 159, 262, 159, 262]],
  [
    { arch: "bitnet-b1.58", weightType: "tq2_0", hidden: 256, embeddingType: "q6_k", tied: false, seed: 102 },
    [155, 139, 138, 90, 235, 170, 65, 19, 136, 196, 136, 90],
  ],
];

let dir = "";
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "barbell-greedy-"));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

for (const provider of PROVIDERS) {
  describe(`${provider.name} end to end`, async () => {
    const probe = await probeOnce(provider);
    if (!probe.available) {
      it.skip(`${provider.name} is unavailable here: ${probe.reason}`, () => undefined);
      return;
    }
    it.each(FIXTURES)("should decode %o into the golden ids", async (opts, golden) => {
      const file = path.join(dir, `${provider.name}-${opts.seed ?? 0}.gguf`);
      await fs.writeFile(file, makeBitnetFixture(opts));
      using model = await loadModel(file, { backends: [provider.name, "js"], autotune: false });
      expect(model.backend).toBe(`${provider.name}>js`);
      const result = await model.generate([1, 2, 3, 4], { temperature: 0, maxTokens: golden.length }).complete();
      expect(result.tokens).toEqual(golden);
    });
  });
}
