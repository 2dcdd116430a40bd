import { describe, expect, it } from "vitest";
import { FormatError } from "../../src/core/errors.js";
import { MAX_CHAT_MESSAGES, MAX_MESSAGE_LENGTH, validateMessages } from "../../src/model/chat/messages.js";

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return error instanceof FormatError ? error.code : "not a FormatError";
  }
  return undefined;
}

describe("validateMessages", () => {
  it("accepts the three roles and returns plain copies without extra fields", () => {
    const input = [
      { role: "system", content: "s", name: "x" },
      { role: "user", content: "" },
      { role: "assistant", content: "a" },
    ];
    expect(validateMessages(input)).toEqual([
      { role: "system", content: "s" },
      { role: "user", content: "" },
      { role: "assistant", content: "a" },
    ]);
  });

  it.each([
    ["a non-array", { role: "user", content: "x" }],
    ["a null message", [null]],
    ["a string message", ["hi"]],
    ["an unknown role", [{ role: "tool", content: "x" }]],
    ["a missing role", [{ content: "x" }]],
    ["a capitalized role", [{ role: "User", content: "x" }]],
    ["a numeric content", [{ role: "user", content: 1 }]],
    ["an array content", [{ role: "user", content: [{ type: "text", text: "x" }] }]],
  ])("rejects %s with a bad-value FormatError", (_name, input) => {
    expect(codeOf(() => validateMessages(input))).toBe("bad-value");
  });

  it("rejects too many messages and too long a content with a limit FormatError", () => {
    const many = Array.from({ length: MAX_CHAT_MESSAGES + 1 }, () => ({ role: "user", content: "x" }));
    expect(codeOf(() => validateMessages(many))).toBe("limit");
    expect(codeOf(() => validateMessages([{ role: "user", content: "x".repeat(MAX_MESSAGE_LENGTH + 1) }]))).toBe(
      "limit",
    );
    expect(codeOf(() => validateMessages(many.slice(1)))).toBeUndefined();
  });

  it("names the message index in its error", () => {
    expect(() => validateMessages([{ role: "user", content: "ok" }, { role: "bot", content: "x" }])).toThrow(
      /message 1/,
    );
  });
});
