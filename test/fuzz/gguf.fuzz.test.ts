import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FormatError } from "../../src/core/errors.js";
import { GGUF_VALUE_TYPE, gv, readGguf, readGgufBytes, writeGguf } from "../../src/formats/gguf/index.js";
import { Craft, sampleFile, sampleTensors } from "../gguf/craft.js";
import { FUZZ_RUNS as RUNS, fuzzTimeout } from "./budget.js";

const SEED = 0x5eed_b1b1;
/** Cost per case (ms) of each property at 200,000 cases with the fuzz files in parallel (test/fuzz/budget.ts). */
const MS_PER_CASE = { mutated: 0.15, crafted: 0.15 };

/** Parses and reads every tensor; only FormatError may escape. Returns the error code or "ok". */
async function parseAll(bytes: Uint8Array, viaSource = false): Promise<string> {
  try {
    const file = viaSource
      ? await readGguf({ size: bytes.length, read: (o, n) => Promise.resolve(bytes.slice(o, o + n)) })
      : readGgufBytes(bytes);
    for (const t of file.tensors) {
      const data = await file.tensorData(t);
      if (data.length !== t.byteSize) {
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
  sampleFile(),
  sampleFile(8),
  writeGguf({ metadata: [["general.architecture", gv.string("bitnet")]], tensors: sampleTensors().slice(0, 2) }),
];

const INTERESTING_U64 = [0n, 1n, 0x7fn, 0xffn, 1n << 31n, 1n << 32n, (1n << 53n) + 1n, 1n << 63n, (1n << 64n) - 1n];
const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff];

type Mutation = (b: Uint8Array) => Uint8Array;

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }).map(({ at, bit }) => (b: Uint8Array) => {
    const out = b.slice();
    const i = at % Math.max(1, out.length);
    out[i] = (out[i] ?? 0) ^ (1 << bit);
    return out;
  }),
  fc.record({ at: fc.nat(), n: fc.integer({ min: 1, max: 8 }), v: fc.constantFrom(...INTERESTING_BYTES) }).map(
    ({ at, n, v }) =>
      (b: Uint8Array) => {
        const out = b.slice();
        out.fill(v, at % Math.max(1, out.length), (at % Math.max(1, out.length)) + n);
        return out;
      },
  ),
  fc.record({ at: fc.nat(), v: fc.constantFrom(...INTERESTING_U64) }).map(({ at, v }) => (b: Uint8Array) => {
    const out = b.slice();
    if (out.length >= 8) {
      new DataView(out.buffer).setBigUint64(at % (out.length - 7), v, true);
    }
    return out;
  }),
  fc.nat().map((at) => (b: Uint8Array) => b.slice(0, at % (b.length + 1))),
  fc.record({ at: fc.nat(), ins: fc.uint8Array({ minLength: 1, maxLength: 16 }) }).map(
    ({ at, ins }) =>
      (b: Uint8Array) => {
    const i = at % (b.length + 1);
    const out = new Uint8Array(b.length + ins.length);
    out.set(b.subarray(0, i));
    out.set(ins, i);
    out.set(b.subarray(i), i + ins.length);
    return out;
  }),
  fc.record({ at: fc.nat(), n: fc.integer({ min: 1, max: 64 }) }).map(({ at, n }) => (b: Uint8Array) => {
    const i = at % (b.length + 1);
    const out = new Uint8Array(Math.max(0, b.length - n));
    out.set(b.subarray(0, i).subarray(0, out.length));
    out.set(b.subarray(i + n).subarray(0, Math.max(0, out.length - i)), Math.min(i, out.length));
    return out;
  }),
);

const u64Claim = fc.oneof(fc.constantFrom(...INTERESTING_U64), fc.bigInt({ min: 0n, max: 4096n }));

/** Crafted headers: plausible structure, hostile numbers. */
const crafted = fc
  .record({
    version: fc.constantFrom(1, 2, 3, 3, 3),
    kvs: fc.array(
      fc.oneof(
        fc.record({ kind: fc.constant("string" as const), claim: u64Claim, body: fc.uint8Array({ maxLength: 24 }) }),
        fc.record({
          kind: fc.constant("array" as const),
          item: fc.integer({ min: 0, max: 14 }),
          count: u64Claim,
          depth: fc.integer({ min: 0, max: 100 }),
        }),
        fc.record({ kind: fc.constant("align" as const), v: fc.nat(1 << 22) }),
      ),
      { maxLength: 4 },
    ),
    tensors: fc.array(
      fc.record({
        name: fc.string({ maxLength: 70 }),
        dims: fc.array(u64Claim, { maxLength: 6 }),
        type: fc.integer({ min: 0, max: 45 }),
        offset: fc.oneof(u64Claim, fc.bigInt({ min: 0n, max: 16n }).map((k) => k * 32n)),
      }),
      { maxLength: 4 },
    ),
    countDelta: fc.oneof(fc.constant(0n), u64Claim),
    dataBytes: fc.nat(4096),
  })
  .map((c) => {
    const w = new Craft().header({
      version: c.version,
      kvs: BigInt(c.kvs.length),
      tensors: c.countDelta === 0n ? BigInt(c.tensors.length) : c.countDelta,
    });
    c.kvs.forEach((kv, i) => {
      w.str(`k${i}`);
      if (kv.kind === "string") {
        w.u32(GGUF_VALUE_TYPE.string).str(kv.body, kv.claim);
      } else if (kv.kind === "align") {
        w.u32(GGUF_VALUE_TYPE.u32).u32(kv.v);
      } else {
        w.u32(GGUF_VALUE_TYPE.array);
        for (let d = 0; d < kv.depth; d++) {
          w.u32(GGUF_VALUE_TYPE.array).u64(1n);
        }
        w.u32(kv.item).u64(kv.count);
      }
    });
    for (const t of c.tensors) {
      w.tensorInfo(t.name, t.dims, t.type, t.offset);
    }
    return w.pad(32).bytes(new Uint8Array(c.dataBytes).fill(0x3c)).done();
  });

describe("GGUF reader fuzzing", () => {
  it("should either parse a mutated valid file or throw FormatError", async () => {
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
  }, fuzzTimeout(MS_PER_CASE.mutated));

  it("should either parse a crafted hostile header or throw FormatError", async () => {
    await fc.assert(
      fc.asyncProperty(crafted, async (bytes) => {
        await parseAll(bytes);
      }),
      { seed: SEED + 1, numRuns: RUNS },
    );
  }, fuzzTimeout(MS_PER_CASE.crafted));

  it("should reject claimed counts larger than the file without allocating for them", async () => {
    const claims: Uint8Array[] = [];
    for (const item of [GGUF_VALUE_TYPE.u8, GGUF_VALUE_TYPE.string, GGUF_VALUE_TYPE.array, GGUF_VALUE_TYPE.u64]) {
      for (const count of [1n << 20n, (1n << 24n) - 1n]) {
        claims.push(new Craft().header({ kvs: 1n }).str("k").u32(GGUF_VALUE_TYPE.array).u32(item).u64(count).done());
      }
    }
    claims.push(new Craft().header({ kvs: 1n << 20n }).done(), new Craft().header({ tensors: 1n << 20n }).done());
    const before = process.memoryUsage();
    for (let i = 0; i < 200; i++) {
      for (const bytes of claims) {
        expect(["implausible", "limit"]).toContain(await parseAll(bytes));
      }
    }
    const after = process.memoryUsage();
    // 2,000 parses of < 100-byte files: a reader that allocated per claimed item would use gigabytes.
    expect(after.arrayBuffers - before.arrayBuffers).toBeLessThan(16 << 20);
  });
});
