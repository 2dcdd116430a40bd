/**
 * Gradient checks of the autograd tape. For every op with a backward: a float64 reference forward
 * (plain TS below), central finite differences of L = Σ r·y (r fixed random weights) on it, compared
 * with the tape's gradient of the same L. Inputs are float32-representable so both sides read the same
 * numbers; the tolerance (1e-4 of the largest gradient, 1e-3 for the end-to-end network) covers the
 * f32 rounding of the tape's forward values.
 */
import { describe, expect, it } from "vitest";
import { int32Tensor, tensor, type Tensor } from "../../src/tensor/index.js";
import { createTape, type Tape } from "../../src/train/autograd.js";
import { mulberry32 as random } from "../../src/model/bitnet/fixture.js";

type AnyF32 = Tensor<"f32", readonly string[]>;

function values(rand: () => number, n: number, spread = 1): Float64Array {
  return Float64Array.from({ length: n }, () => Math.fround((rand() * 2 - 1) * spread));
}

interface Input {
  readonly dims: readonly string[];
  readonly shape: readonly number[];
  readonly values: Float64Array;
  /** Gradient checked (default true); false = a constant of the op. */
  readonly param?: boolean;
}

const H = 1e-5;

/**
 * Checks the tape's gradients of Σ r·f(inputs) against central differences of the float64 reference.
 * Returns the largest |gradient| seen, so a test can assert the check was not vacuous.
 */
function gradCheck(
  inputs: readonly Input[],
  reference: (xs: readonly Float64Array[]) => Float64Array,
  onTape: (g: Tape, ts: readonly AnyF32[]) => AnyF32,
  tolerance = 1e-4,
  seed = 7,
): number {
  const rand = random(seed);
  const xs = inputs.map((i) => i.values.slice());
  const y64 = reference(xs);
  const r = values(rand, y64.length);
  const loss = (): number => reference(xs).reduce((s, v, i) => s + v * (r[i] ?? 0), 0);

  const ts = inputs.map((i) => tensor(Float32Array.from(i.values), i.dims as never, i.shape as never) as AnyF32);
  try {
    using g = createTape();
    for (const [i, t] of ts.entries()) {
      if (inputs[i]?.param !== false) {
        g.param(t);
      }
    }
    const y = onTape(g, ts);
    const yv = y.toFloat32();
    const yScale = Math.max(1, ...y64.map(Math.abs));
    for (const [i, v] of y64.entries()) {
      expect(Math.abs((yv[i] ?? 0) - v), `forward[${i}]`).toBeLessThan(1e-5 * yScale);
    }
    using weights = tensor(Float32Array.from(r), y.dims as never, y.shape as never) as AnyF32;
    using grads = g.backward(g.sum(g.mul(y, weights as never)));
    let largest = 0;
    for (const [j, input] of inputs.entries()) {
      const t = ts[j];
      const x = xs[j];
      if (input.param === false || t === undefined || x === undefined) {
        continue;
      }
      const grad = grads.get(t);
      expect(grad.dims).toEqual(t.dims);
      const got = grad.toFloat32();
      const fd = new Float64Array(x.length);
      for (let i = 0; i < x.length; i++) {
        const keep = x[i] ?? 0;
        x[i] = keep + H;
        const up = loss();
        x[i] = keep - H;
        const down = loss();
        x[i] = keep;
        fd[i] = (up - down) / (2 * H);
      }
      const scale = Math.max(1, ...fd.map(Math.abs));
      largest = Math.max(largest, ...fd.map(Math.abs));
      for (let i = 0; i < x.length; i++) {
        expect(Math.abs((got[i] ?? 0) - (fd[i] ?? 0)), `input ${j} element ${i}: ${got[i]} vs ${fd[i]}`).toBeLessThan(
          tolerance * scale,
        );
      }
    }
    return largest;
  } finally {
    for (const t of ts) {
      t.dispose();
    }
  }
}

// ---- float64 references ----

/** y = a ∘ b with b broadcast over a's leading dim ([rows, cols] ∘ [cols]) or trailing dim ([rows] → [rows, cols]). */
function broadcast2(a: Float64Array, b: Float64Array, cols: number, bIsRow: boolean, f: (x: number, y: number) => number): Float64Array {
  return a.map((x, i) => f(x, b[bIsRow ? i % cols : Math.floor(i / cols)] ?? 0));
}

function matmul64(x: Float64Array, w: Float64Array, rows: number, k: number, n: number): Float64Array {
  const y = new Float64Array(rows * n);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let i = 0; i < k; i++) {
        s += (x[r * k + i] ?? 0) * (w[j * k + i] ?? 0);
      }
      y[r * n + j] = s;
    }
  }
  return y;
}

function rmsNorm64(x: Float64Array, w: Float64Array, n: number, eps: number): Float64Array {
  const y = new Float64Array(x.length);
  for (let base = 0; base < x.length; base += n) {
    let ss = 0;
    for (let i = 0; i < n; i++) {
      ss += (x[base + i] ?? 0) ** 2;
    }
    const inv = 1 / Math.sqrt(ss / n + eps);
    for (let i = 0; i < n; i++) {
      y[base + i] = (x[base + i] ?? 0) * inv * (w[i] ?? 0);
    }
  }
  return y;
}

function softmax64(x: Float64Array, n: number): Float64Array {
  const y = new Float64Array(x.length);
  for (let base = 0; base < x.length; base += n) {
    const row = x.subarray(base, base + n);
    const max = Math.max(...row);
    const e = row.map((v) => Math.exp(v - max));
    const sum = e.reduce((s, v) => s + v, 0);
    y.set(e.map((v) => v / sum), base);
  }
  return y;
}

function crossEntropy64(logits: Float64Array, targets: readonly number[], v: number): number {
  let loss = 0;
  for (const [r, t] of targets.entries()) {
    const row = logits.subarray(r * v, r * v + v);
    const max = Math.max(...row);
    const lse = max + Math.log(row.reduce((s, x) => s + Math.exp(x - max), 0));
    loss += lse - (row[t] ?? 0);
  }
  return loss / targets.length;
}

const silu64 = (x: number): number => x / (1 + Math.exp(-x));
const relu264 = (x: number): number => Math.max(x, 0) ** 2;

function rope64(x: Float64Array, positions: readonly number[], heads: number, hd: number, theta: number, neox: boolean): Float64Array {
  const y = x.slice();
  const half = hd / 2;
  for (const [s, pos] of positions.entries()) {
    for (let j = 0; j < half; j++) {
      const angle = pos * Math.pow(theta, (-2 * j) / hd);
      for (let h = 0; h < heads; h++) {
        const a = (s * heads + h) * hd + (neox ? j : 2 * j);
        const b = a + (neox ? half : 1);
        const xa = x[a] ?? 0;
        const xb = x[b] ?? 0;
        y[a] = xa * Math.cos(angle) - xb * Math.sin(angle);
        y[b] = xb * Math.cos(angle) + xa * Math.sin(angle);
      }
    }
  }
  return y;
}

function attention64(q: Float64Array, k: Float64Array, v: Float64Array, seq: number, ctx: number, heads: number, kvHeads: number, hd: number): Float64Array {
  const out = new Float64Array(q.length);
  const factor = 1 / Math.sqrt(hd);
  for (let s = 0; s < seq; s++) {
    for (let h = 0; h < heads; h++) {
      const kh = Math.floor(h / (heads / kvHeads));
      const visible = ctx - seq + s + 1;
      const scores = new Float64Array(visible);
      for (let c = 0; c < visible; c++) {
        let dot = 0;
        for (let d = 0; d < hd; d++) {
          dot += (q[(s * heads + h) * hd + d] ?? 0) * (k[(c * kvHeads + kh) * hd + d] ?? 0);
        }
        scores[c] = dot * factor;
      }
      const p = softmax64(scores, visible);
      for (let c = 0; c < visible; c++) {
        for (let d = 0; d < hd; d++) {
          const o = (s * heads + h) * hd + d;
          out[o] = (out[o] ?? 0) + (p[c] ?? 0) * (v[(c * kvHeads + kh) * hd + d] ?? 0);
        }
      }
    }
  }
  return out;
}

const rand = random(2024);
const input = (dims: readonly string[], shape: readonly number[], spread = 1): Input => ({
  dims,
  shape,
  values: values(rand, shape.reduce((a, b) => a * b, 1), spread),
});

describe("autograd: gradients against float64 finite differences", () => {
  it("add, sub and mul, broadcasting b by name over a leading and a trailing dim", () => {
    const a = input(["seq", "embed"], [3, 4]);
    const row = input(["embed"], [4]);
    const col = input(["seq"], [3]);
    const cases = [
      ["add", (x: number, y: number) => x + y],
      ["sub", (x: number, y: number) => x - y],
      ["mul", (x: number, y: number) => x * y],
    ] as const;
    for (const [op, f] of cases) {
      gradCheck([a, row], ([x = a.values, y = row.values]) => broadcast2(x, y, 4, true, f), (g, [x, y]) => g[op](x as Tensor<"f32", ["seq", "embed"]>, y as never));
      gradCheck([a, col], ([x = a.values, y = col.values]) => broadcast2(x, y, 4, false, f), (g, [x, y]) => g[op](x as Tensor<"f32", ["seq", "embed"]>, y as never));
      gradCheck([a, a], ([x = a.values, y = a.values]) => broadcast2(x, y, 1, false, f), (g, [x, y]) => g[op](x as Tensor<"f32", ["seq", "embed"]>, y as never));
    }
  });

  it("scale", () => {
    const x = input(["seq", "embed"], [2, 3]);
    gradCheck([x], ([v = x.values]) => v.map((e) => e * -1.5), (g, [t]) => g.scale(t as AnyF32, -1.5));
  });

  it("matmul and linear: gradients for x and w (batched leading dims)", () => {
    const x = input(["batch", "seq", "embed"], [2, 3, 5]);
    const w = input(["ffn", "embed"], [4, 5]);
    const ref = ([xv = x.values, wv = w.values]: readonly Float64Array[]): Float64Array => matmul64(xv, wv, 6, 5, 4);
    gradCheck([x, w], ref, (g, [a, b]) => g.matmul(a as Tensor<"f32", ["batch", "seq", "embed"]>, b as Tensor<"f32", ["ffn", "embed"]>));
    gradCheck([x, w], ref, (g, [a, b]) => g.linear(a as Tensor<"f32", ["batch", "seq", "embed"]>, b as Tensor<"f32", ["ffn", "embed"]>));
  });

  it("rmsNorm with weight", () => {
    const x = input(["seq", "embed"], [3, 6]);
    const w = input(["embed"], [6]);
    gradCheck([x, w], ([xv = x.values, wv = w.values]) => rmsNorm64(xv, wv, 6, 1e-5), (g, [a, b]) =>
      g.rmsNorm(a as Tensor<"f32", ["seq", "embed"]>, b as Tensor<"f32", ["embed"]>),
    );
  });

  it("silu and relu2", () => {
    const x = input(["seq", "ffn"], [3, 5], 2);
    gradCheck([x], ([v = x.values]) => v.map(silu64), (g, [t]) => g.silu(t as AnyF32));
    gradCheck([x], ([v = x.values]) => v.map(relu264), (g, [t]) => g.relu2(t as AnyF32));
  });

  it("softmax over the last dim", () => {
    const x = input(["seq", "ctx"], [3, 5], 2);
    gradCheck([x], ([v = x.values]) => softmax64(v, 5), (g, [t]) => g.softmax(t as Tensor<"f32", ["seq", "ctx"]>, "ctx"));
  });

  it("crossEntropy from logits", () => {
    const logits = input(["seq", "vocab"], [4, 7], 3);
    const targets = [0, 6, 3, 3];
    using ids = int32Tensor(targets, ["seq"], [4]);
    gradCheck([logits], ([v = logits.values]) => Float64Array.of(crossEntropy64(v, targets, 7)), (g, [t]) =>
      g.crossEntropy(t as Tensor<"f32", ["seq", "vocab"]>, ids),
    );
  });

  it("embedding: the table's gradient is a scatter-add (repeated ids accumulate)", () => {
    const table = input(["vocab", "embed"], [5, 3]);
    const ids = [4, 1, 4, 0];
    using idt = int32Tensor(ids, ["seq"], [4]);
    const largest = gradCheck([table], ([t = table.values]) => Float64Array.from(ids.flatMap((id) => [...t.subarray(id * 3, id * 3 + 3)])), (g, [t]) =>
      g.embedding(idt, t as Tensor<"f32", ["vocab", "embed"]>),
    );
    expect(largest).toBeGreaterThan(0);
  });

  it("sum and mean", () => {
    const x = input(["seq", "embed"], [3, 4]);
    gradCheck([x], ([v = x.values]) => Float64Array.of(v.reduce((s, e) => s + e, 0)), (g, [t]) => g.sum(t as AnyF32));
    gradCheck([x], ([v = x.values]) => Float64Array.of(v.reduce((s, e) => s + e, 0) / 12), (g, [t]) => g.mean(t as AnyF32));
  });

  it("split, merge, reshape, transpose, slice and concat", () => {
    const x = input(["seq", "head", "headDim"], [2, 3, 4]);
    const same = ([v = x.values]: readonly Float64Array[]): Float64Array => v.map((e) => e * 1);
    type X = Tensor<"f32", ["seq", "head", "headDim"]>;
    gradCheck([x], same, (g, [t]) => g.merge(t as X, ["head", "headDim"], "embed"));
    gradCheck([x], same, (g, [t]) => {
      // A variable, so the callback's return type does not widen the inferred names.
      const y = g.split(t as X, "headDim", ["a", "b"], [2, 2]);
      return y;
    });
    gradCheck([x], same, (g, [t]) => g.reshape(t as AnyF32, ["seq", "embed"], [2, 12]));
    const transposed = ([v = x.values]: readonly Float64Array[]): Float64Array => {
      const out = new Float64Array(24);
      let o = 0;
      for (let d = 0; d < 4; d++) {
        for (let s = 0; s < 2; s++) {
          for (let h = 0; h < 3; h++) {
            out[o++] = v[(s * 3 + h) * 4 + d] ?? 0;
          }
        }
      }
      return out;
    };
    gradCheck([x], transposed, (g, [t]) => g.transpose(t as X, ["headDim", "seq", "head"]));
    const sliced = ([v = x.values]: readonly Float64Array[]): Float64Array =>
      v.filter((_, i) => Math.floor(i / 4) % 3 >= 1);
    gradCheck([x], sliced, (g, [t]) => g.slice(t as X, "head", 1, 3));
    const y = input(["seq", "head", "headDim"], [2, 1, 4]);
    const joined = ([a = x.values, b = y.values]: readonly Float64Array[]): Float64Array =>
      Float64Array.from([...a.subarray(0, 12), ...b.subarray(0, 4), ...a.subarray(12), ...b.subarray(4)]);
    gradCheck([x, y], joined, (g, [a, b]) => g.concat(a as X, b as X, "head"));
  });

  it("rope in both pairings", () => {
    const x = input(["seq", "head", "headDim"], [3, 2, 4]);
    const positions = [0, 5, 17];
    using pos = int32Tensor(positions, ["seq"], [3]);
    for (const mode of ["neox", "adjacent"] as const) {
      gradCheck([x], ([v = x.values]) => rope64(v, positions, 2, 4, 10000, mode === "neox"), (g, [t]) =>
        g.rope(t as Tensor<"f32", ["seq", "head", "headDim"]>, pos, { theta: 10000, mode }),
      );
    }
  });

  it("causal grouped-query attention: gradients for q, k and v (queries after a prefix)", () => {
    const q = input(["seq", "head", "headDim"], [2, 4, 3]);
    const k = input(["ctx", "kvHead", "headDim"], [3, 2, 3]);
    const v = input(["ctx", "kvHead", "headDim"], [3, 2, 3]);
    gradCheck([q, k, v], ([qv = q.values, kv = k.values, vv = v.values]) => attention64(qv, kv, vv, 2, 3, 4, 2, 3), (g, [a, b, c]) =>
      g.attention(
        a as Tensor<"f32", ["seq", "head", "headDim"]>,
        b as Tensor<"f32", ["ctx", "kvHead", "headDim"]>,
        c as Tensor<"f32", ["ctx", "kvHead", "headDim"]>,
      ),
    );
  });
});

describe("autograd: a two-layer network end to end", () => {
  it("embedding → rmsNorm → linear → silu → linear (+ residual) → crossEntropy", () => {
    const [V, E, F, S] = [6, 4, 5, 3];
    const ids = [2, 5, 2];
    const targets = [1, 0, 4];
    using idt = int32Tensor(ids, ["seq"], [S]);
    using tgt = int32Tensor(targets, ["seq"], [S]);
    const table = input(["vocab", "embed"], [V, E]);
    const norm = input(["embed"], [E]);
    const up = input(["ffn", "embed"], [F, E]);
    const down = input(["embed", "ffn"], [E, F]);
    const head = input(["vocab", "embed"], [V, E]);
    const reference = ([t = table.values, n = norm.values, u = up.values, d = down.values, h = head.values]: readonly Float64Array[]): Float64Array => {
      const x = Float64Array.from(ids.flatMap((id) => [...t.subarray(id * E, id * E + E)]));
      const hidden = matmul64(rmsNorm64(x, n, E, 1e-5), u, S, E, F).map(silu64);
      const res = matmul64(hidden, d, S, F, E).map((e, i) => e + (x[i] ?? 0));
      return Float64Array.of(crossEntropy64(matmul64(res, h, S, E, V), targets, V));
    };
    type T<D extends readonly string[]> = Tensor<"f32", D>;
    const largest = gradCheck([table, norm, up, down, head], reference, (g, [t, n, u, d, h]) => {
      const x = g.embedding(idt, t as T<["vocab", "embed"]>);
      const hidden = g.silu(g.linear(g.rmsNorm(x, n as T<["embed"]>), u as T<["ffn", "embed"]>));
      const res = g.add(g.linear(hidden, d as T<["embed", "ffn"]>), x);
      return g.crossEntropy(g.linear(res, h as T<["vocab", "embed"]>), tgt);
    }, 1e-3);
    expect(largest).toBeGreaterThan(0.01);
  });
});

describe("autograd: typing and ownership", () => {
  it("types a gradient with its parameter's dims", () => {
    using w = tensor([1, 2, 3, 4, 5, 6], ["ffn", "embed"], [3, 2]);
    using x = tensor([1, -1], ["embed"], [2]);
    using g = createTape();
    g.param(w);
    using grads = g.backward(g.sum(g.mul(w, x)));
    const ok: Tensor<"f32", readonly ["ffn", "embed"]> = grads.get(w);
    // @ts-expect-error the gradient of w [ffn, embed] is not an [embed, ffn] tensor
    const wrong: Tensor<"f32", readonly ["embed", "ffn"]> = grads.get(w);
    expect(wrong).toBe(ok);
    expect([...ok.toFloat32()]).toEqual([1, -1, 1, -1, 1, -1]);
    expect(() => grads.get(x)).toThrow(/not a parameter/);
  });

  it("frees the tape's intermediates on dispose and refuses a non-scalar loss", () => {
    using w = tensor([1, 2], ["embed"], [2]);
    const g = createTape();
    g.param(w);
    const y = g.silu(g.scale(w, 2));
    expect(() => g.backward(y as never)).toThrow(/scalar/);
    g.dispose();
    expect(y.isDisposed).toBe(true);
    expect(w.isDisposed).toBe(false);
  });
});
