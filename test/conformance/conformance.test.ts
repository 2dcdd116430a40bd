/**
 * Every backend this machine has × every case of cases.ts, against the JS reference. A backend that
 * is not available is reported as skipped with its probe reason, never passed silently. Each case's
 * tensors are built through the backend's own memory when it has one (wasm-simd kernels read only their
 * linear memory; a device's buffers are opaque) and read back with `readAsync`, so a device backend runs
 * the same cases: the test-only device backend of test/backends/device-backend.ts does.
 */
import { describe, expect, it } from "vitest";
import type { BufferHandle, BufferMemory, PartialBackend, TensorRef } from "../../src/backends/backend.js";
import { ArrayBufferMemory, views } from "../../src/backends/host-memory.js";
import { createJsBackend } from "../../src/backends/js/index.js";
import { PROVIDERS } from "../../src/backends/providers.js";
import { probeOnce } from "../../src/backends/registry.js";
import { createDispatcher } from "../../src/backends/dispatch.js";
import { UsageError } from "../../src/core/errors.js";
import { createTestDevice } from "../backends/device-backend.js";
import { CASES, type CaseMemory, type ConformanceCase } from "./cases.js";

const reference = createJsBackend();

/** The output's values, read back through the memory (asynchronously: a device's cannot be read otherwise). */
async function outputValues(out: TensorRef, memory: CaseHost): Promise<number[]> {
  const bytes = await memory.readAsync(out.buffer);
  const host = new ArrayBufferMemory("conformance-out");
  const copy = host.adopt(bytes.slice());
  const ref = { ...out, buffer: copy };
  const values = Array.from(out.dtype === "i8" ? views.i8(ref) : out.dtype === "i32" ? views.i32(ref) : views.f32(ref));
  host.free(copy);
  return values;
}

function nmse(got: readonly number[], want: readonly number[]): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    num += ((got[i] ?? 0) - (want[i] ?? 0)) ** 2;
    den += (want[i] ?? 0) ** 2;
  }
  return den === 0 ? num : num / den;
}

/** Builds a case in `memory` and frees its buffers after `use` (also when it throws). */
/** What a case needs of a memory: allocate, fill, free. */
type CaseHost = Pick<BufferMemory, "alloc" | "write" | "free" | "readAsync">;

async function withCase<T>(c: ConformanceCase, memory: CaseHost, use: (args: unknown[], out: TensorRef) => T | Promise<T>): Promise<T> {
  const buffers: BufferHandle[] = [];
  const tracked: CaseMemory = {
    alloc: (bytes) => {
      const b = memory.alloc(bytes);
      buffers.push(b);
      return b;
    },
    write: (buffer, src, byteOffset) => memory.write(buffer, src, byteOffset),
  };
  try {
    const data = c.build(tracked);
    return await use(data.args, data.out);
  } finally {
    buffers.forEach((b) => memory.free(b));
  }
}

/** Runs one case on one kernel table; the output is read back before the buffers are freed. */
function run(c: ConformanceCase, kernel: (...args: unknown[]) => void, memory: CaseHost = new ArrayBufferMemory("conformance")): Promise<number[]> {
  return withCase(c, memory, (args, out) => {
    kernel(...args);
    return outputValues(out, memory);
  });
}

const SUBJECTS = [
  ...PROVIDERS.map((provider) => ({ name: provider.name, probe: () => probeOnce(provider), create: () => provider.create({}) })),
  { name: "test-device", probe: () => Promise.resolve({ available: true as const }), create: () => Promise.resolve(createTestDevice()) },
];

for (const subject of SUBJECTS) {
  describe(`${subject.name} conformance`, async () => {
    const probe = await subject.probe();
    if (!probe.available) {
      if (subject.name === "webgpu" && process.env["BARBELL_REQUIRE_WEBGPU"] === "1") {
        // CI installs Dawn and SwiftShader (scripts/install-webgpu.sh): a missing adapter is a failure there.
        it("webgpu is required (BARBELL_REQUIRE_WEBGPU=1)", () => {
          throw new Error(`webgpu is unavailable: ${probe.reason}`);
        });
        return;
      }
      it.skip(`${subject.name} is unavailable here: ${probe.reason}`, () => undefined);
      return;
    }
    const backend: PartialBackend = await subject.create();
    const dispatcher = createDispatcher([backend], reference);
    for (const c of CASES) {
      const kernel = backend.kernels[c.kernel] as ((...args: unknown[]) => void) | undefined;
      if (kernel === undefined) {
        it.skip(`${c.name}: ${subject.name} has no ${c.kernel} kernel (runs on the fallback)`, () => undefined);
        continue;
      }
      it(`${c.name} ${c.compare === "exact" ? "matches exactly" : `within NMSE ${c.compare}`}`, async () => {
        const memory: CaseHost & Pick<BufferMemory, "kind"> = backend.memory ?? new ArrayBufferMemory("conformance");
        // Its capabilities (data) and `supports` decide, as when the dispatcher routes a call.
        const verdict = await withCase(c, memory, (args) => dispatcher.accepts(backend, c.kernel, args));
        const want = await run(c, reference.kernels[c.kernel] as (...args: unknown[]) => void);
        if (verdict !== true) {
          // A refused call (a dtype, a limit, an element-wise op it has no case for) goes to the next capable
          // backend: on host memory the JS reference computes it; device buffers cannot reach a host kernel, so
          // the dispatcher refuses it with UsageError "unsupported" (never a computation on the refusing backend).
          expect(typeof verdict).toBe("string");
          const routed = dispatcher.kernels[c.kernel] as (...args: unknown[]) => void;
          if (memory.kind === "device") {
            await withCase(c, memory, (args) => expect(() => routed(...args)).toThrow(UsageError));
          } else {
            expect(await run(c, routed, memory)).toEqual(want);
          }
          return;
        }
        const got = await run(c, kernel, memory);
        if (c.compare === "exact") {
          expect(got).toEqual(want);
        } else {
          expect(got.every(Number.isFinite)).toBe(want.every(Number.isFinite));
          expect(nmse(got, want)).toBeLessThanOrEqual(c.compare);
        }
      });
    }
  });
}

describe("conformance suite", () => {
  it("should cover every kernel of the backend contract except the layout ones", () => {
    const covered = new Set(CASES.map((c) => c.kernel));
    const all = Object.keys(reference.kernels);
    const missing = all.filter((k) => !covered.has(k as never) && !["copyStrided", "concat", "writeRows", "matmulF32"].includes(k));
    expect(missing).toEqual([]);
  });

  it("should find the JS reference equal to itself on every case (the harness can compare)", async () => {
    for (const c of CASES) {
      const a = await run(c, reference.kernels[c.kernel] as (...args: unknown[]) => void);
      const b = await run(c, reference.kernels[c.kernel] as (...args: unknown[]) => void);
      expect(a, c.name).toEqual(b);
      expect(a.length, c.name).toBeGreaterThan(0);
    }
  });
});
