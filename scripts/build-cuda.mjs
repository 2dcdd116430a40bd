#!/usr/bin/env node
// Builds the optional CUDA backend (build-cuda/barbell_cuda.node) with nvcc, when nvcc and the CUDA runtime
// are found; otherwise skips, saying why. Run by scripts/build-native.mjs (so by `npm install`); never fails the
// install: any problem is one warning line, the reason goes to build-cuda/cuda-build.txt (the backend's probe
// reports it), and the exit status is 0.
//
// Fatbinary: sm_80, sm_89 and sm_90 cubins plus compute_90 PTX (JIT-compiled by newer drivers). The four .cu
// files compile in parallel (one nvcc per file, as many at once as there are cores) and objects are reused
// while their sources, the headers and the flags are unchanged. The CUDA runtime is linked statically, so the
// addon needs only the driver (libcuda) at run time, and without one its probe answers "no CUDA driver".
//
// Environment: BARBELL_SKIP_CUDA=1 skips; BARBELL_CUDA_ARCHS="80,90" overrides the cubin list;
// CUDA_HOME / CUDA_PATH name the toolkit when nvcc is not on PATH; BARBELL_NVCC names nvcc itself (the only
// candidate then); BARBELL_CUDA_BUILD_DIR puts the addon, objects and record elsewhere than build-cuda/ (tests).
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const src = join(root, "native", "cuda");
// Not under build/: node-gyp's "rebuild" (the CPU addon) deletes build/ as a whole.
const out = process.env.BARBELL_CUDA_BUILD_DIR ? resolve(process.env.BARBELL_CUDA_BUILD_DIR) : join(root, "build-cuda");
const objDir = join(out, "obj");
const recordFile = join(out, "cuda-build.txt");
const logFile = join(out, "cuda-build.log");
const SOURCES = ["kernels_int", "kernels_float", "api", "model"];
const DEFAULT_ARCHS = ["80", "89", "90"];
const PTX_ARCH = "90";

function record(line, log = "") {
  mkdirSync(out, { recursive: true });
  writeFileSync(recordFile, `${line}\n`);
  if (log !== "") {
    writeFileSync(logFile, log);
  }
}

function skip(reason, log = "") {
  record(`skipped: ${reason}`, log);
  console.warn(`barbell: CUDA backend not built (${reason})`);
  process.exit(0);
}

function findNvcc() {
  if (process.env.BARBELL_NVCC) {
    return existsSync(process.env.BARBELL_NVCC) ? process.env.BARBELL_NVCC : undefined;
  }
  const dirs = [];
  for (const v of [process.env.CUDA_HOME, process.env.CUDA_PATH]) {
    if (v) {
      dirs.push(join(v, "bin"));
    }
  }
  dirs.push(...(process.env.PATH ?? "").split(delimiter).filter((d) => d !== ""), "/usr/local/cuda/bin");
  return dirs.map((d) => join(d, "nvcc")).find((p) => existsSync(p));
}

/** The toolkit root: where include/cuda_runtime.h is, next to nvcc or at the usual places. */
function findToolkit(nvcc) {
  const candidates = [dirname(dirname(nvcc)), process.env.CUDA_HOME, process.env.CUDA_PATH, "/usr/local/cuda"].filter(Boolean);
  return candidates.find((c) => existsSync(join(c, "include", "cuda_runtime.h")));
}

function findRuntimeLib(toolkit) {
  return ["lib64", "lib", join("targets", "x86_64-linux", "lib"), join("targets", "sbsa-linux", "lib")]
    .map((d) => join(toolkit, d))
    .find((d) => existsSync(join(d, "libcudart_static.a")));
}

function findNodeInclude() {
  const prefix = resolve(dirname(process.execPath), "..");
  return [join(prefix, "include", "node"), "/usr/include/node", "/usr/local/include/node"].find((d) => existsSync(join(d, "node_api.h")));
}

function firstErrorLine(text) {
  const lines = text.split("\n").map((l) => l.trim());
  return (lines.find((l) => /\berror\b/i.test(l)) ?? lines.find((l) => l !== "") ?? "unknown error").slice(0, 300);
}

/** Runs a command; resolves { code, output }. */
function run(cmd, args) {
  return new Promise((done) => {
    const child = spawn(cmd, args, { cwd: root });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    child.on("error", (e) => done({ code: -1, output: `${output}${e.message}` }));
    child.on("close", (code) => done({ code: code ?? -1, output }));
  });
}

/** Runs jobs with at most `limit` at once. */
async function pool(jobs, limit) {
  const results = [];
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, jobs.length) }, async () => {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await jobs[i]();
    }
  });
  await Promise.all(workers);
  return results;
}

if (process.env.BARBELL_SKIP_CUDA === "1") {
  skip("BARBELL_SKIP_CUDA=1");
}
const nvcc = findNvcc();
if (nvcc === undefined) {
  skip(process.env.BARBELL_NVCC ? "BARBELL_NVCC names no file" : "nvcc was not found on PATH, in CUDA_HOME or in /usr/local/cuda/bin");
}
const toolkit = findToolkit(nvcc);
if (toolkit === undefined) {
  skip(`no CUDA headers (include/cuda_runtime.h) next to ${nvcc}`);
}
const libDir = findRuntimeLib(toolkit);
if (libDir === undefined) {
  skip("the CUDA runtime (libcudart_static.a) was not found in the toolkit");
}
const nodeInclude = findNodeInclude();
if (nodeInclude === undefined) {
  skip("no Node headers (node_api.h)");
}
const version = spawnSync(nvcc, ["--version"], { encoding: "utf8" });
if (version.status !== 0) {
  skip(`nvcc --version failed: ${firstErrorLine(`${version.stdout ?? ""}${version.stderr ?? ""}${version.error?.message ?? ""}`)}`);
}

const archs = (process.env.BARBELL_CUDA_ARCHS ?? DEFAULT_ARCHS.join(",")).split(",").map((a) => a.trim()).filter((a) => /^\d{2,3}$/.test(a));
if (archs.length === 0) {
  skip(`BARBELL_CUDA_ARCHS=${process.env.BARBELL_CUDA_ARCHS ?? ""} names no architecture`);
}
const gencode = [
  ...archs.flatMap((a) => ["-gencode", `arch=compute_${a},code=sm_${a}`]),
  "-gencode",
  `arch=compute_${PTX_ARCH},code=compute_${PTX_ARCH}`,
];
const flags = ["-std=c++17", "-O3", "-Xcompiler", "-fPIC", "-Xcompiler", "-ffp-contract=off", ...gencode];
// Objects are reused only when the flags, nvcc and every header are unchanged and the object is newer than its source.
const headers = readdirSync(src).filter((f) => f.endsWith(".h"));
const stamp = createHash("sha256")
  .update(JSON.stringify(flags) + version.stdout + headers.map((h) => readFileSync(join(src, h), "utf8")).join("\0"))
  .digest("hex");
const stampFile = join(objDir, "stamp");
mkdirSync(objDir, { recursive: true });
const fresh = existsSync(stampFile) && readFileSync(stampFile, "utf8") === stamp;
const t0 = Date.now();
const jobs = SOURCES.map((name) => async () => {
  const source = join(src, `${name}.cu`);
  const object = join(objDir, `${name}.o`);
  if (fresh && existsSync(object) && statSync(object).mtimeMs >= statSync(source).mtimeMs) {
    return { name, code: 0, output: "", seconds: 0, reused: true };
  }
  const started = Date.now();
  const r = await run(nvcc, [...flags, "-c", source, "-o", object]);
  return { name, ...r, seconds: (Date.now() - started) / 1000, reused: false };
});
const results = await pool(jobs, Math.max(1, availableParallelism()));
const log = results.map((r) => `== ${r.name}.cu (${r.reused ? "reused" : `${r.seconds.toFixed(1)} s`})\n${r.output}`).join("\n");
const failed = results.find((r) => r.code !== 0);
if (failed !== undefined) {
  record(`failed: nvcc ${failed.name}.cu: ${firstErrorLine(failed.output)}`, log);
  console.warn(`barbell: warning: CUDA backend not built (nvcc failed on ${failed.name}.cu; see ${logFile})`);
  process.exit(0);
}
writeFileSync(stampFile, stamp);
const addonObj = join(objDir, "addon.o");
const host = ["-std=c++17", "-O2", "-fPIC", "-DNODE_GYP_MODULE_NAME=barbell_cuda", `-I${nodeInclude}`, `-I${join(toolkit, "include")}`];
const cxx = process.env.CXX ?? "g++";
const compiled = await run(cxx, [...host, "-c", join(src, "addon.cc"), "-o", addonObj]);
const linked =
  compiled.code === 0
    ? await run(cxx, [
        "-shared",
        "-o",
        join(out, "barbell_cuda.node"),
        addonObj,
        ...SOURCES.map((n) => join(objDir, `${n}.o`)),
        `-L${libDir}`,
        "-lcudart_static",
        "-ldl",
        "-lpthread",
        "-lrt",
      ])
    : compiled;
if (linked.code !== 0) {
  record(`failed: ${compiled.code !== 0 ? "compiling addon.cc" : "linking"}: ${firstErrorLine(linked.output)}`, `${log}\n${linked.output}`);
  console.warn(`barbell: warning: CUDA backend not built (see ${logFile})`);
  process.exit(0);
}
const seconds = ((Date.now() - t0) / 1000).toFixed(1);
const what = `sm_${archs.join(", sm_")} + compute_${PTX_ARCH} PTX`;
record(`built in ${seconds} s (${what}; ${version.stdout.trim().split("\n").pop()})`, log);
console.log(`barbell: built the CUDA backend (${join(out, "barbell_cuda.node")}, ${what}, ${seconds} s)`);
