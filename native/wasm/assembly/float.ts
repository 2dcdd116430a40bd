/**
 * Float kernels: activation quantization (bit-exact), RMSNorm, RoPE, softmax (float64, the reference's
 * order of operations: bit-exact given the host's Math functions, which are imported), attention (f32
 * dot products, float64 softmax), element-wise ops and scaling (exact f32 operations).
 */
import {
  BINARY_ADD as ADD,
  BINARY_COUNT,
  BINARY_DIV as DIV,
  BINARY_MAX as MAX,
  BINARY_MIN as MIN,
  BINARY_MUL as MUL,
  BINARY_SUB as SUB,
  UNARY_ABS as ABS,
  UNARY_COUNT,
  UNARY_EXP as EXP,
  UNARY_GELU as GELU,
  UNARY_NEG as NEG,
  UNARY_RELU as RELU,
  UNARY_RELU2 as RELU2,
  UNARY_SIGMOID as SIGMOID,
  UNARY_SILU as SILU,
  UNARY_TANH as TANH,
} from "./ops.generated";

/** What `unary` and `binary` return for an op code the op table does not have (nothing is written). */
export const UNKNOWN_OP: i32 = -1;
/** What they return for an op of the table this module has no case for (nothing is written). */
export const UNSUPPORTED_OP: i32 = -2;

/** Largest finite f32. */
const F32_MAX: f32 = reinterpret<f32>(0x7f7fffff);

/**
 * Checks that x[0, count) is finite; returns the index of the first NaN or ±Infinity, or −1.
 * |v| ≤ F32_MAX is false exactly for NaN and ±Infinity.
 */
export function firstNonFinite(x: usize, count: i32): i32 {
  const limit = f32x4.splat(F32_MAX);
  let c = 0;
  for (; c + 16 <= count; c += 16) {
    const p = x + (<usize>c << 2);
    const ok0 = f32x4.le(f32x4.abs(v128.load(p)), limit);
    const ok1 = f32x4.le(f32x4.abs(v128.load(p, 16)), limit);
    const ok2 = f32x4.le(f32x4.abs(v128.load(p, 32)), limit);
    const ok3 = f32x4.le(f32x4.abs(v128.load(p, 48)), limit);
    if (!i32x4.all_true(v128.and(v128.and(ok0, ok1), v128.and(ok2, ok3)))) {
      break;
    }
  }
  for (; c < count; c++) {
    if (!(abs<f32>(load<f32>(x + (<usize>c << 2))) <= F32_MAX)) {
      return c;
    }
  }
  return -1;
}

/**
 * Per-row absmax int8 quantization of finite x[m, k] (the caller checked with firstNonFinite):
 *   s = f32(127 / f32(max(absmax, 1e-5))),  q = clamp(nearest(f32(x · s)), −128, 127)
 * `nearest` rounds ties to even. The clamp is the saturation of i32 → i16 → i8 narrowing.
 */
export function quantizeActivations(x: usize, m: i32, k: i32, q: usize, scales: usize): void {
  for (let r = 0; r < m; r++) {
    const xr = x + ((<usize>r * <usize>k) << 2);
    const qr = q + <usize>r * <usize>k;
    let mv = f32x4.splat(0);
    let c = 0;
    for (; c + 4 <= k; c += 4) {
      mv = f32x4.max(mv, f32x4.abs(v128.load(xr + (<usize>c << 2))));
    }
    let absmax = max(max(f32x4.extract_lane(mv, 0), f32x4.extract_lane(mv, 1)), max(f32x4.extract_lane(mv, 2), f32x4.extract_lane(mv, 3)));
    for (; c < k; c++) {
      absmax = max(absmax, abs<f32>(load<f32>(xr + (<usize>c << 2))));
    }
    // max(absmax, 1e-5) is taken in float64 by the reference, then rounded: the same as this.
    const clamped: f32 = <f64>absmax > 1e-5 ? absmax : <f32>1e-5;
    const s: f32 = <f32>127 / clamped;
    store<f32>(scales + (<usize>r << 2), s);
    const sv = f32x4.splat(s);
    c = 0;
    for (; c + 16 <= k; c += 16) {
      const p = xr + (<usize>c << 2);
      const i0 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p), sv)));
      const i1 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p, 16), sv)));
      const i2 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p, 32), sv)));
      const i3 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p, 48), sv)));
      const packed = i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(i0, i1), i16x8.narrow_i32x4_s(i2, i3));
      v128.store(qr + <usize>c, packed);
    }
    for (; c < k; c++) {
      const v = nearest<f32>(load<f32>(xr + (<usize>c << 2)) * s);
      store<i8>(qr + <usize>c, <i8>(v > 127 ? 127 : v < -128 ? -128 : <i32>v));
    }
  }
}

/** RMSNorm of x[rows, cols] (float64, the reference's order): out = x / sqrt(Σx²/cols + eps) · weight. */
export function rmsNorm(x: usize, weight: usize, hasWeight: bool, rows: i32, cols: i32, eps: f64, out: usize): void {
  for (let r = 0; r < rows; r++) {
    const xr = x + ((<usize>r * <usize>cols) << 2);
    const or = out + ((<usize>r * <usize>cols) << 2);
    let sum: f64 = 0;
    for (let c = 0; c < cols; c++) {
      const v = <f64>load<f32>(xr + (<usize>c << 2));
      sum += v * v;
    }
    const denom = sqrt<f64>(sum / <f64>cols + eps);
    for (let c = 0; c < cols; c++) {
      const scale: f64 = hasWeight ? <f64>load<f32>(weight + (<usize>c << 2)) : 1;
      store<f32>(or + (<usize>c << 2), <f32>((<f64>load<f32>(xr + (<usize>c << 2)) / denom) * scale));
    }
  }
}

/**
 * Rotary embedding of x[seq, heads, headDim] at positions[seq] (float64 as the reference; Math.pow, cos and
 * sin are the host's). adjacent: pairs (2j, 2j + 1); otherwise neox pairs (j, j + headDim/2).
 */
export function rope(x: usize, seq: i32, heads: i32, headDim: i32, positions: usize, theta: f64, adjacent: bool, out: usize): void {
  const half = headDim >> 1;
  const stride = adjacent ? 2 : 1;
  const partner = adjacent ? 1 : half;
  for (let s = 0; s < seq; s++) {
    const pos = <f64>load<i32>(positions + (<usize>s << 2));
    for (let j = 0; j < half; j++) {
      const angle = pos * Math.pow(theta, <f64>(-2 * j) / <f64>headDim);
      const cs = Math.cos(angle);
      const sn = Math.sin(angle);
      const first = j * stride;
      const second = first + partner;
      for (let h = 0; h < heads; h++) {
        const base = <usize>(s * heads + h) * <usize>headDim;
        const pa = (base + <usize>first) << 2;
        const pb = (base + <usize>second) << 2;
        const xa = <f64>load<f32>(x + pa);
        const xb = <f64>load<f32>(x + pb);
        store<f32>(out + pa, <f32>(xa * cs - xb * sn));
        store<f32>(out + pb, <f32>(xb * cs + xa * sn));
      }
    }
  }
}

/** Row-wise softmax of x[rows, cols], the reference's float64 algorithm (−∞ rows give zeros, NaN rows NaN). */
export function softmax(x: usize, rows: i32, cols: i32, out: usize): void {
  for (let r = 0; r < rows; r++) {
    const xr = x + ((<usize>r * <usize>cols) << 2);
    const or = out + ((<usize>r * <usize>cols) << 2);
    let mx: f64 = -Infinity;
    let sawNaN = false;
    for (let c = 0; c < cols; c++) {
      const v = <f64>load<f32>(xr + (<usize>c << 2));
      if (v > mx) {
        mx = v;
      }
      if (v != v) {
        sawNaN = true;
      }
    }
    if (mx == -Infinity) {
      const fill: f32 = sawNaN ? NaN : 0;
      for (let c = 0; c < cols; c++) {
        store<f32>(or + (<usize>c << 2), fill);
      }
      continue;
    }
    let sum: f64 = 0;
    for (let c = 0; c < cols; c++) {
      sum += Math.exp(<f64>load<f32>(xr + (<usize>c << 2)) - mx);
    }
    for (let c = 0; c < cols; c++) {
      store<f32>(or + (<usize>c << 2), <f32>(Math.exp(<f64>load<f32>(xr + (<usize>c << 2)) - mx) / sum));
    }
  }
}

/** Σ_d a[d] · b[d] in f32 with 8 partial sums. */
function dotF32(a: usize, b: usize, n: i32): f32 {
  let s0 = f32x4.splat(0);
  let s1 = f32x4.splat(0);
  let d = 0;
  for (; d + 8 <= n; d += 8) {
    const p = <usize>d << 2;
    s0 = f32x4.add(s0, f32x4.mul(v128.load(a + p), v128.load(b + p)));
    s1 = f32x4.add(s1, f32x4.mul(v128.load(a + p, 16), v128.load(b + p, 16)));
  }
  const s = f32x4.add(s0, s1);
  let r = f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1) + (f32x4.extract_lane(s, 2) + f32x4.extract_lane(s, 3));
  for (; d < n; d++) {
    r += load<f32>(a + (<usize>d << 2)) * load<f32>(b + (<usize>d << 2));
  }
  return r;
}

/** acc[d] += p · v[d] for d < n. */
function axpy(acc: usize, p: f32, v: usize, n: i32): void {
  const pv = f32x4.splat(p);
  let d = 0;
  for (; d + 4 <= n; d += 4) {
    const o = <usize>d << 2;
    v128.store(acc + o, f32x4.add(v128.load(acc + o), f32x4.mul(pv, v128.load(v + o))));
  }
  for (; d < n; d++) {
    const o = <usize>d << 2;
    store<f32>(acc + o, load<f32>(acc + o) + p * load<f32>(v + o));
  }
}

/**
 * Causal attention with grouped KV heads. q, out [seqQ, nHead, headDim]; k, v [≥ pos0 + seqQ, nKv, headDim].
 * Scores are f32 dot products scaled in float64; the softmax is float64; the weighted sum of v is f32 and
 * divided by the float64 total. `scratch` holds (pos0 + seqQ) f64 scores plus headDim f32.
 *
 * Only the (query row, head) pairs r = i · nHead + h with r = first, first + step, … are computed: threads
 * take interleaved pairs, which balances the causal rows (later rows see more keys). Each pair's result does
 * not depend on the split.
 */
export function attention(
  q: usize,
  k: usize,
  v: usize,
  seqQ: i32,
  nHead: i32,
  nKv: i32,
  headDim: i32,
  pos0: i32,
  scale: f64,
  out: usize,
  scratch: usize,
  first: i32,
  step: i32,
): void {
  const group = nHead / nKv;
  const kvRow = <usize>(nKv * headDim) << 2;
  const acc = scratch + (<usize>(pos0 + seqQ) << 3);
  const pairs = seqQ * nHead;
  const stride = max(step, 1);
  for (let r = first; r < pairs; r += stride) {
    const i = r / nHead;
    const h = r - i * nHead;
    const last = pos0 + i;
    const qh = q + ((<usize>r * <usize>headDim) << 2);
    const kvHead = <usize>((h / group) * headDim) << 2;
    let mx: f64 = -Infinity;
    for (let t = 0; t <= last; t++) {
      const score = <f64>dotF32(qh, k + <usize>t * kvRow + kvHead, headDim) * scale;
      store<f64>(scratch + (<usize>t << 3), score);
      if (score > mx) {
        mx = score;
      }
    }
    memory.fill(acc, 0, <usize>headDim << 2);
    let total: f64 = 0;
    for (let t = 0; t <= last; t++) {
      const p = Math.exp(load<f64>(scratch + (<usize>t << 3)) - mx);
      total += p;
      axpy(acc, <f32>p, v + <usize>t * kvRow + kvHead, headDim);
    }
    for (let d = 0; d < headDim; d++) {
      store<f32>(qh - q + out + (<usize>d << 2), <f32>(<f64>load<f32>(acc + (<usize>d << 2)) / total));
    }
  }
}

/** sqrt(2/π) as the reference computes it. */
const SQRT_2_OVER_PI: f64 = sqrt<f64>(2.0 / 3.141592653589793);

/**
 * The reference's float64 scalar definitions of the transcendental ops (`unary` routes only these here; any
 * other code traps, never a default result).
 */
function unaryScalar(op: i32, x: f64): f64 {
  switch (op) {
    case EXP:
      return Math.exp(x);
    case SILU:
      return x / (1 + Math.exp(-x));
    case GELU:
      return 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));
    case SIGMOID:
      return 1 / (1 + Math.exp(-x));
    case TANH:
      return Math.tanh(x);
    default:
      unreachable();
      return 0;
  }
}

/** neg, abs, relu and relu2: exact f32 operations, four lanes at a time. */
function unaryExact(op: i32, x: usize, size: i32, out: usize): void {
  const zero = f32x4.splat(0);
  let c = 0;
  for (; c + 4 <= size; c += 4) {
    const p = <usize>c << 2;
    const v = v128.load(x + p);
    let r: v128;
    if (op == NEG) {
      r = f32x4.neg(v);
    } else if (op == ABS) {
      r = f32x4.abs(v);
    } else if (op == RELU) {
      r = f32x4.max(v, zero);
    } else {
      // RELU2: `unary` routes only these four ops here
      const m = f32x4.max(v, zero);
      r = f32x4.mul(m, m);
    }
    v128.store(out + p, r);
  }
  for (; c < size; c++) {
    const p = <usize>c << 2;
    const v = load<f32>(x + p);
    let r: f32;
    if (op == NEG) {
      r = -v;
    } else if (op == ABS) {
      r = abs<f32>(v);
    } else if (op == RELU) {
      r = max<f32>(v, 0);
    } else {
      // RELU2
      const m = max<f32>(v, 0);
      r = m * m;
    }
    store<f32>(out + p, r);
  }
}

/** The float64 ops of {@link unaryScalar}, one element at a time. */
function unaryFloat(op: i32, x: usize, size: i32, out: usize): void {
  for (let c = 0; c < size; c++) {
    const p = <usize>c << 2;
    store<f32>(out + p, <f32>unaryScalar(op, <f64>load<f32>(x + p)));
  }
}

/**
 * out[i] = op(x[i]), i < size. neg, abs, relu and relu2 are exact f32 operations; the rest float64.
 * Returns 0, UNKNOWN_OP for a code outside the op table, or UNSUPPORTED_OP for a table op without a case
 * below (nothing is written then).
 *
 * The switch is the list of unary ops this module implements: the glue calls it with size 0 for every code
 * of the table and declares the ones that return 0 as the backend's capabilities, so the dispatcher routes
 * the others to the next backend. Implementing an op here = a case below and its computation.
 */
export function unary(op: i32, x: usize, size: i32, out: usize): i32 {
  if (<u32>op >= <u32>UNARY_COUNT) {
    return UNKNOWN_OP;
  }
  switch (op) {
    case NEG:
    case ABS:
    case RELU:
    case RELU2:
      unaryExact(op, x, size, out);
      return 0;
    case EXP:
    case SILU:
    case GELU:
    case SIGMOID:
    case TANH:
      unaryFloat(op, x, size, out);
      return 0;
    default:
      return UNSUPPORTED_OP;
  }
}

// @ts-ignore: decorator
@inline function apply4(op: i32, a: v128, b: v128): v128 {
  switch (op) {
    case ADD:
      return f32x4.add(a, b);
    case SUB:
      return f32x4.sub(a, b);
    case MUL:
      return f32x4.mul(a, b);
    case DIV:
      return f32x4.div(a, b);
    case MAX:
      return f32x4.max(a, b);
    case MIN:
      return f32x4.min(a, b);
    default:
      unreachable();
      return a;
  }
}

// @ts-ignore: decorator
@inline function apply1(op: i32, a: f32, b: f32): f32 {
  switch (op) {
    case ADD:
      return a + b;
    case SUB:
      return a - b;
    case MUL:
      return a * b;
    case DIV:
      return a / b;
    case MAX:
      return max<f32>(a, b);
    case MIN:
      return min<f32>(a, b);
    default:
      unreachable();
      return a;
  }
}

/** One row of n elements: a and b advance by aStep / bStep bytes (4 contiguous, 0 broadcast, else any). */
function binaryRow(op: i32, a: usize, aStep: usize, b: usize, bStep: usize, out: usize, n: i32): void {
  let c = 0;
  if (aStep == 4 && bStep == 4) {
    for (; c + 4 <= n; c += 4) {
      const p = <usize>c << 2;
      v128.store(out + p, apply4(op, v128.load(a + p), v128.load(b + p)));
    }
  } else if (aStep == 4 && bStep == 0) {
    const bv = v128.load32_splat(b);
    for (; c + 4 <= n; c += 4) {
      const p = <usize>c << 2;
      v128.store(out + p, apply4(op, v128.load(a + p), bv));
    }
  } else if (aStep == 0 && bStep == 4) {
    const av = v128.load32_splat(a);
    for (; c + 4 <= n; c += 4) {
      const p = <usize>c << 2;
      v128.store(out + p, apply4(op, av, v128.load(b + p)));
    }
  }
  for (; c < n; c++) {
    store<f32>(out + (<usize>c << 2), apply1(op, load<f32>(a + <usize>c * aStep), load<f32>(b + <usize>c * bStep)));
  }
}

/**
 * out[shape] = a ∘ b over a rank-4 shape (the glue pads lower ranks with leading 1s), each operand read with
 * its own element strides (non-negative; 0 broadcasts). Exact f32 operations. Returns 0, UNKNOWN_OP for
 * a code outside the op table, or UNSUPPORTED_OP for a table op without a case here.
 */
export function binary(
  op: i32, a: usize, b: usize, out: usize,
  n0: i32, n1: i32, n2: i32, n3: i32,
  a0: i32, a1: i32, a2: i32, a3: i32,
  b0: i32, b1: i32, b2: i32, b3: i32,
): i32 {
  if (<u32>op >= <u32>BINARY_COUNT) {
    return UNKNOWN_OP;
  }
  // The binary ops this module implements (asked with an empty shape by the glue, like `unary`); each has
  // its case in apply4 and apply1.
  switch (op) {
    case ADD:
    case SUB:
    case MUL:
    case DIV:
    case MAX:
    case MIN:
      break;
    default:
      return UNSUPPORTED_OP;
  }
  let o = out;
  const rowBytes = <usize>n3 << 2;
  for (let i0 = 0; i0 < n0; i0++) {
    for (let i1 = 0; i1 < n1; i1++) {
      for (let i2 = 0; i2 < n2; i2++) {
        const ap = a + ((<usize>i0 * <usize>a0 + <usize>i1 * <usize>a1 + <usize>i2 * <usize>a2) << 2);
        const bp = b + ((<usize>i0 * <usize>b0 + <usize>i1 * <usize>b1 + <usize>i2 * <usize>b2) << 2);
        binaryRow(op, ap, <usize>a3 << 2, bp, <usize>b3 << 2, o, n3);
        o += rowBytes;
      }
    }
  }
  return 0;
}

/** out[i] = x[i] · factor (exact f32 products). */
export function scale(x: usize, factor: f32, size: i32, out: usize): void {
  const fv = f32x4.splat(factor);
  let c = 0;
  for (; c + 4 <= size; c += 4) {
    const p = <usize>c << 2;
    v128.store(out + p, f32x4.mul(v128.load(x + p), fv));
  }
  for (; c < size; c++) {
    const p = <usize>c << 2;
    store<f32>(out + p, load<f32>(x + p) * factor);
  }
}
