// --kv-type (llama.cpp's -ctk/-ctv) on generate and serve's config: each value runs, a bad one is refused with a
// message naming the accepted ones.
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readServeConfig } from "../../src/cli/serve.js";
import { ServeError } from "../../src/serve/errors.js";
import { makeBitnetFixture } from "../../src/model/bitnet/fixture.js";
import { mainCli, runCli } from "./helpers.js";

let dir = "";
let model = "";
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "barbell-kv-type-"));
  model = path.join(dir, "m.gguf");
  // head dim 32: whole q8_0 blocks
  await fs.writeFile(model, makeBitnetFixture({ hidden: 128, layers: 1, ffn: 256, vocab: 300, contextLength: 64, seed: 9 }));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe("--kv-type", () => {
  it("should generate with each KV cache type", async () => {
    for (const kv of ["f32", "f16", "q8_0"]) {
      const { out } = await runCli(["generate", "-m", model, "--backend", "js", "--no-autotune", "--json", "-n", "4", "--temp", "0", "--kv-type", kv, "hello"]);
      expect((JSON.parse(out) as { tokens: number[] }).tokens.length, kv).toBeGreaterThan(0);
    }
  });

  it("should refuse an unknown type, naming the accepted ones", async () => {
    const run = await mainCli(["generate", "-m", model, "--kv-type", "q4_0", "hello"]);
    expect(run.code).not.toBe(0);
    expect(run.err).toMatch(/--kv-type.*f32, f16, q8_0/s);
    const worker = await mainCli(["worker", "--nats", "nats://127.0.0.1:1", "-m", model, "--kv-type", "q4_0"]);
    expect(worker.code).not.toBe(0);
    expect(worker.err).toMatch(/--kv-type.*f32, f16, q8_0/s);
  });

  it("should refuse an unknown --head policy, naming the accepted ones", async () => {
    for (const command of ["generate", "bench"]) {
      const run = await mainCli([command, "-m", model, "--head", "q4_k", ...(command === "generate" ? ["hello"] : [])]);
      expect(run.code, command).not.toBe(0);
      expect(run.err, command).toMatch(/--head.*auto, keep, q8_0/s);
    }
  });

  it("should take kvType in a serve config and refuse a bad one", async () => {
    const file = path.join(dir, "serve.json");
    await fs.writeFile(file, JSON.stringify({ models: [{ name: "m", path: model, kvType: "q8_0" }] }));
    expect((await readServeConfig(file)).models?.[0]?.kvType).toBe("q8_0");
    await fs.writeFile(file, JSON.stringify({ models: [{ name: "m", path: model, kvType: "q4_0" }] }));
    await expect(readServeConfig(file)).rejects.toThrow(ServeError);
    await expect(readServeConfig(file)).rejects.toThrow(/kvType must be one of f32, f16, q8_0/);
  });
});
