/**
 * Peak RSS of loading a model, against the budget of issue 3: 1.2 × the file size plus the KV cache.
 * Runs the load in a child process so nothing else is counted.
 *
 *   npx tsx scripts/measure-memory.ts /tmp/bitnet-2b-i2s.gguf [ctx]
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import { fileURLToPath } from "node:url";

const CHILD = `(async () => {
const { loadModel } = await import(${JSON.stringify(new URL("../src/engine/model.ts", import.meta.url).href)});
const file = process.argv[1];
const ctx = Number(process.argv[2]);
const model = await loadModel(file, { contextLength: ctx });
const afterLoad = process.resourceUsage().maxRSS * 1024;
const c = model.config;
const kv = 2 * c.layers * ctx * c.kvHeads * c.headDim * 4;
const t0 = performance.now();
const logits = await model.logits([1]);
const stepMs = performance.now() - t0;
console.log(JSON.stringify({ afterLoad, afterStep: process.resourceUsage().maxRSS * 1024, kv, stepMs, backend: model.backend }));
})();
`;

const [file = "", ctxArg = "4096"] = process.argv.slice(2);
if (!fs.existsSync(file)) {
  process.stderr.write("usage: measure-memory.ts <model.gguf> [ctx]\n");
  process.exit(2);
}
const tsx = fileURLToPath(new URL("../node_modules/.bin/tsx", import.meta.url));
const out = execFileSync(tsx, ["--eval", CHILD, file, ctxArg], { encoding: "utf8", maxBuffer: 1 << 20 });
const r = JSON.parse(out.trim().split("\n").pop() ?? "{}") as {
  afterLoad: number;
  afterStep: number;
  kv: number;
  stepMs: number;
  backend: string;
};
const size = fs.statSync(file).size;
const budget = 1.2 * size + r.kv;
const mib = (n: number): string => `${(n / 2 ** 20).toFixed(0)} MiB`;
process.stdout.write(
  `file ${mib(size)}, KV cache ${mib(r.kv)} (ctx ${ctxArg}), budget ${mib(budget)}\n` +
    `peak RSS after load ${mib(r.afterLoad)} (${((r.afterLoad / budget) * 100).toFixed(0)}% of budget), ` +
    `after one decode step ${mib(r.afterStep)}; one step took ${(r.stepMs / 1000).toFixed(2)} s on ${r.backend}\n`,
);
