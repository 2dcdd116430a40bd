/** Test helpers: a raw GGUF byte builder with no validation (for hostile files) and a sample valid file. */
import { ByteWriter } from "../../src/core/bytes.js";
import { GGUF_VALUE_TYPE, gv, writeGguf, type GgufTensorInput, type GgufValue } from "../../src/formats/gguf/index.js";

/** ByteWriter plus GGUF pieces, writing whatever it is told. */
export class Craft extends ByteWriter {
  header(opts: { version?: number; tensors?: bigint; kvs?: bigint; magic?: number } = {}): this {
    this.u32(opts.magic ?? 0x46554747);
    this.u32(opts.version ?? 3);
    this.u64(opts.tensors ?? 0n);
    this.u64(opts.kvs ?? 0n);
    return this;
  }
  str(s: string | Uint8Array, claimed?: bigint): this {
    const b = typeof s === "string" ? new TextEncoder().encode(s) : s;
    this.u64(claimed ?? BigInt(b.length));
    this.bytes(b);
    return this;
  }
  kvU32(key: string, v: number): this {
    this.str(key);
    this.u32(GGUF_VALUE_TYPE.u32);
    this.u32(v);
    return this;
  }
  tensorInfo(name: string, dims: readonly bigint[], type: number, offset: bigint): this {
    this.str(name);
    this.u32(dims.length);
    for (const d of dims) {
      this.u64(d);
    }
    this.u32(type);
    this.u64(offset);
    return this;
  }
  done(): Uint8Array {
    return this.finish().slice();
  }
}

/** Deterministic bytes 0..n−1 mod 251. */
export function ramp(n: number, seed = 0): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = (i * 7 + seed) % 251;
  }
  return out;
}

/** Metadata with every value type, nested arrays, both integer widths and bigints at their extremes. */
export function everyValueMetadata(): [string, GgufValue][] {
  return [
    ["general.architecture", gv.string("bitnet-b1.58")],
    ["general.name", gv.string("tiny ✓ 𝄞")],
    ["test.u8", gv.u8(255)],
    ["test.i8", gv.i8(-128)],
    ["test.u16", gv.u16(65535)],
    ["test.i16", gv.i16(-32768)],
    ["test.u32", gv.u32(0xffffffff)],
    ["test.i32", gv.i32(-0x80000000)],
    ["test.f32", gv.f32(Math.fround(3.14159))],
    ["test.f64", gv.f64(-2.718281828459045)],
    ["test.bool.true", gv.bool(true)],
    ["test.bool.false", gv.bool(false)],
    ["test.u64.small", gv.u64(7n)],
    ["test.u64.max", gv.u64((1n << 64n) - 1n)],
    ["test.i64.min", gv.i64(-(1n << 63n))],
    ["test.string.empty", gv.string("")],
    ["test.string.bom", gv.string("\uFEFFbom")],
    ["test.array.empty", gv.array("u32", [])],
    ["test.array.u8", gv.array("u8", [0, 1, 255])],
    ["test.array.i64", gv.array("i64", [-1n, 0n, 1n << 62n])],
    ["test.array.bool", gv.array("bool", [true, false])],
    ["test.array.f32", gv.array("f32", [0, -0, 1.5, Number.POSITIVE_INFINITY])],
    ["test.array.string", gv.array("string", ["a", "", "b c"])],
    [
      "test.array.nested",
      gv.array("array", [
        gv.array("u16", [1, 2]),
        gv.array("array", [gv.array("string", ["deep"])]),
        gv.array("f64", []),
      ]),
    ],
  ];
}

/** Three tensors of different types: f32, q8_0 and i2_s (the sizes only need to match the types). */
export function sampleTensors(): GgufTensorInput[] {
  return [
    { name: "output_norm.weight", dims: [64], typeId: 0, data: ramp(256, 1) },
    { name: "token_embd.weight", dims: [64, 3], typeId: 8, data: ramp(3 * 2 * 34, 2) },
    { name: "blk.0.attn_q.weight", dims: [128, 2], typeId: 36, data: ramp(64 + 32, 3) },
  ];
}

/** A valid sample file written by the barbell writer. */
export function sampleFile(alignment?: number): Uint8Array {
  const metadata = everyValueMetadata();
  if (alignment !== undefined) {
    metadata.push(["general.alignment", gv.u32(alignment)]);
  }
  return writeGguf({ metadata, tensors: sampleTensors() });
}
