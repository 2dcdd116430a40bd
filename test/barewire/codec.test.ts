/** Encoding and decoding BAREWire frames: round trips, alignment, zero-copy views, chunking and limits. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  ChunkAssembler,
  MAX_RANK,
  PAYLOAD_ALIGNMENT,
  WIRE_DTYPES,
  decodeMessage,
  encodeManifest,
  encodeTensorChunks,
  encodeTensorFrame,
  encodeTensorFrameParts,
  payloadBytes,
  uintBytes,
  type WireTensor,
} from "../../src/formats/barewire/index.js";
import { MANIFEST, everyDType, sampleTensor } from "./helpers.js";

function decodeTensorOf(frame: Uint8Array): WireTensor {
  const m = decodeMessage(frame);
  if (!m.ok || m.value.kind !== "tensor") {
    throw new Error("expected a tensor frame");
  }
  return m.value.tensor;
}

describe("BAREWire tensor frames", () => {
  it.each(everyDType().map((t) => [t.dtype, t] as const))("should round-trip a %s tensor byte for byte", (_, t) => {
    const back = decodeTensorOf(encodeTensorFrame(t));
    expect({ ...back, payload: Array.from(back.payload) }).toEqual({ ...t, payload: Array.from(t.payload) });
  });

  it("should start every payload on a 64-byte boundary of the frame", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), fc.integer({ min: 1, max: 300 }), (name, cols) => {
        const t = { ...sampleTensor("i8", 1, cols), name };
        const frame = encodeTensorFrame(t);
        const back = decodeTensorOf(frame);
        expect(back.payload.byteOffset % PAYLOAD_ALIGNMENT).toBe(0);
        expect(frame.length - back.payload.length).toBe(back.payload.byteOffset);
      }),
      { seed: 5, numRuns: 300 },
    );
  });

  it("should return the payload as a view into the input, not a copy", () => {
    const frame = encodeTensorFrame(sampleTensor("f32", 4, 64));
    const back = decodeTensorOf(frame);
    expect(back.payload.buffer).toBe(frame.buffer);
  });

  it("should decode a frame inside a Node Buffer pool slice the same as a plain array", () => {
    const frame = encodeTensorFrame(sampleTensor("ternary", 2, 12));
    const pooled = Buffer.concat([Buffer.alloc(3), Buffer.from(frame)]).subarray(3);
    const back = decodeTensorOf(pooled);
    expect(back.scales).toEqual([0.5]);
    expect(Array.from(back.payload)).toEqual(Array.from(decodeTensorOf(frame).payload));
    expect(decodeMessage(Buffer.from(encodeManifest(MANIFEST)))).toEqual({ ok: true, value: { kind: "dump-manifest", manifest: MANIFEST } });
  });

  it("should make a head and payload whose concatenation is the one-piece frame", () => {
    const t = sampleTensor("bf16", 3, 32);
    const parts = encodeTensorFrameParts(t);
    expect(parts.payload).toBe(t.payload);
    expect(Array.from(Buffer.concat([parts.head, parts.payload]))).toEqual(Array.from(encodeTensorFrame(t)));
  });

  it("should refuse to encode a payload whose length the dtype and shape do not imply", () => {
    const t = sampleTensor("f32", 2, 4);
    expect(() => encodeTensorFrame({ ...t, payload: t.payload.subarray(1) })).toThrow(/payload bytes/);
  });

  it("should refuse to encode a header over a limit or against a rule", () => {
    const t = sampleTensor("f32", 1, 4);
    const dims = Array.from({ length: MAX_RANK + 1 }, (_, i) => ({ name: `d${i}`, size: 1 }));
    expect(() => encodeTensorFrame({ ...t, dims: [...dims.slice(0, -1), { name: "cols", size: 4 }, ...dims.slice(-1)] })).toThrow(/limit/);
    expect(() => encodeTensorFrame({ ...t, scales: [1] })).toThrow(/scale/);
    expect(() => encodeTensorFrame({ ...t, flags: 2 })).toThrow(/flags/);
    expect(() => encodeTensorFrame({ ...t, dims: [{ name: "", size: 1 }, { name: "cols", size: 4 }] })).toThrow(/no name/);
    expect(() => encodeTensorFrame(sampleTensor("ternary", 1, 4)).length).not.toThrow();
    expect(() => encodeTensorFrame({ ...sampleTensor("ternary", 1, 4), scales: [Number.NaN] })).toThrow(/finite/);
  });

  it("should size every dtype's payload from the storage and block tables", () => {
    expect(payloadBytes("f32", [2, 3])).toBe(24);
    expect(payloadBytes("ternary", [2, 6])).toBe(4);
    expect(payloadBytes("binary", [1, 40])).toBe(8);
    expect(payloadBytes("q8_0", [1, 32])).toBe(34);
    expect(payloadBytes("i2_s", [1, 128])).toBe(64);
    expect(payloadBytes("q8_0", [1, 33])).toBeUndefined();
    expect(WIRE_DTYPES.every((d) => payloadBytes(d, [2, 256]) !== undefined)).toBe(true);
  });

  it("should count the bytes of a canonical uint", () => {
    expect([0, 127, 128, 16383, 16384, 2 ** 53 - 1].map(uintBytes)).toEqual([1, 1, 2, 2, 3, 8]);
  });
});

describe("BAREWire chunked tensors", () => {
  it("should reassemble a tensor sent in chunks into the original bytes", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5000 }), fc.integer({ min: 4096, max: 20000 }), (cols, chunkBytes) => {
        const t = sampleTensor("f32", 2, cols);
        const frames = encodeTensorChunks(t, { chunkBytes, stream: 9 });
        expect(frames.length).toBe(1 + Math.ceil(t.payload.length / chunkBytes));
        const a = new ChunkAssembler();
        let got: WireTensor | undefined;
        for (const f of frames) {
          const r = a.push(f);
          expect(r.ok).toBe(true);
          got = r.ok ? r.value : undefined;
        }
        expect(a.pending).toBe(false);
        expect(got && Array.from(got.payload)).toEqual(Array.from(t.payload));
      }),
      { seed: 11, numRuns: 40 },
    );
  });

  it("should reject chunks out of order, from another stream, or without a beginning", () => {
    const [begin, c0, c1] = encodeTensorChunks(sampleTensor("i8", 1, 10000), { chunkBytes: 4096, stream: 1 });
    const other = encodeTensorChunks(sampleTensor("i8", 1, 10000), { chunkBytes: 4096, stream: 2 });
    if (begin === undefined || c0 === undefined || c1 === undefined || other[1] === undefined) {
      throw new Error("expected chunks");
    }
    expect(new ChunkAssembler().push(c0).ok).toBe(false);
    const a = new ChunkAssembler();
    expect(a.push(begin).ok).toBe(true);
    expect(a.push(c1).ok).toBe(false);
    const b = new ChunkAssembler();
    b.push(begin);
    expect(b.push(other[1]).ok).toBe(false);
    expect(b.push(begin).ok).toBe(false);
  });

  it("should refuse a chunked tensor above the assembler's limit before receiving any chunk", () => {
    const [begin] = encodeTensorChunks(sampleTensor("f32", 4, 4096), { chunkBytes: 8192 });
    const r = new ChunkAssembler(1000).push(begin ?? new Uint8Array());
    expect(r.ok ? "" : r.error.code).toBe("limit");
  });

  it("should refuse chunks smaller than the minimum chunk size", () => {
    const [begin] = encodeTensorChunks(sampleTensor("f32", 4, 4096), { chunkBytes: 100 });
    const r = new ChunkAssembler().push(begin ?? new Uint8Array());
    expect(r.ok ? "" : r.error.code).toBe("limit");
  });
});

describe("BAREWire dump manifests", () => {
  it("should round-trip a manifest", () => {
    expect(decodeMessage(encodeManifest(MANIFEST))).toEqual({ ok: true, value: { kind: "dump-manifest", manifest: MANIFEST } });
  });

  it("should refuse to encode a manifest over its limits", () => {
    expect(() => encodeManifest({ ...MANIFEST, tokens: new Array<number>(10000).fill(1) })).toThrow(/limit/);
    expect(() => encodeManifest({ ...MANIFEST, tokens: [-1] })).toThrow(/u32/);
  });

  it("should encode token lists up to the limit correctly despite the library's long-length writer", () => {
    const tokens = Array.from({ length: 8192 }, (_, i) => i * 7);
    const r = decodeMessage(encodeManifest({ ...MANIFEST, tokens }));
    expect(r.ok && r.value.kind === "dump-manifest" ? r.value.manifest.tokens : []).toEqual(tokens);
  });
});
