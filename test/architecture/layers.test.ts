/**
 * Module layering (docs/architecture.md): a module imports only from its own layer or lower ones,
 * and concrete backends never import each other. This test reads every import in src/.
 */
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

const src = path.resolve(import.meta.dirname, "../../src");

/** Layer of a src-relative path; the first matching prefix wins. */
const LAYERS: [prefix: string, layer: number][] = [
  ["core/", 0],
  ["quant/", 1],
  ["backends/", 2],
  ["tensor/", 3],
  ["formats/", 3],
  ["model/", 4],
  ["train/", 4],
  ["actors/", 4],
  ["hub/", 3],
  ["engine/", 5],
  ["export/", 5],
  ["serve/", 6],
  ["ui/", 6],
  ["cli/", 7],
  ["index.ts", 7],
  ["testing.ts", 7],
];

function layerOf(rel: string): number {
  const found = LAYERS.find(([prefix]) => rel.startsWith(prefix));
  if (!found) {
    throw new Error(`no layer for src/${rel}; add it to LAYERS and docs/architecture.md`);
  }
  return found[1];
}

function files(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    return e.isDirectory() ? files(full) : e.name.endsWith(".ts") ? [full] : [];
  });
}

const importPattern = /(?:^|\n)\s*(?:import|export)[^'"]*?from\s+["']([^"']+)["']/g;

describe("module layering", () => {
  const edges: { from: string; to: string }[] = [];
  for (const file of files(src)) {
    const text = fs.readFileSync(file, "utf8");
    for (const match of text.matchAll(importPattern)) {
      const spec = match[1] ?? "";
      if (spec.startsWith(".")) {
        const target = path.relative(src, path.resolve(path.dirname(file), spec)).replace(/\.js$/, ".ts");
        edges.push({ from: path.relative(src, file), to: target });
      }
    }
  }

  it("should find the imports it checks", () => {
    expect(edges.length).toBeGreaterThan(20);
  });

  it("should never import from a higher layer", () => {
    const upward = edges.filter((e) => layerOf(e.to) > layerOf(e.from)).map((e) => `${e.from} -> ${e.to}`);
    expect(upward).toEqual([]);
  });

  it("should let actors import only core and the BAREWire format (actors know nothing about models)", () => {
    const outside = edges
      .filter((e) => e.from.startsWith("actors/"))
      .filter((e) => !["actors/", "core/", "formats/barewire/"].some((prefix) => e.to.startsWith(prefix)))
      .map((e) => `${e.from} -> ${e.to}`);
    expect(outside).toEqual([]);
  });

  it("should keep concrete backends independent of each other", () => {
    const concrete = (p: string): string | undefined => /^backends\/([^/]+)\//.exec(p)?.[1];
    const crossing = edges
      .filter((e) => concrete(e.from) && concrete(e.to) && concrete(e.from) !== concrete(e.to))
      .map((e) => `${e.from} -> ${e.to}`);
    expect(crossing).toEqual([]);
  });
});
