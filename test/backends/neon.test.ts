/**
 * The arm64 NEON kernels, checked on any machine: scripts/check-isa.sh cross-compiles
 * native/cpu/check/isa_check.cc with the NEON and scalar kernel tables for aarch64 and runs it under
 * qemu-aarch64; it compares every kernel of the NEON table with the scalar one bit for bit (ternary on
 * t2 codes and on raw bytes with code 3 and garbage padding, binary × binary). Skipped, with the reason,
 * when the cross compiler or qemu is missing, unless BARBELL_REQUIRE_ISA_CHECK=1 (CI sets it).
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";

const root = path.resolve(import.meta.dirname, "../..");
const run = () => spawnSync("bash", [path.join(root, "scripts/check-isa.sh")], { cwd: root, encoding: "utf8" });

describe("NEON kernels (arm64, under qemu)", () => {
  const first = run();
  const missing = first.status === 77;
  const required = process.env["BARBELL_REQUIRE_ISA_CHECK"] === "1";
  if (missing && !required) {
    it.skip(`not checked here: ${first.stderr.trim()}`, () => undefined);
    return;
  }
  it("should agree with the scalar kernels bit for bit", () => {
    expect(first.stderr).toBe("");
    expect(first.stdout).toContain("neon: ok");
    expect(first.stdout).not.toContain("FAIL");
    expect(first.status).toBe(0);
  });
});
