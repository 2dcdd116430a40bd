/** Two seeded fixture models of different sizes (a two-rung ladder) written to a temp folder. */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { makeBitnetFixture } from "../../src/model/bitnet/fixture.js";
import type { ModelRung } from "../../src/serve/index.js";

export interface Ladder {
  readonly dir: string;
  readonly small: ModelRung;
  readonly large: ModelRung;
  remove(): Promise<void>;
}

export async function writeLadder(): Promise<Ladder> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "barbell-serve-"));
  const small = path.join(dir, "small.gguf");
  const large = path.join(dir, "large.gguf");
  await fs.writeFile(
    small,
    makeBitnetFixture({ hidden: 64, heads: 2, kvHeads: 1, layers: 1, ffn: 64, vocab: 300, contextLength: 64, seed: 11, weightType: "f32", embeddingType: "f32" }),
  );
  await fs.writeFile(large, makeBitnetFixture({ hidden: 128, layers: 2, ffn: 256, vocab: 300, contextLength: 128, seed: 12 }));
  return {
    dir,
    small: { name: "small", path: small },
    large: { name: "large", path: large },
    remove: () => fs.rm(dir, { recursive: true, force: true }),
  };
}
