/**
 * The k-quant heads and embeddings (Q4_K, Q5_K, Q6_K; native/cpu/kquant*.cc) against the JS reference on every
 * ISA path this machine runs: embedding rows bit for bit, matmulDense within NMSE 1e-10 (the float contract),
 * both on encoded weights and on random block bytes (every code, scale and min pattern); and GGUF models whose
 * embedding or head is Q4_K, Q5_K, Q6_K or Q8_0 run strictly on native-cpu. Skipped when the addon is unavailable.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { StorageDType, TensorRef } from "../../src/backends/backend.js";
import { capabilityAccepts } from "../../src/backends/capabilities.js";
import { ArrayBufferMemory, views } from "../../src/backends/host-memory.js";
import { createJsBackend } from "../../src/backends/js/index.js";
import { nativeAddon } from "../../src/backends/native-cpu/addon.js";
import { createNativeCpuBackend, nativeCapabilities, probeNativeCpu } from "../../src/backends/native-cpu/index.js";
import { ShapeError } from "../../src/core/errors.js";
import { loadModel } from "../../src/engine/model.js";
import { makeBitnetFixture, mulberry32 as rng } from "../../src/model/bitnet/fixture.js";
import { f32ToHalf } from "../../src/quant/half.js";
import { QUANT_TRAITS } from "../../src/quant/table.js";

const probe = probeNativeCpu();
const FORMATS = ["q4_k", "q5_k", "q6_k"] as const;
type KFormat = (typeof FORMATS)[number];
/** Byte offsets of the fp16 scales in a block (d, and dmin for the affine formats). */
const SCALES: Record<KFormat, readonly number[]> = { q4_k: [0, 2], q5_k: [0, 2], q6_k: [208] };

const memory = new ArrayBufferMemory("native-kquant-test");
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

/** Random block bytes with finite fp16 scales of either sign around 2^-8 (every code and 6-bit pattern occurs). */
function randomBlocks(format: KFormat, r: () => number, rows: number, cols: number): Uint8Array {
  const t = QUANT_TRAITS[format];
  const bytes = Uint8Array.from({ length: rows * (cols / 256) * t.blockBytes }, () => Math.floor(r() * 256));
  for (let at = 0; at < bytes.length; at += t.blockBytes) {
    for (const s of SCALES[format]) {
      const h = f32ToHalf((r() < 0.2 ? -1 : 1) * 2 ** -8 * (0.5 + r()));
      bytes[at + s] = h & 0xff;
      bytes[at + s + 1] = h >>> 8;
    }
  }
  return bytes;
}

function nmse(got: Float32Array, want: Float32Array): number {
  let num = 0;
  let den = 0;
  want.forEach((w, i) => {
    num += ((got[i] ?? 0) - w) ** 2;
    den += w * w;
  });
  return num / Math.max(den, 1e-30);
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

describe.skipIf(!probe.available)("native k-quant heads and embeddings", () => {
  const caps = nativeCapabilities(nativeAddon() ?? {});

  for (const isa of probe.available ? isaPaths() : []) {
    describe(`on the ${isa} path`, () => {
      const backend = createNativeCpuBackend({ threads: 2, isa });
      afterAll(() => backend.dispose());

      it.each(FORMATS)("runs %s matmulDense within NMSE 1e-10 of the reference, for one and several rows", (format) => {
        const r = rng(format.length * 31 + isa.length);
        for (const [m, k, n, random] of [
          [1, 256, 3, false],
          [1, 1536, 67, false],
          [1, 768, 19, true],
          [4, 512, 33, false],
          [3, 256, 9, true],
        ] as const) {
          const weights = random ? randomBlocks(format, r, n, k) : QUANT_TRAITS[format].encode(floats(r, n * k, 0.5), n, k);
          const x = tensor("f32", [m, k], floats(r, m * k, 2));
          const w = tensor(format, [n, k], weights);
          const got = zeros([m, n]);
          const want = zeros([m, n]);
          expect(capabilityAccepts("matmulDense", caps.matmulDense ?? true, [x, w, got])).toBe(true);
          backend.kernels.matmulDense?.(x, w, got);
          js.kernels.matmulDense(x, w, want);
          expect(nmse(views.f32(got).slice(0, m * n), views.f32(want).slice(0, m * n))).toBeLessThanOrEqual(1e-10);
        }
        const xo = tensor("f32", [1, 128], floats(r, 128, 1));
        expect(() => backend.kernels.matmulDense?.(xo, { ...xo, dtype: format, shape: [2, 128] }, zeros([1, 2]))).toThrow(/multiple of 256/);
      });

      it.each(FORMATS)("decodes %s embedding rows bit for bit, and refuses an id outside the vocabulary", (format) => {
        const r = rng(7 + format.length);
        const [v, e] = [24, 512];
        for (const table of [randomBlocks(format, r, v, e), QUANT_TRAITS[format].encode(floats(r, v * e, 2), v, e)]) {
          const t = tensor(format, [v, e], table);
          const ids = tensor("i32", [5], Int32Array.of(0, 23, 7, 7, 13));
          const got = zeros([5, e]);
          const want = zeros([5, e]);
          expect(capabilityAccepts("embedding", caps.embedding ?? true, [ids, t, got])).toBe(true);
          backend.kernels.embedding?.(ids, t, got);
          js.kernels.embedding(ids, t, want);
          expect(bits(got, 5 * e)).toEqual(bits(want, 5 * e));
          expect(() => backend.kernels.embedding?.(tensor("i32", [2], Int32Array.of(3, 24)), t, zeros([2, e]))).toThrow(ShapeError);
        }
      });
    });
  }

  it("runs models whose tied embedding or untied head is q4_k, q5_k, q6_k or q8_0 strictly on native-cpu, close to the JS reference", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "barbell-kquant-"));
    try {
      const cases = [
        ["q4_k", true],
        ["q4_k", false],
        ["q5_k", true],
        ["q5_k", false],
        ["q6_k", true],
        ["q6_k", false],
        ["q8_0", true],
        ["q8_0", false],
      ] as const;
      for (const [embeddingType, tied] of cases) {
        const file = path.join(dir, `${embeddingType}-${tied ? "tied" : "untied"}.gguf`);
        const opts = { hidden: 256, layers: 1, heads: 4, kvHeads: 2, ffn: 256, vocab: 300, embeddingType, tied, seed: 9 } as const;
        await writeFile(file, makeBitnetFixture(opts));
        const fallbacks: string[] = [];
        const native = await loadModel(file, { backends: ["native-cpu"], autotune: false, onFallback: (e) => fallbacks.push(JSON.stringify(e)) });
        const reference = await loadModel(file, { backends: ["js"], autotune: false });
        try {
          const [got] = await native.logits([1, 17, 42, 299]);
          const [want] = await reference.logits([1, 17, 42, 299]);
          expect(fallbacks).toEqual([]);
          expect(got?.length).toBe(300);
          expect(nmse(got ?? new Float32Array(), want ?? new Float32Array(300))).toBeLessThanOrEqual(1e-8);
        } finally {
          native.dispose();
          reference.dispose();
        }
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
