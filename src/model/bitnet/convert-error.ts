/** The error of `barbell convert` (src/model/bitnet/convert.ts) for what the folder's own readers do not catch. */
import { BarbellError } from "../../core/errors.js";

export type ConvertErrorCode =
  /** An option outside its choices (weight type, head type, name). */
  | "bad-option"
  /** A tensor whose shape the chosen type cannot hold (row length not a multiple of its block), or a scale it cannot store. */
  | "unsupported"
  /** The tokenizer does not fit the model (more tokens than embedding rows). */
  | "tokenizer"
  /** Ctrl-C (the signal) stopped the conversion; nothing was written. */
  | "aborted";

/** A Hugging Face folder that cannot be converted as asked; nothing is written. */
export class ConvertError extends BarbellError {
  constructor(
    readonly code: ConvertErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "ConvertError";
  }
}
