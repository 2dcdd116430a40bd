/**
 * The public surface (issue 16 item 7): `barbell` holds what a user of the library needs; serving, the actor
 * runtime and fixture writers are subpaths of package.json "exports"; every export of the entry files is
 * documented; every subpath points at a source file that exists.
 */
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import * as root from "../../src/index.js";
import * as actors from "../../src/actors/index.js";
import * as serve from "../../src/serve/index.js";
import * as testing from "../../src/testing.js";

const repo = path.resolve(import.meta.dirname, "../..");
const pkg = JSON.parse(fs.readFileSync(path.join(repo, "package.json"), "utf8")) as { exports: Record<string, { types: string; default: string }> };

describe("public surface", () => {
  it("maps every package.json export to a source file (dist/X.js is built from src/X.ts)", () => {
    expect(Object.keys(pkg.exports).sort()).toEqual([".", "./actors", "./serve", "./testing", "./wasm-simd"]);
    for (const [sub, target] of Object.entries(pkg.exports)) {
      const src = target.default.replace(/^\.\/dist\//, "src/").replace(/\.js$/, ".ts");
      expect(fs.existsSync(path.join(repo, src)), `${sub} → ${src}`).toBe(true);
      expect(target.types).toBe(target.default.replace(/\.js$/, ".d.ts"));
    }
  });

  it("keeps serving, actor and fixture internals off the root and on their subpaths", () => {
    const internals = ["ModelHost", "serveSwitch", "toWireRequest", "checkHostConfig", "modelActor", "cascadeRouter", "makeBitnetFixture", "writeHfBitnetFixture", "createActorSystem", "serve", "actors"];
    for (const name of internals) {
      expect(name in root, name).toBe(false);
    }
    for (const name of ["ModelHost", "checkHostConfig", "modelActor", "cascadeRouter", "toWireRequest", "ServeError"]) {
      expect(name in serve, name).toBe(true);
    }
    expect(typeof testing.makeBitnetFixture).toBe("function");
    expect(typeof testing.writeHfBitnetFixture).toBe("function");
    expect(typeof actors.createActorSystem).toBe("function");
  });

  it("keeps what a library user needs on the root", () => {
    for (const name of ["loadModel", "BitnetModel", "defaultModelPath", "Grammar", "compileJsonSchema", "GrammarIncompleteError", "ContextFullError", "tokenizerFromGguf", "UsageError", "tensor", "matmul", "createJsBackend", "BACKEND_NAMES", "probeAll", "openGguf", "barewire", "Batcher", "ChatSession", "PromptCache", "train"]) {
      expect(name in root, name).toBe(true);
    }
    expect(typeof root.barewire.decodeMessage).toBe("function");
  });

  it("documents every export statement of the entry files with a doc comment", () => {
    for (const file of ["src/index.ts", "src/testing.ts"]) {
      const lines = fs.readFileSync(path.join(repo, file), "utf8").split("\n");
      lines.forEach((line, i) => {
        if (line.startsWith("export ")) {
          expect(lines[i - 1]?.trimEnd().endsWith("*/"), `${file}:${i + 1} ${line}`).toBe(true);
        }
      });
    }
  });
});
