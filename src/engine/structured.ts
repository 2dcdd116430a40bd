/**
 * Structured output for the engine: a generation's `grammar` / `jsonSchema` / `json` option → a compiled
 * Grammar (cached by its text, so a repeated schema starts warm), the per-token constraint the decode loop
 * applies, and the parsed, typed result of `complete()` (docs/grammar.md, "Generation API").
 */
import type { FromSchema, JSONSchema } from "json-schema-to-ts";
import { UsageError } from "../core/errors.js";
import {
  applyTokenMask,
  compileGbnf,
  compileJsonSchema,
  Grammar,
  GrammarError,
  GrammarIncompleteError,
  type GrammarMatcher,
} from "../model/grammar/index.js";
import type { Tokenizer } from "../model/tokenizer/types.js";
import type { GeneratedToken, GenerationResult } from "./generate.js";

/** Compiled grammars kept per process, keyed by their GBNF text or schema JSON (least recently used evicted). */
export const GRAMMAR_CACHE_SIZE = 8;
/** Largest GBNF text or schema JSON used as a cache key (longer ones are compiled each time). */
export const MAX_GRAMMAR_KEY_CHARS = 256 * 1024;

/** The structured-output options of GenerateOptions (at most one of them). */
export interface StructuredOptions {
  /** A compiled Grammar (compileGbnf, compileJsonSchema) or GBNF text: the output is a sentence of it. */
  readonly grammar?: Grammar | string;
  /** A JSON Schema: the output is JSON the schema accepts; `complete()` adds `parsed`. */
  readonly jsonSchema?: object;
  /** Any JSON object (OpenAI's json_object mode); `complete()` adds `parsed`. */
  readonly json?: boolean;
}

/** A JSON object of unknown shape (the parsed type of `json: true`). */
export type JsonObject = { [key: string]: unknown };

/** The result of a generation under `jsonSchema` or `json`: the text and its JSON value. */
export interface StructuredResult<T> extends GenerationResult {
  readonly parsed: T;
}

/** A generation under `jsonSchema` or `json`: iterate it for tokens, or `complete()` for the parsed result. */
export interface StructuredGeneration<T> extends AsyncIterable<GeneratedToken> {
  complete(): Promise<StructuredResult<T>>;
}

/** Options with a JSON Schema of type S (the overloads of generate and chat infer S from a schema `as const`). */
export type SchemaOptions<O, S> = Omit<O, "jsonSchema"> & { readonly jsonSchema: S };

/** The parsed type: the caller's T when given, else the type json-schema-to-ts infers from a schema `as const`. */
export type SchemaValue<T, S> = unknown extends T ? (S extends JSONSchema ? FromSchema<S> : unknown) : T;

const cache = new Map<string, Grammar>();

function cached(key: string | undefined, compile: () => Grammar): Grammar {
  if (key === undefined || key.length > MAX_GRAMMAR_KEY_CHARS) {
    return compile();
  }
  const known = cache.get(key);
  if (known !== undefined) {
    cache.delete(key);
    cache.set(key, known);
    return known;
  }
  const grammar = compile();
  cache.set(key, grammar);
  if (cache.size > GRAMMAR_CACHE_SIZE) {
    cache.delete(cache.keys().next().value as string);
  }
  return grammar;
}

function schemaKey(schema: unknown): string | undefined {
  try {
    return "schema:" + JSON.stringify(schema);
  } catch {
    return undefined; // a cycle or a BigInt: compileJsonSchema refuses it with a GrammarError
  }
}

const ANY_OBJECT = { type: "object" } as const;

/**
 * The grammar a generation's options ask for, or undefined. At most one of grammar, jsonSchema and json; stop
 * strings are refused next to them (the grammar decides where the output ends, and a stop string could cut a
 * JSON document in half).
 *
 * @throws UsageError "unsupported" for two of them, or stop strings with one; GrammarError for a grammar or
 *   schema the engine cannot use.
 */
export function resolveGrammar(options: StructuredOptions & { readonly stop?: readonly string[] }): Grammar | undefined {
  const given = [options.grammar !== undefined, options.jsonSchema !== undefined, options.json === true].filter(Boolean).length;
  if (given === 0) {
    return undefined;
  }
  if (given > 1) {
    throw new UsageError("unsupported", "[generate] give at most one of grammar, jsonSchema and json");
  }
  if (options.stop !== undefined && options.stop.length > 0) {
    throw new UsageError("unsupported", "[generate] stop strings cannot be combined with a grammar, jsonSchema or json: the grammar decides where the output ends");
  }
  const { grammar, jsonSchema } = options;
  if (grammar instanceof Grammar) {
    return grammar;
  }
  if (typeof grammar === "string") {
    return cached("gbnf:" + grammar, () => compileGbnf(grammar));
  }
  if (grammar !== undefined) {
    throw new UsageError("unsupported", "[generate] grammar must be a Grammar or GBNF text");
  }
  const schema = jsonSchema ?? ANY_OBJECT;
  return cached(schemaKey(schema), () => compileJsonSchema(schema));
}

/**
 * The options with their grammar compiled (`grammar` a Grammar; jsonSchema and json removed), so a bad grammar
 * or schema fails when the generation is created rather than when it is consumed.
 */
export function compileOptions<O extends StructuredOptions & { readonly stop?: readonly string[] }>(options: O): O {
  const grammar = resolveGrammar(options);
  if (grammar === undefined) {
    return options;
  }
  const { jsonSchema: _schema, json: _json, ...rest } = options;
  return { ...rest, grammar } as O;
}

/** Whether the options ask for JSON output (`complete()` then adds `parsed`). */
export function wantsJson(options: StructuredOptions): boolean {
  return options.jsonSchema !== undefined || options.json === true;
}

/**
 * One generation's grammar state in the decode loop. Stop tokens (EOS, end of turn, the caller's stopTokens)
 * are allowed only when the text is a complete sentence and are never fed to the grammar.
 */
export class GrammarConstraint {
  readonly #matcher: GrammarMatcher;
  readonly #stops: readonly number[];
  /** The grammar's own stop tokens (EOS, end of turn) that do not stop this generation (`ignoreEos`): never allowed. */
  readonly #banned: readonly number[];
  readonly #mask: Uint32Array;

  constructor(grammar: Grammar, tokenizer: Tokenizer, stops: Iterable<number>) {
    this.#matcher = grammar.matcher(tokenizer);
    this.#mask = new Uint32Array(this.#matcher.maskWords);
    this.#stops = [...stops].filter((t) => Number.isInteger(t) && t >= 0 && t < this.#mask.length * 32);
    this.#banned = grammar.forTokenizer(tokenizer).vocab.stops.filter((t) => !this.#stops.includes(t));
  }

  isComplete(): boolean {
    return this.#matcher.isComplete();
  }

  /** True when the grammar admits no more bytes (the output is complete and nothing may follow). */
  isFinished(): boolean {
    return this.#matcher.isFinished();
  }

  /**
   * Masks `logits` in place to the tokens allowed next, `remaining` tokens (this one included) being left.
   *
   * @throws GrammarIncompleteError "no-room" when no token is allowed (the budget cannot fit the grammar).
   */
  apply(logits: Float32Array, remaining: number, text: string, generated: number): void {
    const mask = this.#matcher.mask(this.#mask, { remainingTokens: remaining });
    const complete = this.#matcher.isComplete();
    for (const t of this.#stops) {
      const w = t >>> 5;
      mask[w] = complete ? ((mask[w] ?? 0) | (1 << (t & 31))) >>> 0 : ((mask[w] ?? 0) & ~(1 << (t & 31))) >>> 0;
    }
    for (const t of this.#banned) {
      mask[t >>> 5] = ((mask[t >>> 5] ?? 0) & ~(1 << (t & 31))) >>> 0;
    }
    if (applyTokenMask(logits, mask) === 0) {
      throw new GrammarIncompleteError("no-room", text, generated);
    }
  }

  /** Advances by a sampled text token (not a stop token). */
  accept(token: number): void {
    this.#matcher.accept(token);
  }
}

/**
 * Adds `parsed` (the text as JSON) to a generation's result.
 *
 * @throws GrammarError "rejected" from `complete()` if the text is not JSON (a grammar that is not JSON's).
 */
export function withParsed<T>(generation: AsyncIterable<GeneratedToken> & { complete(): Promise<GenerationResult> }): StructuredGeneration<T> {
  return {
    [Symbol.asyncIterator]: () => generation[Symbol.asyncIterator](),
    async complete() {
      const result = await generation.complete();
      let parsed: T;
      try {
        parsed = JSON.parse(result.text) as T;
      } catch {
        throw new GrammarError("rejected", "[generate] the constrained output does not parse as JSON");
      }
      return { ...result, parsed };
    },
  };
}
