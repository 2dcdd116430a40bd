/**
 * The dispatcher: partial backends in the user's order, then the JS reference, composed into one complete
 * {@link Backend}. It is the one place where an op call (a kernel or a fused step of the op table) is routed:
 *
 * - **Routing.** Each call runs on the first member that has the op, whose capabilities (data, over the op
 *   table's operands: capabilities.ts) and `supports` accept it, and that can reach its operands. A call that
 *   lands on a later member is a fallback, counted per op and reported once (`onFallback`); `strict` makes it
 *   a BackendError "fallback".
 * - **Placement.** Buffers are allocated in the head member's memory (its own memory, or plain host memory
 *   for backends without one: JS, native). A member with its own memory reads only the buffers it holds; one
 *   without reads any host buffer in place. Weights handed over with `adopt` when the head's memory is a
 *   device's stay in host memory (no copy) until a device kernel first reads them.
 * - **Copies only at host/device boundaries.** A device member given an input in host memory gets a copy in
 *   its memory, made once per buffer and kept until the buffer is written or freed (weights: once for the
 *   life of the model). Outputs are never copied: a device kernel writes only buffers its memory holds, and a
 *   host kernel cannot take a device buffer at all (a device read is asynchronous; it happens only at the
 *   engine's edges, through `readAsync`). Between host memories (a WASM linear memory and ArrayBuffers)
 *   nothing is copied: a member that cannot read a buffer in place is skipped.
 * - **Fused steps** are ops of the table too (composite, with a decomposition): the head member's runs when
 *   it has one and accepts the call; otherwise the table's decomposition runs on the dispatcher's kernels.
 *   `fused` lists a step only when the head member runs it in one call, so forward() composes the kernels
 *   (each routed on its own) when it does not.
 * - **Decorators** (backends/decorators: the serving switch, fault injection, tracing, the autotuner) wrap the
 *   {@link OpHook} with {@link decorate}: the kernel tables are built once from the op table's names over
 *   whichever hook is outermost; nothing is wrapped per kernel by reflection.
 *
 * Members are shared, process-wide instances (thread pools, WASM instances): a dispatcher never disposes
 * them; `disposeBackends()` in the registry does, at shutdown.
 */
import { BackendError, UsageError } from "../core/errors.js";
import type { Backend, BackendName, BitnetLayersStep, BufferHandle, BufferMemory, FusedKernels, Kernels, MemoryKind, PartialBackend, TensorRef } from "./backend.js";
import {
  capabilitiesOf,
  capabilityAccepts,
  checkCapabilities,
  FUSED_NAMES,
  KERNEL_NAMES,
  OPERANDS,
  tensorsOf,
  type Capabilities,
  type OpName,
} from "./capabilities.js";
import { runDecomposition } from "./decompositions.js";
import { ArrayBufferMemory, hostBytes, isHostBuffer } from "./host-memory.js";
import { FUSED_OPS, type FusedName } from "./ops.js";

export type { OpName } from "./capabilities.js";

/** Runs one op call: the op's name and its arguments in the op table's order. */
export type RunOp = (op: OpName, args: unknown[]) => void;

/** The dispatcher's hook: what decorators wrap. */
export interface OpHook {
  readonly run: RunOp;
  /** Whether a fused step runs as one call (otherwise forward() composes the kernels). */
  readonly fuses: (op: FusedName) => boolean;
  /**
   * The head member's every-block step (Backend.layers). A decorator that must see each block's call (faults,
   * tracing, a tuner choosing per block) leaves it out, and forward() then calls the block per layer.
   */
  readonly layers?: () => BitnetLayersStep | undefined;
}

/** A decorator: a function from the hook it wraps (and the dispatcher it decorates) to a new hook. */
export type Decorator = (next: OpHook, target: Dispatcher) => OpHook;

export interface FallbackEvent {
  readonly kernel: OpName;
  /** The backend that was preferred for this call. */
  readonly from: BackendName;
  /** The backend that ran it. */
  readonly to: BackendName | "js";
  /** Why the preferred one did not (missing kernel, capability, placement, or its `supports` answer). */
  readonly reason: string;
}

export interface DispatchOptions {
  /**
   * Where buffers live when `members` is empty: this complete backend's memory (a dispatcher over one
   * backend, for decorating it). Default: the head member's memory, else plain host memory.
   */
  readonly memoryFrom?: Backend;
  /** Any fallback throws BackendError "fallback" instead of running elsewhere. */
  readonly strict?: boolean;
  /** Called once per op, the first time it falls back. */
  readonly onFallback?: (event: FallbackEvent) => void;
}

/** A complete backend made of a dispatcher, with its routing state. */
export interface Dispatcher extends Backend {
  /** Member names in order, ending with "js". */
  readonly members: readonly string[];
  /** The member backends (without the JS reference). */
  readonly backends: readonly PartialBackend[];
  /** The outermost hook; `kernels` and `fused` call it. */
  readonly hook: OpHook;
  /**
   * Whether `backend` (a member, or another instance such as a tuning variant) can run this call where its
   * operands are: true, "copy" (it can after host → device copies), or why not.
   */
  accepts(backend: PartialBackend, op: OpName, args: readonly unknown[]): true | "copy" | string;
  /** Runs an op on one backend, copying operands across the host/device boundary where needed. */
  runOn(backend: PartialBackend, op: OpName, args: unknown[]): void;
  /** Fallbacks so far, per op. */
  fallbacks(): ReadonlyMap<OpName, { readonly count: number; readonly last: FallbackEvent }>;
  /** Host → device copies made so far (each weight counts once). */
  copies(): number;
}

type AnyFn = (...args: unknown[]) => void;

const FUSED = new Set<OpName>(FUSED_NAMES);
const isFused = (op: OpName): op is FusedName => FUSED.has(op);

function opOf(backend: PartialBackend | Backend, op: OpName): AnyFn | undefined {
  return (isFused(op) ? (backend.fused as Record<string, unknown> | undefined)?.[op] : (backend.kernels as Record<string, unknown>)[op]) as AnyFn | undefined;
}

/** A complete backend's memory as a BufferMemory (a dispatcher with no members allocates through it). */
function memoryOf(backend: Backend): BufferMemory {
  return {
    kind: backend.memoryKind,
    alloc: (bytes) => backend.alloc(bytes),
    ...(backend.allocGroup === undefined ? {} : { allocGroup: (sizes: readonly number[]) => (backend.allocGroup as NonNullable<Backend["allocGroup"]>)(sizes) }),
    adopt: (bytes) => {
      if (backend.adopt !== undefined) {
        return backend.adopt(bytes);
      }
      const buffer = backend.alloc(bytes.byteLength);
      backend.write(buffer, bytes);
      return buffer;
    },
    ...(backend.adoptLazy === undefined ? {} : { adoptLazy: (size: number, make: () => Uint8Array) => (backend.adoptLazy as NonNullable<Backend["adoptLazy"]>)(size, make) }),
    free: (buffer) => backend.free(buffer),
    write: (buffer, src, byteOffset) => backend.write(buffer, src, byteOffset),
    read: (buffer, byteOffset, length) => backend.read(buffer, byteOffset, length),
    readAsync: (buffer, byteOffset, length) => backend.readAsync(buffer, byteOffset, length),
    holds: () => true,
    liveAllocations: () => backend.liveAllocations(),
    liveBytes: () => backend.liveBytes(),
  };
}

/** Shared state of a dispatcher and every decorated view of it: memory, placement and statistics. */
interface Core {
  readonly name: string;
  readonly members: readonly string[];
  readonly backends: readonly PartialBackend[];
  readonly memory: Omit<Backend, "name" | "kernels" | "fused" | "memoryKind">;
  readonly memoryKind: MemoryKind;
  readonly hook: OpHook;
  readonly accepts: Dispatcher["accepts"];
  readonly runOn: Dispatcher["runOn"];
  readonly fallbacks: Dispatcher["fallbacks"];
  readonly copies: () => number;
}

/**
 * A table with a member per name that hands its name and arguments to `run`: assignable to the kernel tables,
 * whose members all return void (each call's arguments are checked by the member that runs it).
 */
function forwarders<N extends OpName>(names: readonly N[], run: (op: N, args: unknown[]) => void): Record<N, (...args: unknown[]) => void> {
  const table = {} as Record<N, (...args: unknown[]) => void>; // filled for every name just below
  for (const op of names) {
    table[op] = (...args: unknown[]) => run(op, args);
  }
  return table;
}

/** Builds the Backend object over a core and a hook: kernel tables from the op table's names. */
function assemble(core: Core, hook: OpHook, name: () => string = () => core.name): Dispatcher {
  const kernels: Kernels = forwarders(KERNEL_NAMES, hook.run);
  const steps: FusedKernels = forwarders(FUSED_NAMES, hook.run);
  /** The fused-step tables by the bit mask of the steps the hook runs in one call (built on first use). */
  const offered: (Partial<FusedKernels> | undefined)[] = [];
  /** The fused steps the hook runs in one call; forward() reads it once per step, without allocating. */
  const fused = (): Partial<FusedKernels> | undefined => {
    let mask = 0;
    for (let i = 0; i < FUSED_NAMES.length; i++) {
      if (hook.fuses(FUSED_NAMES[i] as FusedName)) {
        mask |= 1 << i;
      }
    }
    if (mask === 0) {
      return undefined;
    }
    let table = offered[mask];
    if (table === undefined) {
      table = Object.freeze(Object.fromEntries(FUSED_NAMES.filter((_, i) => (mask & (1 << i)) !== 0).map((op) => [op, steps[op]])));
      offered[mask] = table;
    }
    return table;
  };
  return {
    get name() {
      return name();
    },
    members: core.members,
    backends: core.backends,
    memoryKind: core.memoryKind,
    kernels,
    get fused() {
      return fused();
    },
    get layers() {
      return hook.layers?.();
    },
    hook,
    ...core.memory,
    accepts: core.accepts,
    runOn: core.runOn,
    fallbacks: core.fallbacks,
    copies: core.copies,
  };
}

/**
 * Composes `members` (preferred first) and the complete `reference` into one dispatcher (see the module
 * comment). Each member's declared capabilities are checked against the op table first.
 */
export function createDispatcher(members: readonly PartialBackend[], reference: Backend, options: DispatchOptions = {}): Dispatcher {
  members.forEach((m) => checkCapabilities(m.name, m));
  const first = members[0];
  const home: BufferMemory =
    first?.memory ?? (first === undefined && options.memoryFrom !== undefined ? memoryOf(options.memoryFrom) : new ArrayBufferMemory("dispatch"));
  /** Weights adopted while the head's memory is a device's: host bytes until a device kernel reads them. */
  const staged = home.kind === "device" ? new ArrayBufferMemory("dispatch-staged") : undefined;
  /** Host buffer → its copies in device memories. */
  const mirrors = new Map<BufferHandle, Map<BufferMemory, BufferHandle>>();
  let copies = 0;
  const caps = new WeakMap<PartialBackend, Capabilities>();
  const capsOf = (b: PartialBackend): Capabilities => {
    let c = caps.get(b);
    if (c === undefined) {
      c = capabilitiesOf(b);
      caps.set(b, c);
    }
    return c;
  };
  /** Every member reads every buffer in place (no member has memory of its own): no placement checks. */
  const shared = members.every((m) => m.memory === undefined);

  const dropMirrors = (buffer: BufferHandle): void => {
    const copiesOf = mirrors.get(buffer);
    if (copiesOf !== undefined) {
      mirrors.delete(buffer);
      copiesOf.forEach((copy, memory) => memory.free(copy));
    }
  };

  /** How `memory` (undefined: plain host, reads any host buffer) reaches `ref`: 0 in place, 1 by a copy, or why not. */
  const reach = (memory: BufferMemory | undefined, owner: string, ref: TensorRef, written: boolean): 0 | 1 | string => {
    const buffer = ref.buffer;
    if (memory === undefined) {
      return isHostBuffer(buffer) ? 0 : `buffer ${buffer.id} is in device memory, which ${owner} cannot read (a device read is asynchronous)`;
    }
    if (memory.holds(buffer)) {
      return 0;
    }
    if (memory.kind === "device" && isHostBuffer(buffer)) {
      return written ? `${owner} would write host buffer ${buffer.id}, and a device result cannot be copied back synchronously` : 1;
    }
    return `buffer ${buffer.id} is not in ${owner}'s memory`;
  };

  const placement = (memory: BufferMemory | undefined, owner: string, op: OpName, args: readonly unknown[]): true | "copy" | string => {
    let copy = false;
    for (const operand of OPERANDS[op]) {
      const arg = args[operand.index];
      if (arg === undefined || arg === null) {
        continue;
      }
      const refs: readonly TensorRef[] =
        operand.kind === "tensor" ? [arg as TensorRef] : operand.kind === "tensors" ? (arg as readonly TensorRef[]) : Object.values(arg as Record<string, TensorRef>);
      for (const ref of refs) {
        const r = reach(memory, owner, ref, operand.written);
        if (typeof r === "string") {
          return r;
        }
        copy ||= r === 1;
      }
    }
    return copy ? "copy" : true;
  };

  const accepts = (backend: PartialBackend, op: OpName, args: readonly unknown[]): true | "copy" | string => {
    if (opOf(backend, op) === undefined) {
      return `${backend.name} has no ${op} kernel`;
    }
    const cap = capsOf(backend)[op];
    const ok = cap === undefined ? `${backend.name} declares no ${op} capability` : capabilityAccepts(op, cap, args);
    if (ok !== true) {
      return `${backend.name}: ${ok}`;
    }
    if (backend.supports !== undefined && !isFused(op)) {
      const s = backend.supports(op, tensorsOf(op, args));
      if (s !== true) {
        return `${backend.name}: ${s}`;
      }
    }
    if (shared && backend.memory === undefined) {
      return true;
    }
    const placed = placement(backend.memory, backend.name, op, args);
    return placed === true || placed === "copy" ? placed : `${backend.name}: ${placed}`;
  };

  /** A ref whose buffer is host memory, as a copy in device `memory` (cached until the buffer changes). */
  const place = (memory: BufferMemory, ref: TensorRef): TensorRef => {
    if (memory.holds(ref.buffer)) {
      return ref;
    }
    let copiesOf = mirrors.get(ref.buffer);
    let copy = copiesOf?.get(memory);
    if (copy === undefined) {
      copy = memory.alloc(ref.buffer.bytes);
      memory.write(copy, hostBytes(ref.buffer));
      copies++;
      copiesOf ??= new Map();
      copiesOf.set(memory, copy);
      mirrors.set(ref.buffer, copiesOf);
    }
    return { ...ref, buffer: copy };
  };

  /** The call's arguments with every host input replaced by its copy in `memory`. */
  const placedArgs = (memory: BufferMemory, op: OpName, args: readonly unknown[]): unknown[] => {
    const out = [...args];
    for (const operand of OPERANDS[op]) {
      const arg = args[operand.index];
      if (arg === undefined || arg === null) {
        continue;
      }
      if (operand.kind === "tensor") {
        out[operand.index] = place(memory, arg as TensorRef);
      } else if (operand.kind === "tensors") {
        out[operand.index] = (arg as readonly TensorRef[]).map((r) => place(memory, r));
      } else {
        out[operand.index] = Object.fromEntries(Object.entries(arg as Record<string, TensorRef>).map(([k, r]) => [k, place(memory, r)]));
      }
    }
    return out;
  };

  /** After a kernel wrote buffers: their device copies are stale. */
  const written = (op: OpName, args: readonly unknown[]): void => {
    for (const operand of OPERANDS[op]) {
      const arg = args[operand.index];
      if (operand.written && arg !== undefined) {
        for (const ref of operand.kind === "tensors" ? (arg as readonly TensorRef[]) : [arg as TensorRef]) {
          dropMirrors(ref.buffer);
        }
      }
    }
  };

  const invoke = (backend: PartialBackend | Backend, op: OpName, args: unknown[], how: true | "copy"): void => {
    const fn = opOf(backend, op) as AnyFn;
    if (how === "copy") {
      fn(...placedArgs((backend as PartialBackend).memory as BufferMemory, op, args));
    } else {
      fn(...args);
    }
    if (mirrors.size > 0) {
      written(op, args);
    }
  };

  const runOn = (backend: PartialBackend, op: OpName, args: unknown[]): void => {
    const how = accepts(backend, op, args);
    if (how !== true && how !== "copy") {
      throw new UsageError("unsupported", `[dispatch] ${op} cannot run on ${backend.name}: ${how}`);
    }
    invoke(backend, op, args, how);
  };

  const stats = new Map<OpName, { count: number; last: FallbackEvent }>();
  const record = (event: FallbackEvent): void => {
    if (options.strict === true) {
      throw new BackendError(
        "fallback",
        `[backend] ${event.kernel} would fall back from ${event.from} to ${event.to} (${event.reason}); strict mode forbids it`,
      );
    }
    const entry = stats.get(event.kernel);
    if (entry === undefined) {
      stats.set(event.kernel, { count: 1, last: event });
      options.onFallback?.(event);
    } else {
      entry.count++;
      entry.last = event;
    }
  };

  /** The routing core: the first capable member, else the reference (or, for a fused step, its decomposition). */
  const route: RunOp = (op, args) => {
    if (isFused(op)) {
      const how = first === undefined ? "no members" : accepts(first, op, args);
      if (first !== undefined && (how === true || how === "copy")) {
        invoke(first, op, args, how);
        return;
      }
      const decomposition = FUSED_OPS[op].decomposition as { run: (...a: unknown[]) => void };
      runDecomposition(self, decomposition.run, ...args);
      return;
    }
    let reason = "";
    for (const member of members) {
      const how = accepts(member, op, args);
      if (how !== true && how !== "copy") {
        reason ||= how;
        continue;
      }
      if (member !== first && first !== undefined) {
        record({ kernel: op, from: first.name, to: member.name, reason });
      }
      invoke(member, op, args, how);
      return;
    }
    if (!shared || home.kind === "device") {
      const placed = placement(undefined, "js", op, args);
      if (placed !== true) {
        throw new UsageError("unsupported", `[dispatch] no backend can run ${op}: ${reason || "no members"}; js: ${placed}`);
      }
    }
    if (first !== undefined) {
      record({ kernel: op, from: first.name, to: "js", reason });
    }
    invoke(reference, op, args, true);
  };
  const hook: OpHook = {
    run: route,
    fuses: (op) => first?.fused?.[op] !== undefined,
    layers: () => (first?.fused?.bitnetBlock === undefined ? undefined : first.layers),
  };

  // Lazily made weights only where kernels read host buffers in place (not staged for a device, not copied into WASM).
  const lazyHome = staged === undefined ? home.adoptLazy : undefined;
  const stagedOr = <T>(buffer: BufferHandle, onStaged: (m: ArrayBufferMemory) => T, onHome: () => T): T =>
    staged !== undefined && staged.holds(buffer) ? onStaged(staged) : onHome();
  const memory: Core["memory"] = {
    alloc: (bytes) => home.alloc(bytes),
    ...(home.allocGroup === undefined ? {} : { allocGroup: (sizes: readonly number[]) => (home.allocGroup as NonNullable<BufferMemory["allocGroup"]>).call(home, sizes) }),
    adopt: (bytes) => (staged ?? home).adopt(bytes),
    ...(lazyHome === undefined ? {} : { adoptLazy: (size: number, make: () => Uint8Array) => lazyHome.call(home, size, make) }),
    free: (buffer) => {
      dropMirrors(buffer);
      return stagedOr(buffer, (m) => m.free(buffer), () => home.free(buffer));
    },
    write: (buffer, src, byteOffset) => {
      dropMirrors(buffer);
      stagedOr(buffer, (m) => m.write(buffer, src, byteOffset), () => home.write(buffer, src, byteOffset));
    },
    read: (buffer, byteOffset, length) => stagedOr(buffer, (m) => m.read(buffer, byteOffset, length), () => home.read(buffer, byteOffset, length)),
    readAsync: (buffer, byteOffset, length) =>
      stagedOr(buffer, (m) => m.readAsync(buffer, byteOffset, length), () => home.readAsync(buffer, byteOffset, length)),
    liveAllocations: () => home.liveAllocations() + (staged?.liveAllocations() ?? 0),
    liveBytes: () => home.liveBytes() + (staged?.liveBytes() ?? 0),
  };
  const names = [...members.map((m) => m.name), reference.name];
  const core: Core = {
    name: names.join(">"),
    members: names,
    backends: members,
    memory,
    memoryKind: home.kind,
    hook,
    accepts,
    runOn,
    fallbacks: () => stats,
    copies: () => copies,
  };
  // `route` reads `self` only when called, after this line.
  const self = assemble(core, hook);
  cores.set(self, core);
  return self;
}

/** Core state behind every dispatcher this module made, for decorate(). */
const cores = new WeakMap<Dispatcher, Core>();

/**
 * A view of `target` whose op calls go through `decorator` first: same memory, members and statistics, new
 * kernel tables over the decorated hook. `name` overrides the reported name (a switch reports its target's).
 */
export function decorate(target: Dispatcher, decorator: Decorator, name?: () => string): Dispatcher {
  const core = cores.get(target) ?? coreOf(target);
  const decorated = assemble(core, decorator(target.hook, target), name ?? (() => target.name));
  cores.set(decorated, core);
  return decorated;
}

function coreOf(d: Dispatcher): Core {
  return {
    name: d.name,
    members: d.members,
    backends: d.backends,
    memory: {
      alloc: (bytes) => d.alloc(bytes),
      ...(d.allocGroup === undefined ? {} : { allocGroup: (sizes: readonly number[]) => (d.allocGroup as NonNullable<Dispatcher["allocGroup"]>)(sizes) }),
      ...(d.adopt === undefined ? {} : { adopt: (bytes: Uint8Array) => (d.adopt as (b: Uint8Array) => BufferHandle)(bytes) }),
      ...(d.adoptLazy === undefined ? {} : { adoptLazy: (size: number, make: () => Uint8Array) => (d.adoptLazy as NonNullable<Dispatcher["adoptLazy"]>)(size, make) }),
      free: (buffer) => d.free(buffer),
      write: (buffer, src, byteOffset) => d.write(buffer, src, byteOffset),
      read: (buffer, byteOffset, length) => d.read(buffer, byteOffset, length),
      readAsync: (buffer, byteOffset, length) => d.readAsync(buffer, byteOffset, length),
      liveAllocations: () => d.liveAllocations(),
      liveBytes: () => d.liveBytes(),
    },
    memoryKind: d.memoryKind,
    hook: d.hook,
    accepts: d.accepts,
    runOn: d.runOn,
    fallbacks: d.fallbacks,
    copies: d.copies,
  };
}

/** A dispatcher over any complete backend: itself when it is one, else one with no members (all on `backend`). */
export function asDispatcher(backend: Backend): Dispatcher {
  return isDispatcher(backend) ? backend : createDispatcher([], backend, { memoryFrom: backend });
}

export function isDispatcher(backend: Backend): backend is Dispatcher {
  return "hook" in backend && "runOn" in backend && typeof (backend as Partial<Dispatcher>).accepts === "function";
}
