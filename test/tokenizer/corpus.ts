/**
 * Text for comparing barbell's tokenizers with `@huggingface/tokenizers`: hand-picked cases plus seeded random
 * mixtures of the character classes that pre-tokenizers and merges treat differently.
 */
import fc from "fast-check";

/** Hand-picked cases: scripts, emoji, combining marks, code, whitespace runs, numbers, contractions. */
export const HANDPICKED: readonly string[] = [
  "",
  " ",
  "  ",
  "\n",
  "\n\n\n",
  "\r\n",
  "\t",
  "Hello world",
  "Hello, world! How are you today?",
  " leading space",
  "trailing space ",
  "   three leading and trailing   ",
  "multiple   spaces    between     words",
  "line one\nline two\n\nline four\r\nwindows",
  "tabs\tand\t\tmore\ttabs",
  "mixed \t \n \r\n whitespace \u00a0nbsp\u3000ideographic\u2003em\u202fnarrow",
  "NEL\u0085next and BOM\ufeffinside and LS\u2028PS\u2029",
  "I'm sure you've seen it, they'll say we'd done it, it's DON'T WON'T I'M",
  "'s 't 're 've 'm 'll 'd 'S 'T 'RE",
  "long s 'ſ and kelvin 'K and dotted 'İ",
  "numbers 1 12 123 1234 12345 123456 1234567 3.14159 -42 1e10 0x1F",
  "phone 555-123-4567, year 2024, ٣٤٥ arabic-indic, ૧૨૩ gujarati, Ⅻ roman, ½ fraction",
  "你好，世界！这是一个测试。",
  "日本語のテキストとカタカナ、ひらがな。",
  "한국어 텍스트도 있습니다.",
  "Ελληνικά κείμενα και Русский текст и українська мова",
  "עברית וגם العربية مع تشكيل: مَرْحَبًا",
  "हिन्दी में लिखा पाठ और தமிழ் உரை",
  "ภาษาไทยไม่มีช่องว่างระหว่างคำ",
  "emoji 😀😃😄 and families 👨‍👩‍👧‍👦 and flags 🇫🇷🇯🇵 and skin 👍🏽",
  "keycaps 1️⃣ #️⃣ and variation ❤️ ☺︎",
  "combining: e\u0301 a\u0300\u0301\u0302 n\u0303 Z\u0335\u0336\u0337 q\u20dd",
  "precomposed é vs decomposed e\u0301",
  "zero\u200bwidth\u200cjoiners\u200d",
  "function add(a, b) {\n  return a + b;\n}\n",
  "def f(x):\n    if x > 0:\n        return x ** 2\n    return -x\n",
  "const re = /^[a-z]+$/giu; // regex\nlet s = `template ${x}`;",
  "<div class=\"main\">&amp; &lt;tag&gt;</div>",
  "SELECT * FROM users WHERE id = 42 AND name LIKE '%o%';",
  "https://example.com/path?query=1&other=two#frag",
  "email: someone@example.org, path: C:\\Users\\me\\file.txt",
  "punctuation!!! ??? ... --- ___ *** ### @@@ $$$ %%% ^^^ &&& ((( ))) [[[ ]]] {{{ }}}",
  "quotes “curly” ‘single’ «guillemets» „low“",
  "math ∑ ∫ √ ∞ ≈ ≠ ≤ ≥ ∀ ∃ ∈ ∉ ⊂ ⊃ ∧ ∨",
  "currency € £ ¥ ₹ ₽ ₿ $",
  "box ─│┌┐└┘├┤┬┴┼ and blocks ░▒▓█",
  "private use \ue000\uf8ff and supplementary 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𠀀𪚥",
  "control chars \u0000\u0001\u0007\u001b[0m\u007f end",
  "soft\u00adhyphen and replacement \ufffd char",
  "The quick brown fox jumps over the lazy dog. THE QUICK BROWN FOX. tHe QuIcK bRoWn FoX.",
  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
  "                                                                        wide gap",
  "\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n",
  "antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
  "!@#$%^&*()_+-=[]{}|;':\",./<>?`~",
];

/** Cases with special-token text (Llama-3 and Llama-2 spellings) for parse-special comparisons. */
export const WITH_SPECIALS: readonly string[] = [
  "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi there!<|eot_id|>",
  "<|start_header_id|>assistant<|end_header_id|>\n\n",
  "text<|eot_id|>more<|end_of_text|>",
  "<|reserved_special_token_0|><|reserved_special_token_10|><|reserved_special_token_100|>",
  "<|eot_id|<|eot_id|>|> nested-looking",
  "<s>hello</s> world <unk> <s> </s>",
  "<|begin_of_text|>",
  "a<s>b</s>c",
];

/** Character pools weighted towards what splits differently: letters, digits, punctuation, whitespace kinds. */
const POOLS: readonly string[][] = [
  Array.from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"),
  Array.from("0123456789٣૧Ⅻ½"),
  Array.from("'\".,;:!?-_()[]{}<>/\\|@#$%^&*+=~`"),
  [" ", " ", " ", "  ", "\n", "\n\n", "\r\n", "\t", "\u00a0", "\u3000", "\u0085", "\ufeff", "\u2028"],
  Array.from("你好世界日本語한국어ÄÖÜßéèçñøåœΩЖщعבה"),
  ["😀", "👍🏽", "👨‍👩‍👧", "🇫🇷", "❤️", "𝔘", "𠀀", "e\u0301", "\u0301", "\u200d", "\u00ad"],
  ["'s", "'t", "'re", "'ll", "'D", "'ſ"],
];

/** Seeded random strings drawn from `POOLS` (deterministic: same seed, same strings). */
export function generatedCorpus(count: number, seed: number): string[] {
  const piece = fc
    .integer({ min: 0, max: POOLS.length - 1 })
    .chain((p) => fc.constantFrom(...(POOLS[p] ?? [" "])));
  const text = fc.array(piece, { minLength: 0, maxLength: 40 }).map((parts) => parts.join(""));
  return fc.sample(text, { numRuns: count, seed });
}

/** An arbitrary for property tests: the pools plus any code point (lone surrogates excluded). */
export const unicodeText: fc.Arbitrary<string> = fc
  .array(
    fc.oneof(
      fc.integer({ min: 0, max: POOLS.length - 1 }).chain((p) => fc.constantFrom(...(POOLS[p] ?? [" "]))),
      fc.string({ unit: "binary", maxLength: 4 }),
    ),
    { maxLength: 30 },
  )
  .map((parts) => parts.join(""));

/** What a string becomes after a round trip through UTF-8: each lone surrogate turns into U+FFFD. */
export function wellFormed(s: string): string {
  return s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "\ufffd");
}
