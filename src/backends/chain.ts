/**
 * The fallback chain: several partial backends in the user's order, then the JS reference, composed
 * into one complete {@link Backend}. Members are shared, process-wide instances (thread pools, WASM
 * instances): a chain never disposes them; `disposeBackends()` in the registry does, at shutdown. Each kernel call runs on the first member that has the kernel
 * and accepts the call (`supports`); a call that lands on a later member is a fallback, counted per
 * kernel and reported once. In strict mode a fallback is an error instead.
 */
import { BackendError } from "../core/errors.js";
import type { Backend, BackendName, FusedKernels, Kernels, KernelName, PartialBackend, TensorRef } from "./backend.js";
import type { Autotuner } from "./autotune.js";
import { ArrayBufferMemory } from "./host-memory.js";

export interface FallbackEvent {
  readonly kernel: KernelName;
  /** The backend that was preferred for this call. */
  readonly from: BackendName;
  /** The backend that ran it. */
  readonly to: BackendName | "js";
  /** Why the preferred one did not (missing kernel, or its `supports` answer). */
  readonly reason: string;
}

/** Kernels worth tuning: their best backend and thread count depend on the shape and the machine. */
export const TUNED_KERNELS: ReadonlySet<KernelName> = new Set(["matmulTernaryI8", "matmulBinaryI8", "matmulDense", "attention"]);

export interface ChainOptions {
  /**
   * Times the candidates of a tuned kernel on the first call of each shape and routes that shape to
   * the fastest from then on. Absent: the first member that accepts a call runs it.
   */
  readonly tuner?: Autotuner;
  /** Extra instances to tune over (the same backend with other thread counts); never used as fallbacks. */
  readonly variants?: readonly PartialBackend[];
  /** Any fallback throws BackendError "fallback" instead of running elsewhere. */
  readonly strict?: boolean;
  /** Called once per kernel, the first time it falls back. */
  readonly onFallback?: (event: FallbackEvent) => void;
}

/** A complete backend made of a chain, with its fallback statistics. */
export interface ChainBackend extends Backend {
  /** Member names in order, ending with "js". */
  readonly members: readonly string[];
  /** Fallbacks so far, per kernel. */
  fallbacks(): ReadonlyMap<KernelName, { readonly count: number; readonly last: FallbackEvent }>;
}

function isRef(v: unknown): v is TensorRef {
  return typeof v === "object" && v !== null && "buffer" in v && "dtype" in v && "shape" in v;
}

/** The tensor operands of a kernel call, for `supports` (a plain loop: this runs on every kernel call). */
function refsOf(args: readonly unknown[]): TensorRef[] {
  const refs: TensorRef[] = [];
  for (const a of args) {
    if (isRef(a)) {
      refs.push(a);
    } else if (Array.isArray(a)) {
      for (const item of a) {
        if (isRef(item)) {
          refs.push(item);
        }
      }
    }
  }
  return refs;
}

/**
 * Composes `members` (preferred first) and the complete JS `reference` into one backend. Buffers come
 * from the first member's own memory if it has one, else from plain ArrayBuffers.
 */
export function createChain(members: readonly PartialBackend[], reference: Backend, options: ChainOptions = {}): ChainBackend {
  const memory = members[0]?.memory ?? new ArrayBufferMemory("chain");
  const stats = new Map<KernelName, { count: number; last: FallbackEvent }>();
  const first = members[0];

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

  const variants = options.variants ?? [];
  const idOf = (b: PartialBackend): string => `${b.name}×${b.info.threads}`;
  const tuned = new Map<string, PartialBackend | undefined>();

  /** For a tuned kernel: the member or variant the tuner picked for this shape (undefined: no candidate). */
  const pick = (name: KernelName, args: readonly unknown[]): PartialBackend | undefined => {
    const refs = refsOf(args);
    const key = `${name} ${refs.map((r) => `${r.dtype}[${r.shape.join("x")}]`).join(" ")}`;
    if (tuned.has(key)) {
      return tuned.get(key);
    }
    const accepting = [...members, ...variants].filter(
      (b) => b.kernels[name] !== undefined && (b.supports?.(name, refs) ?? true) === true,
    );
    const tuner = options.tuner;
    let chosen: PartialBackend | undefined;
    if (tuner !== undefined && accepting.length > 0) {
      const candidates = accepting.map((b) => ({ id: idOf(b), run: () => (b.kernels[name] as (...a: unknown[]) => void)(...args) }));
      const id = tuner.choose(key, candidates);
      chosen = accepting.find((b) => idOf(b) === id);
    }
    tuned.set(key, chosen);
    return chosen;
  };

  const route = <K extends KernelName>(name: K): Kernels[K] => {
    const tunable = options.tuner !== undefined && TUNED_KERNELS.has(name);
    const call = (...args: unknown[]): void => {
      if (tunable) {
        const chosen = pick(name, args);
        if (chosen !== undefined) {
          (chosen.kernels[name] as (...a: unknown[]) => void)(...args);
          return;
        }
      }
      let reason = "";
      for (const member of members) {
        const kernel = member.kernels[name] as ((...a: unknown[]) => void) | undefined;
        if (kernel === undefined) {
          reason ||= `${member.name} has no ${name} kernel`;
          continue;
        }
        const ok = member.supports?.(name, refsOf(args)) ?? true;
        if (ok !== true) {
          reason ||= `${member.name}: ${ok}`;
          continue;
        }
        if (member !== first && first !== undefined) {
          record({ kernel: name, from: first.name, to: member.name, reason });
        }
        kernel(...args);
        return;
      }
      if (first !== undefined) {
        record({ kernel: name, from: first.name, to: "js", reason });
      }
      (reference.kernels[name] as (...a: unknown[]) => void)(...args);
    };
    return call as unknown as Kernels[K];
  };

  /**
   * The first member's fused steps; with a tuner and same-backend variants (other thread counts), the
   * block runs on the variant the tuner timed fastest for its shape class (decode, short or long step).
   * Timing runs the block more than once on the same inputs, which rewrites the same KV rows and
   * output, so it is harmless.
   */
  const fusedSteps = (): Partial<FusedKernels> | undefined => {
    const base = first?.fused;
    const tuner = options.tuner;
    const block = base?.bitnetBlock;
    if (first === undefined || base === undefined || block === undefined || tuner === undefined) {
      return base;
    }
    const candidates = [first, ...variants.filter((v) => v.name === first.name && v.fused?.bitnetBlock !== undefined)];
    if (candidates.length < 2) {
      return base;
    }
    const picked = new Map<string, NonNullable<FusedKernels["bitnetBlock"]>>();
    const tunedBlock: FusedKernels["bitnetBlock"] = (h, positions, kCache, vCache, pos0, weights, params, out) => {
      const seq = h.shape[0] ?? 1;
      const bucket = seq === 1 ? "1" : seq <= 16 ? "2-16" : "17+";
      const key = `bitnetBlock seq${bucket} ${h.shape[1] ?? 0}x${weights.wGate.shape[0] ?? 0} kv${params.kvHeads}x${params.headDim}`;
      let run = picked.get(key);
      if (run === undefined) {
        const runs = candidates.map((b) => ({ id: idOf(b), run: b.fused?.bitnetBlock ?? block }));
        const id = tuner.choose(
          key,
          runs.map((c) => ({ id: c.id, run: () => c.run(h, positions, kCache, vCache, pos0, weights, params, out) })),
        );
        run = runs.find((c) => c.id === id)?.run ?? block;
        picked.set(key, run);
        // choose() ran the block already, but run it once more so the call's effect does not depend on it.
      }
      run(h, positions, kCache, vCache, pos0, weights, params, out);
    };
    return { ...base, bitnetBlock: tunedBlock };
  };
  const fused = fusedSteps();

  const kernels = Object.fromEntries(
    (Object.keys(reference.kernels) as KernelName[]).map((name) => [name, route(name)]),
  ) as unknown as Kernels;

  return {
    name: [...members.map((m) => m.name), "js"].join(">"),
    members: [...members.map((m) => m.name), "js"],
    kernels,
    ...(fused !== undefined ? { fused } : {}),
    alloc: (bytes) => memory.alloc(bytes),
    adopt: (bytes) => memory.adopt(bytes),
    free: (buffer) => memory.free(buffer),
    write: (buffer, src, byteOffset) => memory.write(buffer, src, byteOffset),
    read: (buffer, byteOffset, length) => memory.read(buffer, byteOffset, length),
    liveAllocations: () => memory.liveAllocations(),
    liveBytes: () => memory.liveBytes(),
    fallbacks: () => stats,
  };
}
