/**
 * The native TQ1_0 → t2 load transcoder (native/cpu/tq1.cc, through transcodeTernary format 2) against the JS
 * reference repack (decode, then one γ): the same codes and γ on random block bytes (every byte value, all-zero
 * blocks with any finite d), and the reference's own result or error where the native path hands over (differing,
 * negative, zero or non-finite d). Skipped when the addon is unavailable.
 */
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { nativeAddon, probeNativeCpu } from "../../src/backends/native-cpu/addon.js";
import { f32ToHalf } from "../../src/quant/half.js";
import { loadCodecs, setLoadCodecs } from "../../src/quant/load-codecs.js";
import { repackTernary } from "../../src/quant/repack.js";
import { bothPaths } from "../helpers/load-codecs.js";
import { QUANT_TRAITS } from "../../src/quant/table.js";

const probe = probeNativeCpu();
const RUNS = Number(process.env["BARBELL_FUZZ_RUNS"] ?? 100);

/** repackTernary's result (codes, γ) or error text, with the JS path only and with the native codecs. */
function repackBothPaths(bytes: Uint8Array, rows: number, cols: number): { js: unknown; native: unknown } {
  return bothPaths(() => {
    const p = repackTernary("tq1_0", bytes, rows, cols);
    return { codes: Array.from(p.codes), scale: p.scale };
  });
}

/** The 52 code bytes of a block of zeros. */
const ZERO_BLOCK = QUANT_TRAITS.tq1_0.encode(new Float32Array(256), 1, 256);

function setD(bytes: Uint8Array, block: number, h: number): void {
  bytes[54 * block + 52] = h & 0xff;
  bytes[54 * block + 53] = h >>> 8;
}

describe.skipIf(!probe.available)("native TQ1_0 load transcoder", () => {
  const registered = loadCodecs();
  afterEach(() => setLoadCodecs(registered));

  it("should be offered by the addon (transcodeTernary format 2)", () => {
    expect(registered).toBeDefined();
    const dst = new Uint8Array(64);
    const block = QUANT_TRAITS.tq1_0.encode(Float32Array.from({ length: 256 }, (_, i) => ((i % 3) - 1) * 0.5), 1, 256);
    expect(nativeAddon()?.transcodeTernary?.(2, block, 256, dst)).toBe(f32ToHalf(0.5));
    expect(Array.from(dst.subarray(0, 1))).toEqual([0b00_10_01_00]); // trits −1 0 1 −1 → codes 0 1 2 0, element 0 in the low bits
  });

  it("should give the JS repack's codes and γ, or its error, on random blocks", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 3 }),
        fc.uint8Array({ minLength: 54 * 9, maxLength: 54 * 9 }),
        fc.constantFrom("none", "zero-block", "other-d", "negative", "zero-d", "inf", "nan"),
        (rows, blocksPerRow, raw, damage) => {
          const cols = 256 * blocksPerRow;
          const blocks = rows * blocksPerRow;
          const bytes = raw.slice(0, 54 * blocks);
          for (let b = 0; b < blocks; b++) {
            setD(bytes, b, 0x3600); // 0.375
          }
          const last = blocks - 1;
          if (damage === "zero-block") {
            bytes.set(ZERO_BLOCK.subarray(0, 52), 54 * last); // all trits 0, with another (finite) d
            setD(bytes, last, 0x3c00);
          } else if (damage === "other-d") {
            setD(bytes, last, 0x3c00);
          } else if (damage === "negative") {
            setD(bytes, last, 0xb600);
          } else if (damage === "zero-d") {
            setD(bytes, last, 0x0000);
          } else if (damage === "inf") {
            setD(bytes, last, 0x7c00);
          } else if (damage === "nan") {
            setD(bytes, last, 0x7e00);
          }
          const { js, native } = repackBothPaths(bytes, rows, cols);
          expect(native).toEqual(js);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("should skip all-zero blocks whatever their finite d, as the reference does", () => {
    const values = Float32Array.from({ length: 3 * 256 }, (_, i) => (i < 256 ? 0 : ((i % 3) - 1) * 0.25));
    const bytes = QUANT_TRAITS.tq1_0.encode(values, 3, 256);
    setD(bytes, 0, 0x3c00);
    const { js, native } = repackBothPaths(bytes, 3, 256);
    expect(native).toEqual(js);
    expect((native as { scale: number }).scale).toBe(0.25);
  });
});
