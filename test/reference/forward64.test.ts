import { describe, expect, it } from "vitest";
import { GgufMetadata, gv, readGgufBytes, writeGguf, type GgufValue } from "../../src/formats/gguf/index.js";
import { makeBitnetFixture, type BitnetFixtureOptions } from "../../src/model/bitnet/fixture.js";
import { QUANT_TRAITS } from "../../src/quant/table.js";
import { quantizeActivation, referenceLogits, ropeNeox, roundHalfEven } from "./forward64.js";

const FLOAT = { quantizeActivations: false };
const QUANT = { quantizeActivations: true };
const TOKENS = [256, 72, 101, 108, 108, 111, 32, 119];

interface DenseTensor {
  readonly name: string;
  readonly dims: readonly number[];
  readonly values: Float32Array;
}

interface DenseModel {
  readonly metadata: [string, GgufValue][];
  readonly tensors: DenseTensor[];
}

/** Every tensor of a GGUF model decoded to float32, with its metadata. */
async function decodeModel(bytes: Uint8Array): Promise<DenseModel> {
  const file = readGgufBytes(bytes);
  const tensors: DenseTensor[] = [];
  for (const info of file.tensors) {
    const traits = Object.values(QUANT_TRAITS).find((t) => t.name === info.typeName);
    if (traits === undefined) {
      throw new Error(`no decoder for ${info.typeName}`);
    }
    const cols = info.dims[0] ?? 1;
    const values = traits.decode(await file.tensorData(info), info.elementCount / cols, cols);
    tensors.push({ name: info.name, dims: info.dims, values });
  }
  return { metadata: [...file.metadata.entries()], tensors };
}

/** Writes a dense model back as GGUF with every tensor stored as f32. */
function encodeModel(model: DenseModel): Uint8Array {
  const tensors = model.tensors.map((t) => {
    const cols = t.dims[0] ?? 1;
    const data = QUANT_TRAITS.f32.encode(t.values, t.values.length / cols, cols);
    return { name: t.name, dims: t.dims, typeId: QUANT_TRAITS.f32.ggmlType ?? 0, data };
  });
  return writeGguf({ metadata: model.metadata, tensors });
}

/** The same model with one metadata value replaced. */
function withMetadata(model: DenseModel, key: string, value: GgufValue): Uint8Array {
  const metadata = model.metadata.map(([k, v]): [string, GgufValue] => [k, k === key ? value : v]);
  return encodeModel({ ...model, metadata });
}

function tensorOf(model: DenseModel, name: string): DenseTensor {
  const t = model.tensors.find((x) => x.name === name);
  if (t === undefined) {
    throw new Error(`no tensor ${name}`);
  }
  return t;
}

function relativeL2(a: Float64Array, b: Float64Array): number {
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < a.length; i++) {
    diff += ((a[i] ?? 0) - (b[i] ?? 0)) ** 2;
    norm += (b[i] ?? 0) ** 2;
  }
  return Math.sqrt(diff / norm);
}

function expectClose(actual: Float64Array[], expected: Float64Array[], tolerance: number): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((row, p) => {
    expect(relativeL2(row, expected[p] ?? new Float64Array(0)), `position ${p}`).toBeLessThan(tolerance);
  });
}

/**
 * Logits for every position, computed by hand the way an incremental decoder would: one token at a time, each
 * layer appending its rotated k and its v to a KV cache. RoPE is written as a complex rotation of the pair
 * (x[j], x[j + d/2]) by e^{i·pos·base^(−2j/d)}. Projections fake-quantize x to q/s when asked.
 */
async function handDecode(bytes: Uint8Array, tokens: readonly number[], quantize: boolean): Promise<Float64Array[]> {
  const model = await decodeModel(bytes);
  const meta = new GgufMetadata(model.metadata);
  const num = (key: string): number => {
    const v = meta.getNumber(key);
    if (v === undefined) {
      throw new Error(`no number ${key}`);
    }
    return v;
  };
  const arch = meta.getString("general.architecture") ?? "";
  const hidden = num(`${arch}.embedding_length`);
  const layers = num(`${arch}.block_count`);
  const heads = num(`${arch}.attention.head_count`);
  const kvHeads = num(`${arch}.attention.head_count_kv`);
  const eps = num(`${arch}.attention.layer_norm_rms_epsilon`);
  const base = num(`${arch}.rope.freq_base`);
  const headDim = hidden / heads;
  const w = (name: string): Float32Array => tensorOf(model, name).values;

  const norm = (x: number[], weight: Float32Array): number[] => {
    let ss = 0;
    for (const v of x) {
      ss += v * v;
    }
    const r = Math.sqrt(ss / x.length + eps);
    return x.map((v, i) => (v / r) * (weight[i] ?? 0));
  };
  const fakeQuantize = (x: number[]): number[] => {
    const s = 127 / Math.max(Math.max(...x.map(Math.abs)), 1e-5);
    return x.map((v) => {
      const r = Math.round(v * s);
      const tie = r - v * s === 0.5 && Math.abs(r % 2) === 1;
      return (tie ? r - 1 : r) / s;
    });
  };
  const bitLinear = (weight: Float32Array, x: number[]): number[] => {
    const xs = quantize ? fakeQuantize(x) : x;
    const out: number[] = [];
    for (let o = 0; o < weight.length / x.length; o++) {
      let sum = 0;
      for (let i = 0; i < x.length; i++) {
        sum += (weight[o * x.length + i] ?? 0) * (xs[i] ?? 0);
      }
      out.push(sum);
    }
    return out;
  };
  const rotate = (x: number[], pos: number): number[] => {
    const out = [...x];
    for (let start = 0; start < x.length; start += headDim) {
      for (let j = 0; j < headDim / 2; j++) {
        const theta = pos / base ** ((2 * j) / headDim);
        const re = x[start + j] ?? 0;
        const im = x[start + j + headDim / 2] ?? 0;
        out[start + j] = re * Math.cos(theta) - im * Math.sin(theta);
        out[start + j + headDim / 2] = re * Math.sin(theta) + im * Math.cos(theta);
      }
    }
    return out;
  };

  const cache = Array.from({ length: layers }, () => ({ k: [] as number[][], v: [] as number[][] }));
  const results: Float64Array[] = [];
  tokens.forEach((token, pos) => {
    let h = Array.from(w("token_embd.weight").subarray(token * hidden, (token + 1) * hidden));
    for (let l = 0; l < layers; l++) {
      const x = norm(h, w(`blk.${l}.attn_norm.weight`));
      const q = rotate(bitLinear(w(`blk.${l}.attn_q.weight`), x), pos);
      const layerCache = cache[l] ?? { k: [], v: [] };
      layerCache.k.push(rotate(bitLinear(w(`blk.${l}.attn_k.weight`), x), pos));
      layerCache.v.push(bitLinear(w(`blk.${l}.attn_v.weight`), x));
      const attn: number[] = [];
      for (let head = 0; head < heads; head++) {
        const kv = Math.floor(head / (heads / kvHeads));
        const qh = q.slice(head * headDim, (head + 1) * headDim);
        const e = layerCache.k.map((k) =>
          Math.exp(qh.reduce((s, qi, d) => s + qi * (k[kv * headDim + d] ?? 0), 0) / Math.sqrt(headDim)),
        );
        const total = e.reduce((s, v) => s + v, 0);
        for (let d = 0; d < headDim; d++) {
          attn.push(layerCache.v.reduce((s, v, t) => s + ((e[t] ?? 0) / total) * (v[kv * headDim + d] ?? 0), 0));
        }
      }
      const o = bitLinear(w(`blk.${l}.attn_output.weight`), norm(attn, w(`blk.${l}.attn_sub_norm.weight`)));
      h = h.map((value, i) => value + (o[i] ?? 0));
      const y = norm(h, w(`blk.${l}.ffn_norm.weight`));
      const gate = bitLinear(w(`blk.${l}.ffn_gate.weight`), y);
      const up = bitLinear(w(`blk.${l}.ffn_up.weight`), y);
      const m = gate.map((g, i) => (arch === "bitnet" ? g / (1 + Math.exp(-g)) : g > 0 ? g * g : 0) * (up[i] ?? 0));
      const down = bitLinear(w(`blk.${l}.ffn_down.weight`), norm(m, w(`blk.${l}.ffn_sub_norm.weight`)));
      h = h.map((value, i) => value + (down[i] ?? 0));
    }
    const normed = norm(h, w("output_norm.weight"));
    const untied = model.tensors.some((t) => t.name === "output.weight");
    // A Q8_0 head quantizes its input per 32-element block (llama.cpp's Q8_0 matmul).
    const q8Head = quantize && readGgufBytes(bytes).tensor(untied ? "output.weight" : "token_embd.weight")?.typeName === "q8_0";
    const final = q8Head ? Array.from({ length: hidden / 32 }, (_, b) => fakeQuantize(normed.slice(32 * b, 32 * b + 32))).flat() : normed;
    const headWeights = untied ? w("output.weight") : w("token_embd.weight");
    const logits = new Float64Array(headWeights.length / hidden);
    for (let t = 0; t < logits.length; t++) {
      for (let i = 0; i < hidden; i++) {
        logits[t] = (logits[t] ?? 0) + (headWeights[t * hidden + i] ?? 0) * (final[i] ?? 0);
      }
    }
    results.push(logits);
  });
  return results;
}

describe("float64 reference forward pass", () => {
  const archs: BitnetFixtureOptions[] = [
    { arch: "bitnet", seed: 3 },
    { arch: "bitnet-b1.58", seed: 4 },
    { arch: "bitnet-25", seed: 5, tied: false, embeddingType: "q8_0" },
  ];

  it.each(archs)("should give finite logits of vocab length for every position ($arch)", async (opts) => {
    const bytes = makeBitnetFixture(opts);
    for (const options of [FLOAT, QUANT]) {
      const logits = await referenceLogits(bytes, TOKENS, options);
      expect(logits).toHaveLength(TOKENS.length);
      for (const row of logits) {
        expect(row).toHaveLength(300);
        expect(row.every(Number.isFinite)).toBe(true);
      }
      expect(relativeL2(logits[0] ?? new Float64Array(0), logits[1] ?? new Float64Array(0))).toBeGreaterThan(0.01);
    }
  });

  it.each(archs)("should match a token-by-token decode with a KV cache written out by hand ($arch)", async (opts) => {
    const bytes = makeBitnetFixture(opts);
    for (const quantize of [false, true]) {
      const logits = await referenceLogits(bytes, TOKENS, { quantizeActivations: quantize });
      expectClose(logits, await handDecode(bytes, TOKENS, quantize), 1e-12);
    }
  });

  it.each(archs)("should make position p independent of the tokens after p ($arch)", async (opts) => {
    const bytes = makeBitnetFixture(opts);
    const full = await referenceLogits(bytes, TOKENS, QUANT);
    for (const length of [1, 3, 6]) {
      expect(await referenceLogits(bytes, TOKENS.slice(0, length), QUANT)).toEqual(full.slice(0, length));
    }
    const changed = [...TOKENS.slice(0, 5), 200, ...TOKENS.slice(6)];
    const other = await referenceLogits(bytes, changed, QUANT);
    expect(other.slice(0, 5)).toEqual(full.slice(0, 5));
    for (const p of [5, 6, 7]) {
      expect(other[p], `position ${p}`).not.toEqual(full[p]);
    }
  });

  it("should give the same logits at every position of a repeated token (attention over equal values)", async () => {
    const bytes = makeBitnetFixture({ seed: 6 });
    const logits = await referenceLogits(bytes, [65, 65, 65, 65], FLOAT);
    for (const row of logits) {
      expect(relativeL2(row, logits[0] ?? new Float64Array(0))).toBeLessThan(1e-12);
    }
  });

  it("should give identical logits whether the projections are stored as i2_s, tq2_0, tq1_0, f16 or f32", async () => {
    const shape = { hidden: 256, ffn: 512, heads: 4, seed: 7 } as const;
    const expected = await referenceLogits(makeBitnetFixture({ ...shape, weightType: "f32" }), TOKENS, QUANT);
    for (const weightType of ["i2_s", "tq2_0", "tq1_0", "f16"] as const) {
      const logits = await referenceLogits(makeBitnetFixture({ ...shape, weightType }), TOKENS, QUANT);
      expect(logits, weightType).toEqual(expected);
    }
  });

  it.each(archs)("should give close but different logits with int8 activations ($arch)", async (opts) => {
    const bytes = makeBitnetFixture(opts);
    const exact = await referenceLogits(bytes, TOKENS, FLOAT);
    const quantized = await referenceLogits(bytes, TOKENS, QUANT);
    exact.forEach((row, p) => {
      const err = relativeL2(quantized[p] ?? new Float64Array(0), row);
      expect(err, `position ${p}`).toBeGreaterThan(1e-3);
      expect(err, `position ${p}`).toBeLessThan(0.05);
    });
  });

  it("should equal MHA when each KV head is duplicated for the query heads of its group", async () => {
    const gqaBytes = makeBitnetFixture({ arch: "bitnet-b1.58", heads: 4, kvHeads: 2, weightType: "f32", seed: 8 });
    const gqa = await decodeModel(gqaBytes);
    const headDim = 32;
    const toMha = (kvOf: (head: number) => number): Uint8Array => {
      const tensors = gqa.tensors.map((t) => {
        if (!/attn_[kv]\.weight$/.test(t.name)) {
          return t;
        }
        const values = new Float32Array(4 * headDim * 128);
        for (let head = 0; head < 4; head++) {
          const from = kvOf(head) * headDim * 128;
          values.set(t.values.subarray(from, from + headDim * 128), head * headDim * 128);
        }
        return { name: t.name, dims: [128, 4 * headDim], values };
      });
      const metadata = gqa.metadata.map(([k, v]): [string, GgufValue] =>
        k.endsWith(".head_count_kv") ? [k, gv.u32(4)] : [k, v],
      );
      return encodeModel({ metadata, tensors });
    };
    const expected = await referenceLogits(gqaBytes, TOKENS, QUANT);
    expect(await referenceLogits(toMha((h) => Math.floor(h / 2)), TOKENS, QUANT)).toEqual(expected);
    // The interleaved mapping (head h → KV head h mod 2) is a different model: the comparison can fail.
    const wrong = await referenceLogits(toMha((h) => h % 2), TOKENS, QUANT);
    expect(relativeL2(wrong[3] ?? new Float64Array(0), expected[3] ?? new Float64Array(0))).toBeGreaterThan(1e-3);
  });

  it("should multiply a projection's output by its optional .scale tensor", async () => {
    const base = await decodeModel(makeBitnetFixture({ arch: "bitnet", weightType: "f32", seed: 9 }));
    const factors = new Map([
      ["blk.0.attn_q", 4],
      ["blk.1.ffn_down", 0.5],
      ["blk.1.attn_output", 2],
    ]);
    const withScales = encodeModel({
      metadata: base.metadata,
      tensors: [
        ...base.tensors,
        ...[...factors].map(([p, f]) => ({ name: `${p}.scale`, dims: [1], values: Float32Array.of(f) })),
      ],
    });
    const folded = encodeModel({
      metadata: base.metadata,
      tensors: base.tensors.map((t) => {
        const f = factors.get(t.name.replace(/\.weight$/, ""));
        return f === undefined ? t : { ...t, values: t.values.map((v) => v * f) };
      }),
    });
    for (const options of [FLOAT, QUANT]) {
      const scaled = await referenceLogits(withScales, TOKENS, options);
      expect(scaled).toEqual(await referenceLogits(folded, TOKENS, options));
      expect(scaled).not.toEqual(await referenceLogits(encodeModel(base), TOKENS, options));
    }
  });

  it("should apply RoPE from position 0, so the base changes every position but the first", async () => {
    const model = await decodeModel(makeBitnetFixture({ seed: 10 }));
    const withBase = (base: number): Uint8Array => withMetadata(model, "bitnet-b1.58.rope.freq_base", gv.f32(base));
    const a = await referenceLogits(withBase(10000), TOKENS, FLOAT);
    const b = await referenceLogits(withBase(500000), TOKENS, FLOAT);
    expect(b[0]).toEqual(a[0]);
    for (let p = 1; p < TOKENS.length; p++) {
      const change = relativeL2(b[p] ?? new Float64Array(0), a[p] ?? new Float64Array(0));
      expect(change, `position ${p}`).toBeGreaterThan(1e-6);
    }
  });

  it("should reject a non-BitNet arch, a rope dimension other than the head dim and an unknown token", async () => {
    const model = await decodeModel(makeBitnetFixture({ seed: 11 }));
    const edit = (key: string, value: GgufValue): Uint8Array => withMetadata(model, key, value);
    await expect(referenceLogits(edit("bitnet-b1.58.rope.dimension_count", gv.u32(16)), [1], FLOAT)).rejects.toThrow(
      /rope 16/,
    );
    await expect(referenceLogits(edit("general.architecture", gv.string("llama")), [1], FLOAT)).rejects.toThrow(
      /not a BitNet arch/,
    );
    await expect(referenceLogits(encodeModel(model), [300], FLOAT)).rejects.toThrow(/outside the vocabulary/);
  });
});

describe("reference forward pass helpers", () => {
  it("should round half to even", () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4999, 2.5001].map(roundHalfEven)).toEqual([0, 2, 2, 0, -2, -2, 2, 3]);
  });

  it("should quantize activations per token with absmax 127, ties to even and the 1e-5 floor", () => {
    const { values, divisor } = quantizeActivation(Float64Array.of(127, 0.5, 1.5, 2.5, -2.5, -127));
    expect(divisor).toBe(1);
    expect(Array.from(values)).toEqual([127, 0, 2, 2, -2, -127]);
    const tiny = quantizeActivation(Float64Array.of(1e-7, -1e-6));
    expect(tiny.divisor).toBe(127 / 1e-5);
    expect(Array.from(tiny.values)).toEqual([1, -13]);
  });

  it("should rotate dim j with dim j + d/2 (NeoX pairs), leave position 0 alone and preserve relative angles", () => {
    const unit = Float64Array.of(1, 0, 0, 0, 0, 0, 0, 0);
    ropeNeox(unit, 0, 8, 1, 10000);
    expect(unit[0]).toBeCloseTo(Math.cos(1), 15);
    expect(unit[4]).toBeCloseTo(Math.sin(1), 15);
    expect([unit[1], unit[2], unit[3], unit[5], unit[6], unit[7]]).toEqual([0, 0, 0, 0, 0, 0]);

    const q = Float64Array.of(0.3, -1.2, 0.7, 2.0, -0.4, 0.9, 1.1, -0.6);
    const k = Float64Array.of(-0.8, 0.5, 1.4, -0.2, 0.6, -1.0, 0.1, 0.35);
    const same = Float64Array.from(q);
    ropeNeox(same, 0, 8, 0, 10000);
    expect(same).toEqual(q);
    const dot = (qPos: number, kPos: number): number => {
      const a = Float64Array.from(q);
      const b = Float64Array.from(k);
      ropeNeox(a, 0, 8, qPos, 10000);
      ropeNeox(b, 0, 8, kPos, 10000);
      return a.reduce((s, v, i) => s + v * (b[i] ?? 0), 0);
    };
    expect(dot(5, 2)).toBeCloseTo(dot(13, 10), 12);
    expect(Math.abs(dot(5, 2) - dot(5, 3))).toBeGreaterThan(1e-3);
  });
});
