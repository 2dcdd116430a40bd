/** The README's library example must compile and run as written. */
import fs from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";

const root = path.resolve(import.meta.dirname, "..");
const example = path.join(root, "test", ".readme-example.ts");

describe("README", () => {
  afterAll(() => fs.rmSync(example, { force: true }));

  it("should run the library example and print the checked-constructor error it promises", async () => {
    const readme = fs.readFileSync(path.join(root, "README.md"), "utf8");
    const code = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(code).toBeDefined();
    fs.writeFileSync(example, (code ?? "").replace(/from "barbell"/g, 'from "../src/index.js"'));
    const log = vi.spyOn(console, "log").mockImplementation(() => undefined);
    try {
      await import(example);
      expect(log).toHaveBeenCalledWith("[toTernary] index 3 holds 2, not -1, 0 or +1");
    } finally {
      log.mockRestore();
    }
  });
});

describe("README model example", () => {
  it("should type-check against the public API", async () => {
    const ts = (await import("typescript")).default;
    const readme = fs.readFileSync(path.join(root, "README.md"), "utf8");
    const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1] ?? "");
    expect(blocks.length).toBeGreaterThanOrEqual(2);
    const virtual = path.join(root, "test", "__readme_model__.ts");
    const source = (blocks[1] ?? "").replace(/from "barbell"/g, 'from "../src/index.js"') + "\nexport {};\n";
    const config = ts.readConfigFile(path.join(root, "tsconfig.json"), (f) => ts.sys.readFile(f));
    const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, root);
    const host = ts.createCompilerHost(parsed.options);
    const getSourceFile = host.getSourceFile.bind(host);
    host.getSourceFile = (file, lang, ...rest) =>
      path.resolve(file) === virtual ? ts.createSourceFile(file, source, lang) : getSourceFile(file, lang, ...rest);
    const fileExists = host.fileExists.bind(host);
    host.fileExists = (file) => path.resolve(file) === virtual || fileExists(file);
    const program = ts.createProgram([virtual], parsed.options, host);
    const messages = ts
      .getPreEmitDiagnostics(program, program.getSourceFile(virtual))
      .map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n"));
    expect(messages).toEqual([]);
  });
});
