/**
 * The README's "Structured output" example runs as written (with `from "barbell"` pointed at the source) and
 * prints what its comments say; the CLI lines it shows are the real output of those commands.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import { runCli } from "../cli/helpers.js";
import { GrammarIncompleteError } from "../../src/model/grammar/index.js";

const root = path.resolve(import.meta.dirname, "../..");
const readme = fs.readFileSync(path.join(root, "README.md"), "utf8");
const start = readme.indexOf("\n## Structured output\n");
const section = readme.slice(start, readme.indexOf("\n## ", start + 1));
const written: string[] = [];
afterAll(() => written.forEach((f) => fs.rmSync(f, { force: true, recursive: true })));

describe("README structured output", () => {
  it("should run the library example and print what its comments say", async () => {
    const code = /```ts\n([\s\S]*?)```/.exec(section)?.[1] ?? "";
    expect(code).toContain("jsonSchema");
    const file = path.join(root, "test", ".readme-structured.ts");
    fs.writeFileSync(file, code.replace(/from "barbell"/g, 'from "../src/index.js"'));
    written.push(file);
    const printed: string[] = [];
    const log = vi.spyOn(console, "log").mockImplementation((...args: unknown[]) => void printed.push(args.map(String).join(" ")));
    try {
      await import(file);
    } finally {
      log.mockRestore();
    }
    // Each console.log line's comment starts with what it prints.
    const promised = [...code.matchAll(/console\.log\(.*\); \/\/ ?(.*)$/gm)].map((m) => m[1] ?? "");
    expect(printed).toHaveLength(promised.length);
    printed.forEach((line, i) => expect(promised[i]?.trim().startsWith(line.trim()), `${line} vs ${promised[i]}`).toBe(true));
  }, 120_000);

  it("should show the CLI's real output for the schema file it shows", async () => {
    const schema = /\$ cat verse\.json\n(.*)\n/.exec(section)?.[1] ?? "";
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "barbell-readme-cli-"));
    written.push(dir);
    const verse = path.join(dir, "verse.json");
    fs.writeFileSync(verse, `${schema}\n`);
    const shown = /\$ npx barbell generate --json-schema verse\.json --temperature 0 "(.*)"\n(.*)\n/.exec(section);
    const { out } = await runCli(["generate", "--json-schema", verse, "--temperature", "0", shown?.[1] ?? ""]);
    expect(out).toBe(`${shown?.[2] ?? ""}\n`);
    const error = await runCli(["generate", "--json-schema", verse, "-n", "4", "Where"]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GrammarIncompleteError);
    expect(section).toContain(`barbell: GrammarIncompleteError (grammar-incomplete): ${(error as Error).message}`);
  }, 120_000);
});
