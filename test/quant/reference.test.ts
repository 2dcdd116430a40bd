import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { halfToF32 } from "../../src/quant/half.js";
import { QUANT_TRAITS } from "../../src/quant/table.js";

const RUNS = Number(process.env["BARBELL_FUZZ_RUNS"] ?? 100);

/**
 * Q6_K decoded one element at a time from the layout description (docs/BITNET.md §3.8), written
 * independently of the block decoder's loop structure. Element e of a 256-element block:
 *   half h = e >> 7, quarter q = (e >> 5) & 3, lane l = e & 31;
 *   low 4 bits: byte 64h + 32·(q & 1) + l of ql, high nibble when q ≥ 2;
 *   high 2 bits: byte 128 + 32h + l (qh), bits 2q..2q+1;
 *   int8 scale: byte 192 + 8h + 2q + (l >> 4); d: fp16 at bytes 208..209.
 *   value = fround(fround(d · scale) · (q6 − 32)), float32 at each step as in C.
 */
function referenceQ6K(bytes: Uint8Array, blocks: number): Float32Array {
  const y = new Float32Array(blocks * 256);
  for (let e = 0; e < y.length; e++) {
    const base = Math.floor(e / 256) * 210;
    const local = e % 256;
    const h = local >> 7;
    const q = (local >> 5) & 3;
    const l = local & 31;
    const lowByte = bytes[base + 64 * h + 32 * (q & 1) + l] ?? 0;
    const low = q >= 2 ? lowByte >> 4 : lowByte & 0xf;
    const high = ((bytes[base + 128 + 32 * h + l] ?? 0) >> (2 * q)) & 3;
    const scale = ((bytes[base + 192 + 8 * h + 2 * q + (l >> 4)] ?? 0) << 24) >> 24;
    const d = halfToF32((bytes[base + 208] ?? 0) | ((bytes[base + 209] ?? 0) << 8));
    y[e] = Math.fround(Math.fround(d * scale) * ((low | (high << 4)) - 32));
  }
  return y;
}

describe("decoders against independent per-element references", () => {
  it("should decode random q6_k blocks bit for bit like the per-element layout formula", () => {
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
