// One load measurement in a fresh plain-Node process on the compiled library (dist/), for bench/load.ts:
// imports, starts the backend (backendMs), then (mode "load") loads the model on it (loadMs, loadCpuMs), decodes one token after a one-token prompt, and, with
// prompt > 0, prefills `prompt` tokens in a second sequence; prints one JSON line with wall and CPU times
// and the peak RSS (VmHWM) after each step (with decode > 0, that many tokens decoded after the prefill), then the
// first encode of a short text (firstEncodeMs: what the tokenizer makes on first use, not at load). Mode
// "baseline" loads nothing of a model: it imports the library and starts the backend, the runtime's fixed cost.
//   node bench/load-child.mjs <load|baseline> <model.gguf> <backends> <threads> <prompt> [head] [decode]
import fs from "node:fs";

const [mode = "load", file = "", backends = "native-cpu,js", threads = "0", prompt = "0", head = "keep", decode = "0"] = process.argv.slice(2);
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
/** Resident memory now by kind, MiB: anonymous, file-backed, the V8 heap and array buffers (BENCH_MEM_DETAIL=1). */
const detail = () => {
  if (process.env.BENCH_MEM_DETAIL !== "1") return undefined;
  const status = fs.readFileSync("/proc/self/status", "utf8");
  const kb = (k) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(status)?.[1] ?? Number.NaN) / 1024;
  const m = process.memoryUsage();
  const mb = (b) => Math.round(b / 2 ** 20);
  return { anon: Math.round(kb("RssAnon")), file: Math.round(kb("RssFile")), heapTotal: mb(m.heapTotal), heapUsed: mb(m.heapUsed), arrayBuffers: mb(m.arrayBuffers), external: mb(m.external) };
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
  out.baselineMem = detail();
  backend.dispose?.();
} else {
  // The backend first (its start is the fixed baseline's, timed apart), then the model on it.
  const { resolveBackend } = await import("../dist/backends/registry.js");
  const tb = performance.now();
  const backend = await resolveBackend(opts);
  out.backendMs = performance.now() - tb;
  const t0 = performance.now();
  const c1 = process.cpuUsage();
  const model = await lib.loadModel(file, { backend, headType: head === "q8_0" ? "q8_0" : "keep", contextLength: Math.max(Number(prompt), 1) + Math.max(Number(decode), 1) + 1 });
  out.loadMs = performance.now() - t0;
  out.loadCpuMs = cpuMs(c1);
  out.loadRss = peak();
  out.loadMem = detail();
  out.backend = model.backend;
  try {
    const t1 = performance.now();
    await model.generate([1], { temperature: 0, maxTokens: 1, ignoreEos: true }).complete();
    out.firstTokenMs = performance.now() - t1;
    out.firstTokenRss = peak();
    out.firstTokenMem = detail();
    if (Number(prompt) > 0) {
      const ids = Array.from({ length: Number(prompt) }, (_, i) => 1 + ((i * 7919) % (model.config.vocabSize - 1)));
      const t2 = performance.now();
      const n = Math.max(1, Number(decode));
      let t3 = 0;
      for await (const token of model.generate(ids, { temperature: 0, maxTokens: n, ignoreEos: true })) {
        void token;
        if (t3 === 0) {
          out.prefillMs = performance.now() - t2;
          out.prefillRss = peak();
          out.prefillMem = detail();
          t3 = performance.now();
        }
      }
      if (n > 1) {
        out.decodeMs = performance.now() - t3;
        out.decodeRss = peak();
        out.decodeMem = detail();
      }
    }
    // Last, so that the peaks above stay those of token-id use: the first encode of text, which makes what a
    // tokenizer builds on first use (a GGUF vocabulary's strings, the token → id map, the special-token regexes).
    if (model.tokenizer !== undefined) {
      const c4 = process.cpuUsage();
      const t4 = performance.now();
      model.tokenizer.encode("Hello world, how are you today?");
      out.firstEncodeMs = performance.now() - t4;
      out.firstEncodeCpuMs = cpuMs(c4);
      out.firstEncodeRss = peak();
    }
  } finally {
    model.dispose();
  }
}
out.totalCpuMs = cpuMs(c0);
out.totalMs = performance.now();
process.stdout.write(`${JSON.stringify(out)}\n`);
