/**
 * Compiled grammars: GBNF text (or a JSON Schema, through schema.ts) → a byte-level grammar, bound to a
 * tokenizer's vocabulary for token masks. Everything a grammar learns (stacks, transitions, per-position token
 * classes, masks) is kept on it and shared by all its matchers, so the second request with the same schema
 * starts warm.
 */
import type { Tokenizer } from "../tokenizer/types.js";
import { parseGbnf } from "./gbnf.js";
import { lowerGrammar, type FlatGrammar } from "./lower.js";
import { TokenGrammar } from "./mask.js";
import { GrammarMatcher } from "./matcher.js";
import { EMPTY_SET, StackStore } from "./stacks.js";
import { grammarVocab } from "./vocab.js";

const utf8 = new TextEncoder();

export class Grammar {
  readonly flat: FlatGrammar;
  readonly store: StackStore;
  /** The GBNF text it was compiled from. */
  readonly source: string;
  readonly #bound = new WeakMap<Tokenizer, TokenGrammar>();
  #start: number | undefined;

  /** @internal Use `compileGbnf` or `compileJsonSchema`. */
  constructor(source: string, flat: FlatGrammar) {
    this.source = source;
    this.flat = flat;
    this.store = new StackStore(flat);
  }

  /** The state before any byte (computed on first use; may throw GrammarError "limit" for a hostile grammar). */
  get start(): number {
    this.#start ??= this.store.start();
    return this.#start;
  }

  /** Whether the whole text is a sentence of the grammar (as llama.cpp's gbnf-validator decides). */
  accepts(text: string | Uint8Array): boolean {
    const end = this.store.stepBytes(this.start, typeof text === "string" ? utf8.encode(text) : text);
    return end !== EMPTY_SET && this.store.hasDone(end);
  }

  /** Whether the text can be continued into a sentence of the grammar. */
  acceptsPrefix(text: string | Uint8Array): boolean {
    return this.store.stepBytes(this.start, typeof text === "string" ? utf8.encode(text) : text) !== EMPTY_SET;
  }

  /** The grammar over a tokenizer's vocabulary (built once per tokenizer). */
  forTokenizer(tokenizer: Tokenizer): TokenGrammar {
    let g = this.#bound.get(tokenizer);
    if (g === undefined) {
      g = new TokenGrammar(this.store, grammarVocab(tokenizer));
      this.#bound.set(tokenizer, g);
    }
    return g;
  }

  /** A fresh matcher over the tokenizer's vocabulary. */
  matcher(tokenizer: Tokenizer): GrammarMatcher {
    return new GrammarMatcher(this.forTokenizer(tokenizer), this.start);
  }
}

/**
 * Compiles GBNF text.
 *
 * @throws GrammarError "syntax", "duplicate-rule", "no-root", "undefined-rule", "left-recursion" or "limit".
 */
export function compileGbnf(text: string, options: { root?: string } = {}): Grammar {
  const grammar = new Grammar(text, lowerGrammar(parseGbnf(text, options.root ?? "root")));
  void grammar.start; // expand the start state now, so a hostile grammar fails here rather than mid-generation
  return grammar;
}
