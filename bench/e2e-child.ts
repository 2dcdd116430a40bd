/**
 * One end-to-end measurement in a fresh process (so peak RSS is this model's alone): load, prefill
 * `prompt` tokens, decode `decode` tokens greedily, print one JSON line.
 *   tsx bench/e2e-child.ts <model.gguf> <backends> <threads> <prompt> <decode> [head]
 */
import { parseBackendList } from "../src/backends/registry.js";
import { loadModel } from "../src/engine/model.js";

const [file = "", backends = "", threads = "0", prompt = "512", decode = "128", head = "keep"] = process.argv.slice(2);
const t0 = performance.now();
using model = await loadModel(file, {
  backends: parseBackendList(backends),
  ...(Number(threads) > 0 ? { threads: Number(threads) } : {}),
  headType: head === "q8_0" ? "q8_0" : "keep",
  contextLength: Number(prompt) + Number(decode) + 1,
});
const loadMs = performance.now() - t0;
const ids = Array.from({ length: Number(prompt) }, (_, i) => 1 + ((i * 7919) % (model.config.vocabSize - 1)));
const result = await model
  .generate(ids, { temperature: 0, maxTokens: Number(decode), stopTokens: [], contextOverflow: "error" })
  .complete();
// Random weights can emit an end token early; only full runs are comparable, so report what ran.
process.stdout.write(
  `${JSON.stringify({
    backend: model.backend,
    loadMs,
    promptTokens: result.promptTokens,
    prefillMs: result.prefillMs,
    decodeTokens: result.tokens.length,
    decodeMs: result.decodeMs,
    peakRss: process.resourceUsage().maxRSS * 1024,
  })}\n`,
);
