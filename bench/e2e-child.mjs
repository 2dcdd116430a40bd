// One end-to-end measurement in a fresh plain-Node process running the compiled library (dist/, as the
// `barbell` command does), so peak RSS is this model's and Node's alone: load, prefill `prompt` tokens,
// decode `decode` tokens greedily, print one JSON line. Like llama-bench, an untimed warm-up runs first (the
// prompt's length of other ids, then one decoded token: first-use costs such as the projections' conversion
// from the file mapping land there, reported as warmupMs); `nowarmup` as the 7th argument skips it.
//   node bench/e2e-child.mjs <model.gguf> <backends> <threads> <prompt> <decode> [keep|q8_0|q6_k|auto] [warmup|nowarmup]
// No log-probabilities (as `barbell bench`): llama-bench samples nothing, and their normalizer is an exp per
// vocabulary entry per token. bench/run.ts builds dist/ first.
import { loadModel } from "../dist/index.js";
import { HEAD_POLICIES } from "../dist/model/bitnet/weights.js";

const [file = "", backends = "", threads = "0", prompt = "512", decode = "128", head = "keep", warmup = "warmup"] = process.argv.slice(2);
if (!HEAD_POLICIES.includes(head)) {
  throw new Error(`e2e-child: head must be one of ${HEAD_POLICIES.join(", ")}, not ${head}`);
}
const baseRss = process.memoryUsage().rss;
const t0 = performance.now();
const model = await loadModel(file, {
  backends: backends.split(","),
  ...(Number(threads) > 0 ? { threads: Number(threads) } : {}),
  headType: head,
  contextLength: Number(prompt) + Number(decode) + 1,
});
try {
  const loadMs = performance.now() - t0;
  const idsAt = (offset) => Array.from({ length: Number(prompt) }, (_, i) => 1 + (((i + offset) * 7919) % (model.config.vocabSize - 1)));
  const ids = idsAt(0);
  let warmupMs = 0;
  if (warmup !== "nowarmup") {
    const w0 = performance.now();
    await model.generate(idsAt(1), { temperature: 0, maxTokens: 1, ignoreEos: true, logprobs: false }).complete();
    warmupMs = performance.now() - w0;
  }
  const result = await model
    .generate(ids, { temperature: 0, maxTokens: Number(decode), ignoreEos: true, contextOverflow: "error", logprobs: false })
    .complete();
  // ignoreEos: random weights can sample an end token; every run decodes `decode` tokens, as llama-bench's.
  process.stdout.write(
    `${JSON.stringify({
      backend: model.backend,
      loadMs,
      warmupMs,
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
