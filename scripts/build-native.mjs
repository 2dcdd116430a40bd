#!/usr/bin/env node
// Builds the native CPU backend (build/Release/barbell_native.node) with node-gyp.
//
// Run by `npm install` (the "install" script). A failed build never fails the install: this script prints
// one warning line, records the first error line in build/native-build-error.txt (the backend's probe
// reports it), and exits 0; barbell then runs on the next backend. Nothing is downloaded: node-gyp is the
// copy bundled with npm (or a local one), and the Node headers are taken from this Node installation.
//
// Environment: BARBELL_SKIP_NATIVE=1 skips the build; BARBELL_NATIVE_VERBOSE=1 streams the compiler output;
// BARBELL_NATIVE_CLEAN=1 forces a clean rebuild.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const buildDir = join(root, "build");
const errorFile = join(buildDir, "native-build-error.txt");
const logFile = join(buildDir, "native-build.log");

function fail(reason, log = "") {
  mkdirSync(buildDir, { recursive: true });
  writeFileSync(errorFile, `${reason}\n`);
  if (log !== "") {
    writeFileSync(logFile, log);
  }
  console.warn(`barbell: warning: native CPU backend not built (${reason}); barbell will use its other backends`);
  process.exit(0);
}

/** node-gyp's CLI script: npm's own copy first (npm ≥ 7 does not put node-gyp on PATH), then a local one. */
function findNodeGyp() {
  const candidates = [];
  const fromNpm = process.env.npm_config_node_gyp;
  if (fromNpm) {
    candidates.push(fromNpm);
  }
  const nodeDir = dirname(process.execPath);
  candidates.push(
    join(nodeDir, "..", "lib", "node_modules", "npm", "node_modules", "node-gyp", "bin", "node-gyp.js"),
    join(nodeDir, "node_modules", "npm", "node_modules", "node-gyp", "bin", "node-gyp.js"),
  );
  if (process.env.npm_execpath) {
    // …/npm/bin/npm-cli.js → …/npm/node_modules/node-gyp/bin/node-gyp.js
    candidates.push(join(dirname(process.env.npm_execpath), "..", "node_modules", "node-gyp", "bin", "node-gyp.js"));
  }
  try {
    candidates.push(createRequire(import.meta.url).resolve("node-gyp/bin/node-gyp.js"));
  } catch {
    // not installed locally
  }
  return candidates.find((p) => existsSync(p));
}

/** The Node installation's own headers (include/node/node_api.h), so node-gyp needs no download. */
function findNodeDir() {
  const prefix = resolve(dirname(process.execPath), "..");
  if (
    existsSync(join(prefix, "include", "node", "node_api.h")) &&
    existsSync(join(prefix, "include", "node", "common.gypi"))
  ) {
    return prefix;
  }
  return undefined;
}

function firstErrorLine(output) {
  const lines = output.split("\n").map((l) => l.trim());
  return (
    lines.find((l) => /\berror\b/i.test(l) && !/^gyp (info|verb)/.test(l)) ??
    lines.find((l) => l !== "") ??
    "unknown error"
  ).slice(0, 300);
}

// The optional CUDA backend has its own build (scripts/build-cuda.mjs: skips without nvcc, never fails).
spawnSync(process.execPath, [join(root, "scripts", "build-cuda.mjs")], { cwd: root, stdio: "inherit" });
if (process.env.BARBELL_SKIP_NATIVE === "1") {
  fail("BARBELL_SKIP_NATIVE=1");
}
const gyp = findNodeGyp();
if (gyp === undefined) {
  fail("node-gyp was not found next to npm or in node_modules");
}
const nodedir = findNodeDir();
if (nodedir === undefined) {
  fail(`no Node headers under ${resolve(dirname(process.execPath), "..", "include", "node")}`);
}
rmSync(errorFile, { force: true });
const verbose = process.env.BARBELL_NATIVE_VERBOSE === "1";
// Incremental when an earlier configure of this binding.gyp is there (make rebuilds only what changed, and
// build/Release/barbell_native.node stays in place until the new one is linked); a clean rebuild otherwise or
// with BARBELL_NATIVE_CLEAN=1.
const makefile = join(buildDir, "Makefile");
const incremental =
  process.env.BARBELL_NATIVE_CLEAN !== "1" &&
  existsSync(makefile) &&
  existsSync(join(buildDir, "config.gypi")) &&
  statSync(makefile).mtimeMs >= statSync(join(root, "binding.gyp")).mtimeMs;
const args = [gyp, incremental ? "build" : "rebuild", "--release", `--nodedir=${nodedir}`, "--jobs=max"];
const result = spawnSync(process.execPath, args, {
  cwd: root,
  encoding: "utf8",
  stdio: verbose ? "inherit" : "pipe",
  env: { ...process.env, npm_config_nodedir: nodedir },
  maxBuffer: 64 * 1024 * 1024,
});
const output = `${result.stdout ?? ""}${result.stderr ?? ""}`;
if (result.error !== undefined) {
  fail(`node-gyp could not start: ${result.error.message}`, output);
}
if (result.status !== 0) {
  fail(`node-gyp exited with ${result.status ?? result.signal}: ${firstErrorLine(output)}`, output);
}
if (!existsSync(join(buildDir, "Release", "barbell_native.node"))) {
  fail("node-gyp succeeded but build/Release/barbell_native.node is missing", output);
}
writeFileSync(logFile, output);
console.log("barbell: built the native CPU backend (build/Release/barbell_native.node)");
