// Native attention against its own other paths and the JS reference.
//
// Decode attention (a few query rows) runs split-K (native/cpu/attention_decode.inc): each row's positions in
// fixed chunks of 256, every head of a GQA group per chunk task, the chunks' partials merged in order. Row i of a
// multi-row query at pos0 sees the same keys (and chunks) as a one-row query at pos0 + i, so the two must give the
// same bits. Checked against the JS reference too, for GQA ratios 1, 2, 4 and 5, head sizes with SIMD tails, one
// and two threads.
import { describe, expect, it } from "vitest";
import type { TensorRef } from "../../src/backends/backend.js";
import { ArrayBufferMemory, views } from "../../src/backends/host-memory.js";
import { createJsBackend } from "../../src/backends/js/index.js";
import { nativeAddon } from "../../src/backends/native-cpu/addon.js";
import { createNativeCpuBackend, probeNativeCpu } from "../../src/backends/native-cpu/index.js";
import { mulberry32 as rng } from "../../src/model/bitnet/fixture.js";

const probe = probeNativeCpu();
const memory = new ArrayBufferMemory("native-attention-test");
const js = createJsBackend();

function f32(shape: number[], data?: Float32Array): TensorRef {
  const n = shape.reduce((a, b) => a * b, 1);
  const buffer = memory.alloc(Math.max(8, 4 * n));
  if (data !== undefined) {
    memory.write(buffer, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  return { buffer, dtype: "f32", shape };
}

function read(t: TensorRef): Float32Array {
  return views.f32(t).slice(0, t.shape.reduce((a, b) => a * b, 1));
}

function random(r: () => number, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * 3);
}

function nmse(got: Float32Array, want: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    num += ((got[i] ?? 0) - (want[i] ?? 0)) ** 2;
    den += (want[i] ?? 0) ** 2;
  }
  return num / den;
}

const isas = (): string[] => {
  const best = nativeAddon()?.features().best ?? "scalar";
  return ["avx2", "avx512bw", "avx512vnni"].slice(0, ["avx2", "avx512bw", "avx512vnni"].indexOf(best) + 1);
};

describe.skipIf(!probe.available)("native decode attention by KV-head group", () => {
  // [query heads, KV heads, head size, cache rows seen by the decoded token]
  const shapes = [
    [4, 4, 64, 1],
    [8, 4, 128, 37],
    [8, 2, 40, 300],
    [20, 5, 128, 700],
    [10, 2, 96, 129],
  ] as const;

  for (const isa of isas()) {
    for (const threads of [1, 2]) {
      it(`${isa}, ${threads} thread(s): the same bits as the per-head kernel's matching row, and close to the JS reference`, () => {
        const backend = createNativeCpuBackend({ isa, threads });
        try {
          const r = rng(41 + threads);
          for (const [nHead, nKv, d, seen] of shapes) {
            const capacity = seen + 3; // spare rows past the visible ones must not be read
            const k = f32([capacity, nKv, d], random(r, capacity * nKv * d));
            const v = f32([capacity, nKv, d], random(r, capacity * nKv * d));
            const rows = 2;
            const qAll = random(r, rows * nHead * d);
            const wide = f32([rows, nHead, d], qAll);
            const wideOut = f32([rows, nHead, d]);
            // Rows seen − 2 and seen − 1: row 1 sees `seen` keys (per-pair kernel, two query rows).
            const pos0 = seen - 2 < 0 ? 0 : seen - 2;
            if (seen >= 2) {
              backend.kernels.attention?.(wide, k, v, pos0, 1 / Math.sqrt(d), wideOut);
            }
            const one = f32([1, nHead, d], qAll.slice(nHead * d));
            const got = f32([1, nHead, d]);
            backend.kernels.attention?.(one, k, v, seen - 1, 1 / Math.sqrt(d), got);
            const decoded = read(got);
            if (seen >= 2) {
              const want = read(wideOut).slice(nHead * d);
              expect(Buffer.from(decoded.buffer).equals(Buffer.from(want.buffer)), `${nHead}/${nKv}×${d} at ${seen}`).toBe(true);
            }
            const ref = f32([1, nHead, d]);
            js.kernels.attention(one, k, v, seen - 1, 1 / Math.sqrt(d), ref);
            expect(nmse(decoded, read(ref))).toBeLessThan(1e-10);
          }
        } finally {
          backend.dispose();
        }
      });
    }
  }
});

// Native prefill attention (16 or more query rows) transposes the keys once and, on the x86 paths, takes two query
// rows of a head at a time (simd_float.inc attention_kt_pair: every kᵀ and V vector loaded once for both rows),
// a row alone where the pairing leaves one (the last row, the end of a task). Both must give the same bits, so
// the rows' outputs cannot depend on how a call's rows are paired: one call over 40 rows must equal two calls
// over rows [0, 17) and [17, 40) (every pair shifted by one in the second call). Checked for head sizes with SIMD
// tails (20, 40), GQA, rows whose keys cross the 4·W blocks of the score loop (AVX2 32, AVX-512 64), one and two
// threads, and against the JS reference.
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

  for (const isa of ["scalar", ...isas()]) {
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
            expect(nmse(got, read(ref)), `${nHead}/${nKv}×${d} at ${pos0}`).toBeLessThan(1e-10);
          }
        } finally {
          backend.dispose();
        }
      });
    }
  }
});
