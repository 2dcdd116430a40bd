/**
 * Interleaved A/B of native-cpu's every-block step (Backend.layers) against one fused block call per layer
 * (BARBELL_NATIVE_LAYERS=0), decode only: each run is a fresh process (the switch is read when the backend is
 * made) that loads the model, warms up, then decodes `decode` tokens after a 1-token prompt and prints wall
 * ms, process CPU ms and minor page faults per token. Rounds alternate A and B so machine load hits both alike.
 * `switch` names another 0/1 environment switch to A/B instead, or `NAME=offValue,onValue` for other values (e.g.
 * `BARBELL_NATIVE_PATH=/old/barbell_native.node,/new/barbell_native.node` to A/B two addon builds); `context` sizes
 * the KV cache (default decode + 64). Not a test.
 *   npx tsx bench/layers-ab.ts <model.gguf> <threads> <decode> <rounds> [switch] [context]
 */
import { spawnSync } from "node:child_process";

import { loadModel } from "../src/engine/model.js";

const [file = "", threads = "1", decode = "64", rounds = "3", flagName = "BARBELL_NATIVE_LAYERS", context = "0", child = ""] = process.argv.slice(2);
const contextLength = Number(context) > 0 ? Number(context) : Number(decode) + 64;
const [switchName = flagName, values = "0,1"] = flagName.split("=");
const [offValue = "0", onValue = "1"] = values.split(",");

if (child === "child") {
  using model = await loadModel(file, { backends: ["native-cpu"], threads: Number(threads), contextLength });
  await model.generate([1, 2, 3, 4], { temperature: 0, maxTokens: 16, ignoreEos: true, contextOverflow: "error", logprobs: false }).complete();
  const ru0 = process.resourceUsage();
  const r = await model.generate([1], { temperature: 0, maxTokens: Number(decode), ignoreEos: true, contextOverflow: "error", logprobs: false }).complete();
  const ru1 = process.resourceUsage();
  const n = r.tokens.length;
  const cpuMs = (ru1.userCPUTime + ru1.systemCPUTime - ru0.userCPUTime - ru0.systemCPUTime) / 1000;
  console.log(JSON.stringify({ wallMs: r.decodeMs / n, cpuMs: cpuMs / n, faults: (ru1.minorPageFault - ru0.minorPageFault) / n }));
} else {
  const rows: Record<string, { wallMs: number; cpuMs: number; faults: number }[]> = { off: [], on: [] };
  for (let i = 0; i < Number(rounds); i++) {
    for (const [name, flag] of (i % 2 === 0 ? [["off", offValue], ["on", onValue]] : [["on", onValue], ["off", offValue]]) as [string, string][]) {
      const p = spawnSync(process.execPath, [...process.execArgv, process.argv[1] as string, file, threads, decode, rounds, flagName, String(contextLength), "child"], {
        env: { ...process.env, [switchName]: flag },
        encoding: "utf8",
      });
      const line = p.stdout.trim().split("\n").pop() ?? "";
      if (p.status !== 0 || !line.startsWith("{")) {
        throw new Error(`child failed: ${p.stderr.slice(-500)}`);
      }
      rows[name]?.push(JSON.parse(line) as { wallMs: number; cpuMs: number; faults: number });
      console.log(name, line);
    }
  }
  const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
  for (const key of ["wallMs", "cpuMs", "faults"] as const) {
    const a = med((rows.off ?? []).map((r) => r[key]));
    const b = med((rows.on ?? []).map((r) => r[key]));
    console.log(`${key}: ${switchName}=${offValue} ${a.toFixed(2)}, =${onValue} ${b.toFixed(2)}, ratio ${(b / a).toFixed(3)} (medians of ${rounds})`);
  }
}
