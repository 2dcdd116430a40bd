/**
 * Child of load-memory.test.ts: this process's memory after starting the backend (the baseline), after
 * loading the model file given, and after one forward pass (which reads every weight, the tied head included);
 * prints one JSON line. Linux only (/proc/self/status).
 *   node --import tsx test/engine/load-child.ts <model.gguf> <backends>
 */
import fs from "node:fs";
import type { BackendName } from "../../src/backends/backend.js";
import { resolveBackend } from "../../src/backends/registry.js";
import { loadModel } from "../../src/engine/model.js";

/** VmHWM (peak resident) and RssAnon (resident memory not backed by a file), bytes. */
function memory(): { peak: number; anon: number } {
  const status = fs.readFileSync("/proc/self/status", "utf8");
  const kb = (key: string): number => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(status)?.[1] ?? Number.NaN) * 1024;
  return { peak: kb("VmHWM"), anon: kb("RssAnon") };
}

const [file = "", backends = "native-cpu,js"] = process.argv.slice(2);
const backend = await resolveBackend({ backends: backends.split(",") as BackendName[], threads: 1 });
const baseline = memory();
const model = await loadModel(file, { backend, contextLength: 8 });
const loaded = memory();
const logits = (await model.logits([1, 2, 3])).at(-1) ?? new Float32Array(0);
const forward = memory();
process.stdout.write(`${JSON.stringify({ backend: model.backend, baseline, loaded, forward, logits: Array.from(logits.slice(0, 4)) })}\n`);
model.dispose();
