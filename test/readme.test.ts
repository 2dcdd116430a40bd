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
