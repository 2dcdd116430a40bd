import { describe, expect, it } from "vitest";
import { FormatError } from "../../src/core/errors.js";
import {
  GGUF_VALUE_TYPE,
  MAX_ARRAY_LENGTH,
  MAX_STRING_BYTES,
  gv,
  parseGguf,
  readGguf,
  writeGguf,
} from "../../src/formats/gguf/index.js";
import { Craft, sampleFile } from "./craft.js";

function codeOf(bytes: Uint8Array): string {
  try {
    parseGguf(bytes);
  } catch (e) {
    if (e instanceof FormatError) {
      return e.code;
    }
    throw e;
  }
  return "ok";
}

/** A file with one f32 tensor [4] at `offset`, followed by `dataBytes` bytes of data section. */
function oneTensor(dims: readonly bigint[], type = 0, offset = 0n, dataBytes = 32): Uint8Array {
  const c = new Craft().header({ tensors: 1n }).tensorInfo("t", dims, type, offset);
  c.pad(32);
  c.bytes(new Uint8Array(dataBytes));
  return c.done();
}

describe("GGUF reader on hostile input", () => {
  it("should accept version 2 and reject versions 1, 4 and big-endian files", () => {
    expect(codeOf(new Craft().header({ version: 2 }).done())).toBe("ok");
    expect(codeOf(new Craft().header({ version: 1 }).done())).toBe("bad-version");
    expect(codeOf(new Craft().header({ version: 4 }).done())).toBe("bad-version");
    expect(codeOf(new Craft().header({ version: 0x03000000 }).done())).toBe("bad-version");
  });

  it("should reject a bad magic and a file shorter than its header", () => {
    expect(codeOf(new Craft().header({ magic: 0x46554748 }).done())).toBe("bad-magic");
    expect(codeOf(new Uint8Array([0x47, 0x47]))).toBe("truncated");
    expect(codeOf(sampleFile().subarray(0, 600))).toBe("truncated");
  });

  it("should reject counts that cannot fit in the file before allocating", () => {
    expect(codeOf(new Craft().header({ tensors: 1n << 63n }).done())).toBe("limit");
    expect(codeOf(new Craft().header({ kvs: (1n << 64n) - 1n }).done())).toBe("limit");
    expect(codeOf(new Craft().header({ tensors: 1000n }).done())).toBe("implausible");
    expect(codeOf(new Craft().header({ kvs: 1000n }).done())).toBe("implausible");
  });

  it("should reject a huge string length and a huge array count", () => {
    const str = new Craft().header({ kvs: 1n }).str("k").u32(GGUF_VALUE_TYPE.string);
    expect(codeOf(str.str("abc", BigInt(MAX_STRING_BYTES) + 1n).done())).toBe("limit");
    const fits = new Craft().header({ kvs: 1n }).str("k").u32(GGUF_VALUE_TYPE.string).str("abc", 1000n).done();
    expect(codeOf(fits)).toBe("truncated");
    const arr = (count: bigint) =>
      new Craft().header({ kvs: 1n }).str("k").u32(GGUF_VALUE_TYPE.array).u32(GGUF_VALUE_TYPE.u64).u64(count).done();
    expect(codeOf(arr(BigInt(MAX_ARRAY_LENGTH) + 1n))).toBe("limit");
    expect(codeOf(arr(1_000_000n))).toBe("implausible");
  });

  it("should reject arrays nested deeper than the limit without exhausting the stack", () => {
    const c = new Craft().header({ kvs: 1n }).str("k").u32(GGUF_VALUE_TYPE.array);
    for (let i = 0; i < 100; i++) {
      c.u32(GGUF_VALUE_TYPE.array).u64(1n);
    }
    expect(codeOf(c.done())).toBe("limit");
  });

  it("should reject unknown value types, bad bools, bad UTF-8 and duplicate keys", () => {
    expect(codeOf(new Craft().header({ kvs: 1n }).str("k").u32(13).u32(0).done())).toBe("bad-value-type");
    expect(codeOf(new Craft().header({ kvs: 1n }).str("k").u32(GGUF_VALUE_TYPE.bool).u8(2).done())).toBe("bad-value");
    expect(codeOf(new Craft().header({ kvs: 1n }).str(new Uint8Array([0xc3, 0x28])).u32(0).u8(0).done())).toBe(
      "bad-utf8",
    );
    expect(codeOf(new Craft().header({ kvs: 2n }).kvU32("a", 1).kvU32("a", 2).done())).toBe("duplicate");
  });

  it("should reject alignments that are zero, not multiples of 8, too large or not u32", () => {
    for (const a of [0, 12, 1 << 21]) {
      expect(codeOf(new Craft().header({ kvs: 1n }).kvU32("general.alignment", a).done())).toBe("bad-alignment");
    }
    const asU64 = new Craft().header({ kvs: 1n }).str("general.alignment").u32(GGUF_VALUE_TYPE.u64).u64(32n);
    expect(codeOf(asU64.done())).toBe("bad-alignment");
  });

  it("should reject tensors with zero or too many dims, zero dims and unknown types", () => {
    expect(codeOf(oneTensor([]))).toBe("bad-dims");
    expect(codeOf(oneTensor([1n, 1n, 1n, 1n, 1n]))).toBe("bad-dims");
    expect(codeOf(oneTensor([4n, 0n]))).toBe("bad-dims");
    expect(codeOf(oneTensor([4n], 37))).toBe("bad-tensor-type");
    expect(codeOf(oneTensor([4n], 99))).toBe("bad-tensor-type");
    expect(codeOf(oneTensor([33n], 8))).toBe("bad-dims"); // q8_0 needs ne0 % 32 == 0
  });

  it("should reject dims whose product overflows and dims above 2^53", () => {
    expect(codeOf(oneTensor([1n << 40n, 1n << 40n]))).toBe("overflow");
    expect(codeOf(oneTensor([(1n << 64n) - 1n]))).toBe("overflow");
    expect(codeOf(oneTensor([1n << 30n, 1n << 30n, 1n << 30n, 1n << 30n]))).toBe("overflow");
  });

  it("should reject misaligned, out-of-file and overlapping tensors", () => {
    expect(codeOf(oneTensor([4n], 0, 0n, 16))).toBe("ok");
    expect(codeOf(oneTensor([4n], 0, 4n))).toBe("bad-alignment");
    expect(codeOf(oneTensor([4n], 0, 1n << 40n))).toBe("out-of-file");
    expect(codeOf(oneTensor([4n], 0, (1n << 64n) - 32n))).toBe("overflow");
    expect(codeOf(oneTensor([1000n]))).toBe("implausible");
    expect(codeOf(oneTensor([4n], 0, 0n, 8))).toBe("implausible");
    const twice = new Craft().header({ tensors: 2n }).tensorInfo("a", [16n], 0, 0n).tensorInfo("b", [8n], 0, 32n);
    twice.pad(32);
    twice.bytes(new Uint8Array(128));
    expect(codeOf(twice.done())).toBe("overlap");
    const dup = new Craft().header({ tensors: 2n }).tensorInfo("a", [8n], 0, 0n).tensorInfo("a", [8n], 0, 32n);
    dup.pad(32);
    dup.bytes(new Uint8Array(64));
    expect(codeOf(dup.done())).toBe("duplicate");
  });

  it("should reject a tensor name longer than 64 bytes", () => {
    const c = new Craft().header({ tensors: 1n }).tensorInfo("n".repeat(65), [4n], 0, 0n);
    c.pad(32);
    c.bytes(new Uint8Array(16));
    expect(codeOf(c.done())).toBe("limit");
  });

  it("should report a source that returns fewer bytes than asked as truncated", async () => {
    const bytes = sampleFile();
    const short = { size: bytes.length, read: (o: number, n: number) => Promise.resolve(bytes.slice(o, o + n - 1)) };
    await expect(readGguf(short)).rejects.toMatchObject({ code: "truncated" });
  });

  it("should read no more of a huge source than its header needs", async () => {
    // The source claims 1 TiB; the header is one 3 MiB string of zeros (valid UTF-8).
    const head = new Craft().header({ kvs: 1n }).str("k").u32(GGUF_VALUE_TYPE.string).u64(3n << 20n).done();
    let served = 0;
    const huge = {
      size: 2 ** 40,
      read: (o: number, n: number) => {
        served += n;
        const out = new Uint8Array(n);
        out.set(head.subarray(o, o + n));
        return Promise.resolve(out);
      },
    };
    const file = await readGguf(huge);
    expect(file.metadata.getString("k")).toHaveLength(3 << 20);
    expect(served).toBeLessThanOrEqual(4 << 20);
  });
});

describe("GGUF writer validation", () => {
  it("should reject tensor bytes that do not match the type's size", () => {
    expect(() => writeGguf({ metadata: [], tensors: [{ name: "t", dims: [4], typeId: 0, data: new Uint8Array(15) }] }))
      .toThrow(expect.objectContaining({ code: "bad-value" }));
  });

  it("should reject duplicate tensor names and duplicate keys", () => {
    const t = { name: "t", dims: [4], typeId: 0, data: new Uint8Array(16) };
    expect(() => writeGguf({ metadata: [], tensors: [t, t] })).toThrow(expect.objectContaining({ code: "duplicate" }));
    expect(() => writeGguf({ metadata: [["a", gv.u8(1)], ["a", gv.u8(2)]] })).toThrow(
      expect.objectContaining({ code: "duplicate" }),
    );
  });

  it("should reject values outside their wire type's range", () => {
    const bad = [gv.u8(256), gv.i8(-129), gv.u32(-1), gv.i32(2 ** 31), gv.u16(1.5), gv.u64(-1n), gv.i64(1n << 63n)];
    for (const v of bad) {
      expect(() => writeGguf({ metadata: [["k", v]] })).toThrow(expect.objectContaining({ code: "bad-value" }));
    }
    expect(() => writeGguf({ metadata: [["k", gv.string("\uD800")]] })).toThrow(
      expect.objectContaining({ code: "bad-utf8" }),
    );
  });

  it("should reject bad dims and unknown tensor types", () => {
    const data = new Uint8Array(16);
    for (const dims of [[], [0], [1, 1, 1, 1, 4], [-4], [2.5]]) {
      expect(() => writeGguf({ metadata: [], tensors: [{ name: "t", dims, typeId: 0, data }] })).toThrow(
        expect.objectContaining({ code: "bad-dims" }),
      );
    }
    expect(() => writeGguf({ metadata: [], tensors: [{ name: "t", dims: [4], typeId: 37, data }] })).toThrow(
      expect.objectContaining({ code: "bad-tensor-type" }),
    );
  });
});
