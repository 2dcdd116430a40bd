// Native prefill attention (16 or more query rows) transposes the keys once and, on the x86 paths, takes two query
// rows of a head at a time (simd_float.inc attention_kt_pair: every kᵀ and V vector loaded once for both rows),
// a row alone where the pairing leaves one (the last row, the end of a task). Both must give the same bits, so
// the rows' outputs cannot depend on how a call's rows are paired: one call over 40 rows must equal two calls
// over rows [0, 17) and [17, 40) (every pair shifted by one in the second call). Checked for head sizes with SIMD
// tails (20, 40), GQA, rows whose keys cross the 4·W blocks of the score loop (AVX2 32, AVX-512 64), one and two
// threads, and against the JS reference.
import { describe, expect, it } from "vitest";
import type { TensorRef } from "../../src/backends/backend.js";
import { ArrayBufferMemory, views } from "../../src/backends/host-memory.js";
import { createJsBackend } from "../../src/backends/js/index.js";
import { nativeAddon } from "../../src/backends/native-cpu/addon.js";
import { createNativeCpuBackend, probeNativeCpu } from "../../src/backends/native-cpu/index.js";
import { mulberry32 as rng } from "../../src/model/bitnet/fixture.js";

const probe = probeNativeCpu();
const memory = new ArrayBufferMemory("native-attention-prefill-test");
const js = createJsBackend();

function f32(shape: number[], data?: Float32Array): TensorRef {
  const n = shape.reduce((a, b) => a * b, 1);
  const buffer = memory.alloc(Math.max(8, 4 * n));
  if (data !== undefined) {
    memory.write(buffer, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  return { buffer, dtype: "f32", shape };
}

const read = (t: TensorRef): Float32Array => views.f32(t).slice(0, t.shape.reduce((a, b) => a * b, 1));
const random = (r: () => number, n: number): Float32Array => Float32Array.from({ length: n }, () => (r() * 2 - 1) * 3);
const isas = (): string[] => {
  const best = nativeAddon()?.features().best ?? "scalar";
  return ["scalar", "avx2", "avx512bw", "avx512vnni"].slice(0, Math.max(1, ["scalar", "avx2", "avx512bw", "avx512vnni"].indexOf(best) + 1));
};

describe.skipIf(!probe.available)("native prefill attention over transposed keys", () => {
  // [query heads, KV heads, head size, pos0]: 40 query rows at pos0 see pos0 + 1 … pos0 + 40 keys.
  const shapes = [
    [4, 4, 20, 0],
    [8, 2, 40, 10],
    [20, 5, 128, 27],
    [16, 16, 96, 40],
  ] as const;
  const rows = 40;
  const split = 17;

  for (const isa of isas()) {
    for (const threads of [1, 2]) {
      it(`${isa}, ${threads} thread(s): the same bits however the rows are paired, and close to the JS reference`, () => {
        const backend = createNativeCpuBackend({ isa, threads });
        try {
          const r = rng(97 + threads);
          for (const [nHead, nKv, d, pos0] of shapes) {
            const capacity = pos0 + rows + 2; // spare rows past the visible ones must not be read
            const k = f32([capacity, nKv, d], random(r, capacity * nKv * d));
            const v = f32([capacity, nKv, d], random(r, capacity * nKv * d));
            const qAll = random(r, rows * nHead * d);
            const scale = 1 / Math.sqrt(d);
            const whole = f32([rows, nHead, d]);
            backend.kernels.attention?.(f32([rows, nHead, d], qAll), k, v, pos0, scale, whole);
            const first = f32([split, nHead, d]);
            const second = f32([rows - split, nHead, d]);
            backend.kernels.attention?.(f32([split, nHead, d], qAll.slice(0, split * nHead * d)), k, v, pos0, scale, first);
            backend.kernels.attention?.(f32([rows - split, nHead, d], qAll.slice(split * nHead * d)), k, v, pos0 + split, scale, second);
            const got = read(whole);
            const parts = new Float32Array(got.length);
            parts.set(read(first));
            parts.set(read(second), split * nHead * d);
            expect(Buffer.from(got.buffer).equals(Buffer.from(parts.buffer)), `${nHead}/${nKv}×${d} at ${pos0}`).toBe(true);
            const ref = f32([rows, nHead, d]);
            js.kernels.attention(f32([rows, nHead, d], qAll), k, v, pos0, scale, ref);
            const want = read(ref);
            let num = 0;
            let den = 0;
            for (let i = 0; i < want.length; i++) {
              num += ((got[i] ?? 0) - (want[i] ?? 0)) ** 2;
              den += (want[i] ?? 0) ** 2;
            }
            expect(num / den, `${nHead}/${nKv}×${d} at ${pos0}`).toBeLessThan(1e-10);
          }
        } finally {
          backend.dispose();
        }
      });
    }
  }
});
