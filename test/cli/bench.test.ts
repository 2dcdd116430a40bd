import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { InvalidArgumentError } from "commander";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { benchList, benchTests, formatBench, MAX_BENCH_LIST, type BenchRow } from "../../src/cli/bench.js";
import { makeBitnetFixture } from "../../src/model/bitnet/fixture.js";
import { mainCli, runCli } from "./helpers.js";

let dir = "";
let file = "";

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "barbell-bench-"));
  file = path.join(dir, "tiny.gguf");
  fs.writeFileSync(file, makeBitnetFixture({ hidden: 128, layers: 2, heads: 4, kvHeads: 2, ffn: 256, vocab: 300, contextLength: 256, seed: 3 }));
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("bench list flags (llama-bench's syntax)", () => {
  it("reads comma lists and the three range forms", () => {
    const list = benchList(1 << 17);
    expect(list("512")).toEqual([512]);
    expect(list("0,128,256")).toEqual([0, 128, 256]);
    expect(list("1-4")).toEqual([1, 2, 3, 4]);
    expect(list("16-64+16")).toEqual([16, 32, 48, 64]);
    expect(list("1-16*2")).toEqual([1, 2, 4, 8, 16]);
    expect(list("8,1-3")).toEqual([8, 1, 2, 3]);
  });

  it("refuses values out of range, ranges that never end and lists that expand too far", () => {
    const list = benchList(1000);
    for (const bad of ["", "a", "-1", "1001", "1.5", "5-1", "0-8*2", "1-8*1", "1-8+0", "2,,3"]) {
      expect(() => list(bad), bad).toThrow(InvalidArgumentError);
    }
    expect(() => list(`0-${MAX_BENCH_LIST}`)).toThrow(/at most/);
    expect(list(`1-${MAX_BENCH_LIST}`)).toHaveLength(MAX_BENCH_LIST);
  });

  it("orders tests as llama-bench does: every pp, then every tg, then pp+tg, per depth", () => {
    expect(benchTests({ nPrompt: [0, 64], nGen: [16, 0], pg: [[8, 4]], nDepth: [0, 32] })).toEqual([
      { nPrompt: 64, nGen: 0, depth: 0 },
      { nPrompt: 0, nGen: 16, depth: 0 },
      { nPrompt: 8, nGen: 4, depth: 0 },
      { nPrompt: 64, nGen: 0, depth: 32 },
      { nPrompt: 0, nGen: 16, depth: 32 },
      { nPrompt: 8, nGen: 4, depth: 32 },
    ]);
  });
});

describe("barbell bench", () => {
  it("times pp, tg and pp+tg on a model and prints llama-bench's JSON fields", async () => {
    const { out } = await runCli(["bench", "-m", file, "-p", "16", "-n", "8", "--pg", "8,4", "-r", "2", "-t", "1", "-o", "json", "--backend", "js"]);
    const rows = JSON.parse(out) as BenchRow[];
    expect(rows.map((r) => [r.n_prompt, r.n_gen, r.n_depth])).toEqual([
      [16, 0, 0],
      [0, 8, 0],
      [8, 4, 0],
    ]);
    for (const r of rows) {
      expect(r.model_filename).toBe(file);
      expect(r.model_type).toMatch(/^bitnet-b1\.58 /);
      expect(r.model_size).toBeGreaterThan(0);
      expect(r.model_n_params).toBeGreaterThan(100_000);
      expect(r.backends).toBe("js");
      expect(r.n_threads).toBe(1);
      expect(r.samples_ns).toHaveLength(2);
      expect(r.samples_ts).toHaveLength(2);
      for (const [i, ns] of r.samples_ns.entries()) {
        expect(ns).toBeGreaterThan(0);
        // t/s is the test's tokens over its time, sample by sample
        expect(r.samples_ts[i]).toBeCloseTo(((r.n_prompt + r.n_gen) * 1e9) / ns, 6);
      }
      expect(r.avg_ts).toBeGreaterThan(0);
      expect(r.avg_ns).toBe(Math.round(r.samples_ns.reduce((a, b) => a + b, 0) / 2));
    }
  });

  it("prints a Markdown table with llama-bench's columns, a row per test, and tg after a depth", async () => {
    const { out } = await runCli(["bench", "-m", file, "-p", "0", "-n", "4", "-d", "0,32", "-r", "1", "--no-warmup", "--backend", "js"]);
    const lines = out.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^\| model {26}\| {7}size \| {5}params \| backend {18}\| threads \| {12}test \| {18}t\/s \|$/);
    expect(lines[1]).toBe(`|${"-".repeat(32)}|${"-".repeat(11)}:|${"-".repeat(11)}:|${"-".repeat(26)}|${"-".repeat(8)}:|${"-".repeat(16)}:|${"-".repeat(21)}:|`);
    expect(lines).toHaveLength(4);
    expect(lines[2]).toMatch(/\| +tg4 \| +\d+\.\d\d ± 0\.00 \|$/);
    expect(lines[3]).toMatch(/\| +tg4 @ d32 \| +\d+\.\d\d ± 0\.00 \|$/);
  });

  it("shows the KV cache types as llama-bench does: in every row's fields, as columns when not the default", async () => {
    const md = (await runCli(["bench", "-m", file, "-p", "0", "-n", "2", "-r", "1", "--no-warmup", "--kv-type", "f16", "--backend", "js"])).out.split("\n");
    expect(md[0]).toMatch(/\| threads \| type_k \| type_v \| +test \|/);
    expect(md[2]).toMatch(/\| +0 \| f16 +\| f16 +\| +tg2 \|/);
    const row = JSON.parse((await runCli(["bench", "-m", file, "-p", "0", "-n", "2", "-r", "1", "--no-warmup", "--kv-type", "q8_0", "-o", "jsonl", "--backend", "js"])).out) as BenchRow;
    expect([row.type_k, row.type_v]).toEqual(["q8_0", "q8_0"]);
  });

  it("writes CSV and JSON lines", async () => {
    const csv = (await runCli(["bench", "-m", file, "-p", "8", "-n", "0", "-r", "1", "-o", "csv", "--backend", "js"])).out.trimEnd().split("\n");
    expect(csv[0]).toBe(
      "model_filename,model_type,model_size,model_n_params,backends,n_threads,n_prompt,n_gen,n_depth,type_k,type_v,test_time,avg_ns,stddev_ns,avg_ts,stddev_ts,samples_ns,samples_ts",
    );
    expect(csv).toHaveLength(2);
    const jsonl = (await runCli(["bench", "-m", file, "-p", "8", "-n", "2", "-r", "1", "-o", "jsonl", "--backend", "js"])).out.trimEnd().split("\n");
    expect(jsonl.map((l) => (JSON.parse(l) as BenchRow).n_gen)).toEqual([0, 2]);
  });

  it("accepts llama-bench's -pg spelling through the binary's entry", async () => {
    const r = await mainCli(["bench", "-m", file, "-p", "0", "-n", "0", "-pg", "4,2", "-r", "1", "-o", "jsonl", "--backend", "js"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out) as BenchRow).toMatchObject({ n_prompt: 4, n_gen: 2 });
  });

  it("refuses what it cannot time with a one-line error, before loading anything", async () => {
    const none = await mainCli(["bench", "-m", file, "-p", "0", "-n", "0"]);
    expect(none.code).toBe(1);
    expect(none.err).toMatch(/no test to run/);
    const depth = await mainCli(["bench", "-m", file, "-p", "64", "-d", "16"]);
    expect(depth.code).toBe(1);
    expect(depth.err).toMatch(/-d > 0 times tg tests only/);
    const ctx = await mainCli(["bench", "-m", file, "-p", "4096", "-n", "0", "--backend", "js"]);
    expect(ctx.code).toBe(1);
    expect(ctx.err).toMatch(/context/);
    expect(ctx.err).not.toMatch(/\n\s+at /);
    const missing = await mainCli(["bench", "-m", path.join(dir, "nope.gguf")]);
    expect(missing.code).toBe(1);
    expect(missing.err).not.toMatch(/ENOENT/);
  });
});
