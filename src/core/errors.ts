/**
 * One error class per domain, each with a string `code` that callers can switch on.
 * Messages start with `[component]` so a log line says where it came from.
 */
export abstract class BarbellError extends Error {
  abstract readonly code: string;
}

export type ShapeErrorCode =
  | "dim-mismatch" // two tensors disagree on the size of a named dimension
  | "dim-names" // the dimension names are not the ones the operation needs
  | "rank" // wrong number of dimensions
  | "bounds" // an index or range falls outside a dimension
  | "size"; // a size is not a positive safe integer, or element counts do not agree

/** A shape or dimension-name disagreement found at a public boundary. */
export class ShapeError extends BarbellError {
  constructor(
    readonly code: ShapeErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "ShapeError";
  }
}

export type ValueErrorCode =
  | "not-binary" // a value that must be ±1 is not
  | "not-ternary" // a value that must be in {-1, 0, +1} is not
  | "non-finite" // NaN or ±Infinity where a finite number is required
  | "out-of-range"; // a value outside the range a type can hold

/** A value that breaks a type's value constraint; says which index holds which bad value. */
export class ValueError extends BarbellError {
  constructor(
    readonly code: ValueErrorCode,
    message: string,
    readonly index?: number,
    readonly value?: number,
  ) {
    super(message);
    this.name = "ValueError";
  }
}

export type UsageErrorCode =
  | "disposed" // the tensor or backend was already disposed
  | "dtype" // the operation does not accept this dtype
  | "backend-mismatch" // operands live on different backends
  | "unsupported"; // the backend has no kernel for this operation

/** An API used in a way that cannot work (disposed handles, wrong dtype at runtime). */
export class UsageError extends BarbellError {
  constructor(
    readonly code: UsageErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "UsageError";
  }
}

export type FormatErrorCode =
  | "bad-magic"
  | "bad-version"
  | "truncated" // the data ends before a declared structure does
  | "limit" // a count, length or size exceeds a named limit
  | "overflow" // a product or sum of declared sizes overflows
  | "bad-value-type" // unknown metadata value type
  | "bad-tensor-type" // unknown or unsupported tensor type
  | "bad-dims" // zero, too many or inconsistent dimensions
  | "bad-alignment" // alignment value or tensor offset not aligned
  | "out-of-file" // tensor data outside the file or data section
  | "overlap" // two tensors share bytes
  | "duplicate" // duplicate metadata key or tensor name
  | "bad-utf8" // a string is not valid UTF-8
  | "bad-value" // a well-formed value that is not allowed (bool not 0/1, wrong key type)
  | "implausible" // declared sizes cannot be true for a file of this length
  | "bad-block" // block data that fails to decode (block size mismatch, bad scale)
  | "bad-tag" // unknown union tag or enum value (BAREWire)
  | "trailing" // bytes left after a complete message (BAREWire)
  | "non-canonical" // an integer or padding not in its one canonical encoding (BAREWire)
  | "type-mismatch"; // a well-formed tensor whose dtype, dimension names or sizes are not the expected ones

/** Hostile or broken bytes from outside: files, messages. */
export class FormatError extends BarbellError {
  constructor(
    readonly code: FormatErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "FormatError";
  }
}

export type BackendErrorCode =
  | "unavailable" // no requested backend can run here (the message lists every reason)
  | "fallback" // strict mode: a kernel would have run on a later backend
  | "init-failed"; // a backend probed fine but failed to start

/** Backend selection and fallback failures. */
export class BackendError extends BarbellError {
  constructor(
    readonly code: BackendErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "BackendError";
  }
}

export type FileErrorCode =
  | "missing" // no such file or folder
  | "not-a-file" // a folder, FIFO, socket or device where a regular file is needed (or a file where a folder is)
  | "unreadable" // permissions or another I/O failure
  | "too-large"; // longer than the named limit for what it should hold

/** A file given by the user that cannot be used; the message names the file as given, never a stack. */
export class FileError extends BarbellError {
  constructor(
    readonly code: FileErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "FileError";
  }
}
