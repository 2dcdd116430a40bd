/**
 * Reading a model's answer as a tool call, incrementally (the same reader serves streamed and whole replies, so a
 * streamed call reassembles to exactly the non-streamed one). The grammar (structured.ts) guarantees the shape:
 * `open {"name": "<fn>", "<argumentsKey>": {…}} close`, or (tool_choice auto) free text that does not start with
 * the call's opening. The reader turns text pieces into events: content text, the call's name once it is
 * complete, and fragments of the arguments object as they come.
 */
import { randomUUID } from "node:crypto";
import type { ToolCallFormat } from "../../model/chat/index.js";

export type ToolEvent = { readonly kind: "content"; readonly text: string } | { readonly kind: "call"; readonly name: string } | { readonly kind: "arguments"; readonly text: string };

/** A new call id in OpenAI's style (`call_` and 24 letters and digits). */
export function toolCallId(): string {
  return `call_${randomUUID().replace(/-/g, "").slice(0, 24)}`;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

export class ToolCallReader {
  #state: "undecided" | "head" | "arguments" | "tail" | "content";
  #buffer = "";
  readonly #lead: string;
  readonly #head: RegExp;
  #depth = 0;
  #inString = false;
  #escaped = false;
  #name: string | undefined;
  #arguments = "";

  constructor(
    format: ToolCallFormat,
    mode: "call" | "auto",
  ) {
    // Free text never starts with the call's opening (the grammar sees to it), so the opening decides.
    this.#lead = format.open === "" ? "{" : format.open;
    this.#state = mode === "call" ? "head" : "undecided";
    this.#head = new RegExp(`^${escapeRegExp(format.open)}\\s*\\{\\s*"name"\\s*:\\s*"([A-Za-z0-9_-]{1,64})"\\s*,\\s*"${format.argumentsKey}"\\s*:`);
  }

  /** The call's name once read (undefined: no call, or not yet). */
  get name(): string | undefined {
    return this.#name;
  }

  /** The arguments text read so far. */
  get arguments(): string {
    return this.#arguments;
  }

  /** Whether the arguments object was read to its closing brace. */
  get complete(): boolean {
    return this.#state === "tail";
  }

  /** Events for the next piece of text. */
  push(text: string): ToolEvent[] {
    const events: ToolEvent[] = [];
    if (this.#state === "content") {
      if (text !== "") {
        events.push({ kind: "content", text });
      }
      return events;
    }
    if (this.#state === "tail") {
      return events;
    }
    if (this.#state === "arguments") {
      this.#scan(text, events);
      return events;
    }
    this.#buffer += text;
    if (this.#state === "undecided") {
      const n = Math.min(this.#buffer.length, this.#lead.length);
      if (this.#buffer.slice(0, n) !== this.#lead.slice(0, n)) {
        this.#state = "content";
        events.push({ kind: "content", text: this.#buffer });
        this.#buffer = "";
        return events;
      }
      if (this.#buffer.length < this.#lead.length) {
        return events;
      }
      this.#state = "head";
    }
    const m = this.#head.exec(this.#buffer);
    if (m !== null) {
      this.#name = m[1] ?? "";
      events.push({ kind: "call", name: this.#name });
      const rest = this.#buffer.slice(m[0].length);
      this.#buffer = "";
      this.#state = "arguments";
      this.#scan(rest, events);
    }
    return events;
  }

  /** Events for what is still held when the answer ends (text that never became a call is content). */
  end(): ToolEvent[] {
    if ((this.#state === "undecided" || this.#state === "head") && this.#buffer !== "") {
      const text = this.#buffer;
      this.#buffer = "";
      this.#state = "content";
      return [{ kind: "content", text }];
    }
    return [];
  }

  /** Reads arguments text up to the brace that closes the object; whitespace before it is skipped. */
  #scan(text: string, events: ToolEvent[]): void {
    let i = 0;
    if (this.#arguments === "") {
      while (i < text.length && /\s/.test(text[i] ?? "")) {
        i++;
      }
    }
    const start = i;
    for (; i < text.length && this.#state === "arguments"; i++) {
      const ch = text[i];
      if (this.#inString) {
        if (this.#escaped) {
          this.#escaped = false;
        } else if (ch === "\\") {
          this.#escaped = true;
        } else if (ch === '"') {
          this.#inString = false;
        }
      } else if (ch === '"') {
        this.#inString = true;
      } else if (ch === "{" || ch === "[") {
        this.#depth++;
      } else if (ch === "}" || ch === "]") {
        this.#depth--;
        if (this.#depth === 0) {
          this.#state = "tail";
        }
      }
    }
    const piece = text.slice(start, i);
    if (piece !== "") {
      this.#arguments += piece;
      events.push({ kind: "arguments", text: piece });
    }
  }
}
