/**
 * `barbell demo`: runs the core end to end on a generated model, so a new user sees real work on a
 * fresh machine without downloading anything: write a seeded BitNet GGUF, read it back lazily,
 * decode one I2_S projection into a checked ternary tensor, and run it as a BitLinear layer
 * (int8 activations × trits, exact int32 sums) next to the float computation it stands for.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { openGguf } from "../formats/gguf/index.js";
import { makeBitnetFixture } from "../model/bitnet/fixture.js";
import { ggufWeightSource } from "../model/bitnet/gguf-source.js";
import { ternaryFromCodes } from "../tensor/ops/quant.js";
import { loadModel } from "../engine/model.js";
import { linear, matmul } from "../tensor/ops/matmul.js";
import { tensor } from "../tensor/tensor.js";
import { formatInspectReport, inspectFile } from "./inspect.js";

export interface DemoOptions {
  /** Where to write the model; default a file in the OS temp directory, removed afterwards. */
  readonly out?: string;
  readonly seed?: number;
}

export async function runDemo(options: DemoOptions, print: (line: string) => void): Promise<void> {
  const seed = options.seed ?? 1;
  const dir = options.out === undefined ? await fs.mkdtemp(path.join(os.tmpdir(), "barbell-demo-")) : undefined;
  const file = options.out ?? path.join(dir ?? ".", "tiny-bitnet-b1.58-i2_s.gguf");
  try {
    const bytes = makeBitnetFixture({ arch: "bitnet-b1.58", weightType: "i2_s", hidden: 256, ffn: 512, tied: false, seed });
    await fs.writeFile(file, bytes);
    print(`wrote ${file} (${bytes.length} bytes, seed ${seed})\n`);
    print(formatInspectReport(await inspectFile(file)));

    await using gguf = await openGguf(file);
    const [ffn, embed] = [512, 256];
    const packed = await ggufWeightSource(gguf).ternary("blk.0.ffn_up.weight", ffn, embed);
    const loaded = ternaryFromCodes(packed.codes, ["ffn", "embed"], [ffn, embed], { scale: packed.scale });
    if (!loaded.ok) {
      throw loaded.error;
    }
    using w = loaded.value;
    const seq = 4;
    const xs = Array.from({ length: seq * embed }, (_, i) => Math.sin(i * 0.61 + seed));
    using x = tensor(xs, ["seq", "embed"], [seq, embed]);
    using dense = tensor(w.toFloat32(), ["ffn", "embed"], [ffn, embed]);
    using yInt = linear(x, w);
    using yFloat = matmul(x, dense);
    const a = yInt.toFloat32();
    const b = yFloat.toFloat32();
    let num = 0;
    let den = 0;
    for (let i = 0; i < a.length; i++) {
      num += ((a[i] ?? 0) - (b[i] ?? 0)) ** 2;
      den += (b[i] ?? 0) ** 2;
    }
    const trits = w.toInt32();
    const zeros = trits.filter((t) => t === 0).length / trits.length;
    print(`\nBitLinear blk.0.ffn_up: ${w.describe()}, γ = ${w.scale?.toPrecision(6)}, ${(zeros * 100).toFixed(1)}% zeros`);
    print(`  x ${x.describe()} → y ${yInt.describe()}`);
    print(`  int8 × ternary (exact int32 sums): ${fmt(a.subarray(0, 4))} …`);
    print(`  float reference:                   ${fmt(b.subarray(0, 4))} …`);
    print(`  NMSE of the int8 path against float: ${(num / den).toExponential(2)}`);

    using model = await loadModel(file);
    const prompt = [1, 2, 3];
    const result = await model.generate(prompt, { temperature: 0, maxTokens: 8, stopTokens: [] }).complete();
    print(`\nwhole model, greedy from token ids [${prompt.join(", ")}]: [${result.tokens.join(", ")}]`);
    print(`  (random weights, so the text means nothing; real checkpoints: see the README)`);
  } finally {
    if (dir !== undefined) {
      await fs.rm(dir, { recursive: true, force: true });
    }
  }
}

function fmt(values: Float32Array): string {
  return Array.from(values, (v) => v.toFixed(4).padStart(9)).join(" ");
}
