/**
 * Byte-level helpers: GPT-2's byte ↔ printable-character map and the pre-tokenizer regexes (docs/BITNET.md §4.2,
 * §4.3).
 */

/** Llama-3's split pattern as written in its tokenizer.json (Oniguruma syntax). */
export const LLAMA3_ONIGURUMA_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|" +
  "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** GPT-2's split pattern (also the `ByteLevel` pre-tokenizer's built-in one), Oniguruma syntax. */
export const GPT2_ONIGURUMA_PATTERN =
  "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/**
 * An Oniguruma pattern of the two above as a JavaScript `u` pattern: `\s` becomes `\p{White_Space}` (JavaScript's
 * `\s` adds U+FEFF and misses U+0085, unlike Oniguruma and llama.cpp), and the inline `(?i:)` group, which
 * Node 20 lacks, is spelled out as two-case classes (llama.cpp's case-expanded form).
 */
function toJs(pattern: string): string {
  return pattern
    .replace("(?i:'s|'t|'re|'ve|'m|'ll|'d)", "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])")
    .replaceAll("\\s", "\\p{White_Space}")
    .replaceAll("\\S", "\\P{White_Space}");
}

/** Llama-3's split pattern for JavaScript (see `toJs`). */
export const LLAMA3_PATTERN = toJs(LLAMA3_ONIGURUMA_PATTERN);

/** GPT-2's split pattern for JavaScript (see `toJs`). */
export const GPT2_PATTERN = toJs(GPT2_ONIGURUMA_PATTERN);

/** Pre-tokenizer names barbell implements for byte-level BPE, with their patterns. */
export const PRE_TOKENIZER_PATTERNS = { llama3: LLAMA3_PATTERN, gpt2: GPT2_PATTERN } as const;

/** A pre-tokenizer name from `PRE_TOKENIZER_PATTERNS`. */
export type ByteLevelPreTokenizer = keyof typeof PRE_TOKENIZER_PATTERNS;

/** Splits text into pre-token words; text between matches (if a pattern leaves any) is kept as its own word. */
export function splitWords(text: string, pattern: RegExp): string[] {
  const out: string[] = [];
  let at = 0;
  pattern.lastIndex = 0;
  for (const m of text.matchAll(pattern)) {
    const start = m.index;
    if (start > at) {
      out.push(text.slice(at, start));
    }
    if (m[0].length > 0) {
      out.push(m[0]);
    }
    at = start + m[0].length;
  }
  if (at < text.length) {
    out.push(text.slice(at));
  }
  return out;
}

/** GPT-2's table: byte → one printable character; bytes that print as themselves keep their code point. */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const out: string[] = [];
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    out.push(String.fromCharCode(printable ? b : next++));
  }
  return out;
})();

/** Inverse of `BYTE_TO_CHAR`, indexed by UTF-16 code unit (all mapped characters are below U+0144). */
const CHAR_TO_BYTE: Int16Array = (() => {
  const out = new Int16Array(0x144).fill(-1);
  BYTE_TO_CHAR.forEach((c, b) => {
    out[c.charCodeAt(0)] = b;
  });
  return out;
})();

const utf8 = new TextEncoder();

/** UTF-8 bytes of `text` written as byte-level characters (`" the"` → `"Ġthe"`). */
export function toByteChars(text: string): string {
  let s = "";
  for (const b of utf8.encode(text)) {
    s += BYTE_TO_CHAR[b] ?? "";
  }
  return s;
}

/**
 * Bytes of a byte-level token string. A character outside the table (only in malformed vocabularies) stands
 * for its own UTF-8 bytes rather than being dropped.
 */
export function fromByteChars(token: string): Uint8Array {
  const out: number[] = [];
  for (const ch of token) {
    const code = ch.charCodeAt(0);
    const b = ch.length === 1 && code < CHAR_TO_BYTE.length ? (CHAR_TO_BYTE[code] ?? -1) : -1;
    if (b >= 0) {
      out.push(b);
    } else {
      out.push(...utf8.encode(ch));
    }
  }
  return Uint8Array.from(out);
}
