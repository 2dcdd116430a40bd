/**
 * `barbell chat`: an interactive chat over a ChatSession (src/engine/chat-session.ts), which keeps the
 * conversation's KV cache between turns (a turn prefills only what is new) and drops the oldest turns when the
 * context fills (said on stderr; never an error).
 *
 * On a terminal: a banner, a `> ` prompt, line editing and history (readline); Ctrl-C during a reply stops that
 * reply (its text so far stays in the conversation), Ctrl-C at the prompt exits, Ctrl-D at an empty prompt exits
 * (status 0). Lines typed during a reply are answered after it. With piped stdin the lines are read in order,
 * nothing is prompted, and the end of input exits; a SIGINT stops the reply and exits.
 *
 * Replies go to stdout, everything else (banner, notices, speeds) to stderr.
 */
import path from "node:path";
import readline from "node:readline";
import { Option, type Command } from "commander";
import type { ChatSession, ChatTrim } from "../engine/chat-session.js";
import type { GenerationResult } from "../engine/generate.js";
import { ContextFullError } from "../model/bitnet/kv-cache.js";
import { defaultModelPath } from "./default-model.js";
import { generateOptions, modelOptions, samplingOptions, type ModelFlags, type SamplingFlags } from "./flags.js";
import { jsonResult, open, speed, type CliIo } from "./run.js";

/** What `/help` prints. */
export const CHAT_HELP = [
  "  /help            this list",
  "  /system [text]   show the system prompt, or set it (/system - removes it); the conversation stays",
  "  /reset           clear the conversation (asks first; the system prompt stays)",
  "  /exit            quit (also /quit, Ctrl-D at an empty prompt, Ctrl-C at the prompt)",
  '  a line ending in \\ continues on the next line; """ on a line of its own starts and ends a block',
  "  Ctrl-C during a reply stops the reply",
].join("\n");

/** The longest message gathered from continued lines, in characters (the chat's own message limit is 4 Mi). */
export const MAX_CHAT_INPUT_CHARS = 1024 * 1024;

interface ChatFlags extends ModelFlags, SamplingFlags {
  system?: string;
  kvReuse: "exact" | "all";
}

/** Lines from stdin, one at a time, with the terminal's prompt and Ctrl-C. */
class Lines {
  readonly #rl: readline.Interface;
  readonly #tty: boolean;
  readonly #queue: string[] = [];
  #closed = false;
  #wake: (() => void) | undefined;
  /** Set while a reply runs: Ctrl-C (or SIGINT) aborts it instead of exiting. */
  reply: AbortController | undefined;
  /** True once the user asked to quit with Ctrl-C (or a SIGINT came): queued lines are dropped. */
  interrupted = false;

  constructor(io: CliIo) {
    this.#tty = (io.input as { isTTY?: boolean }).isTTY === true && process.stdout.isTTY;
    this.#rl = readline.createInterface({
      input: io.input,
      ...(this.#tty ? { output: process.stdout, terminal: true } : { terminal: false }),
      prompt: "> ",
    });
    this.#rl.on("line", (line) => {
      this.#queue.push(line);
      this.#notify();
    });
    this.#rl.on("close", () => {
      this.#closed = true;
      this.#notify();
    });
    // A terminal in raw mode: Ctrl-C arrives here, not as a signal.
    this.#rl.on("SIGINT", () => this.#interrupt());
    // Piped stdin: Ctrl-C is a real SIGINT, which the CLI's main() turns into this abort (once).
    io.signal.addEventListener("abort", () => this.#interrupt(), { once: true });
  }

  get tty(): boolean {
    return this.#tty;
  }

  #interrupt(): void {
    if (this.reply !== undefined && !this.reply.signal.aborted) {
      this.reply.abort();
      if (this.#tty) {
        return; // a terminal's Ctrl-C stops the reply; the chat goes on
      }
    }
    this.interrupted = true;
    this.#rl.close();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** The next line (undefined at the end of input or after Ctrl-C), prompting with `prompt` on a terminal. */
  async next(prompt = "> "): Promise<string | undefined> {
    for (;;) {
      if (this.interrupted) {
        return undefined;
      }
      const line = this.#queue.shift();
      if (line !== undefined) {
        return line;
      }
      if (this.#closed) {
        return undefined;
      }
      if (this.#tty) {
        this.#rl.setPrompt(prompt);
        this.#rl.prompt(true);
      }
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  close(): void {
    this.#rl.close();
  }
}

/**
 * The next message: one line, or lines joined by a trailing backslash or between `"""` lines. Undefined at the
 * end of input. A message cut short by the end of input is returned as far as it got.
 */
async function readMessage(lines: Lines, note: (text: string) => void): Promise<string | undefined> {
  const first = await lines.next("> ");
  if (first === undefined) {
    return undefined;
  }
  const parts: string[] = [];
  let size = 0;
  const add = (text: string): boolean => {
    size += text.length + 1;
    if (size > MAX_CHAT_INPUT_CHARS) {
      note(`barbell chat: the message is longer than ${MAX_CHAT_INPUT_CHARS} characters (MAX_CHAT_INPUT_CHARS); it was not sent`);
      return false;
    }
    parts.push(text);
    return true;
  };
  if (first.trim() === '"""') {
    for (;;) {
      const line = await lines.next("... ");
      if (line === undefined || line.trim() === '"""') {
        return parts.join("\n");
      }
      if (!add(line)) {
        return "";
      }
    }
  }
  let line: string | undefined = first;
  while (line !== undefined && line.endsWith("\\")) {
    if (!add(line.slice(0, -1))) {
      return "";
    }
    line = await lines.next("... ");
  }
  if (line !== undefined && !add(line)) {
    return "";
  }
  return parts.join("\n");
}

function trimNotice(t: ChatTrim): string {
  return (
    `barbell chat: the context (${t.contextLength} tokens) was full: dropped the ${t.droppedTurns} oldest turn(s), ` +
    `${t.tokensBefore} -> ${t.tokensAfter} tokens; the system prompt is kept`
  );
}

/** Runs one command line; returns false for /exit. */
async function command(text: string, session: ChatSession, lines: Lines, note: (text: string) => void): Promise<boolean> {
  const [name = "", ...rest] = text.slice(1).split(/\s+/);
  const arg = text.slice(1 + name.length).trim();
  switch (name) {
    case "exit":
    case "quit":
      return false;
    case "help":
    case "?":
      note(`barbell chat commands:\n${CHAT_HELP}`);
      return true;
    case "reset": {
      const turns = session.messages.filter((m) => m.role !== "system").length;
      if (turns === 0) {
        note("barbell chat: the conversation is already empty");
        return true;
      }
      if (!lines.tty) {
        note(`barbell chat: clear the conversation (${turns} messages)? [y/N]`);
      }
      const answer = (await lines.next(`clear the conversation (${turns} messages)? [y/N] `))?.trim().toLowerCase();
      if (answer === "y" || answer === "yes") {
        session.reset();
        note("barbell chat: the conversation was cleared");
      } else {
        note("barbell chat: the conversation was kept");
      }
      return true;
    }
    case "system":
      if (rest.length === 0) {
        note(session.systemPrompt === undefined ? "barbell chat: no system prompt" : `barbell chat: system prompt: ${session.systemPrompt}`);
      } else if (arg === "-") {
        session.setSystemPrompt(undefined);
        note("barbell chat: the system prompt was removed");
      } else {
        session.setSystemPrompt(arg);
        note("barbell chat: the system prompt was set; it applies from the next message");
      }
      return true;
    default:
      note(`barbell chat: unknown command /${name}; /help lists the commands`);
      return true;
  }
}

/** One turn: streams the reply (or prints its JSON); a message that cannot fit is reported, not thrown. */
async function turn(text: string, session: ChatSession, lines: Lines, flags: ChatFlags, io: CliIo): Promise<void> {
  const reply = new AbortController();
  lines.reply = reply;
  try {
    const gen = session.prompt(text, generateOptions(flags, reply.signal));
    let result: GenerationResult;
    if (flags.json === true) {
      result = await gen.complete();
      io.out(`${jsonResult(result)}\n`);
    } else {
      for await (const piece of gen) {
        io.out(piece.text);
      }
      io.out("\n");
      result = await gen.complete();
      if (result.finishReason === "abort") {
        io.err("barbell chat: reply stopped\n");
      }
    }
    io.err(`${speed(result)}\n`);
  } catch (error) {
    if (!(error instanceof ContextFullError)) {
      throw error;
    }
    const room = flags.maxTokens === undefined ? "" : ` and -n ${flags.maxTokens}`;
    io.err(
      `barbell chat: this message${room} needs ${error.needed} tokens of a context of ${error.capacity}, even without the earlier turns; ` +
        `it was not sent (send a shorter one${flags.maxTokens === undefined ? "" : ", or a smaller -n"}, or start the chat with a larger -c)\n`,
    );
  } finally {
    lines.reply = undefined;
  }
}

async function runChat(flags: ChatFlags, io: CliIo): Promise<void> {
  using model = await open(flags, io);
  const note = (text: string): void => io.err(`${text}\n`);
  const session = model.chatSession({
    ...(flags.system === undefined ? {} : { systemPrompt: flags.system }),
    kvReuse: flags.kvReuse,
    onTrim: (t) => note(trimNotice(t)),
  });
  const file = flags.model ?? defaultModelPath();
  note(`barbell chat: ${path.basename(file)}, context ${model.contextLength} tokens, backend ${model.backend}`);
  note("Type a message and press Enter; /help lists the commands. Ctrl-C stops a reply; Ctrl-C at the prompt or Ctrl-D exits.");
  const lines = new Lines(io);
  try {
    for (;;) {
      const text = await readMessage(lines, note);
      if (text === undefined) {
        break;
      }
      const trimmed = text.trim();
      if (trimmed.length === 0) {
        continue;
      }
      if (trimmed.startsWith("/") && !text.includes("\n")) {
        if (!(await command(trimmed, session, lines, note))) {
          break;
        }
        continue;
      }
      await turn(text, session, lines, flags, io);
    }
  } finally {
    lines.close();
  }
}

export function addChatCommand(program: Command, io: CliIo): void {
  samplingOptions(modelOptions(program.command("chat"), true))
    .description("an interactive chat that keeps its KV cache between turns and drops the oldest turns when the context fills; /help lists the commands")
    .option("--system <text>", "a system prompt, kept when older turns are dropped (default: none)")
    .addOption(
      new Option("--kv-reuse <mode>", "exact: reuse only KV rows a cold run computes the same way (same output); all: every row (fewer tokens prefilled per turn)")
        .choices(["exact", "all"])
        .default("exact"),
    )
    .action(async (flags: ChatFlags) => runChat(flags, io));
}
