/**
 * Constrained decoding: GBNF grammars and JSON Schemas → token masks over a tokenizer's vocabulary
 * (docs/grammar.md).
 */
export { GrammarError, GrammarIncompleteError, type GrammarErrorCode, type GrammarIncompleteReason } from "./errors.js";
export * from "./limits.js";
export { parseGbnf } from "./gbnf.js";
export type { Expr, GrammarAst } from "./ast.js";
export { lowerGrammar, type FlatGrammar } from "./lower.js";
export { Grammar, compileGbnf } from "./grammar.js";
export { compileJsonSchema, jsonSchemaToGbnf, gbnfLiteral } from "./schema.js";
export { TokenGrammar, type MaskStats } from "./mask.js";
export { GrammarMatcher, type MaskOptions } from "./matcher.js";
export { grammarVocab, tokenBytes, type GrammarVocab } from "./vocab.js";
export { applyTokenMask, sampleConstrained, type ConstrainedScratch } from "./sample.js";
