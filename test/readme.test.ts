/**
 * The README's library examples run as written: the TypeScript model example (type-checked and run), its
 * plain-JavaScript twin as an .mjs file under plain Node (only `from "barbell"` is pointed at the source), and
 * the typed-tensor example. The JavaScript one must parse on the Node running the tests (no `using` on Node 20).
 */
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, it, vi } from "vitest";

const root = path.resolve(import.meta.dirname, "..");
const readme = fs.readFileSync(path.join(root, "README.md"), "utf8");
const written: string[] = [];
afterAll(() => written.forEach((f) => fs.rmSync(f, { force: true })));

/** The code blocks of the README's "The library" section, with their languages. */
function libraryBlocks(): { lang: string; code: string }[] {
  const start = readme.indexOf("\n## The library\n");
  const end = readme.indexOf("\n## ", start + 1);
  expect(start).toBeGreaterThan(0);
  const section = readme.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/```(\w+)\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1] ?? "", code: m[2] ?? "" }));
}

/** Writes a README block next to the tests with `from "barbell"` pointing at `target`. */
function writeExample(name: string, code: string, target: string): string {
  const file = path.join(root, "test", name);
  fs.writeFileSync(file, code.replace(/from "barbell"/g, `from ${JSON.stringify(target)}`));
  written.push(file);
  return file;
}

/** TypeScript's diagnostics for each source, checked together as files of the project (tsconfig.json). */
async function typeErrors(sources: readonly string[]): Promise<string[]> {
  const ts = (await import("typescript")).default;
  const virtual = new Map(sources.map((source, i) => [path.join(root, "test", `__readme_example_${i}__.ts`), `${source.replace(/from "barbell"/g, 'from "../src/index.js"')}\nexport {};\n`]));
  const config = ts.readConfigFile(path.join(root, "tsconfig.json"), (f) => ts.sys.readFile(f));
  const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, root);
  const host = ts.createCompilerHost(parsed.options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (file, lang, ...rest) => {
    const source = virtual.get(path.resolve(file));
    return source === undefined ? getSourceFile(file, lang, ...rest) : ts.createSourceFile(file, source, lang);
  };
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (file) => virtual.has(path.resolve(file)) || fileExists(file);
  const program = ts.createProgram([...virtual.keys()], parsed.options, host);
  return [...virtual.keys()].flatMap((file) => ts.getPreEmitDiagnostics(program, program.getSourceFile(file)).map((d) => `${path.basename(file)}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`));
}

/** Captures what `run` writes through process.stdout.write and console.log. */
async function captured(run: () => Promise<unknown>): Promise<string> {
  let text = "";
  const write = vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
    text += String(chunk);
    return true;
  });
  const log = vi.spyOn(console, "log").mockImplementation((...args: unknown[]) => void (text += `${args.map(String).join(" ")}\n`));
  try {
    await run();
  } finally {
    write.mockRestore();
    log.mockRestore();
  }
  return text;
}

describe("README library examples", () => {
  it("should have a TypeScript model example, its plain-JavaScript twin and the tensor example, and name TypeScript for `using`", () => {
    const blocks = libraryBlocks();
    expect(blocks.filter((b) => b.lang === "ts" && b.code.includes("loadModel(defaultModelPath())"))).toHaveLength(1);
    expect(blocks.filter((b) => b.lang === "js" && b.code.includes("loadModel(defaultModelPath())"))).toHaveLength(1);
    expect(blocks.filter((b) => b.lang === "ts" && b.code.includes("toTernary"))).toHaveLength(1);
    expect(blocks.find((b) => b.lang === "js")?.code).not.toMatch(/\busing\b/);
    expect(readme).toMatch(/`using`[^.]*needs TypeScript 5\.2/);
  });

  it("should type-check the TypeScript examples against the public API", async () => {
    const ts = libraryBlocks().filter((b) => b.lang === "ts");
    expect(ts).toHaveLength(2);
    expect(await typeErrors(ts.map((b) => b.code))).toEqual([]);
  }, 120_000);

  it("should run the model example in TypeScript and in plain JavaScript (.mjs on this Node), with the output the README shows", async () => {
    const blocks = libraryBlocks();
    const ts = blocks.find((b) => b.lang === "ts" && b.code.includes("loadModel(defaultModelPath())"))?.code ?? "";
    const js = blocks.find((b) => b.lang === "js" && b.code.includes("loadModel(defaultModelPath())"))?.code ?? "";

    const tsFile = writeExample(".readme-model.ts", ts, "../src/index.js");
    const fromTs = await captured(() => import(tsFile));

    // Plain Node parses the .mjs itself (tsx only compiles the .ts modules it imports).
    const mjs = writeExample(".readme-model.mjs", js, pathToFileURL(path.join(root, "src", "index.ts")).href);
    execFileSync(process.execPath, ["--check", mjs]);
    const run = spawnSync(process.execPath, ["--import", "tsx", mjs], { cwd: root, encoding: "utf8", timeout: 120_000 });
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    expect(run.stdout).toBe(fromTs);

    const shown = /```console\n\$ node example\.mjs\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(shown).toBe(fromTs);
  }, 180_000);

  it("should refuse `using` in an .mjs on Node 20, which is why the JavaScript example has none", () => {
    const major = Number(process.versions.node.split(".")[0]);
    const probe = writeExample(".readme-using.mjs", "using x = { [Symbol.dispose]() {} };\n", "");
    const check = spawnSync(process.execPath, ["--check", probe], { encoding: "utf8" });
    if (major <= 22) {
      expect(check.status).not.toBe(0);
      expect(check.stderr).toContain("SyntaxError");
    }
  });

  it("should run the tensor example and print the checked-constructor error it promises", async () => {
    const code = libraryBlocks().find((b) => b.lang === "ts" && b.code.includes("toTernary"))?.code ?? "";
    const file = writeExample(".readme-tensors.ts", code, "../src/index.js");
    expect(await captured(() => import(file))).toBe("[toTernary] index 3 holds 2, not -1, 0 or +1\n");
  });
});
