import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { halfToF32 } from "../../src/quant/half.js";
import { QUANT_TRAITS } from "../../src/quant/table.js";

const RUNS = Number(process.env["BARBELL_FUZZ_RUNS"] ?? 100);

/**
 * A literal transcription of ggml's `dequantize_row_q6_K` loop, every float op rounded to
 * float32 as C does, to check the fast decoder against.
 */
function referenceQ6K(bytes: Uint8Array, blocks: number): Float32Array {
  const y = new Float32Array(blocks * 256);
  let yi = 0;
  for (let i = 0; i < blocks; i++) {
    const base = i * 210;
    const d = halfToF32((bytes[base + 208] ?? 0) | ((bytes[base + 209] ?? 0) << 8));
    let ql = base;
    let qh = base + 128;
    let sc = base + 192;
    for (let n = 0; n < 256; n += 128) {
      for (let l = 0; l < 32; ++l) {
        const is = Math.trunc(l / 16);
        const q1 = ((bytes[ql + l] ?? 0) & 0xf) | ((((bytes[qh + l] ?? 0) >> 0) & 3) << 4);
        const q2 = ((bytes[ql + l + 32] ?? 0) & 0xf) | ((((bytes[qh + l] ?? 0) >> 2) & 3) << 4);
        const q3 = ((bytes[ql + l] ?? 0) >> 4) | ((((bytes[qh + l] ?? 0) >> 4) & 3) << 4);
        const q4 = ((bytes[ql + l + 32] ?? 0) >> 4) | ((((bytes[qh + l] ?? 0) >> 6) & 3) << 4);
        const s = (k: number): number => ((bytes[sc + is + k] ?? 0) << 24) >> 24;
        y[yi + l] = Math.fround(Math.fround(d * s(0)) * (q1 - 32));
        y[yi + l + 32] = Math.fround(Math.fround(d * s(2)) * (q2 - 32));
        y[yi + l + 64] = Math.fround(Math.fround(d * s(4)) * (q3 - 32));
        y[yi + l + 96] = Math.fround(Math.fround(d * s(6)) * (q4 - 32));
      }
      yi += 128;
      ql += 64;
      qh += 32;
      sc += 8;
    }
  }
  return y;
}

describe("decoders against reference transcriptions", () => {
  it("should decode random q6_k blocks bit for bit like ggml's loop", () => {
    const t = QUANT_TRAITS.q6_k;
    const arb = fc
      .tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 0, max: 0x7bff }), fc.boolean())
      .chain(([blocks, d, neg]) =>
        fc.record({
          blocks: fc.constant(blocks),
          d: fc.constant(neg ? d | 0x8000 : d),
          bytes: fc.uint8Array({ minLength: 210 * blocks, maxLength: 210 * blocks }),
        }),
      );
    fc.assert(
      fc.property(arb, ({ blocks, d, bytes }) => {
        for (let b = 0; b < blocks; b++) {
          bytes[b * 210 + 208] = d & 0xff;
          bytes[b * 210 + 209] = d >>> 8;
        }
        const got = t.decode(bytes, 1, 256 * blocks);
        const want = referenceQ6K(bytes, blocks);
        expect(new Uint32Array(got.buffer)).toEqual(new Uint32Array(want.buffer));
      }),
      { numRuns: RUNS },
    );
  });

  it("should decode every tq1_0 byte value with the §3.5 fixed-point formula", () => {
    const t = QUANT_TRAITS.tq1_0;
    for (let v = 0; v < 256; v++) {
      const bytes = new Uint8Array(54).fill(128, 0, 48).fill(127, 48, 52);
      bytes[53] = 0x3c; // d = 1
      bytes[0] = v; // elements 0, 32, 64, 96, 128
      const out = t.decode(bytes, 1, 256);
      const pow3 = [1, 3, 9, 27, 81];
      pow3.forEach((p, n) => {
        expect(out[32 * n]).toBe(((((v * p) & 0xff) * 3) >> 8) - 1);
      });
    }
  });

  it("should pack every combination of five trits into a byte that decodes back to them", () => {
    const t = QUANT_TRAITS.tq1_0;
    for (let q = 0; q < 243; q++) {
      const values = new Float32Array(256);
      const trits = [4, 3, 2, 1, 0].map((k) => (Math.trunc(q / 3 ** k) % 3) - 1);
      trits.forEach((w, n) => {
        values[160 + 3 + 16 * n] = w; // all five in qs[35]
        if (n < 4) {
          values[240 + 1 + 4 * n] = w; // the first four in qh[1]
        }
      });
      values[0] = 1; // keeps d = 1 even when every trit above is 0 or −1
      const out = t.decode(t.encode(values, 1, 256), 1, 256);
      expect(Array.from(out, (v) => v + 0)).toEqual(Array.from(values, (v) => v + 0));
    }
  });
});
