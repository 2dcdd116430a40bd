/**
 * The autotuning decorator: the first call of a tuned kernel on a new shape times every member and variant
 * (the same backend with other thread counts) that takes the call in place, and routes that shape to the
 * fastest from then on. The fused BitNet block is tuned over the head member and its thread-count variants
 * per shape class (decode, steps of 2–16 and of 17+ tokens), and so is the every-block step (Backend.layers) for
 * one-token decode steps. Choices are cached by the {@link Autotuner}.
 */
import type { BitnetBlockParams, BitnetBlockWeights, BitnetLayers, BitnetLayersStep, KernelName, PartialBackend, TensorRef } from "../backend.js";
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

    // The every-block step: as the dispatcher offers it without block variants; with them, tuned over the
    // variants that have the step too (all or none: a step that cannot take a variant's choice is not offered).
    const inner = next.layers;
    const stepped = blockCandidates.flatMap((b) => (b.layers === undefined ? [] : [{ id: idOf(b), step: b.layers }]));
    const tuned = blockCandidates.length > 1 && stepped.length === blockCandidates.length ? tunedLayers(tuner, stepped) : undefined;
    const layers =
      inner === undefined ? undefined : blockCandidates.length <= 1 ? inner : () => (inner() === undefined ? undefined : tuned);
    return {
      fuses: next.fuses,
      ...(layers === undefined ? {} : { layers }),
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

/**
 * The every-block step over thread-count variants: each prepares the layers (a native handle each), and a
 * one-token decode step (one sequence or a batch of one) runs on the variant the tuner times fastest for that
 * model shape; longer steps run on the head member (the first). Timing whole prefill steps over every layer would
 * cost seconds on a 2B model, and more threads win there anyway; decode is where one thread can beat two.
 * Timing reruns a step on the same inputs, which rewrites the same K/V rows and output: harmless.
 */
function tunedLayers(tuner: Autotuner, candidates: readonly { id: string; step: BitnetLayersStep }[]): BitnetLayersStep {
  return {
    prepare(blocks: readonly BitnetBlockWeights[], params: BitnetBlockParams): BitnetLayers {
      const prepared: { id: string; layers: BitnetLayers }[] = [];
      try {
        for (const c of candidates) {
          prepared.push({ id: c.id, layers: c.step.prepare(blocks, params) });
        }
      } catch (e) {
        prepared.forEach((p) => p.layers.dispose());
        throw e;
      }
      const head = prepared[0] as { id: string; layers: BitnetLayers };
      const shape = `${blocks[0]?.wGate.shape[1] ?? 0}x${blocks[0]?.wGate.shape[0] ?? 0} kv${params.kvHeads}x${params.headDim} L${blocks.length}`;
      const picked = new Map<string, BitnetLayers>();
      /** The variant for a step of `rows` rows: tuned (running `call` on each) for one row, the head's otherwise. */
      const pick = (rows: number, kind: string, call: (l: BitnetLayers) => void): BitnetLayers => {
        if (rows !== 1) {
          return head.layers;
        }
        const key = `bitnetLayers ${kind} seq1 ${shape}`;
        let chosen = picked.get(key);
        if (chosen === undefined) {
          const id = tuner.choose(
            key,
            prepared.map((p) => ({ id: p.id, run: () => call(p.layers) })),
          );
          chosen = prepared.find((p) => p.id === id)?.layers ?? head.layers;
          picked.set(key, chosen);
        }
        return chosen;
      };
      return {
        run(h, positions, kCaches, vCaches, pos0, out) {
          const run = (l: BitnetLayers): void => l.run(h, positions, kCaches, vCaches, pos0, out);
          run(pick(h.shape[0] ?? 1, "one", run));
        },
        runBatch(h, positions, kCaches, vCaches, out) {
          const run = (l: BitnetLayers): void => l.runBatch(h, positions, kCaches, vCaches, out);
          run(pick(h.shape[0] ?? 1, "batch", run));
        },
        dispose() {
          prepared.forEach((p) => p.layers.dispose());
        },
      };
    },
  };
}
