/**
 * The CUDA harness's host side, runnable without a GPU: the exporter (scripts/cuda/export-vectors.ts) writes
 * the JS reference's vectors, the harness (native/cuda/harness, built here with g++ and no CUDA) parses them,
 * runs its CPU reference over bb_math.h — the element arithmetic the CUDA kernels call: the dp4a ternary path on
 * device-layout rows, the quantizer, the Q8_0 head's block order — and must agree with the JS reference bit for
 * bit; a changed expected value must make it fail, and a malformed file must be a clean error. The GPU half of
 * the harness is compiled (syntax) against the CUDA headers when they are present. The kernels themselves
 * run only on a GPU machine (scripts/cuda/device-check.sh; docs/cuda.md).
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeVectors, MAX_VECTOR_FILE_BYTES, type VectorCase } from "../../scripts/cuda/vector-file.js";
import { exportVectors, kernelCases } from "../../scripts/cuda/export-vectors.js";

const root = path.resolve(import.meta.dirname, "../..");
const harnessDir = path.join(root, "native/cuda/harness");
const HOST_SOURCES = ["main.cc", "vectors.cc", "compare.cc", "host_ref.cc"];
const hasGxx = spawnSync("g++", ["--version"]).status === 0;
const cudaInclude = ["/usr/local/cuda/include", process.env["CUDA_HOME"] && path.join(process.env["CUDA_HOME"], "include")].find(
  (d): d is string => typeof d === "string" && existsSync(path.join(d, "cuda_runtime.h")),
);

interface Report {
  mode: string;
  pass: number;
  fail: number;
  skipped: number;
  errors: number;
  error?: string;
  compare_tests?: { name: string; ok: boolean }[];
  cases: { name: string; kernel: string; status: string }[];
}

describe.skipIf(!hasGxx)("CUDA harness, host side", () => {
  let dir = "";
  let harness = "";
  let exported: { vectors: string; model: string; bytes: number };
  const selfCheck = (file: string): { status: number | null; report: Report } => {
    const r = spawnSync(harness, ["--self-check", file], { encoding: "utf8" });
    return { status: r.status, report: JSON.parse(r.stdout) as Report };
  };

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), "barbell-cuda-"));
    harness = path.join(dir, "harness");
    const build = spawnSync("g++", ["-std=c++17", "-O1", "-Wall", "-Wextra", "-Werror", "-ffp-contract=off", "-o", harness, ...HOST_SOURCES], {
      cwd: harnessDir,
      encoding: "utf8",
    });
    expect(build.stderr).toBe("");
    expect(build.status).toBe(0);
    exported = exportVectors(dir);
  }, 300_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("should export both files within the device tool's 64 MiB per call", () => {
    expect(exported.bytes).toBeLessThan(MAX_VECTOR_FILE_BYTES);
    expect(readFileSync(exported.vectors).subarray(0, 4).toString()).toBe("BBCV");
  });

  it("should agree bit for bit with the JS reference on every case its CPU reference covers", () => {
    const { status, report } = selfCheck(exported.vectors);
    expect(report.fail).toBe(0);
    expect(report.errors).toBe(0);
    expect(status).toBe(0);
    const passed = (kernel: string): number => report.cases.filter((c) => c.kernel === kernel && c.status === "pass").length;
    // Every ternary shape (K tails, M = 1 and M > 1, raw bytes with code 3), every quantizer case (the
    // non-finite one by its index), the Q8_0 head, the embeddings, RMSNorm.
    expect(passed("matmulTernaryI8")).toBe(10);
    expect(passed("quantizeActivations")).toBe(5);
    expect(passed("matmulQ8I8")).toBe(3);
    expect(passed("embedding")).toBe(4);
    expect(passed("rmsNorm")).toBe(3);
    // The rest (attention, RoPE, softmax, element-wise, dense heads, sampling) is GPU-only, and said so.
    expect(report.skipped).toBe(report.cases.length - report.pass);
    expect(report.cases.filter((c) => c.status !== "pass").every((c) => c.status.startsWith("skipped"))).toBe(true);
    expect(report.compare_tests?.length).toBeGreaterThanOrEqual(9);
    expect(report.compare_tests?.every((t) => t.ok)).toBe(true);
  });

  it("should fail a case whose expected output is off by one ulp", () => {
    const cases = kernelCases();
    const index = cases.findIndex((c) => c.kernel === "matmulTernaryI8");
    const victim = cases[index] as VectorCase;
    const tensors = victim.tensors.map((t) => {
      if (t.name !== "out") {
        return t;
      }
      const values = new Float32Array((t.data as Float32Array).slice());
      const u = new Uint32Array(values.buffer);
      u[0] = (u[0] ?? 0) + 1;
      return { ...t, data: values };
    });
    cases[index] = { ...victim, tensors };
    const file = path.join(dir, "changed.bin");
    writeFileSync(file, encodeVectors(cases));
    const { status, report } = selfCheck(file);
    expect(status).toBe(1);
    expect(report.fail).toBe(1);
    expect(report.cases.find((c) => c.status === "fail")?.name).toBe(victim.name);
  });

  it("should report a truncated or foreign file as an input error, without crashing", () => {
    const bytes = readFileSync(exported.vectors);
    for (const [name, data] of [
      ["truncated.bin", bytes.subarray(0, Math.floor(bytes.length / 2))],
      ["foreign.bin", Buffer.from("GGUF\x03\x00\x00\x00")],
      ["huge-count.bin", Buffer.from([...Buffer.from("BBCV"), 1, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f])],
    ] as const) {
      const file = path.join(dir, name);
      writeFileSync(file, data);
      const r = spawnSync(harness, ["--self-check", file], { encoding: "utf8" });
      expect(r.status).toBe(2);
      expect((JSON.parse(r.stdout) as Report).error).toMatch(/truncated|not a BBCV|above the limit/);
    }
  });

  it("should say that the GPU modes need a CUDA build", () => {
    const r = spawnSync(harness, ["--gpu", exported.vectors], { encoding: "utf8" });
    expect(r.status).toBe(2);
    expect((JSON.parse(r.stdout) as Report).error).toContain("without CUDA");
  });

  it.skipIf(cudaInclude === undefined)("should compile the harness's GPU half against the CUDA headers", () => {
    for (const file of ["main.cc", "gpu_run.cc", "model_run.cc"]) {
      const r = spawnSync("g++", ["-std=c++17", "-fsyntax-only", "-Wall", "-Wextra", "-Werror", "-DBBC_WITH_CUDA", `-I${cudaInclude ?? ""}`, file], {
        cwd: harnessDir,
        encoding: "utf8",
      });
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
    }
  });
});
