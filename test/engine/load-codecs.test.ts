/**
 * The native load-time transcoders (native/cpu/load.cc) against the JS reference they replace: I2_S and
 * TQ2_0 → t2 codes and γ, and the Q8_0 requantization of a float head, byte for byte; input the native path
 * does not take (a code 3, TQ2_0 scales that differ) still ends in the reference's own error.
 */
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { probeNativeCpu } from "../../src/backends/native-cpu/addon.js";
import { nativeAddon } from "../../src/backends/native-cpu/addon.js";
import { loadCodecs, setLoadCodecs, type LoadCodecs } from "../../src/quant/load-codecs.js";
import { bothPaths } from "../helpers/load-codecs.js";
import { repackTernary, type TernaryPacked } from "../../src/quant/repack.js";
import { QUANT_TRAITS } from "../../src/quant/table.js";

const probe = probeNativeCpu();


function randomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

/** Random trits (codes 0–2) with `zeroRows` leading all-zero rows, encoded as `format` with scale γ. */
function ternary(format: "i2_s" | "tq2_0", rows: number, cols: number, seed: number, gamma: number, zeroRows: number): Uint8Array {
  const r = randomBytes(rows * cols, seed);
  const values = Float32Array.from(r, (b, i) => (i < zeroRows * cols ? 0 : ((b % 3) - 1) * gamma));
  return QUANT_TRAITS[format].encode(values, rows, cols);
}

const packed = (p: TernaryPacked | string): unknown => (typeof p === "string" ? p : { codes: Array.from(p.codes), scale: p.scale });

describe.skipIf(!probe.available)("native load codecs", () => {
  const registered = loadCodecs();
  afterEach(() => setLoadCodecs(registered));

  it("should be registered when the addon loads", () => {
    expect(nativeAddon()).toBeDefined();
    expect(registered).toBeDefined();
  });

  it("should give the JS repack's codes and γ for I2_S and TQ2_0, and its errors where it refuses", () => {
    fc.assert(
      fc.property(
        fc.constantFrom("i2_s" as const, "tq2_0" as const),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer(),
        fc.integer({ min: 0, max: 2 }),
        fc.constantFrom("none", "code3", "scale", "negative"),
        (format, rows, blocks, seed, zeroRows, damage) => {
          const cols = 256 * blocks;
          const bytes = ternary(format, rows, cols, seed, 0.375, Math.min(zeroRows, rows));
          const last = rows - 1;
          if (damage === "code3") {
            bytes[(seed >>> 0) % ((rows * cols) / 4) % 64] = 0xff;
          } else if (format === "tq2_0" && damage === "scale" && last > 0) {
            bytes[66 * (last * blocks) + 65] = 0x3c; // d = 1 instead of 0.375 in the last row's first block
          } else if (format === "tq2_0" && damage === "negative") {
            bytes[66 * (last * blocks) + 65] = (bytes[66 * (last * blocks) + 65] ?? 0) | 0x80;
          }
          const { js, native } = bothPaths(() => repackTernary(format, bytes, rows, cols));
          expect(packed(native)).toEqual(packed(js));
        },
      ),
      { numRuns: 80 },
    );
  });

  it("should requantize f32, f16 and bf16 rows to the same Q8_0 bytes as the JS encoder, NaN, ±inf and subnormals included", () => {
    const codecs = registered as LoadCodecs;
    fc.assert(
      fc.property(fc.constantFrom(0, 1, 2), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 3 }), fc.integer(), (format, rows, blocks, seed) => {
        const cols = 32 * blocks;
        const n = rows * cols;
        const width = format === 0 ? 4 : 2;
        const bytes = randomBytes(n * width, seed);
        // Some rows of ordinary magnitudes, so not every block is dominated by a huge or non-finite value.
        if (format === 0) {
          const f = new Float32Array(bytes.buffer);
          for (let i = 0; i < n; i += 3) {
            f[i] = ((bytes[i] ?? 0) - 128) / 64;
          }
        }
        const name = (["f32", "f16", "bf16"] as const)[format] ?? "f32";
        const want = QUANT_TRAITS.q8_0.encode(QUANT_TRAITS[name].decode(bytes, rows, cols), rows, cols);
        const got = new Uint8Array(want.length);
        codecs.encodeQ8_0(format, bytes, rows, cols, got);
        expect(Array.from(got)).toEqual(Array.from(want));
      }),
      { numRuns: 120 },
    );
  });

  it("should refuse arrays shorter than the shape with a RangeError, not read past them", () => {
    const codecs = registered as LoadCodecs;
    expect(() => codecs.encodeQ8_0(1, new Uint8Array(63), 1, 32, new Uint8Array(34))).toThrow(RangeError);
    expect(() => codecs.transcodeTernary(1, new Uint8Array(65), 256, new Uint8Array(64))).toThrow(RangeError);
    expect(() => codecs.transcodeTernary(0, new Uint8Array(32), 100, new Uint8Array(32))).toThrow(RangeError);
  });
});
