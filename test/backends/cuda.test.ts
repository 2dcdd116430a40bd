/**
 * The CUDA backend on a machine without a GPU: scripts/build-cuda.mjs skips with its reason and never fails
 * (BARBELL_SKIP_CUDA=1, no nvcc, an nvcc that fails), the addon is built wherever nvcc and the CUDA runtime
 * are (the install built it), and the provider's probe says why it cannot run — "no CUDA driver" when the
 * runtime answers cudaErrorInsufficientDriver — while creating it is a typed CudaError, never a crash.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CudaError, cudaAddonPath, cudaProvider, loadCudaAddon, probeCuda } from "../../src/backends/cuda/index.js";

const root = path.resolve(import.meta.dirname, "../..");
const script = path.join(root, "scripts/build-cuda.mjs");
const dirs: string[] = [];
const tmp = (): string => {
  const d = mkdtempSync(path.join(tmpdir(), "barbell-cuda-build-"));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function build(env: Record<string, string>): { status: number | null; stderr: string; record: string } {
  const out = tmp();
  const r = spawnSync(process.execPath, [script], { cwd: root, encoding: "utf8", env: { ...process.env, BARBELL_CUDA_BUILD_DIR: out, ...env } });
  const recordFile = path.join(out, "cuda-build.txt");
  return { status: r.status, stderr: r.stderr, record: existsSync(recordFile) ? readFileSync(recordFile, "utf8").trim() : "" };
}

/** nvcc where scripts/build-cuda.mjs looks for it. */
const nvcc = [...(process.env["PATH"] ?? "").split(path.delimiter), "/usr/local/cuda/bin"].map((d) => path.join(d, "nvcc")).find((p) => existsSync(p));

describe("scripts/build-cuda.mjs", () => {
  it("should skip with BARBELL_SKIP_CUDA=1, saying so, and exit 0", () => {
    const r = build({ BARBELL_SKIP_CUDA: "1" });
    expect(r.status).toBe(0);
    expect(r.record).toBe("skipped: BARBELL_SKIP_CUDA=1");
    expect(r.stderr).toContain("CUDA backend not built (BARBELL_SKIP_CUDA=1)");
  });

  it("should skip without nvcc and exit 0", () => {
    const r = build({ BARBELL_NVCC: path.join(tmp(), "no-nvcc-here") });
    expect(r.status).toBe(0);
    expect(r.record).toBe("skipped: BARBELL_NVCC names no file");
  });

  it("should record a failing nvcc's first error line and still exit 0", () => {
    const toolkit = tmp();
    mkdirSync(path.join(toolkit, "bin"));
    mkdirSync(path.join(toolkit, "include"));
    mkdirSync(path.join(toolkit, "lib64"));
    writeFileSync(path.join(toolkit, "include/cuda_runtime.h"), "");
    writeFileSync(path.join(toolkit, "lib64/libcudart_static.a"), "");
    const fake = path.join(toolkit, "bin/nvcc");
    writeFileSync(fake, '#!/bin/sh\nif [ "$1" = --version ]; then echo "fake nvcc"; exit 0; fi\necho "kernels.cu(1): error: boom" >&2\nexit 1\n');
    chmodSync(fake, 0o755);
    const r = build({ BARBELL_NVCC: fake });
    expect(r.status).toBe(0);
    expect(r.record).toMatch(/^failed: nvcc \w+\.cu: kernels\.cu\(1\): error: boom$|^skipped: no Node headers/);
  });

  it.skipIf(nvcc === undefined || process.env["BARBELL_SKIP_CUDA"] === "1")("should have built the addon where nvcc is (the install runs the build)", () => {
    const recordFile = path.join(path.dirname(cudaAddonPath()), "cuda-build.txt");
    expect(existsSync(recordFile), 'no build-cuda/cuda-build.txt: run "node scripts/build-cuda.mjs"').toBe(true);
    // The default cubins unless BARBELL_CUDA_ARCHS narrowed them.
    const archs = process.env["BARBELL_CUDA_ARCHS"] === undefined ? "sm_80, sm_89, sm_90" : "sm_\\d+";
    expect(readFileSync(recordFile, "utf8")).toMatch(new RegExp(`^built in [\\d.]+ s \\(${archs}[^)]* \\+ compute_90 PTX; `));
    const load = loadCudaAddon();
    expect(load.ok ? "" : load.reason).toBe("");
  });
});

describe("cuda provider", () => {
  const load = loadCudaAddon();
  const gpu = load.ok && load.addon.probe().devices > 0;

  it.skipIf(gpu)("should say why it cannot run here", async () => {
    const probe = await cudaProvider.probe();
    expect(probe.available).toBe(false);
    const reason = probe.available ? "" : probe.reason;
    if (load.ok) {
      // The runtime linked into the addon answers cudaErrorInsufficientDriver without a driver.
      expect(reason).toMatch(/^no CUDA driver \(the CUDA runtime answered cudaErrorInsufficientDriver\)$|^no CUDA device$/);
    } else {
      expect(reason).toMatch(/^barbell_cuda\.node (was not built|failed to load|speaks ABI|was built from another op table)/);
      expect(reason).not.toContain(root);
    }
    expect(probeCuda()).toEqual(probe);
    expect(cudaProvider.basePriority).toBeLessThan(0);
  });

  it.skipIf(gpu)("should refuse to create with a typed error", async () => {
    const error: unknown = await cudaProvider.create({}).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(CudaError);
    expect((error as CudaError).code).toBe(load.ok ? "no-driver" : "not-built");
  });

  it.skipIf(!load.ok || gpu)("should turn the addon's driver error into a code, not a crash", () => {
    if (!load.ok) {
      return;
    }
    let caught: unknown;
    try {
      load.addon.init(0);
    } catch (e) {
      caught = e;
    }
    expect((caught as { code?: string }).code).toBe("ENODRIVER");
    expect(() => load.addon.alloc(16)).toThrow(/bbc_init has not been called/);
    expect(() => load.addon.quantize(1n, 1, 1, 2n, 3n)).toThrow(/bbc_init has not been called/);
    // Arguments are checked before any call: a null device pointer or a non-integer size never reaches CUDA.
    expect(() => load.addon.quantize(0n, 1, 1, 2n, 3n)).toThrow(/null device pointer/);
    expect(() => load.addon.quantize(1n, 1.5, 1, 2n, 3n)).toThrow(/must be an int32/);
  });
});
