import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FormatError } from "../../src/core/errors.js";
import { halfToF32 } from "../../src/quant/half.js";
import { QUANT_TRAITS } from "../../src/quant/table.js";

const RUNS = Number(process.env["BARBELL_FUZZ_RUNS"] ?? 100);

/** ggml's get_scale_min_k4, written literally. */
function getScaleMinK4(j: number, q: Uint8Array, at: number): [number, number] {
  const b = (i: number): number => q[at + i] ?? 0;
  return j < 4
    ? [b(j) & 63, b(j + 4) & 63]
    : [(b(j + 4) & 0xf) | ((b(j - 4) >> 6) << 4), (b(j + 4) >> 4) | ((b(j - 0) >> 6) << 4)];
}

/**
 * Q4_K / Q5_K decoded one element at a time from the block layout (ggml's block_q4_K / block_q5_K), in C's
 * float32 steps: fround(fround(fround(d · sc) · q) − fround(dmin · m)). Element e of a block: chunk c = e >> 6,
 * upper = bit 5 of e, lane l = e & 31; sub-block 2c + upper; nibble of qs[32c + l]; Q5_K's fifth bit is bit
 * 2c + upper of qh[l].
 */
function referenceK(bits: 4 | 5, bytes: Uint8Array, blocks: number): Float32Array {
  const blockBytes = bits === 4 ? 144 : 176;
  const qsAt = bits === 4 ? 16 : 48;
  const y = new Float32Array(blocks * 256);
  for (let e = 0; e < y.length; e++) {
    const base = Math.floor(e / 256) * blockBytes;
    const local = e % 256;
    const c = local >> 6;
    const upper = (local >> 5) & 1;
    const l = local & 31;
    const byte = bytes[base + qsAt + 32 * c + l] ?? 0;
    let q = upper === 1 ? byte >> 4 : byte & 0xf;
    if (bits === 5 && (((bytes[base + 16 + l] ?? 0) >> (2 * c + upper)) & 1) === 1) {
      q += 16;
    }
    const d = halfToF32((bytes[base] ?? 0) | ((bytes[base + 1] ?? 0) << 8));
    const dmin = halfToF32((bytes[base + 2] ?? 0) | ((bytes[base + 3] ?? 0) << 8));
    const [sc, m] = getScaleMinK4(2 * c + upper, bytes, base + 4);
    y[e] = Math.fround(Math.fround(Math.fround(d * sc) * q) - Math.fround(dmin * m));
  }
  return y;
}

/** Uniform values in [lo, hi) from a seeded LCG. */
function uniform(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    out[i] = lo + (s / 2 ** 31) * (hi - lo);
  }
  return out;
}

const FORMATS = [
  ["q4_k", 4],
  ["q5_k", 5],
] as const;

describe.each(FORMATS)("%s", (name, bits) => {
  const t = QUANT_TRAITS[name];

  it("should decode random blocks bit for bit like the per-element layout formula", () => {
    const half = fc.integer({ min: 0, max: 0xfbff }).filter((h) => (h & 0x7c00) !== 0x7c00);
    const arb = fc
      .tuple(fc.integer({ min: 1, max: 3 }), half, half)
      .chain(([blocks, d, dmin]) =>
        fc.record({
          blocks: fc.constant(blocks),
          d: fc.constant(d),
          dmin: fc.constant(dmin),
          bytes: fc.uint8Array({ minLength: t.blockBytes * blocks, maxLength: t.blockBytes * blocks }),
        }),
      );
    fc.assert(
      fc.property(arb, ({ blocks, d, dmin, bytes }) => {
        for (let b = 0; b < blocks; b++) {
          const at = b * t.blockBytes;
          bytes.set([d & 0xff, d >>> 8, dmin & 0xff, dmin >>> 8], at);
        }
        const got = t.decode(bytes, 1, 256 * blocks);
        expect(new Uint32Array(got.buffer)).toEqual(new Uint32Array(referenceK(bits, bytes, blocks).buffer));
      }),
      { numRuns: RUNS },
    );
  });

  it("should read a hand-built block: 6-bit scales and mins of the upper sub-blocks, the fifth bit", () => {
    const bytes = new Uint8Array(t.blockBytes);
    const qsAt = bits === 4 ? 16 : 48;
    bytes.set([0x00, 0x38, 0x00, 0x34], 0); // d = 0.5, dmin = 0.25
    // Sub-block 5 (chunk 2, upper nibbles): sc = 0x2 | (scales[1] >> 6) << 4 = 0x32 = 50, m = 0x3 | (scales[5] >> 6) << 4 = 0x13 = 19.
    bytes[4 + 9] = 0x32;
    bytes[4 + 1] = 0xc0 | 7; // sub-block 1's scale stays 7, its top bits feed sub-block 5's scale
    bytes[4 + 5] = 0x40 | 9; // sub-block 1's min stays 9, its top bits feed sub-block 5's min
    bytes[qsAt + 64 + 3] = 0xa0; // element 128 + 32 + 3 = 163: code 10 (upper nibble)
    bytes[qsAt + 32 + 3] = 0x06; // element 64 + 3 = 67 (sub-block 2: scale 0, min 0): 0
    bytes[qsAt + 3] = 0x05; // element 3 (sub-block 0: scale 0, min 0): 0
    bytes[qsAt + 0] = 0x40; // element 32 (sub-block 1: scale 7, min 9): 0.5·7·4 − 0.25·9
    if (bits === 5) {
      bytes[16 + 3] = 1 << 5; // element 163's fifth bit: code 26
    }
    const out = t.decode(bytes, 1, 256);
    const code = bits === 5 ? 26 : 10;
    expect(out[163]).toBe(0.5 * 50 * code - 0.25 * 19);
    expect(out[32]).toBe(0.5 * 7 * 4 - 0.25 * 9);
    expect(out[33]).toBe(-0.25 * 9);
    expect(out[67]).toBe(0);
    expect(out[3]).toBe(0);
  });

  it("should reject a block whose d or dmin is inf or NaN", () => {
    for (const at of [0, 2]) {
      for (const h of [0x7c00, 0xfc00, 0x7e00]) {
        const bytes = t.encode(uniform(512, 7), 2, 256);
        bytes[t.blockBytes + at] = h & 0xff;
        bytes[t.blockBytes + at + 1] = h >>> 8;
        expect(() => t.decode(bytes, 2, 256)).toThrow(FormatError);
      }
    }
  });

  // Scales from 0.5 keep d and dmin normal fp16 numbers; below ~0.06 they become subnormal and coarser (as in ggml).
  it("should keep each element within half a step of its sub-block after a round trip", () => {
    const levels = (1 << bits) - 1;
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 30 }), fc.double({ min: 0.5, max: 1e3, noNaN: true }), (seed, scale) => {
        const values = uniform(512, seed, -scale, scale * 0.7);
        const decoded = t.decode(t.encode(values, 2, 256), 2, 256);
        const range = (s: number): number => {
          const sub = values.subarray(s, s + 32);
          return Math.max(...sub, 0) - Math.min(...sub, 0);
        };
        for (let s = 0; s < values.length; s += 32) {
          // Half a step: the sub-block's range over its levels, widened by the min's 6-bit grid (dmin ≈ widest
          // offset/63, rounded up) and rounded up on the scale's grid (d ≈ widest step/63).
          let widest = 0;
          let offset = 0;
          for (let j = s - (s % 256); j < s - (s % 256) + 256; j += 32) {
            widest = Math.max(widest, range(j));
            offset = Math.max(offset, -Math.min(...values.subarray(j, j + 32), 0));
          }
          const dmin = (1.01 * offset) / 63;
          const bound = 0.5 * ((range(s) + dmin) / levels + (1.01 * (widest + dmin)) / levels / 63) + 1e-6 * scale;
          for (let i = s; i < s + 32; i++) {
            expect(Math.abs((decoded[i] ?? 0) - (values[i] ?? 0))).toBeLessThanOrEqual(bound);
          }
        }
      }),
      { numRuns: Math.min(RUNS, 50) },
    );
  });

  it("should keep the RMS error on uniform data under its bit budget", () => {
    const values = uniform(256 * 8, 12345);
    const decoded = t.decode(t.encode(values, 8, 256), 8, 256);
    let err = 0;
    let sig = 0;
    for (let i = 0; i < values.length; i++) {
      err += ((decoded[i] ?? 0) - (values[i] ?? 0)) ** 2;
      sig += (values[i] ?? 0) ** 2;
    }
    // Uniform quantization of [−1, 1) over 2^bits levels: RMS ≈ step/√12 = 2/(2^bits − 1)/√12 over a signal of 1/√3.
    expect(Math.sqrt(err / sig)).toBeLessThan(bits === 4 ? 0.08 : 0.04);
  });

  it("should encode zeros and all-positive blocks without offsets", () => {
    expect(Array.from(t.decode(t.encode(new Float32Array(256), 1, 256), 1, 256))).toEqual(new Array<number>(256).fill(0));
    const bytes = t.encode(uniform(256, 3, 0.5, 2), 1, 256);
    expect([bytes[2], bytes[3]]).toEqual([0, 0]); // dmin = 0
  });
});

describe("k-quants across formats", () => {
  it("should make q5_k at least twice as accurate as q4_k on the same values", () => {
    const values = uniform(256 * 16, 99);
    const rms = (name: "q4_k" | "q5_k"): number => {
      const t = QUANT_TRAITS[name];
      const d = t.decode(t.encode(values, 16, 256), 16, 256);
      return Math.sqrt(d.reduce((a, v, i) => a + (v - (values[i] ?? 0)) ** 2, 0) / values.length);
    };
    expect(rms("q5_k") * 1.8).toBeLessThan(rms("q4_k"));
  });
});
