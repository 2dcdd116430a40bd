/**
 * Reverse-mode automatic differentiation over barbell's typed f32 ops, as a tape.
 *
 * `const g = createTape()` records every op called through it (`g.matmul`, `g.rmsNorm`, …): the
 * forward value is computed by the very same inference op (`matmul`, `rmsNorm`, … of src/tensor), so
 * the inference path is unchanged; the tape only remembers, per output, its inputs and how to send a
 * gradient back to them. `g.backward(loss)` walks the tape in reverse and returns `Gradients`, whose
 * `get(w)` is typed with `w`'s own dimension names.
 *
 * Backward rules run on the host in float64 (values read once per tensor, gradients accumulated as
 * Float64Array) and are rounded to f32 once, when a gradient tensor is made. A fast tape
 * (`createTape({ kernels })`, or `{ matmul }` for a plain x·wᵀ kernel) keeps its gradients in f32 and runs
 * the products of `matmul`/`linear`/`bitLinear` (gx = g·w, gw = gᵀ·x) and attention through `kernels.gemm`
 * (operands as stored, transposes in the product's flags), and RMSNorm's backward and the cross-entropy
 * through the kernels that have them (the addon's TrainContext, see ./kernels.ts and ./fast.ts); the
 * other rules are the same JS on f32 arrays. Tensors made by the tape
 * (op outputs) are owned by it and freed by `dispose()`; gradient tensors are owned by `Gradients`.
 * See docs/training.md.
 */
import type { DenseDType } from "../backends/backend.js";
import { contiguousStrides } from "../backends/storage.js";
import { ShapeError, UsageError } from "../core/errors.js";
import type { Dims, Duplicate, IsPermutation, Last, MergePair, Replace, Show, ShapeOf } from "../tensor/dims.js";
import { attention, concat, embedding, merge, reshape, rmsNorm, rope, scale, silu, relu2, slice, softmax, split, tensor, transpose, type RopeOptions } from "../tensor/index.js";
import { contractDense, contractPacked } from "../tensor/ops/matmul.js";
import type { MergeCheck, SplitCheck } from "../tensor/ops/shape.js";
import { quantizeActivations, ternarize } from "../tensor/ops/quant.js";
import { binary, type Broadcastable } from "../tensor/ops/elementwise.js";
import type { Contracted, Weights } from "../tensor/ops/matmul.js";
import { layoutArg, tensorArg, tensorFromBytes, type Tensor } from "../tensor/tensor.js";
import { attentionBackwardF32, attentionBackwardF64, broadcastIndex, gatherIndex, linearBackwardF32, scatter, type AttentionDims } from "./backward.js";
import { gemmFromMatmul, like, ternarizeWith, TRANS_B, type Grad, type HostGemm, type HostMatmul, type TrainKernels } from "./kernels.js";

type F32<D extends Dims> = Tensor<"f32", D>;
type AnyF32 = Tensor<"f32", Dims>;

/** Sends the output gradient back: one entry per input (undefined = no contribution). */
type BackwardRule = (gOut: Grad) => readonly (Grad | undefined)[];

export type { HostMatmul } from "./kernels.js";

/** Options of {@link createTape}. */
export interface TapeOptions {
  /**
   * Runs the backward products of `matmul`, `linear` and `bitLinear` in f32 with this kernel (the fast
   * path); absent: float64 loops on the host (the reference).
   */
  readonly matmul?: HostMatmul;
  /** The fast path's kernels (gemm required); takes precedence over `matmul`. */
  readonly kernels?: TrainKernels;
}

interface Node {
  readonly output: AnyF32;
  readonly inputs: readonly AnyF32[];
  readonly backward: BackwardRule;
}

/** The gradients of one `backward` call, one per parameter; owns its tensors (`dispose()` / `using`). */
export class Gradients implements Disposable {
  readonly #grads: Map<AnyF32, AnyF32>;

  /** @internal Made by `Tape.backward`. */
  constructor(grads: Map<AnyF32, AnyF32>) {
    this.#grads = grads;
  }

  /** d loss / d param, with the parameter's own dims. */
  get<D extends Dims>(param: F32<D>): F32<D> {
    const grad = this.#grads.get(param as AnyF32);
    if (grad === undefined) {
      throw new UsageError("unsupported", `[autograd] ${param.describe()} is not a parameter of this tape`);
    }
    return grad as F32<D>;
  }

  dispose(): void {
    for (const grad of this.#grads.values()) {
      grad.dispose();
    }
    this.#grads.clear();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

/** Options of the training attention: causal over the whole k/v (queries are the last `seq` positions). */
export interface TapeAttentionOptions {
  /** Score scale; default 1/sqrt(headDim). */
  readonly scale?: number;
  /** The rows hold this many independent windows of equal length (q and k/v of the same length); default 1. */
  readonly windows?: number;
}

/**
 * A reverse-mode tape. Inputs that need gradients are registered with `param`; any other tensor passed
 * to an op is a constant. Op outputs belong to the tape and are freed by `dispose()`.
 */
export class Tape implements Disposable {
  readonly #nodes: Node[] = [];
  readonly #byOutput = new Map<AnyF32, Node>();
  readonly #params = new Set<AnyF32>();
  readonly #host = new Map<Tensor, Float32Array | Int32Array>();
  readonly #gemm: HostGemm | undefined;
  readonly #kernels: TrainKernels | undefined;
  /** Per latent weight of `bitLinear`: its ternarized tensor (made once per tape) and, once needed, γ·W_t as f32. */
  readonly #ternary = new Map<AnyF32, { wt: Tensor<"ternary">; deq?: Float32Array }>();
  constructor(options: TapeOptions = {}) {
    this.#kernels = options.kernels;
    this.#gemm = options.kernels?.gemm ?? (options.matmul === undefined ? undefined : gemmFromMatmul(options.matmul));
  }

  /** True when backward products run in f32 through a `matmul` kernel (createTape({ matmul })). */
  get fast(): boolean {
    return this.#gemm !== undefined;
  }

  /** Marks t as a parameter: `backward` returns its gradient. t stays owned by the caller. */
  param<D extends Dims>(t: F32<D>): F32<D> {
    if (t.dtype !== "f32") {
      throw new UsageError("dtype", `[autograd] parameters must be f32, got ${t.describe()}`);
    }
    this.#params.add(t as AnyF32);
    return t;
  }

  /** True when a gradient flows to t (a parameter, or an output of an op that reads one). */
  #tracked(t: Tensor): boolean {
    return this.#params.has(t as AnyF32) || this.#byOutput.has(t as AnyF32);
  }

  /** t's values (read once; f32 and i32 read exactly into the float64 arithmetic of the rules). */
  #values(t: Tensor): Float32Array | Int32Array {
    let v = this.#host.get(t);
    if (v === undefined) {
      v = t.dtype === "i32" ? t.toInt32() : t.toFloat32();
      this.#host.set(t, v);
    }
    return v;
  }

  #record<D extends Dims>(output: F32<D>, inputs: readonly AnyF32[], backward: BackwardRule): F32<D> {
    const node = { output: output as AnyF32, inputs, backward };
    this.#nodes.push(node);
    this.#byOutput.set(node.output, node);
    return output;
  }

  // ---- elementwise ----

  #binary<const A extends Dims>(
    op: "add" | "sub" | "mul",
    a: F32<A>,
    bIn: unknown,
  ): F32<A> {
    const b = bIn as AnyF32;
    const out = binary(op, op, a, b);
    // Same dims and shape: b's index of every element is the element's own (no broadcast to undo).
    const same = a.size === b.size && a.dims.length === b.dims.length && a.dims.every((d, i) => b.dims[i] === d);
    const index = same ? undefined : broadcastIndex(a, b);
    return this.#record(out, [a as AnyF32, b], (g) => {
      if (op === "mul") {
        const av = this.#values(a);
        const bv = this.#values(b);
        if (index === undefined) {
          const ga = like(g, g.length);
          const gb = like(g, g.length);
          for (let i = 0; i < g.length; i++) {
            const x = g[i] ?? 0;
            ga[i] = x * (bv[i] ?? 0);
            gb[i] = x * (av[i] ?? 0);
          }
          return [ga, gb];
        }
        const ga = g.map((x, i) => x * (bv[index[i] ?? 0] ?? 0));
        return [ga, scatter(g.map((x, i) => x * (av[i] ?? 0)), index, b.size)];
      }
      const gb = index === undefined ? g : scatter(g, index, b.size);
      return [g, op === "sub" ? gb.map((x) => -x) : gb];
    });
  }

  /** a + b, b broadcast by name (as `add`). */
  add<const A extends Dims, const B extends Dims>(a: F32<A>, b: Broadcastable<"add", A, B>): F32<A> {
    return this.#binary("add", a, b);
  }

  /** a − b, b broadcast by name (as `sub`). */
  sub<const A extends Dims, const B extends Dims>(a: F32<A>, b: Broadcastable<"sub", A, B>): F32<A> {
    return this.#binary("sub", a, b);
  }

  /** a · b, b broadcast by name (as `mul`). */
  mul<const A extends Dims, const B extends Dims>(a: F32<A>, b: Broadcastable<"mul", A, B>): F32<A> {
    return this.#binary("mul", a, b);
  }

  /** x · factor. */
  scale<D extends Dims>(x: F32<D>, factor: number): F32<D> {
    return this.#record(scale(x, factor), [x as AnyF32], (g) => [g.map((v) => v * factor)]);
  }

  /** x · sigmoid(x). */
  silu<D extends Dims>(x: F32<D>): F32<D> {
    return this.#record(silu(x), [x as AnyF32], (g) => {
      const xv = this.#values(x);
      return [g.map((v, i) => {
        const s = sigmoid(xv[i] ?? 0);
        return v * (s + (xv[i] ?? 0) * s * (1 - s));
      })];
    });
  }

  /** max(x, 0)². */
  relu2<D extends Dims>(x: F32<D>): F32<D> {
    return this.#record(relu2(x), [x as AnyF32], (g) => {
      const xv = this.#values(x);
      const gx = like(g, g.length);
      for (let i = 0; i < g.length; i++) {
        const xi = xv[i] ?? 0;
        gx[i] = xi > 0 ? (g[i] ?? 0) * 2 * xi : 0;
      }
      return [gx];
    });
  }

  // ---- contractions ----

  /** x[..., K] · w[N, K]ᵀ → [..., N] with f32 weights; gradients for both. */
  matmul<const X extends Dims, const W extends Dims>(x: F32<X>, w: Weights<"matmul", "f32", X, W>): F32<Contracted<X, W>> {
    return this.#product(x, tensorArg<F32<W>>("matmul", "w", w));
  }

  /** A linear layer with f32 weights (the same as `matmul`). */
  linear<const X extends Dims, const W extends Dims>(x: F32<X>, w: Weights<"linear", "f32", X, W>): F32<Contracted<X, W>> {
    return this.#product(x, tensorArg<F32<W>>("linear", "w", w));
  }

  #product<X extends Dims, W extends Dims>(x: F32<X>, weights: F32<W>): F32<Contracted<X, W>> {
    // With native kernels the forward is their gemm too (x·wᵀ, f32 sums in the gemm's order; the head is
    // the one f32 product of the model); otherwise the inference op.
    const out = this.#kernels === undefined ? contractDense(x, weights) : this.#gemmForward(x, weights);
    const [n = 0, k = 0] = weights.shape;
    const rows = x.size / k;
    const gemm = this.#gemm;
    if (gemm !== undefined) {
      return this.#record(out, [x as AnyF32, weights], (g) =>
        linearBackwardF32(gemm, g, rows, n, k, this.#values(weights) as Float32Array, this.#values(x) as Float32Array),
      );
    }
    return this.#record(out, [x as AnyF32, weights], (g) => {
      const xv = this.#values(x);
      const wv = this.#values(weights);
      const gx = like(g, rows * k);
      const gw = like(g, n * k);
      for (let r = 0; r < rows; r++) {
        for (let j = 0; j < n; j++) {
          const gj = g[r * n + j] ?? 0;
          for (let i = 0; i < k; i++) {
            gx[r * k + i] = (gx[r * k + i] ?? 0) + gj * (wv[j * k + i] ?? 0);
            gw[j * k + i] = (gw[j * k + i] ?? 0) + gj * (xv[r * k + i] ?? 0);
          }
        }
      }
      return [gx, gw];
    });
  }


  /** x[..., K]·w[N, K]ᵀ through the kernels' gemm, with contractDense's name and size checks. */
  #gemmForward<X extends Dims, W extends Dims>(x: F32<X>, weights: F32<W>): F32<Contracted<X, W>> {
    const [n = 0, k = 0] = weights.shape;
    const last = x.rank - 1;
    if (weights.rank !== 2 || x.rank < 1 || x.dims[last] !== weights.dims[1] || x.shape[last] !== k) {
      throw new ShapeError("dim-mismatch", `[matmul] ${x.describe()} · ${weights.describe()}ᵀ: the last dim of x must be the weights' second`);
    }
    const rows = x.size / Math.max(k, 1);
    const values = new Float32Array(rows * n);
    this.#kernels?.gemm(this.#values(x) as Float32Array, this.#values(weights) as Float32Array, values, rows, n, k, TRANS_B);
    const dims = [...x.dims.slice(0, last), weights.dims[0]];
    const shape = [...x.shape.slice(0, last), n];
    const layout = layoutArg<Contracted<X, W>>("matmul", dims, shape);
    return tensorFromBytes(x.backend, "f32", layout.dims, layout.shape, new Uint8Array(values.buffer));
  }

  /**
   * BitNet b1.58 BitLinear with latent f32 weights w[N, K] (quantization-aware training).
   *
   * Forward: exactly the inference op pair: `ternarize(w)` (absmean, γ = mean|w|, W_t = clamp(round(w/γ)))
   * and `quantizeActivations(x)` (per row absmax int8, s_x = 127/max|x|), then `linearQuantized`, so the
   * output is (x_q · W_tᵀ) · γ / s_x as computed by inference for a ternary projection.
   *
   * Backward: the straight-through estimator of the BitNet training code
   * (x̃ = x + sg(Q_a(x) − x), w̃ = w + sg(Q_w(w) − w), y = x̃ · w̃ᵀ): the quantizers count as identity,
   * and each gradient reads the *dequantized* other operand: gx = g · (γ·W_t), gw = gᵀ · (x_q / s_x).
   */
  bitLinear<const X extends Dims, const W extends Dims>(x: F32<X>, w: Weights<"linear", "f32", X, W>): F32<Contracted<X, W>> {
    const weights = tensorArg<F32<W>>("bitLinear", "w", w);
    // The weights do not change within a tape: ternarize each once (windows of a batch share it).
    let cached = this.#ternary.get(weights);
    if (cached === undefined && this.#kernels !== undefined) {
      cached = ternarizeWith(this.#kernels, this.#values(weights) as Float32Array, weights);
      if (cached !== undefined) {
        this.#ternary.set(weights, cached);
      }
    }
    if (cached === undefined) {
      const t = ternarize(weights);
      if (!t.ok) {
        throw t.error;
      }
      cached = { wt: t.value };
      this.#ternary.set(weights, cached);
    }
    const entry = cached;
    const wt = entry.wt;
    using xq = quantizeActivations(x as AnyF32);
    const out = contractPacked(xq, wt as Tensor<"ternary", W>);
    const [n = 0, k = 0] = weights.shape;
    const rows = x.size / k;
    // The dequantized operands the STE multiplies by (read now: the quantized activations are freed here).
    const xInt = xq.values.toInt32();
    const xScale = xq.scales.toFloat32();
    const gemm = this.#gemm;
    if (gemm !== undefined) {
      // Fast path: x_q / s_x [rows, k] in f32; γ·W_t [n, k] made once per weight (the product reads both as stored).
      const xd = new Float32Array(rows * k);
      for (let r = 0; r < rows; r++) {
        const s = xScale[r] ?? 1;
        for (let i = r * k; i < (r + 1) * k; i++) {
          xd[i] = (xInt[i] as number) / s;
        }
      }
      return this.#record(out, [x as AnyF32, weights], (g) => {
        entry.deq ??= wt.toFloat32();
        return linearBackwardF32(gemm, g, rows, n, k, entry.deq, xd);
      });
    }
    const wDeq = new Float64Array(wt.toFloat32());
    const xDeq = new Float64Array(rows * k);
    for (let r = 0; r < rows; r++) {
      const s = xScale[r] ?? 1;
      for (let i = 0; i < k; i++) {
        xDeq[r * k + i] = (xInt[r * k + i] ?? 0) / s;
      }
    }
    return this.#record(out, [x as AnyF32, weights], (g) => {
      const gx = like(g, rows * k);
      const gw = like(g, n * k);
      for (let r = 0; r < rows; r++) {
        for (let j = 0; j < n; j++) {
          const gj = g[r * n + j] ?? 0;
          if (gj === 0) {
            continue;
          }
          for (let i = 0; i < k; i++) {
            gx[r * k + i] = (gx[r * k + i] ?? 0) + gj * (wDeq[j * k + i] ?? 0);
            gw[j * k + i] = (gw[j * k + i] ?? 0) + gj * (xDeq[r * k + i] ?? 0);
          }
        }
      }
      return [gx, gw];
    });
  }

  /** Rows of an f32 table: ids[S] → [S, E]; the table's gradient is a scatter-add of the rows' gradients. */
  embedding<const S extends string, const V extends string, const E extends string>(
    ids: Tensor<"i32", readonly [S]>,
    table: F32<readonly [V, E]>,
  ): F32<[S, E]> {
    const out = embedding(ids, table as Tensor<DenseDType, readonly [V, E]>);
    const e = table.shape[1];
    return this.#record(out, [table as AnyF32], (g) => {
      const idv = this.#values(ids);
      const gt = like(g, table.size);
      for (const [s, id] of idv.entries()) {
        for (let i = 0; i < e; i++) {
          gt[id * e + i] = (gt[id * e + i] ?? 0) + (g[s * e + i] ?? 0);
        }
      }
      return [gt];
    });
  }

  // ---- normalization, softmax, loss ----

  /** x / sqrt(mean(x²) + eps) · weight over the last dim. */
  rmsNorm<const X extends Dims>(x: F32<X>, weight: F32<readonly [Last<X>]>, eps = 1e-5): F32<X> {
    const out = rmsNorm<X, readonly [Last<X>]>(x, weight, eps);
    const n = x.shape[x.rank - 1] ?? 1;
    const rows = x.size / n;
    const native = this.#kernels?.rmsNormBackward;
    return this.#record(out, [x as AnyF32, weight as AnyF32], (g) => {
      const xv = this.#values(x);
      const wv = this.#values(weight);
      if (native !== undefined && g instanceof Float32Array) {
        const gx = new Float32Array(x.size);
        const gw = new Float32Array(n);
        native(xv as Float32Array, wv as Float32Array, g, rows, n, eps, gx, gw);
        return [gx, gw];
      }
      const gx = like(g, x.size);
      const gw = like(g, n);
      for (let r = 0; r < rows; r++) {
        const base = r * n;
        let ss = 0;
        let dot = 0;
        for (let i = 0; i < n; i++) {
          const xi = xv[base + i] ?? 0;
          ss += xi * xi;
          dot += (g[base + i] ?? 0) * (wv[i] ?? 0) * xi;
        }
        const inv = 1 / Math.sqrt(ss / n + eps);
        for (let i = 0; i < n; i++) {
          const xi = xv[base + i] ?? 0;
          const gi = g[base + i] ?? 0;
          gx[base + i] = inv * gi * (wv[i] ?? 0) - (inv * inv * inv * xi * dot) / n;
          gw[i] = (gw[i] ?? 0) + gi * xi * inv;
        }
      }
      return [gx, gw];
    });
  }

  /** Softmax over the last dim. */
  softmax<const X extends Dims>(x: F32<X>, dim: Last<X>): F32<X> {
    const out = softmax(x, dim);
    const n = x.shape[x.rank - 1] ?? 1;
    return this.#record(out, [x as AnyF32], (g) => {
      const y = this.#values(out);
      const gx = like(g, x.size);
      for (let base = 0; base < x.size; base += n) {
        let dot = 0;
        for (let i = 0; i < n; i++) {
          dot += (g[base + i] ?? 0) * (y[base + i] ?? 0);
        }
        for (let i = 0; i < n; i++) {
          gx[base + i] = (y[base + i] ?? 0) * ((g[base + i] ?? 0) - dot);
        }
      }
      return [gx];
    });
  }

  /**
   * Mean cross-entropy of logits[S, V] against target ids[S]: mean over rows of logsumexp − logit[target].
   * Computed in float64 from the logits (a training op; inference has no loss).
   */
  crossEntropy<const S extends string, const V extends string>(logits: F32<readonly [S, V]>, targets: Tensor<"i32", readonly [S]>): F32<[]> {
    const [rows = 0, v = 0] = logits.shape;
    if (targets.rank !== 1 || targets.shape[0] !== rows) {
      throw new ShapeError("dim-mismatch", `[crossEntropy] ${targets.describe()} vs ${logits.describe()}`);
    }
    const lv = logits.toFloat32();
    const tv = targets.toInt32();
    // The probabilities kept for the backward: f32 on the fast path (its products round the gradient to
    // f32 anyway; half the memory of 1024 × 4096 rows), float64 on the reference.
    const probs = this.fast ? new Float32Array(rows * v) : new Float64Array(rows * v);
    const bad = tv.findIndex((t) => t < 0 || t >= v);
    if (bad >= 0) {
      throw new ShapeError("bounds", `[crossEntropy] target ${tv[bad]} at row ${bad} is outside ${logits.dims[1]}=${v}`);
    }
    const kernels = this.#kernels;
    const native = probs instanceof Float32Array ? kernels?.crossEntropy : undefined;
    let loss = native === undefined ? 0 : native(lv, tv, rows, v, probs as Float32Array);
    for (let r = 0; native === undefined && r < rows; r++) {
      const t = tv[r] ?? 0;
      const base = r * v;
      let max = -Infinity;
      for (let i = base; i < base + v; i++) {
        const x = lv[i] as number;
        if (x > max) {
          max = x;
        }
      }
      let sum = 0;
      for (let i = base; i < base + v; i++) {
        const e = Math.exp((lv[i] as number) - max);
        probs[i] = e;
        sum += e;
      }
      for (let i = base; i < base + v; i++) {
        probs[i] = (probs[i] as number) / sum;
      }
      loss += max + Math.log(sum) - (lv[base + t] ?? 0);
    }
    const out = tensor([loss / rows], [] as [], [] as ShapeOf<[]>, { backend: logits.backend });
    return this.#record(out, [logits as AnyF32], (g) => {
      const scaleBy = (g[0] ?? 0) / rows;
      const back = kernels?.crossEntropyBackward;
      if (back !== undefined && probs instanceof Float32Array) {
        const gl = new Float32Array(probs.length);
        back(probs, tv, rows, v, scaleBy, gl);
        return [gl];
      }
      const gl = like(g, probs.length);
      for (let i = 0; i < probs.length; i++) {
        gl[i] = (probs[i] as number) * scaleBy;
      }
      for (let r = 0; r < rows; r++) {
        const i = r * v + (tv[r] ?? 0);
        gl[i] = (gl[i] ?? 0) - scaleBy;
      }
      return [gl];
    });
  }

  /** Sum of all elements (a scalar). */
  sum<D extends Dims>(x: F32<D>): F32<[]> {
    const total = (this.#values(x) as Float32Array).reduce((s, v) => s + v, 0);
    const out = tensor([total], [] as [], [] as ShapeOf<[]>, { backend: x.backend });
    return this.#record(out, [x as AnyF32], (g) => [like(g, x.size).fill(g[0] ?? 0)]);
  }

  /** Mean of all elements (a scalar). */
  mean<D extends Dims>(x: F32<D>): F32<[]> {
    const total = (this.#values(x) as Float32Array).reduce((s, v) => s + v, 0);
    const out = tensor([total / x.size], [] as [], [] as ShapeOf<[]>, { backend: x.backend });
    return this.#record(out, [x as AnyF32], (g) => [like(g, x.size).fill((g[0] ?? 0) / x.size)]);
  }

  // ---- layout ----

  /** Splits one dim into two adjacent ones (as `split`). */
  split<D extends Dims, N extends D[number], const A extends string, const B extends string>(
    t: F32<D>,
    dim: N,
    into: SplitCheck<D, N, A, B> extends true ? readonly [A, B] : SplitCheck<D, N, A, B>,
    sizes: readonly [number, number],
  ): F32<Replace<D, N, [A, B]>> {
    const out = split<"f32", D, N, A, B>(t, dim, into, sizes);
    return this.#record(out, [t as AnyF32], (g) => [g]);
  }

  /** Merges two adjacent dims (as `merge`). */
  merge<D extends Dims, const A extends string, const B extends string, const M extends string>(
    t: F32<D>,
    pair: readonly [A, B],
    into: MergeCheck<D, A, B, M> extends true ? M : MergeCheck<D, A, B, M>,
  ): F32<MergePair<D, A, B, M>> {
    const out = merge<"f32", D, A, B, M>(t, pair, into);
    return this.#record(out, [t as AnyF32], (g) => [g]);
  }

  /** New names and sizes with the same element count (as `reshape`). */
  reshape<const E extends Dims>(
    t: AnyF32,
    dims: [Duplicate<E>] extends [never] ? E : `[reshape] '${Duplicate<E> & string}' is used twice`,
    shape: ShapeOf<E>,
  ): F32<E> {
    const out = reshape<"f32", E>(t, dims, shape);
    return this.#record(out, [t], (g) => [g]);
  }

  /** Reorders dims by name (as `transpose`). */
  transpose<D extends Dims, const P extends Dims>(
    t: F32<D>,
    order: IsPermutation<D, P> extends true ? P : `[transpose] ${Show<P>} is not a permutation of ${Show<D>}`,
  ): F32<P> {
    const out = transpose<"f32", D, P>(t, order);
    const src = contiguousStrides(t.shape);
    const strides = (order as P).map((n) => src[t.dims.indexOf(n)] ?? 0);
    const index = gatherIndex(out.shape as readonly number[], strides, 0);
    return this.#record(out, [t as AnyF32], (g) => [scatter(g, index, t.size)]);
  }

  /** Elements [start, end) of one dim (as `slice`). */
  slice<D extends Dims>(t: F32<D>, dim: D[number], start: number, end: number): F32<D> {
    const out = slice(t, dim, start, end);
    const strides = contiguousStrides(t.shape);
    const axis = t.dims.indexOf(dim);
    const index = gatherIndex(out.shape as readonly number[], strides, start * (strides[axis] ?? 0));
    return this.#record(out, [t as AnyF32], (g) => [scatter(g, index, t.size)]);
  }

  /** Joins a and b along one dim (as `concat`); both must have the same dims. */
  concat<const A extends Dims>(a: F32<A>, b: F32<A>, dim: A[number]): F32<A> {
    const out = concat<"f32", A, A>(a, b, dim);
    const strides = contiguousStrides(out.shape);
    const axis = a.dims.indexOf(dim);
    const aIndex = gatherIndex(a.shape as readonly number[], strides, 0);
    const bIndex = gatherIndex(b.shape as readonly number[], strides, (a.shape[axis] ?? 0) * (strides[axis] ?? 0));
    const pick = (g: Grad, index: Int32Array): Grad => {
      const out = like(g, index.length);
      index.forEach((from, i) => (out[i] = g[from] ?? 0));
      return out;
    };
    return this.#record(out, [a as AnyF32, b as AnyF32], (g) => [pick(g, aIndex), pick(g, bIndex)]);
  }

  // ---- attention block ----

  /** Rotary embedding (as `rope`); its gradient is the inverse rotation, computed in float64. */
  rope<const S extends string, const H extends string, const D extends string>(
    x: F32<readonly [S, H, D]>,
    positions: Tensor<"i32", readonly [NoInfer<S>]>,
    options: RopeOptions,
  ): F32<[S, H, D]> {
    const out = rope(x, positions, options);
    const [seq = 0, heads = 0, headDim = 0] = x.shape;
    const half = headDim / 2;
    const [stride, partner] = options.mode === "neox" ? [1, half] : [2, 1];
    return this.#record(out, [x as AnyF32], (g) => {
      const pos = this.#values(positions);
      const gx = like(g, x.size);
      for (let s = 0; s < seq; s++) {
        for (let j = 0; j < half; j++) {
          // The kernel's angle (src/backends/js/kernels/rope.ts); the transpose of a rotation is the inverse one.
          const angle = (pos[s] ?? 0) * Math.pow(options.theta, (-2 * j) / headDim);
          const cos = Math.cos(angle);
          const sin = Math.sin(angle);
          for (let h = 0; h < heads; h++) {
            const a = (s * heads + h) * headDim + j * stride;
            const b = a + partner;
            const ga = g[a] ?? 0;
            const gb = g[b] ?? 0;
            gx[a] = ga * cos + gb * sin;
            gx[b] = gb * cos - ga * sin;
          }
        }
      }
      return [gx];
    });
  }

  /**
   * Causal grouped-query attention of q[S, H, D] over k, v[C, KV, D], queries at the last S of the C
   * positions. The forward is the fused inference kernel; the backward recomputes the probabilities and
   * differentiates softmax(q·kᵀ·scale + causal mask)·v directly (float64, or f32 products through the
   * tape's matmul kernel). With `windows: B` the rows hold B independent windows of S/B positions each
   * (S = C), every one attending causally to itself only: a batch of windows as one [B·S] tensor.
   */
  attention<const S extends string, const H extends string, const D extends string, const C extends string, const KV extends string>(
    q: F32<readonly [S, H, D]>,
    k: F32<readonly [C, KV, NoInfer<D>]>,
    v: F32<readonly [NoInfer<C>, NoInfer<KV>, NoInfer<D>]>,
    options: TapeAttentionOptions = {},
  ): F32<[S, H, D]> {
    const [rowsQ = 0, heads = 0, hd = 0] = q.shape;
    const [rowsKV = 0, kvHeads = 0] = k.shape;
    const factor = options.scale ?? 1 / Math.sqrt(hd);
    const windows = options.windows ?? 1;
    if (!Number.isSafeInteger(windows) || windows < 1 || (windows > 1 && (rowsQ !== rowsKV || rowsQ % windows !== 0))) {
      throw new ShapeError("size", `[attention] ${windows} windows need q and k/v of the same length, a multiple of it (${rowsQ}, ${rowsKV})`);
    }
    const seq = rowsQ / windows;
    const ctx = rowsKV / windows;
    let out: F32<[S, H, D]>;
    if (windows === 1) {
      out = attention(q, k, v, { scale: factor });
    } else {
      // One fused kernel call per window on its rows, gathered into one tensor.
      const values = new Float32Array(q.size);
      for (let w = 0; w < windows; w++) {
        using qw = slice(q, q.dims[0], w * seq, (w + 1) * seq);
        using kw = slice(k, k.dims[0], w * ctx, (w + 1) * ctx);
        using vw = slice(v, v.dims[0], w * ctx, (w + 1) * ctx);
        using ow = attention(qw, kw, vw, { scale: factor });
        values.set(ow.toFloat32(), w * seq * heads * hd);
      }
      const layout = layoutArg<[S, H, D]>("attention", q.dims, q.shape);
      out = tensorFromBytes(q.backend, "f32", layout.dims, layout.shape, new Uint8Array(values.buffer));
    }
    const dims: AttentionDims = { seq, ctx, heads, kvHeads, hd, factor };
    const gemm = this.#gemm;
    return this.#record(out, [q as AnyF32, k as AnyF32, v as AnyF32], (g) => {
      const qv = this.#values(q) as Float32Array;
      const kv = this.#values(k) as Float32Array;
      const vv = this.#values(v) as Float32Array;
      const one = (gw: Grad, qw: Float32Array, kw: Float32Array, vw: Float32Array): Grad[] =>
        gemm === undefined ? attentionBackwardF64(gw, qw, kw, vw, dims) : attentionBackwardF32(gemm, gw, qw, kw, vw, dims);
      if (windows === 1) {
        return one(g, qv, kv, vv);
      }
      const gq = like(g, q.size);
      const gk = like(g, k.size);
      const gv = like(g, v.size);
      const qn = seq * heads * hd;
      const kn = ctx * kvHeads * hd;
      for (let w = 0; w < windows; w++) {
        const [a, b, c] = one(g.subarray(w * qn, (w + 1) * qn), qv.subarray(w * qn, (w + 1) * qn), kv.subarray(w * kn, (w + 1) * kn), vv.subarray(w * kn, (w + 1) * kn));
        gq.set(a ?? [], w * qn);
        gk.set(b ?? [], w * kn);
        gv.set(c ?? [], w * kn);
      }
      return [gq, gk, gv];
    });
  }

  // ---- backward ----

  /**
   * Gradients of `loss` (a scalar made on this tape) with respect to every parameter. Call it as often
   * as needed; each call returns fresh gradient tensors owned by the returned `Gradients`.
   */
  backward(loss: F32<readonly []>): Gradients {
    const arrays = this.backwardArrays(loss);
    const grads = new Map<AnyF32, AnyF32>();
    try {
      for (const [param, values] of arrays) {
        grads.set(param, tensorFromBytes(param.backend, "f32", param.dims, param.shape, new Uint8Array(values.buffer, values.byteOffset, values.byteLength)));
      }
    } catch (e) {
      new Gradients(grads).dispose();
      throw e;
    }
    return new Gradients(grads);
  }

  /**
   * The same gradients as `backward`, as f32 arrays (row-major, one per parameter tensor, each its own
   * fresh array) without making tensors: what the trainer reads (src/train/qat.ts).
   */
  backwardArrays(loss: F32<readonly []>): Map<AnyF32, Float32Array> {
    if (loss.size !== 1 || !this.#tracked(loss)) {
      throw new UsageError("unsupported", `[autograd] backward needs a scalar made on this tape, got ${loss.describe()}`);
    }
    const acc = new Map<AnyF32, Grad>([[loss as AnyF32, this.fast ? Float32Array.of(1) : Float64Array.of(1)]]);
    for (let n = this.#nodes.length - 1; n >= 0; n--) {
      const node = this.#nodes[n];
      const gOut = node === undefined ? undefined : acc.get(node.output);
      if (node === undefined || gOut === undefined) {
        continue;
      }
      const contributions = node.backward(gOut);
      // An op output's gradient is complete once its rule ran (outputs come after their consumers in reverse).
      acc.delete(node.output);
      // A rule that passes gOut on (split, merge, add …) hands it to its first input; later ones copy it.
      let gOutTaken = false;
      for (const [i, input] of node.inputs.entries()) {
        const c = contributions[i];
        if (c === undefined || !this.#tracked(input)) {
          continue;
        }
        const prev = acc.get(input);
        if (prev === undefined) {
          const own = c !== gOut || !gOutTaken;
          gOutTaken ||= c === gOut;
          acc.set(input, own ? c : c.slice());
        } else {
          for (let j = 0; j < prev.length; j++) {
            prev[j] = (prev[j] ?? 0) + (c[j] ?? 0);
          }
        }
      }
    }
    const out = new Map<AnyF32, Float32Array>();
    for (const param of this.#params) {
      const g = acc.get(param);
      // An f32 accumulator is handed over as is (each is a fresh array of its own, never a view).
      out.set(param, g === undefined ? new Float32Array(param.size) : g instanceof Float32Array && g.length === param.size ? g : new Float32Array(g));
    }
    return out;
  }

  /** Frees every tensor the tape made (op outputs); parameters and constants stay with their owners. */
  dispose(): void {
    for (const node of this.#nodes) {
      node.output.dispose();
    }
    this.#nodes.length = 0;
    this.#byOutput.clear();
    this.#host.clear();
    this.#params.clear();
    for (const { wt } of this.#ternary.values()) {
      wt.dispose();
    }
    this.#ternary.clear();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

/**
 * A new, empty tape: `using g = createTape()`. `createTape({ matmul })` runs the backward products of
 * linear layers in f32 through that kernel (see ./fast.ts for the native one).
 */
export function createTape(options: TapeOptions = {}): Tape {
  return new Tape(options);
}
