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
import { GOLDEN_FIXTURES, GOLDEN_PROMPT } from "./golden-fixtures.js";

/** Backends whose memory is a device's: they run a k-quant head in float (golden-fixtures.ts). */
const DEVICE_BACKENDS: ReadonlySet<string> = new Set(["webgpu", "cuda"]);
const fixtures = (device: boolean): [BitnetFixtureOptions, number[]][] =>
  GOLDEN_FIXTURES.map(([opts, ids, deviceIds]) => [opts, [...((device ? deviceIds : undefined) ?? ids)]]);

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
      if (provider.name === "webgpu" && process.env["BARBELL_REQUIRE_WEBGPU"] === "1") {
        // CI installs Dawn and SwiftShader (scripts/install-webgpu.sh): a missing adapter is a failure there.
        it("webgpu is required (BARBELL_REQUIRE_WEBGPU=1)", () => {
          throw new Error(`webgpu is unavailable: ${probe.reason}`);
        });
        return;
      }
      it.skip(`${provider.name} is unavailable here: ${probe.reason}`, () => undefined);
      return;
    }
    it.each(fixtures(DEVICE_BACKENDS.has(provider.name)))("should decode %o into the golden ids", async (opts, golden) => {
      const file = path.join(dir, `${provider.name}-${opts.seed ?? 0}.gguf`);
      await fs.writeFile(file, makeBitnetFixture(opts));
      using model = await loadModel(file, { backends: [provider.name, "js"], autotune: false });
      expect(model.backend).toBe(`${provider.name}>js`);
      const result = await model.generate([...GOLDEN_PROMPT], { temperature: 0, maxTokens: golden.length }).complete();
      expect(result.tokens).toEqual(golden);
    });
  });
}
