/**
 * Per-kernel wall time of an end-to-end run on the native CPU backend (700M-shaped model):
 *   npx tsx bench/native-profile.ts [model.gguf] [threads] [prompt] [decode] [head: keep|q8_0]
 * Wraps every kernel of the resolved chain with a timer, and the every-block step (Backend.layers: all the
 * blocks of a decode step in one native call) as "layers.run". Not a test.
 */
import type { BitnetLayers, BitnetLayersStep } from "../src/backends/backend.js";
import { resolveBackend } from "../src/backends/registry.js";
import { loadModel } from "../src/engine/model.js";

const [file = "bench/.models/bitnet-700m-i2s.gguf", threads = "2", prompt = "4", decode = "128", head = "keep"] =
  process.argv.slice(2);
const chain = await resolveBackend({ backends: ["native-cpu", "js"], threads: Number(threads), autotune: false } as never);
const times = new Map<string, { ms: number; calls: number }>();
let on = false;
const kernels = chain.kernels as unknown as Record<string, (...a: unknown[]) => unknown>;
const timed = <T>(name: string, f: () => T): T => {
  if (!on) {return f();}
  const t0 = performance.now();
  const r = f();
  const e = times.get(name) ?? { ms: 0, calls: 0 };
  e.ms += performance.now() - t0;
  e.calls++;
  times.set(name, e);
  return r;
};
for (const name of Object.keys(kernels)) {
  const f = kernels[name];
  if (typeof f !== "function") {continue;}
  kernels[name] = (...args: unknown[]) => timed(name, () => f(...args));
}
const step: BitnetLayersStep | undefined = chain.layers;
if (step !== undefined) {
  const wrapped: BitnetLayersStep = {
    prepare(layers, params): BitnetLayers {
      const prepared = step.prepare(layers, params);
      return {
        run: (...a) => timed("layers.run", () => prepared.run(...a)),
        runBatch: (...a) => timed("layers.runBatch", () => prepared.runBatch(...a)),
        dispose: () => prepared.dispose(),
      };
    },
  };
  Object.defineProperty(chain, "layers", { value: wrapped });
}
using model = await loadModel(file, {
  backend: chain,
  headType: head === "q8_0" ? "q8_0" : "keep",
  contextLength: Number(prompt) + Number(decode) + 1,
} as never);
const ids = Array.from({ length: Number(prompt) }, (_, i) => 1 + ((i * 7919) % (model.config.vocabSize - 1)));
// warm-up (page-in)
await model.generate(ids.slice(0, 2), { temperature: 0, maxTokens: 2, stopTokens: [], contextOverflow: "error", logprobs: false }).complete();
on = true;
const r = await model
  .generate(ids, { temperature: 0, maxTokens: Number(decode), stopTokens: [], contextOverflow: "error", logprobs: false })
  .complete();
on = false;
const total = [...times.values()].reduce((a, b) => a + b.ms, 0);
console.log(
  `prefill ${r.promptTokens} tok ${r.prefillMs.toFixed(0)} ms (${((r.promptTokens * 1000) / r.prefillMs).toFixed(1)} t/s); ` +
    `decode ${r.tokens.length} tok ${r.decodeMs.toFixed(0)} ms (${((r.tokens.length * 1000) / r.decodeMs).toFixed(1)} t/s); kernels ${total.toFixed(0)} ms`,
);
for (const [name, e] of [...times.entries()].sort((a, b) => b[1].ms - a[1].ms)) {
  console.log(`  ${name.padEnd(22)} ${e.ms.toFixed(1).padStart(8)} ms ${String(e.calls).padStart(7)} calls ${((e.ms * 1000) / e.calls).toFixed(1).padStart(8)} µs/call`);
}
