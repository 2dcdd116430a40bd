/**
 * Trains barbell's byte-level BPE tokenizer on the corpus that scripts/fetch-corpus.sh wrote, and writes
 * tokenizer.json + tokenizer_config.json (Hugging Face format) and tokenizer.gguf (only the tokenizer.ggml.*
 * metadata, no tensors) next to it. Prints the training stats and the corpus's bytes per token.
 *
 *   scripts/fetch-corpus.sh && npx tsx scripts/train-tokenizer.ts [vocab-size=4096] [corpus=data/kjv.txt]
 */
import fs from "node:fs/promises";
import path from "node:path";
import { writeGguf } from "../src/formats/gguf/index.js";
import { tokenizerFromJson } from "../src/model/tokenizer/index.js";
import {
  toGgufTokenizerMetadata,
  toTokenizerConfig,
  toTokenizerJson,
  trainByteBpe,
} from "../src/train/tokenizer.js";

async function main(): Promise<void> {
  const [sizeArg = "4096", corpus = "data/kjv.txt"] = process.argv.slice(2);
  const vocabSize = Number(sizeArg);
  const text = await fs.readFile(corpus, "utf8");
  const trained = trainByteBpe(text.split("\n"), { vocabSize });
  const json = toTokenizerJson(trained);
  const config = toTokenizerConfig(trained);
  const dir = path.dirname(corpus);
  await fs.writeFile(path.join(dir, "tokenizer.json"), JSON.stringify(json));
  await fs.writeFile(path.join(dir, "tokenizer_config.json"), JSON.stringify(config, null, 2));
  await fs.writeFile(path.join(dir, "tokenizer.gguf"), writeGguf({ metadata: toGgufTokenizerMetadata(trained) }));
  const ids = tokenizerFromJson(json, config).encode(text, { addBos: false });
  const bytes = Buffer.byteLength(text);
  process.stdout.write(`${JSON.stringify(trained.stats)}\n`);
  process.stdout.write(`${corpus}: ${bytes} bytes -> ${ids.length} tokens (${(bytes / ids.length).toFixed(2)} bytes/token)\n`);
  process.stdout.write(`wrote ${dir}/tokenizer.json, tokenizer_config.json, tokenizer.gguf\n`);
}

await main();
