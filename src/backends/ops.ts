/**
 * The op table: the one source that names every operation a backend runs, with its numeric code, its
 * operands (order, role, allowed storage dtypes), its attributes and, for composite ops, the
 * decomposition into other kernels that conformance checks it against. Anchored on ggml's `ggml_op` /
 * `ggml_unary_op` enums and tinygrad's op set: one enum of kernels (fused steps continue it), one of
 * element-wise unary ops and one of binary ops.
 *
 * Everything else is derived from it: the `UnaryOp` / `BinaryOp` unions (re-exported by backend.ts), the
 * op codes the native and wasm glue pass, and — through scripts/gen-ops.ts — the C++ header
 * (native/cpu/ops.generated.h), the AssemblyScript constants (native/wasm/assembly/ops.generated.ts) and
 * the WGSL constants (src/backends/webgpu/ops.generated.wgsl.ts). test/architecture/ops-generated.test.ts
 * fails when a generated file is stale; built artefacts (the native addon, the wasm module) report the
 * {@link OP_TABLE_HASH} they were built with and are refused when it differs. An op code a backend does not
 * know is an error there (a typed error in TS), never a default.
 *
 * Adding an op: see "Adding a primitive op" in docs/architecture.md.
 */
import { UsageError } from "../core/errors.js";
import type { BitnetBlockParams, RopeMode, StorageDType, TensorRef } from "./backend.js";
import { decomposeAttention, decomposeBitnetBlock, decomposeBitnetBlockBatch, type OpRunner } from "./decompositions.js";
import { DENSE_FORMATS, dtypeKind, INTEGER_HEAD_FORMATS, KV_CACHE_DTYPES, STORAGE_DTYPES } from "../quant/dtypes.js";

// ---- the shape of an entry ----

/** How a kernel uses a tensor operand. */
export type TensorRole = "in" | "out" | "inout";

/**
 * The TypeScript type of each kind of non-tensor argument: the one place an attribute kind is defined (the
 * kernel signatures below are derived through it).
 */
export interface AttrTypes {
  /** A float parameter (eps, theta, scale factor). */
  f64: number;
  /** A non-negative integer (row, offset, axis, position). */
  index: number;
  /** A key of UNARY_OPS. */
  "unary-op": UnaryOp;
  /** A key of BINARY_OPS. */
  "binary-op": BinaryOp;
  "rope-mode": RopeMode;
  /** Element strides, one per dimension of the output. */
  strides: readonly number[];
  "bitnet-params": BitnetBlockParams;
}

/** Non-tensor arguments. */
export type AttrType = keyof AttrTypes;

export type OpParam =
  | {
      readonly kind: "tensor";
      readonly name: string;
      readonly role: TensorRole;
      readonly dtypes: readonly StorageDType[];
      readonly optional?: true;
    }
  /** A list of tensors (concat's parts, a batch's caches). */
  | { readonly kind: "tensors"; readonly name: string; readonly role: TensorRole; readonly dtypes: readonly StorageDType[] }
  /** A record of named tensors (a block's weights). */
  | { readonly kind: "record"; readonly name: string; readonly fields: Readonly<Record<string, readonly StorageDType[]>> }
  | { readonly kind: "attr"; readonly name: string; readonly type: AttrType };

/** A composite op's decomposition: what it must compute, written with other kernels of the contract. */
export interface Decomposition<F extends (...args: never[]) => void> {
  /** The kernels `run` calls (test/architecture checks that it calls exactly these). */
  readonly uses: readonly KernelName[];
  /**
   * How a backend's fused kernel must agree with this decomposition run on the same backend's kernels:
   * "exact" (bit for bit: the fused step runs the same kernels in the same order) or the largest
   * normalised MSE (a kernel with its own float64 semantics, checked against a float32 composition).
   */
  readonly compare: "exact" | number;
  readonly run: (runner: OpRunner, ...args: Parameters<F>) => void;
}

export interface OpSpec<F extends (...args: never[]) => void> {
  /** The op's number in the kernel enum (`ops::Kernel` in C++, `KERNEL_*` in AssemblyScript and WGSL). */
  readonly code: number;
  readonly summary: string;
  /** Arguments in call order, outputs included. */
  readonly params: readonly OpParam[];
  /** Operands that must share one dtype (copies). */
  readonly sameDtype?: readonly string[];
  /** Present for composite ops: the decomposition conformance checks the op against. */
  readonly decomposition?: Decomposition<F>;
}

/** An element-wise sub-op of `unary` / `binary`: f32 in, f32 out, one element at a time. */
export interface ElementwiseSpec {
  readonly code: number;
  readonly summary: string;
  /**
   * "exact": the result is a correctly rounded f32 operation, so every backend matches the reference bit
   * for bit; "float": float64 transcendental functions, other backends match within a stated tolerance.
   */
  readonly numerics: "exact" | "float";
}

// ---- kernel signatures, derived from the entries ----

/** The TypeScript type of one parameter of an entry. */
type ArgOf<P> = P extends { readonly kind: "tensor"; readonly optional: true }
  ? TensorRef | undefined
  : P extends { readonly kind: "tensor" }
    ? TensorRef
    : P extends { readonly kind: "tensors" }
      ? readonly TensorRef[]
      : P extends { readonly kind: "record"; readonly fields: infer F }
        ? { readonly [K in keyof F]: TensorRef }
        : P extends { readonly kind: "attr"; readonly type: infer T extends AttrType }
          ? AttrTypes[T]
          : never;

/** The argument tuple of an entry's `params`, in call order. */
export type ArgsOf<Ps extends readonly unknown[]> = { -readonly [I in keyof Ps]: ArgOf<Ps[I]> };

/** The function type of an entry: its parameters in call order; every kernel writes its outputs and returns nothing. */
export type OpFn<S> = S extends { readonly params: infer Ps extends readonly unknown[] } ? (...args: ArgsOf<Ps>) => void : never;

// ---- operand helpers (keep the table readable; each keeps its literal kind and role for the derived types) ----

// The dtype lists derive from the dtype table (src/quant/dtypes.ts).
const F32: readonly StorageDType[] = ["f32"];
const DENSE: readonly StorageDType[] = DENSE_FORMATS;
/** Dtypes whose elements are addressable one by one (layout copies): the float and int kinds (f32, i8, i32). */
const WHOLE: readonly StorageDType[] = STORAGE_DTYPES.filter((d) => dtypeKind(d) === "float" || dtypeKind(d) === "int");
const ANY: readonly StorageDType[] = STORAGE_DTYPES;
const INTEGER_HEAD: readonly StorageDType[] = INTEGER_HEAD_FORMATS;
/** KV caches (attention's k and v, a block's caches): f32, f16, q8_0. A backend without f16 / q8_0 readers declares f32. */
const KV: readonly StorageDType[] = KV_CACHE_DTYPES;

const input = (name: string, dtypes: readonly StorageDType[]) => ({ kind: "tensor", name, role: "in", dtypes }) as const;
const output = (name: string, dtypes: readonly StorageDType[]) => ({ kind: "tensor", name, role: "out", dtypes }) as const;
const inout = (name: string, dtypes: readonly StorageDType[]) => ({ kind: "tensor", name, role: "inout", dtypes }) as const;
const attr = <T extends AttrType>(name: string, type: T) => ({ kind: "attr", name, type }) as const;

/** The tensors of one BitNet block ({@link BitnetBlockWeights}): f32 norms, ternary projections. */
const BLOCK_WEIGHTS = {
  kind: "record",
  name: "weights",
  fields: {
    /** [E] */
    attnNorm: F32,
    /** [H·D] */
    attnSubNorm: F32,
    /** [E] */
    ffnNorm: F32,
    /** [F] */
    ffnSubNorm: F32,
    /** [H·D, E] */
    wq: ["ternary"],
    /** [KV·D, E] */
    wk: ["ternary"],
    /** [KV·D, E] */
    wv: ["ternary"],
    /** [E, H·D] */
    wo: ["ternary"],
    /** [F, E] */
    wGate: ["ternary"],
    /** [F, E] */
    wUp: ["ternary"],
    /** [E, F] */
    wDown: ["ternary"],
  },
} as const;

/** The tensors of one BitNet block for the fused steps (derived from the op table's record). */
export type BitnetBlockWeights = ArgOf<typeof BLOCK_WEIGHTS>;

/** The names of a block's tensors, in the record's order (the one list of them). */
export const BLOCK_TENSOR_NAMES = Object.keys(BLOCK_WEIGHTS.fields) as readonly (keyof BitnetBlockWeights)[];

/** What every entry of a table must look like (the decomposition is checked against the derived signature below). */
type Entry = Omit<OpSpec<never>, "decomposition"> & { readonly decomposition?: unknown };

// ---- the table ----

/**
 * Every kernel of the {@link Kernels} contract, which is derived from it: an entry's `params` are the
 * kernel's signature (tensor operands are TensorRef, attributes the type {@link AttrTypes} gives their kind).
 * Codes 0…17; the fused steps continue at 18. Shapes in the comments name the erased dims; the typed layer
 * guarantees them. Every kernel writes into its outputs, which the caller allocated with the right size.
 * Float semantics are those of the JS reference kernels (src/backends/js/kernels).
 */
export const KERNEL_OPS = {
  /** out[M,N] = x[M,K] · w[N,K]ᵀ, f32. */
  matmulF32: {
    code: 0,
    summary: "out[M,N] = x[M,K] · w[N,K]ᵀ in f32",
    params: [input("x", F32), input("w", F32), output("out", F32)],
  },
  /** out[M,N] = x[M,K] f32 · decode(w)[N,K]ᵀ for w in any DenseDType (the output head). */
  matmulDense: {
    code: 1,
    summary: "out[M,N] = x[M,K] · decode(w)[N,K]ᵀ for a dense (block-format) weight",
    params: [input("x", F32), input("w", DENSE), output("out", F32)],
  },
  /**
   * The integer output head: out[M,N] f32 = x[M,K] f32 · w[N,K]ᵀ with x quantized to int8 per weight block:
   * q8_0 weights per 32-element block (llama.cpp's Q8_0 × Q8_0 dot product; src/backends/js/kernels/dense.ts),
   * q4_k / q5_k / q6_k per 256-element super-block with 16-element sums (their × Q8_K products;
   * src/backends/js/kernels/kquant-head.ts). Integer block dots, then f32 scaling and accumulation in block
   * order: exact across backends.
   */
  matmulQ8I8: {
    code: 2,
    summary: "the integer head: x quantized per weight block, integer block dots, f32 scaling in block order",
    params: [input("x", F32), input("w", INTEGER_HEAD), output("out", F32)],
  },
  /** out[S,E] f32 = rows ids[S] (i32) of table[V,E] (any DenseDType). Ids are checked against V. */
  embedding: {
    code: 3,
    summary: "out[S,E] = rows ids[S] of table[V,E]",
    params: [input("ids", ["i32"]), input("table", DENSE), output("out", F32)],
  },
  /** Copies contiguous src [n, …] into rows [row, row + n) of dst [R, …] (same dtype and row shape). */
  writeRows: {
    code: 4,
    summary: "copies src [n, …] into rows [row, row + n) of dst",
    params: [input("src", ANY), inout("dst", ANY), attr("row", "index")],
    sameDtype: ["src", "dst"],
  },
  /**
   * out[M,N] f32 = (x_q[M,K] i8 · trits(w)[N,K]ᵀ) / xScales[M] · w.scale; exact int32 accumulation. w's codes
   * are 0..2 within K, as every ternary tensor's (its constructors refuse code 3); a kernel may read a code 3
   * as any value (the JS reference reads 0), and the padding codes past K as nothing.
   */
  matmulTernaryI8: {
    code: 5,
    summary: "out[M,N] = (x_q · trits(w)ᵀ) / xScales · γ, exact int32 accumulation",
    params: [input("x", ["i8"]), input("xScales", F32), input("w", ["ternary"]), output("out", F32)],
  },
  /** out[M,N] f32 = (x_q[M,K] i8 · signs(w)[N,K]ᵀ) / xScales[M] · w.scale. */
  matmulBinaryI8: {
    code: 6,
    summary: "out[M,N] = (x_q · signs(w)ᵀ) / xScales · β",
    params: [input("x", ["i8"]), input("xScales", F32), input("w", ["binary"]), output("out", F32)],
  },
  /** out[M,N] i32 = signs(x)[M,K] · signs(w)[N,K]ᵀ by XNOR-popcount (scales not applied). */
  matmulBinaryBinary: {
    code: 7,
    summary: "out[M,N] i32 = signs(x) · signs(w)ᵀ by XNOR-popcount",
    params: [input("x", ["binary"]), input("w", ["binary"]), output("out", ["i32"])],
  },
  /** Per-row absmax int8 quantization of x[M,K] into q[M,K] i8 and scales[M] f32 (s = 127/absmax). */
  quantizeActivations: {
    code: 8,
    summary: "per-row absmax int8 quantization: q[M,K] and scales[M]",
    params: [input("x", F32), output("q", ["i8"]), output("scales", F32)],
  },
  /** RMSNorm over the last dim of x[M,K], times weight[K] when given. */
  rmsNorm: {
    code: 9,
    summary: "RMSNorm over the last dim, times weight when given",
    params: [input("x", F32), { ...input("weight", F32), optional: true }, attr("eps", "f64"), output("out", F32)],
  },
  /** Rotary embedding of x[S,H,D] at positions[S] (i32). */
  rope: {
    code: 10,
    summary: "rotary embedding of x[S,H,D] at positions[S]",
    params: [input("x", F32), input("positions", ["i32"]), attr("theta", "f64"), attr("mode", "rope-mode"), output("out", F32)],
  },
  /** Softmax over the last dim. */
  softmax: {
    code: 11,
    summary: "softmax over the last dim",
    params: [input("x", F32), output("out", F32)],
  },
  /**
   * Causal attention: q[S,H,D], k and v [C,KV,D]; query row i sits at position pos0 + i and sees
   * keys 0..pos0+i; head h reads KV head floor(h / (H/KV)). out[S,H,D]. k and v share one KV cache dtype
   * (f32, f16, q8_0 with D a multiple of 32), read as their decoded values.
   */
  attention: {
    code: 12,
    summary: "causal attention with grouped KV heads: q[S,H,D], k and v [C,KV,D] → out[S,H,D]",
    params: [input("q", F32), input("k", KV), input("v", KV), attr("pos0", "index"), attr("scale", "f64"), output("out", F32)],
    sameDtype: ["k", "v"],
    decomposition: {
      uses: ["copyStrided", "matmulF32", "scale", "softmax", "writeRows", "embedding"],
      compare: 1e-9,
      run: decomposeAttention,
    },
  },
  /** out = op(x) element-wise (an op of UNARY_OPS). */
  unary: {
    code: 13,
    summary: "out = op(x) element-wise (UNARY_OPS)",
    params: [attr("op", "unary-op"), input("x", F32), output("out", F32)],
  },
  /** out[shape] = a ∘ b where each operand is read with its own strides (0 broadcasts). */
  binary: {
    code: 14,
    summary: "out = a ∘ b element-wise (BINARY_OPS), each operand read with its own strides (0 broadcasts)",
    params: [
      attr("op", "binary-op"),
      input("a", F32),
      attr("aStrides", "strides"),
      input("b", F32),
      attr("bStrides", "strides"),
      output("out", F32),
    ],
  },
  /** Multiply every element by a scalar. */
  scale: {
    code: 15,
    summary: "out = x · factor",
    params: [input("x", F32), attr("factor", "f64"), output("out", F32)],
  },
  /**
   * Strided gather of whole elements (f32, i8, i32) into contiguous `out`: for every index i over
   * out.shape, out[i] = src[srcOffset + Σ i·srcStrides]. Offsets and strides count elements.
   */
  copyStrided: {
    code: 16,
    summary: "strided gather of whole elements into contiguous out",
    params: [input("src", WHOLE), attr("srcOffset", "index"), attr("srcStrides", "strides"), output("out", WHOLE)],
    sameDtype: ["src", "out"],
  },
  /** Concatenates contiguous tensors of one dtype along `axis` into `out`. */
  concat: {
    code: 17,
    summary: "concatenates contiguous tensors along an axis",
    params: [{ kind: "tensors", name: "parts", role: "in", dtypes: WHOLE }, attr("axis", "index"), output("out", WHOLE)],
    sameDtype: ["parts", "out"],
  },
} as const satisfies Readonly<Record<string, Entry>>;

/**
 * The fused multi-kernel steps ({@link FusedKernels}, derived from it); their codes continue the kernel enum.
 * A backend may run them in one call; they are optional and not part of the fallback chain: a caller uses one
 * only when the dispatcher's head member offers it, and otherwise composes the plain kernels. A fused step
 * must compute what its decomposition computes on the same backend (the conformance tests compare them).
 */
export const FUSED_OPS = {
  /**
   * One BitNet block (BITNET.md §1.2) over h[S,E] at positions[S] (i32): RMSNorm, one int8
   * quantization shared by q/k/v, NeoX RoPE, K/V written to rows pos0 … pos0+S−1 of kCache/vCache
   * [C,KV,D], causal attention over rows 0 … pos0+S−1, sub-norm, output projection, residual, then the
   * gated FFN (ReLU² or SiLU) with its sub-norm and residual, into out[S,E] (which must not alias h).
   * Throws ValueError "non-finite" when an activation to quantize is not finite.
   */
  bitnetBlock: {
    code: 18,
    summary: "one BitNet block over h[S,E] (norms, q/k/v, RoPE, KV write, attention, FFN, residuals)",
    params: [
      input("h", F32),
      input("positions", ["i32"]),
      inout("kCache", KV),
      inout("vCache", KV),
      attr("pos0", "index"),
      BLOCK_WEIGHTS,
      attr("params", "bitnet-params"),
      output("out", F32),
    ],
    decomposition: {
      uses: ["rmsNorm", "quantizeActivations", "matmulTernaryI8", "rope", "writeRows", "attention", "binary", "unary"],
      compare: "exact",
      run: decomposeBitnetBlock,
    },
  },
  /**
   * The same block for a batch of independent sequences, one token each: row b of h[B,E] is the next
   * token of the sequence whose caches are kCaches[b] / vCaches[b] ([C_b,KV,D]), at position
   * positions[b] (= the rows it already holds); K/V go to that row of its caches and row b attends over
   * rows 0 … positions[b] of them. Computes what the composed kernels compute for the batch.
   */
  bitnetBlockBatch: {
    code: 19,
    summary: "the BitNet block for a batch of sequences, one token each, each with its own KV cache",
    params: [
      input("h", F32),
      input("positions", ["i32"]),
      { kind: "tensors", name: "kCaches", role: "inout", dtypes: KV },
      { kind: "tensors", name: "vCaches", role: "inout", dtypes: KV },
      BLOCK_WEIGHTS,
      attr("params", "bitnet-params"),
      output("out", F32),
    ],
    decomposition: {
      uses: ["rmsNorm", "quantizeActivations", "matmulTernaryI8", "rope", "copyStrided", "writeRows", "attention", "binary", "unary"],
      compare: "exact",
      run: decomposeBitnetBlockBatch,
    },
  },
} as const satisfies Readonly<Record<string, Entry>>;

/**
 * The kernels a backend runs: one method per entry of {@link KERNEL_OPS}, its parameters the entry's `params`
 * in order. Derived, so an entry is the only place a kernel's signature is written (parameter names show as
 * args_0, args_1… in editor hovers: TypeScript cannot label a derived tuple; the entry's JSDoc and `params`
 * name them).
 */
export type Kernels = { [K in keyof typeof KERNEL_OPS]: OpFn<(typeof KERNEL_OPS)[K]> };

/** The multi-kernel steps a backend may run in one call: one per entry of {@link FUSED_OPS}. */
export type FusedKernels = { [K in keyof typeof FUSED_OPS]: OpFn<(typeof FUSED_OPS)[K]> };

/** The name of one kernel of {@link Kernels}. */
export type KernelName = keyof Kernels;

/** Every entry is well formed and a decomposition takes its op's derived arguments (checked by tsc, nothing runs). */
type Specs<T> = { readonly [K in keyof T]-?: OpSpec<Extract<NonNullable<T[K]>, (...args: never[]) => void>> };
const _kernelSpecs: Specs<Kernels> = KERNEL_OPS;
const _fusedSpecs: Specs<FusedKernels> = FUSED_OPS;

/** The element-wise ops of the `unary` kernel (ggml's `ggml_unary_op`). */
export const UNARY_OPS = {
  neg: { code: 0, summary: "−x", numerics: "exact" },
  abs: { code: 1, summary: "|x|", numerics: "exact" },
  exp: { code: 2, summary: "eˣ", numerics: "float" },
  relu: { code: 3, summary: "max(x, 0); relu(−0) = +0", numerics: "exact" },
  relu2: { code: 4, summary: "max(x, 0)²", numerics: "exact" },
  silu: { code: 5, summary: "x · sigmoid(x)", numerics: "float" },
  gelu: { code: 6, summary: "tanh approximation (PyTorch approximate='tanh')", numerics: "float" },
  sigmoid: { code: 7, summary: "1 / (1 + e⁻ˣ)", numerics: "float" },
  tanh: { code: 8, summary: "tanh(x)", numerics: "float" },
} as const satisfies Record<string, ElementwiseSpec>;

/** The element-wise ops of the `binary` kernel. max/min propagate NaN and order −0 below +0. */
export const BINARY_OPS = {
  add: { code: 0, summary: "a + b", numerics: "exact" },
  sub: { code: 1, summary: "a − b", numerics: "exact" },
  mul: { code: 2, summary: "a · b", numerics: "exact" },
  div: { code: 3, summary: "a / b", numerics: "exact" },
  max: { code: 4, summary: "max(a, b)", numerics: "exact" },
  min: { code: 5, summary: "min(a, b)", numerics: "exact" },
} as const satisfies Record<string, ElementwiseSpec>;

// ---- derived names and codes ----

export type UnaryOp = keyof typeof UNARY_OPS;
export type BinaryOp = keyof typeof BINARY_OPS;
export type FusedName = keyof typeof FUSED_OPS;

/** A code space of the table, in the order the generated files list them. */
export interface CodeSpace {
  /** Prefix of the generated constants (KERNEL_, FUSED_, UNARY_, BINARY_). */
  readonly prefix: string;
  readonly entries: readonly (readonly [name: string, code: number])[];
}

const space = (prefix: string, table: Readonly<Record<string, { readonly code: number }>>): CodeSpace => ({
  prefix,
  entries: Object.entries(table)
    .map(([name, spec]) => [name, spec.code] as const)
    .sort((a, b) => a[1] - b[1]),
});

/**
 * The code spaces. Kernels and fused steps share one enum (like ggml's); unary and binary ops have their
 * own. Within a space, codes are 0…n−1 without gaps (checked below), so "code < count" is the whole
 * validity check a backend needs.
 */
export const CODE_SPACES: readonly CodeSpace[] = [
  space("KERNEL", { ...KERNEL_OPS, ...FUSED_OPS }),
  space("UNARY", UNARY_OPS),
  space("BINARY", BINARY_OPS),
];

for (const { prefix, entries } of CODE_SPACES) {
  entries.forEach(([name, code], i) => {
    if (code !== i) {
      throw new Error(`[ops] ${prefix} codes must be 0…${entries.length - 1} without gaps or repeats; ${name} has ${code}`);
    }
  });
}

/**
 * An op's name as a generated constant's suffix (matmulQ8I8 → MATMUL_Q8_I8, relu2 → RELU2): the AssemblyScript
 * and WGSL constants are `${prefix}_${screaming(name)}`.
 */
export function screaming(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase();
}

/** FNV-1a (32 bit) of a string. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  }
  return h;
}

/**
 * A fingerprint of every name and code in the table. The generated files carry it; the native addon and the
 * wasm module report the one they were built from, and a backend built from another table is refused.
 */
export const OP_TABLE_HASH: number = fnv1a(CODE_SPACES.map((s) => `${s.prefix}:${s.entries.map(([n, c]) => `${n}=${c}`).join(",")}`).join(";"));

/**
 * The code of an element-wise op. One property read on the hot path: a name the table lacks reads
 * undefined (also an inherited name like "constructor", whose value has no numeric `code`).
 */
function codeOf(table: Readonly<Record<string, ElementwiseSpec>>, kind: string, op: string): number {
  const code: unknown = (table[op] as Partial<ElementwiseSpec> | undefined)?.code;
  if (typeof code !== "number") {
    throw new UsageError("unsupported", `[${kind}] unknown op ${JSON.stringify(op)}`);
  }
  return code;
}

/** The code of a unary op; any other string is a UsageError "unsupported" (never a default op). */
export function unaryCode(op: UnaryOp): number {
  return codeOf(UNARY_OPS, "unary", op);
}

/** The code of a binary op; any other string is a UsageError "unsupported" (never a default op). */
export function binaryCode(op: BinaryOp): number {
  return codeOf(BINARY_OPS, "binary", op);
}

/** Number of input tensors of a kernel or fused step (records count their fields). */
export function arity(name: KernelName | FusedName): number {
  const spec: { readonly params: readonly OpParam[] } = Object.hasOwn(KERNEL_OPS, name)
    ? KERNEL_OPS[name as KernelName]
    : FUSED_OPS[name as FusedName];
  return spec.params.reduce(
    (n, p) => n + (p.kind === "tensor" && p.role !== "out" ? 1 : p.kind === "record" ? Object.keys(p.fields).length : p.kind === "tensors" ? 1 : 0),
    0,
  );
}
