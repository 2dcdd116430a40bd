import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { FormatError, ShapeError } from "../../src/core/errors.js";
import {
  MAX_HEADER_BYTES,
  openSafetensors,
  parseJson,
  readSafetensors,
  readSafetensorsBytes,
  writeSafetensors,
} from "../../src/formats/safetensors/index.js";

/** A file from a raw header string and buffer length (no padding, no checks). */
function raw(header: string, bufferBytes = 0, claim?: bigint): Uint8Array {
  const json = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + json.length + bufferBytes);
  new DataView(out.buffer).setBigUint64(0, claim ?? BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

async function code(bytes: Uint8Array): Promise<string> {
  try {
    await readSafetensorsBytes(bytes);
    return "ok";
  } catch (e) {
    if (e instanceof FormatError) {
      return e.code;
    }
    throw e;
  }
}

const t = (dtype: string, shape: number[], b: number, e: number): string =>
  JSON.stringify({ dtype, shape, data_offsets: [b, e] });

/** A one-tensor header from raw JSON fragments. */
const entry = (dtype: string, shape: string, offsets: string): string =>
  `{"a":{"dtype":${dtype},"shape":${shape},"data_offsets":${offsets}}}`;

describe("safetensors reader", () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir !== undefined) {
      await rm(dir, { recursive: true, force: true });
      dir = undefined;
    }
  });

  it("should read the reference implementation's documented example file", async () => {
    const file = await readSafetensorsBytes(raw(`{"test":${t("I32", [2, 2], 0, 16)}}`, 16));
    expect(file.tensors).toEqual([
      { name: "test", dtype: "I32", shape: [2, 2], elementCount: 4, begin: 0, end: 16, byteSize: 16 },
    ]);
    expect(file.headerBytes).toBe(60);
    expect(file.dataOffset).toBe(68);
    expect(await file.tensorData("test")).toHaveLength(16);
  });

  it("should accept scalars, zero-size tensors and trailing padding spaces", async () => {
    const header = `{"a":${t("F32", [], 0, 4)},"z":${t("F16", [3, 0], 4, 4)},"__metadata__":{"format":"pt"}}   `;
    const file = await readSafetensorsBytes(raw(header, 4));
    expect(file.tensor("a")?.elementCount).toBe(1);
    expect(file.tensor("z")?.byteSize).toBe(0);
    expect([...file.metadata]).toEqual([["format", "pt"]]);
  });

  it("should read tensor slices and reject ranges outside the tensor with ShapeError", async () => {
    const data = Uint8Array.from({ length: 8 }, (_, i) => i);
    const bytes = writeSafetensors({ tensors: [{ name: "x", dtype: "U8", shape: [8], data }] });
    const file = await readSafetensorsBytes(bytes);
    expect([...(await file.tensorData("x", { offset: 2, length: 3 }))]).toEqual([2, 3, 4]);
    await expect(file.tensorData("x", { offset: 6, length: 3 })).rejects.toBeInstanceOf(ShapeError);
    await expect(file.tensorData("nope")).rejects.toBeInstanceOf(FormatError);
  });

  it.each([
    ["a file shorter than the length field", new Uint8Array(7), "truncated"],
    ["a header length past the end of the file", raw("{}", 0, 1000n), "truncated"],
    ["a header length over the limit", raw("{}", 0, BigInt(MAX_HEADER_BYTES) + 1n), "limit"],
    ["a header length of 2^64 − 1", raw("{}", 0, (1n << 64n) - 1n), "limit"],
    ["a header that is not UTF-8", raw("{}").fill(0xff, 8, 9), "bad-utf8"],
    ["a header that does not start with {", raw(` {"a":${t("U8", [1], 0, 1)}}`, 1), "bad-magic"],
    ["a header that is a JSON array", raw("[]"), "bad-magic"],
    ["a header that is not JSON", raw("{oops}"), "bad-value"],
    ["an unknown dtype", raw(`{"a":${t("F128", [1], 0, 16)}}`, 16), "bad-tensor-type"],
    ["a negative dim", raw(`{"a":${t("U8", [-1], 0, 1)}}`, 1), "bad-dims"],
    ["a fractional dim", raw(`{"a":${t("U8", [1.5], 0, 1)}}`, 1), "bad-dims"],
    ["a dim above 2^53", raw(entry('"U8"', "[18446744073709551615]", "[0,1]"), 1), "bad-dims"],
    ["a shape product that overflows", raw(`{"a":${t("U8", [2 ** 30, 2 ** 30, 2 ** 30], 0, 1)}}`, 1), "overflow"],
    ["bytes that disagree with dtype × shape", raw(`{"a":${t("F32", [2], 0, 4)}}`, 4), "bad-dims"],
    ["sub-byte elements that do not fill a byte", raw(`{"a":${t("F4", [3], 0, 1)}}`, 1), "bad-dims"],
    ["offsets that end before they begin", raw(`{"a":${t("U8", [0], 4, 2)}}`, 4), "bad-value"],
    ["overlapping tensors", raw(`{"a":${t("U8", [2], 0, 2)},"b":${t("U8", [2], 1, 3)}}`, 3), "overlap"],
    ["a gap between tensors", raw(`{"a":${t("U8", [2], 0, 2)},"b":${t("U8", [2], 3, 5)}}`, 5), "bad-value"],
    ["a tensor past the end of the file", raw(`{"a":${t("U8", [8], 0, 8)}}`, 4), "out-of-file"],
    ["trailing bytes after the last tensor", raw(`{"a":${t("U8", [2], 0, 2)}}`, 3), "bad-value"],
    ["a duplicate tensor name", raw(`{"a":${t("U8", [1], 0, 1)},"a":${t("U8", [1], 1, 2)}}`, 2), "duplicate"],
    ["a duplicate field inside an entry", raw(entry('"U8","dtype":"I8"', "[1]", "[0,1]"), 1), "duplicate"],
    ["an unknown field in an entry", raw(entry('"U8"', "[1]", '[0,1],"x":1'), 1), "bad-value"],
    ["metadata with a non-string value", raw(`{"__metadata__":{"n":1}}`), "bad-value"],
    ["deeply nested JSON", raw(`{"a":${"[".repeat(10_000)}${"]".repeat(10_000)}}`), "limit"],
  ])("should reject %s", async (_what, bytes, expected) => {
    expect(await code(bytes)).toBe(expected);
  });

  it("should read only the header from a file source and never the tensor data", async () => {
    const data = new Uint8Array(1 << 16).fill(7);
    const bytes = writeSafetensors({ tensors: [{ name: "big", dtype: "U8", shape: [data.length], data }] });
    const reads: [number, number][] = [];
    const file = await readSafetensors({
      size: bytes.length,
      read: (o, n) => {
        reads.push([o, n]);
        return Promise.resolve(bytes.slice(o, o + n));
      },
    });
    expect(reads.reduce((a, [, n]) => a + n, 0)).toBe(file.dataOffset);
    expect((await file.tensorData("big")).every((b) => b === 7)).toBe(true);
  });

  it("should open a file from disk and close it", async () => {
    dir = await mkdtemp(join(tmpdir(), "barbell-st-"));
    const path = join(dir, "x.safetensors");
    const tensors = [{ name: "x", dtype: "I8", shape: [2], data: new Uint8Array([255, 1]) }] as const;
    await writeFile(path, writeSafetensors({ tensors }));
    const file = await openSafetensors(path);
    expect([...(await file.tensorData("x"))]).toEqual([255, 1]);
    await file.close();
    await file.close();
  });
});

describe("strict JSON parser", () => {
  const opts = { maxDepth: 8, label: "test" };

  it("should agree with JSON.parse on well-formed documents without duplicate keys", () => {
    const text = '{"a":[1,-2.5e3,true,false,null,"x\\u00e9\\n\\"y"],"b":{"c":""}}';
    const v = parseJson(text, opts);
    expect(v).toBeInstanceOf(Map);
    const plain = JSON.parse(text) as { a: unknown[] };
    const a = v instanceof Map ? v.get("a") : undefined;
    expect(Array.isArray(a) ? a[5] : undefined).toBe(plain.a[5]);
  });

  it("should keep large integers as exact text", () => {
    const v = parseJson("[18446744073709551615]", opts);
    expect(Array.isArray(v) ? (v[0] as { text: string }).text : "").toBe("18446744073709551615");
  });

  it("should reject a repeated key, which JSON.parse silently resolves to the last value", () => {
    expect((JSON.parse('{"a":1,"a":2}') as { a: number }).a).toBe(2);
    expect(() => parseJson('{"a":1,"a":2}', opts)).toThrow(expect.objectContaining({ code: "duplicate" }) as Error);
  });

  it.each(['{"a":1,}', "[1 2]", '"\u0001"', "01", "1.", '{"a"}', "tru", '"\\x"', "{} {}"])(
    "should reject the malformed document %j",
    (text) => {
      expect(() => parseJson(text, opts)).toThrow(FormatError);
    },
  );
});
