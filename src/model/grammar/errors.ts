/** The error of the constrained-decoding engine (src/model/grammar): grammars, schemas, matching. */
import { BarbellError } from "../../core/errors.js";

export type GrammarErrorCode =
  /** GBNF text that does not parse (the message gives line and column). */
  | "syntax"
  /** A rule referenced but never defined. */
  | "undefined-rule"
  /** A rule defined twice. */
  | "duplicate-rule"
  /** No rule named by the start symbol (`root` by default). */
  | "no-root"
  /** A rule that can reach itself without consuming a byte: a top-down matcher would never terminate. */
  | "left-recursion"
  /** A size, count, depth or work bound (a named constant in limits.ts) was exceeded. */
  | "limit"
  /** A JSON Schema keyword or form the compiler does not support (it refuses rather than ignoring it). */
  | "unsupported-schema"
  /** A JSON Schema that is not well formed (a keyword with a value of the wrong kind). */
  | "bad-schema"
  /** A token the grammar does not allow in the current state, or any token after the grammar finished. */
  | "rejected"
  /** A token id outside the vocabulary, or a mask buffer of the wrong size. */
  | "bad-token";

/** A grammar, schema or token the engine cannot use; never carries paths or stacks. */
export class GrammarError extends BarbellError {
  constructor(
    readonly code: GrammarErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "GrammarError";
  }
}

/** Why a constrained generation ended before its grammar was complete. */
export type GrammarIncompleteReason =
  /** `maxTokens` was reached. */
  | "length"
  /** The context (KV cache) was full. */
  | "context"
  /** The caller's AbortSignal fired. */
  | "abort"
  /** The budget left no room for the grammar's shortest completion: no token could be allowed. */
  | "no-room";

/**
 * A constrained generation (grammar, jsonSchema or json) that ended before the text was a complete sentence of
 * its grammar. Half a JSON document is never returned as a result; `text` keeps what was generated, for logs.
 */
export class GrammarIncompleteError extends BarbellError {
  readonly code = "grammar-incomplete";
  constructor(
    readonly reason: GrammarIncompleteReason,
    /** The text generated before the end (not a complete sentence of the grammar). */
    readonly text: string,
    /** Tokens generated. */
    readonly tokens: number,
  ) {
    super(
      reason === "no-room"
        ? `[generate] the grammar cannot be completed in the ${tokens === 0 ? "" : "remaining "}token budget (raise maxTokens or the context)`
        : `[generate] the generation ended (${reason === "length" ? "maxTokens reached" : reason === "context" ? "context full" : "aborted"}) after ${tokens} tokens, before the grammar was complete`,
    );
    this.name = "GrammarIncompleteError";
  }
}
