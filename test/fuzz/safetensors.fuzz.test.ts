import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FormatError } from "../../src/core/errors.js";
import { readSafetensors, readSafetensorsBytes, writeSafetensors } from "../../src/formats/safetensors/index.js";
import { FUZZ_RUNS as RUNS, fuzzTimeout } from "./budget.js";
import { byteMutation, INTERESTING_U64, raw } from "./safetensors-mutations.js";

const SEED = 0x5afe_7e50;
/** Cost per case (ms) of each property at 200,000 cases with the fuzz files in parallel (test/fuzz/budget.ts). */
const MS_PER_CASE = { mutated: 0.15, crafted: 0.15 };

/** Parses and reads every tensor; only FormatError may escape. Returns the error code or "ok". */
async function parseAll(bytes: Uint8Array, viaSource = false): Promise<string> {
  try {
    const file = viaSource
      ? await readSafetensors({ size: bytes.length, read: (o, n) => Promise.resolve(bytes.slice(o, o + n)) })
      : await readSafetensorsBytes(bytes);
    for (const t of file.tensors) {
      const data = await file.tensorData(t);
      if (data.length !== t.byteSize || t.end > file.fileSize - file.dataOffset) {
        throw new Error(`tensor ${t.name} read ${data.length} of ${t.byteSize} bytes`);
      }
    }
    return "ok";
  } catch (e) {
    if (e instanceof FormatError) {
      return e.code;
    }
    throw e;
  }
}

const BASES = [
  writeSafetensors({
    tensors: [
      { name: "model.embed_tokens.weight", dtype: "BF16", shape: [4, 3], data: new Uint8Array(24).fill(1) },
      { name: "q.weight", dtype: "U8", shape: [1, 4], data: Uint8Array.of(0x24, 0x91, 0x66, 0x00) },
      { name: "q.weight_scale", dtype: "BF16", shape: [1], data: Uint8Array.of(0x80, 0x3f) },
      { name: "s", dtype: "F32", shape: [], data: new Uint8Array(4) },
      { name: "z", dtype: "I64", shape: [0, 5], data: new Uint8Array(0) },
    ],
    metadata: { format: "pt" },
  }),
  writeSafetensors({ tensors: [{ name: "x", dtype: "F16", shape: [2, 2], data: new Uint8Array(8) }], order: "given" }),
  raw(`{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}`, 16),
];

const dim = fc.oneof(fc.nat(8), fc.constantFrom(2 ** 31, 2 ** 32, 2 ** 53 - 1, 2 ** 53, -1, 1.5));
const offset = fc.oneof(fc.nat(64), fc.constantFrom(2 ** 53 - 1, 2 ** 53 + 2, -4, 0.5));
const dtype = fc.constantFrom("U8", "I8", "BF16", "F16", "F32", "F64", "F4", "F6_E2M3", "BOOL", "C64", "Q4", "", "f32");

const nested = (depth: number): string => `${"[".repeat(depth)}${"]".repeat(depth)}`;

/** Crafted headers: plausible structure, hostile numbers, names and nesting. */
const crafted = fc
  .record({
    tensors: fc.array(
      fc.record({
        name: fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom("__metadata__", "a", "__proto__", "constructor")),
        dtype,
        shape: fc.array(dim, { maxLength: 4 }),
        offsets: fc.oneof(fc.tuple(offset, offset).map((p) => [...p]), fc.array(offset, { maxLength: 3 })),
        extra: fc.boolean(),
      }),
      { maxLength: 5 },
    ),
    meta: fc.option(fc.dictionary(fc.string({ maxLength: 4 }), fc.oneof(fc.string({ maxLength: 4 }), fc.nat())), {
      nil: undefined,
    }),
    nest: fc.nat(40),
    duplicate: fc.boolean(),
    bufferBytes: fc.nat(96),
    claim: fc.option(fc.constantFrom(...INTERESTING_U64), { nil: undefined }),
    badUtf8: fc.boolean(),
  })
  .map((c) => {
    const parts = c.tensors.map(
      (t) =>
        `${JSON.stringify(t.name)}:{"dtype":${JSON.stringify(t.dtype)},"shape":${JSON.stringify(t.shape)},` +
        `"data_offsets":${JSON.stringify(t.offsets)}${t.extra ? `,"x":${nested(c.nest)}` : ""}}`,
    );
    if (c.meta !== undefined) {
      parts.push(`"__metadata__":${JSON.stringify(c.meta)}`);
    }
    if (c.duplicate && parts.length > 0) {
      parts.push(parts[0] ?? "");
    }
    const json = new TextEncoder().encode(`{${parts.join(",")}}`);
    if (c.badUtf8 && json.length > 2) {
      json[1] = 0xc3; // a lead byte followed by '"' is not UTF-8
    }
    return raw(json, c.bufferBytes, c.claim);
  });

describe("safetensors reader fuzzing", () => {
  it("should either parse a mutated valid file and read every tensor, or throw FormatError", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.nat(BASES.length - 1),
        fc.array(byteMutation, { minLength: 1, maxLength: 4 }),
        fc.boolean(),
        async (base, mutations, viaSource) => {
          const bytes = mutations.reduce((b, m) => m(b), BASES[base] ?? new Uint8Array());
          await parseAll(bytes, viaSource);
        },
      ),
      { seed: SEED, numRuns: RUNS },
    );
  }, fuzzTimeout(MS_PER_CASE.mutated));

  it("should either parse a crafted hostile header or throw FormatError", async () => {
    await fc.assert(
      fc.asyncProperty(crafted, async (bytes) => {
        await parseAll(bytes);
      }),
      { seed: SEED + 1, numRuns: RUNS },
    );
  }, fuzzTimeout(MS_PER_CASE.crafted));

  it("should reject a header length claim past the file or limit without reading or allocating for it", async () => {
    const claims = INTERESTING_U64.filter((n) => n > 64n).map((n) => raw("{}", 0, n));
    const before = process.memoryUsage();
    for (let i = 0; i < 500; i++) {
      for (const bytes of claims) {
        expect(["truncated", "limit"]).toContain(await parseAll(bytes, true));
      }
    }
    const after = process.memoryUsage();
    // 3,500 parses of 10-byte files: a reader that allocated the claimed header would use gigabytes.
    expect(after.arrayBuffers - before.arrayBuffers).toBeLessThan(16 << 20);
  });

  it("should reject JSON nested a million levels deep with a limit error, not a stack overflow", async () => {
    const deep = raw(`{"a":${"[".repeat(1_000_000)}${"]".repeat(1_000_000)}}`, 0);
    expect(await parseAll(deep)).toBe("limit");
  });
});
