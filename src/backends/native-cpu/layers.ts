/**
 * Every BitNet block of a model in one addon call (Backend.layers, native/cpu/layers.cc): `prepare` has the
 * addon parse each layer's `block` arguments once (weights, norms, scales, sizes) into a native handle, and a
 * step then passes only h, positions, the caches and the lengths. The layers run the same `bitnet_block` with
 * the same arguments as one `bitnetBlock` call per layer, so the bits are the same.
 */
import { ShapeError, UsageError, ValueError } from "../../core/errors.js";
import type { BitnetBlockParams, BitnetBlockWeights, BitnetLayers, BitnetLayersStep, TensorRef } from "../backend.js";
import { views } from "../host-memory.js";
import { KV_CACHE_DTYPES } from "../../quant/dtypes.js";
import { elementCount, storageBytes } from "../storage.js";
import type { NativeAddon, NativeContext, NativeLayerStack } from "./addon.js";

/** Most layers one stack takes (native/cpu/layers.h kMaxLayers). */
export const NATIVE_MAX_LAYERS = 1024;

/** The stages of `block`'s non-finite code (native/cpu/block.cc). */
export const BLOCK_STAGES = ["attention input", "attention output", "feed-forward input", "feed-forward hidden state"];

/** Size of dim i (1 past the last). */
export const dim = (t: TensorRef, i: number): number => t.shape[i] ?? 1;

/** Throws ShapeError "dim-mismatch" unless a = b. */
export function same(op: string, what: string, a: number, b: number): void {
  if (a !== b) {
    throw new ShapeError("dim-mismatch", `[${op}] ${what}: ${a} ≠ ${b}`);
  }
}

/** The addon's KvType code of a KV cache pair (0 f32, 1 f16, 2 q8_0: native/cpu/float_kernels.h). */
export function kvTypeCode(op: string, k: TensorRef, v: TensorRef): number {
  const code = KV_CACHE_DTYPES.findIndex((d) => d === k.dtype);
  if (code < 0 || v.dtype !== k.dtype) {
    throw new UsageError("dtype", `[${op}] K and V caches must share one of ${KV_CACHE_DTYPES.join(", ")}, got ${k.dtype} and ${v.dtype}`);
  }
  return code;
}

/**
 * Checks a block's projections against the model numbers and `embed` (UsageError "dtype" for a projection that
 * is not ternary, ShapeError for a wrong shape) and returns them in the addon's order with the FFN width.
 */
export function checkBlockWeights(op: string, w: BitnetBlockWeights, p: BitnetBlockParams, embed: number): { projections: TensorRef[]; ffn: number } {
  const ffn = dim(w.wGate, 0);
  const projections = [w.wq, w.wk, w.wv, w.wo, w.wGate, w.wUp, w.wDown];
  const q = p.heads * p.headDim;
  const kv = p.kvHeads * p.headDim;
  const expected: [number, number][] = [[q, embed], [kv, embed], [kv, embed], [embed, q], [ffn, embed], [ffn, embed], [embed, ffn]];
  projections.forEach((t, i) => {
    if (t.dtype !== "ternary") {
      throw new UsageError("dtype", `[${op}] projection ${i} is ${t.dtype}; the fused block takes ternary weights only`);
    }
    same(op, `projection ${i} rows`, dim(t, 0), expected[i]?.[0] ?? 0);
    same(op, `projection ${i} columns`, dim(t, 1), expected[i]?.[1] ?? 0);
  });
  return { projections, ffn };
}

/** Throws ValueError "non-finite" for `block`'s / `layers`' code `bad` (≥ 0). */
export function nonFinite(op: string, bad: number, layered: boolean): ValueError {
  const stage = BLOCK_STAGES[layered ? bad % 4 : bad] ?? "activations";
  const where = layered ? ` of layer ${Math.floor(bad / 4)}` : " of this block";
  return new ValueError("non-finite", `[${op}] the ${stage}${where} are not finite`);
}

/**
 * The every-block step of a native context, or undefined when this addon build lacks it or BARBELL_NATIVE_LAYERS=0
 * (then forward() makes one `bitnetBlock` call per layer: the A/B switch of bench/decode-perf.ts runs).
 */
export function makeLayers(
  ctx: NativeContext,
  addon: Pick<NativeAddon, "layerStack" | "layerStackDispose">,
  env: Readonly<Record<string, string | undefined>> = process.env,
): BitnetLayersStep | undefined {
  if (env["BARBELL_NATIVE_LAYERS"] === "0") {
    return undefined;
  }
  const { layerStack, layerStackDispose } = addon;
  const runLayers = ctx.layers?.bind(ctx);
  if (layerStack === undefined || layerStackDispose === undefined || runLayers === undefined) {
    return undefined;
  }
  const { f32, i32, u8 } = views;
  return {
    prepare(layers: readonly BitnetBlockWeights[], p: BitnetBlockParams): BitnetLayers {
      const op = "bitnetLayers";
      const first = layers[0];
      if (first === undefined || layers.length > NATIVE_MAX_LAYERS) {
        throw new ShapeError("size", `[${op}] ${layers.length} layers (1…${NATIVE_MAX_LAYERS})`);
      }
      const embed = dim(first.attnNorm, 0);
      // Placeholder activations for the capture: one token at position 0 of a one-row cache.
      const h = new Float32Array(embed);
      const out = new Float32Array(embed);
      const pos = new Int32Array(1);
      const checked = layers.map((w) => checkBlockWeights(op, w, p, embed));
      /** Each layer's arrays (the weights' bytes made now, where they are converted on first use), kept reachable by the handle. */
      const keep = layers.map((w, l) => {
        const c = checked[l] as (typeof checked)[number];
        return {
          norms: [w.attnNorm, w.attnSubNorm, w.ffnNorm, w.ffnSubNorm].map((t) => f32(t)),
          weights: c.projections.map((t) => u8(t)),
          gammas: Float64Array.from(c.projections, (t) => t.scale ?? 1),
          dims: Float64Array.of(1, embed, p.heads, p.kvHeads, p.headDim, c.ffn, 0, 1),
        };
      });
      /** The native stack per KV cache dtype (its templates carry the addon's kv type), captured on first use. */
      const stacks = new Map<string, NativeLayerStack>();
      let disposed = false;
      const stackFor = (kvType: number): NativeLayerStack => {
        if (disposed) {
          throw new UsageError("disposed", `[${op}] the prepared layers were disposed`);
        }
        const dtype = KV_CACHE_DTYPES[kvType] ?? "f32";
        let stack = stacks.get(dtype);
        if (stack === undefined) {
          const cache = kvType === 0 ? new Float32Array(p.kvHeads * p.headDim) : new Uint8Array(storageBytes(dtype, [1, p.kvHeads, p.headDim]));
          const params = Float64Array.of(p.eps, p.ropeTheta, p.attnScale, p.activation === "relu2" ? 1 : 0, kvType);
          stack = layerStack(layers.length, (l) => {
            const a = keep[l];
            if (a !== undefined) {
              ctx.block(h, out, pos, cache, cache, a.norms, a.weights, a.gammas, a.dims, params);
            }
          });
          stacks.set(dtype, stack);
        }
        return stack;
      };
      const call = (hr: TensorRef, positions: TensorRef, caches: { k: TensorRef[]; v: TensorRef[] }, dims: Float64Array, outRef: TensorRef): void => {
        const seq = dim(hr, 0);
        same(op, "h columns", dim(hr, 1), embed);
        same(op, "out and h sizes", elementCount(outRef.shape), seq * embed);
        same(op, "positions", dim(positions, 0), seq);
        const [k0, v0] = [caches.k[0], caches.v[0]];
        const kvType = k0 === undefined || v0 === undefined ? 0 : kvTypeCode(op, k0, v0);
        const dtype = k0?.dtype ?? "f32";
        const all = [...caches.k, ...caches.v];
        for (const c of all) {
          same(op, "cache kv heads", dim(c, 1), p.kvHeads);
          same(op, "cache head size", dim(c, 2), p.headDim);
          if (c.dtype !== dtype) {
            throw new UsageError("dtype", `[${op}] caches of one step must share a dtype, got ${dtype} and ${c.dtype}`);
          }
        }
        const view = (t: TensorRef): Float32Array | Uint8Array => (dtype === "f32" ? f32(t) : u8(t));
        const stack = stackFor(kvType);
        const bad = runLayers(stack, f32(hr), f32(outRef), i32(positions), caches.k.map(view), caches.v.map(view), dims);
        if (bad >= 0) {
          throw nonFinite(op, bad, true);
        }
      };
      const cacheList = (refs: readonly TensorRef[], count: number, what: string): TensorRef[] => {
        if (refs.length !== count) {
          throw new ShapeError("size", `[${op}] ${refs.length} ${what} caches for ${count}`);
        }
        return [...refs];
      };
      return {
        run(hr, positions, kCaches, vCaches, pos0, outRef) {
          if (!Number.isSafeInteger(pos0) || pos0 < 0) {
            throw new ShapeError("size", `[${op}] pos0 must be a non-negative integer, got ${pos0}`);
          }
          const k = cacheList(kCaches, layers.length, "K");
          const v = cacheList(vCaches, layers.length, "V");
          const capacity = Math.min(...kCaches.map((c) => dim(c, 0)), ...vCaches.map((c) => dim(c, 0)));
          if (pos0 + dim(hr, 0) > capacity) {
            throw new ShapeError("bounds", `[${op}] positions ${pos0}…${pos0 + dim(hr, 0) - 1} do not fit caches of ${capacity}`);
          }
          call(hr, positions, { k, v }, Float64Array.of(dim(hr, 0), pos0, capacity, 0), outRef);
        },
        runBatch(hr, positions, kCaches, vCaches, outRef) {
          const rows = dim(hr, 0);
          if (kCaches.length !== rows || vCaches.length !== rows) {
            throw new ShapeError("size", `[${op}] ${rows} rows need as many K and V cache lists`);
          }
          // Layer-major: the addon takes layer l's cache of row b at l·B + b.
          const byLayer = (lists: readonly (readonly TensorRef[])[], what: string): TensorRef[] => {
            const perRow = lists.map((list) => cacheList(list, layers.length, what));
            return layers.flatMap((_, l) => perRow.map((row) => row[l] as TensorRef));
          };
          call(hr, positions, { k: byLayer(kCaches, "K"), v: byLayer(vCaches, "V") }, Float64Array.of(rows, 0, 0, rows), outRef);
        },
        dispose() {
          if (!disposed) {
            disposed = true;
            stacks.forEach((stack) => layerStackDispose(stack));
            stacks.clear();
            keep.length = 0;
          }
        },
      };
    },
  };
}
