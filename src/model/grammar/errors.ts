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
