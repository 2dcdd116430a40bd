/**
 * Chat messages and their validation. Messages come from outside (an API request), so a bad one is a
 * FormatError: "bad-value" for a wrong shape or role, "limit" for too many or too long.
 */
import { FormatError } from "../../core/errors.js";

/** Who wrote a message. */
export type ChatRole = "system" | "user" | "assistant";

/** One turn of a conversation. */
export interface ChatMessage {
  /** Who wrote it. */
  role: ChatRole;
  /** Its text. */
  content: string;
}

/** The roles a message may have. */
export const CHAT_ROLES: readonly ChatRole[] = Object.freeze(["system", "user", "assistant"]);
/** The most messages one conversation may hold. */
export const MAX_CHAT_MESSAGES = 4096;
/** The longest message content, in UTF-16 code units (4 Mi: far beyond any context window). */
export const MAX_MESSAGE_LENGTH = 4 * 1024 * 1024;

function isRole(value: unknown): value is ChatRole {
  return typeof value === "string" && (CHAT_ROLES as readonly string[]).includes(value);
}

/**
 * Checks that `messages` is an array of at most {@link MAX_CHAT_MESSAGES} objects, each with a known role and a
 * string content of at most {@link MAX_MESSAGE_LENGTH} code units. Accepts `unknown` so that parsed JSON can be
 * passed straight in; returns plain `{ role, content }` copies (extra fields dropped).
 *
 * @throws FormatError code "bad-value" for a wrong shape, role or content type; code "limit" for too many messages
 *   or too long a content.
 */
export function validateMessages(messages: unknown): ChatMessage[] {
  if (!Array.isArray(messages)) {
    throw new FormatError("bad-value", "[chat] messages must be an array");
  }
  if (messages.length > MAX_CHAT_MESSAGES) {
    throw new FormatError("limit", `[chat] at most ${MAX_CHAT_MESSAGES} messages, got ${messages.length}`);
  }
  return messages.map((message: unknown, i): ChatMessage => {
    if (typeof message !== "object" || message === null) {
      throw new FormatError("bad-value", `[chat] message ${i} must be an object`);
    }
    const { role, content } = message as { role?: unknown; content?: unknown };
    if (!isRole(role)) {
      const shown = typeof role === "string" ? JSON.stringify(role.slice(0, 40)) : typeof role;
      const expected = CHAT_ROLES.join(", ");
      throw new FormatError("bad-value", `[chat] message ${i} has role ${shown}; expected one of ${expected}`);
    }
    if (typeof content !== "string") {
      throw new FormatError("bad-value", `[chat] message ${i} content must be a string, got ${typeof content}`);
    }
    if (content.length > MAX_MESSAGE_LENGTH) {
      throw new FormatError(
        "limit",
        `[chat] message ${i} content is ${content.length} characters; the limit is ${MAX_MESSAGE_LENGTH}`,
      );
    }
    return { role, content };
  });
}
