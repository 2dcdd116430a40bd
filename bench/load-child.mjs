// One load measurement in a fresh plain-Node process on the compiled library (dist/), for bench/load.ts:
// imports, then (mode "load") loads the model, decodes one token after a one-token prompt, and, with
// prompt > 0, prefills `prompt` tokens in a second sequence; prints one JSON line with wall and CPU times
// and the peak RSS (VmHWM) after each step. Mode "baseline" loads nothing of a model: it imports the library
// and starts the backend, the runtime's fixed cost.
//   node bench/load-child.mjs <load|baseline> <model.gguf> <backends> <threads> <prompt> [head]
import fs from "node:fs";

const [mode = "load", file = "", backends = "native-cpu,js", threads = "0", prompt = "0", head = "keep"] = process.argv.slice(2);
/** Peak resident set so far, bytes (VmHWM; maxRSS where /proc is absent). */
const peak = () => {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync("/proc/self/status", "utf8"));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS * 1024;
};
const cpuMs = (since) => {
  const c = process.cpuUsage(since);
  return (c.user + c.system) / 1000;
};
const started = performance.now(); // ms since the process started (performance.timeOrigin)
const c0 = process.cpuUsage();
const lib = await import("../dist/index.js");
const importMs = performance.now() - started;
const opts = { backends: backends.split(","), ...(Number(threads) > 0 ? { threads: Number(threads) } : {}) };
const out = { importMs, importRss: peak() };
if (mode === "baseline") {
  const { resolveBackend } = await import("../dist/backends/registry.js");
  const backend = await resolveBackend(opts);
  out.backendMs = performance.now() - started - importMs;
  out.baselineRss = peak();
  backend.dispose?.();
} else {
  const t0 = performance.now();
  const c1 = process.cpuUsage();
  const model = await lib.loadModel(file, { ...opts, headType: head === "q8_0" ? "q8_0" : "keep", contextLength: Math.max(Number(prompt), 1) + 2 });
  out.loadMs = performance.now() - t0;
  out.loadCpuMs = cpuMs(c1);
  out.loadRss = peak();
  try {
    const t1 = performance.now();
    await model.generate([1], { temperature: 0, maxTokens: 1, ignoreEos: true }).complete();
    out.firstTokenMs = performance.now() - t1;
    out.firstTokenRss = peak();
    if (Number(prompt) > 0) {
      const ids = Array.from({ length: Number(prompt) }, (_, i) => 1 + ((i * 7919) % (model.config.vocabSize - 1)));
      const t2 = performance.now();
      await model.generate(ids, { temperature: 0, maxTokens: 1, ignoreEos: true }).complete();
      out.prefillMs = performance.now() - t2;
      out.prefillRss = peak();
    }
  } finally {
    model.dispose();
  }
}
out.totalCpuMs = cpuMs(c0);
out.totalMs = performance.now();
process.stdout.write(`${JSON.stringify(out)}\n`);
