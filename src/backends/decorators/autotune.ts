/**
 * The autotuning decorator: the first call of a tuned kernel on a new shape times every member and variant
 * (the same backend with other thread counts) that takes the call in place, and routes that shape to the
 * fastest from then on. The fused BitNet block is tuned over the head member and its thread-count variants
 * per shape class (decode, steps of 2–16 and of 17+ tokens). Choices are cached by the {@link Autotuner}.
 */
import type { BitnetBlockWeights, KernelName, PartialBackend, TensorRef } from "../backend.js";
import type { Autotuner } from "../autotune.js";
import { tensorsOf } from "../capabilities.js";
import type { Decorator, OpName } from "../dispatch.js";

/** Kernels worth tuning: their best backend and thread count depend on the shape and the machine. */
export const TUNED_KERNELS: ReadonlySet<OpName> = new Set<KernelName>(["matmulTernaryI8", "matmulBinaryI8", "matmulDense", "attention"]);

const idOf = (b: PartialBackend): string => `${b.name}×${b.info.threads}`;

/**
 * Tunes over the dispatcher's members and `variants` (extra instances, never used as fallbacks). Timing runs a
 * call more than once on the same inputs, which rewrites the same outputs (for the block, the same KV rows), so
 * it is harmless.
 */
export function autotune(tuner: Autotuner, variants: readonly PartialBackend[] = []): Decorator {
  return (next, target) => {
    const picked = new Map<string, PartialBackend | undefined>();
    const inPlace = (b: PartialBackend, op: OpName, args: readonly unknown[]): boolean => target.accepts(b, op, args) === true;

    /** A tuned kernel's backend for this shape (undefined: no candidate; the dispatcher routes it). */
    const pickKernel = (op: OpName, args: unknown[]): PartialBackend | undefined => {
      const key = `${op} ${tensorsOf(op, args)
        .map((r) => `${r.dtype}[${r.shape.join("x")}]`)
        .join(" ")}`;
      if (picked.has(key)) {
        return picked.get(key);
      }
      const accepting = [...target.backends, ...variants].filter((b) => inPlace(b, op, args));
      let chosen: PartialBackend | undefined;
      if (accepting.length > 0) {
        const id = tuner.choose(
          key,
          accepting.map((b) => ({ id: idOf(b), run: () => target.runOn(b, op, args) })),
        );
        chosen = accepting.find((b) => idOf(b) === id);
      }
      picked.set(key, chosen);
      return chosen;
    };

    const head = target.backends[0];
    const blockCandidates =
      head?.fused?.bitnetBlock === undefined ? [] : [head, ...variants.filter((v) => v.name === head.name && v.fused?.bitnetBlock !== undefined)];
    /** The block's variant for this shape class (undefined: the dispatcher routes it). */
    const pickBlock = (args: unknown[]): PartialBackend | undefined => {
      const h = args[0] as TensorRef;
      const weights = args[5] as BitnetBlockWeights;
      const params = args[6] as { kvHeads: number; headDim: number };
      const seq = h.shape[0] ?? 1;
      const bucket = seq === 1 ? "1" : seq <= 16 ? "2-16" : "17+";
      const key = `bitnetBlock seq${bucket} ${h.shape[1] ?? 0}x${weights.wGate.shape[0] ?? 0} kv${params.kvHeads}x${params.headDim}`;
      if (picked.has(key)) {
        return picked.get(key);
      }
      const accepting = blockCandidates.filter((b) => inPlace(b, "bitnetBlock", args));
      let chosen: PartialBackend | undefined;
      if (accepting.length > 0) {
        const id = tuner.choose(
          key,
          accepting.map((b) => ({ id: idOf(b), run: () => target.runOn(b, "bitnetBlock", args) })),
        );
        chosen = accepting.find((b) => idOf(b) === id);
      }
      picked.set(key, chosen);
      return chosen;
    };

    // The every-block step skips the block's tuning: offered only where there is no block variant to choose.
    const layers = next.layers;
    return {
      fuses: next.fuses,
      ...(blockCandidates.length > 1 || layers === undefined ? {} : { layers }),
      run: (op, args) => {
        let chosen: PartialBackend | undefined;
        if (TUNED_KERNELS.has(op)) {
          chosen = pickKernel(op, args);
        } else if (op === "bitnetBlock" && blockCandidates.length > 1) {
          chosen = pickBlock(args);
        }
        if (chosen === undefined) {
          next.run(op, args);
        } else {
          // choose() may have run the call already; run it once more so its effect does not depend on that.
          target.runOn(chosen, op, args);
        }
      },
    };
  };
}
