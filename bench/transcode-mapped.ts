/**
 * First-use conversion cost of a model's ternary projections: every I2_S / TQ2_0 tensor of a GGUF file
 * converted to t2 codes with the native mapped transcode (native/cpu/load.cc transcodeMapped), from a fresh
 * mapping in a fresh process (page faults included, file in the page cache), as the first token pays it.
 * Addons are compared interleaved: `npx tsx bench/transcode-mapped.ts MODEL.gguf ADDON.node [ADDON.node …]`
 * (default: build/Release/barbell_native.node), `--rounds N` (default 3). Prints CPU and wall seconds per run.
 */
import { spawnSync } from "node:child_process";
import { closeSync, openSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { openGguf } from "../src/formats/gguf/index.js";

interface Mapped {
  mapFile(fd: number, size: number): unknown;
  transcodeMapped(map: unknown, offset: number, format: 0 | 1, n: number, dst: Uint8Array): number;
}

async function child(model: string, addonPath: string): Promise<void> {
  const gguf = await openGguf(model);
  const jobs = gguf.tensors
    .filter((t) => t.typeName === "i2_s" || t.typeName === "tq2_0")
    .map((t) => ({ offset: gguf.dataOffset + t.offset, format: (t.typeName === "i2_s" ? 0 : 1) as 0 | 1, n: t.elementCount }));
  await gguf[Symbol.asyncDispose]();
  const addon = createRequire(import.meta.url)(addonPath) as Mapped;
  const fd = openSync(model, "r");
  const map = addon.mapFile(fd, statSync(model).size);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let bad = 0;
  for (const j of jobs) {
    if (addon.transcodeMapped(map, j.offset, j.format, j.n, new Uint8Array(j.n / 4)) === -2) {
      bad++;
    }
  }
  const cpu = process.cpuUsage(cpu0);
  const wall = (performance.now() - t0) / 1000;
  closeSync(fd);
  console.log(JSON.stringify({ tensors: jobs.length, refused: bad, cpu: (cpu.user + cpu.system) / 1e6, sys: cpu.system / 1e6, wall }));
}

const args = process.argv.slice(2);
if (args[0] === "--child") {
  await child(args[1] ?? "", args[2] ?? "");
} else {
  const roundsAt = args.indexOf("--rounds");
  const rounds = roundsAt >= 0 ? Number(args.splice(roundsAt, 2)[1]) : 3;
  const [model, ...addons] = args;
  if (model === undefined) {
    throw new Error("usage: bench/transcode-mapped.ts MODEL.gguf [ADDON.node …] [--rounds N]");
  }
  const paths = addons.length > 0 ? addons : [new URL("../build/Release/barbell_native.node", import.meta.url).pathname];
  for (let r = 0; r < rounds; r++) {
    for (const p of paths) {
      const out = spawnSync(process.execPath, [...process.execArgv, new URL(import.meta.url).pathname, "--child", model, p], { encoding: "utf8" });
      console.log(`${p}\t${out.stdout.trim() || out.stderr.trim().split("\n").slice(-3).join(" ")}`);
    }
  }
}
