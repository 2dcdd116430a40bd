/**
 * The compile errors of wrong tensor programs must say what is wrong in barbell's words, not only
 * "type X is not assignable to type Y". This compiles small programs with the TypeScript API and
 * checks the diagnostic text.
 */
import path from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const root = path.resolve(import.meta.dirname, "../..");
const virtualFile = path.join(root, "test/types/__virtual__.ts");

const header = `
import type { Tensor } from "../../src/index.js";
import { add, matmul, merge, rename, transpose, tensor } from "../../src/index.js";
declare function t<const DT extends Tensor["dtype"], const D extends readonly string[]>(): Tensor<DT, D>;
const x = t<"f32", ["seq", "embed"]>();
`;

let previous: ts.Program | undefined;

function diagnostics(body: string): string[] {
  const config = ts.readConfigFile(path.join(root, "tsconfig.json"), (f) => ts.sys.readFile(f));
  const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, root);
  const host = ts.createCompilerHost(parsed.options);
  const source = header + body;
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (file, lang, ...rest) =>
    path.resolve(file) === virtualFile ? ts.createSourceFile(file, source, lang) : getSourceFile(file, lang, ...rest);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (file) => path.resolve(file) === virtualFile || fileExists(file);
  // Reusing the previous program keeps the unchanged library files parsed once.
  const program = ts.createProgram([virtualFile], parsed.options, host, previous);
  previous = program;
  const sf = program.getSourceFile(virtualFile);
  return ts
    .getPreEmitDiagnostics(program, sf)
    .map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n"));
}

describe("compile-time error messages", () => {
  it("should compile a correct program without diagnostics", () => {
    expect(diagnostics(`const y = matmul(x, t<"f32", ["ffn", "embed"]>());`)).toEqual([]);
  });

  const cases: [string, string, string][] = [
    [
      "a contraction over different names",
      `matmul(x, t<"f32", ["embed", "ffn"]>());`,
      `[matmul] contraction mismatch: x [seq, embed] ends in 'embed', w [embed, ffn] ends in 'ffn'`,
    ],
    ["a broadcast of a foreign dim", `add(x, t<"f32", ["vocab"]>());`, `[add] b has dim 'vocab' that a [seq, embed] lacks`],
    ["a rename onto an existing name", `rename(x, "embed", "seq");`, `[rename] 'seq' is already a dim of [seq, embed]`],
    ["a transpose that is not a permutation", `transpose(x, ["embed", "ffn"]);`, `[transpose] [embed, ffn] is not a permutation of [seq, embed]`],
    [
      "a merge of non-adjacent dims",
      `merge(t<"f32", ["a", "b", "c"]>(), ["a", "c"], "m");`,
      `[merge] 'a' is not directly followed by 'c' in [a, b, c]`,
    ],
    ["a repeated dim name", `tensor([1, 2], ["seq", "seq"], [1, 2]);`, `[tensor] dimension name 'seq' is used twice`],
  ];
  it.each(cases)("should explain %s", (_what, body, message) => {
    const found = diagnostics(body);
    expect(found.length).toBeGreaterThan(0);
    expect(found.join("\n")).toContain(message);
  });
});
