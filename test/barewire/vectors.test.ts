/**
 * The published test vectors (test/vectors/barewire.json): frames as hex with their decoded JSON, and
 * invalid frames with the error code a decoder must give. BARBELL_UPDATE_VECTORS=1 rewrites the file.
 */
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import {
  decodeMessage,
  encodeManifest,
  encodeTensorChunks,
  encodeTensorFrame,
  type WireTensor,
} from "../../src/formats/barewire/index.js";
import { MANIFEST, fromHex, messageJson, sampleTensor, toHex } from "./helpers.js";

const FILE = path.resolve(import.meta.dirname, "../vectors/barewire.json");

interface ValidVector {
  readonly name: string;
  readonly hex: string;
  readonly decoded: unknown;
}
interface InvalidVector {
  readonly name: string;
  readonly hex: string;
  readonly error: string;
}
interface VectorFile {
  readonly spec: string;
  readonly version: number;
  readonly valid: ValidVector[];
  readonly invalid: InvalidVector[];
}

function small(dtype: WireTensor["dtype"], cols: number, rows = 1): WireTensor {
  return sampleTensor(dtype, rows, cols, 7, `v.${dtype}`);
}

function build(): VectorFile {
  const f32: WireTensor = {
    name: "x",
    dtype: "f32",
    dims: [{ name: "batch", size: 2 }, { name: "embed", size: 3 }],
    scales: [],
    flags: 0,
    payload: new Uint8Array(Float32Array.of(1, 2, 3, 4, 5, 6).buffer),
  };
  const frames: [string, Uint8Array][] = [
    ["f32 [batch=2, embed=3]", encodeTensorFrame(f32)],
    ["f32 activation flag, unicode name", encodeTensorFrame({ ...f32, name: "blk.0.out·é", flags: 1 })],
    ["i8 [rows=1, cols=5]", encodeTensorFrame(small("i8", 5))],
    ["i32 [rows=1, cols=3]", encodeTensorFrame(small("i32", 3))],
    ["f16 [rows=1, cols=4]", encodeTensorFrame(small("f16", 4))],
    ["bf16 [rows=1, cols=4]", encodeTensorFrame(small("bf16", 4))],
    ["ternary t2 [rows=2, cols=6] scale 0.5", encodeTensorFrame(small("ternary", 6, 2))],
    ["binary b1 [rows=1, cols=40] scale 0.5", encodeTensorFrame(small("binary", 40))],
    ["q8_0 [rows=1, cols=32]", encodeTensorFrame(small("q8_0", 32))],
    ["i2_s [rows=1, cols=128]", encodeTensorFrame(small("i2_s", 128))],
    ["tq2_0 [rows=1, cols=256]", encodeTensorFrame(small("tq2_0", 256))],
    ["tq1_0 [rows=1, cols=256]", encodeTensorFrame(small("tq1_0", 256))],
    ["q1_0 [rows=1, cols=128]", encodeTensorFrame(small("q1_0", 128))],
    ["q4_k [rows=1, cols=256]", encodeTensorFrame(small("q4_k", 256))],
    ["q5_k [rows=1, cols=256]", encodeTensorFrame(small("q5_k", 256))],
    ["dump manifest", encodeManifest(MANIFEST)],
  ];
  const [begin, ...chunks] = encodeTensorChunks(small("i8", 100, 1), { stream: 3, chunkBytes: 40 });
  if (begin !== undefined) {
    frames.push(["chunked i8: begin", begin]);
  }
  chunks.forEach((c, i) => frames.push([`chunked i8: chunk ${i}`, c]));

  const good = toHex(encodeTensorFrame(f32));
  const bytes = fromHex(good);
  const edit = (at: number, value: number): string => {
    const b = bytes.slice();
    b[at] = value;
    return toHex(b);
  };
  const invalid: InvalidVector[] = [
    { name: "empty", hex: "", error: "truncated" },
    { name: "bad magic", hex: edit(0, 0x43), error: "bad-magic" },
    { name: "version 2", hex: edit(4, 2), error: "bad-version" },
    { name: "unknown message tag 4", hex: edit(6, 4), error: "bad-tag" },
    { name: "message tag 0x80 (not a one-byte uint)", hex: edit(6, 0x80), error: "bad-tag" },
    { name: "unknown dtype 15", hex: edit(9, 15), error: "bad-tag" },
    { name: "truncated payload", hex: good.slice(0, -2), error: "truncated" },
    { name: "trailing byte", hex: `${good}00`, error: "trailing" },
    { name: "nonzero pad byte", hex: edit(40, 1), error: "non-canonical" },
    { name: "non-canonical dim size (0x83 0x00)", hex: good.replace("05626174636802", "0562617463688200"), error: "non-canonical" },
    { name: "duplicate dim name", hex: good.replace("05656d626564", "056261746368"), error: "bad-dims" },
    { name: "undefined flag bit", hex: good.replace("656d62656403000023", "656d62656403000223"), error: "bad-value" },
  ];
  return {
    spec: "docs/barewire.md",
    version: 1,
    valid: frames.map(([name, f]) => {
      const m = decodeMessage(f);
      if (!m.ok) {
        throw m.error;
      }
      return { name, hex: toHex(f), decoded: messageJson(m.value) };
    }),
    invalid,
  };
}

describe("BAREWire test vectors", () => {
  const built = build();
  if (process.env["BARBELL_UPDATE_VECTORS"] === "1") {
    fs.writeFileSync(FILE, `${JSON.stringify(built, null, 2)}\n`);
  }
  const file = JSON.parse(fs.readFileSync(FILE, "utf8")) as VectorFile;

  it("should encode every valid vector to exactly the published bytes", () => {
    expect(built.valid.map((v) => [v.name, v.hex])).toEqual(file.valid.map((v) => [v.name, v.hex]));
  });

  it.each(file.valid.map((v) => [v.name, v] as const))("should decode the valid vector %s to its published JSON", (_, v) => {
    const m = decodeMessage(fromHex(v.hex));
    expect(m.ok).toBe(true);
    if (m.ok) {
      expect(JSON.parse(JSON.stringify(messageJson(m.value)))).toEqual(v.decoded);
    }
  });

  it.each(file.invalid.map((v) => [v.name, v] as const))("should reject the invalid vector %s with its error code", (_, v) => {
    const m = decodeMessage(fromHex(v.hex));
    expect(m.ok).toBe(false);
    if (!m.ok) {
      expect(m.error.code).toBe(v.error);
    }
  });

  it("should publish invalid vectors that differ from a valid frame", () => {
    const valid = new Set(file.valid.map((v) => v.hex));
    expect(file.invalid.every((v) => !valid.has(v.hex))).toBe(true);
  });
});
