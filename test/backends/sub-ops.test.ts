/**
 * Capabilities per element-wise sub-op: a backend declares which unary / binary ops it implements (native:
 * the codes the addon exports; wasm: its switches asked with empty calls; WebGPU: the cases of its WGSL),
 * the dispatcher routes a sub-op a host backend lacks to the next capable backend, and refuses one a device
 * backend lacks on device buffers (a device read is asynchronous, so nothing is copied back). A sub-op
 * outside the table stays an error everywhere.
 */
import { describe, expect, it } from "vitest";
import { BackendError, UsageError } from "../../src/core/errors.js";
import type { Kernels, PartialBackend, TensorRef } from "../../src/backends/backend.js";
import { capabilitiesOf, capabilityAccepts, checkCapabilities, requireSubOp, subOpsWhere, subOpsWithCase } from "../../src/backends/capabilities.js";
import { createDispatcher, type FallbackEvent } from "../../src/backends/dispatch.js";
import { views } from "../../src/backends/host-memory.js";
import { createJsBackend } from "../../src/backends/js/index.js";
import { nativeAddon } from "../../src/backends/native-cpu/addon.js";
import { nativeCapabilities } from "../../src/backends/native-cpu/index.js";
import { BINARY_OPS, UNARY_OPS } from "../../src/backends/ops.js";
import { wasmCapabilities, wasmElementwise } from "../../src/backends/wasm-simd/kernels.js";
import { instantiateKernels, probeWasmSimd, WASM_UNSUPPORTED_OP } from "../../src/backends/wasm-simd/loader.js";
import { requireWasmApi } from "../../src/backends/wasm-simd/wasm-api.js";
import { WEBGPU_CAPABILITIES } from "../../src/backends/webgpu/backend.js";
import { createTestDevice } from "./device-backend.js";

const ALL_UNARY = Object.keys(UNARY_OPS);
const ALL_BINARY = Object.keys(BINARY_OPS);

/** A host member whose `unary` implements only neg (computed as −x) and counts its calls. */
function negOnly(): PartialBackend & { calls: number } {
  const self = {
    name: "native-cpu" as const,
    calls: 0,
    info: { features: ["test"], threads: 1 },
    kernels: {
      unary: (op, x, out) => {
        requireSubOp("neg-only", "unary", op, ["neg"]);
        self.calls++;
        const src = views.f32(x);
        views.f32(out).forEach((_, i, dst) => (dst[i] = -(src[i] ?? 0)));
      },
    } satisfies Partial<Kernels>,
    capabilities: { unary: { ops: ["neg"] } },
    dispose: () => undefined,
  } satisfies PartialBackend & { calls: number };
  return self;
}

function f32Tensor(js: ReturnType<typeof createJsBackend>, values: number[]): TensorRef {
  const ref: TensorRef = { buffer: js.alloc(values.length * 4), dtype: "f32", shape: [values.length] };
  js.write(ref.buffer, new Uint8Array(Float32Array.from(values).buffer));
  return ref;
}

describe("sub-op capabilities", () => {
  it("should check a declared sub-op list against the op table", () => {
    const base = negOnly();
    expect(() => checkCapabilities("t", base)).not.toThrow();
    expect(() => checkCapabilities("t", { ...base, capabilities: { unary: { ops: ["softplus" as "neg"] } } })).toThrow(/unary.ops lists softplus/);
    expect(() => checkCapabilities("t", { ...base, capabilities: { unary: { ops: ["add" as "neg"] } } })).toThrow(/unary ops are neg\/abs/);
    expect(() => checkCapabilities("t", { ...base, capabilities: { unary: { ops: [] } } })).toThrow(/lists nothing/);
    const scaler = { ...base, kernels: { scale: () => undefined }, capabilities: { scale: { ops: ["neg" as const] } } };
    expect(() => checkCapabilities("t", scaler)).toThrow(/scale has no element-wise sub-op/);
  });

  it("should accept a call by its sub-op, with the reason when it lacks it", () => {
    const ref = { buffer: { id: 1, bytes: 16 }, dtype: "f32" as const, shape: [4] };
    expect(capabilityAccepts("unary", { ops: ["neg", "abs"] }, ["abs", ref, ref])).toBe(true);
    expect(capabilityAccepts("unary", { ops: ["neg", "abs"] }, ["exp", ref, ref])).toBe('unary has no "exp" here (it implements neg, abs)');
    expect(capabilityAccepts("binary", { ops: ["add"], maxRank: 1 }, ["mul", ref, [1], ref, [1], ref])).toMatch(/no "mul"/);
    expect(capabilityAccepts("binary", { ops: ["add"] }, ["add", ref, [1], ref, [1], ref])).toBe(true);
  });

  it("should route a backend that implements every sub-op as one that lists none (the same per-call checks)", () => {
    const all = { ...negOnly(), capabilities: { unary: { ops: subOpsWhere("unary", () => true) }, binary: { maxRank: 4, ops: subOpsWhere("binary", () => true) } } };
    expect(capabilitiesOf(all)).toEqual({ unary: true, binary: { maxRank: 4 } });
    expect(capabilitiesOf(negOnly())).toEqual({ unary: { ops: ["neg"] } });
  });

  it("should run a sub-op a host member lacks on the JS reference, report the fallback once, and keep the ones it has", () => {
    const js = createJsBackend();
    const member = negOnly();
    const events: FallbackEvent[] = [];
    const dispatcher = createDispatcher([member], js, { onFallback: (e) => events.push(e) });
    const x = f32Tensor(js, [1, -2, 0.5]);
    const out = f32Tensor(js, [0, 0, 0]);
    dispatcher.kernels.unary("neg", x, out);
    expect([...views.f32(out)]).toEqual([-1, 2, -0.5]);
    expect(member.calls).toBe(1);
    dispatcher.kernels.unary("relu", x, out);
    dispatcher.kernels.unary("abs", x, out);
    expect([...views.f32(out)]).toEqual([1, 2, 0.5]);
    expect(member.calls).toBe(1);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ kernel: "unary", from: "native-cpu", to: "js", reason: 'native-cpu: unary has no "relu" here (it implements neg)' });
    expect(dispatcher.fallbacks().get("unary")?.count).toBe(2);
    // Strict: a missing sub-op is a fallback like any other.
    const strict = createDispatcher([negOnly()], js, { strict: true });
    expect(() => strict.kernels.unary("exp", x, out)).toThrow(BackendError);
    // The member itself refuses a sub-op it lacks when called directly: an error, never a computation.
    expect(() => member.kernels.unary?.("exp", x, out)).toThrow(UsageError);
    // A name outside the table is an error on every path.
    expect(() => dispatcher.kernels.unary("softplus" as "neg", x, out)).toThrow(UsageError);
  });

  it("should refuse a sub-op a device member lacks on device buffers, naming why (no copy back to the host)", () => {
    const device = createTestDevice();
    const limited: PartialBackend = { ...device, capabilities: { ...device.capabilities, unary: { ops: ["neg"] } } };
    const dispatcher = createDispatcher([limited], createJsBackend());
    const x: TensorRef = { buffer: dispatcher.alloc(16), dtype: "f32", shape: [4] };
    const out: TensorRef = { buffer: dispatcher.alloc(16), dtype: "f32", shape: [4] };
    dispatcher.kernels.unary("neg", x, out);
    expect(device.calls.get("unary")).toBe(1);
    let caught: unknown;
    try {
      dispatcher.kernels.unary("exp", x, out);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(UsageError);
    expect((caught as UsageError).code).toBe("unsupported");
    expect((caught as Error).message).toMatch(/no backend can run unary: test-device: unary has no "exp" here.*js: buffer \d+ is in device memory/);
    expect(device.calls.get("unary")).toBe(1);
  });
});

describe("how each backend derives its sub-op list", () => {
  it("should name the sub-ops whose codes a backend reports, in code order", () => {
    expect(subOpsWhere("unary", (code) => code === 8 || code === 0)).toEqual(["neg", "tanh"]);
    expect(subOpsWhere("binary", () => true)).toEqual(ALL_BINARY);
    expect(subOpsWhere("unary", (code) => code === 99)).toEqual([]);
  });

  it("should read a shader's cases, selector lists included, and nothing else", () => {
    const wgsl = "switch op { case UNARY_NEG: { } case UNARY_RELU2, UNARY_TANH: { } default: { } } // UNARY_EXP";
    expect(subOpsWithCase("unary", wgsl)).toEqual(["neg", "relu2", "tanh"]);
    expect(subOpsWithCase("binary", "case BINARY_MAX: {} case BINARY_ADD: {}")).toEqual(["add", "max"]);
    expect(WEBGPU_CAPABILITIES.unary).toEqual({ ops: ALL_UNARY });
    expect(WEBGPU_CAPABILITIES.binary).toMatchObject({ ops: ALL_BINARY });
  });

  it("should declare the native addon's reported codes (every table op in this build)", () => {
    expect(nativeCapabilities({ unaryOps: [0, 3], binaryOps: [2] })).toMatchObject({ unary: { ops: ["neg", "relu"] }, binary: { ops: ["mul"] } });
    const addon = nativeAddon();
    if (addon !== undefined) {
      expect(addon.unaryOps).toEqual(Object.values(UNARY_OPS).map((s) => s.code));
      expect(nativeCapabilities(addon)).toMatchObject({ unary: { ops: ALL_UNARY }, binary: { ops: ALL_BINARY } });
    }
  });

  it("should ask the wasm module's switches with empty calls, and make an op without a case UsageError", async () => {
    const fake = { unary: (code: number) => (code === 2 ? WASM_UNSUPPORTED_OP : 0), binary: (code: number) => (code < 2 ? 0 : WASM_UNSUPPORTED_OP) };
    expect(wasmCapabilities(fake)).toMatchObject({ unary: { ops: ALL_UNARY.filter((n) => n !== "exp") }, binary: { ops: ["add", "sub"] } });
    const stub = { ...fake } as unknown as Parameters<typeof wasmElementwise>[0];
    expect(() => wasmElementwise(stub, "unary", 2, 0, 0, 0, 4)).toThrow(/"exp" \(code 2\) is not implemented by the module/);
    if ((await probeWasmSimd()).available) {
      const wasm = await instantiateKernels(new (requireWasmApi().Memory)({ initial: 2, maximum: 2 }));
      expect(wasmCapabilities(wasm)).toMatchObject({ unary: { ops: ALL_UNARY }, binary: { ops: ALL_BINARY } });
    }
  });
});
