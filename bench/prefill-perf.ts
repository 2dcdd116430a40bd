/**
 * Prefill-only timing and CPU profile of the native CPU backend: loads the model, runs one untimed prefill of
 * `n` tokens, then times three more (one generated token each) while `perf record` (software cpu-clock, all
 * threads) samples them; `none` as the output skips perf. Not a test.
 *   npx tsx bench/prefill-perf.ts <model.gguf> <threads> <n> <perf.data|none>
 * Then: perf report -i <perf.data> --no-children --sort sym,dso. BARBELL_NATIVE_ISA=avx2 profiles the AVX2 path.
 */
import { spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";

import { loadModel } from "../src/engine/model.js";

const [file = "", threads = "2", n = "512", out = "/tmp/prefill.perf"] = process.argv.slice(2);
using model = await loadModel(file, { backends: ["native-cpu"], threads: Number(threads), contextLength: Number(n) + 32 } as never);
const ids = Array.from({ length: Number(n) }, (_, i) => 1 + ((i * 7919) % (model.config.vocabSize - 1)));
const run = () => model.generate(ids, { temperature: 0, maxTokens: 1, ignoreEos: true, contextOverflow: "error", logprobs: false }).complete();
await run();
const perf =
  out === "none"
    ? undefined
    : spawn("perf", ["record", "-e", "cpu-clock", "-F", "2000", "-g", "-p", String(process.pid), "-o", out], { stdio: ["ignore", "ignore", "inherit"] });
if (perf !== undefined) {
  await sleep(1500); // perf attaches
}
for (let k = 0; k < 3; k++) {
  const r = await run();
  console.log(`prefill ${n} tokens ${r.prefillMs.toFixed(0)} ms (${((Number(n) * 1000) / r.prefillMs).toFixed(1)} t/s), backend ${model.backend}`);
}
if (perf !== undefined) {
  perf.kill("SIGINT");
  await new Promise((res) => perf.on("exit", res));
}
