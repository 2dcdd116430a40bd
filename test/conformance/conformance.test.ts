/**
 * Every backend this machine has × every case of cases.ts, against the JS reference. A backend that
 * is not available is reported as skipped with its probe reason, never passed silently. Each case's
 * tensors live in the backend's own memory when it has one (wasm-simd kernels read only their linear
 * memory), so the backend runs the case instead of refusing it.
 */
import { describe, expect, it } from "vitest";
import type { BufferHandle, BufferMemory, PartialBackend, TensorRef } from "../../src/backends/backend.js";
import { ArrayBufferMemory, views } from "../../src/backends/host-memory.js";
import { createJsBackend } from "../../src/backends/js/index.js";
import { PROVIDERS } from "../../src/backends/providers.js";
import { probeOnce } from "../../src/backends/registry.js";
import { CASES, type CaseMemory, type ConformanceCase } from "./cases.js";

const reference = createJsBackend();

function outputValues(out: TensorRef): number[] {
  return Array.from(out.dtype === "i8" ? views.i8(out) : out.dtype === "i32" ? views.i32(out) : views.f32(out));
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
type CaseHost = Pick<BufferMemory, "alloc" | "write" | "free">;

function withCase<T>(c: ConformanceCase, memory: CaseHost, use: (args: unknown[], out: TensorRef) => T): T {
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
    return use(data.args, data.out);
  } finally {
    buffers.forEach((b) => memory.free(b));
  }
}

/** Runs one case on one kernel table; the output is read back before the buffers are freed. */
function run(c: ConformanceCase, kernel: (...args: unknown[]) => void, memory: CaseHost = new ArrayBufferMemory("conformance")): number[] {
  return withCase(c, memory, (args, out) => {
    kernel(...args);
    return outputValues(out);
  });
}

for (const provider of PROVIDERS) {
  describe(`${provider.name} conformance`, async () => {
    const probe = await probeOnce(provider);
    if (!probe.available) {
      it.skip(`${provider.name} is unavailable here: ${probe.reason}`, () => undefined);
      return;
    }
    const backend: PartialBackend = await provider.create({});
    for (const c of CASES) {
      const kernel = backend.kernels[c.kernel] as ((...args: unknown[]) => void) | undefined;
      if (kernel === undefined) {
        it.skip(`${c.name}: ${provider.name} has no ${c.kernel} kernel (runs on the fallback)`, () => undefined);
        continue;
      }
      it(`${c.name} ${c.compare === "exact" ? "matches exactly" : `within NMSE ${c.compare}`}`, () => {
        const memory: CaseHost = backend.memory ?? new ArrayBufferMemory("conformance");
        const verdict = withCase(c, memory, (args) =>
          backend.supports?.(c.kernel, args.filter((a): a is TensorRef => typeof a === "object" && a !== null && "buffer" in a)) ?? true,
        );
        if (verdict !== true) {
          expect(typeof verdict).toBe("string"); // refused calls fall back; nothing to compare
          return;
        }
        const want = run(c, reference.kernels[c.kernel] as (...args: unknown[]) => void);
        const got = run(c, kernel, memory);
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

  it("should find the JS reference equal to itself on every case (the harness can compare)", () => {
    for (const c of CASES) {
      const a = run(c, reference.kernels[c.kernel] as (...args: unknown[]) => void);
      const b = run(c, reference.kernels[c.kernel] as (...args: unknown[]) => void);
      expect(a, c.name).toEqual(b);
      expect(a.length, c.name).toBeGreaterThan(0);
    }
  });
});
