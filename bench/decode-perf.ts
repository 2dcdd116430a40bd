/**
 * Decode-only CPU profile of the native CPU backend: loads the model, warms it up, then attaches
 * `perf record` (software cpu-clock, all threads of this process) for exactly the decode of `decode`
 * tokens, so load and prefill are not in the samples. Not a test.
 *   npx tsx bench/decode-perf.ts <model.gguf> <threads> <decode> <perf.data>
 * Then: perf report -i <perf.data> --no-children --sort sym,dso
 * PERF_EVENT=page-faults records every page fault instead (with call chains: who touches fresh memory per token).
 */
import { spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";

import { loadModel } from "../src/engine/model.js";

const [file = "", threads = "1", decode = "32", out = "/tmp/decode.perf"] = process.argv.slice(2);
using model = await loadModel(file, {
  backends: ["native-cpu"],
  threads: Number(threads),
  contextLength: Number(decode) + 32,
} as never);
const ids = [1, 2, 3, 4];
await model.generate(ids, { temperature: 0, maxTokens: 24, ignoreEos: true, contextOverflow: "error", logprobs: false }).complete();
const event = process.env["PERF_EVENT"];
const perf = spawn("perf", ["record", "-e", event ?? "cpu-clock", ...(event === undefined ? ["-F", "2000"] : ["-c", "1"]), "-g", "-p", String(process.pid), "-o", out], {
  stdio: ["ignore", "ignore", "inherit"],
});
await sleep(1500); // perf attaches
const ru0 = process.resourceUsage();
const r = await model
  .generate([1], { temperature: 0, maxTokens: Number(decode), ignoreEos: true, contextOverflow: "error", logprobs: false })
  .complete();
const ru1 = process.resourceUsage();
perf.kill("SIGINT");
await new Promise((res) => perf.on("exit", res));
console.log(
  `decode ${r.tokens.length} tok ${r.decodeMs.toFixed(0)} ms (${((r.tokens.length * 1000) / r.decodeMs).toFixed(2)} t/s), ` +
    `prefill ${r.prefillMs.toFixed(0)} ms; backend ${model.backend}; page faults per token: ` +
    `${((ru1.minorPageFault - ru0.minorPageFault) / (r.tokens.length + 1)).toFixed(0)} minor, ` +
    `${((ru1.majorPageFault - ru0.majorPageFault) / (r.tokens.length + 1)).toFixed(1)} major`,
);
