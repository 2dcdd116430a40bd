import { describe, expect, it } from "vitest";
import { FormatError, ValueError } from "../../src/core/errors.js";
import {
  BITNET_2B4T_SPECIALS,
  bitnetStopTokens,
  formatBitnetChat,
  pythonStrip,
} from "../../src/model/chat/bitnet.js";
import type { ChatMessage } from "../../src/model/chat/messages.js";

const specials = { bos: BITNET_2B4T_SPECIALS.bos, eot: BITNET_2B4T_SPECIALS.eot };

/** A stand-in tokenizer: one id per UTF-16 code unit, recording every call. */
function charTokenizer(): { tokenize: (text: string) => number[]; calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    tokenize: (text) => {
      calls.push(text);
      return Array.from(text, (c) => c.charCodeAt(0));
    },
  };
}

const ids = (text: string): number[] => Array.from(text, (c) => c.charCodeAt(0));

describe("formatBitnetChat", () => {
  it("lays out BOS, header + stripped content + eot per message, then the Assistant prompt", () => {
    const { tokenize } = charTokenizer();
    const messages: ChatMessage[] = [
      { role: "system", content: "Be brief." },
      { role: "user", content: "  Hi there \n" },
      { role: "assistant", content: "Hello." },
      { role: "user", content: "Bye" },
    ];
    expect(formatBitnetChat(messages, tokenize, specials)).toEqual([
      128000,
      ...ids("System: "),
      ...ids("Be brief."),
      128009,
      ...ids("User: "),
      ...ids("Hi there"),
      128009,
      ...ids("Assistant: "),
      ...ids("Hello."),
      128009,
      ...ids("User: "),
      ...ids("Bye"),
      128009,
      ...ids("Assistant: "),
    ]);
  });

  it("tokenizes the header and the content separately, so the header's space never merges into the content", () => {
    // A word tokenizer that would merge " Hi" into one token if header and content were joined.
    const vocab = new Map<string, number>();
    const words = (text: string): number[] =>
      (text.match(/ ?[^ ]+| /g) ?? []).map((w) => {
        const id = vocab.get(w) ?? vocab.size;
        vocab.set(w, id);
        return id;
      });
    const out = formatBitnetChat([{ role: "user", content: "Hi" }], words, specials);
    expect(out).toEqual([128000, vocab.get("User:"), vocab.get(" "), vocab.get("Hi"), 128009, ...words("Assistant: ")]);
    expect(vocab.has(" Hi")).toBe(false);
  });

  it("calls tokenize with the exact header strings and the stripped contents", () => {
    const { tokenize, calls } = charTokenizer();
    formatBitnetChat([{ role: "user", content: "\tq " }], tokenize, specials);
    expect(calls).toEqual(["User: ", "q", "Assistant: "]);
  });

  it("gives an empty message its header and eot only", () => {
    const { tokenize, calls } = charTokenizer();
    expect(formatBitnetChat([{ role: "user", content: "  " }], tokenize, specials)).toEqual([
      128000,
      ...ids("User: "),
      128009,
      ...ids("Assistant: "),
    ]);
    expect(calls).not.toContain("");
  });

  it("prompts the assistant straight after BOS for an empty conversation", () => {
    expect(formatBitnetChat([], charTokenizer().tokenize, { bos: 1, eot: 2 })).toEqual([1, ...ids("Assistant: ")]);
  });

  it("uses the special ids it is given", () => {
    const out = formatBitnetChat([{ role: "user", content: "x" }], charTokenizer().tokenize, { bos: 7, eot: 9 });
    expect(out[0]).toBe(7);
    expect(out).toContain(9);
    expect(out).not.toContain(128009);
  });

  it("rejects a bad role, a non-string content and a non-array with a bad-value FormatError", () => {
    const { tokenize } = charTokenizer();
    const bad = [
      [{ role: "tool", content: "x" }],
      [{ role: "user", content: 3 }],
      [null],
      "not an array",
    ] as unknown as ChatMessage[][];
    for (const messages of bad) {
      expect(() => formatBitnetChat(messages, tokenize, specials)).toThrow(FormatError);
    }
    expect(() => formatBitnetChat(bad[0] ?? [], tokenize, specials)).toThrow(/role "tool"/);
  });

  it("rejects a tokenizer result that is not a list of non-negative integer ids", () => {
    const messages: ChatMessage[] = [{ role: "user", content: "x" }];
    expect(() => formatBitnetChat(messages, () => [1, -2], specials)).toThrow(ValueError);
    expect(() => formatBitnetChat(messages, () => [0.5], specials)).toThrow(ValueError);
    expect(() => formatBitnetChat(messages, charTokenizer().tokenize, { bos: -1, eot: 2 })).toThrow(ValueError);
  });
});

describe("bitnetStopTokens", () => {
  it("stops at <|eot_id|> and <|end_of_text|>", () => {
    expect(bitnetStopTokens()).toEqual([128009, 128001]);
    expect(bitnetStopTokens({ eot: 5, endOfText: 5 })).toEqual([5]);
  });
});

describe("pythonStrip", () => {
  it("strips what Python's str.strip() strips, which is not quite what String.prototype.trim() strips", () => {
    expect(pythonStrip(" \t\n\v\f\r a b \u00a0\u3000")).toBe("a b");
    expect(pythonStrip("\x1c\x1f\x85x\u2028")).toBe("x");
    expect(pythonStrip("\ufeffx\ufeff")).toBe("\ufeffx\ufeff");
    expect(pythonStrip("")).toBe("");
  });
});
