/** How the model actor's error codes become HTTP answers (src/serve/http/errors.ts). */
import { describe, expect, it } from "vitest";
import { fromServeError } from "../../../src/serve/http/errors.js";

describe("fromServeError", () => {
  it.each([
    ["bad-request", 400, "invalid_request_error"],
    ["overloaded", 429, "rate_limit_error"],
    ["unavailable", 503, "server_error"],
    ["released", 503, "server_error"],
    ["timeout", 504, "server_error"],
    ["crashed", 500, "server_error"],
  ])("should answer %s with %i (%s)", (code, status, type) => {
    const e = fromServeError(code, "m");
    expect(e.status).toBe(status);
    expect(e.body().error).toMatchObject({ message: "m", type });
  });
});
