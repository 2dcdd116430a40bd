// Native split-K decode attention (native/cpu/attention_decode.inc, executor.cc decode_chunked): a decoded row's
// cache positions are cut into chunks of a fixed 256 positions, the chunks run as tasks on the pool and their
// partials are merged in chunk order, so 1, 2 and 3 threads must give the same bits, over f32, f16 and q8_0
// caches, at a depth spanning three chunks (700 positions), for a GQA and an MHA shape, on every ISA path; and the
// result must stay close to the JS reference (which rounds the query through q8_0 over a q8_0 K cache); the two
// AVX-512 paths must agree bit for bit.
import { describe, expect, it } from "vitest";
import type { TensorRef } from "../../src/backends/backend.js";
import { ArrayBufferMemory, views } from "../../src/backends/host-memory.js";
import { createJsBackend } from "../../src/backends/js/index.js";
import { nativeAddon } from "../../src/backends/native-cpu/addon.js";
import { createNativeCpuBackend, probeNativeCpu } from "../../src/backends/native-cpu/index.js";
import { storageBytes } from "../../src/backends/storage.js";
import { mulberry32 as rng } from "../../src/model/bitnet/fixture.js";
import { QUANT_TRAITS } from "../../src/quant/table.js";

const probe = probeNativeCpu();
const js = createJsBackend();
const memory = new ArrayBufferMemory("native-attention-split-test");

const isas = (): string[] => {
  const best = nativeAddon()?.features().best ?? "scalar";
  return ["avx2", "avx512bw", "avx512vnni"].slice(0, ["avx2", "avx512bw", "avx512vnni"].indexOf(best) + 1);
};

function ref(dtype: TensorRef["dtype"], shape: number[], data: Uint8Array | Float32Array): TensorRef {
  const buffer = memory.alloc(Math.max(8, storageBytes(dtype, shape)));
  memory.write(buffer, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  return { buffer, dtype, shape };
}

const nmse = (got: Float32Array, want: Float32Array): number => {
  let num = 0;
  let den = 0;
  want.forEach((w, i) => ((num += (w - (got[i] ?? 0)) ** 2), (den += w * w)));
  return num / den;
};

// [query heads, KV heads, head size, keys seen by the decoded row]
const shapes = [
  [20, 5, 128, 700],
  [8, 8, 96, 700],
] as const;
const types = ["f32", "f16", "q8_0"] as const;

/** One decoded row per shape and cache type: its K / V caches (with spare rows that must not be read) and query. */
function cases() {
  const r = rng(2027);
  return shapes.flatMap(([heads, kvHeads, hd, seen]) =>
    types.map((dtype) => {
      const rows = seen + 5;
      const q = ref("f32", [1, heads, hd], Float32Array.from({ length: heads * hd }, () => r() * 2 - 1));
      const kv = [0, 1].map(() => {
        const x = Float32Array.from({ length: rows * kvHeads * hd }, () => (r() * 2 - 1) * 3);
        return dtype === "f32" ? ref("f32", [rows, kvHeads, hd], x) : ref(dtype, [rows, kvHeads, hd], QUANT_TRAITS[dtype].encode(x, rows * kvHeads, hd));
      }) as [TensorRef, TensorRef];
      return { name: `${dtype} ${heads}/${kvHeads}×${hd} at ${seen}`, dtype, q, k: kv[0], v: kv[1], pos0: seen - 1, n: heads * hd, scale: 1 / Math.sqrt(hd) };
    }),
  );
}

describe.skipIf(!probe.available)("native split-K decode attention", () => {
  const all = cases();
  const want = all.map((c) => {
    const out = ref("f32", [1, c.n], new Float32Array(c.n));
    js.kernels.attention(c.q, c.k, c.v, c.pos0, c.scale, out);
    return views.f32(out).slice(0, c.n);
  });
  for (const isa of isas()) {
    it(`${isa}: 1, 2 and 3 threads give the same bits, close to the JS reference`, () => {
      const byThreads = [1, 2, 3].map((threads) => {
        const backend = createNativeCpuBackend({ isa, threads });
        try {
          return all.map((c) => {
            const out = ref("f32", [1, c.n], new Float32Array(c.n));
            backend.kernels.attention?.(c.q, c.k, c.v, c.pos0, c.scale, out);
            return views.f32(out).slice(0, c.n);
          });
        } finally {
          backend.dispose();
        }
      });
      for (const [i, c] of all.entries()) {
        const one = byThreads[0]?.[i] as Float32Array;
        expect(one.every(Number.isFinite), c.name).toBe(true);
        expect(nmse(one, want[i] as Float32Array), c.name).toBeLessThan(c.dtype === "q8_0" ? 1e-9 : 1e-10);
        expect(Buffer.from((byThreads[1]?.[i] as Float32Array).buffer).equals(Buffer.from(one.buffer)), `${c.name}, 2 threads`).toBe(true);
        expect(Buffer.from((byThreads[2]?.[i] as Float32Array).buffer).equals(Buffer.from(one.buffer)), `${c.name}, 3 threads`).toBe(true);
      }
    });
  }
  // Both AVX-512 paths run the same float code (V512); over a q8_0 K cache VNNI's scores take 16 rows at a time with
  // no horizontal sums, AVX-512BW's 8 with a hadd tree, and the integer block sums are exact: the same bits.
  it.skipIf(!isas().includes("avx512vnni"))("avx512vnni gives avx512bw's bits, every cache type", () => {
    const [bw, vnni] = ["avx512bw", "avx512vnni"].map((isa) => {
      const backend = createNativeCpuBackend({ isa, threads: 2 });
      try {
        return all.map((c) => {
          const out = ref("f32", [1, c.n], new Float32Array(c.n));
          backend.kernels.attention?.(c.q, c.k, c.v, c.pos0, c.scale, out);
          return Buffer.from(views.f32(out).slice(0, c.n).buffer);
        });
      } finally {
        backend.dispose();
      }
    });
    for (const [i, c] of all.entries()) {
      expect(vnni?.[i]?.equals(bw?.[i] as Buffer), c.name).toBe(true);
    }
  });
});
