/** The command line's own errors: each names the flag or file, what was expected and what to do. */
import { BarbellError } from "../core/errors.js";

export type CliErrorCode =
  | "bad-flag" // flags that do not go together, or a value that only the model can judge (--ctx above its context)
  | "prompt" // no prompt, or more than one source for it
  | "context-full" // the prompt and --max-tokens do not fit the context
  | "listen"; // the server cannot listen on the address and port it was given

/** A problem with what was typed on the command line; main() prints it as one line and exits with status 1. */
export class CliError extends BarbellError {
  constructor(
    readonly code: CliErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "CliError";
  }
}
