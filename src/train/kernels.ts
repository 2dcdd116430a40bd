/**
 * The kernels a fast training tape runs its heavy backward rules with (issue 20 point 5; docs/training.md
 * "Training throughput"): a general f32 product with either operand transposed in place, and optionally
 * RMSNorm's backward, the cross-entropy and AdamW. The native ones are the addon's `TrainContext`
 * (native/cpu/train_kernels.cc, see `nativeTrainKernels` in ./fast.ts); `gemmFromMatmul` makes the product
 * from a plain x·wᵀ kernel (the older `HostMatmul` contract), and the JS rules of ./autograd.ts and
 * ./qat.ts are the reference every native kernel is tested against (test/train/native-kernels.test.ts).
 */

import { toTernary } from "../tensor/ops/quant.js";
import type { Tensor } from "../tensor/tensor.js";

/** Gradients on the tape: float64 on the reference tape, f32 on a fast one. */
export type Grad = Float32Array | Float64Array;

/** A zeroed array of n elements of g's kind (f32 gradients stay f32). */
export function like(g: Grad, n: number): Grad {
  return g instanceof Float32Array ? new Float32Array(n) : new Float64Array(n);
}

/** g as f32 (itself when it already is). */
export function f32(g: Grad): Float32Array {
  return g instanceof Float32Array ? g : new Float32Array(g);
}

/** gemm flags: A stored [k, m] (op(A) = Aᵀ). */
export const TRANS_A = 1;
/** gemm flags: B stored [n, k] (op(B) = Bᵀ). */
export const TRANS_B = 2;
/** gemm flags: add to C instead of overwriting it. */
export const ACCUMULATE = 4;

/**
 * C[m, n] (+)= op(A)[m, k] · op(B)[k, n], f32, row-major; `flags` of TRANS_A, TRANS_B, ACCUMULATE. Must be
 * deterministic: the same inputs give the same bits on every call (checkpoints resume bit for bit).
 */
export type HostGemm = (a: Float32Array, b: Float32Array, c: Float32Array, m: number, n: number, k: number, flags: number) => void;

/**
 * out[m, n] = x[m, k] · w[n, k]ᵀ, f32, row-major (the contract of the backends' matmulF32). Must be
 * deterministic, as HostGemm.
 */
export type HostMatmul = (x: Float32Array, w: Float32Array, m: number, k: number, n: number, out: Float32Array) => void;

/** The heavy kernels of a fast tape. Only `gemm` is required; the tape runs its JS rule for any other one absent. */
export interface TrainKernels {
  readonly gemm: HostGemm;
  /** RMSNorm's backward (float64 per row, as the tape's rule): gx[rows, cols], gw[cols] (summed over rows). */
  readonly rmsNormBackward?: (x: Float32Array, w: Float32Array, g: Float32Array, rows: number, cols: number, eps: number, gx: Float32Array, gw: Float32Array) => void;
  /** Softmax of each row into probs (f32) and Σ rows' logsumexp − logit[target] (float64); −1 − row for a target outside [0, v). */
  readonly crossEntropy?: (logits: Float32Array, targets: Int32Array, rows: number, v: number, probs: Float32Array) => number;
  /** out = probs·scale, minus scale at each row's target. */
  readonly crossEntropyBackward?: (probs: Float32Array, targets: Int32Array, rows: number, v: number, scale: number, out: Float32Array) => void;
  /** AdamW over n weights in place, bit for bit qat.ts adamwUpdate; params: lr, bc1, bc2, beta1, beta2, eps, decay, gradScale. */
  readonly adamw?: (w: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, n: number, params: Float64Array) => void;
  /** absmean ternarization of n weights, bit for bit src/quant/values.ts absmeanTernarize: trits written, γ returned; NaN for a non-finite weight. */
  readonly ternarize?: (w: Float32Array, n: number, trits: Int8Array) => number;
}

/** src[rows, cols] → [cols, rows] as f32 (in 32×32 tiles, so reads and writes stay in cache). */
export function transposeF32(src: Float32Array, rows: number, cols: number): Float32Array {
  // Monomorphic (Float32Array in and out, no `??` on reads): V8 keeps this loop on its fast typed-array path.
  const out = new Float32Array(rows * cols);
  const tile = 32;
  for (let r0 = 0; r0 < rows; r0 += tile) {
    const r1 = Math.min(rows, r0 + tile);
    for (let c0 = 0; c0 < cols; c0 += tile) {
      const c1 = Math.min(cols, c0 + tile);
      for (let r = r0; r < r1; r++) {
        const base = r * cols;
        for (let c = c0; c < c1; c++) {
          out[c * rows + r] = src[base + c] as number;
        }
      }
    }
  }
  return out;
}

/** A HostGemm from an x·wᵀ kernel: op(A) and op(B)ᵀ are made row-major first (transposes materialised). */
export function gemmFromMatmul(mm: HostMatmul): HostGemm {
  return (a, b, c, m, n, k, flags) => {
    const x = (flags & TRANS_A) !== 0 ? transposeF32(a, k, m) : a;
    const w = (flags & TRANS_B) !== 0 ? b : transposeF32(b, k, n);
    if ((flags & ACCUMULATE) === 0) {
      mm(x, w, m, k, n, c);
      return;
    }
    const out = new Float32Array(m * n);
    mm(x, w, m, k, n, out);
    for (let i = 0; i < m * n; i++) {
      c[i] = (c[i] as number) + (out[i] as number);
    }
  };
}

/**
 * `ternarize(weights)` through `kernels.ternarize` (the same trits and γ, bit for bit), with γ·W_t as f32 for
 * the backward; undefined without that kernel or for non-finite weights (the JS op then reports them).
 */
export function ternarizeWith(kernels: TrainKernels, values: Float32Array, weights: Tensor<"f32">): { wt: Tensor<"ternary">; deq: Float32Array } | undefined {
  const native = kernels.ternarize;
  if (native === undefined) {
    return undefined;
  }
  const trits = new Int8Array(weights.size);
  const gamma = native(values, weights.size, trits);
  if (!Number.isFinite(gamma)) {
    return undefined;
  }
  const wt = toTernary(trits, weights.dims, weights.shape, { backend: weights.backend, scale: gamma });
  if (!wt.ok) {
    return undefined;
  }
  const deq = new Float32Array(trits.length);
  for (let i = 0; i < trits.length; i++) {
    deq[i] = (trits[i] as number) * gamma;
  }
  return { wt: wt.value as Tensor<"ternary">, deq };
}
