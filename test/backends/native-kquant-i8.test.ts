/**
 * The integer k-quant head (matmulQ8I8 over Q4_K / Q5_K / Q6_K weights): the JS reference's integer view of a
 * block (src/backends/js/kernels/kquant-head.ts) against the formats' own float decoders, the reference against a
 * float64 product (the quantization error it adds), and the native kernels (scalar, AVX2, AVX-512 VNNI: every
 * path this machine runs) bit for bit against the reference on random blocks with edge scales (zero, negative
 * and tiny d and dmin; all codes at their maximum or minimum) and edge activations.
 */
import { afterAll, describe, expect, it } from "vitest";
import type { StorageDType, TensorRef } from "../../src/backends/backend.js";
import { capabilityAccepts } from "../../src/backends/capabilities.js";
import { ArrayBufferMemory, views } from "../../src/backends/host-memory.js";
import { createJsBackend } from "../../src/backends/js/index.js";
import { K_BLOCK_BYTES, kBlockCodes, matmulKI8, unpackKBlock, type KHeadFormat } from "../../src/backends/js/kernels/kquant-head.js";
import { nativeAddon } from "../../src/backends/native-cpu/addon.js";
import { createNativeCpuBackend, nativeCapabilities, probeNativeCpu } from "../../src/backends/native-cpu/index.js";
import { ShapeError, ValueError } from "../../src/core/errors.js";
import { mulberry32 as rng } from "../../src/model/bitnet/fixture.js";
import { f32ToHalf } from "../../src/quant/half.js";
import { QUANT_TRAITS } from "../../src/quant/table.js";

const probe = probeNativeCpu();
const FORMATS = ["q4_k", "q5_k", "q6_k"] as const satisfies readonly KHeadFormat[];
/** Byte offsets of the fp16 scales in a block (d, and dmin for the affine formats). */
const SCALES: Record<KHeadFormat, readonly number[]> = { q4_k: [0, 2], q5_k: [0, 2], q6_k: [208] };

const memory = new ArrayBufferMemory("native-kquant-i8-test");
const js = createJsBackend();

function tensor(dtype: StorageDType, shape: number[], data: ArrayBufferView): TensorRef {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const buffer = memory.alloc(Math.max(8, bytes.byteLength));
  memory.write(buffer, bytes);
  return { buffer, dtype, shape };
}

function zeros(shape: number[]): TensorRef {
  return { buffer: memory.alloc(4 * shape.reduce((a, b) => a * b, 1)), dtype: "f32", shape };
}

function floats(r: () => number, n: number, spread: number): Float32Array {
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * spread);
}

function setHalf(bytes: Uint8Array, at: number, v: number): void {
  const h = f32ToHalf(v);
  bytes[at] = h & 0xff;
  bytes[at + 1] = h >>> 8;
}

/**
 * Random block bytes; every fourth block an edge: all code and scale bytes 0xff (largest codes, scales, mins;
 * Q6_K scale −1) or 0x00, and fp16 scales zero, negative, subnormal or large.
 */
function edgeBlocks(format: KHeadFormat, r: () => number, rows: number, cols: number): Uint8Array {
  const size = K_BLOCK_BYTES[format];
  const bytes = Uint8Array.from({ length: rows * (cols / 256) * size }, () => Math.floor(r() * 256));
  const edgeScales = [0, -0.03, 6e-8, 3.5, -(2 ** -14), 0.01];
  for (let at = 0, b = 0; at < bytes.length; at += size, b++) {
    if (b % 4 === 1) {
      bytes.fill(0xff, at, at + size);
    } else if (b % 4 === 2) {
      bytes.fill(0, at, at + size);
    } else if (b % 4 === 3 && format === "q6_k") {
      bytes.fill(0x80, at + 192, at + 208); // every scale −128
    }
    for (const s of SCALES[format]) {
      const v = b % 2 === 0 ? (r() < 0.3 ? -1 : 1) * 2 ** -8 * (0.5 + r()) : (edgeScales[Math.floor(r() * edgeScales.length)] ?? 0);
      setHalf(bytes, at + s, v);
    }
  }
  return bytes;
}

/** Activations with a zero block, a block of one large value, and mixed magnitudes. */
function edgeActivations(r: () => number, m: number, k: number): Float32Array {
  const x = floats(r, m * k, 3);
  x.fill(0, 0, Math.min(256, k)); // block 0 of row 0: all zeros (scale from the 1e-5 floor)
  if (k >= 512) {
    x.fill(1e-3, 256, 512);
    x[300] = -1e4;
  }
  return x;
}

function bits(t: TensorRef, n: number): Uint32Array {
  return new Uint32Array(views.f32(t).slice(0, n).buffer);
}

/** ISA paths runnable here, lowest first. */
function isaPaths(): string[] {
  const best = nativeAddon()?.features().best ?? "scalar";
  const order = best === "neon" ? ["scalar", "neon"] : ["scalar", "avx2", "avx512bw", "avx512vnni"];
  return order.slice(0, order.indexOf(best) + 1);
}

describe("the integer k-quant head's reference", () => {
  it.each(FORMATS)("unpacks %s blocks to codes, scales and mins that give the format's own decoded values", (format) => {
    const r = rng(3 + format.length);
    const bytes = edgeBlocks(format, r, 1, 256 * 8);
    const decoded = QUANT_TRAITS[format].decode(bytes, 1, 256 * 8);
    const codes = kBlockCodes();
    for (let b = 0; b < 8; b++) {
      unpackKBlock(format, bytes, b * K_BLOCK_BYTES[format], codes);
      for (let e = 0; e < 256; e++) {
        const u = codes.u[e] ?? 0;
        const sc = codes.sc[e >> 4] ?? 0;
        const mn = codes.mn[e >> 4] ?? 0;
        expect(u).toBeLessThan(format === "q4_k" ? 16 : format === "q5_k" ? 32 : 64);
        const want = format === "q6_k" ? codes.d * sc * (u - 32) : Math.fround(codes.d * sc) * u - Math.fround(codes.dmin * mn);
        expect(Math.fround(want)).toBe(decoded[b * 256 + e]);
      }
    }
  });

  it.each(FORMATS)("stays within the activation quantization's error of the float64 product for %s", (format) => {
    const r = rng(11 + format.length);
    const [m, k, n] = [3, 1024, 40];
    const x = floats(r, m * k, 1);
    const w = QUANT_TRAITS[format].encode(floats(r, n * k, 0.5), n, k);
    const got = new Float32Array(m * n);
    matmulKI8(x, format, w, m, k, n, got);
    const dense = QUANT_TRAITS[format].decode(w, n, k);
    let num = 0;
    let den = 0;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let want = 0;
        for (let c = 0; c < k; c++) {
          want += (x[i * k + c] ?? 0) * (dense[j * k + c] ?? 0);
        }
        num += ((got[i * n + j] ?? 0) - want) ** 2;
        den += want * want;
      }
    }
    // int8 per 256 elements: ~0.5 % relative error per product sum; an unpacking error would be ~100 %.
    expect(Math.sqrt(num / den)).toBeLessThan(0.02);
    expect(Math.sqrt(num / den)).toBeGreaterThan(0);
  });

  it("refuses k that is not a multiple of 256 and non-finite activations", () => {
    const w = new Uint8Array(2 * 210);
    expect(() => matmulKI8(new Float32Array(128), "q6_k", w, 1, 128, 2, new Float32Array(2))).toThrow(ShapeError);
    const x = new Float32Array(256);
    x[5] = Number.NaN;
    expect(() => matmulKI8(x, "q6_k", w, 1, 256, 2, new Float32Array(2))).toThrow(ValueError);
  });
});

describe.skipIf(!probe.available)("native integer k-quant heads", () => {
  const caps = nativeCapabilities(nativeAddon() ?? {});

  for (const isa of probe.available ? isaPaths() : []) {
    describe(`on the ${isa} path`, () => {
      const backend = createNativeCpuBackend({ threads: 2, isa });
      afterAll(() => backend.dispose());

      it.each(FORMATS)("computes the %s integer head bit for bit as the reference (random and edge blocks, 1 to 5 rows)", (format) => {
        const r = rng(format.length * 17 + isa.length);
        for (const [m, k, n, encoded] of [
          [1, 256, 3, false],
          [1, 1536, 67, true],
          [1, 2048, 41, false],
          [5, 512, 33, false],
          [2, 1024, 17, true],
        ] as const) {
          const weights = encoded ? QUANT_TRAITS[format].encode(floats(r, n * k, 0.5), n, k) : edgeBlocks(format, r, n, k);
          const x = tensor("f32", [m, k], edgeActivations(r, m, k));
          const w = tensor(format, [n, k], weights);
          const got = zeros([m, n]);
          const want = zeros([m, n]);
          expect(capabilityAccepts("matmulQ8I8", caps.matmulQ8I8 ?? true, [x, w, got])).toBe(true);
          backend.kernels.matmulQ8I8?.(x, w, got);
          js.kernels.matmulQ8I8(x, w, want);
          expect(bits(got, m * n)).toEqual(bits(want, m * n));
        }
      });

      it("refuses non-finite activations and k off the block", () => {
        const x = floats(rng(5), 512, 1);
        x[300] = Number.POSITIVE_INFINITY;
        const w = tensor("q4_k", [2, 512], new Uint8Array(2 * 2 * 144));
        expect(() => backend.kernels.matmulQ8I8?.(tensor("f32", [1, 512], x), w, zeros([1, 2]))).toThrow(/x index 300/);
        const w2 = tensor("q5_k", [2, 128], new Uint8Array(2 * 176));
        expect(() => backend.kernels.matmulQ8I8?.(tensor("f32", [1, 128], new Float32Array(128)), w2, zeros([1, 2]))).toThrow(ShapeError);
      });
    });
  }
});
