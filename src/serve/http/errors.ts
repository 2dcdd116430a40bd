/** HTTP errors in OpenAI's shape: `{ error: { message, type, param, code } }`. Messages never carry stack traces. */

/** OpenAI error types the server uses. */
export type ApiErrorType = "invalid_request_error" | "authentication_error" | "permission_error" | "not_found_error" | "rate_limit_error" | "server_error";

/** An error that becomes one HTTP response. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: ApiErrorType,
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
    this.name = "ApiError";
  }

  body(): ApiErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export interface ApiErrorBody {
  readonly error: { readonly message: string; readonly type: string; readonly param: string | null; readonly code: string | null };
}

/** A 400 naming the request field at fault. */
export function badRequest(param: string | null, message: string, code = "invalid_value"): ApiError {
  return new ApiError(400, message, "invalid_request_error", param, code);
}

/** HTTP status and error of a model stream's `error` item (ServeErrorCode) that ended a request before any output. */
export function fromServeError(code: string, message: string): ApiError {
  switch (code) {
    case "bad-request":
      return new ApiError(400, message, "invalid_request_error", null, "invalid_value");
    case "unavailable":
    case "released":
      return new ApiError(503, message, "server_error", null, code);
    case "timeout":
      return new ApiError(504, message, "server_error", null, "timeout");
    case "overloaded":
      // The model actor's own bound (parallel + queue) refused it: the same answer as the admission queue.
      return new ApiError(429, message, "rate_limit_error", null, "overloaded");
    default:
      return new ApiError(500, message, "server_error", null, code);
  }
}
