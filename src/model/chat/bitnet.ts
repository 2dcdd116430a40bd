/**
 * The chat format of Microsoft's BitNet b1.58 2B-4T reference generator (BITNET.md §1.8 #1), the recommended
 * default: BOS, then for each message the tokens of a role header and, tokenized separately, of the stripped
 * content, then `<|eot_id|>`; finally the tokens of "Assistant: " to prompt the reply. Because header and content
 * are tokenized apart, "User: " stays three tokens instead of its space merging into the first word.
 */
import { ValueError } from "../../core/errors.js";
import type { ChatMessage, ChatRole } from "./messages.js";
import { validateMessages } from "./messages.js";

/** Turns text into token ids: the model's tokenizer with no BOS added. */
export type Tokenize = (text: string) => number[];

/** The special token ids the format needs. */
export interface BitnetChatSpecials {
  /** `<|begin_of_text|>`. */
  bos: number;
  /** `<|eot_id|>`, which closes every message. */
  eot: number;
}

/** Special token ids of BitNet b1.58 2B-4T (Llama-3 layout, BITNET.md §4.1). */
export const BITNET_2B4T_SPECIALS = Object.freeze({
  /** `<|begin_of_text|>` */
  bos: 128000,
  /** `<|end_of_text|>` */
  endOfText: 128001,
  /** `<|eot_id|>` */
  eot: 128009,
});

/** The role headers, each tokenized on its own. */
export const BITNET_CHAT_HEADERS: Readonly<Record<ChatRole, string>> = Object.freeze({
  system: "System: ",
  user: "User: ",
  assistant: "Assistant: ",
});

/**
 * Token ids that end generation in this format: `<|eot_id|>` and `<|end_of_text|>`.
 */
export function bitnetStopTokens(specials: { eot: number; endOfText: number } = BITNET_2B4T_SPECIALS): number[] {
  return specials.eot === specials.endOfText ? [specials.eot] : [specials.eot, specials.endOfText];
}

// Python's str.strip() removes what str.isspace() accepts. That differs from JS trim(): Python also strips
// U+001C–U+001F and U+0085 and keeps U+FEFF. The reference generator is Python, so its set is the one to match.
const PY_SPACE = "\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const PY_STRIP = new RegExp(`^[${PY_SPACE}]+|[${PY_SPACE}]+$`, "g");

/** Python's `str.strip()` with no arguments. */
export function pythonStrip(text: string): string {
  return text.replace(PY_STRIP, "");
}

function checkIds(ids: unknown, what: string): number[] {
  if (!Array.isArray(ids)) {
    throw new ValueError("out-of-range", `[chat] tokenize(${what}) did not return an array`);
  }
  for (const [i, id] of ids.entries()) {
    if (!Number.isSafeInteger(id) || (id as number) < 0) {
      throw new ValueError("out-of-range", `[chat] tokenize(${what}) returned ${String(id)} at ${i}`, i);
    }
  }
  return ids as number[];
}

/**
 * Formats a conversation as the 2B-4T reference token stream, ending with the "Assistant: " prompt.
 * Empty (after stripping) content contributes no tokens; `tokenize` is not called for it.
 *
 * @throws FormatError from {@link validateMessages} for bad messages;
 *   ValueError code "out-of-range" for a special id or a tokenize result that is not a non-negative integer.
 */
export function formatBitnetChat(
  messages: readonly ChatMessage[],
  tokenize: Tokenize,
  specials: BitnetChatSpecials,
): number[] {
  checkIds([specials.bos, specials.eot], "specials");
  const checked = validateMessages(messages);
  const headerIds = new Map<string, number[]>();
  const header = (text: string): number[] => {
    let ids = headerIds.get(text);
    if (ids === undefined) {
      ids = checkIds(tokenize(text), JSON.stringify(text));
      headerIds.set(text, ids);
    }
    return ids;
  };
  const out: number[] = [specials.bos];
  for (const [i, message] of checked.entries()) {
    out.push(...header(BITNET_CHAT_HEADERS[message.role]));
    const content = pythonStrip(message.content);
    if (content.length > 0) {
      for (const id of checkIds(tokenize(content), `message ${i}`)) {
        out.push(id);
      }
    }
    out.push(specials.eot);
  }
  out.push(...header(BITNET_CHAT_HEADERS.assistant));
  return out;
}
