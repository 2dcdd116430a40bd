/**
 * Conformance cases: one table, run on every backend against the JS reference (conformance.test.ts).
 * Integer kernels must match exactly; float kernels within the stated NMSE. Every unary and binary op of
 * the op table (src/backends/ops.ts) gets a case from the table itself, with the tolerance its numerics
 * state, so a new element-wise op is checked on every backend without a new case here.
 */
import type { BufferHandle, KernelName, TensorRef } from "../../src/backends/backend.js";
import { BINARY_OPS, UNARY_OPS, type BinaryOp, type UnaryOp } from "../../src/backends/ops.js";
import { storageBytes } from "../../src/backends/storage.js";
import { packBinary, packTernary } from "../../src/quant/layouts.js";
import { QUANT_TRAITS } from "../../src/quant/table.js";
import { quantizeActivations } from "../../src/quant/values.js";
import { mulberry32 } from "../../src/model/bitnet/fixture.js";

/** Seeded PRNG (mulberry32) so failures reproduce. */
export const rng = mulberry32;

export interface CaseData {
  /** The kernel's arguments, outputs included, in call order. */
  readonly args: unknown[];
  /** The output operand to compare. */
  readonly out: TensorRef;
}

/** Where a case puts its tensors: a backend's own memory (a wasm linear memory) or plain host memory. */
export interface CaseMemory {
  alloc(bytes: number): BufferHandle;
  write(buffer: BufferHandle, src: Uint8Array, byteOffset?: number): void;
}

export interface ConformanceCase {
  readonly kernel: KernelName;
  readonly name: string;
  /** "exact" for integer kernels (bit-for-bit); otherwise the largest normalised MSE allowed. */
  readonly compare: "exact" | number;
  build(memory: CaseMemory): CaseData;
}

export function refOf(memory: CaseMemory, dtype: TensorRef["dtype"], shape: number[], data?: ArrayBufferView, scale?: number): TensorRef {
  const buffer = memory.alloc(storageBytes(dtype, shape));
  if (data !== undefined) {
    memory.write(buffer, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  return scale === undefined ? { buffer, dtype, shape } : { buffer, dtype, shape, scale };
}

export function floats(r: () => number, n: number, amplitude = 1): Float32Array {
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * amplitude);
}

/** Shapes that exercise tails: K not a multiple of 16/32/64/128, M = 1 (decode) and M > 1 (prefill), N = 1. */
const MATMUL_SHAPES: [m: number, k: number, n: number][] = [
  [1, 256, 64],
  [1, 300, 17],
  [3, 128, 33],
  [5, 1000, 1],
  [1, 2560, 128],
  [7, 96, 40],
];

function ternaryCase([m, k, n]: [number, number, number], seed: number): ConformanceCase {
  return {
    kernel: "matmulTernaryI8",
    name: `ternary ${m}x${k} · ${n}x${k}`,
    compare: "exact",
    build(mem) {
      const r = rng(seed);
      const q = quantizeActivations(floats(r, m * k, 3), m, k);
      if (!q.ok) {
        throw q.error;
      }
      const trits = Int8Array.from({ length: n * k }, () => Math.floor(r() * 3) - 1);
      const out = refOf(mem, "f32", [m, n]);
      const args = [
        refOf(mem, "i8", [m, k], q.value.values),
        refOf(mem, "f32", [m], q.value.scales),
        refOf(mem, "ternary", [n, k], packTernary(trits, n, k), 0.0234375),
        out,
      ];
      return { args, out };
    },
  };
}

function binaryI8Case([m, k, n]: [number, number, number], seed: number): ConformanceCase {
  return {
    kernel: "matmulBinaryI8",
    name: `binary×int8 ${m}x${k} · ${n}x${k}`,
    compare: "exact",
    build(mem) {
      const r = rng(seed);
      const q = quantizeActivations(floats(r, m * k), m, k);
      if (!q.ok) {
        throw q.error;
      }
      const signs = Int8Array.from({ length: n * k }, () => (r() < 0.5 ? -1 : 1));
      const out = refOf(mem, "f32", [m, n]);
      const w = packBinary(signs, n, k);
      return { args: [refOf(mem, "i8", [m, k], q.value.values), refOf(mem, "f32", [m], q.value.scales), refOf(mem, "binary", [n, k], w, 0.5), out], out };
    },
  };
}

function xnorCase([m, k, n]: [number, number, number], seed: number): ConformanceCase {
  return {
    kernel: "matmulBinaryBinary",
    name: `xnor ${m}x${k} · ${n}x${k}`,
    compare: "exact",
    build(mem) {
      const r = rng(seed);
      const sign = (): number => (r() < 0.5 ? -1 : 1);
      const x = packBinary(Int8Array.from({ length: m * k }, sign), m, k);
      const w = packBinary(Int8Array.from({ length: n * k }, sign), n, k);
      const out = refOf(mem, "i32", [m, n]);
      return { args: [refOf(mem, "binary", [m, k], x, 1), refOf(mem, "binary", [n, k], w, 1), out], out };
    },
  };
}

function quantCase(m: number, k: number, seed: number): ConformanceCase {
  return {
    kernel: "quantizeActivations",
    name: `quantize ${m}x${k}`,
    compare: "exact",
    build(mem) {
      const r = rng(seed);
      const x = floats(r, m * k, 5);
      // Exact halves after scaling exercise round-half-to-even.
      x[0] = 127;
      x[1] = 2.5;
      x[2] = -3.5;
      const q = refOf(mem, "i8", [m, k]);
      const s = refOf(mem, "f32", [m]);
      return { args: [refOf(mem, "f32", [m, k], x), q, s], out: q };
    },
  };
}

function denseCase(format: "f32" | "f16" | "bf16" | "q8_0" | "q4_k" | "q5_k" | "q6_k", [m, k, n]: [number, number, number], seed: number): ConformanceCase {
  return {
    kernel: "matmulDense",
    name: `dense ${format} ${m}x${k} · ${n}x${k}`,
    compare: 1e-10,
    build(mem) {
      const r = rng(seed);
      const w = QUANT_TRAITS[format].encode(floats(r, n * k), n, k);
      const out = refOf(mem, "f32", [m, n]);
      return { args: [refOf(mem, "f32", [m, k], floats(r, m * k)), refOf(mem, format, [n, k], w), out], out };
    },
  };
}

/**
 * The integer Q8_0 head: exact. Shapes cover 16-row tiles and tails (n = 5, 33, 40), 1 to 17 activation
 * rows, k of 1 to 48 blocks; x has a zero block, a block with one outlier, and weights that include -128.
 */
function q8i8Case([m, k, n]: [number, number, number], seed: number): ConformanceCase {
  return {
    kernel: "matmulQ8I8",
    name: `q8i8 ${m}x${k} · ${n}x${k}`,
    compare: "exact",
    build(mem) {
      const r = rng(seed);
      const w = QUANT_TRAITS.q8_0.encode(floats(r, n * k, 0.2), n, k);
      for (let j = 0; j < n; j += 3) {
        w[j * (k / 32) * 34 + 2 + (j % 32)] = 0x80; // q = -128 somewhere in every third row
      }
      const x = floats(r, m * k, 4);
      x.fill(0, 0, Math.min(32, x.length)); // a zero block (absmax below the quantizer's eps)
      if (m * k >= 64) {
        x[40] = 300; // one outlier block
      }
      const out = refOf(mem, "f32", [m, n]);
      return { args: [refOf(mem, "f32", [m, k], x), refOf(mem, "q8_0", [n, k], w), out], out };
    },
  };
}

/** The integer k-quant head (matmulQ8I8 over q4_k / q5_k / q6_k): exact. x has a zero block and an outlier. */
function ki8Case(format: "q4_k" | "q5_k" | "q6_k", [m, k, n]: [number, number, number], seed: number): ConformanceCase {
  return {
    kernel: "matmulQ8I8",
    name: `integer ${format} ${m}x${k} · ${n}x${k}`,
    compare: "exact",
    build(mem) {
      const r = rng(seed);
      const w = QUANT_TRAITS[format].encode(floats(r, n * k, 0.5), n, k);
      const x = floats(r, m * k, 4);
      x.fill(0, 0, 256);
      x[m * k - 7] = 300;
      const out = refOf(mem, "f32", [m, n]);
      return { args: [refOf(mem, "f32", [m, k], x), refOf(mem, format, [n, k], w), out], out };
    },
  };
}

function floatCase(kernel: KernelName, name: string, seed: number, make: (mem: CaseMemory, r: () => number) => CaseData, nmse = 1e-10): ConformanceCase {
  return { kernel, name, compare: nmse, build: (mem) => make(mem, rng(seed)) };
}

export const CASES: readonly ConformanceCase[] = [
  ...MATMUL_SHAPES.map((s, i) => ternaryCase(s, 100 + i)),
  ...MATMUL_SHAPES.map((s, i) => binaryI8Case(s, 200 + i)),
  ...MATMUL_SHAPES.map((s, i) => xnorCase(s, 300 + i)),
  quantCase(1, 2560, 400),
  quantCase(4, 33, 401),
  quantCase(2, 6912, 402),
  ...(["f32", "f16", "bf16"] as const).map((f, i) => denseCase(f, [1, 256, 50], 500 + i)),
  denseCase("q8_0", [2, 64, 9], 510),
  denseCase("q6_k", [1, 256, 5], 511),
  denseCase("q6_k", [3, 768, 37], 512),
  denseCase("q4_k", [1, 512, 7], 513),
  denseCase("q4_k", [3, 768, 37], 514),
  denseCase("q5_k", [1, 512, 7], 515),
  denseCase("q5_k", [3, 768, 37], 516),
  ...([
    [1, 1536, 64],
    [1, 32, 5],
    [2, 64, 33],
    [8, 256, 48],
    [9, 96, 40],
    [17, 128, 16],
  ] as [number, number, number][]).map((s, i) => q8i8Case(s, 520 + i)),
  ...(["q4_k", "q5_k", "q6_k"] as const).flatMap((f, i) => [ki8Case(f, [1, 1536, 37], 530 + 2 * i), ki8Case(f, [3, 512, 9], 531 + 2 * i)]),
  floatCase("rmsNorm", "rmsNorm 3x2560 weighted", 600, (mem, r) => {
    const out = refOf(mem, "f32", [3, 2560]);
    return { args: [refOf(mem, "f32", [3, 2560], floats(r, 7680)), refOf(mem, "f32", [2560], floats(r, 2560)), 1e-5, out], out };
  }),
  floatCase("rmsNorm", "rmsNorm 1x100 unweighted", 601, (mem, r) => {
    const out = refOf(mem, "f32", [1, 100]);
    return { args: [refOf(mem, "f32", [1, 100], floats(r, 100)), undefined, 1e-5, out], out };
  }),
  ...(["neox", "adjacent"] as const).map((mode, i) =>
    floatCase("rope", `rope ${mode} 4x5x64`, 610 + i, (mem, r) => {
      const out = refOf(mem, "f32", [4, 5, 64]);
      const pos = Int32Array.of(0, 7, 100, 4095);
      return { args: [refOf(mem, "f32", [4, 5, 64], floats(r, 1280)), refOf(mem, "i32", [4], pos), 500000, mode, out], out };
    }, 1e-9),
  ),
  floatCase("softmax", "softmax 3x1000", 620, (mem, r) => {
    const out = refOf(mem, "f32", [3, 1000]);
    return { args: [refOf(mem, "f32", [3, 1000], floats(r, 3000, 20)), out], out };
  }, 1e-9),
  floatCase("attention", "attention GQA 3 queries at 5, 8/2 heads, 64 wide", 630, (mem, r) => {
    const out = refOf(mem, "f32", [3, 8, 64]);
    const q = refOf(mem, "f32", [3, 8, 64], floats(r, 1536));
    const k = refOf(mem, "f32", [8, 2, 64], floats(r, 1024));
    const v = refOf(mem, "f32", [8, 2, 64], floats(r, 1024));
    return { args: [q, k, v, 5, 0.125, out], out };
  }, 1e-9),
  floatCase("attention", "attention decode 1 query at 0", 631, (mem, r) => {
    const out = refOf(mem, "f32", [1, 4, 32]);
    const q = refOf(mem, "f32", [1, 4, 32], floats(r, 128));
    const k = refOf(mem, "f32", [1, 4, 32], floats(r, 128));
    const v = refOf(mem, "f32", [1, 4, 32], floats(r, 128));
    return { args: [q, k, v, 0, 1 / Math.sqrt(32), out], out };
  }, 1e-9),
  // KV caches stored as f16 / q8_0 (src/model/bitnet/kv-cache.ts): rows encoded by the reference codecs, read decoded
  // (q8_0 K: the query rounded through q8_0 too, integer K·q; a decode and a prefill).
  ...([["f16", 8, 2, 64, 2, 30], ["q8_0", 20, 5, 128, 1, 40], ["q8_0", 4, 4, 64, 20, 6]] as const).map(([dtype, heads, kvHeads, hd, seq, pos0], i) =>
    floatCase("attention", `attention over a ${dtype} cache, ${seq} queries at ${pos0}, ${heads}/${kvHeads} heads, ${hd} wide`, 632 + i, (mem, r) => {
      const rows = pos0 + seq;
      const out = refOf(mem, "f32", [seq, heads, hd]);
      const q = refOf(mem, "f32", [seq, heads, hd], floats(r, seq * heads * hd));
      const cache = () => refOf(mem, dtype, [rows, kvHeads, hd], QUANT_TRAITS[dtype].encode(floats(r, rows * kvHeads * hd, 3), rows * kvHeads, hd));
      return { args: [q, cache(), cache(), pos0, 1 / Math.sqrt(hd), out], out };
    }, 1e-9),
  ),
  ...(Object.keys(UNARY_OPS) as UnaryOp[]).map((op, i): ConformanceCase => ({
    kernel: "unary",
    name: `unary ${op} 1000`,
    compare: UNARY_OPS[op].numerics === "exact" ? "exact" : 1e-9,
    build: (mem) => {
      const x = floats(rng(640 + i), 1000, 4);
      const out = refOf(mem, "f32", [1000]);
      return { args: [op, refOf(mem, "f32", [1000], x), out], out };
    },
  })),
  ...(Object.keys(BINARY_OPS) as BinaryOp[]).map((op, i): ConformanceCase => ({
    kernel: "binary",
    name: `binary ${op} [4, 300] with [300] broadcast over rows`,
    compare: BINARY_OPS[op].numerics === "exact" ? "exact" : 1e-9,
    build: (mem) => {
      const r = rng(650 + i);
      const out = refOf(mem, "f32", [4, 300]);
      const a = refOf(mem, "f32", [4, 300], floats(r, 1200));
      const b = refOf(mem, "f32", [300], floats(r, 300, 2));
      return { args: [op, a, [300, 1], b, [0, 1], out], out };
    },
  })),
  floatCase("binary", "binary add, same shapes", 660, (mem, r) => {
    const out = refOf(mem, "f32", [2, 513]);
    const a = refOf(mem, "f32", [2, 513], floats(r, 1026));
    const b = refOf(mem, "f32", [2, 513], floats(r, 1026));
    return { args: ["add", a, [513, 1], b, [513, 1], out], out };
  }, 0),
  floatCase("scale", "scale 777", 670, (mem, r) => {
    const out = refOf(mem, "f32", [777]);
    return { args: [refOf(mem, "f32", [777], floats(r, 777)), 0.37, out], out };
  }, 0),
  floatCase("embedding", "embedding f16 rows", 680, (mem, r) => {
    const table = QUANT_TRAITS.f16.encode(floats(r, 50 * 64), 50, 64);
    const out = refOf(mem, "f32", [4, 64]);
    return { args: [refOf(mem, "i32", [4], Int32Array.of(3, 0, 49, 3)), refOf(mem, "f16", [50, 64], table), out], out };
  }, 0),
  floatCase("embedding", "embedding q8_0 rows", 682, (mem, r) => {
    const table = QUANT_TRAITS.q8_0.encode(floats(r, 20 * 96), 20, 96);
    const out = refOf(mem, "f32", [3, 96]);
    return { args: [refOf(mem, "i32", [3], Int32Array.of(19, 0, 4)), refOf(mem, "q8_0", [20, 96], table), out], out };
  }, 0),
  floatCase("embedding", "embedding q6_k rows", 681, (mem, r) => {
    // Q6_K rows decode exactly (ggml's dequantize_row_q6_K), so every backend must match bit for bit.
    const table = QUANT_TRAITS.q6_k.encode(floats(r, 20 * 512), 20, 512);
    const out = refOf(mem, "f32", [5, 512]);
    return { args: [refOf(mem, "i32", [5], Int32Array.of(7, 0, 19, 7, 12)), refOf(mem, "q6_k", [20, 512], table), out], out };
  }, 0),
  ...(["q4_k", "q5_k"] as const).map((format, i) =>
    floatCase("embedding", `embedding ${format} rows`, 683 + i, (mem, r) => {
      // Q4_K / Q5_K rows decode exactly too ((d·sc)·q − dmin·m, one rounding), so every backend matches bit for bit.
      const table = QUANT_TRAITS[format].encode(floats(r, 20 * 512), 20, 512);
      const out = refOf(mem, "f32", [5, 512]);
      return { args: [refOf(mem, "i32", [5], Int32Array.of(7, 0, 19, 7, 12)), refOf(mem, format, [20, 512], table), out], out };
    }, 0),
  ),
];
