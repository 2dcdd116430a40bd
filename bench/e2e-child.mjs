// One end-to-end measurement in a fresh plain-Node process running the compiled library (dist/, as the
// `barbell` command does), so peak RSS is this model's and Node's alone: load, prefill `prompt` tokens,
// decode `decode` tokens greedily, print one JSON line.
//   node bench/e2e-child.mjs <model.gguf> <backends> <threads> <prompt> <decode> [head]
// bench/run.ts builds dist/ first.
import { loadModel } from "../dist/index.js";

const [file = "", backends = "", threads = "0", prompt = "512", decode = "128", head = "keep"] = process.argv.slice(2);
const baseRss = process.memoryUsage().rss;
const t0 = performance.now();
const model = await loadModel(file, {
  backends: backends.split(","),
  ...(Number(threads) > 0 ? { threads: Number(threads) } : {}),
  headType: head === "q8_0" ? "q8_0" : "keep",
  contextLength: Number(prompt) + Number(decode) + 1,
});
try {
  const loadMs = performance.now() - t0;
  const ids = Array.from({ length: Number(prompt) }, (_, i) => 1 + ((i * 7919) % (model.config.vocabSize - 1)));
  const result = await model
    .generate(ids, { temperature: 0, maxTokens: Number(decode), ignoreEos: true, contextOverflow: "error" })
    .complete();
  // ignoreEos: random weights can sample an end token; every run decodes `decode` tokens, as llama-bench's.
  process.stdout.write(
    `${JSON.stringify({
      backend: model.backend,
      loadMs,
      promptTokens: result.promptTokens,
      prefillMs: result.prefillMs,
      decodeTokens: result.tokens.length,
      decodeMs: result.decodeMs,
      baseRss,
      peakRss: process.resourceUsage().maxRSS * 1024,
    })}\n`,
  );
} finally {
  model.dispose();
}
