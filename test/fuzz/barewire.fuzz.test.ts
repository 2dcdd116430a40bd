/**
 * Hostile BAREWire input: mutated valid frames and crafted ones (huge lengths, amplifying lists, bad tags,
 * truncations). The decoders return only typed errors (FormatError codes), never throw, never accept a
 * result over a stated limit, and finish (each case is bounded by its input length).
 */
import * as bare from "@bare-ts/lib";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FormatError } from "../../src/core/errors.js";
import {
  ChunkAssembler,
  MAX_DIM_NAME_BYTES,
  MAX_DUMP_ENTRIES,
  MAX_DUMP_TOKENS,
  MAX_NAME_BYTES,
  MAX_RANK,
  MAX_SCALES,
  WIRE_DTYPES,
  decodeMessage,
  decodeTensorView,
  encodeManifest,
  encodeTensorChunks,
  encodeTensorFrame,
  payloadBytes,
  type WireMessage,
} from "../../src/formats/barewire/index.js";
import * as gen from "../../src/formats/barewire/generated.js";
import { MANIFEST, everyDType, sampleTensor } from "../barewire/helpers.js";
import { FUZZ_RUNS as RUNS, fuzzTimeout } from "./budget.js";

const SEED = 0xba4e_0001;
/** Cost per case (ms) of each property at 200,000 cases with the fuzz files in parallel (test/fuzz/budget.ts). */
const MS_PER_CASE = { mutated: 0.3, crafted: 0.5 };

const CODES = new Set([
  "bad-magic",
  "bad-version",
  "truncated",
  "limit",
  "bad-tag",
  "trailing",
  "non-canonical",
  "bad-utf8",
  "bad-value",
  "bad-dims",
  "bad-tensor-type",
  "type-mismatch",
]);

/** Checks what a successful decode returned against the limits and the input it came from. */
function checkAccepted(m: WireMessage, input: Uint8Array): void {
  const enc = new TextEncoder();
  switch (m.kind) {
    case "tensor": {
      const t = m.tensor;
      expect(t.dims.length).toBeLessThanOrEqual(MAX_RANK);
      expect(t.scales.length).toBeLessThanOrEqual(MAX_SCALES);
      expect(enc.encode(t.name).length).toBeLessThanOrEqual(MAX_NAME_BYTES);
      expect(t.dims.every((d) => enc.encode(d.name).length <= MAX_DIM_NAME_BYTES)).toBe(true);
      expect(t.payload.length).toBe(payloadBytes(t.dtype, t.dims.map((d) => d.size)));
      expect(t.payload.buffer).toBe(input.buffer);
      expect(t.payload.byteOffset + t.payload.length).toBe(input.byteOffset + input.length);
      return;
    }
    case "tensor-chunk":
      expect(m.payload.byteOffset + m.payload.length).toBe(input.byteOffset + input.length);
      return;
    case "tensor-begin":
      expect(m.totalBytes).toBe(payloadBytes(m.header.dtype, m.header.dims.map((d) => d.size)));
      return;
    case "dump-manifest":
      expect(m.manifest.tokens.length).toBeLessThanOrEqual(MAX_DUMP_TOKENS);
      expect(m.manifest.entries.length).toBeLessThanOrEqual(MAX_DUMP_ENTRIES);
      return;
  }
}

/** Decodes with every entry point; returns "ok" or the error code. Anything thrown fails the test. */
function decodeAll(bytes: Uint8Array): string {
  const m = decodeMessage(bytes);
  const view = decodeTensorView(bytes, { dtype: "f32", dims: ["rows", "cols"] });
  if (!view.ok) {
    expect(view.error).toBeInstanceOf(FormatError);
    expect(CODES.has(view.error.code), view.error.message).toBe(true);
  }
  const a = new ChunkAssembler(1 << 20);
  const pushed = a.push(bytes);
  if (!pushed.ok) {
    expect(CODES.has(pushed.error.code)).toBe(true);
  }
  if (!m.ok) {
    expect(m.error).toBeInstanceOf(FormatError);
    expect(CODES.has(m.error.code), m.error.message).toBe(true);
    return m.error.code;
  }
  checkAccepted(m.value, bytes);
  return "ok";
}

const BASES: Uint8Array[] = [
  ...everyDType().map((t) => encodeTensorFrame({ ...t, dims: [{ name: "rows", size: 1 }, { name: "cols", size: 256 }], payload: t.payload.subarray(0, payloadBytes(t.dtype, [1, 256])) })),
  encodeTensorFrame(sampleTensor("f32", 2, 3)),
  encodeManifest(MANIFEST),
  ...encodeTensorChunks(sampleTensor("i8", 1, 9000), { chunkBytes: 4096, stream: 2 }),
];

const INTERESTING = [0x00, 0x01, 0x02, 0x3f, 0x40, 0x7f, 0x80, 0x81, 0xc0, 0xfe, 0xff];
/** LEB128 encodings of hostile lengths: 2^32 − 1, 2^53 − 1, 2^63 and an over-long run. */
const HUGE_UINTS = [
  [0xff, 0xff, 0xff, 0xff, 0x0f],
  [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f],
  [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
  [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
  [0x80, 0x00],
];

type Mutation = (b: Uint8Array) => Uint8Array;

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ at: fc.nat(), v: fc.constantFrom(...INTERESTING) }).map(({ at, v }) => (b: Uint8Array) => {
    const c = b.slice();
    c[at % Math.max(1, c.length)] = v;
    return c;
  }),
  fc.record({ at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }).map(({ at, bit }) => (b: Uint8Array) => {
    const c = b.slice();
    const i = at % Math.max(1, c.length);
    c[i] = (c[i] ?? 0) ^ (1 << bit);
    return c;
  }),
  fc.nat().map((n) => (b: Uint8Array) => b.slice(0, n % (b.length + 1))),
  fc.record({ at: fc.nat(), bytes: fc.uint8Array({ maxLength: 16 }) }).map(({ at, bytes }) => (b: Uint8Array) => {
    const i = at % (b.length + 1);
    return Uint8Array.from([...b.subarray(0, i), ...bytes, ...b.subarray(i)]);
  }),
  fc.record({ at: fc.nat(), n: fc.integer({ min: 1, max: 8 }) }).map(({ at, n }) => (b: Uint8Array) => {
    const i = at % (b.length + 1);
    return Uint8Array.from([...b.subarray(0, i), ...b.subarray(i + n)]);
  }),
  fc.record({ at: fc.integer({ min: 7, max: 80 }), huge: fc.constantFrom(...HUGE_UINTS), skip: fc.integer({ min: 0, max: 2 }) }).map(
    ({ at, huge, skip }) =>
      (b: Uint8Array) => {
        const i = Math.min(at, b.length);
        return Uint8Array.from([...b.subarray(0, i), ...huge, ...b.subarray(i + skip)]);
      },
  ),
);

/** A crafted frame: preamble, a tag, then a header of arbitrary pieces, pad and a claimed payload. */
const crafted: fc.Arbitrary<Uint8Array> = fc
  .record({
    tag: fc.constantFrom(0, 1, 2, 3, 4, 0x7f, 0x80),
    pieces: fc.array(
      fc.oneof(
        fc.constantFrom(...HUGE_UINTS).map((u) => Uint8Array.from(u)),
        fc.uint8Array({ maxLength: 12 }),
        fc.integer({ min: 0, max: 12 }).map((n) => Uint8Array.of(n)),
        fc.constant(Uint8Array.of(5, 0x72, 0x6f, 0x77, 0x73, 0x73)),
      ),
      { maxLength: 12 },
    ),
    tail: fc.integer({ min: 0, max: 200 }),
  })
  .map(({ tag, pieces, tail }) => {
    const head = [0x42, 0x57, 0x49, 0x52, 1, 0, tag, ...pieces.flatMap((p) => Array.from(p))];
    return Uint8Array.from([...head, ...new Array<number>(tail).fill(0)]);
  });

describe("BAREWire fuzz", () => {
  it("should accept every base frame", () => {
    expect(BASES.map((b) => decodeMessage(b).ok)).toEqual(BASES.map(() => true));
  });

  it("should return only typed errors for mutated valid frames", () => {
    fc.assert(
      fc.property(fc.constantFrom(...BASES), fc.array(mutation, { minLength: 1, maxLength: 4 }), (base, ms) => {
        decodeAll(ms.reduce((b, m) => m(b), base));
      }),
      { seed: SEED, numRuns: RUNS },
    );
  }, fuzzTimeout(MS_PER_CASE.mutated));

  it("should return only typed errors for crafted frames", () => {
    fc.assert(
      fc.property(crafted, (bytes) => {
        decodeAll(bytes);
      }),
      { seed: SEED + 1, numRuns: RUNS },
    );
  }, fuzzTimeout(MS_PER_CASE.crafted));

  it("should reject every truncation of every base frame", () => {
    for (const base of BASES) {
      for (let n = 0; n < base.length; n++) {
        expect(decodeAll(base.subarray(0, n))).not.toBe("ok");
      }
    }
  });

  it("should reject a header that declares a list of a trillion dimensions without reading past the input", () => {
    const frame = Uint8Array.from([0x42, 0x57, 0x49, 0x52, 1, 0, 0, 1, 0x78, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20, 1, 0x61, 1]);
    expect(decodeAll(frame)).toBe("truncated");
  });

  it("should reject a string length of 2^32 - 1 and a payload length of 2^53 - 1", () => {
    expect(decodeAll(Uint8Array.from([0x42, 0x57, 0x49, 0x52, 1, 0, 0, ...(HUGE_UINTS[0] ?? []), 0x61]))).not.toBe("ok");
    const f = encodeTensorFrame(sampleTensor("i8", 1, 3));
    const payloadLenAt = 63;
    const huge = Uint8Array.from([...f.subarray(0, payloadLenAt), ...(HUGE_UINTS[1] ?? []), ...f.subarray(64)]);
    expect(decodeAll(huge)).not.toBe("ok");
  });

  it("should reject a header longer than its limit before allocating for it", () => {
    const names = Array.from({ length: 40000 }, () => [1, 0x61]).flat();
    const frame = Uint8Array.from([0x42, 0x57, 0x49, 0x52, 1, 0, 3, 1, 0x61, 1, 0x62, 0, 0xc0, 0xb8, 0x02, ...names]);
    expect(decodeAll(frame)).toBe("limit");
  });

  it("should allocate nothing for a TensorBegin that declares a 2 GiB tensor", () => {
    const bc = new bare.ByteCursor(new Uint8Array(256), bare.Config({}));
    bare.writeFixedData(bc, Uint8Array.of(0x42, 0x57, 0x49, 0x52).buffer);
    bare.writeU16(bc, 1);
    bare.writeU8(bc, 1);
    const header = { name: "big", dtype: gen.DType.I8, dims: [{ name: "rows", size: 32768 }, { name: "cols", size: 65535 }], scales: new Float32Array(0), flags: 0 };
    gen.writeTensorBegin(bc, { stream: 0, header, totalBytes: 32768 * 65535, chunkBytes: 1 << 20 });
    const begin = bc.bytes.slice(0, bc.offset);
    const a = new ChunkAssembler();
    const r = a.push(begin);
    expect(r.ok && r.value).toBeUndefined();
    expect(a.pending).toBe(true);
    expect(new ChunkAssembler(1 << 30).push(begin).ok).toBe(false);
  });

  it("should give every dtype tag its own valid decode and reject the next one", () => {
    const f = encodeTensorFrame(sampleTensor("f32", 1, 256));
    const dtypeAt = 7 + 1 + "t.f32".length;
    for (let v = 0; v <= WIRE_DTYPES.length; v++) {
      const c = f.slice();
      c[dtypeAt] = v;
      const code = decodeAll(c);
      expect(v === WIRE_DTYPES.length ? code === "bad-tag" : code !== "bad-tag").toBe(true);
    }
  });
});
