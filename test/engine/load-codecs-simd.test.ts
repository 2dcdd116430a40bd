/**
 * The SIMD group kernel of the native I2_S / TQ2_0 → t2 transcode (native/cpu/load_avx2.cc) against the scalar
 * one (load.cc), forced with transcodeTernary's `isa` argument: the same t2 bytes and the same result (scale
 * bits, −1, 0 or −2) on random codes, with a code 3 at every position class (first and last byte, each of the
 * four fields of a byte, both sides of the 32-byte vector and the 66-byte block boundaries) and TQ2_0 scales
 * that differ, are negative, zero or non-finite. On a CPU without AVX2 both calls take the scalar path. Also the
 * native Q8_0 and Q6_K encoders of a float head (load.cc, load_avx2.cc, load_avx512.cc) against the JS codecs.
 */
import { describe, expect, it } from "vitest";
import { nativeAddon, probeNativeCpu } from "../../src/backends/native-cpu/addon.js";
import type { LoadCodecs } from "../../src/quant/load-codecs.js";
import { QUANT_TRAITS } from "../../src/quant/table.js";

const probe = probeNativeCpu();

/** transcodeTernary with the ISA override (native/cpu/load.cc). */
type Transcode = LoadCodecs["transcodeTernary"];

function transcoder(): Transcode {
  const t = nativeAddon()?.transcodeTernary;
  if (t === undefined) {
    throw new Error("native transcodeTernary missing");
  }
  return t;
}

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s >>> 24;
  };
}

/** n bytes of four random codes 0–2 each. */
function codes(n: number, seed: number): Uint8Array {
  const next = lcg(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    let b = 0;
    for (let k = 0; k < 4; k++) {
      b |= (next() % 3) << (2 * k);
    }
    out[i] = b;
  }
  return out;
}

/** `blocks` TQ2_0 blocks of random codes with scale bits `d` (a block of all code 1 where `zero(b)`). */
function tq2(blocks: number, seed: number, d: number, zero: (b: number) => boolean = () => false): Uint8Array {
  const c = codes(64 * blocks, seed);
  const out = new Uint8Array(66 * blocks);
  for (let b = 0; b < blocks; b++) {
    out.set(zero(b) ? new Uint8Array(64).fill(0x55) : c.subarray(64 * b, 64 * b + 64), 66 * b);
    out[66 * b + 64] = d & 0xff;
    out[66 * b + 65] = d >> 8;
  }
  return out;
}

/** Both paths on `src`: their results equal, and their bytes equal unless the result is −2 (dst unspecified). */
function same(format: 0 | 1, src: Uint8Array, n: number): number {
  const t = transcoder();
  const scalarOut = new Uint8Array(n / 4);
  const simdOut = new Uint8Array(n / 4);
  const scalar = t(format, src, n, scalarOut, "scalar");
  const simd = t(format, src, n, simdOut);
  expect(simd).toBe(scalar);
  if (scalar !== -2) {
    expect(Buffer.compare(simdOut, scalarOut)).toBe(0);
  }
  return scalar;
}

/** Byte positions of a code 3 to try in `bytes` bytes: first, last and both sides of every `stride` boundary (a few). */
function positions(bytes: number, stride: number): number[] {
  const out = new Set<number>([0, 1, 3, 4, bytes - 1, bytes - 2]);
  for (let at = stride; at < bytes && at <= 4 * stride; at += stride) {
    out.add(at - 1).add(at).add(at + 1);
  }
  out.add(Math.floor(bytes / 2));
  return [...out].filter((p) => p >= 0 && p < bytes);
}

describe.skipIf(!probe.available)("native ternary transcode: SIMD against scalar", () => {
  it("should give the scalar path's I2_S bytes on random codes, from one 128-code group up to a multi-thread size", () => {
    for (const groups of [1, 2, 3, 7, 64, 1001]) {
      expect(same(0, codes(32 * groups, groups), 128 * groups)).toBe(0);
    }
    const big = 128 * ((1 << 16) + 3); // over the 2^22-code per-thread threshold twice: split over threads
    expect(same(0, codes(big / 4, 7), big)).toBe(0);
  });

  it("should refuse an I2_S code 3 in any field of any byte position class, as the scalar path does", () => {
    const n = 128 * 9;
    const base = codes(n / 4, 11);
    for (const at of positions(n / 4, 32)) {
      for (let field = 0; field < 4; field++) {
        const src = base.slice();
        src[at] = (src[at] ?? 0) | (3 << (2 * field));
        expect(same(0, src, n)).toBe(-2);
      }
    }
  });

  it("should give the scalar path's TQ2_0 bytes and scale, all-zero blocks with any scale included", () => {
    for (const blocks of [1, 2, 5, 33]) {
      expect(same(1, tq2(blocks, blocks, 0x3c00), 256 * blocks)).toBe(0x3c00);
      expect(same(1, tq2(blocks, blocks + 1, 0x3a00, (b) => b % 2 === 0), 256 * blocks)).toBe(blocks === 1 ? -1 : 0x3a00);
    }
    // Every block all zero: −1 whatever the (finite) scales say, negative and zero ones included.
    const zeros = tq2(4, 3, 0x8000, () => true);
    expect(same(1, zeros, 1024)).toBe(-1);
    // One non-zero code only, in the last byte of a block's second group: the block's scale counts.
    const one = tq2(3, 4, 0xbc00, () => true);
    one[66 + 63] = 0x54;
    one[66 + 65] = 0x3c;
    expect(same(1, one, 768)).toBe(0x3c00);
  });

  it("should refuse a TQ2_0 code 3 at every position class and the scales the scalar path refuses", () => {
    const blocks = 5;
    const base = tq2(blocks, 21, 0x3c00);
    for (const at of positions(66 * blocks, 66).concat(positions(64, 32))) {
      if (at % 66 >= 64) {
        continue; // a scale byte, not codes
      }
      for (let field = 0; field < 4; field++) {
        const src = base.slice();
        src[at] = (src[at] ?? 0) | (3 << (2 * field));
        expect(same(1, src, 256 * blocks)).toBe(-2);
      }
    }
    const damaged = (edit: (src: Uint8Array) => void): number => {
      const src = base.slice();
      edit(src);
      return same(1, src, 256 * blocks);
    };
    expect(damaged((s) => (s[66 * 4 + 65] = 0x3d))).toBe(-2); // the last block's scale differs
    expect(damaged((s) => (s[65] = 0x3d))).toBe(-2); // the first block's scale differs
    expect(damaged((s) => (s[66 * 2 + 65] = 0xbc))).toBe(-2); // negative
    expect(damaged((s) => s.fill(0, 66 + 64, 66 + 66))).toBe(-2); // zero
    expect(damaged((s) => (s[66 * 3 + 65] = 0x7c))).toBe(-2); // +inf (bits 0x7c00)
    expect(damaged((s) => (s[66 * 3 + 65] = 0x7e))).toBe(-2); // NaN
  });

  it("should refuse an ISA override it does not know with a RangeError", () => {
    expect(() => transcoder()(0, new Uint8Array(32), 128, new Uint8Array(32), "avx9000")).toThrow(RangeError);
    expect(() => nativeAddon()?.encodeQ8_0?.(0, new Uint8Array(128), 1, 32, new Uint8Array(34), "avx9000")).toThrow(RangeError);
  });
});

describe.skipIf(!probe.available)("native Q8_0 encoder: SIMD path against scalar and the JS codec", () => {
  const WIDTH = [4, 2, 2] as const;
  const NAMES = ["f32", "f16", "bf16"] as const;

  /** encodeQ8_0 of rows × cols `format` values on the default path and the forced scalar one; both must equal the JS codec. */
  function encodeAll(format: 0 | 1 | 2, src: Uint8Array, rows: number, cols: number): Uint8Array {
    const encode = nativeAddon()?.encodeQ8_0;
    if (encode === undefined) {
      throw new Error("native encodeQ8_0 missing");
    }
    const simd = new Uint8Array((rows * cols * 34) / 32);
    const scalar = new Uint8Array(simd.length);
    encode(format, src, rows, cols, simd);
    encode(format, src, rows, cols, scalar, "scalar");
    const name = NAMES[format];
    const want = QUANT_TRAITS.q8_0.encode(QUANT_TRAITS[name].decode(src, rows, cols), rows, cols);
    expect(Buffer.compare(scalar, want)).toBe(0);
    expect(Buffer.compare(simd, want)).toBe(0);
    return simd;
  }

  it("should give the JS codec's bytes on random bit patterns (NaN, ±inf, subnormals) in every source format", () => {
    for (const format of [0, 1, 2] as const) {
      for (let seed = 1; seed <= 6; seed++) {
        const rows = 3;
        const cols = 32 * (1 + (seed % 4));
        const next = lcg(seed * 7919 + format);
        const src = Uint8Array.from({ length: rows * cols * WIDTH[format] }, next);
        encodeAll(format, src, rows, cols);
      }
    }
  });

  it("should round ties away from zero, clamp, and send NaN to 0 as roundf does", () => {
    // amax 127 → d = 1, 1/d = 1: each value is its own rounding input.
    const values = [127, 2.5, -2.5, 0.5, -0.5, 1.5, -1.5, 126.5, -126.5, 0.49999997, -0.49999997, 3.4999998, NaN, -0, 0, 64.5];
    const x = new Float32Array(32);
    x.set(values);
    for (let i = values.length; i < 32; i++) {
      x[i] = (i - 16) + 0.5;
    }
    const got = encodeAll(0, new Uint8Array(x.buffer), 1, 32);
    const q = Array.from(new Int8Array(got.buffer, 2, 16));
    expect(q).toEqual([127, 3, -3, 1, -1, 2, -2, 127, -127, 0, 0, 3, 0, 0, 0, 65]);
    // A large input (over 2 × 2^22 values: split over the threads of a multi-core machine) gives the codec's bytes.
    const big = new Float32Array(32 * 270_000).map((_, i) => Math.sin(i * 0.37) * (1 + (i % 97)));
    encodeAll(0, new Uint8Array(big.buffer), 270_000, 32);
  });
});

describe.skipIf(!probe.available)("native Q6_K encoder: every path against the JS codec", () => {
  const WIDTH = [4, 2, 2] as const;
  const NAMES = ["f32", "f16", "bf16"] as const;
  const PATHS = [undefined, "avx512bw", "avx2", "scalar"] as const;

  /** encodeQ6_K of rows × cols `format` values on every ISA path (each lowered to what the CPU has): the JS codec's bytes. */
  function encodeAll(format: 0 | 1 | 2, src: Uint8Array, rows: number, cols: number): Uint8Array {
    const encode = nativeAddon()?.encodeQ6_K;
    if (encode === undefined) {
      throw new Error("native encodeQ6_K missing");
    }
    const want = QUANT_TRAITS.q6_k.encode(QUANT_TRAITS[NAMES[format]].decode(src, rows, cols), rows, cols);
    for (const isa of PATHS) {
      const got = new Uint8Array(want.length).fill(0xa5);
      expect(encode(format, src, rows, cols, got, isa)).toBe(true);
      expect(Buffer.compare(got, want), `${NAMES[format]} on ${isa ?? "the best path"}`).toBe(0);
    }
    return want;
  }

  it("should give the JS codec's bytes on random bit patterns (NaN, ±inf, subnormals) in every source format", () => {
    for (const format of [0, 1, 2] as const) {
      for (let seed = 1; seed <= 4; seed++) {
        const rows = 2;
        const cols = 256 * (1 + (seed % 3));
        const next = lcg(seed * 104729 + format);
        encodeAll(format, Uint8Array.from({ length: rows * cols * WIDTH[format] }, next), rows, cols);
      }
    }
  });

  it("should give them on weights and the edge sub-blocks: zeros, tiny, clipping, opposite signs, ±inf, NaN, huge", () => {
    const x = new Float32Array(256 * 8).map((_, i) => Math.sin(i * 0.37) * Math.cos(i * 0.011) * 0.05);
    const sub = (b: number, j: number, values: (i: number) => number): void => {
      for (let i = 0; i < 16; i++) {
        x[256 * b + 16 * j + i] = values(i);
      }
    };
    sub(0, 0, () => 0);
    sub(0, 1, (i) => (i === 3 ? 1e-31 : 0)); // below the 1e-30 floor: scale 0
    sub(0, 2, (i) => (i === 0 ? 1 : -0.99)); // opposite-signed values that clip at the largest candidate
    sub(0, 3, (i) => (i % 2 === 0 ? 32 : -31)); // exact grid points, ties
    sub(1, 0, (i) => (i === 5 ? Infinity : 0.5));
    sub(1, 1, (i) => (i === 7 ? NaN : -0.25 * i));
    sub(2, 0, (i) => (i === 1 ? -Infinity : 0));
    sub(3, 0, () => 3.0e38); // d overflows f16: clamped to 65504
    sub(4, 5, (i) => (i - 8) * 2 ** -140); // subnormal float32
    for (let j = 0; j < 16; j++) {
      sub(5, j, (i) => (j + 1) * (i - 7.5)); // every sub-block's scale differs
    }
    const got = encodeAll(0, new Uint8Array(x.buffer), 8, 256);
    expect(got[192]).toBe(0); // the all-zero sub-block's scale
    const big = new Float32Array(2560 * 1700).map((_, i) => Math.sin(i * 0.37) * (1 + (i % 97)) * 1e-3);
    // Over 2^22 values: split over the threads of a multi-core machine.
    expect(Buffer.compare(encodeAll(0, new Uint8Array(big.buffer), 1700, 2560), QUANT_TRAITS.q6_k.encode(big, 1700, 2560))).toBe(0);
  });

  it("should refuse a row width that is not a multiple of 256, a short buffer, and an unknown ISA with a RangeError", () => {
    const encode = nativeAddon()?.encodeQ6_K;
    expect(() => encode?.(0, new Uint8Array(4 * 128), 1, 128, new Uint8Array(210))).toThrow(RangeError);
    expect(() => encode?.(0, new Uint8Array(4 * 256), 1, 256, new Uint8Array(209))).toThrow(RangeError);
    expect(() => encode?.(0, new Uint8Array(4 * 255), 1, 256, new Uint8Array(210))).toThrow(RangeError);
    expect(() => encode?.(3, new Uint8Array(4 * 256), 1, 256, new Uint8Array(210))).toThrow(RangeError);
    expect(() => encode?.(0, new Uint8Array(4 * 256), 1, 256, new Uint8Array(210), "avx9000")).toThrow(RangeError);
  });
});
