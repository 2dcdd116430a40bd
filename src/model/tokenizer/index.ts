/** Tokenizers: byte-level BPE (Llama-3, GPT-2) and SentencePiece BPE (Llama-2), from GGUF or tokenizer.json. */
export * from "./types.js";
export { tokenizerFromGguf, tokenizerTablesFromGguf, SUPPORTED_GGUF_TOKENIZER_MODELS, EOT_TEXTS } from "./gguf.js";
export { tokenizerFromJson, tokenizerTablesFromJson } from "./hf-json.js";
export { tokenizerJsonFiles, type TokenizerJsonFiles } from "./hf-json-write.js";
export { ByteBpeTokenizer, type ByteBpeTables } from "./byte-bpe.js";
export { SpmTokenizer, type SpmTables, type SpmRanking, type SpacePrefix } from "./spm.js";
export { VocabTokenizer, type VocabTables } from "./base.js";
export { mergePieces, type PairRank } from "./merge.js";
export {
  BYTE_TO_CHAR,
  GPT2_PATTERN,
  GPT2_ONIGURUMA_PATTERN,
  LLAMA3_PATTERN,
  LLAMA3_ONIGURUMA_PATTERN,
  PRE_TOKENIZER_PATTERNS,
  splitWords,
  toByteChars,
  fromByteChars,
  type ByteLevelPreTokenizer,
} from "./pretokenize.js";
