import { execFileSync } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { buildProgram, main } from "../../src/cli/main.js";

let dir = "";
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "barbell-cli-"));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

async function run(...args: string[]): Promise<string> {
  const lines: string[] = [];
  await buildProgram((l) => lines.push(l)).parseAsync(["node", "barbell", ...args]);
  return lines.join("\n");
}

describe("barbell CLI", () => {
  it("should write a fixture that inspect reads back, as text and as JSON", async () => {
    const file = path.join(dir, "m.gguf");
    expect(await run("fixture", file, "--weights", "tq2_0", "--hidden", "256", "--layers", "1", "--untied")).toContain("wrote");
    const text = await run("inspect", file);
    expect(text).toContain("bitnet-b1.58");
    expect(text).toMatch(/blk\.0\.attn_q\.weight\s+tq2_0\s+\[256, 256\]/);
    const report = JSON.parse(await run("inspect", file, "--json")) as { tensors: { name: string }[] };
    expect(report.tensors.map((t) => t.name)).toContain("output.weight");
    expect(report.tensors).toHaveLength(2 + 11 + 1);
  });

  it("should run the demo and show the BitLinear agreeing with float", async () => {
    const out = await run("demo", "--seed", "3");
    expect(out).toContain("BitLinear blk.0.ffn_up");
    const nmse = Number(/NMSE of the int8 path against float: (\S+)/.exec(out)?.[1]);
    expect(nmse).toBeLessThan(1e-3);
  });

  it("should answer a hostile file with one line naming the error, and exit status 1", async () => {
    const file = path.join(dir, "bad.gguf");
    await fs.writeFile(file, Buffer.from("GGUF\x03\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff", "latin1"));
    const stderr = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    try {
      expect(await main(["node", "barbell", "inspect", file])).toBe(1);
      const written = stderr.mock.calls.map((c) => String(c[0])).join("");
      expect(written).toMatch(/^barbell: FormatError \(\w[\w-]*\): /);
      expect(written.split("\n").filter(Boolean)).toHaveLength(1);
    } finally {
      stderr.mockRestore();
    }
  });

  it("should refuse a FIFO, a folder and a device as a model file at once, without blocking", async () => {
    const fifo = path.join(dir, "model.fifo");
    execFileSync("mkfifo", [fifo]);
    const stderr = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    try {
      for (const [file, kind] of [[fifo, "a FIFO"], ["/dev/zero", "a device"]] as const) {
        stderr.mockClear();
        expect(await main(["node", "barbell", "inspect", file])).toBe(1);
        expect(stderr.mock.calls.map((c) => String(c[0])).join("")).toContain(`FileError (not-a-file): [model] file ${file} is ${kind}, not a regular file`);
      }
    } finally {
      stderr.mockRestore();
    }
  });

  it("should report a missing file without a stack trace", async () => {
    const stderr = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    try {
      expect(await main(["node", "barbell", "inspect", path.join(dir, "nope.gguf")])).toBe(1);
      const text = stderr.mock.calls.map((c) => String(c[0])).join("");
      expect(text).toMatch(/^barbell: FileError \(missing\): \[model\] file .*nope\.gguf does not exist; inspect reads a \.gguf file \(check the path\)\n$/);
      expect(text).not.toMatch(/\n\s+at /);
    } finally {
      stderr.mockRestore();
    }
  });
});
