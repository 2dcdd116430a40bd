/**
 * Small Hugging Face BitNet folders for the conversion tests: the project's seeded HF fixture
 * (src/model/bitnet/hf-fixture.ts) plus a real byte-level BPE tokenizer trained on a few lines (tokenizer.json,
 * tokenizer_config.json with a chat template), sized to the fixture's vocabulary.
 */
import fs from "node:fs/promises";
import path from "node:path";
import { writeHfBitnetFixture, type HfBitnetFixtureOptions } from "../../src/model/bitnet/hf-fixture.js";
import { toTokenizerConfig, toTokenizerJson, trainByteBpe } from "../../src/train/tokenizer.js";

export const CHAT_TEMPLATE =
  "{{ bos_token }}{% for m in messages %}{{ m['role'] | capitalize }}: {{ m['content'] | trim }}<|eot_id|>{% endfor %}" +
  "{% if add_generation_prompt %}Assistant: {% endif %}";

const LINES = [
  "In the beginning God created the heaven and the earth.",
  "And the earth was without form, and void; and darkness was upon the face of the deep.",
  "And God said, Let there be light: and there was light.",
  "And God saw the light, that it was good: and God divided the light from the darkness.",
];

/** Texts the tokenizer comparisons encode (words it learned, words it did not, digits, specials, emoji). */
export const SAMPLE_TEXTS = [
  "And God said, Let there be light",
  "the firmament 1234567 <|eot_id|> über café 🙂",
  "  leading spaces\n\nand blank lines\t",
];

/** Writes a seeded HF BitNet folder (with a tokenizer unless `tokenizer: false`) into a new folder under `root`. */
export async function writeFolder(
  root: string,
  name: string,
  opts: HfBitnetFixtureOptions & { tokenizer?: boolean } = {},
): Promise<string> {
  const dir = path.join(root, name);
  await fs.mkdir(dir, { recursive: true });
  const { tokenizer, ...fixture } = opts;
  await writeHfBitnetFixture(dir, fixture);
  if (tokenizer !== false) {
    const trained = trainByteBpe(LINES, {
      vocabSize: fixture.vocab ?? 300,
      specialTokens: ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"],
      minFrequency: 1,
    });
    await fs.writeFile(path.join(dir, "tokenizer.json"), JSON.stringify(toTokenizerJson(trained)));
    const config = { ...toTokenizerConfig(trained), chat_template: CHAT_TEMPLATE };
    await fs.writeFile(path.join(dir, "tokenizer_config.json"), JSON.stringify(config));
  }
  return dir;
}

/** Relative L2 distance of a from b. */
export function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += ((a[i] ?? 0) - (b[i] ?? 0)) ** 2;
    den += (b[i] ?? 0) ** 2;
  }
  return Math.sqrt(num / den);
}

/** Every file name in a folder (to check that a failed conversion left nothing, not even a temp file). */
export async function listing(dir: string): Promise<string[]> {
  return (await fs.readdir(dir)).sort();
}
