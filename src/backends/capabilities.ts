/**
 * Capabilities as data (ggml's `supports_op`, written as a table): what a backend's kernel accepts, per op of
 * the op table (ops.ts), as allowed storage dtypes per operand and limits. The dispatcher (dispatch.ts) checks
 * a call against it before choosing a backend; `supports(kernel, refs)` on a backend is left for what data
 * cannot say.
 *
 * Operand names and positions come from the op table, so a capability cannot name an operand an op does
 * not have, nor allow a dtype the table does not ({@link checkCapabilities}). For the element-wise kernels a
 * capability also lists the sub-ops (UNARY_OPS / BINARY_OPS names) the backend implements, derived from its
 * own code ({@link subOpsWhere}, {@link subOpsWithCase}); the dispatcher routes other sub-ops onwards.
 */
import { UsageError } from "../core/errors.js";
import type { FusedKernels, KernelName, Kernels, PartialBackend, StorageDType, TensorRef } from "./backend.js";
import { BINARY_OPS, FUSED_OPS, KERNEL_OPS, screaming, UNARY_OPS, type BinaryOp, type ElementwiseSpec, type FusedName, type OpParam, type UnaryOp } from "./ops.js";

/** Any op of the table a backend can run: a kernel or a fused step. */
export type OpName = KernelName | FusedName;

/** What one op of a backend accepts beyond what the op table allows. */
export interface OpCapability {
  /** Allowed storage dtypes per tensor operand, by the op table's operand name; absent operands: the table's. */
  readonly dtypes?: Readonly<Record<string, readonly StorageDType[]>>;
  /** Largest contraction length: the last dimension of the op's first tensor operand (integer dot products). */
  readonly maxK?: number;
  /** Largest rank of any tensor operand. */
  readonly maxRank?: number;
  /**
   * For an op with an element-wise sub-op (`unary`, `binary`): the sub-ops it implements, by name (keys of
   * UNARY_OPS / BINARY_OPS). A call with another sub-op goes to the next capable backend. A backend derives
   * the list from its own code (the native addon and the wasm module report the codes their switches
   * handle; WebGPU reads the cases of its WGSL): see {@link subOpsWhere}. Absent: every sub-op of the table.
   */
  readonly ops?: readonly (UnaryOp | BinaryOp)[];
}

/** A backend's capabilities: one entry per kernel or fused step it has (`true`: what the table allows). */
export type Capabilities = { readonly [K in OpName]?: OpCapability | true };

/** One tensor-carrying argument of an op, from the table: its position in the call and its role. */
export interface Operand {
  readonly index: number;
  readonly name: string;
  readonly kind: "tensor" | "tensors" | "record";
  /** Whether a kernel writes it (role "out" or "inout"). */
  readonly written: boolean;
  /** Allowed dtypes (for a record: every field's). */
  readonly dtypes: readonly StorageDType[];
}

const table: Readonly<Record<OpName, { readonly params: readonly OpParam[]; readonly sameDtype?: readonly string[] }>> = {
  ...KERNEL_OPS,
  ...FUSED_OPS,
};

/** Every op name of the table: the kernels of `Kernels`, then the fused steps. */
export const KERNEL_NAMES = Object.keys(KERNEL_OPS) as readonly KernelName[];
export const FUSED_NAMES = Object.keys(FUSED_OPS) as readonly FusedName[];
export const OP_NAMES: readonly OpName[] = [...KERNEL_NAMES, ...FUSED_NAMES];

function operandsOf(params: readonly OpParam[]): Operand[] {
  const out: Operand[] = [];
  params.forEach((p, index) => {
    if (p.kind === "tensor" || p.kind === "tensors") {
      out.push({ index, name: p.name, kind: p.kind, written: p.role !== "in", dtypes: p.dtypes });
    } else if (p.kind === "record") {
      out.push({ index, name: p.name, kind: "record", written: false, dtypes: [...new Set(Object.values(p.fields).flat())] });
    }
  });
  return out;
}

/** The tensor operands of every op, in call order, from the op table. */
export const OPERANDS = Object.fromEntries<readonly Operand[]>(
  OP_NAMES.map((op) => [op, operandsOf(table[op].params)]),
) as Readonly<Record<OpName, readonly Operand[]>>;

/** Argument positions of each op's `sameDtype` operands (copies), from the table. */
const SAME_DTYPE: Readonly<Partial<Record<OpName, readonly number[]>>> = Object.fromEntries(
  OP_NAMES.flatMap((op) => {
    const same = table[op].sameDtype;
    return same === undefined ? [] : [[op, same.map((name) => table[op].params.findIndex((p) => p.name === name))]];
  }),
);

/** The element-wise sub-op tables, by the attribute kind that names a sub-op. */
const SUB_OP_TABLES = { "unary-op": UNARY_OPS, "binary-op": BINARY_OPS } as const;

/** Each op's sub-op attribute, from the table: its position in the call and the sub-op table it names. */
const SUB_OPS: Readonly<Partial<Record<OpName, { readonly index: number; readonly table: Readonly<Record<string, ElementwiseSpec>> }>>> =
  Object.fromEntries(
    OP_NAMES.flatMap((op) => {
      const index = table[op].params.findIndex((p) => p.kind === "attr" && (p.type === "unary-op" || p.type === "binary-op"));
      const p = table[op].params[index];
      return p?.kind === "attr" && (p.type === "unary-op" || p.type === "binary-op") ? [[op, { index, table: SUB_OP_TABLES[p.type] }]] : [];
    }),
  );

/**
 * The names of the sub-ops of `kernel` ("unary" or "binary") for which `implemented(code)` is true, in code
 * order: how a backend turns what its code reports (a list of codes, a probe of its switch) into
 * {@link OpCapability.ops}. A code the backend reports that the table lacks is not an op; it is ignored.
 */
export function subOpsWhere<K extends "unary" | "binary">(
  kernel: K,
  implemented: (code: number, name: string) => boolean,
): (K extends "unary" ? UnaryOp : BinaryOp)[] {
  const spec = SUB_OPS[kernel];
  if (spec === undefined) {
    throw new UsageError("unsupported", `[capabilities] ${kernel} has no element-wise sub-op`);
  }
  return Object.entries(spec.table)
    .sort((a, b) => a[1].code - b[1].code)
    .filter(([name, s]) => implemented(s.code, name))
    .map(([name]) => name as K extends "unary" ? UnaryOp : BinaryOp);
}

/**
 * The sub-ops of `kernel` that shader source has a `case` for, by the generated constant names
 * (UNARY_RELU2, BINARY_ADD: ops.generated.wgsl.ts): how a WebGPU-style backend derives {@link OpCapability.ops}
 * from the switch of its WGSL. Selector lists (`case A, B:`) count each name.
 */
export function subOpsWithCase<K extends "unary" | "binary">(kernel: K, source: string): (K extends "unary" ? UnaryOp : BinaryOp)[] {
  const cased = new Set<string>();
  for (const m of source.matchAll(/\bcase\s+([^:{]+)[:{]/g)) {
    (m[1] ?? "").split(",").forEach((selector) => cased.add(selector.trim()));
  }
  const prefix = kernel.toUpperCase();
  return subOpsWhere(kernel, (_, name) => cased.has(`${prefix}_${screaming(name)}`));
}

/**
 * Refuses a sub-op outside `ops` with UsageError "unsupported": for a backend whose code would otherwise
 * compute something for it (a shader's `default`) when called directly, not through the dispatcher.
 */
export function requireSubOp(backend: string, kernel: "unary" | "binary", op: string, ops: readonly string[]): void {
  if (!ops.includes(op)) {
    throw new UsageError("unsupported", `[${backend}] ${kernel} op ${JSON.stringify(op)} is not implemented here (it has ${ops.join(", ")})`);
  }
}

/** Calls `visit` with every tensor of a call's operands (lists and records item by item). */
export function forEachTensor(op: OpName, args: readonly unknown[], visit: (ref: TensorRef, operand: Operand) => void): void {
  for (const operand of OPERANDS[op]) {
    const arg = args[operand.index];
    if (arg === undefined || arg === null) {
      continue;
    }
    if (operand.kind === "tensor") {
      visit(arg as TensorRef, operand);
    } else if (operand.kind === "tensors") {
      for (const ref of arg as readonly TensorRef[]) {
        visit(ref, operand);
      }
    } else {
      for (const ref of Object.values(arg as Readonly<Record<string, TensorRef>>)) {
        visit(ref, operand);
      }
    }
  }
}

/** The tensors of a call, in argument order (what `supports` receives). */
export function tensorsOf(op: OpName, args: readonly unknown[]): TensorRef[] {
  const refs: TensorRef[] = [];
  forEachTensor(op, args, (ref) => refs.push(ref));
  return refs;
}

function firstTensor(op: OpName, args: readonly unknown[]): TensorRef | undefined {
  const first = OPERANDS[op][0];
  const arg = first === undefined ? undefined : args[first.index];
  return first?.kind === "tensor" ? (arg as TensorRef | undefined) : undefined;
}

/**
 * Whether a capability accepts a call: true, or why not. Checks the operand dtypes the capability
 * narrows, `sameDtype` from the table, the rank and the contraction length. A plain loop over the
 * table's operands: it runs for every kernel call the dispatcher routes.
 */
export function capabilityAccepts(op: OpName, cap: OpCapability | true, args: readonly unknown[]): true | string {
  const same = SAME_DTYPE[op];
  if (same !== undefined && same.length === 2) {
    const [a, b] = same as [number, number];
    const x = args[a] as TensorRef | readonly TensorRef[] | undefined;
    const y = args[b] as TensorRef | undefined;
    const xd = Array.isArray(x) ? (x as readonly TensorRef[])[0]?.dtype : (x as TensorRef | undefined)?.dtype;
    if (xd !== undefined && y !== undefined && xd !== y.dtype) {
      return `${op} copies one dtype, got ${xd} and ${y.dtype}`;
    }
  }
  if (cap === true) {
    return true;
  }
  const { dtypes, maxRank, maxK, ops } = cap;
  if (ops !== undefined) {
    const sub = SUB_OPS[op];
    const name = sub === undefined ? undefined : args[sub.index];
    if (sub !== undefined && !ops.includes(name as UnaryOp)) {
      return `${op} has no ${JSON.stringify(name)} here (it implements ${ops.join(", ")})`;
    }
  }
  if (dtypes !== undefined || maxRank !== undefined) {
    for (const operand of OPERANDS[op]) {
      const allowed = dtypes?.[operand.name];
      const arg = args[operand.index];
      if (operand.kind !== "tensor" || arg === undefined) {
        continue;
      }
      const ref = arg as TensorRef;
      if (allowed !== undefined && !allowed.includes(ref.dtype)) {
        return `${op} takes ${allowed.join("/")} as ${operand.name}, not ${ref.dtype}`;
      }
      if (maxRank !== undefined && ref.shape.length > maxRank) {
        return `${op} takes rank ≤ ${maxRank}, ${operand.name} has ${ref.shape.length}`;
      }
    }
  }
  if (maxK !== undefined) {
    const first = firstTensor(op, args);
    const k = first === undefined ? 0 : (first.shape[first.shape.length - 1] ?? 0);
    if (k > maxK) {
      return `${op} takes k ≤ ${maxK}, got ${k}`;
    }
  }
  return true;
}

/**
 * A capability as the dispatcher checks it: a sub-op list that covers every sub-op of the table is dropped
 * (and an entry left with nothing to check becomes `true`), so a backend that implements them all is
 * routed on the same path as one that declares no list.
 */
function normalized(op: OpName, cap: OpCapability | true): OpCapability | true {
  const sub = SUB_OPS[op];
  if (cap === true || cap.ops === undefined || sub === undefined || !Object.keys(sub.table).every((name) => cap.ops?.includes(name as UnaryOp))) {
    return cap;
  }
  const { ops: _all, ...rest } = cap;
  return Object.keys(rest).length === 0 ? true : rest;
}

/**
 * The capabilities a backend declares (normalized: see {@link normalized}), or what the table allows for
 * each kernel and fused step it has.
 */
export function capabilitiesOf(backend: Pick<PartialBackend, "kernels" | "fused" | "capabilities">): Capabilities {
  if (backend.capabilities !== undefined) {
    const declared = backend.capabilities;
    return Object.fromEntries(Object.entries(declared).map(([op, cap]) => [op, normalized(op as OpName, cap)])) as Capabilities;
  }
  const caps: Partial<Record<OpName, true>> = {};
  for (const op of KERNEL_NAMES) {
    if (backend.kernels[op] !== undefined) {
      caps[op] = true;
    }
  }
  for (const op of FUSED_NAMES) {
    if (backend.fused?.[op] !== undefined) {
      caps[op] = true;
    }
  }
  return caps;
}

/**
 * Checks a backend's declared capabilities against the op table and its own kernels: one entry per kernel
 * and fused step it has and no other, operand names the op has, dtypes the table allows, sub-ops the table
 * has (a non-empty list: a backend with none leaves the kernel out), positive limits.
 * Throws UsageError "unsupported" naming the first problem.
 */
export function checkCapabilities(name: string, backend: Pick<PartialBackend, "kernels" | "fused" | "capabilities">): void {
  const caps = backend.capabilities;
  if (caps === undefined) {
    return;
  }
  const bad = (what: string): never => {
    throw new UsageError("unsupported", `[${name}] capabilities: ${what}`);
  };
  const has = (op: OpName): boolean =>
    Object.hasOwn(KERNEL_OPS, op) ? (backend.kernels as Partial<Kernels>)[op as KernelName] !== undefined : (backend.fused as Partial<FusedKernels> | undefined)?.[op as FusedName] !== undefined;
  for (const op of OP_NAMES) {
    if (has(op) !== (caps[op] !== undefined)) {
      bad(`${op} ${has(op) ? "is a kernel it has but has no entry" : "has an entry but no kernel"}`);
    }
  }
  for (const [op, cap] of Object.entries(caps) as [OpName, OpCapability | true][]) {
    if (!Object.hasOwn(OPERANDS, op)) {
      bad(`${op} is not an op of the table`);
    }
    if (cap === true) {
      continue;
    }
    for (const [operand, dtypes] of Object.entries(cap.dtypes ?? {})) {
      const spec = OPERANDS[op].find((o) => o.name === operand);
      if (spec === undefined || spec.kind !== "tensor") {
        bad(`${op} has no tensor operand '${operand}'`);
      }
      const extra = dtypes.filter((d) => !spec?.dtypes.includes(d));
      if (extra.length > 0 || dtypes.length === 0) {
        bad(`${op}.${operand} allows ${dtypes.join("/") || "nothing"}; the op table allows ${spec?.dtypes.join("/")}`);
      }
    }
    if (cap.ops !== undefined) {
      const sub = SUB_OPS[op];
      if (sub === undefined) {
        bad(`${op} has no element-wise sub-op to list`);
      }
      const unknown = cap.ops.filter((name) => !Object.hasOwn(sub?.table ?? {}, name));
      if (unknown.length > 0 || cap.ops.length === 0) {
        bad(`${op}.ops lists ${cap.ops.join("/") || "nothing"}; the op table's ${op} ops are ${Object.keys(sub?.table ?? {}).join("/")}`);
      }
    }
    for (const [limit, v] of [["maxK", cap.maxK], ["maxRank", cap.maxRank]] as const) {
      if (v !== undefined && !(Number.isSafeInteger(v) && v > 0)) {
        bad(`${op}.${limit} must be a positive integer, got ${v}`);
      }
    }
  }
}
