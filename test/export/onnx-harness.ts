/**
 * Runs barbell and an exported ONNX graph side by side: the prompt's logits at every position, then greedy decode
 * steps through each one's KV cache. onnxruntime-node is not a dependency of barbell (it is ~300 MB): it is loaded
 * from the gitignored prefix `.optional/onnx` that scripts/install-onnxruntime.sh fills.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createJsBackend } from "../../src/backends/js/index.js";
import type { BitnetConfig } from "../../src/model/bitnet/config.js";
import { forward } from "../../src/model/bitnet/forward.js";
import { KvCache } from "../../src/model/bitnet/kv-cache.js";
import { loadWeights, type WeightSource } from "../../src/model/bitnet/weights.js";
import { INTEGER_HEAD_FORMATS } from "../../src/quant/dtypes.js";
import { QUANT_TRAITS } from "../../src/quant/table.js";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
/** Where scripts/install-onnxruntime.sh installs onnxruntime-node and onnxruntime-web. */
export const ORT_PREFIX = path.join(ROOT, ".optional/onnx");

/* eslint-disable @typescript-eslint/no-explicit-any -- onnxruntime's API, loaded at run time from outside the package */
export type Ort = any;

/** onnxruntime-node from the optional prefix, or why it is not there. */
export function loadOrt(): { ort: Ort; version: string } | { reason: string } {
  const pkg = path.join(ORT_PREFIX, "node_modules/onnxruntime-node/package.json");
  if (!existsSync(pkg)) {
    return { reason: `onnxruntime-node is not installed in ${path.relative(ROOT, ORT_PREFIX)} (run scripts/install-onnxruntime.sh)` };
  }
  try {
    const require = createRequire(path.join(ORT_PREFIX, "package.json"));
    const ort = require("onnxruntime-node") as Ort;
    return { ort, version: String(ort.env.versions.node) };
  } catch (e) {
    return { reason: `onnxruntime-node does not load: ${String(e)}` };
  }
}

export interface RunResult {
  /** Logits of every prompt position, then of each decode step's one position. */
  readonly prompt: Float32Array[];
  readonly steps: Float32Array[];
  /** Greedy ids: the one after the prompt, then after each step. */
  readonly ids: number[];
}

export function argmax(v: Float32Array): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) {
    if ((v[i] ?? -Infinity) > (v[best] ?? -Infinity)) {
      best = i;
    }
  }
  return best;
}

const K_HEADS: ReadonlySet<string> = new Set(INTEGER_HEAD_FORMATS.filter((f) => f !== "q8_0"));

/**
 * The source with a Q4_K / Q5_K / Q6_K embedding or head decoded to f32. The exported graph holds such a head as
 * float weights (the float contract, as barbell's device backends run it), while barbell's host backends run it on
 * integer products with activations per 256 (docs/heads.md), ~2 % apart: the check compares the float forms.
 */
function floatKHeads(source: WeightSource): WeightSource {
  return {
    has: (name) => source.has(name),
    bytesOf: (name) => source.bytesOf(name),
    dense: async (name, rows, cols) => {
      const d = await source.dense(name, rows, cols);
      if (!K_HEADS.has(d.dtype)) {
        return d;
      }
      const values = QUANT_TRAITS[d.dtype as "q6_k"].decode(d.bytes, rows, cols);
      return { dtype: "f32", bytes: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
    },
    floats: (name, count) => source.floats(name, count),
    ternary: (name, out, inp) => source.ternary(name, out, inp),
    projectionFloats: (name, out, inp) => source.projectionFloats(name, out, inp),
  };
}

/** barbell's JS reference (the correctness oracle): prompt, then `steps` greedy decode steps through the KV cache. */
export async function runBarbell(config: BitnetConfig, source: WeightSource, prompt: readonly number[], steps: number): Promise<RunResult> {
  const backend = createJsBackend();
  using weights = await loadWeights(floatKHeads(source), config, { backend });
  using cache = new KvCache(config, prompt.length + steps + 1, backend);
  const rows = (t: { toFloat32(): Float32Array; shape: readonly number[] }): Float32Array[] => {
    const all = t.toFloat32();
    const vocab = t.shape[1] ?? 0;
    return Array.from({ length: t.shape[0] ?? 0 }, (_, i) => all.slice(i * vocab, (i + 1) * vocab));
  };
  const promptLogits = (() => {
    using out = forward(config, weights, cache, prompt, { allLogits: true });
    return rows(out);
  })();
  const ids = [argmax(promptLogits[promptLogits.length - 1] as Float32Array)];
  const stepLogits: Float32Array[] = [];
  for (let s = 0; s < steps; s++) {
    using out = forward(config, weights, cache, [ids[ids.length - 1] as number]);
    const row = rows(out)[0] as Float32Array;
    stepLogits.push(row);
    ids.push(argmax(row));
  }
  return { prompt: promptLogits, steps: stepLogits, ids };
}

/** The exported graph in onnxruntime: the same prompt and greedy steps, present → past between steps. */
export async function runOnnx(ort: Ort, session: Ort, config: BitnetConfig, prompt: readonly number[], steps: number): Promise<RunResult> {
  const past = new Map<string, Ort>();
  for (let l = 0; l < config.layers; l++) {
    for (const kind of ["key", "value"]) {
      past.set(`past_key_values.${l}.${kind}`, new ort.Tensor("float32", new Float32Array(0), [1, config.kvHeads, 0, config.headDim]));
    }
  }
  let length = 0;
  const step = async (tokens: readonly number[]): Promise<Float32Array[]> => {
    const n = tokens.length;
    const feeds: Record<string, Ort> = {
      input_ids: new ort.Tensor("int64", BigInt64Array.from(tokens.map(BigInt)), [1, n]),
      attention_mask: new ort.Tensor("int64", new BigInt64Array(length + n).fill(1n), [1, length + n]),
      position_ids: new ort.Tensor("int64", BigInt64Array.from(tokens.map((_, i) => BigInt(length + i))), [1, n]),
    };
    for (const [name, t] of past) {
      feeds[name] = t;
    }
    const out = await session.run(feeds);
    for (let l = 0; l < config.layers; l++) {
      for (const kind of ["key", "value"]) {
        past.set(`past_key_values.${l}.${kind}`, out[`present.${l}.${kind}`]);
      }
    }
    length += n;
    const data = out.logits.data as Float32Array;
    const vocab = config.vocabSize;
    return Array.from({ length: n }, (_, i) => data.slice(i * vocab, (i + 1) * vocab));
  };
  const promptLogits = await step(prompt);
  const ids = [argmax(promptLogits[promptLogits.length - 1] as Float32Array)];
  const stepLogits: Float32Array[] = [];
  for (let s = 0; s < steps; s++) {
    const row = (await step([ids[ids.length - 1] as number]))[0] as Float32Array;
    stepLogits.push(row);
    ids.push(argmax(row));
  }
  return { prompt: promptLogits, steps: stepLogits, ids };
}

/** Largest |Δ| over all rows, and the largest |logit| of `a` (for a relative figure). */
export function maxDiff(a: readonly Float32Array[], b: readonly Float32Array[]): { max: number; scale: number } {
  let max = 0;
  let scale = 0;
  a.forEach((row, r) => {
    const other = b[r] as Float32Array;
    for (let i = 0; i < row.length; i++) {
      max = Math.max(max, Math.abs((row[i] ?? 0) - (other[i] ?? 0)));
      scale = Math.max(scale, Math.abs(row[i] ?? 0));
    }
  });
  return { max, scale };
}
