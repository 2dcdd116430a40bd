/**
 * Writes a BitNet GGUF with the exact shapes of a real model and seeded random ternary weights, for
 * memory and speed checks (the weights do not affect either). Not committed: it is hundreds of MB.
 *
 *   npx tsx scripts/gen-model.ts 2b   /tmp/bitnet-2b-i2s.gguf   # microsoft/bitnet-b1.58-2B-4T shape
 *   npx tsx scripts/gen-model.ts 700m /tmp/bitnet-700m.gguf     # 1bitLLM/bitnet_b1_58-large shape
 */
import fs from "node:fs/promises";
import { makeBitnetFixture, type BitnetFixtureOptions } from "../src/model/bitnet/fixture.js";
import { SHAPES } from "./shapes.js";

async function main(): Promise<void> {
  const [shape = "", out = ""] = process.argv.slice(2);
  const opts = (SHAPES as Record<string, BitnetFixtureOptions | undefined>)[shape];
  if (opts === undefined || out === "") {
    process.stderr.write(`usage: gen-model.ts <${Object.keys(SHAPES).join("|")}> <out.gguf> [weight type]\n`);
    process.exitCode = 2;
    return;
  }
  const weightType = (process.argv[4] ?? opts.weightType) as BitnetFixtureOptions["weightType"];
  const bytes = makeBitnetFixture({ ...opts, ...(weightType === undefined ? {} : { weightType }), seed: 1 });
  await fs.writeFile(out, bytes);
  process.stdout.write(`wrote ${out}: ${(bytes.length / 2 ** 20).toFixed(1)} MiB\n`);
}

await main();
