/**
 * The "Adding a backend" checklist of docs/architecture.md, measured on the WebGPU backend (the last one
 * added): outside its folder, the product's sources name it in one place (`BackendName` in backend.ts) and
 * reach into its folder from one (its provider in providers.ts); the third file is CI (.ci/run), which
 * installs its runtime and makes its tests required. Everything else — the op table's generated WGSL
 * constants excepted, which gen-ops writes into the folder — goes through the provider list and the
 * contract. (src/ui, the browser demo, offers WebGPU by name as a feature of the page, not as a step of
 * adding a backend; bench/ reports adapter names as an extra.)
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const FOLDER = "src/backends/webgpu/";
/** Not part of adding a backend (see the module comment). */
const CONSUMERS = ["src/ui/"];

function sources(dir: string): string[] {
  return fs.readdirSync(path.join(root, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith(".ts"))
    .map((e) => path.relative(root, path.join(e.parentPath, e.name)))
    .filter((f) => !f.startsWith(FOLDER) && !CONSUMERS.some((c) => f.startsWith(c)));
}

/** Code without comments (a comment may name the backend freely). */
const code = (file: string): string =>
  fs.readFileSync(path.join(root, file), "utf8").replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");

describe("adding a backend (measured on webgpu)", () => {
  const files = sources("src");

  it("should reach into the backend's folder from its provider only", () => {
    const importers = files.filter((f) => /from\s+"[^"]*\/webgpu\/[^"]*"|import\(\s*"[^"]*\/webgpu\//.test(code(f)));
    expect(importers).toEqual(["src/backends/providers.ts"]);
  });

  it("should name the backend in BackendName only", () => {
    const naming = files.filter((f) => /["']webgpu["']/.test(code(f)));
    expect(naming).toEqual(["src/backends/backend.ts"]);
    expect(code("src/backends/backend.ts")).toMatch(/export type BackendName = [^;]*"webgpu"/);
  });

  it("should make its tests required in CI", () => {
    expect(fs.readFileSync(path.join(root, ".ci/run"), "utf8")).toMatch(/BARBELL_REQUIRE_WEBGPU=1/);
  });
});
