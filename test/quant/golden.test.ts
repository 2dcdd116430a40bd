import { describe, expect, it } from "vitest";
import { QUANT_TRAITS } from "../../src/quant/table.js";

/** Float32Array with −0 folded into 0, as a plain array, so toEqual compares values only. */
function plain(values: Float32Array): number[] {
  return Array.from(values, (v) => v + 0);
}

function zerosExcept(n: number, at: Record<number, number>): number[] {
  const out = new Array<number>(n).fill(0);
  for (const [k, v] of Object.entries(at)) {
    out[Number(k)] = v;
  }
  return out;
}

describe("golden blocks built by hand from the layouts", () => {
  it("should store f32 as little-endian binary32", () => {
    const bytes = Uint8Array.of(0x00, 0x00, 0xc0, 0x3f, 0x00, 0x00, 0x80, 0xbf);
    expect(plain(QUANT_TRAITS.f32.decode(bytes, 1, 2))).toEqual([1.5, -1]);
    expect(QUANT_TRAITS.f32.encode(Float32Array.of(1.5, -1), 1, 2)).toEqual(bytes);
  });

  it("should store f16 as little-endian binary16", () => {
    const bytes = Uint8Array.of(0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b, 0x01, 0x00);
    expect(plain(QUANT_TRAITS.f16.decode(bytes, 2, 2))).toEqual([1, -2, 65504, 2 ** -24]);
    expect(QUANT_TRAITS.f16.encode(Float32Array.of(1, -2, 65504, 2 ** -24), 2, 2)).toEqual(bytes);
  });

  it("should store bf16 as the little-endian upper half of binary32", () => {
    const bytes = Uint8Array.of(0x80, 0x3f, 0x49, 0x40);
    expect(plain(QUANT_TRAITS.bf16.decode(bytes, 1, 2))).toEqual([1, 3.140625]);
    expect(QUANT_TRAITS.bf16.encode(Float32Array.of(1, 3.140625), 1, 2)).toEqual(bytes);
  });

  it("should put the q8_0 fp16 scale first and int8 values after it", () => {
    const bytes = new Uint8Array(34);
    bytes[1] = 0x38; // d = 0.5 (0x3800)
    bytes[2 + 5] = 0xfd; // qs[5] = −3
    bytes[2 + 31] = 0x7f; // qs[31] = 127
    expect(plain(QUANT_TRAITS.q8_0.decode(bytes, 1, 32))).toEqual(zerosExcept(32, { 5: -1.5, 31: 63.5 }));
    // absmax 127 gives d = 1 exactly, so the values come back as qs.
    const values = Float32Array.from(zerosExcept(32, { 0: 127, 5: -3, 9: 2.5, 10: -2.5 }));
    const enc = QUANT_TRAITS.q8_0.encode(values, 1, 32);
    expect([enc[0], enc[1]]).toEqual([0x00, 0x3c]);
    expect(Array.from(enc.subarray(2), (b) => (b << 24) >> 24)).toEqual(
      zerosExcept(32, { 0: 127, 5: -3, 9: 3, 10: -3 }), // roundf: ties away from zero
    );
  });

  it("should decode q6_k fields from ql, qh and scales as in ggml's dequantize_row_q6_K", () => {
    const bytes = new Uint8Array(210);
    bytes.fill(0xaa, 128, 192); // every high pair = 2, low nibble 0 → q6 = 32 → value 0
    for (let j = 0; j < 16; j++) {
      bytes[192 + j] = j + 1;
    }
    bytes[192 + 12] = 0xf3; // scales[12] = −13
    bytes[208] = 0x00;
    bytes[209] = 0x38; // d = 0.5
    // Element 37: half 0, l = 5, the "l + 32" slot: low nibble of ql[37], qh[5] bits 3..2, scales[2].
    bytes[37] = 0x0a;
    // Element 200: half 1, l = 8, the "l + 64" slot: high nibble of ql[64 + 8], qh[128 + 32 + 8] bits 5..4,
    // scales[8 + 4].
    bytes[72] = 0x30;
    bytes[168] = 0x9a;
    // Element 255: half 1, l = 31, the "l + 96" slot: high nibble of ql[64 + 63], qh[128 + 63] bits 7..6,
    // scales[8 + 1 + 6].
    bytes[127] = 0xf0;
    bytes[191] = 0xea;
    const out = QUANT_TRAITS.q6_k.decode(bytes, 1, 256);
    // 0.5·3·((0xa | 2 << 4) − 32) = 15;  0.5·(−13)·((3 | 1 << 4) − 32) = 84.5;
    // 0.5·16·((0xf | 3 << 4) − 32) = 248
    expect(plain(out)).toEqual(zerosExcept(256, { 37: 15, 200: 84.5, 255: 248 }));
  });

  it("should put q1_0 sign bits LSB-first after the fp16 scale", () => {
    const bytes = new Uint8Array(18);
    bytes[1] = 0x34; // d = 0.25
    bytes[2 + 4] = 1 << 5; // element 37 = 8·4 + 5
    const expected = new Array<number>(128).fill(-0.25);
    expected[37] = 0.25;
    expect(plain(QUANT_TRAITS.q1_0.decode(bytes, 1, 128))).toEqual(expected);
    expect(QUANT_TRAITS.q1_0.encode(Float32Array.from(expected), 1, 128)).toEqual(bytes);
  });

  it("should encode zero as +d in q1_0, as x ≥ 0 sets the bit", () => {
    const values = new Float32Array(128).fill(-2);
    values[0] = 0;
    const enc = QUANT_TRAITS.q1_0.encode(values, 1, 128);
    expect(enc[2]).toBe(0x01);
    expect(QUANT_TRAITS.q1_0.decode(enc, 1, 128)[0]).toBe((127 * 2) / 128);
  });

  it("should put tq2_0 element 128h + m + 32n in bits 2n of qs[32h + m] and d last", () => {
    const bytes = new Uint8Array(66).fill(0x55, 0, 64); // all codes 1 → 0
    bytes[65] = 0x3c; // d = 1
    bytes[5] = 0x59; // element 37 = 5 + 32·1 → bits 3..2 = 2 (+1)
    bytes[32 + 8] = 0x45; // element 200 = 128 + 8 + 32·2 → bits 5..4 = 0 (−1)
    const values = zerosExcept(256, { 37: 1, 200: -1 });
    expect(plain(QUANT_TRAITS.tq2_0.decode(bytes, 1, 256))).toEqual(values);
    expect(QUANT_TRAITS.tq2_0.encode(Float32Array.from(values), 1, 256)).toEqual(bytes);
  });

  it("should store tq1_0 trits as base-3 fractions in qs, then qh, then d", () => {
    const bytes = new Uint8Array(54).fill(128, 0, 48); // five zero trits: q = 121 → ceil(121·256/243) = 128
    bytes.fill(127, 48, 52); // four zero trits, ×3: q = 120 → 127
    bytes[53] = 0x40; // d = 2
    bytes[5] = 156; // element 37 = 5 + 32·1 → t = 1,2,1,1,1: q = 148 → 156
    bytes[32 + 10] = 213; // element 170 = 160 + 10 + 16·0 → t = 2,1,1,1,1: q = 202 → 213
    bytes[48 + 2] = 117; // element 250 = 240 + 2 + 4·2 → t = 1,1,0,1 (·3): q = 111 → 117
    const values = zerosExcept(256, { 37: 2, 170: 2, 250: -2 });
    expect(plain(QUANT_TRAITS.tq1_0.decode(bytes, 1, 256))).toEqual(values);
    expect(QUANT_TRAITS.tq1_0.encode(Float32Array.from(values), 1, 256)).toEqual(bytes);
  });

  it("should put i2_s element 128b + p + 32g in bits 7−2g of block byte p, then γ and 28 zero bytes", () => {
    const bytes = new Uint8Array(2 * 32 + 32).fill(0x55, 0, 64);
    bytes[5] = 0x65; // element 37 = 5 + 32·1 → bits 5..4 = 2 (+1)
    bytes[4] = 0x54; // element 100 = 4 + 32·3 → bits 1..0 = 0 (−1)
    bytes[32 + 0] = 0x95; // element 128 = block 1, p 0, g 0 → bits 7..6 = 2 (+1)
    bytes.set([0x00, 0x00, 0x00, 0x3f], 64); // γ = 0.5
    const values = zerosExcept(256, { 37: 0.5, 100: -0.5, 128: 0.5 });
    expect(plain(QUANT_TRAITS.i2_s.decode(bytes, 2, 128))).toEqual(values);
    expect(QUANT_TRAITS.i2_s.encode(Float32Array.from(values), 2, 128)).toEqual(bytes);
  });

  it("should treat i2_s values below 1e-6 as zero and keep only the sign of others", () => {
    const values = zerosExcept(128, { 0: 5e-7, 1: -5e-7, 2: 0.25, 3: -1 });
    const enc = QUANT_TRAITS.i2_s.encode(Float32Array.from(values), 1, 128);
    expect(plain(QUANT_TRAITS.i2_s.decode(enc, 1, 128))).toEqual(zerosExcept(128, { 2: 1, 3: -1 }));
  });

  it("should pack hf_packed rows r, r+R, r+2R, r+3R of one column into one byte", () => {
    // rows 8, cols 3: R = 2, packed [2, 3]. W[5, 1] → plane 2, byte [1, 1]; W[0, 2] → plane 0, byte [0, 2].
    const bytes = new Uint8Array(6).fill(0x55);
    bytes[1 * 3 + 1] = 0x65;
    bytes[0 * 3 + 2] = 0x54;
    const values = zerosExcept(24, { [5 * 3 + 1]: 1, [0 * 3 + 2]: -1 });
    expect(plain(QUANT_TRAITS.hf_packed.decode(bytes, 8, 3))).toEqual(values);
    expect(QUANT_TRAITS.hf_packed.encode(Float32Array.from(values), 8, 3)).toEqual(bytes);
  });

  it("should read the unused hf_packed code 3 as zero", () => {
    expect(plain(QUANT_TRAITS.hf_packed.decode(Uint8Array.of(0xff, 0xfd), 4, 2))).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
  });
});
