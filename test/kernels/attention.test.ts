import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { attention, type AttentionParams } from "../../src/backends/js/kernels/attention.js";
import { ShapeError } from "../../src/core/errors.js";

const RUNS = { seed: 577215, numRuns: 120 };

const values = (length: number) =>
  fc.float32Array({ minLength: length, maxLength: length, noNaN: true, min: -3, max: 3 });

const attentionCase = fc
  .record({
    nKvHead: fc.integer({ min: 1, max: 3 }),
    group: fc.integer({ min: 1, max: 3 }),
    headDim: fc.integer({ min: 1, max: 8 }),
    seqKV: fc.integer({ min: 1, max: 6 }),
  })
  .chain((d) =>
    fc
      .integer({ min: 1, max: d.seqKV })
      .chain((seqQ) => fc.integer({ min: 0, max: d.seqKV - seqQ }).map((pos0) => ({ ...d, seqQ, pos0 }))),
  )
  .chain((d) => {
    const nHead = d.nKvHead * d.group;
    const params: AttentionParams = { ...d, nHead, scale: 1 / Math.sqrt(d.headDim) };
    const kvLength = d.seqKV * d.nKvHead * d.headDim;
    return fc
      .record({ q: values(d.seqQ * nHead * d.headDim), k: values(kvLength), v: values(kvLength) })
      .map((r) => ({ params, ...r }));
  });

function run(q: Float32Array, k: Float32Array, v: Float32Array, params: AttentionParams): Float32Array {
  const out = new Float32Array(params.seqQ * params.nHead * params.headDim);
  attention(q, k, v, params, out);
  return out;
}

/** Float64 attention written as matrices: full score matrix per head, −∞ above the causal diagonal, P·V. */
function naiveAttention(q: Float32Array, k: Float32Array, v: Float32Array, p: AttentionParams): number[] {
  const { seqQ, seqKV, nHead, nKvHead, headDim: hd, pos0, scale } = p;
  const out = new Array<number>(seqQ * nHead * hd).fill(0);
  for (let h = 0; h < nHead; h++) {
    const g = Math.floor((h * nKvHead) / nHead);
    const at = (a: Float32Array, row: number, heads: number, head: number, d: number) =>
      a[(row * heads + head) * hd + d] ?? 0;
    const scores = Array.from({ length: seqQ }, (_, i) =>
      Array.from({ length: seqKV }, (_, t) => {
        if (t > pos0 + i) {
          return -Infinity;
        }
        let dot = 0;
        for (let d = 0; d < hd; d++) {
          dot += at(q, i, nHead, h, d) * at(k, t, nKvHead, g, d);
        }
        return dot * scale;
      }),
    );
    for (let i = 0; i < seqQ; i++) {
      const row = scores[i] ?? [];
      const top = Math.max(...row);
      const weights = row.map((s) => Math.exp(s - top));
      const total = weights.reduce((a, b) => a + b, 0);
      for (let d = 0; d < hd; d++) {
        const mixed = weights.reduce((acc, w, t) => acc + (w / total) * at(v, t, nKvHead, g, d), 0);
        out[(i * nHead + h) * hd + d] = mixed;
      }
    }
  }
  return out;
}

describe("attention", () => {
  it("should match a float64 score-matrix implementation with a −∞ causal mask", () => {
    fc.assert(
      fc.property(attentionCase, ({ params, q, k, v }) => {
        const out = run(q, k, v, params);
        const expected = naiveAttention(q, k, v, params);
        const vMax = v.reduce((m, e) => Math.max(m, Math.abs(e)), 0);
        expected.forEach((e, idx) => {
          expect(Math.abs((out[idx] ?? 0) - e)).toBeLessThanOrEqual(2 ** -22 * vMax + 1e-40);
        });
      }),
      RUNS,
    );
  });

  it("should equal multi-head attention over KV heads repeated for each query head of the group", () => {
    fc.assert(
      fc.property(attentionCase, ({ params, q, k, v }) => {
        const { seqKV, nHead, nKvHead, headDim } = params;
        const group = nHead / nKvHead;
        const repeat = (a: Float32Array) => {
          const r = new Float32Array(seqKV * nHead * headDim);
          for (let t = 0; t < seqKV; t++) {
            for (let h = 0; h < nHead; h++) {
              const from = (t * nKvHead + Math.floor(h / group)) * headDim;
              r.set(a.subarray(from, from + headDim), (t * nHead + h) * headDim);
            }
          }
          return r;
        };
        const mha = run(q, repeat(k), repeat(v), { ...params, nKvHead: nHead });
        expect(run(q, k, v, params)).toEqual(mha);
      }),
      RUNS,
    );
  });

  it("should make the query at position 0 return v[0] of its KV head exactly (up to the sign of zeros)", () => {
    const withoutNegativeZero = (a: Float32Array) => Array.from(a, (e) => e + 0);
    fc.assert(
      fc.property(attentionCase, ({ params, q, k, v }) => {
        const { nHead, nKvHead, headDim } = params;
        const out = run(q, k, v, { ...params, pos0: 0 });
        for (let h = 0; h < nHead; h++) {
          const g = Math.floor(h / (nHead / nKvHead));
          expect(withoutNegativeZero(out.subarray(h * headDim, (h + 1) * headDim))).toEqual(
            withoutNegativeZero(v.subarray(g * headDim, (g + 1) * headDim)),
          );
        }
      }),
      RUNS,
    );
  });

  it("should give a one-token decode at pos0 the same output as the matching row of a full prefill", () => {
    fc.assert(
      fc.property(attentionCase, ({ params, k, v }) => {
        const { seqKV, nHead, headDim } = params;
        const rowLength = nHead * headDim;
        const q = Float32Array.from({ length: seqKV * rowLength }, (_, i) => Math.sin(i));
        const prefill = run(q, k, v, { ...params, seqQ: seqKV, pos0: 0 });
        for (let pos = 0; pos < seqKV; pos++) {
          const query = q.subarray(pos * rowLength, (pos + 1) * rowLength);
          const decode = run(query, k, v, { ...params, seqQ: 1, pos0: pos });
          expect(decode).toEqual(prefill.subarray(pos * rowLength, (pos + 1) * rowLength));
        }
      }),
      RUNS,
    );
  });

  it("should throw ShapeError when nKvHead does not divide nHead or queries run past the cache", () => {
    const base: AttentionParams = { seqQ: 1, seqKV: 2, nHead: 4, nKvHead: 2, headDim: 2, pos0: 1, scale: 1 };
    const q = new Float32Array(16);
    const kv = new Float32Array(16);
    const out = new Float32Array(16);
    expect(() => attention(q, kv, kv, base, out)).not.toThrow();
    expect(() => attention(q, kv, kv, { ...base, nKvHead: 3 }, out)).toThrow(ShapeError);
    expect(() => attention(q, kv, kv, { ...base, nKvHead: 0 }, out)).toThrow(ShapeError);
    expect(() => attention(q, kv, kv, { ...base, pos0: 2 }, out)).toThrow(ShapeError);
    expect(() => attention(q, kv, kv, { ...base, seqQ: 2 }, out)).toThrow(ShapeError);
    expect(() => attention(q, kv.subarray(0, 7), kv, base, out)).toThrow(ShapeError);
  });
});
