// One node-llama-cpp measurement in a fresh process, the in-repo peer row of `npm run bench` (bench/peers.ts):
// load FILE, time a PROMPT-token prompt from an empty context (pp), then DECODE one-token steps after a
// one-token prompt (tg), greedy; print one JSON line.
//   node bench/node-llama-cpp-child.mjs <node-llama-cpp dir> <model.gguf> <threads> <prompt> <decode>
// node-llama-cpp is installed outside the project's dependencies (bench/.peers, by bench/peers.ts).
import path from "node:path";
import { pathToFileURL } from "node:url";

const [dir = "", file = "", threads = "1", prompt = "512", decode = "128"] = process.argv.slice(2);
const { getLlama } = await import(pathToFileURL(path.join(dir, "dist", "index.js")).href);
const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
const t0 = performance.now();
const model = await llama.loadModel({ modelPath: file });
const loadMs = performance.now() - t0;
const vocab = model.fileInfo.metadata.tokenizer.ggml.tokens.length;
const ids = Array.from({ length: Number(prompt) }, (_, i) => 1 + ((i * 7919) % (vocab - 1)));
const context = await model.createContext({ contextSize: Number(prompt) + Number(decode) + 16, batchSize: Math.max(512, Number(prompt)), threads: Number(threads) });
try {
  const seq = context.getSequence();
  let start = performance.now();
  await seq.evaluateWithoutGeneratingNewTokens(ids);
  const prefillMs = performance.now() - start;
  await seq.clearHistory();
  // tg: the first yielded token ends the one-token prompt's step; each later one is one decode step.
  let n = -1;
  // eslint-disable-next-line @typescript-eslint/no-unused-vars -- only the steps are counted
  for await (const _token of seq.evaluate([ids[0]], { temperature: 0 })) {
    if (++n === 0) {
      start = performance.now();
    }
    if (n >= Number(decode)) {
      break;
    }
  }
  const decodeMs = performance.now() - start;
  process.stdout.write(`${JSON.stringify({ engine: "node-llama-cpp", loadMs, promptTokens: ids.length, prefillMs, decodeTokens: n, decodeMs })}\n`);
} finally {
  await context.dispose();
  await model.dispose();
  await llama.dispose();
}
