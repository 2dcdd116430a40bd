/**
 * `barbell dump` and `barbell diff` on the fixture models: two backends agree layer by layer, and a dump
 * changed at one layer is reported as diverging first at that layer, with its error norms.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { probeOnce } from "../../src/backends/registry.js";
import { PROVIDERS } from "../../src/backends/providers.js";
import { diffDumps, dumpActivations, readManifest } from "../../src/cli/dump.js";
import { buildProgram } from "../../src/cli/main.js";
import { decodeMessage, encodeTensorFrame } from "../../src/formats/barewire/index.js";
import { makeBitnetFixture } from "../../src/model/bitnet/fixture.js";

let dir = "";
let model = "";
const TOKENS = [1, 5, 9, 3, 7];

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "barbell-dump-"));
  model = path.join(dir, "m.gguf");
  await fs.writeFile(model, makeBitnetFixture({ seed: 21, layers: 2 }));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

async function cli(args: string[]): Promise<string> {
  let out = "";
  const io = {
    out: (t: string) => void (out += t),
    err: () => undefined,
    errIsTty: false,
    input: Readable.from([""]),
    signal: new AbortController().signal,
  };
  await buildProgram((l) => void (out += `${l}\n`), io).parseAsync(["node", "barbell", ...args]);
  return out;
}

const EXPECTED_ENTRIES = [
  "token_embd",
  "blk.0.attn_out",
  "blk.0.ffn_out",
  "blk.0.out",
  "blk.1.attn_out",
  "blk.1.ffn_out",
  "blk.1.out",
  "output_norm",
  "logits",
];

describe("barbell dump", () => {
  it("should write a manifest and one activation frame per traced tensor in forward order", async () => {
    const out = path.join(dir, "js");
    expect(await cli(["dump", "-m", model, "--tokens", TOKENS.join(","), "--out", out, "--backend", "js"])).toContain("wrote 9 tensors");
    const m = await readManifest(out);
    expect(m).toMatchObject({ model: "m.gguf", backend: "js", tokens: TOKENS, entries: EXPECTED_ENTRIES });
    const logits = decodeMessage(await fs.readFile(path.join(out, "8.bw")));
    expect(logits.ok && logits.value.kind === "tensor" ? logits.value.tensor.dims.map((d) => d.name) : []).toEqual(["seq", "vocab"]);
    expect(logits.ok && logits.value.kind === "tensor" ? logits.value.tensor.flags : -1).toBe(1);
  });
});

describe("barbell diff", () => {
  it("should find no divergence between a dump and itself", async () => {
    const a = path.join(dir, "self");
    await dumpActivations(model, TOKENS, a, { backends: ["js"] });
    const r = await diffDumps(a, a);
    expect(r.firstDivergence).toBeUndefined();
    expect(r.entries.every((e) => e.maxAbs === 0)).toBe(true);
    expect(await cli(["diff", a, a])).toContain("no divergence"); // and exit status 0 (no throw)
  });

  it("should name the first layer that diverges, with its error norms", async () => {
    const a = path.join(dir, "a");
    const b = path.join(dir, "b");
    await dumpActivations(model, TOKENS, a, { backends: ["js"] });
    await fs.cp(a, b, { recursive: true });
    const manifest = await readManifest(b);
    const at = manifest.entries.indexOf("blk.1.attn_out");
    const frame = decodeMessage(await fs.readFile(path.join(b, `${at}.bw`)));
    if (!frame.ok || frame.value.kind !== "tensor") {
      throw new Error("expected a tensor frame");
    }
    const values = new Float32Array(frame.value.tensor.payload.slice().buffer);
    values[3] = (values[3] ?? 0) + 10;
    await fs.writeFile(path.join(b, `${at}.bw`), encodeTensorFrame({ ...frame.value.tensor, payload: new Uint8Array(values.buffer) }));
    const r = await diffDumps(a, b);
    expect(r.firstDivergence?.name).toBe("blk.1.attn_out");
    expect(r.firstDivergence?.maxAbs).toBeCloseTo(10, 4);
    // Exit status 1 (commander error code barbell.diverged), after printing the report.
    let out = "";
    const io = { out: (t: string) => void (out += t), err: () => undefined, errIsTty: false, input: Readable.from([""]), signal: new AbortController().signal };
    const failed = buildProgram((l) => void (out += `${l}\n`), io).parseAsync(["node", "barbell", "diff", a, b]);
    await expect(failed).rejects.toMatchObject({ exitCode: 1, code: "barbell.diverged" });
    const text = out;
    expect(text).toContain("first divergence: blk.1.attn_out");
    expect(text).toMatch(/blk\.0\.out\s+0\.000e\+0/);
  });

  it("should report dumps of different shapes as diverging at the first tensor", async () => {
    const a = path.join(dir, "short");
    const b = path.join(dir, "long");
    await dumpActivations(model, TOKENS.slice(0, 2), a, { backends: ["js"] });
    await dumpActivations(model, TOKENS, b, { backends: ["js"] });
    const r = await diffDumps(a, b);
    expect(r.firstDivergence).toMatchObject({ name: "token_embd", comparable: false });
  });

  // webgpu included: the dump queues a device activation's readback inside the trace and awaits it after.
  for (const provider of PROVIDERS.filter((p) => p.name !== "js")) {
    it(`should find the ${provider.name} and js backends agreeing layer by layer`, async (ctx) => {
      const probe = await probeOnce(provider);
      if (!probe.available) {
        ctx.skip();
        return;
      }
      const a = path.join(dir, "ref");
      const b = path.join(dir, provider.name);
      await dumpActivations(model, TOKENS, a, { backends: ["js"] });
      await cli(["dump", "-m", model, "--tokens", TOKENS.join(","), "--out", b, "--backend", `${provider.name},js`]);
      const r = await diffDumps(a, b, 1e-4);
      expect(r.b.backend).toBe(`${provider.name}>js`);
      expect(r.entries.map((e) => e.name)).toEqual(EXPECTED_ENTRIES);
      expect(r.firstDivergence).toBeUndefined();
      expect(JSON.parse(await cli(["diff", a, b, "--json"])).entries).toHaveLength(EXPECTED_ENTRIES.length);
    });
  }
});
