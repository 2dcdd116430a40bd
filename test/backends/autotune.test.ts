import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Autotuner, type TuneCandidate } from "../../src/backends/autotune.js";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "barbell-tune-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A fake clock: each candidate advances it by its own cost, so timings are deterministic. */
function setup(costs: Record<string, number>) {
  let t = 0;
  const calls: string[] = [];
  const now = (): number => t;
  const candidates: TuneCandidate[] = Object.entries(costs).map(([id, cost]) => ({
    id,
    run: () => {
      calls.push(id);
      t += cost;
    },
  }));
  return { now, candidates, calls };
}

describe("autotuner", () => {
  it("should pick the fastest candidate and reuse the choice without measuring again", () => {
    const { now, candidates, calls } = setup({ "js×1": 50, "native-cpu×1": 4, "native-cpu×2": 2.5 });
    const tuner = new Autotuner({ file: null, fingerprint: "m1", now });
    expect(tuner.choose("matmulTernaryI8 1x2560x6912", candidates)).toBe("native-cpu×2");
    const measured = calls.length;
    expect(measured).toBe(3 * 6);
    expect(tuner.choose("matmulTernaryI8 1x2560x6912", candidates)).toBe("native-cpu×2");
    expect(calls.length).toBe(measured);
  });

  it("should persist choices and drop them when the machine fingerprint changes", () => {
    const file = path.join(dir, "tune.json");
    const a = setup({ x: 3, y: 1 });
    new Autotuner({ file, fingerprint: "cpu-A", now: a.now }).choose("k", a.candidates);
    const b = setup({ x: 1, y: 3 });
    const same = new Autotuner({ file, fingerprint: "cpu-A", now: b.now });
    expect(same.cached("k")).toBe("y");
    expect(same.choose("k", b.candidates)).toBe("y");
    expect(b.calls).toEqual([]);
    const moved = new Autotuner({ file, fingerprint: "cpu-B", now: b.now });
    expect(moved.cached("k")).toBeUndefined();
    expect(moved.choose("k", b.candidates)).toBe("x");
  });

  it("should re-measure when the cached candidate is no longer offered", () => {
    const first = setup({ gone: 1, stays: 2 });
    const tuner = new Autotuner({ file: null, fingerprint: "m", now: first.now });
    tuner.choose("k", first.candidates);
    const second = setup({ stays: 2, other: 5 });
    expect(tuner.choose("k", second.candidates.map((c) => ({ ...c, run: c.run })))).toBe("stays");
  });

  it("should survive a corrupt cache file", () => {
    const file = path.join(dir, "bad.json");
    fs.writeFileSync(file, "{not json");
    const { now, candidates } = setup({ a: 2, b: 1 });
    expect(new Autotuner({ file, fingerprint: "m", now }).choose("k", candidates)).toBe("b");
    expect(JSON.parse(fs.readFileSync(file, "utf8"))).toMatchObject({ version: 1, choices: { k: "b" } });
  });
});
