/**
 * `barbell chat` (src/cli/chat.ts) with the packaged default model: piped stdin in this process (the commands,
 * multi-line input, KV reuse between turns, a full context, a SIGINT), and the real command in a terminal under
 * tmux (banner, prompt, Ctrl-C during a reply and at the prompt, Ctrl-D). The observations of issue 14 each have a
 * test here: a context-full error that left the chat hanging, one Ctrl-C that made every later reply end at once,
 * and every turn re-prefilling the whole conversation.
 */
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { PREFILL_STEP_TOKENS } from "../../src/model/bitnet/forward.js";
import { runCli } from "./helpers.js";

const root = path.resolve(import.meta.dirname, "..", "..");
/** Fast, quiet flags: no kernel timing, no autotune cache written. */
const BASE = ["chat", "--no-autotune", "--seed", "1"];

interface Reply {
  text: string;
  tokens: number[];
  finish_reason: string;
  prompt_tokens: number;
  cached_tokens: number;
}

const replies = (out: string): Reply[] =>
  out
    .trim()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Reply);

const MESSAGES = [
  "Tell me of the kings of Israel and of Judah, and of the prophets that spoke unto them in those days.",
  "And what did the prophets say unto the people when the kings did evil in the sight of the LORD?",
  "Speak of the temple that Solomon built, of its cedar and its gold, and of the ark in the house.",
  "And what of the captivity in Babylon, and of the return to Jerusalem in the days of Ezra?",
  "Tell me of the psalms of David, which he sang before the LORD with harps and with cymbals.",
  "And of the proverbs of Solomon, and of the wisdom that is better than rubies and fine gold.",
];

describe("barbell chat with piped stdin", () => {
  it("should answer the commands, join continued lines and blocks, and stop reading at /exit", async () => {
    const input = ["/help", "/system", "/system Be brief.", "/system", "/bogus", "hello", "/reset", "n", "/reset", "yes", "/reset", "first \\", "second", '"""', "a", "b", '"""', "/system -", "/exit", "not answered"].join("\n");
    const { out, err } = await runCli([...BASE, "-n", "3", "--json"], { input: `${input}\n` });
    expect(err).toMatch(/^barbell: no -m given; using the default model/);
    expect(err).toMatch(/barbell chat: barbell-kjv\.gguf, context 2048 tokens, backend \S+\n/);
    expect(err).toContain("/reset           clear the conversation");
    expect(err).toContain("barbell chat: no system prompt\n");
    expect(err).toContain("barbell chat: system prompt: Be brief.\n");
    expect(err).toContain("barbell chat: unknown command /bogus; /help lists the commands\n");
    expect(err).toContain("barbell chat: clear the conversation (2 messages)? [y/N]\nbarbell chat: the conversation was kept\n");
    expect(err).toContain("barbell chat: the conversation was cleared\n");
    expect(err).toContain("barbell chat: the conversation is already empty\n");
    expect(err).toContain("barbell chat: the system prompt was removed\n");
    // Three messages: "hello", the two continued lines, the block; "not answered" is after /exit.
    const r = replies(out);
    expect(r).toHaveLength(3);
    // After the reset, the continued message starts a new conversation (system prompt + one message).
    expect(r[1]?.prompt_tokens).toBeLessThan((r[0]?.prompt_tokens ?? 0) + 10);
    // The block follows it in the same conversation.
    expect(r[2]?.prompt_tokens).toBeGreaterThan(r[1]?.prompt_tokens ?? 0);
  });

  it("should prefill only the tail of the conversation each turn (observation 3)", async () => {
    const { out, err } = await runCli([...BASE, "-n", "48", "--json"], { input: `${MESSAGES.join("\n")}\n` });
    const r = replies(out);
    expect(r).toHaveLength(MESSAGES.length);
    for (const [i, reply] of r.entries()) {
      const prefilled = reply.prompt_tokens - reply.cached_tokens;
      if (i > 0) {
        // At most the previous prompt's last partial prefill step, the previous reply and the new message.
        expect(prefilled).toBeLessThan(PREFILL_STEP_TOKENS + 48 + 40);
      }
    }
    const last = r.at(-1) as Reply;
    expect(last.prompt_tokens).toBeGreaterThan(400);
    expect(last.cached_tokens).toBeGreaterThanOrEqual(256);
    expect(err).not.toMatch(/Error/);
  });

  it("should prefill only each turn's new tokens with --kv-reuse all", async () => {
    const { err } = await runCli([...BASE, "-n", "24", "--kv-reuse", "all"], { input: `${MESSAGES.slice(0, 4).join("\n")}\n` });
    const prefills = [...err.matchAll(/^prefill (\d+) tokens(?: \(\+(\d+) cached\))? /gm)].map((m) => ({ run: Number(m[1]), cached: Number(m[2] ?? 0) }));
    expect(prefills).toHaveLength(4);
    for (const p of prefills.slice(1)) {
      expect(p.cached).toBeGreaterThan(0);
      expect(p.run).toBeLessThan(24 + 40); // the reply (where its text tokenizes differently) and the new message
    }
  });

  it("should drop the oldest turns when the context fills and keep answering (observation 1)", async () => {
    const lines = [...MESSAGES, ...MESSAGES, "/exit"];
    const { out, err } = await runCli([...BASE, "-c", "192", "-n", "32", "--system", "Be brief.", "--json"], { input: `${lines.join("\n")}\n` });
    const r = replies(out);
    expect(r).toHaveLength(2 * MESSAGES.length); // every message answered, none refused
    expect(err).toMatch(/barbell chat: the context \(192 tokens\) was full: dropped the \d+ oldest turn\(s\), \d+ -> \d+ tokens; the system prompt is kept\n/);
    expect(err).not.toMatch(/Error|context-full/);
    for (const reply of r) {
      expect(reply.prompt_tokens + 32).toBeLessThanOrEqual(192);
    }
  });

  it("should say a message is too long for the context without ending the chat", async () => {
    const { out, err } = await runCli([...BASE, "-c", "64", "-n", "8", "--json"], { input: `${"and the word ".repeat(40)}\nhello\n` });
    expect(err).toMatch(/barbell chat: this message and -n 8 needs \d+ tokens of a context of 64, even without the earlier turns; it was not sent/);
    expect(replies(out)).toHaveLength(1); // "hello" was still answered
  });

  it("should stop the reply and end the chat at a SIGINT, not answer later lines with empty replies (observation 2)", async () => {
    const controller = new AbortController();
    let text = "";
    const { err } = await runCli([...BASE, "-n", "1500", "--backend", "js", "--threads", "1"], {
      input: "Tell me of the kings\nAnd again\nAnd once more\n",
      signal: controller.signal,
      onOut: (t) => {
        text += t;
        if (text.length > 20) {
          controller.abort(); // what main() does on the first SIGINT
        }
      },
    });
    const speeds = [...err.matchAll(/^prefill .* decode (\d+) tokens .*\((\w+)\)$/gm)];
    expect(speeds).toHaveLength(1);
    expect(speeds[0]?.[2]).toBe("abort");
    expect(Number(speeds[0]?.[1])).toBeGreaterThan(0);
    expect(err).toContain("barbell chat: reply stopped\n");
  });
});

// ---- a real terminal: tmux ----

const tmux = spawnSync("tmux", ["-V"], { encoding: "utf8" });
const haveTmux = tmux.status === 0;
const tsx = path.join(root, "node_modules", ".bin", "tsx");
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "barbell-chat-tty-"));
const entry = path.join(dir, "entry.mts");
fs.writeFileSync(entry, `import { main } from ${JSON.stringify(path.join(root, "src", "cli", "main.ts"))};\nprocess.exitCode = await main(process.argv);\n`);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** One `barbell chat` in a detached tmux session on its own server socket. */
class Terminal {
  readonly socket = `barbell-chat-${process.pid}-${Math.random().toString(36).slice(2)}`;

  constructor(args: readonly string[]) {
    const quoted = args.map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(" ");
    // The shell prints the exit status and stays, so the pane keeps the output after barbell exits.
    const command = `cd '${root}' && '${tsx}' '${entry}' ${quoted}; echo "EXIT=$?"; sleep 600`;
    this.#tmux("new-session", "-d", "-x", "200", "-y", "60", command);
  }

  #tmux(...args: string[]): string {
    return execFileSync("tmux", ["-L", this.socket, ...args], { encoding: "utf8" });
  }

  keys(...keys: string[]): void {
    this.#tmux("send-keys", "-t", "0", ...keys);
  }

  type(text: string): void {
    this.#tmux("send-keys", "-t", "0", "-l", text);
    this.#tmux("send-keys", "-t", "0", "Enter");
  }

  screen(): string {
    // The pane's empty rows below the cursor come back as empty lines.
    return this.#tmux("capture-pane", "-p", "-J", "-S", "-1000", "-t", "0").replace(/\n+$/, "");
  }

  /** Waits (bounded) until the screen matches `pattern`; returns the screen. */
  async until(pattern: RegExp, timeoutMs = 90_000): Promise<string> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const screen = this.screen();
      if (pattern.test(screen)) {
        return screen;
      }
      if (Date.now() > end) {
        throw new Error(`the terminal never showed ${pattern}; it shows:\n${screen}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  close(): void {
    try {
      this.#tmux("kill-server");
    } catch {
      // already gone
    }
  }
}

describe.skipIf(!haveTmux)("barbell chat in a terminal (tmux)", { timeout: 240_000 }, () => {
  let term: Terminal | undefined;
  afterEach(() => {
    term?.close();
    term = undefined;
  });

  it("should show a banner and a prompt, keep answering when the context fills, and exit 0 at /exit (observation 1)", async () => {
    term = new Terminal([...BASE, "-c", "160", "-n", "32"]);
    await term.until(/barbell chat: barbell-kjv\.gguf, context 160 tokens, backend \S+\n.*\/help lists the commands[^\n]*\n> $/s);
    for (const [i, message] of MESSAGES.entries()) {
      term.type(message);
      await term.until(new RegExp(`(prefill [^\\n]*\\n[\\s\\S]*){${i + 1}}> $`));
    }
    let screen = await term.until(/was full: dropped the \d+ oldest turn/);
    term.type("/reset");
    await term.until(/clear the conversation \(\d+ messages\)\? \[y\/N\] $/);
    term.type("y");
    await term.until(/the conversation was cleared\n> $/);
    term.type("/exit");
    screen = await term.until(/EXIT=\d+/);
    expect(screen).toMatch(/EXIT=0/);
    expect(screen).not.toMatch(/Error/);
  });

  it("should stop a reply at Ctrl-C, answer the next message in full, and exit 0 at Ctrl-C on the prompt (observation 2)", async () => {
    term = new Terminal([...BASE, "-n", "1500", "--backend", "js", "--threads", "1"]);
    await term.until(/> $/);
    term.type("Tell me of the kings");
    await term.until(/Tell me of the kings\n\S+/);
    term.keys("C-c");
    await term.until(/reply stopped\nprefill [^\n]*\(abort\)\n> $/);
    term.type("And again");
    await term.until(/And again\n\S+/);
    term.keys("C-c");
    const screen = await term.until(/(reply stopped\nprefill [^\n]*\(abort\)\n[\s\S]*){2}> $/);
    const decoded = [...screen.matchAll(/decode (\d+) tokens/g)].map((m) => Number(m[1]));
    expect(decoded).toHaveLength(2);
    expect(decoded.every((n) => n > 0)).toBe(true); // not "decode 0 tokens … (abort)"
    term.keys("C-c");
    expect(await term.until(/EXIT=\d+/)).toMatch(/EXIT=0/);
  });

  it("should exit 0 at Ctrl-D on an empty prompt", async () => {
    term = new Terminal([...BASE, "-n", "4"]);
    await term.until(/> $/);
    term.type("hello");
    await term.until(/prefill [^\n]*\n> $/);
    term.keys("C-d");
    expect(await term.until(/EXIT=\d+/)).toMatch(/EXIT=0/);
  });
});

if (!haveTmux) {
  it.skip("barbell chat in a terminal: tmux is not installed (Debian/Ubuntu package: tmux)", () => undefined);
}
