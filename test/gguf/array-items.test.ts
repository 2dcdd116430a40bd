// The one-pass metadata array reads (src/formats/gguf/array-items.ts): the same values as written, the same
// typed errors as the per-item parser, and arrays larger than the first header window read through a source.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FormatError } from "../../src/core/errors.js";
import { GGUF_VALUE_TYPE, INITIAL_HEADER_WINDOW, gv, parseGguf, readGguf, writeGguf } from "../../src/formats/gguf/index.js";
import { LAZY_STRING_ITEMS } from "../../src/formats/gguf/array-items.js";
import { Craft } from "./craft.js";

/** A header with one string array `k` of these raw pieces. */
function stringArray(pieces: readonly Uint8Array[]): Uint8Array {
  const c = new Craft().header({ kvs: 1n }).str("k").u32(GGUF_VALUE_TYPE.array).u32(GGUF_VALUE_TYPE.string);
  c.u64(BigInt(pieces.length));
  for (const p of pieces) {
    c.str(p);
  }
  return c.done();
}

function errorOf(bytes: Uint8Array): FormatError | undefined {
  try {
    parseGguf(bytes);
  } catch (e) {
    if (e instanceof FormatError) {
      return e;
    }
    throw e;
  }
  return undefined;
}

const SAMPLES = ["", "a", "Ġthe", "é", "日本語", "😀x", "\u{feff}bom", "a b", "\u0000", "ĊĊ", "𝔘𝔫𝔦"];

describe("GGUF metadata arrays read in one pass", () => {
  it("should give back every string as written, multi-byte, astral, BOM and empty ones included", () => {
    const items = Array.from({ length: 3000 }, (_, i) => `${SAMPLES[i % SAMPLES.length] ?? ""}${i % 7 === 0 ? "" : String(i)}`);
    const file = parseGguf(writeGguf({ metadata: [["k", gv.array("string", items)]], tensors: [] }));
    expect(file.metadata.getStringArray("k")).toEqual(items);
  });

  it("should give back numbers of every 8- to 32-bit and float type", () => {
    const types = ["u8", "i8", "u16", "i16", "u32", "i32", "f32", "f64"] as const;
    const values: Record<(typeof types)[number], number[]> = {
      u8: [0, 1, 255], i8: [-128, 0, 127], u16: [0, 65535], i16: [-32768, 32767],
      u32: [0, 4294967295], i32: [-2147483648, 2147483647], f32: [0, -1.5, 3.25, Number.POSITIVE_INFINITY], f64: [Math.PI, -0],
    };
    const file = parseGguf(writeGguf({ metadata: types.map((t) => [t, gv.array(t, values[t])]), tensors: [] }));
    for (const t of types) {
      expect(file.metadata.getNumberArray(t)).toEqual(values[t]);
    }
  });

  it("should refuse a code point split across two items as bad-utf8, though the joined bytes are valid", () => {
    const enc = new TextEncoder();
    // "é" is c3 a9: split, each piece alone is invalid; joined they decode.
    expect(errorOf(stringArray([enc.encode("ok"), new Uint8Array([0x61, 0xc3]), new Uint8Array([0xa9])]))?.code).toBe("bad-utf8");
    // A piece ending inside a code point, the next starting with ASCII.
    expect(errorOf(stringArray([new Uint8Array([0xe6, 0x97]), enc.encode("b")]))?.code).toBe("bad-utf8");
    // A 4-byte sequence split 3 + 1 at the last item.
    expect(errorOf(stringArray([enc.encode("x"), new Uint8Array([0xf0, 0x9f, 0x98]), new Uint8Array([0x80])]))?.code).toBe("bad-utf8");
    // The per-item parser names the item's byte offset, as before.
    expect(errorOf(stringArray([enc.encode("ok"), new Uint8Array([0xff])]))?.message).toMatch(/string "k" at byte \d+ is not valid UTF-8/);
  });

  it("should check a large array's strings at parse time though it makes them on first use", () => {
    const enc = new TextEncoder();
    const pieces = Array.from({ length: LAZY_STRING_ITEMS + 1 }, (_, i) => enc.encode(`m${i} é`));
    const good = parseGguf(stringArray(pieces)).metadata.getStringArray("k");
    expect(good?.length).toBe(LAZY_STRING_ITEMS + 1);
    expect(good?.[LAZY_STRING_ITEMS]).toBe(`m${LAZY_STRING_ITEMS} é`);
    // An overlong "/" (c0 af) and a surrogate (ed a0 80) in the last item: refused by the parse itself.
    for (const bad of [[0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80]]) {
      const e = errorOf(stringArray([...pieces.slice(0, -1), new Uint8Array(bad)]));
      expect(e?.code).toBe("bad-utf8");
      expect(e?.message).toMatch(/string "k" at byte \d+ is not valid UTF-8/);
    }
  });

  it("should accept exactly the strings a fatal TextDecoder accepts", () => {
    const fatal = new TextDecoder("utf-8", { fatal: true });
    const byte = fc.oneof(fc.integer({ min: 0x80, max: 0xff }), fc.constantFrom(0x00, 0x41, 0x7f, 0x80, 0xbf, 0xc2, 0xe0, 0xed, 0xf0, 0xf4));
    fc.assert(
      fc.property(fc.array(byte, { maxLength: 6 }), (xs) => {
        const piece = new Uint8Array(xs);
        let valid = true;
        try {
          fatal.decode(piece);
        } catch {
          valid = false;
        }
        const e = errorOf(stringArray([piece, piece]));
        expect(e === undefined).toBe(valid);
        if (e !== undefined) {
          expect(e.message).toMatch(/string "k" at byte \d+ is not valid UTF-8/);
        }
      }),
      { numRuns: 3000, seed: 15 },
    );
  });

  it("should refuse a string length over the limit or past the file with the per-item parser's codes", () => {
    const long = new Craft().header({ kvs: 1n }).str("k").u32(GGUF_VALUE_TYPE.array).u32(GGUF_VALUE_TYPE.string).u64(2n);
    expect(errorOf(long.str("a").str("b", 1n << 40n).done())?.code).toBe("limit");
    const past = new Craft().header({ kvs: 1n }).str("k").u32(GGUF_VALUE_TYPE.array).u32(GGUF_VALUE_TYPE.string).u64(2n);
    expect(errorOf(past.str("a").str("b", 100n).done())?.code).toBe("truncated");
  });

  it("should read arrays larger than the first header window from a source", async () => {
    const items = Array.from({ length: 120_000 }, (_, i) => `tok${i}é`);
    const bytes = writeGguf({ metadata: [["k", gv.array("string", items)], ["n", gv.array("i32", items.map((_, i) => -i))]], tensors: [] });
    expect(bytes.length).toBeGreaterThan(INITIAL_HEADER_WINDOW);
    const file = await readGguf({ size: bytes.length, read: (o: number, n: number) => Promise.resolve(bytes.slice(o, o + n)) });
    expect(file.metadata.getStringArray("k")).toEqual(items);
    expect(file.metadata.getNumberArray("n")?.[119_999]).toBe(-119_999);
  });
});

describe("GGUF large arrays read without making their items", () => {
  it("should answer one string, a search by bytes and typed numbers equal to the items made later", () => {
    const n = LAZY_STRING_ITEMS + 5;
    // Piece k's text also sits inside other pieces ("x<k>y"), which the search must not take for a piece.
    const items = Array.from({ length: n }, (_, i) => (i % 3 === 0 ? `x${i}é😀y` : i === 700 ? "" : `${i}é😀`));
    const nums = items.map((_, i) => (i * 0.75) - 3);
    const file = parseGguf(writeGguf({ metadata: [["k", gv.array("string", items)], ["f", gv.array("f32", nums)]], tensors: [] }));
    const list = file.metadata.getStringList("k");
    expect(list !== undefined && !Array.isArray(list)).toBe(true);
    expect(list?.at(4)).toBe("4é😀");
    expect(list?.at(n)).toBeUndefined();
    expect(list?.indexOf("5é😀")).toBe(5);
    expect(list?.indexOf(`x${3}é😀y`)).toBe(3);
    expect(list?.indexOf("")).toBe(700);
    expect(list?.indexOf("é😀")).toBe(-1);
    expect(list && "maxByteLength" in list ? list.maxByteLength : 0).toBe(Math.max(...items.map((s) => new TextEncoder().encode(s).length)));
    const typed = file.metadata.getNumbers("f");
    expect(typed instanceof Float32Array).toBe(true);
    expect(Array.from(typed ?? [])).toEqual(nums);
    expect(file.metadata.getStringArray("k")).toEqual(items);
    expect(file.metadata.getNumberArray("f")).toEqual(nums);
    expect(list?.at(4)).toBe("4é😀");
  });
});
