import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { buildProgram } from "../../src/cli/main.js";
import type { BackendReport } from "../../src/cli/backends.js";

async function run(args: string[]): Promise<string> {
  let out = "";
  const io = {
    out: (t: string) => void (out += t),
    err: () => undefined,
    errIsTty: false,
    input: Readable.from([]),
    signal: new AbortController().signal,
  };
  await buildProgram((l) => void (out += `${l}\n`), io).parseAsync(["node", "barbell", ...args]);
  return out;
}

describe("barbell backends", () => {
  it("should report every backend as JSON with nothing else on stdout", async () => {
    const reports = JSON.parse(await run(["backends", "--json"])) as BackendReport[];
    const js = reports.find((r) => r.name === "js");
    expect(js?.available).toBe(true);
    expect(js?.gemvGops).toBeGreaterThan(0);
    for (const r of reports) {
      expect(r.available || (r.reason ?? "").length > 0).toBe(true);
    }
  });

  it("should print one line per backend as text", async () => {
    const text = await run(["backends"]);
    expect(text).toMatch(/^js {10}available/m);
  });
});
