import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FormatError, UsageError } from "../../src/index.js";
import { loadModel } from "../../src/engine/model.js";
import { readGgufBytes, writeGguf, type GgufTensorInput } from "../../src/formats/gguf/index.js";
import { makeBitnetFixture } from "../../src/model/bitnet/fixture.js";
import { QUANT_TRAITS } from "../../src/quant/table.js";
import { referenceLogits } from "../reference/forward64.js";

let dir = "";
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "barbell-files-"));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

/** Rewrites a fixture: drop metadata keys and replace tensors. */
async function rewrite(
  name: string,
  source: Uint8Array,
  dropKeys: (key: string) => boolean,
  replace: (t: GgufTensorInput) => GgufTensorInput = (t) => t,
): Promise<{ file: string; bytes: Uint8Array }> {
  const gguf = readGgufBytes(source);
  const tensors: GgufTensorInput[] = [];
  for (const info of gguf.tensors) {
    tensors.push(replace({ name: info.name, dims: info.dims, typeId: info.typeId, data: await gguf.tensorData(info) }));
  }
  const bytes = writeGguf({ metadata: [...gguf.metadata.entries()].filter(([k]) => !dropKeys(k)), tensors });
  const file = path.join(dir, name);
  await fs.writeFile(file, bytes);
  return { file, bytes };
}

function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += ((a[i] ?? 0) - (b[i] ?? 0)) ** 2;
    den += (b[i] ?? 0) ** 2;
  }
  return Math.sqrt(num / den);
}

describe("model files", () => {
  it("should load a GGUF without tokenizer metadata for token-level use only", async () => {
    const { file } = await rewrite("no-tokenizer.gguf", makeBitnetFixture({ seed: 41 }), (k) => k.startsWith("tokenizer."));
    using model = await loadModel(file);
    expect(model.tokenizer).toBeUndefined();
    const [logits] = await model.logits([1, 2]);
    expect(logits).toHaveLength(300);
    expect(() => model.generate("text")).toThrow(UsageError);
    expect(() => model.generate("text")).toThrow(/has no tokenizer; pass token ids/);
    const r = await model.generate([1, 2], { temperature: 0, maxTokens: 3 }).complete();
    expect(r.tokens).toHaveLength(3);
  });

  it("should refuse non-ternary float projections unless asked to run them as floats", async () => {
    const f32 = makeBitnetFixture({ weightType: "f32", seed: 42 });
    const { file, bytes } = await rewrite(
      "float.gguf",
      f32,
      () => false,
      (t) =>
        t.name === "blk.0.attn_q.weight"
          ? { ...t, data: QUANT_TRAITS.f32.encode(Float32Array.from({ length: 128 * 128 }, (_, i) => Math.sin(i) * 0.03), 128, 128) }
          : t,
    );
    await expect(loadModel(file)).rejects.toThrow(FormatError);
    await expect(loadModel(file)).rejects.toThrow(/blk\.0\.attn_q\.weight.*allowFloatWeights/);
    using model = await loadModel(file, { allowFloatWeights: true });
    const got = await model.logits([5, 6, 7], { all: true });
    expect(got.every((row) => row.every(Number.isFinite))).toBe(true);
    // Only q runs in float; the rest still quantizes activations, so compare with the quantized reference loosely.
    const ref = await referenceLogits(bytes, [5, 6, 7], { quantizeActivations: true });
    expect(relL2(got[2] ?? [], ref[2] ?? [])).toBeLessThan(0.05);
  });

  it("should fold per-tensor .scale tensors into the projections, as the reference applies them", async () => {
    const source = makeBitnetFixture({ seed: 44, tied: false });
    const gguf = readGgufBytes(source);
    const tensors: GgufTensorInput[] = [];
    for (const info of gguf.tensors) {
      tensors.push({ name: info.name, dims: info.dims, typeId: info.typeId, data: await gguf.tensorData(info) });
    }
    const scale = (name: string, v: number): GgufTensorInput => ({
      name,
      dims: [1],
      typeId: 0,
      data: QUANT_TRAITS.f32.encode(Float32Array.of(v), 1, 1),
    });
    tensors.push(scale("blk.0.attn_q.scale", 3), scale("blk.1.ffn_down.scale", 0.25));
    const bytes = writeGguf({ metadata: [...gguf.metadata.entries()], tensors });
    const file = path.join(dir, "scaled.gguf");
    await fs.writeFile(file, bytes);
    const plainFile = path.join(dir, "plain.gguf");
    await fs.writeFile(plainFile, source);
    using model = await loadModel(file);
    using plain = await loadModel(plainFile);
    const got = await model.logits([7, 8, 9], { all: true });
    const ref = await referenceLogits(bytes, [7, 8, 9], { quantizeActivations: true });
    const base = await plain.logits([7, 8, 9], { all: true });
    for (let p = 0; p < 3; p++) {
      expect(relL2(got[p] ?? [], ref[p] ?? [])).toBeLessThan(1e-4);
    }
    expect(relL2(got[2] ?? [], base[2] ?? [])).toBeGreaterThan(1e-3);
  });

  it("should chat through a Jinja template when asked", async () => {
    const file = path.join(dir, "chat.gguf");
    await fs.writeFile(file, makeBitnetFixture({ seed: 43 }));
    using model = await loadModel(file);
    const template = "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}";
    const viaTemplate = await model
      .chat([{ role: "user", content: "hello there" }], { format: "template", template, temperature: 0, maxTokens: 3 })
      .complete();
    expect(viaTemplate.promptTokens).toBe(model.tokenize("user: hello there\nassistant:", { addBos: false }).length);
    await expect(async () => model.chat([{ role: "user", content: "x" }], { format: "template", template: "{% if %}" })).rejects.toThrow(
      FormatError,
    );
  });
});

describe("output head requantization", () => {
  it("should run a Q8_0 copy of a float head with logits close to the original, in less memory", async () => {
    const file = path.join(dir, "head.gguf");
    await fs.writeFile(file, makeBitnetFixture({ seed: 45, embeddingType: "f16", tied: false }));
    using f16 = await loadModel(file);
    using q8 = await loadModel(file, { headType: "q8_0" });
    const a = await f16.logits([3, 1, 4, 1, 5], { all: true });
    const b = await q8.logits([3, 1, 4, 1, 5], { all: true });
    for (let p = 0; p < 5; p++) {
      const err = relL2(b[p] ?? [], a[p] ?? []);
      expect(err).toBeGreaterThan(0);
      expect(err).toBeLessThan(0.01);
    }
  });

  it("should refuse --head q6_k for rows its blocks do not divide with a typed bad-dims error, natively and on the JS backend", async () => {
    const file = path.join(dir, "narrow-head.gguf");
    await fs.writeFile(file, makeBitnetFixture({ seed: 47, embeddingType: "f16", hidden: 128, tied: false }));
    for (const backends of [undefined, ["js"] as const]) {
      const e = await loadModel(file, { headType: "q6_k", ...(backends === undefined ? {} : { backends }) }).then(
        (m) => (m.dispose(), undefined),
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(FormatError);
      expect((e as FormatError).code).toBe("bad-dims");
      expect((e as FormatError).message).toMatch(/rows of 128 cannot be requantized to q6_k \(needs a multiple of 256\)/);
    }
    // The default (auto) neither fails nor requantizes such a head: too small, and Q6_K cannot hold its rows.
    using auto = await loadModel(file);
    expect((await auto.logits([3, 1]))[0]?.every(Number.isFinite)).toBe(true);
  });

  it("should requantize a tied head once, serving the embedding lookups too", async () => {
    const file = path.join(dir, "tied-head.gguf");
    await fs.writeFile(file, makeBitnetFixture({ seed: 46, embeddingType: "f16" }));
    using q8 = await loadModel(file, { headType: "q8_0" });
    const [logits] = await q8.logits([7, 8]);
    expect(logits?.every(Number.isFinite)).toBe(true);
  });
});
