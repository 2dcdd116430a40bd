import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FormatError } from "../../src/core/errors.js";
import { readSafetensors, readSafetensorsBytes, writeSafetensors } from "../../src/formats/safetensors/index.js";

const RUNS = Number(process.env.BARBELL_FUZZ_RUNS ?? 3000);
const SEED = 0x5afe_7e50;

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

/** A file from a raw header string, a buffer length and an optional false length claim. */
function raw(header: string | Uint8Array, bufferBytes: number, claim?: bigint): Uint8Array {
  const json = typeof header === "string" ? new TextEncoder().encode(header) : header;
  const out = new Uint8Array(8 + json.length + bufferBytes);
  new DataView(out.buffer).setBigUint64(0, claim ?? BigInt(json.length), true);
  out.set(json, 8);
  return out.fill(0x3c, 8 + json.length);
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

const INTERESTING_U64 = [0n, 1n, 7n, 0xffn, 1n << 31n, 1n << 32n, 100_000_001n, (1n << 53n) + 1n, (1n << 64n) - 1n];
const INTERESTING_BYTES = [0x00, 0x20, 0x22, 0x2c, 0x30, 0x39, 0x5b, 0x5d, 0x7b, 0x7d, 0x80, 0xc0, 0xff];

const NUMBER_TEXTS = ["0", "1", "2", "4", "9007199254740993", "-1", "1e3", "1".repeat(21)];

type Mutation = (b: Uint8Array) => Uint8Array;

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }).map(({ at, bit }) => (b: Uint8Array) => {
    const out = b.slice();
    const i = at % Math.max(1, out.length);
    out[i] = (out[i] ?? 0) ^ (1 << bit);
    return out;
  }),
  fc.record({ at: fc.nat(), v: fc.constantFrom(...INTERESTING_BYTES) }).map(({ at, v }) => (b: Uint8Array) => {
    const out = b.slice();
    out[at % Math.max(1, out.length)] = v;
    return out;
  }),
  fc.constantFrom(...INTERESTING_U64).map((v) => (b: Uint8Array) => {
    const out = b.slice();
    if (out.length >= 8) {
      new DataView(out.buffer).setBigUint64(0, v, true);
    }
    return out;
  }),
  // Rewrite one decimal number in the header: offsets and dims are where the validation lives.
  fc.record({ which: fc.nat(), v: fc.constantFrom(...NUMBER_TEXTS) })
    .map(({ which, v }) => (b: Uint8Array) => {
      const text = new TextDecoder("latin1").decode(b); // one character per byte, so indices are byte offsets
      const numbers = [...text.matchAll(/[0-9]+/g)].filter((m) => (m.index ?? 0) > 8);
      const m = numbers[which % Math.max(1, numbers.length)];
      if (m === undefined) {
        return b;
      }
      const start = m.index ?? 0;
      const out = new Uint8Array(b.length - m[0].length + v.length);
      out.set(b.subarray(0, start));
      out.set(new TextEncoder().encode(v), start);
      out.set(b.subarray(start + m[0].length), start + v.length);
      return out;
    }),
  fc.nat().map((at) => (b: Uint8Array) => b.slice(0, at % (b.length + 1))),
  fc.record({ at: fc.nat(), ins: fc.uint8Array({ minLength: 1, maxLength: 16 }) })
    .map(({ at, ins }) => (b: Uint8Array) => {
    const i = at % (b.length + 1);
    const out = new Uint8Array(b.length + ins.length);
    out.set(b.subarray(0, i));
    out.set(ins, i);
    out.set(b.subarray(i), i + ins.length);
    return out;
  }),
);

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
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        fc.boolean(),
        async (base, mutations, viaSource) => {
          const bytes = mutations.reduce((b, m) => m(b), BASES[base] ?? new Uint8Array());
          await parseAll(bytes, viaSource);
        },
      ),
      { seed: SEED, numRuns: RUNS },
    );
  });

  it("should either parse a crafted hostile header or throw FormatError", async () => {
    await fc.assert(
      fc.asyncProperty(crafted, async (bytes) => {
        await parseAll(bytes);
      }),
      { seed: SEED + 1, numRuns: RUNS },
    );
  });

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
