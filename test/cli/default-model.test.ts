/** The packaged default model: found from the package root, used by generate, chat and serve without -m. */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import { DEFAULT_MODEL, DefaultModelError, defaultModelPath, modelOrDefault, packageRoot } from "../../src/cli/default-model.js";
import { parseCard } from "../../src/cli/train.js";
import { runCli as run } from "./helpers.js";

const root = path.resolve(import.meta.dirname, "..", "..");
const empty = fs.mkdtempSync(path.join(os.tmpdir(), "barbell-default-model-"));
afterAll(() => fs.rmSync(empty, { recursive: true, force: true }));

describe("default model", () => {
  it("should be committed with a card that barbell train wrote, and be found from the package root", () => {
    expect(packageRoot()).toBe(root);
    expect(packageRoot(path.join(root, "src", "cli"))).toBe(root);
    expect(defaultModelPath()).toBe(path.join(root, DEFAULT_MODEL));
    const size = fs.statSync(path.join(root, DEFAULT_MODEL)).size;
    expect(size).toBeGreaterThan(100_000);
    expect(size).toBeLessThan(16 * 2 ** 20); // "a few MB"
    const record = parseCard(fs.readFileSync(path.join(root, "models", "barbell-kjv.md"), "utf8"));
    expect(record["command"]).toMatch(/^barbell train data\/kjv\.txt --out models\/barbell-kjv\.gguf /);
    expect(record["valPerplexity"]).toBeGreaterThan(1);
    const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as { files: string[]; scripts: Record<string, string> };
    expect(pkg.files).toContain("models");
    expect(pkg.scripts["start"]).toBe("node bin/barbell.js serve");
    // The script that retrains it runs the command recorded in the card.
    const script = fs.readFileSync(path.join(root, pkg.scripts["train:default"] ?? ""), "utf8");
    const flags = (record["command"] as string).replace(/^barbell train data\/kjv\.txt /, "").split(/ (?=--)/);
    for (const flag of flags) {
      expect(script.replace(/\\\n\s*/g, "").replace(/"/g, "'")).toContain(flag);
    }
  });

  it("should say which model it uses, and name the retrain command when it is missing", () => {
    let note = "";
    expect(modelOrDefault("x.gguf", (t) => (note += t))).toBe("x.gguf");
    expect(note).toBe("");
    expect(modelOrDefault(undefined, (t) => (note += t))).toBe(path.join(root, DEFAULT_MODEL));
    expect(note).toMatch(/^barbell: no -m given; using the default model \S*barbell-kjv\.gguf .*card: \S*barbell-kjv\.md\)\n$/);
    expect(() => defaultModelPath(empty)).toThrow(DefaultModelError);
    expect(() => defaultModelPath(empty)).toThrow(/^\[barbell\] the default model .* is missing .*npm run train:default/);
    // Without -m the CLI says so, and what to give instead.
    expect(() => modelOrDefault(undefined, () => undefined, empty)).toThrow(/^\[cli\] no -m given and the default model .* is missing .*npm run train:default\); or give -m <model.gguf>$/);
  });

  it("should generate and chat with the default model when no -m is given", async () => {
    const gen = await run(["generate", "And God said", "--temperature", "0", "--max-tokens", "8", "--backend", "js", "--no-autotune"]);
    expect(gen.err).toContain("barbell: no -m given; using the default model");
    expect(gen.out.trim().length).toBeGreaterThan(0);
    const chat = await run(["chat", "--max-tokens", "4", "--seed", "1", "--backend", "js", "--no-autotune"], { input: "Hello\n" });
    expect(chat.err).toContain("using the default model");
    // logits is for parity checks: it still needs an explicit -m.
    const stderr = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    try {
      await expect(run(["logits", "--tokens", "1,2"])).rejects.toThrow(/required option '-m, --model <path>' not specified/);
    } finally {
      stderr.mockRestore();
    }
  });

  it("should serve the default model when given neither -m, --config nor --demo", async () => {
    const controller = new AbortController();
    let listening: (url: string) => void = () => undefined;
    const url = new Promise<string>((resolve) => (listening = resolve));
    const served = run(["serve", "--port", "0", "--isolation", "in-process", "--backend", "js"], {
      signal: controller.signal,
      onOut: (t) => {
        const m = /listening on (\S+)/.exec(t);
        if (m?.[1] !== undefined) {
          listening(m[1]);
        }
      },
    });
    try {
      const models = (await (await fetch(`${await url}/v1/models`)).json()) as { data: { id: string }[] };
      expect(models.data.map((m) => m.id)).toEqual(["barbell-kjv"]);
    } finally {
      controller.abort();
    }
    const { out, err } = await served;
    expect(err).toContain("using the default model");
    expect(out).toContain("barbell serve: model 'barbell-kjv'");
    expect(out).not.toContain("RANDOM weights");
    await expect(run(["serve", "--demo", "-m", "x.gguf"])).rejects.toThrow(/give at most one of -m <model>, --config <file> or --demo/);
  });
});
