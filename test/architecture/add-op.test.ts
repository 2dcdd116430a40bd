/**
 * The "Adding a primitive op" checklist of docs/architecture.md, carried out: a scratch copy of the
 * repository gets a throwaway unary op (`softsign`) in exactly the places the checklist names — its op table
 * entry and its JS reference function — and then regenerates (scripts/gen-ops.ts, the wasm module). The test
 * diffs the copy against the original to show nothing else changed, then checks that everything else derives
 * the op: the JS reference computes it, conformance has a case for it, the generated C++ / AssemblyScript /
 * WGSL constants name it, and the native and wasm backends — which have no case for it — compile, report it
 * unsupported and are routed to the JS reference by the dispatcher. Nothing is added to the product.
 *
 * The native part compiles native/cpu (the element-wise switches and float kernels) against the regenerated
 * header with the system C++ compiler; it is skipped, with the reason, where there is none.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Backend, PartialBackend, TensorRef } from "../../src/backends/backend.js";
import { OP_TABLE_HASH, UNARY_OPS } from "../../src/backends/ops.js";
import type * as OpsModule from "../../src/backends/ops.js";
import type * as CasesModule from "../conformance/cases.js";
import type * as JsModule from "../../src/backends/js/index.js";
import type * as HostMemoryModule from "../../src/backends/host-memory.js";
import type * as LoaderModule from "../../src/backends/wasm-simd/loader.js";
import type * as WasmModule from "../../src/backends/wasm-simd/index.js";
import type * as NativeModule from "../../src/backends/native-cpu/index.js";
import type * as DispatchModule from "../../src/backends/dispatch.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
/** What the scratch copy holds: the product's sources and the generators, plus the conformance cases. */
const COPIED = ["src", "native", "scripts/gen-ops.ts", "scripts/build-wasm.mjs", "test/conformance/cases.ts", "package.json"];
const OP = "softsign";
const CODE = Object.keys(UNARY_OPS).length;

let scratch = "";
let before = new Map<string, string>();

/** Every file under `dir` (relative path → sha256), skipping the node_modules link. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string): void => {
    for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const child = path.join(rel, entry.name);
      if (entry.name === "node_modules") {
        continue;
      }
      if (entry.isDirectory()) {
        walk(child);
      } else if (entry.isFile()) {
        out.set(child, createHash("sha256").update(fs.readFileSync(path.join(dir, child))).digest("hex"));
      }
    }
  };
  walk("");
  return out;
}

/** Replaces `anchor` (which must occur once) in a scratch file by `anchor + addition`: a hand edit. */
function insertAfter(rel: string, anchor: string, addition: string): void {
  const file = path.join(scratch, rel);
  const text = fs.readFileSync(file, "utf8");
  expect(text.split(anchor)).toHaveLength(2);
  fs.writeFileSync(file, text.replace(anchor, anchor + addition));
}

/** Imports a module of the scratch copy. */
function load<T>(rel: string): Promise<T> {
  return import(pathToFileURL(path.join(scratch, rel)).href) as Promise<T>;
}

beforeAll(async () => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), "barbell-add-op-"));
  for (const rel of COPIED) {
    fs.cpSync(path.join(root, rel), path.join(scratch, rel), { recursive: true });
  }
  fs.symlinkSync(path.join(root, "node_modules"), path.join(scratch, "node_modules"), "dir");
  before = snapshot(scratch);

  // The checklist, steps 1 and 2: the table entry and the reference's scalar function.
  insertAfter("src/backends/ops.ts", '  tanh: { code: 8, summary: "tanh(x)", numerics: "float" },\n', `  ${OP}: { code: ${CODE}, summary: "x / (1 + |x|)", numerics: "float" },\n`);
  insertAfter("src/backends/js/kernels/elementwise.ts", "  abs: (x) => Math.abs(x),\n", `  ${OP}: (x) => x / (1 + Math.abs(x)),\n`);
  // Step 3 (one conformance case) is derived for an element-wise op: nothing to write.
  // Step 4: the generated files.
  const gen = await load<{ generatedFiles(): readonly { path: string; text: string }[] }>("scripts/gen-ops.ts");
  for (const f of gen.generatedFiles()) {
    fs.writeFileSync(path.join(scratch, f.path), f.text);
  }
  execFileSync(process.execPath, [path.join(scratch, "scripts/build-wasm.mjs")], { cwd: scratch, stdio: "pipe" });
}, 240_000);

afterAll(() => {
  if (scratch !== "") {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
});

describe("adding a primitive op (an element-wise unary op)", () => {
  it("should touch the op table, the JS reference and the generated files only", () => {
    const after = snapshot(scratch);
    const changed = [...after.keys()].filter((f) => before.get(f) !== after.get(f)).sort();
    expect(changed).toEqual(
      [
        "src/backends/ops.ts",
        "src/backends/js/kernels/elementwise.ts",
        // generated
        "native/cpu/ops.generated.h",
        "native/wasm/assembly/ops.generated.ts",
        "src/backends/webgpu/ops.generated.wgsl.ts",
        "src/backends/wasm-simd/module.generated.ts",
      ].sort(),
    );
    const text = (rel: string): string => fs.readFileSync(path.join(scratch, rel), "utf8");
    expect(text("native/cpu/ops.generated.h")).toContain(`kSoftsign = ${CODE},`);
    expect(text("native/wasm/assembly/ops.generated.ts")).toContain(`export const UNARY_SOFTSIGN: i32 = ${CODE};`);
    expect(text("src/backends/webgpu/ops.generated.wgsl.ts")).toContain(`const UNARY_SOFTSIGN: u32 = ${CODE}u;`);
  });

  it("should derive the op's conformance case and run it on the JS reference", async () => {
    const ops = await load<typeof OpsModule>("src/backends/ops.ts");
    expect(ops.OP_TABLE_HASH).not.toBe(OP_TABLE_HASH);
    const { CASES } = await load<typeof CasesModule>("test/conformance/cases.ts");
    const c = CASES.find((k) => k.name === `unary ${OP} 1000`);
    expect(c).toMatchObject({ kernel: "unary", compare: 1e-9 });
    const { createJsBackend } = await load<typeof JsModule>("src/backends/js/index.ts");
    const js = createJsBackend();
    const { views } = await load<typeof HostMemoryModule>("src/backends/host-memory.ts");
    const x = f32(js, [3, -1, 0]);
    const out = f32(js, [0, 0, 0]);
    js.kernels.unary(OP as "neg", x, out);
    expect([...views.f32(out)]).toEqual([0.75, -0.5, 0]);
  });

  it("should build the wasm module without a case for it, report it unsupported and route it to the JS reference", async () => {
    const loader = await load<typeof LoaderModule>("src/backends/wasm-simd/loader.ts");
    if (!(await loader.probeWasmSimd()).available) {
      return;
    }
    const { wasmSimdProvider } = await load<typeof WasmModule>("src/backends/wasm-simd/index.ts");
    const wasm = await wasmSimdProvider.create({ threads: 1 });
    const caps = wasm.capabilities?.unary;
    expect(caps).not.toBe(true);
    expect(typeof caps === "object" && caps.ops).toEqual(Object.keys(UNARY_OPS)); // every op but softsign
    await expectRoutedToJs(wasm);
    wasm.dispose();
  });

  it("should compile native/cpu without a case for it, report it unsupported and route it to the JS reference", async (ctx) => {
    const cxx = process.env["CXX"] ?? "g++";
    if (spawnSync(cxx, ["--version"]).status !== 0) {
      ctx.skip(`no C++ compiler (${cxx})`);
    }
    const dir = path.join(scratch, "native/cpu");
    fs.writeFileSync(
      path.join(dir, "add_op_driver.cc"),
      [
        '#include <cstdio>',
        '#include "elementwise.h"',
        '#include "float_kernels.h"',
        "using namespace barbell;",
        "int main() {",
        "  for (int c = 0; c < ops::kUnaryCount; ++c) {",
        '    if (elementwise::implements(static_cast<ops::Unary>(c))) std::printf("%d ", c);',
        "  }",
        "  float x[2] = {1, 2}, out[2] = {42, 42};",
        "  const bool ran = unary(ops::Unary::kSoftsign, x, 2, out);",
        '  std::printf("\\n%d %g %g\\n", ran ? 1 : 0, out[0], out[1]);',
        "}",
        "",
      ].join("\n"),
    );
    // The addon's flags that matter here; -Werror=switch: the switches still compile with an op they lack.
    const flags = ["-std=c++17", "-O1", "-Wall", "-Werror=switch", "-ffp-contract=off", "-fno-math-errno"];
    execFileSync(cxx, [...flags, "add_op_driver.cc", "float_kernels.cc", "kernels_scalar.cc", "-o", "add_op_driver"], { cwd: dir, stdio: "pipe" });
    const [codes = "", run = ""] = execFileSync(path.join(dir, "add_op_driver"), { encoding: "utf8" }).split("\n");
    const implemented = codes.trim().split(" ").map(Number);
    expect(implemented).toEqual(Object.values(UNARY_OPS).map((s) => s.code));
    expect(run).toBe("0 42 42"); // refused, nothing written
    // What the addon would export, declared by the glue, routed by the dispatcher.
    const native = await load<typeof NativeModule>("src/backends/native-cpu/index.ts");
    const capabilities = native.nativeCapabilities({ unaryOps: implemented, binaryOps: [0, 1, 2, 3, 4, 5] });
    const member: PartialBackend = {
      name: "native-cpu",
      kernels: {
        unary: () => {
          throw new Error("a member must not get an op it does not declare");
        },
      },
      capabilities: { unary: capabilities.unary ?? true },
      info: { features: [], threads: 1 },
      dispose: () => undefined,
    };
    await expectRoutedToJs(member);
  }, 60_000);
});

function f32(backend: Pick<Backend, "alloc" | "write">, values: number[]): TensorRef {
  const ref: TensorRef = { buffer: backend.alloc(values.length * 4), dtype: "f32", shape: [values.length] };
  backend.write(ref.buffer, new Uint8Array(Float32Array.from(values).buffer));
  return ref;
}

/** A dispatcher of the scratch copy over `member` runs the new op on the JS reference (a reported fallback). */
async function expectRoutedToJs(member: PartialBackend): Promise<void> {
  const { createDispatcher } = await load<typeof DispatchModule>("src/backends/dispatch.ts");
  const { createJsBackend } = await load<typeof JsModule>("src/backends/js/index.ts");
  const events: { to: string; reason: string }[] = [];
  const dispatcher = createDispatcher([member], createJsBackend(), { onFallback: (e) => events.push(e) });
  const x = f32(dispatcher, [3, -1, 0]);
  const out = f32(dispatcher, [0, 0, 0]);
  dispatcher.kernels.unary(OP as "neg", x, out);
  const bytes = await dispatcher.readAsync(out.buffer);
  expect([...new Float32Array(bytes.buffer, bytes.byteOffset, 3)]).toEqual([0.75, -0.5, 0]);
  expect(events).toEqual([expect.objectContaining({ to: "js", reason: expect.stringContaining(`unary has no "${OP}" here`) })]);
  dispatcher.free(x.buffer);
  dispatcher.free(out.buffer);
}
